//! `streammetrics` against sources whose GOP, drops and arrival jitter are
//! known, checked through the `stats` property and the Prometheus registry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use gst::prelude::*;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gststreammetrics::plugin_register_static().expect("plugin registers");
    });
}

/// Runs `pipeline` to EOS and returns the `stats` of the element named `m`
/// (read before shutdown) and the registry text at EOS.
fn run_to_eos(pipeline: &gst::Pipeline) -> (gst::Structure, String) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS or error");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    let stats = pipeline
        .by_name("m")
        .unwrap()
        .property::<gst::Structure>("stats");
    let text = gstbroadcast_exporter::render_text();
    pipeline.set_state(gst::State::Null).unwrap();
    (stats, text)
}

#[test]
fn gop_interval_of_key_int_30_at_30_fps_is_one_second() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=300 ! video/x-raw,format=I420,width=160,height=90,framerate=30/1 ! \
         x264enc key-int-max=30 option-string=scenecut=0 ! h264parse ! \
         streammetrics name=m stream-name=gop-test ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let (stats, _) = run_to_eos(&pipeline);
    let mean = stats.get::<f64>("gop-interval-mean").unwrap();
    assert!((mean - 1.0).abs() < 0.001, "GOP interval mean {mean} s");
    assert_eq!(stats.get::<u64>("gop-count").unwrap(), 9);
    assert_eq!(stats.get::<u64>("gop-length").unwrap(), 30);
    assert_eq!(stats.get::<u64>("frames").unwrap(), 300);
    assert_eq!(stats.get::<u64>("keyframes").unwrap(), 10);
    assert_eq!(stats.get::<u64>("frames-dropped").unwrap(), 0);
}

#[test]
fn every_20th_frame_removed_is_counted_as_dropped() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=210 ! video/x-raw,format=I420,width=160,height=90,framerate=30/1 ! \
         identity name=dropper ! x264enc key-int-max=30 ! h264parse ! \
         streammetrics name=m stream-name=drop-test ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    // Remove every 20th raw frame before the encoder: the encoded stream
    // has PTS gaps of two frame durations there.
    let removed = Arc::new(AtomicU64::new(0));
    let seen = AtomicU64::new(0);
    let r = removed.clone();
    let pad = pipeline
        .by_name("dropper")
        .unwrap()
        .static_pad("src")
        .unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        if (seen.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(20) {
            r.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Drop
        } else {
            gst::PadProbeReturn::Ok
        }
    });
    let (stats, _) = run_to_eos(&pipeline);
    assert_eq!(removed.load(Ordering::SeqCst), 10);
    assert_eq!(stats.get::<u64>("frames-dropped").unwrap(), 10, "{stats}");
    assert_eq!(stats.get::<u64>("frames").unwrap(), 200);
}

#[test]
fn jitter_follows_rfc_3550_for_a_known_arrival_pattern() {
    init();
    let pipeline = gst::parse::launch(
        "appsrc name=src is-live=true format=time \
         caps=video/x-h264,stream-format=byte-stream,alignment=au,framerate=50/1 ! \
         streammetrics name=m stream-name=jitter-test ! fakesink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline.by_name("src").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    pipeline.state(gst::ClockTime::from_seconds(5)).0.unwrap();
    let clock = pipeline.clock().unwrap();
    let base = pipeline.base_time().unwrap();

    // 20 ms frames; arrivals late by a repeating pattern of 0..12 ms.
    let pattern_ms = [0u64, 4, 12, 2, 8, 0, 10, 6];
    let frame = Duration::from_millis(20);
    let start = Duration::from_millis(100);
    let mut expected = 0f64;
    let mut last_transit: Option<f64> = None;
    for i in 0..120u64 {
        let pts = start + frame * i as u32;
        let target = pts + Duration::from_millis(pattern_ms[i as usize % pattern_ms.len()]);
        loop {
            let now = Duration::from_nanos((clock.time() - base).nseconds());
            if now >= target {
                break;
            }
            std::thread::sleep((target - now).min(Duration::from_millis(2)));
        }
        let mut buf = gst::Buffer::from_slice([0u8, 0, 0, 1, 0x65, 0x88]);
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
        let arrival = (clock.time() - base).nseconds() as f64 / 1e9;
        push(&src, buf);
        // The test's own RFC 3550 6.4.1 estimate from the same arrivals.
        let transit = arrival - pts.as_secs_f64();
        if let Some(last) = last_transit {
            expected += ((transit - last).abs() - expected) / 16.0;
        }
        last_transit = Some(transit);
    }
    std::thread::sleep(Duration::from_millis(50));
    let stats = pipeline
        .by_name("m")
        .unwrap()
        .property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    let jitter = stats.get::<f64>("jitter").unwrap();
    assert!(expected > 0.002, "pattern too small: {expected}");
    assert!(
        (jitter - expected).abs() <= 0.1 * expected,
        "jitter {jitter} s, RFC 3550 expects {expected} s"
    );
}

#[test]
fn series_are_exported_with_labels_and_leave_when_the_stream_ends() {
    init();
    let pipeline = gst::Pipeline::with_name("labelpipe");
    let bin = gst::parse::bin_from_description(
        "videotestsrc num-buffers=60 ! video/x-raw,format=I420,width=160,height=90,framerate=30/1 ! \
         x264enc key-int-max=30 ! h264parse ! streammetrics name=m stream-name=labels-test ! \
         fakesink",
        false,
    )
    .unwrap();
    pipeline.add(&bin).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    // While it runs, the registry holds the series.
    let mut seen = String::new();
    for _ in 0..200 {
        let text = gstbroadcast_exporter::render_text();
        if text.contains(r#"stream="labels-test""#) {
            seen = text;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (_, after) = run_to_eos(&pipeline);
    assert!(
        seen.contains(
            r#"gst_stream_frames_total{element="m",pipeline="labelpipe",stream="labels-test"}"#
        ),
        "{seen}"
    );
    assert!(
        !after.contains(r#"stream="labels-test""#),
        "series left after EOS: {after}"
    );
}

/// Pushes `buf` into an appsrc through its signal (no gstreamer-app
/// dependency for one test).
fn push(appsrc: &gst::Element, buf: gst::Buffer) {
    let ret = appsrc.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buf]);
    assert_eq!(ret, gst::FlowReturn::Ok);
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn listen_address_serves_the_registry_over_http() {
    init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,format=I420,width=160,height=90,framerate=30/1 ! \
         x264enc key-int-max=30 tune=zerolatency ! h264parse ! \
         streammetrics name=m stream-name=http-test listen-address=127.0.0.1:{port} ! fakesink"
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let reply = http_get(port, "/metrics");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200"),
        "{reply}"
    );
    assert!(reply.contains(r#"stream="http-test""#), "{reply}");
    assert!(
        reply.contains("gst_stream_gop_interval_seconds_bucket"),
        "{reply}"
    );
    assert!(http_get(port, "/healthz").contains("200"));
}

#[test]
fn a_bad_listen_address_is_an_error_naming_it() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=1 ! streammetrics name=m listen-address=not-an-address ! fakesink",
    )
    .unwrap();
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error");
    pipeline.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(
        e.error().to_string().contains("not-an-address"),
        "{}",
        e.error()
    );
}
