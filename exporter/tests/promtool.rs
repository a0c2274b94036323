//! `promtool check metrics` accepts a scrape of the in-process endpoint.

mod common;

use common::{get, promtool_check};
use gstbroadcast_exporter::{counter_vec, gauge_vec, histogram_vec, start_http};

#[test]
fn promtool_accepts_in_process_scrape() {
    let frames = counter_vec("gst_stream_frames_total", "Frames seen on the stream.");
    let bytes = counter_vec("gst_stream_bytes_total", "Bytes seen on the stream.");
    let level = gauge_vec("gst_test_queue_level_bytes", "Bytes queued.");
    let gop = histogram_vec(
        "gst_stream_gop_interval_seconds",
        "Keyframe-to-keyframe interval, in seconds.",
        vec![0.5, 1.0, 2.0, 4.0, 8.0],
    );
    for (pipeline, stream) in [
        ("ladder", "video_0"),
        ("ladder", "audio_0"),
        ("x\"y\\z", "s\n2"),
    ] {
        frames
            .with_label_values(&[pipeline, "probe", stream])
            .inc_by(250);
        bytes
            .with_label_values(&[pipeline, "probe", stream])
            .inc_by(1 << 20);
        level.with_label_values(&[pipeline, "q", stream]).set(4096);
        for v in [0.9, 2.0, 2.1, 10.0] {
            gop.with_label_values(&[pipeline, "probe", stream])
                .observe(v);
        }
    }
    let addr = start_http("127.0.0.1:0".parse().unwrap()).unwrap();
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .body
        .contains("# TYPE gst_stream_gop_interval_seconds histogram\n"));
    assert!(r.body.contains(
        "gst_stream_gop_interval_seconds_bucket{element=\"probe\",pipeline=\"ladder\",stream=\"video_0\",le=\"+Inf\"} 4\n"
    ));
    let (ok, output) = promtool_check(&r.body);
    println!("promtool output: {output:?}");
    assert!(ok, "promtool failed: {output}\n--- scrape:\n{}", r.body);
    assert_eq!(output, "", "promtool complained about:\n{}", r.body);
}
