//! `start_from_env` with both ways out configured (its own process: the
//! environment is process-wide).

mod common;

use std::time::{Duration, Instant};

use gstbroadcast_exporter::{counter_vec, start_from_env, textfile_name, EnvStart};

#[test]
fn env_starts_http_and_textfile_once() {
    let dir = tempfile::tempdir().unwrap();
    let textdir = dir.path().join("metrics"); // created by the writer
                                              // The only test in this binary: nothing else reads the environment.
    std::env::set_var("GST_METRICS_ADDR", "127.0.0.1:0");
    std::env::set_var("GST_METRICS_TEXTFILE_DIR", &textdir);
    std::env::set_var("GST_METRICS_INTERVAL_MS", "100");

    let c = counter_vec("gst_env_test_total", "Env test counter.");
    c.with_label_values(&["p", "e", "s"]).inc();

    let started = start_from_env();
    let addr = started.http.clone().unwrap().expect("http started");
    let path = started.textfile.clone().unwrap().expect("textfile started");
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    assert_eq!(path, textdir.join(textfile_name()));
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        format!("gst-broadcast-{}.prom", std::process::id())
    );
    assert_eq!(started.interval, Some(Duration::from_millis(100)));

    // Idempotent: the same answer, nothing new started.
    assert_eq!(start_from_env(), started);
    std::env::set_var("GST_METRICS_ADDR", "127.0.0.1:1");
    assert_eq!(start_from_env(), started);

    let r = common::get(addr, "/metrics");
    assert!(r
        .body
        .contains("gst_env_test_total{element=\"e\",pipeline=\"p\",stream=\"s\"} 1\n"));

    // The file was written before start returned, and is rewritten.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("gst_env_test_total{element=\"e\",pipeline=\"p\",stream=\"s\"} 1\n"));
    c.with_label_values(&["p", "e", "s"]).inc();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("gst_env_test_total{element=\"e\",pipeline=\"p\",stream=\"s\"} 2\n") {
            break;
        }
        assert!(Instant::now() < deadline, "file not rewritten:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only the textfile: temporary files are renamed away.
    let names: Vec<_> = std::fs::read_dir(&textdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [textfile_name()]);
    let _: EnvStart = started;
}
