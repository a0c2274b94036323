//! End-to-end test of `abrselector` on a real x264 ladder: one moving
//! `videotestsrc` teed into three `x264enc` branches (426x240 @ 0.6 Mb/s,
//! 640x360 @ 1.5 Mb/s, 1280x720 @ 3.5 Mb/s, 30 fps, keyframe every 30
//! frames, no B-frames), each `h264parse config-interval=-1 ! abr.sink_i`,
//! and the selector's output through `h264parse ! mpegtsmux ! filesink`.
//!
//! The pipeline is not live; the bandwidth estimate is stepped in running
//! time by a pad probe on the lowest rendition's branch that counts frames
//! and sends the `abr-bandwidth-estimate` custom event downstream at
//! frames 0, 150, 300, 450, 600 (0, 5, 10, 15, 20 s): 5, 1, 3, 0.5, 5 Mb/s.
//!
//! Element settings: `estimator=none` (only these explicit estimates),
//! `max-queue-delay=0` (the threshold rules alone; the queue model is
//! exercised by `abr_traces.rs`),
//! `fast-half-life=0.1 slow-half-life=0.2` (s) so that a step is followed
//! within about 0.7 s of running time, `min-switch-interval=1.5 s` (an
//! upswitch then comes at most ~0.7 + 1.5 + 1 s (next keyframe) after its
//! step, inside the 5 s step), `safety-factor`/`up-factor` at their
//! defaults (read back from the element for the expectations). With
//! 0.85/1.3: initial sink_2 (3.5 <= 0.85 x 5), down to sink_0 at 1 Mb/s
//! (only 0.6 fits 0.85), up to sink_1 at 3 (1.5 x 1.3 <= 3 < 3.5 x 1.3),
//! down to sink_0 at 0.5 (nothing fits: the lowest), up to sink_2 at 5.
//! Observed: switches at 0, 6, 12, 15 or 16, 22 s (a downswitch acts on
//! the latest estimate: it lands on the keyframe at the step when the
//! estimate reaches the element before that keyframe, else on the next; an
//! upswitch after the 1.5 s hold).
//!
//! Checked:
//! - the `abr-switch` messages: (to, reason) as the policy rules give for
//!   each step from the ladder rates and the factors, one switch per step,
//!   each switch's running time inside its step, its estimate consistent
//!   with the rule (down: `from-bitrate > safety * estimate`; up:
//!   `to-bitrate * up <= estimate`);
//! - ffprobe on the output TS: every picture size change is a key frame,
//!   the size segments follow the switches in order and each change lands
//!   within one frame of its switch's running time, and the number of
//!   decoded frames equals the number fed;
//! - `ffmpeg -v error -i out.ts -f null -` prints nothing.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Instant;

use gst::prelude::*;
use gst_broadcast_e2e::{ffmpeg_decode_errors, heavy, plugin_dir};

/// Frames per second of the source.
const FPS: u64 = 30;
/// Frames fed (26 s).
const FRAMES: u64 = 26 * FPS;
/// 1 s in ns.
const SECOND: u64 = 1_000_000_000;
/// Ladder: (width, height, bit rate in bits/s), sink_0.. in this order.
const LADDER: [(u32, u32, u64); 3] = [
    (426, 240, 600_000),
    (640, 360, 1_500_000),
    (1280, 720, 3_500_000),
];
/// Estimate steps: (first frame, bits/s).
const STEPS: [(u64, u64); 5] = [
    (0, 5_000_000),
    (150, 1_000_000),
    (300, 3_000_000),
    (450, 500_000),
    (600, 5_000_000),
];

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst::init");
        let path = plugin_dir().join("libgstabrselector.so");
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --release -p gst-plugin-abrselector` first",
            path.display()
        );
        gst::Plugin::load_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    });
}

/// One `abr-switch` message.
#[derive(Debug, Clone)]
struct Switch {
    to: String,
    reason: String,
    from_bitrate: u64,
    to_bitrate: u64,
    estimate: u64,
    running_time: u64,
}

/// The (to, reason) sequence the policy rules give, one step after another
/// (each step long enough for its decision to take effect).
fn expected_switches(safety: f64, up: f64) -> Vec<(usize, &'static str)> {
    let fit = |e: u64| {
        (0..LADDER.len())
            .rev()
            .find(|&i| LADDER[i].2 as f64 <= safety * e as f64)
            .unwrap_or(0)
    };
    let headroom = |i: usize, e: u64| LADDER[i].2 as f64 * up <= e as f64;
    let mut cur: Option<usize> = None;
    let mut out = Vec::new();
    for &(_, e) in &STEPS {
        match cur {
            None => {
                let t = fit(e);
                out.push((t, "initial"));
                cur = Some(t);
            }
            Some(c) if LADDER[c].2 as f64 > safety * e as f64 => {
                let t = fit(e);
                if t != c {
                    out.push((t, "down"));
                    cur = Some(t);
                }
            }
            Some(c) if c + 1 < LADDER.len() && headroom(c + 1, e) => {
                let t = (c + 1..LADDER.len())
                    .rev()
                    .find(|&i| headroom(i, e))
                    .unwrap();
                out.push((t, "up"));
                cur = Some(t);
            }
            Some(_) => {}
        }
    }
    out
}

/// Decoded video frames of `file`: (key_frame, width, height, pts_time).
fn probe_frames(file: &Path) -> Vec<(bool, u32, u32, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_frames"])
        .args([
            "-show_entries",
            "frame=key_frame,width,height,pts_time",
            "-of",
            "csv=p=0:nk=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut key = None;
            let mut w = None;
            let mut h = None;
            let mut pts = None;
            for kv in l.split(',') {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                match k {
                    "key_frame" => key = Some(v == "1"),
                    "width" => w = v.parse().ok(),
                    "height" => h = v.parse().ok(),
                    "pts_time" => pts = v.parse().ok(),
                    _ => {}
                }
            }
            (
                key.unwrap_or_else(|| panic!("no key_frame in {l:?}")),
                w.unwrap_or_else(|| panic!("no width in {l:?}")),
                h.unwrap_or_else(|| panic!("no height in {l:?}")),
                pts.unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// Plays `pipeline` to EOS (within `timeout_s`) and returns the
/// `abr-switch` messages it posted; an error, or with `warnings_fatal` a
/// warning, fails the test.
fn run_to_eos(pipeline: &gst::Pipeline, timeout_s: u64, warnings_fatal: bool) -> Vec<Switch> {
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut switches = Vec::new();
    let mut eos = false;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(timeout_s)) {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                break;
            }
            gst::MessageView::Error(e) => {
                pipeline.set_state(gst::State::Null).unwrap();
                panic!("error: {} {:?}", e.error(), e.debug());
            }
            gst::MessageView::Warning(w) if warnings_fatal => {
                pipeline.set_state(gst::State::Null).unwrap();
                panic!("warning: {} {:?}", w.error(), w.debug());
            }
            gst::MessageView::Element(e) => {
                let s = e.structure().unwrap();
                if s.name() == "abr-switch" {
                    switches.push(Switch {
                        to: s.get::<String>("to").unwrap(),
                        reason: s.get::<String>("reason").unwrap(),
                        from_bitrate: s.get::<u64>("from-bitrate").unwrap(),
                        to_bitrate: s.get::<u64>("to-bitrate").unwrap(),
                        estimate: s.get::<u64>("estimate").unwrap(),
                        running_time: s.get::<u64>("running-time").unwrap(),
                    });
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        eos,
        "no EOS within {timeout_s} s; switches so far: {switches:?}"
    );
    switches
}

#[test]
fn ladder_follows_estimate_steps_on_keyframes() {
    let _heavy = heavy();
    init();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ts");

    let (top_w, top_h, _) = LADDER[LADDER.len() - 1];
    let mut desc = format!(
        "videotestsrc num-buffers={FRAMES} pattern=ball ! \
         video/x-raw,format=I420,width={top_w},height={top_h},framerate={FPS}/1 ! tee name=t "
    );
    let mut pad_props = String::new();
    for (i, (w, h, bps)) in LADDER.iter().enumerate() {
        desc += &format!(
            "t. ! queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! videoscale ! \
             video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
             x264enc bitrate={kbps} key-int-max=30 bframes=0 tune=zerolatency speed-preset=ultrafast ! \
             h264parse config-interval=-1 name=parse{i} ! abr.sink_{i} ",
            kbps = bps / 1000,
        );
        pad_props += &format!("sink_{i}::bitrate={bps} ");
    }
    desc += &format!(
        "abrselector name=abr estimator=none max-queue-delay=0 fast-half-life=0.1 \
         slow-half-life=0.2 min-switch-interval={msi} {pad_props} ! \
         h264parse ! mpegtsmux ! filesink location={out}",
        msi = 3 * SECOND / 2,
        out = file.display(),
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let abr = pipeline.by_name("abr").unwrap();
    let safety = abr.property::<f64>("safety-factor");
    let up = abr.property::<f64>("up-factor");

    // Estimate steps, in-band on the lowest rendition's stream, by frame
    // count (running time n/30 s).
    let count = AtomicU64::new(0);
    pipeline
        .by_name("parse0")
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            if let Some(&(_, bps)) = STEPS.iter().find(|s| s.0 == n) {
                pad.push_event(gst::event::CustomDownstream::new(
                    gst::Structure::builder("abr-bandwidth-estimate")
                        .field("bitrate", bps)
                        .build(),
                ));
            }
            gst::PadProbeReturn::Ok
        });

    let switches = run_to_eos(&pipeline, 120, true);
    let pipeline_s = started.elapsed().as_secs_f64();

    // Decoded output.
    let frames = probe_frames(&file);
    let mut segments: Vec<(usize, u32, u32)> = Vec::new(); // (first frame, w, h)
    for (n, f) in frames.iter().enumerate() {
        if segments.last().is_none_or(|s| (s.1, s.2) != (f.1, f.2)) {
            segments.push((n, f.1, f.2));
        }
    }

    // Report.
    println!(
        "abrselector e2e: ladder {LADDER:?}, safety-factor {safety}, up-factor {up}, \
         steps (frame, bit/s) {STEPS:?}"
    );
    for s in &switches {
        println!(
            "  switch {:>7} -> {:<6} at {:>7.3} s (frame {:>3}), estimate {:>8} bit/s",
            s.reason,
            s.to,
            s.running_time as f64 / SECOND as f64,
            s.running_time as f64 * FPS as f64 / SECOND as f64,
            s.estimate
        );
    }
    for (i, (n, w, h)) in segments.iter().enumerate() {
        let end = segments.get(i + 1).map_or(frames.len(), |s| s.0);
        println!(
            "  size {w}x{h}: frames {n}..{end} ({:.3} s .. {:.3} s)",
            *n as f64 / FPS as f64,
            end as f64 / FPS as f64
        );
    }
    println!(
        "  {} frames decoded; pipeline {pipeline_s:.1} s",
        frames.len()
    );

    // The switch sequence follows the steps.
    let expect = expected_switches(safety, up);
    let got: Vec<(String, String)> = switches
        .iter()
        .map(|s| (s.to.clone(), s.reason.clone()))
        .collect();
    let want: Vec<(String, String)> = expect
        .iter()
        .map(|(i, r)| (format!("sink_{i}"), r.to_string()))
        .collect();
    assert_eq!(got, want, "{switches:#?}");
    // This ladder and these steps give one switch per step.
    assert_eq!(switches.len(), STEPS.len(), "{switches:#?}");
    for (k, s) in switches.iter().enumerate() {
        let step_start = STEPS[k].0 * SECOND / FPS;
        let step_end = STEPS
            .get(k + 1)
            .map_or(FRAMES * SECOND / FPS, |n| n.0 * SECOND / FPS);
        assert!(
            (step_start..step_end).contains(&s.running_time),
            "switch {k} at {} ns outside its step {step_start}..{step_end}: {switches:#?}",
            s.running_time
        );
        // On a frame boundary of the 30 fps source.
        let frame = (s.running_time as f64 * FPS as f64 / SECOND as f64).round();
        assert!(
            (s.running_time as f64 - frame * SECOND as f64 / FPS as f64).abs() < 1e6,
            "switch {k} running time {} is not on a frame",
            s.running_time
        );
        let to = LADDER[expect[k].0].2;
        assert_eq!(s.to_bitrate, to, "{s:?}");
        match s.reason.as_str() {
            "initial" => assert_eq!(s.from_bitrate, 0, "{s:?}"),
            "down" => assert!(
                s.from_bitrate as f64 > safety * s.estimate as f64
                    && (to as f64 <= safety * s.estimate as f64 || expect[k].0 == 0),
                "down switch not justified by its estimate: {s:?}"
            ),
            "up" => assert!(
                to as f64 * up <= s.estimate as f64,
                "up switch without headroom: {s:?}"
            ),
            r => panic!("unexpected reason {r}"),
        }
    }

    // Every decoded frame, sizes following the switches.
    assert_eq!(frames.len() as u64, FRAMES, "decoded frames != frames fed");
    for (n, w, h) in &segments {
        assert!(
            frames[*n].0,
            "picture size changes to {w}x{h} at frame {n}, not a key frame"
        );
    }
    let seg_sizes: Vec<(u32, u32)> = segments.iter().map(|s| (s.1, s.2)).collect();
    let want_sizes: Vec<(u32, u32)> = expect
        .iter()
        .map(|(i, _)| (LADDER[*i].0, LADDER[*i].1))
        .collect();
    assert_eq!(seg_sizes, want_sizes, "size segments vs switches");
    // Each size change within one frame of its switch's running time
    // (frame n of the output has running time n/30 s: no frame is lost).
    let pts0 = frames[0].3;
    for (k, (n, _, _)) in segments.iter().enumerate().skip(1) {
        let change_ns = *n as u64 * SECOND / FPS;
        let rt = switches[k].running_time;
        assert!(
            change_ns.abs_diff(rt) <= SECOND / FPS,
            "size change at frame {n} ({change_ns} ns) vs switch {k} at {rt} ns"
        );
        // The TS timestamps agree.
        let pts_ns = ((frames[*n].3 - pts0) * SECOND as f64).round() as u64;
        assert!(
            pts_ns.abs_diff(rt) <= SECOND / FPS,
            "size change at pts {} s vs switch {k} at {rt} ns",
            frames[*n].3 - pts0
        );
    }
    // Timestamps strictly increase, one frame apart.
    for w in frames.windows(2) {
        let d = w[1].3 - w[0].3;
        assert!(
            (d - 1.0 / FPS as f64).abs() < 0.002,
            "pts step {d} s between {:?} and {:?}",
            w[0],
            w[1]
        );
    }

    // FFmpeg decodes the whole file without an error.
    let errors = ffmpeg_decode_errors(&file);
    assert!(errors.is_empty(), "ffmpeg: {errors}");
    println!("  total {:.1} s", started.elapsed().as_secs_f64());
}

/// Issue 19: a 3-rendition ladder of incompressible content (snow, so the
/// encoders run at their nominal 3 / 1.5 / 0.6 Mb/s; no pad `bitrate`, the
/// element measures them) with `bandwidth-estimate` set by property from
/// the application: 8 Mb/s, then 0.9 at 4 s, 2.4 at 8 s, 0.5 at 12 s and 8
/// at 16 s of running time (set from a probe on the selector's sink pads
/// when the first of them reaches the step). Default element settings.
///
/// Expected from the documented rules (safety 0.85, up-factor 1.3,
/// min-switch-interval 2 s): 1280 -> 640 at 4 s (only 0.6 fits 0.85 x
/// 0.9) -> 854 at 8 s (1.5 x 1.3 <= 2.4 < 3 x 1.3, the last switch 4 s
/// before) -> 640 at 12 s (nothing fits 0.5: the lowest) -> 1280 at 16 s.
/// Before the fix the output went 1280 -> 640 (4 s) -> 854 (7 s, with
/// 0.9 Mb/s set: the averages still remembered 8 Mb/s) -> 640 (12 s) ->
/// 1280 (19 s). Checked on the decoded output
/// (ffprobe) and on the `abr-switch` messages: no switch up to a rendition
/// whose measured rate exceeds 0.85 x the estimate in force, at most one
/// size change while the estimate is constant, and the sequence above.
#[test]
fn property_estimate_steps_never_switch_above_it() {
    /// (running time in s, bits/s) of the property steps.
    const STEPS: [(u64, u64); 5] = [
        (0, 8_000_000),
        (4, 900_000),
        (8, 2_400_000),
        (12, 500_000),
        (16, 8_000_000),
    ];
    /// (width, height, kbit/s), sink_0.. in this order.
    const LADDER: [(u32, u32, u64); 3] = [(1280, 720, 3000), (854, 480, 1500), (640, 360, 600)];
    const SECONDS: u64 = 22;
    let _heavy = heavy();
    init();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ts");
    let mut desc = format!(
        "videotestsrc num-buffers={n} pattern=snow ! \
         video/x-raw,format=I420,width=1280,height=720,framerate={FPS}/1 ! tee name=t ",
        n = SECONDS * FPS
    );
    for (i, (w, h, kbps)) in LADDER.iter().enumerate() {
        desc += &format!(
            "t. ! queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! videoscale ! \
             video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
             x264enc bitrate={kbps} key-int-max=30 speed-preset=ultrafast ! \
             h264parse config-interval=-1 name=parse{i} ! abr.sink_{i} "
        );
    }
    desc += &format!(
        "abrselector name=abr bandwidth-estimate={} ! h264parse ! mpegtsmux ! \
         filesink location={}",
        STEPS[0].1,
        file.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let abr = pipeline.by_name("abr").unwrap();
    let safety = abr.property::<f64>("safety-factor");
    // The next step to apply, shared by the three branches: the first to
    // reach a step's running time sets the property.
    let next = std::sync::Arc::new(AtomicU64::new(1));
    for i in 0..LADDER.len() {
        let next = next.clone();
        let abr = abr.clone();
        pipeline
            .by_name(&format!("parse{i}"))
            .unwrap()
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                // Running time (x264enc shifts its timestamps by 1000 h).
                let rt = pad.sticky_event::<gst::event::Segment>(0).and_then(|ev| {
                    let seg = ev.segment().downcast_ref::<gst::ClockTime>()?.clone();
                    seg.to_running_time(info.buffer()?.pts()?)
                });
                let Some(pts) = rt else {
                    return gst::PadProbeReturn::Ok;
                };
                let k = next.load(Ordering::SeqCst) as usize;
                if let Some(&(at, bps)) = STEPS.get(k) {
                    if pts.nseconds() >= at * SECOND
                        && next
                            .compare_exchange(
                                k as u64,
                                k as u64 + 1,
                                Ordering::SeqCst,
                                Ordering::SeqCst,
                            )
                            .is_ok()
                    {
                        abr.set_property("bandwidth-estimate", bps);
                    }
                }
                gst::PadProbeReturn::Ok
            });
    }

    let switches = run_to_eos(&pipeline, 180, false);

    // Output picture sizes over time: (pts from the first frame in s, w, h).
    let frames = probe_frames(&file);
    assert!(!frames.is_empty(), "nothing decoded");
    let pts0 = frames[0].3;
    let mut segments: Vec<(f64, u32, u32)> = Vec::new();
    for f in &frames {
        if segments.last().is_none_or(|s| (s.1, s.2) != (f.1, f.2)) {
            assert!(f.0, "size change to {}x{} not on a key frame", f.1, f.2);
            segments.push((f.3 - pts0, f.1, f.2));
        }
    }
    let estimate_at = |t: f64| {
        STEPS
            .iter()
            .rev()
            .find(|s| t >= s.0 as f64)
            .map_or(STEPS[0].1, |s| s.1)
    };
    let mut report = format!(
        "property steps (s, bit/s) {STEPS:?}; {} frames decoded in {:.1} s\n",
        frames.len(),
        started.elapsed().as_secs_f64()
    );
    for s in &switches {
        report += &format!(
            "  switch {:>7} -> {:<6} at {:>7.3} s: {} -> {} bit/s (measured), estimate {} \
             (set {})\n",
            s.reason,
            s.to,
            s.running_time as f64 / SECOND as f64,
            s.from_bitrate,
            s.to_bitrate,
            s.estimate,
            estimate_at(s.running_time as f64 / SECOND as f64)
        );
    }
    for (t, w, h) in &segments {
        report += &format!("  {w}x{h} from {t:.3} s\n");
    }
    println!("{report}");

    // Never up to a rendition measured above the usable estimate.
    for s in switches.iter().filter(|s| s.reason == "up") {
        let set = estimate_at(s.running_time as f64 / SECOND as f64);
        assert!(
            s.to_bitrate as f64 <= safety * set as f64,
            "up to {} at {} bit/s measured while the estimate set is {set}\n{report}",
            s.to,
            s.to_bitrate
        );
    }
    // A constant estimate: at most one size change while it holds.
    for (k, &(from, _)) in STEPS.iter().enumerate() {
        let to = STEPS.get(k + 1).map_or(f64::MAX, |s| s.0 as f64);
        let n = segments
            .iter()
            .skip(1)
            .filter(|s| s.0 >= from as f64 && s.0 < to)
            .count();
        assert!(
            n <= 1,
            "{n} size changes under the constant estimate from {from} s\n{report}"
        );
    }
    // The sequence: (width, earliest s, latest s). A switch lands on the
    // target's next keyframe (every 1 s) after the step: down at once, up
    // at once with headroom on the estimate (1.536 x 1.3 <= 2.4,
    // 3.072 x 1.3 <= 8) as the last switch is more than
    // min-switch-interval (2 s) before.
    let want: [(u32, f64, f64); 5] = [
        (1280, 0.0, 0.0),
        (640, 4.0, 5.1),
        (854, 8.0, 9.1),
        (640, 12.0, 13.1),
        (1280, 16.0, 17.1),
    ];
    let widths: Vec<u32> = segments.iter().map(|s| s.1).collect();
    assert_eq!(
        widths,
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        "{report}"
    );
    for ((t, w, _), (_, lo, hi)) in segments.iter().zip(want) {
        assert!(
            *t >= lo - 0.05 && *t <= hi,
            "{w} from {t:.3} s, expected in {lo}..{hi} s\n{report}"
        );
    }
    assert_eq!(
        frames.len() as u64,
        SECONDS * FPS,
        "decoded frames\n{report}"
    );
    let errors = ffmpeg_decode_errors(&file);
    assert!(errors.is_empty(), "ffmpeg: {errors}");
}
