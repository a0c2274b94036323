//! The textfile writer.

use std::time::Duration;

use gstbroadcast_exporter::{
    counter_vec, render_text, start_textfile, textfile_name, write_textfile_now,
};

#[test]
fn write_now_and_start_once() {
    let c = counter_vec("gst_textfile_test_total", "Textfile test counter.");
    c.with_label_values(&["p", "e", "s"]).inc_by(3);
    let dir = tempfile::tempdir().unwrap();

    let path = dir.path().join("now.prom");
    write_textfile_now(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), render_text());
    assert!(write_textfile_now(&dir.path().join("missing/x.prom")).is_err());

    let started = start_textfile(dir.path().join("w"), Duration::from_secs(3600)).unwrap();
    assert_eq!(started, dir.path().join("w").join(textfile_name()));
    assert!(std::fs::read_to_string(&started)
        .unwrap()
        .contains("gst_textfile_test_total{element=\"e\",pipeline=\"p\",stream=\"s\"} 3\n"));
    // Once per process: later calls return the running writer's path.
    let again = start_textfile(dir.path().join("other"), Duration::from_secs(1)).unwrap();
    assert_eq!(again, started);
    assert!(!dir.path().join("other").exists());
}
