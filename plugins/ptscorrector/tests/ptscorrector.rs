//! `ptscorrector` through `gst_check::Harness`: every repair with exact
//! expected timestamps, counters and messages.

use std::sync::Once;

use gst::prelude::*;
use gst_check::Harness;

const MS: u64 = 1_000_000;
/// 30 fps frame duration, ns.
const F: u64 = 33_333_333;
/// AAC frame at 48 kHz (1024 samples), ns.
const A: u64 = 21_333_333;
/// One 90 kHz tick, rounded up: the engine's smallest made-up step, ns.
const TICK: u64 = 11_112;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstptscorrector::plugin_register_static().expect("plugin registers");
    });
}

fn video_caps() -> gst::Caps {
    gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .field("framerate", gst::Fraction::new(30, 1))
        .build()
}

fn audio_caps() -> gst::Caps {
    gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("rate", 48000i32)
        .field("channels", 2i32)
        .build()
}

fn element(props: &[(&str, &str)]) -> gst::Element {
    let mut b = gst::ElementFactory::make("ptscorrector");
    for (k, v) in props {
        b = b.property_from_str(k, v);
    }
    b.build().unwrap()
}

/// A harness on stream `index` of `el` with `caps`.
fn stream(el: &gst::Element, index: u32, caps: gst::Caps) -> Harness {
    let mut h = Harness::with_element(
        el,
        Some(&format!("sink_{index}")),
        Some(&format!("src_{index}")),
    );
    h.set_src_caps(caps);
    h
}

fn buf(pts: Option<u64>, dts: Option<u64>, dur: Option<u64>) -> gst::Buffer {
    let mut b = gst::Buffer::with_size(8).unwrap();
    {
        let b = b.get_mut().unwrap();
        b.set_pts(pts.map(gst::ClockTime::from_nseconds));
        b.set_dts(dts.map(gst::ClockTime::from_nseconds));
        b.set_duration(dur.map(gst::ClockTime::from_nseconds));
    }
    b
}

/// (PTS, DTS, DISCONT) of everything the harness has received.
fn drain(h: &mut Harness) -> Vec<(u64, u64, bool)> {
    let mut v = Vec::new();
    while let Some(b) = h.try_pull() {
        v.push((
            b.pts().unwrap().nseconds(),
            b.dts().unwrap().nseconds(),
            b.flags().contains(gst::BufferFlags::DISCONT),
        ));
    }
    v
}

fn stat(el: &gst::Element, field: &str) -> u64 {
    el.property::<gst::Structure>("stats")
        .get::<u64>(field)
        .unwrap()
}

fn stream_stat(el: &gst::Element, index: usize, field: &str) -> u64 {
    let stats = el.property::<gst::Structure>("stats");
    let streams = stats.get::<gst::Array>("streams").unwrap();
    streams.as_slice()[index]
        .get::<gst::Structure>()
        .unwrap()
        .get::<u64>(field)
        .unwrap()
}

/// Element messages `ptscorrector-repair` posted so far, as
/// (kind, stream, before, after).
fn repairs(bus: &gst::Bus) -> Vec<(String, String, u64, u64)> {
    let mut v = Vec::new();
    while let Some(m) = bus.pop_filtered(&[gst::MessageType::Element]) {
        let s = m.structure().unwrap();
        if s.name() == "ptscorrector-repair" && s.has_field("before") {
            v.push((
                s.get::<String>("kind").unwrap(),
                s.get::<String>("stream").unwrap(),
                s.get::<u64>("before").unwrap(),
                s.get::<u64>("after").unwrap(),
            ));
        }
    }
    v
}

/// A clean B-frame stream (decode order I0 P3 B1 B2 P6 B4 B5 ..., DTS one
/// frame behind) passes untouched, with no repair.
#[test]
fn clean_stream_passes_unchanged() {
    init();
    let el = element(&[]);
    let mut h = stream(&el, 0, video_caps());
    let order = [0u64, 3, 1, 2, 6, 4, 5, 9, 7, 8];
    for (i, p) in order.iter().enumerate() {
        let pts = 10 * F + p * F;
        let dts = 9 * F + i as u64 * F;
        h.push(buf(Some(pts), Some(dts), Some(F))).unwrap();
    }
    // Video waits max-reorder (4) frames in the lookahead.
    assert_eq!(h.buffers_received(), 6);
    h.push_event(gst::event::Eos::new());
    let out = drain(&mut h);
    assert_eq!(out.len(), order.len());
    for (i, (p, o)) in order.iter().zip(&out).enumerate() {
        assert_eq!(*o, (10 * F + p * F, 9 * F + i as u64 * F, false));
    }
    assert_eq!(stat(&el, "buffers"), 10);
    for k in [
        "missing-pts",
        "missing-dts",
        "non-monotonic-dts",
        "jump-forward",
        "gap",
        "duplicate",
    ] {
        assert_eq!(stat(&el, k), 0, "{k}");
    }
}

/// Audio without PTS gets the previous PTS plus its duration; without
/// duration, the AAC frame duration from the caps (1024 / 48000 s).
#[test]
fn missing_pts_interpolated() {
    init();
    let el = element(&[]);
    let mut h = stream(&el, 0, audio_caps());
    h.push(buf(Some(0), None, Some(A))).unwrap();
    h.push(buf(Some(A), None, Some(A))).unwrap();
    h.push(buf(None, None, Some(A))).unwrap();
    h.push(buf(None, None, None)).unwrap();
    let out: Vec<u64> = drain(&mut h).iter().map(|o| o.0).collect();
    assert_eq!(out, vec![0, A, 2 * A, 3 * A]);
    assert_eq!(stat(&el, "missing-pts"), 2);
}

/// Video without DTS: DTS rebuilt from the PTS order through a lookahead of
/// max-reorder frames: DTS = smallest waiting PTS - max-reorder frames;
/// strictly increasing, never after PTS; the window is drained at EOS.
#[test]
fn missing_dts_rebuilt_from_reordered_pts() {
    init();
    let el = element(&[("max-reorder", "2")]);
    let mut h = stream(&el, 0, video_caps());
    let order = [0u64, 3, 1, 2, 6, 4, 5, 9, 7, 8];
    let base = 100 * F;
    for (i, p) in order.iter().enumerate() {
        h.push(buf(Some(base + p * F), None, Some(F))).unwrap();
        // Two frames of latency.
        assert_eq!(h.buffers_received() as usize, i.saturating_sub(1));
    }
    h.push_event(gst::event::Eos::new());
    let out = drain(&mut h);
    assert_eq!(out.len(), 10);
    for (i, (o, p)) in out.iter().zip(order).enumerate() {
        assert_eq!(o.0, base + p * F, "PTS kept");
        assert_eq!(o.1, base + i as u64 * F - 2 * F, "DTS of frame {i}");
        assert!(o.1 <= o.0);
    }
    assert_eq!(stat(&el, "missing-dts"), 10);
    // The latency query reports the lookahead.
    let mut q2 = gst::query::Latency::new();
    let sinkpad = h.sinkpad().unwrap();
    assert!(sinkpad.peer_query(&mut q2));
    assert_eq!(q2.result().1, gst::ClockTime::from_nseconds(2 * F));
}

/// A B-frame stream whose DTS were set equal to PTS (a demuxer reading PES
/// headers without DTS): from the first frames on, DTS rebuilt from the PTS
/// order, never before the segment start, strictly increasing by at least a
/// 90 kHz tick and never after PTS.
#[test]
fn dts_equal_pts_on_reordered_video_rebuilt_from_the_start() {
    init();
    let el = element(&[("max-reorder", "2")]);
    let mut h = stream(&el, 0, video_caps());
    let order = [0u64, 3, 1, 2, 6, 4, 5, 9, 7, 8];
    for p in order {
        h.push(buf(Some(p * F), Some(p * F), Some(F))).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let out = drain(&mut h);
    let dts: Vec<u64> = out.iter().map(|o| o.1).collect();
    assert_eq!(&dts[..3], &[0, TICK, 2 * TICK]);
    for (i, d) in dts.iter().enumerate().skip(3) {
        assert_eq!(*d, (i as u64 - 2) * F, "frame {i}");
    }
    for (o, p) in out.iter().zip(order) {
        assert_eq!(o.0, p * F, "PTS kept");
        assert!(o.1 <= o.0);
    }
    assert_eq!(stat(&el, "non-monotonic-dts"), 3);
    // The reordering is not a gap.
    assert_eq!(stat(&el, "gap"), 0);
}

/// DTS that stop increasing (a reordering upstream broke them) or come
/// after PTS: DTS rebuilt from that frame on, strictly increasing.
#[test]
fn non_monotonic_and_late_dts_rebuilt() {
    init();
    let el = element(&[("max-reorder", "1")]);
    let mut h = stream(&el, 0, video_caps());
    // Frames 0..4 fine (DTS = PTS), then frame 5 with DTS = frame 3's.
    for i in 0..5u64 {
        h.push(buf(Some(i * F), Some(i * F), Some(F))).unwrap();
    }
    h.push(buf(Some(5 * F), Some(3 * F), Some(F))).unwrap();
    for i in 6..10u64 {
        // DTS after PTS.
        h.push(buf(Some(i * F), Some(i * F + 5 * MS), Some(F)))
            .unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let out = drain(&mut h);
    assert_eq!(out.len(), 10);
    let dts: Vec<u64> = out.iter().map(|o| o.1).collect();
    assert_eq!(&dts[..4], &[0, F, 2 * F, 3 * F]);
    // Frame 4 was still in the lookahead when frame 5 showed the DTS broken:
    // rebuilt too (smallest waiting PTS minus one frame), kept one 90 kHz
    // tick above 3F.
    assert_eq!(dts[4], 3 * F + TICK);
    for i in 5..10 {
        assert_eq!(dts[i], (i as u64 - 1) * F, "frame {i}");
        assert_eq!(out[i].0, i as u64 * F);
    }
    assert!(dts.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(stat(&el, "non-monotonic-dts"), 1);
}

/// A forward jump of 10 s on video re-bases it to the expected time, with
/// DISCONT; audio meeting the same jump later is shifted by the same amount,
/// so the A/V offset (here 5 ms) is kept exactly.
#[test]
fn jump_on_video_shifts_audio_by_the_same_amount() {
    init();
    let el = element(&[]);
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut v = stream(&el, 0, video_caps());
    let mut a = stream(&el, 1, audio_caps());
    let av = 5 * MS;
    for i in 0..30u64 {
        v.push(buf(Some(i * F), Some(i * F), Some(F))).unwrap();
    }
    for i in 0..40u64 {
        a.push(buf(Some(av + i * A), None, Some(A))).unwrap();
    }
    let jump = 10_000 * MS;
    for i in 30..60u64 {
        v.push(buf(Some(jump + i * F), Some(jump + i * F), Some(F)))
            .unwrap();
    }
    for i in 40..80u64 {
        a.push(buf(Some(jump + av + i * A), None, Some(A))).unwrap();
    }
    v.push_event(gst::event::Eos::new());
    let vo = drain(&mut v);
    let ao = drain(&mut a);
    for (i, o) in vo.iter().enumerate() {
        assert_eq!(o.0, i as u64 * F, "video {i}");
        assert_eq!(o.2, i == 30, "DISCONT only on the jump");
    }
    // Audio's own expected next is 40 A + 5 ms = 858.3 ms; the video shift
    // puts it at 40 A + 5 ms too (same source time base), no second guess.
    for (i, o) in ao.iter().enumerate() {
        assert_eq!(o.0, av + i as u64 * A, "audio {i}");
    }
    assert!(ao[40].2);
    assert_eq!(stream_stat(&el, 0, "jump-forward"), 1);
    assert_eq!(stream_stat(&el, 1, "jump-forward"), 1);
    let msgs = repairs(&bus);
    let jumps: Vec<_> = msgs.iter().filter(|m| m.0 == "jump-forward").collect();
    assert_eq!(jumps.len(), 2, "{msgs:?}");
    assert_eq!(
        (jumps[0].1.as_str(), jumps[0].2, jumps[0].3),
        ("sink_0", jump + 30 * F, 30 * F)
    );
}

/// Two recordings back to back, the second restarting at 0: re-based to
/// continue, both streams by the video's shift; audio's small difference
/// from its own expected time is a gap, counted, not a second jump.
#[test]
fn backward_jump_restarting_recording() {
    init();
    let el = element(&[]);
    let mut v = stream(&el, 0, video_caps());
    let mut a = stream(&el, 1, audio_caps());
    for i in 0..300u64 {
        v.push(buf(Some(i * F), Some(i * F), Some(F))).unwrap();
    }
    // Audio of the first recording ends 2 frames short of the video.
    let a1 = (300 * F - 2 * A) / A;
    for i in 0..a1 {
        a.push(buf(Some(i * A), None, Some(A))).unwrap();
    }
    for i in 0..30u64 {
        v.push(buf(Some(i * F), Some(i * F), Some(F))).unwrap();
    }
    for i in 0..40u64 {
        a.push(buf(Some(i * A), None, Some(A))).unwrap();
    }
    v.push_event(gst::event::Eos::new());
    let vo = drain(&mut v);
    let ao = drain(&mut a);
    assert_eq!(vo[300].0, 300 * F);
    assert!(vo[300].2);
    // Audio restarts where the video restarted: offset 0 kept.
    assert_eq!(ao[a1 as usize].0, 300 * F);
    assert_eq!(stream_stat(&el, 0, "jump-backward"), 1);
    assert_eq!(stream_stat(&el, 1, "jump-backward"), 1);
    assert_eq!(stream_stat(&el, 1, "gap"), 1);
}

fn ticks_to_ns(t: u128) -> u64 {
    (t * 100_000 / 9) as u64
}

/// Sparse buffers (one per 10 000 s) whose 90 kHz timestamps wrap at 2^33
/// three times: unwrapped to within 1 ns of the true time, counted as wraps
/// and never as jumps; and the same at 2^32 (RTP).
#[test]
fn wraps_unwrapped_any_number_of_times() {
    init();
    for bits in [33u32, 32] {
        let el = element(&[]);
        let mut h = stream(&el, 0, audio_caps());
        let step_ticks: u128 = 10_000 * 90_000;
        let n = 30u128;
        for i in 0..n {
            let true_ticks = (1u128 << bits) - 5 * 90_000 + i * step_ticks;
            let raw = ticks_to_ns(true_ticks % (1u128 << bits));
            h.push(buf(Some(raw), None, Some(ticks_to_ns(step_ticks))))
                .unwrap();
        }
        let out = drain(&mut h);
        let first = ticks_to_ns((1u128 << bits) - 5 * 90_000);
        for (i, o) in out.iter().enumerate() {
            let t = ticks_to_ns((1u128 << bits) - 5 * 90_000 + i as u128 * step_ticks);
            assert!(o.0.abs_diff(t) <= 1, "2^{bits}: buffer {i}: {} vs {t}", o.0);
        }
        let wraps = (ticks_to_ns(n * step_ticks) + first) / ticks_to_ns(1u128 << bits);
        assert_eq!(stat(&el, "wrap"), wraps, "2^{bits}");
        assert!(wraps >= 3);
        assert_eq!(stat(&el, "jump-forward") + stat(&el, "jump-backward"), 0);
    }
}

/// Video whose DTS has wrapped at 2^33 while its PTS has not yet (B-frames
/// around the wrap): PTS brought to the DTS's side of the wrap.
#[test]
fn pts_and_dts_wrap_separately() {
    init();
    let el = element(&[]);
    let mut h = stream(&el, 0, video_caps());
    let wrap = ticks_to_ns(1u128 << 33);
    // True times: start 10 frames before the wrap, PTS 2 frames after DTS.
    let start = wrap - 10 * F;
    for i in 0..20u64 {
        let d = start + i * F;
        let p = d + 2 * F;
        h.push(buf(Some(p % wrap), Some(d % wrap), Some(F)))
            .unwrap();
    }
    let out = drain(&mut h);
    for (i, o) in out.iter().enumerate() {
        let d = start + i as u64 * F;
        assert!(o.1.abs_diff(d) <= 1, "DTS {i}");
        assert!(o.0.abs_diff(d + 2 * F) <= 1, "PTS {i}");
    }
    assert_eq!(stat(&el, "wrap"), 1);
}

/// A missing audio frame is counted as a gap; with gap-mode=fill the
/// previous buffer is repeated at the missing time (flagged GAP).
#[test]
fn gaps_counted_or_filled() {
    init();
    for fill in [false, true] {
        let el = element(&[("gap-mode", if fill { "fill" } else { "pass" })]);
        let mut h = stream(&el, 0, audio_caps());
        for i in [0u64, 1, 2, 4, 5] {
            h.push(buf(Some(i * A), None, Some(A))).unwrap();
        }
        let mut pts = Vec::new();
        let mut gaps = Vec::new();
        while let Some(b) = h.try_pull() {
            pts.push(b.pts().unwrap().nseconds());
            gaps.push(b.flags().contains(gst::BufferFlags::GAP));
        }
        if fill {
            assert_eq!(pts, vec![0, A, 2 * A, 3 * A, 4 * A, 5 * A]);
            assert_eq!(gaps, vec![false, false, false, true, false, false]);
            assert_eq!(stat(&el, "filled"), 1);
        } else {
            assert_eq!(pts, vec![0, A, 2 * A, 4 * A, 5 * A]);
        }
        assert_eq!(stat(&el, "gap"), 1);
    }
}

/// Inter-coded video cannot be repeated: a gap becomes a GAP event.
#[test]
fn video_gap_fill_is_a_gap_event() {
    init();
    let el = element(&[("gap-mode", "fill")]);
    let mut h = stream(&el, 0, video_caps());
    for i in [0u64, 1, 2, 5, 6] {
        h.push(buf(Some(i * F), Some(i * F), Some(F))).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    assert_eq!(h.buffers_received(), 5);
    let mut gap = None;
    while let Some(ev) = h.try_pull_event() {
        if let gst::EventView::Gap(g) = ev.view() {
            gap = Some(g.get());
        }
    }
    let (ts, dur) = gap.expect("a GAP event");
    assert_eq!(ts.nseconds(), 3 * F);
    assert_eq!(dur.unwrap().nseconds(), 2 * F);
}

/// Duplicated frames (a block resent) are dropped by default; with
/// duplicate-mode=pass they are sent 1 ns after the previous buffer, without
/// moving the following ones.
#[test]
fn duplicates_dropped_or_passed() {
    init();
    let el = element(&[]);
    let mut a = stream(&el, 0, audio_caps());
    for i in [0u64, 1, 2, 3, 2, 3, 4] {
        a.push(buf(Some(i * A), None, Some(A))).unwrap();
    }
    let pts: Vec<u64> = drain(&mut a).iter().map(|o| o.0).collect();
    assert_eq!(pts, vec![0, A, 2 * A, 3 * A, 4 * A]);
    assert_eq!(stat(&el, "duplicate"), 2);

    let el = element(&[]);
    let mut v = stream(&el, 0, video_caps());
    for i in [0u64, 1, 2, 3, 2, 3, 4] {
        v.push(buf(Some(i * F), Some(i * F), Some(F))).unwrap();
    }
    v.push_event(gst::event::Eos::new());
    let out = drain(&mut v);
    assert_eq!(
        out.iter().map(|o| o.0).collect::<Vec<_>>(),
        vec![0, F, 2 * F, 3 * F, 4 * F]
    );
    assert_eq!(stat(&el, "duplicate"), 2);
    assert_eq!(stat(&el, "non-monotonic-dts"), 0);

    let el = element(&[("duplicate-mode", "pass")]);
    let mut a = stream(&el, 0, audio_caps());
    for i in [0u64, 1, 1, 2] {
        a.push(buf(Some(i * A), None, Some(A))).unwrap();
    }
    let pts: Vec<u64> = drain(&mut a).iter().map(|o| o.0).collect();
    assert_eq!(pts, vec![0, A, A + TICK, 2 * A]);
}

/// A live source whose clock runs 200 ppm fast for 10 minutes (arrival on
/// the test clock = PTS / 1.0002): the output is slewed, never jumped, by at
/// most max-slew, and ends within drift-tolerance of the arrival; video and
/// audio are slewed together.
#[test]
fn drift_200ppm_slewed_within_tolerance() {
    init();
    let el = element(&[
        ("drift-correction", "on"),
        // No lookahead: one buffer out per buffer in.
        ("max-reorder", "0"),
        ("drift-tolerance", "20000000"),
        ("max-slew", "1000"),
    ]);
    let mut v = stream(&el, 0, video_caps());
    let mut a = stream(&el, 1, audio_caps());
    v.use_testclock();
    let clock = v.testclock().unwrap();
    el.set_base_time(gst::ClockTime::ZERO);
    let arrival = |pts: u64| (pts as f64 / 1.0002) as u64;
    let minutes = 10;
    let frames = minutes * 60 * 30;
    let mut ai = 0u64;
    let mut last_v: Option<(u64, u64)> = None;
    let mut last_a: Option<(u64, u64, u64)> = None;
    let mut max_dev_ppm = 0f64;
    let mut max_dev_ppm_audio = 0f64;
    for i in 0..frames as u64 {
        let pts = i * F;
        clock.set_time(gst::ClockTime::from_nseconds(arrival(pts)));
        v.push(buf(Some(pts), Some(pts), Some(F))).unwrap();
        let b = v.pull().unwrap();
        let out = b.pts().unwrap().nseconds();
        assert!(!b.flags().contains(gst::BufferFlags::DISCONT));
        if let Some((lin, lout)) = last_v {
            let din = (pts - lin) as f64;
            let dout = out as f64 - lout as f64;
            max_dev_ppm = max_dev_ppm.max(((dout - din) / din).abs() * 1e6);
        }
        last_v = Some((pts, out));
        // Audio arrives in bursts of about five frames (one PES) at the
        // same clock time, up to 100 ms behind the video.
        if i % 5 != 4 {
            continue;
        }
        while ai * A <= pts {
            let ain = ai * A + 2 * MS;
            a.push(buf(Some(ain), None, Some(A))).unwrap();
            let ab = a.pull().unwrap();
            let aout = ab.pts().unwrap().nseconds();
            let adur = ab.duration().unwrap().nseconds();
            if let Some((lin, lout, ldur)) = last_a {
                assert!(
                    lout + ldur <= aout,
                    "audio {ai} starts before the previous ends"
                );
                let din = (ain - lin) as f64;
                let dout = aout as f64 - lout as f64;
                max_dev_ppm_audio = max_dev_ppm_audio.max(((dout - din) / din).abs() * 1e6);
            }
            last_a = Some((ain, aout, adur));
            // A/V offset kept within a fraction of a frame (2 ms source).
            let vshift = out as i64 - pts as i64;
            let ashift = aout as i64 - ain as i64;
            assert!((vshift - ashift).abs() < MS as i64, "A/V at {pts}");
            ai += 1;
        }
    }
    assert!(
        max_dev_ppm_audio <= 1000.5,
        "audio slew {max_dev_ppm_audio} ppm"
    );
    let (last_in, last_out) = last_v.unwrap();
    let drift_end = last_out as i64 - arrival(last_in) as i64;
    // 200 ppm over 10 min is 120 ms uncorrected.
    assert!(
        drift_end.abs() < 20 * MS as i64,
        "output minus arrival at the end: {drift_end} ns"
    );
    assert!(max_dev_ppm <= 1000.5, "slew {max_dev_ppm} ppm");
    assert!(stat(&el, "drift") >= 1);
    assert_eq!(stat(&el, "jump-forward") + stat(&el, "jump-backward"), 0);
}

/// Two recordings spliced where the second's audio starts 21 ms before its
/// video: the audio that would overlap the first recording's last audio
/// buffer is dropped (counted as overlap) instead of being squeezed in, the
/// next buffer carries the DISCONT, and both streams keep their offset.
#[test]
fn splice_overlap_dropped_to_keep_sync() {
    init();
    let el = element(&[]);
    let mut v = stream(&el, 0, video_caps());
    let mut a = stream(&el, 1, audio_caps());
    // First recording: video 0..300 frames, audio to 5 ms past the video.
    for i in 0..300u64 {
        v.push(buf(Some(i * F), Some(i * F), Some(F))).unwrap();
    }
    let a1 = (300 * F + 5 * MS) / A + 1;
    for i in 0..a1 {
        a.push(buf(Some(i * A), None, Some(A))).unwrap();
    }
    let audio_end = a1 * A;
    // Second recording restarts at 1 s: video at 1 s, audio from 1 s - A.
    let r2 = 1000 * MS;
    for i in 0..30u64 {
        v.push(buf(Some(r2 + i * F), Some(r2 + i * F), Some(F)))
            .unwrap();
    }
    for i in 0..20u64 {
        a.push(buf(Some(r2 - A + i * A), None, Some(A))).unwrap();
    }
    let ao = drain(&mut a);
    // The video was re-based to 300 F; audio of the second recording maps
    // to 300 F - A + i A, and whatever starts before the first recording's
    // audio end is dropped.
    let shift = 300 * F - r2;
    let kept: Vec<u64> = (0..20u64)
        .map(|i| r2 - A + i * A + shift)
        .filter(|t| *t + TICK >= audio_end)
        .collect();
    let second: Vec<(u64, u64, bool)> = ao[a1 as usize..].to_vec();
    assert_eq!(second.iter().map(|o| o.0).collect::<Vec<_>>(), kept);
    assert!(
        second[0].2,
        "DISCONT on the first buffer sent after the jump"
    );
    assert_eq!(stream_stat(&el, 1, "overlap") as usize, 20 - kept.len());
}

/// A second segment (as `concat` sends, timestamps restarting at 0 with the
/// base moved on) is absorbed: output continues in running time with the
/// first segment, no jump.
#[test]
fn later_segments_absorbed_into_running_time() {
    init();
    let el = element(&[]);
    let mut h = stream(&el, 0, audio_caps());
    for i in 0..10u64 {
        h.push(buf(Some(i * A), None, Some(A))).unwrap();
    }
    let mut seg = gst::FormattedSegment::<gst::ClockTime>::new();
    seg.set_base(gst::ClockTime::from_nseconds(10 * A));
    assert!(h.push_event(gst::event::Segment::new(&seg)));
    for i in 0..10u64 {
        h.push(buf(Some(i * A), None, Some(A))).unwrap();
    }
    let pts: Vec<u64> = drain(&mut h).iter().map(|o| o.0).collect();
    assert_eq!(pts, (0..20).map(|i| i * A).collect::<Vec<_>>());
    assert_eq!(stat(&el, "jump-backward"), 0);
}
