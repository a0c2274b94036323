//! Element tests of `hlsladdersink`: bad input, bus messages, the cut policy
//! (overruns, misaligned keyframes) and discontinuities, with real encoders.

use std::path::Path;
use std::sync::Once;

use gst::prelude::*;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gsthlsladder::plugin_register_static().expect("plugin registers");
    });
}

struct Run {
    errors: Vec<String>,
    warnings: Vec<String>,
    segments: Vec<gst::Structure>,
    stats: gst::Structure,
    /// The process's metrics text while the pipeline still ran.
    metrics: String,
    state_change_failed: bool,
}

/// Runs `desc` until EOS or error (60 s at most) and collects what it posted.
fn run(desc: &str) -> Run {
    run_named(desc, "pipeline")
}

/// [`run`] with the top-level pipeline named `name` (its metrics label).
fn run_named(desc: &str, name: &str) -> Run {
    init();
    let pipeline = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.set_property("name", name);
    let sink = pipeline.by_name("s").expect("sink named s");
    let bus = pipeline.bus().unwrap();
    let mut run = Run {
        errors: vec![],
        warnings: vec![],
        segments: vec![],
        stats: gst::Structure::new_empty("none"),
        metrics: String::new(),
        state_change_failed: pipeline.set_state(gst::State::Playing).is_err(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(60)) {
        use gst::MessageView;
        let text = |e: &glib::Error, d: Option<glib::GString>| {
            format!("{} ({})", e, d.map(|d| d.to_string()).unwrap_or_default())
        };
        match msg.view() {
            MessageView::Eos(_) => break,
            MessageView::Error(e) => {
                run.errors.push(text(&e.error(), e.debug()));
                break;
            }
            MessageView::Warning(w) => run.warnings.push(text(&w.error(), w.debug())),
            MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    if s.name() == "hlsladdersink-segment" {
                        run.segments.push(s.to_owned());
                    }
                }
            }
            _ => {}
        }
        if std::time::Instant::now() > deadline {
            panic!("pipeline did not finish: {desc}");
        }
    }
    run.stats = sink.property::<gst::Structure>("stats");
    run.metrics = gstbroadcast_exporter::render_local_text();
    pipeline.set_state(gst::State::Null).unwrap();
    run
}

use gst::glib;

const SRC: &str =
    "videotestsrc num-buffers=180 ! video/x-raw,format=I420,width=320,height=180,framerate=30/1";

fn playlist(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("v0/index.m3u8")).unwrap()
}

#[test]
fn missing_output_directory_is_created_with_its_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a/b/hls-out");
    let desc = format!(
        "{SRC} ! x264enc key-int-max=30 ! h264parse ! hlsladdersink name=s target-duration=2 output-directory={}",
        out.display()
    );
    let r = run(&desc);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let pl = playlist(&out);
    assert_eq!(pl.matches("#EXTINF:2.000,").count(), 3, "{pl}");
    assert!(out.join("index.m3u8").exists());
}

#[test]
fn uncreatable_output_directory_is_an_error_naming_the_path() {
    // A directory below a plain file cannot be created.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let dir = file.join("hls-out");
    let desc = format!(
        "{SRC} ! x264enc ! h264parse ! hlsladdersink name=s output-directory={}",
        dir.display()
    );
    let r = run(&desc);
    assert!(r.state_change_failed);
    let e = r.errors.join("\n");
    assert!(
        e.contains(&dir.display().to_string()) && e.contains("cannot be created"),
        "{e}"
    );
}

#[test]
fn output_directory_that_is_a_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let desc = format!(
        "{SRC} ! x264enc ! h264parse ! hlsladdersink name=s output-directory={}",
        file.display()
    );
    let r = run(&desc);
    let e = r.errors.join("\n");
    assert!(
        e.contains(&file.display().to_string()) && e.contains("not a directory"),
        "{e}"
    );
}

#[test]
fn unwritable_output_directory_is_an_error_with_the_os_error() {
    // /proc refuses new files even to root.
    let desc = format!("{SRC} ! x264enc ! h264parse ! hlsladdersink name=s output-directory=/proc");
    let r = run(&desc);
    let e = r.errors.join("\n");
    assert!(
        e.contains("/proc is not writable") && e.contains("os error"),
        "{e}"
    );
}

#[test]
fn unsupported_caps_are_refused_with_a_message_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    // NAL-aligned H.264 is not an access unit per buffer.
    let desc = format!(
        "{SRC} ! x264enc ! h264parse ! video/x-h264,alignment=nal ! hlsladdersink name=s output-directory={}",
        tmp.path().display()
    );
    init();
    // gst-launch cannot even link these: the link itself names the caps.
    assert!(gst::parse::launch(&desc).is_err());

    // An appsrc announcing them gets a warning naming the caps, then fails
    // negotiation, and nothing is written.
    let desc = format!(
        "appsrc name=src num-buffers=1 caps=video/x-h264,stream-format=byte-stream,alignment=nal ! \
         hlsladdersink name=s output-directory={}",
        tmp.path().display()
    );
    init();
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline.by_name("src").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let buf = gst::Buffer::from_slice([0u8, 0, 0, 1, 0x65, 0x88]);
    let _ = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buf]);
    let bus = pipeline.bus().unwrap();
    let mut warnings = String::new();
    let mut failed = false;
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(10)) {
        match msg.view() {
            gst::MessageView::Warning(w) => warnings += &w.error().to_string(),
            gst::MessageView::Error(_) => {
                failed = true;
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(failed, "negotiation must fail");
    assert!(
        warnings.contains("refuses caps video/x-h264")
            && warnings.contains("alignment=(string)nal"),
        "{warnings}"
    );
    assert!(!tmp.path().join("index.m3u8").exists());
    assert!(!tmp.path().join("v0/index.m3u8").exists());
}

#[test]
fn avc_without_codec_data_is_an_error_naming_the_caps() {
    let tmp = tempfile::tempdir().unwrap();
    let desc = format!(
        "appsrc name=src num-buffers=1 caps=video/x-h264,stream-format=avc,alignment=au ! \
         hlsladdersink name=s output-directory={}",
        tmp.path().display()
    );
    init();
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline.by_name("src").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ =
        src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&gst::Buffer::from_slice([0u8; 8])]);
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error");
    pipeline.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    assert!(
        text.contains("stream-format=(string)avc") && text.contains("needs codec_data"),
        "{text}"
    );
    assert!(!tmp.path().join("v0/index.m3u8").exists());
}

#[test]
fn one_bus_message_per_segment_describes_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let desc = format!(
        "{SRC} ! tee name=t t. ! queue ! x264enc key-int-max=30 ! h264parse ! s.video_0 \
         t. ! queue ! videoscale ! video/x-raw,width=160,height=90 ! x264enc key-int-max=30 ! h264parse ! s.video_1 \
         hlsladdersink name=s target-duration=2 playlist-type=event output-directory={}",
        tmp.path().display()
    );
    let r = run(&desc);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.segments.len(), 6, "3 segments of 2 s per variant");
    let mut total = [0u64; 2];
    for s in &r.segments {
        let variant = s.get::<String>("variant").unwrap();
        let location = s.get::<String>("location").unwrap();
        let size = s.get::<u64>("size").unwrap();
        let duration = s.get::<gst::ClockTime>("duration").unwrap();
        assert_eq!(std::fs::metadata(&location).unwrap().len(), size);
        assert!(location.contains(&format!("/{variant}/segment")));
        total[(variant == "v1") as usize] += duration.nseconds();
        s.get::<gst::ClockTime>("running-time").unwrap();
    }
    for t in total {
        assert!(t.abs_diff(6_000_000_000) < 1_000_000, "{total:?}");
    }
    assert_eq!(r.stats.get::<u64>("segments-written").unwrap(), 6);
    assert!(playlist(tmp.path()).contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
}

/// Encodes `seconds` of video with a fixed GOP into Matroska, so that a
/// later pipeline's force-key-unit requests cannot change its keyframes.
fn encode_fixed_gop(path: &Path, gop_frames: u32, seconds: u32, width: u32) {
    let desc = format!(
        "videotestsrc num-buffers={} ! video/x-raw,format=I420,width={width},height=90,framerate=30/1 ! \
         x264enc key-int-max={gop_frames} option-string=scenecut=0:min-keyint={gop_frames} ! h264parse ! \
         matroskamux ! filesink name=s location={}",
        seconds * 30,
        path.display()
    );
    init();
    let p = gst::parse::launch(&desc).unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)));
    p.set_state(gst::State::Null).unwrap();
}

/// Segments a Matroska file of `seconds` of video with a fixed GOP of
/// `gop_frames` (30 fps) into a vod playlist with a 2 s target duration;
/// returns the run and the media playlist text.
fn segment_fixed_gop(gop_frames: u32, seconds: u32) -> (Run, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mkv = tmp.path().join("fixed-gop.mkv");
    encode_fixed_gop(&mkv, gop_frames, seconds, 160);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let desc = format!(
        "filesrc location={} ! matroskademux ! h264parse ! s.video_0 \
         hlsladdersink name=s target-duration=2 playlist-type=vod output-directory={}",
        mkv.display(),
        out.display()
    );
    let r = run(&desc);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let pl = playlist(&out);
    (r, pl)
}

#[test]
fn a_gop_longer_than_the_target_is_an_overrun_warning_and_counter() {
    let (r, pl) = segment_fixed_gop(150, 10);
    let w = r.warnings.join("\n");
    assert!(w.contains("above target-duration 2 s"), "{w}");
    assert_eq!(r.stats.get::<u64>("target-duration-overruns").unwrap(), 2);
    // Never cut without a keyframe: two 5 s segments.
    assert_eq!(pl.matches("#EXTINF:5.000,").count(), 2, "{pl}");
}

#[test]
fn a_late_keyframe_cuts_early_at_the_last_keyframe_inside_the_target() {
    // GOP 1.5 s, target 2 s: the keyframe at 3 s would give a 3 s segment,
    // so the segment is cut at 1.5 s instead.
    let (r, pl) = segment_fixed_gop(45, 9);
    assert_eq!(
        r.stats.get::<u64>("target-duration-overruns").unwrap(),
        0,
        "{:?}",
        r.warnings
    );
    assert_eq!(pl.matches("#EXTINF:1.500,").count(), 6, "{pl}");
}

#[test]
fn misaligned_variant_keyframes_are_warned_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.mkv");
    let b = tmp.path().join("b.mkv");
    encode_fixed_gop(&a, 30, 8, 160);
    encode_fixed_gop(&b, 45, 8, 128);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let desc = format!(
        "filesrc location={} ! matroskademux ! h264parse ! s.video_0 \
         filesrc location={} ! matroskademux ! h264parse ! s.video_1 \
         hlsladdersink name=s target-duration=2 playlist-type=vod output-directory={}",
        a.display(),
        b.display(),
        out.display()
    );
    let r = run(&desc);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let w = r.warnings.join("\n");
    assert!(w.contains("Variant v1 has no keyframe at the cut"), "{w}");
    assert!(r.stats.get::<u64>("keyframe-misalignments").unwrap() >= 1);
    // Both variants still start every segment with a keyframe: v1's
    // segments begin at its own keyframes (0, 3, 4.5, 6 s).
    let v1 = std::fs::read_to_string(out.join("v1/index.m3u8")).unwrap();
    assert!(v1.contains("#EXT-X-ENDLIST"));
}

/// Runs 8 s of video through a probe that shifts all timestamps 100 s
/// forward from the first buffer at or after 4 s (`on_keyframe`: from the
/// first keyframe at or after 4 s, as a restarting source would), and
/// returns the media playlist and the EXTINF values.
fn run_with_jump(on_keyframe: bool) -> (String, Vec<f32>) {
    init();
    let tmp = tempfile::tempdir().unwrap();
    let desc = format!(
        "videotestsrc num-buffers=240 ! video/x-raw,format=I420,width=160,height=90,framerate=30/1 ! \
         x264enc key-int-max=30 bframes=0 ! h264parse ! identity name=jump ! s.video_0 \
         hlsladdersink name=s target-duration=2 playlist-type=event output-directory={}",
        tmp.path().display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let pad = pipeline.by_name("jump").unwrap().static_pad("src").unwrap();
    let state = std::sync::Mutex::new((None, false));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = info.data.as_mut() {
            let t = buf.pts().unwrap();
            let mut st = state.lock().unwrap();
            let first = *st.0.get_or_insert(t);
            let key = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
            if t >= first + gst::ClockTime::from_mseconds(4100) && (key || !on_keyframe) {
                st.1 = true;
            }
            if st.1 {
                let b = buf.make_mut();
                let shift = gst::ClockTime::from_seconds(100);
                b.set_pts(b.pts().map(|t| t + shift));
                b.set_dts(b.dts().map(|t| t + shift));
            }
        }
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    let pl = playlist(tmp.path());
    let durations: Vec<f32> = pl
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().unwrap())
        .collect();
    for seg in std::fs::read_dir(tmp.path().join("v0")).unwrap().flatten() {
        if seg.path().extension().is_some_and(|e| e == "ts") {
            let out = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-i"])
                .arg(seg.path())
                .args(["-f", "null", "-"])
                .output()
                .unwrap();
            assert!(
                out.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    (pl, durations)
}

#[test]
fn a_timestamp_jump_at_a_keyframe_starts_a_discontinuity() {
    let (pl, durations) = run_with_jump(true);
    assert_eq!(pl.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{pl}");
    // Keyframes every second: the jump lands on the keyframe at 5 s, so
    // 2 + 2 + 1 s precede the discontinuity.
    let total: f32 = durations.iter().sum();
    assert!((total - 8.0).abs() < 0.05, "{durations:?}");
    assert!(durations.iter().all(|&d| d <= 2.0), "{durations:?}");
    let before: Vec<&str> = pl.split("#EXT-X-DISCONTINUITY\n").collect();
    assert_eq!(before[0].matches("#EXTINF").count(), 3, "{pl}");
}

#[test]
fn a_timestamp_jump_inside_a_gop_does_not_inflate_extinf() {
    let (pl, durations) = run_with_jump(false);
    assert_eq!(pl.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{pl}");
    let total: f32 = durations.iter().sum();
    assert!((total - 8.0).abs() < 0.05, "{durations:?}");
    assert!(durations.iter().all(|&d| d <= 2.5), "{durations:?}");
}

/// ffmpeg's complaints about decoding `file` (empty when clean).
fn ffmpeg_errors(file: &Path) -> String {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `video` and `audio` branches into the sink and checks that every
/// segment decodes, starts with a keyframe and that CODECS is `codecs`.
fn check_input_format(video: &str, audio: &str, codecs_prefix: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let desc = format!(
        "{video} ! s.video_0 {audio} ! s.audio_0 \
         hlsladdersink name=s target-duration=2 playlist-type=vod output-directory={}",
        tmp.path().display()
    );
    let r = run(&desc);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.segments.len(), 3, "{desc}");
    for s in &r.segments {
        let location = s.get::<String>("location").unwrap();
        let errors = ffmpeg_errors(Path::new(&location));
        assert!(errors.is_empty(), "{location}: {errors}");
        let probe = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "csv=p=0",
                &location,
            ])
            .output()
            .unwrap();
        let kinds = String::from_utf8_lossy(&probe.stdout).to_string();
        assert!(
            kinds.contains("video") && kinds.contains("audio"),
            "{location}: {kinds}"
        );
    }
    let master = std::fs::read_to_string(tmp.path().join("index.m3u8")).unwrap();
    assert!(
        master.contains(&format!("CODECS=\"{codecs_prefix}")),
        "{master}"
    );
}

const AUDIO_ADTS: &str =
    "audiotestsrc num-buffers=282 samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! avenc_aac ! aacparse";

#[test]
fn avc_stream_format_and_raw_aac_are_converted_for_mpeg_ts() {
    // Length-prefixed H.264 with parameter sets only in codec_data, and raw
    // AAC with an AudioSpecificConfig: both need rewriting for MPEG-TS.
    check_input_format(
        &format!("{SRC} ! x264enc key-int-max=30 ! h264parse ! video/x-h264,stream-format=avc"),
        &format!("{AUDIO_ADTS} ! audio/mpeg,stream-format=raw"),
        "avc1.",
    );
}

#[test]
fn h265_byte_stream_is_segmented() {
    check_input_format(
        &format!("{SRC} ! x265enc key-int-max=30 speed-preset=ultrafast ! h265parse ! video/x-h265,stream-format=byte-stream"),
        AUDIO_ADTS,
        "hvc1.",
    );
}

#[test]
fn audio_far_ahead_of_a_slow_video_encoder_is_kept_for_every_segment() {
    // A non-live audio source finishes long before a 720p encoder: its
    // backlog must be held until the video segments that need it are cut.
    let tmp = tempfile::tempdir().unwrap();
    let desc = format!(
        "videotestsrc num-buffers=360 ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! \
         x264enc key-int-max=60 speed-preset=medium ! h264parse ! s.video_0 \
         audiotestsrc num-buffers=563 samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! avenc_aac ! aacparse ! s.audio_0 \
         hlsladdersink name=s target-duration=2 playlist-type=vod output-directory={}",
        tmp.path().display()
    );
    let r = run(&desc);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.segments.len(), 6);
    for s in &r.segments {
        let location = s.get::<String>("location").unwrap();
        let seconds = s.get::<gst::ClockTime>("duration").unwrap().nseconds() as f64 / 1e9;
        let probe = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "a", "-count_packets"])
            .args([
                "-show_entries",
                "stream=nb_read_packets",
                "-of",
                "csv=p=0",
                &location,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&probe.stdout).to_string();
        let frames: f64 = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .and_then(|l| l.parse().ok())
            .unwrap_or(0.0);
        let expected = seconds * 48000.0 / 1024.0;
        assert!(
            (frames - expected).abs() <= 2.0,
            "{location}: {frames} AAC frames for {seconds} s"
        );
    }
}

/// The value of `gst_hls_write_errors_total` for `stream` in `metrics`.
fn write_errors_metric(metrics: &str, stream: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("gst_hls_write_errors_total{")
                && l.contains(&format!("stream=\"{stream}\""))
                && l.contains("pipeline=\"write-errors-")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn failed_playlist_writes_are_errors_counted_in_stats_and_metrics() {
    // The multivariant playlist's name is taken by a directory: the first
    // rename over it fails.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("index.m3u8/blocker")).unwrap();
    let desc = format!(
        "{SRC} ! x264enc key-int-max=30 ! h264parse ! hlsladdersink name=s target-duration=1 output-directory={}",
        tmp.path().display()
    );
    let r = run_named(&desc, "write-errors-live");
    let e = r.errors.join("\n");
    assert!(e.contains("Could not write multivariant playlist"), "{e}");
    assert_eq!(r.stats.get::<u64>("write-errors").unwrap(), 1);
    assert_eq!(
        write_errors_metric(&r.metrics, "multivariant"),
        Some(1),
        "{}",
        r.metrics
    );
    assert_eq!(write_errors_metric(&r.metrics, "v0"), Some(0));

    // A vod playlist is written at EOS: its failure is counted too.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("v0/index.m3u8/blocker")).unwrap();
    let desc = format!(
        "{SRC} ! x264enc key-int-max=30 ! h264parse ! hlsladdersink name=s target-duration=1 playlist-type=vod output-directory={}",
        tmp.path().display()
    );
    let r = run_named(&desc, "write-errors-vod");
    let e = r.errors.join("\n");
    assert!(
        e.contains("Could not write playlist") && e.contains("index.m3u8"),
        "{e}"
    );
    assert_eq!(r.stats.get::<u64>("write-errors").unwrap(), 1);
    assert_eq!(
        write_errors_metric(&r.metrics, "v0"),
        Some(1),
        "{}",
        r.metrics
    );
}

#[test]
fn program_date_time_is_written_unless_disabled() {
    for (enabled, expect) in [(true, 1), (false, 0)] {
        let tmp = tempfile::tempdir().unwrap();
        let desc = format!(
            "{SRC} ! x264enc key-int-max=30 ! h264parse ! hlsladdersink name=s target-duration=1 \
             playlist-type=event program-date-time={enabled} output-directory={}",
            tmp.path().display()
        );
        let r = run(&desc);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let pl = playlist(tmp.path());
        assert_eq!(
            pl.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
            expect,
            "{pl}"
        );
        assert_eq!(
            pl.matches("#EXT-X-DISCONTINUITY-SEQUENCE:0\n").count(),
            1,
            "{pl}"
        );
        let parsed = m3u8_rs::parse_media_playlist_res(pl.as_bytes()).unwrap();
        if enabled {
            let pdt = parsed.segments[0].program_date_time.unwrap();
            let age = age_ms(pdt.timestamp_millis());
            assert!((0..60_000).contains(&age), "PDT {pdt} is {age} ms old");
        }
    }
}

/// How long ago `ms` (since the Unix epoch) was, in ms.
fn age_ms(ms: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now - ms
}

#[test]
fn h265_in_mpeg_ts_warns_that_apple_requires_fmp4() {
    let tmp = tempfile::tempdir().unwrap();
    let desc = format!(
        "{SRC} ! x265enc key-int-max=30 speed-preset=ultrafast ! h265parse ! hlsladdersink name=s target-duration=1 output-directory={}",
        tmp.path().display()
    );
    let r = run(&desc);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let w = r.warnings.join("\n");
    assert!(w.contains("requires fragmented MP4 (CMAF) for HEVC"), "{w}");
}
