//! The `gst-stream-exporter` binary on a directory of textfiles.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{get, promtool_check, request};

const EXE: &str = env!("CARGO_BIN_EXE_gst-stream-exporter");

/// The sidecar child; killed when dropped, also on test failure.
struct Sidecar {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, stale_after: &str) -> Sidecar {
    let mut child = Command::new(EXE)
        .arg("--listen-address=127.0.0.1:0")
        .arg("--textfile-dir")
        .arg(dir)
        .args(["--stale-after", stale_after])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gst-stream-exporter");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("a startup line").unwrap();
    // "gst-stream-exporter: serving DIR on http://127.0.0.1:PORT/metrics (...)"
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("unexpected startup line {first:?}"))
        .parse()
        .unwrap();
    // Keep draining stderr (problem logs) so the child never blocks on it.
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            eprintln!("[sidecar] {l}");
        }
    });
    Sidecar { child, addr }
}

fn age(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

const A: &str = r#"# HELP gst_stream_frames_total Frames seen on the stream.
# TYPE gst_stream_frames_total counter
gst_stream_frames_total{element="probe",pipeline="cam1",stream="video_0"} 100
# HELP gst_stream_gop_interval_seconds Keyframe-to-keyframe interval, in seconds.
# TYPE gst_stream_gop_interval_seconds histogram
gst_stream_gop_interval_seconds_bucket{element="probe",pipeline="cam1",stream="video_0",le="1"} 1
gst_stream_gop_interval_seconds_bucket{element="probe",pipeline="cam1",stream="video_0",le="+Inf"} 2
gst_stream_gop_interval_seconds_sum{element="probe",pipeline="cam1",stream="video_0"} 3
gst_stream_gop_interval_seconds_count{element="probe",pipeline="cam1",stream="video_0"} 2
"#;

const B: &str = r#"# HELP gst_stream_frames_total Frames seen on the stream.
# TYPE gst_stream_frames_total counter
gst_stream_frames_total{element="probe",pipeline="cam2",stream="video_0"} 200
# HELP gst_stream_gop_interval_seconds Keyframe-to-keyframe interval, in seconds.
# TYPE gst_stream_gop_interval_seconds histogram
gst_stream_gop_interval_seconds_bucket{element="probe",pipeline="cam2",stream="video_0",le="1"} 0
gst_stream_gop_interval_seconds_bucket{element="probe",pipeline="cam2",stream="video_0",le="+Inf"} 1
gst_stream_gop_interval_seconds_sum{element="probe",pipeline="cam2",stream="video_0"} 2
gst_stream_gop_interval_seconds_count{element="probe",pipeline="cam2",stream="video_0"} 1
# HELP gst_only_in_second_total Only in the second file.
# TYPE gst_only_in_second_total counter
gst_only_in_second_total{element="e",pipeline="cam2",stream="s"} 1
"#;

/// Starts well, then breaks: nothing of it may be served.
const BAD: &str = r#"# HELP gst_only_in_bad_total Only in the malformed file.
# TYPE gst_only_in_bad_total counter
gst_only_in_bad_total{element="e",pipeline="bad",stream="s"} 1
gst_stream_frames_total{element="probe",pipeline="bad",stream="video_0" 5
"#;

const STALE: &str = r#"# HELP gst_stream_frames_total Frames seen on the stream.
# TYPE gst_stream_frames_total counter
gst_stream_frames_total{element="probe",pipeline="gone",stream="video_0"} 9
# HELP gst_only_in_stale_total Only in the stale file.
# TYPE gst_only_in_stale_total counter
gst_only_in_stale_total 1
"#;

/// Declares an existing family with another type: that family is skipped.
const CONFLICT: &str = r#"# HELP gst_stream_gop_interval_seconds Last GOP interval, as a gauge.
# TYPE gst_stream_gop_interval_seconds gauge
gst_stream_gop_interval_seconds{element="probe",pipeline="cam3",stream="video_0"} 1
# HELP gst_only_in_conflict_total Only in the conflicting file.
# TYPE gst_only_in_conflict_total counter
gst_only_in_conflict_total 4
"#;

#[test]
fn sidecar_merges_fresh_files_and_drops_bad_and_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.prom"), A).unwrap();
    std::fs::write(d.join("b.prom"), B).unwrap();
    std::fs::write(d.join("bad.prom"), BAD).unwrap();
    std::fs::write(d.join("old.prom"), STALE).unwrap();
    age(&d.join("old.prom"), 600);
    std::fs::write(d.join("z-conflict.prom"), CONFLICT).unwrap();
    // Not textfiles: hidden, temporary, other extension.
    std::fs::write(d.join(".hidden.prom"), "gst_hidden_total 1\n").unwrap();
    std::fs::write(d.join(".a.prom.1.2.tmp"), "gst_tmp_total 1\n").unwrap();
    std::fs::write(d.join("notes.txt"), "gst_notes_total 1\n").unwrap();
    // The in-process writer's real output is read too.
    gstbroadcast_exporter::counter_vec("gst_sidecar_writer_total", "Written by the library.")
        .with_label_values(&["w", "e", "s"])
        .inc();
    gstbroadcast_exporter::write_textfile_now(&d.join("gst-broadcast-1.prom")).unwrap();

    let sc = spawn(d, "1m");
    assert!(sc.addr.ip().is_loopback());

    let r = get(sc.addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = &r.body;
    println!("{body}");
    // One header per family, samples of both files under it.
    assert_eq!(
        count(body, "# TYPE gst_stream_frames_total counter\n"),
        1,
        "{body}"
    );
    assert_eq!(count(body, "# HELP gst_stream_frames_total "), 1, "{body}");
    assert_eq!(
        count(body, "# TYPE gst_stream_gop_interval_seconds histogram\n"),
        1
    );
    let frames = "# HELP gst_stream_frames_total Frames seen on the stream.\n\
        # TYPE gst_stream_frames_total counter\n\
        gst_stream_frames_total{element=\"probe\",pipeline=\"cam1\",stream=\"video_0\"} 100\n\
        gst_stream_frames_total{element=\"probe\",pipeline=\"cam2\",stream=\"video_0\"} 200\n";
    assert!(body.contains(frames), "{body}");
    assert!(body.contains("gst_stream_gop_interval_seconds_count{element=\"probe\",pipeline=\"cam2\",stream=\"video_0\"} 1\n"));
    assert!(body.contains("gst_only_in_second_total{"));
    assert!(
        body.contains("gst_sidecar_writer_total{element=\"e\",pipeline=\"w\",stream=\"s\"} 1\n")
    );
    // The conflicting file lost only its conflicting family.
    assert!(!body.contains("cam3"), "{body}");
    assert!(body.contains("gst_only_in_conflict_total 4\n"));
    // Malformed: nothing of it. Stale: nothing of it. Non-textfiles ignored.
    for absent in [
        "gst_only_in_bad_total",
        "pipeline=\"bad\"",
        "pipeline=\"gone\"",
        "gst_only_in_stale_total",
        "gst_hidden_total",
        "gst_tmp_total",
        "gst_notes_total",
    ] {
        assert!(!body.contains(absent), "{absent} in\n{body}");
    }
    // Own metrics.
    assert_eq!(sample(body, "gst_exporter_textfiles"), Some(4.0)); // a, b, writer, conflict
    assert_eq!(sample(body, "gst_exporter_textfiles_stale"), Some(1.0));
    assert_eq!(
        sample(body, "gst_exporter_textfile_parse_errors_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(body, "gst_exporter_textfile_conflicts_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(body, "gst_exporter_textfile_read_errors_total"),
        Some(0.0)
    );
    let took = sample(body, "gst_exporter_scrape_duration_seconds").unwrap();
    assert!(took > 0.0 && took < 1.0, "{took}");

    let (ok, output) = promtool_check(body);
    println!("promtool output: {output:?}");
    assert!(ok, "promtool failed: {output}");
    assert_eq!(output, "", "promtool complained");

    // Same HTTP rules as in process.
    assert_eq!(get(sc.addr, "/healthz").body, "ok\n");
    assert_eq!(request(sc.addr, "POST", "/metrics").status, 405);
    assert_eq!(get(sc.addr, "/nope").status, 404);

    // A file removed and a file gone stale leave the output.
    std::fs::remove_file(d.join("b.prom")).unwrap();
    age(&d.join("a.prom"), 120);
    let body = get(sc.addr, "/metrics").body;
    for absent in [
        "pipeline=\"cam1\"",
        "pipeline=\"cam2\"",
        "gst_only_in_second_total",
        "gst_stream_frames_total",
        "gst_stream_gop_interval_seconds_bucket",
    ] {
        assert!(!body.contains(absent), "{absent} in\n{body}");
    }
    assert_eq!(sample(&body, "gst_exporter_textfiles"), Some(2.0));
    assert_eq!(sample(&body, "gst_exporter_textfiles_stale"), Some(2.0));
    // The conflicting family is now the only one of its name.
    assert!(
        body.contains("# TYPE gst_stream_gop_interval_seconds gauge\ngst_stream_gop_interval_seconds{element=\"probe\",pipeline=\"cam3\",stream=\"video_0\"} 1\n"),
        "{body}"
    );
    // Counted again: the malformed file is still there.
    assert_eq!(
        sample(&body, "gst_exporter_textfile_parse_errors_total"),
        Some(2.0)
    );
    let (ok, output) = promtool_check(&body);
    assert!(ok && output.is_empty(), "promtool: {output}");

    // Fixing the malformed file brings its series in.
    std::fs::write(d.join("bad.prom"), &BAD[..BAD.rfind("gst_stream").unwrap()]).unwrap();
    let body = get(sc.addr, "/metrics").body;
    assert!(body.contains("gst_only_in_bad_total{element=\"e\",pipeline=\"bad\",stream=\"s\"} 1\n"));
    assert_eq!(
        sample(&body, "gst_exporter_textfile_parse_errors_total"),
        Some(2.0)
    );
}

#[test]
fn sidecar_cli() {
    let out = Command::new(EXE).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--listen-address",
        "--textfile-dir",
        "--stale-after",
        "127.0.0.1:9465",
        "30s",
    ] {
        assert!(help.contains(opt), "{opt} missing from\n{help}");
    }

    let out = Command::new(EXE).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--textfile-dir"));

    let out = Command::new(EXE)
        .args(["--textfile-dir", "/tmp", "--stale-after", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration"));

    // An address in use: a clear message and a failure exit.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(EXE)
        .args(["--textfile-dir", "/tmp", "--listen-address", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}: ")), "{err}");
}
