//! Trace-driven harness for `abrselector` (issue 6).
//!
//! A 3-rendition H.264 ladder (320x180 / 640x360 / 960x540 at about
//! 0.5 / 1.5 / 4 Mb/s CBR, 2 s closed GOPs, no B-frames, keyframes aligned)
//! is encoded once in-process. Each run pushes the three renditions, frame by
//! frame in lockstep from the test thread, into a real `abrselector`
//! (`estimator=none`) whose src pad is linked to a test sink pad: everything
//! happens in media time in one thread, so a run is deterministic and takes
//! well under a second.
//!
//! Link model (in the sink pad's chain function): output frame `i`, made at
//! its running time `p_i` by a live source, goes FIFO over a link whose
//! capacity follows the trace `c(t)` (piecewise constant per second):
//! transmission starts at `max(p_i, end of the previous frame)` and ends at
//! `d_i`, when `c(t)` integrated from the start covers the frame's bits.
//! Client: playback starts at `d_0` + 2 s; frame `i` is due at
//! `start + p_i + stalls so far`; a later `d_i` adds `d_i - due` of stall.
//! Feedback: per second of link time, the receiver reports bits delivered /
//! time the link was busy in that second; the report for second `[k, k+1)`
//! is made at `r = k + 1` and reaches `abrselector` (custom upstream event
//! `abr-bandwidth-estimate` on its src pad) just before the first input
//! frame with `p >= r` is pushed (causal).
//!
//! "Ours" is `abrselector` with its default policy: switches on the latest
//! report, safety factor 0.85, an upswitch at once with up-factor 1.3 of
//! headroom or else held for `min-switch-interval` (2 s), never to a
//! rendition above the report, and the queue model with `max-queue-delay`
//! 1 s (half the client's start-up buffer), which keeps a rendition above a
//! lower report while the backlog stays within it.
//! Baseline on the same traces, same pipeline and link: `abrselector` set to
//! act as the plain throughput rule "highest rendition <= 0.9 x last
//! throughput" (`safety-factor=0.9`, `up-factor=1/0.9`,
//! `min-switch-interval=0`, both half-lives 0.01 s so the estimate is the
//! last report within a frame or two, `max-queue-delay=0`). Both switch only
//! at keyframes. The renditions are pushed in order, lowest first, so before
//! the element has seen two keyframes of the target (the first 2 s) an
//! upswitch misses the keyframe at which the current rendition has already
//! gone out; later ones are predicted and held for.
//!
//! Per trace: mean selected / mean available bit rate, seconds where the
//! selected rate exceeds `c(t)`, switches, stall seconds and
//! QoE = sum over media seconds of the bit rate (Mb/s) - 4.3 x stall s -
//! sum of |bit rate changes| (Mb/s). Every output is decoded by ffmpeg: no
//! error and every frame. Goal: mean QoE above the rule's and at least
//! 157.4, no trace lost to the rule by more than 5 points.
//!
//! Diagnostics: `ABR_ONLY=<trace name>` runs one trace and prints capacity
//! and selection per second; `ABR_OURS=prop=value,...` sets extra
//! `abrselector` properties on the "ours" runs (to compare configurations).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;
use gst_broadcast_e2e::{heavy, plugin_dir};

const FPS: u64 = 30;
const SECONDS: usize = 90;
const FRAMES: usize = SECONDS * FPS as usize;
const GOP: u32 = 60;
const STARTUP: f64 = 2.0;
const STALL_PENALTY: f64 = 4.3;
/// Issue 19: no trace lost to the throughput rule by more than this (QoE
/// points)…
const MAX_LOSS: f64 = 5.0;
/// …and no lower mean QoE than before it (157.4, when upswitches could go
/// above the estimate on the queue budget).
const MIN_MEAN_QOE: f64 = 157.4;
/// (width, height, kbit/s)
const LADDER: [(u32, u32, u32); 3] = [(320, 180, 500), (640, 360, 1500), (960, 540, 4000)];

/// One encoded rendition: caps and access units in order.
struct Rendition {
    caps: gst::Caps,
    frames: Vec<gst::Buffer>,
    /// Mean bit rate of the stream, bits/s.
    bps: u64,
}

fn frame_ns(i: usize) -> u64 {
    i as u64 * 1_000_000_000 / FPS
}

/// What a rendition's fakesink collected: caps and access units.
type Store = Arc<Mutex<(Option<gst::Caps>, Vec<gst::Buffer>)>>;

/// Encodes the ladder from one source through a tee.
fn encode_ladder() -> Vec<Rendition> {
    let mut desc = format!(
        "videotestsrc num-buffers={FRAMES} pattern=smpte horizontal-speed=3 ! \
         video/x-raw,format=I420,width=960,height=540,framerate={FPS}/1 ! tee name=t "
    );
    for (i, (w, h, kbps)) in LADDER.iter().enumerate() {
        desc += &format!(
            "t. ! queue ! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
             x264enc speed-preset=ultrafast tune=zerolatency bframes=0 key-int-max={GOP} \
             pass=cbr bitrate={kbps} vbv-buf-capacity=1000 \
             option-string=scenecut=0:min-keyint={GOP}:nal-hrd=cbr ! \
             h264parse config-interval=-1 ! \
             video/x-h264,stream-format=byte-stream,alignment=au ! \
             fakesink name=s{i} sync=false signal-handoffs=true "
        );
    }
    let pipeline = gst::parse::launch(&desc)
        .expect("ladder pipeline parses")
        .downcast::<gst::Pipeline>()
        .unwrap();
    let store: Vec<Store> = (0..LADDER.len())
        .map(|_| Arc::new(Mutex::new((None, Vec::new()))))
        .collect();
    for (i, st) in store.iter().enumerate() {
        let sink = pipeline.by_name(&format!("s{i}")).unwrap();
        let st = st.clone();
        sink.connect("handoff", false, move |v| {
            let buf = v[1].get::<gst::Buffer>().unwrap();
            let pad = v[2].get::<gst::Pad>().unwrap();
            let mut g = st.lock().unwrap();
            if g.0.is_none() {
                g.0 = pad.current_caps();
            }
            g.1.push(buf);
            None
        });
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("ladder encoding failed: {e:?}"),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    store
        .into_iter()
        .enumerate()
        .map(|(i, st)| {
            let (caps, frames) = std::mem::take(&mut *st.lock().unwrap());
            assert_eq!(frames.len(), FRAMES, "rendition {i}: frame count");
            for (k, f) in frames.iter().enumerate() {
                let key = !f.flags().contains(gst::BufferFlags::DELTA_UNIT);
                assert_eq!(
                    key,
                    k % GOP as usize == 0,
                    "rendition {i} frame {k} keyframe"
                );
            }
            let bytes: usize = frames.iter().map(|f| f.size()).sum();
            Rendition {
                caps: caps.expect("caps"),
                bps: (bytes as f64 * 8.0 / SECONDS as f64).round() as u64,
                frames,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- traces

/// splitmix64: a small deterministic RNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f()
    }
}

/// A bandwidth trace: capacity in Mb/s for each second.
struct Trace {
    name: String,
    mbps: Vec<f64>,
}

fn steps(name: &str, levels: &[f64]) -> Trace {
    let per = SECONDS.div_ceil(levels.len());
    let mbps = (0..SECONDS).map(|s| levels[s / per]).collect();
    Trace {
        name: name.into(),
        mbps,
    }
}

fn random_walk(seed: u64, lo: f64, hi: f64, sigma: f64) -> Trace {
    let mut r = Rng(seed);
    let (llo, lhi) = (lo.ln(), hi.ln());
    let mut x = r.range(llo, lhi);
    let mbps = (0..SECONDS)
        .map(|_| {
            x += sigma * (2.0 * r.f() - 1.0);
            x = x.clamp(llo, lhi);
            x.exp()
        })
        .collect();
    Trace {
        name: format!("walk-{seed}"),
        mbps,
    }
}

/// 3G-like: 0.2-3 Mb/s, fast fluctuation, short outages near 0.
fn cellular(seed: u64) -> Trace {
    let mut r = Rng(seed * 7919);
    let mut base = r.range(0.8, 2.0);
    let mut outage = 0;
    let mbps = (0..SECONDS)
        .map(|_| {
            base = (base + r.range(-0.35, 0.35)).clamp(0.3, 2.6);
            if outage == 0 && r.f() < 0.04 {
                outage = 1 + (r.next() % 3) as usize;
            }
            if outage > 0 {
                outage -= 1;
                0.02
            } else {
                (base * r.range(0.7, 1.2)).clamp(0.2, 3.0)
            }
        })
        .collect();
    Trace {
        name: format!("3g-{seed}"),
        mbps,
    }
}

/// Broadband-like: 3-10 Mb/s with occasional dips of a few seconds.
fn broadband(seed: u64) -> Trace {
    let mut r = Rng(seed * 104_729);
    let mut base = r.range(5.0, 9.0);
    let mut dip = 0;
    let mut depth = 1.0;
    let mbps = (0..SECONDS)
        .map(|_| {
            base = (base + r.range(-0.5, 0.5)).clamp(3.0, 10.0);
            if dip == 0 && r.f() < 0.05 {
                dip = 2 + (r.next() % 4) as usize;
                depth = r.range(0.8, 2.5);
            }
            if dip > 0 {
                dip -= 1;
                depth
            } else {
                base
            }
        })
        .collect();
    Trace {
        name: format!("bb-{seed}"),
        mbps,
    }
}

fn traces() -> Vec<Trace> {
    let mut v = vec![
        steps("step-5-1-3-.5-5", &[5.0, 1.0, 3.0, 0.5, 5.0]),
        steps("step-1-4-x6", &[1.0, 4.0, 1.0, 4.0, 1.0, 4.0]),
        steps("step-8-2-x4", &[8.0, 2.0, 8.0, 2.0]),
        steps("step-ramp", &[0.8, 2.5, 6.0, 2.5, 0.8]),
        steps("step-drop-.4", &[3.0, 0.4, 3.0]),
        steps("flat-2", &[2.0]),
        steps("flat-6", &[6.0]),
    ];
    for seed in 1..=5 {
        v.push(random_walk(seed, 0.3, 8.0, 0.25));
    }
    for seed in 1..=5 {
        v.push(cellular(seed));
    }
    for seed in 1..=5 {
        v.push(broadband(seed));
    }
    v
}

// ---------------------------------------------------------------- link model

/// One frame as it left the link.
#[derive(Clone, Copy)]
struct Delivered {
    /// Running time it was made at, s.
    p: f64,
    /// Delivery time, s.
    d: f64,
    /// Rendition index (by width).
    rendition: usize,
}

struct Link {
    /// Capacity per second, bits/s.
    cap: Vec<f64>,
    /// The link is busy until then, s.
    free: f64,
    /// Per second of link time: (bits, busy s).
    bins: Vec<(f64, f64)>,
    /// Bins below this are reported.
    reported: usize,
    /// Reports (time made, bits/s) not yet delivered to the selector.
    reports: VecDeque<(f64, u64)>,
    frames: Vec<Delivered>,
    out: Vec<u8>,
    widths: Vec<i32>,
    current: Option<usize>,
    play_start: Option<f64>,
    stall: f64,
    stalls: u32,
}

impl Link {
    fn new(trace: &Trace, widths: Vec<i32>) -> Self {
        Link {
            cap: trace.mbps.iter().map(|m| m * 1e6).collect(),
            free: 0.0,
            bins: Vec::new(),
            reported: 0,
            reports: VecDeque::new(),
            frames: Vec::new(),
            out: Vec::new(),
            widths,
            current: None,
            play_start: None,
            stall: 0.0,
            stalls: 0,
        }
    }

    fn cap_at(&self, sec: usize) -> f64 {
        *self.cap.get(sec).or(self.cap.last()).unwrap()
    }

    fn bin(&mut self, sec: usize) -> &mut (f64, f64) {
        if self.bins.len() <= sec {
            self.bins.resize(sec + 1, (0.0, 0.0));
        }
        &mut self.bins[sec]
    }

    /// Reports every finished second below `t`.
    fn report_until(&mut self, t: f64) {
        let upto = t.floor() as usize;
        while self.reported < upto {
            let k = self.reported;
            if let Some(&(bits, busy)) = self.bins.get(k) {
                if busy > 1e-9 {
                    self.reports
                        .push_back(((k + 1) as f64, (bits / busy).round() as u64));
                }
            }
            self.reported += 1;
        }
    }

    /// Sends one frame of `bits` made at `p`; returns its delivery time.
    fn send(&mut self, p: f64, bits: f64) -> f64 {
        let mut t = p.max(self.free);
        self.report_until(t);
        let mut left = bits;
        while left > 0.0 {
            let sec = t.floor() as usize;
            let end = (sec + 1) as f64;
            let c = self.cap_at(sec);
            let can = c * (end - t);
            if can >= left {
                let dt = left / c;
                let b = self.bin(sec);
                b.0 += left;
                b.1 += dt;
                t += dt;
                left = 0.0;
            } else {
                let b = self.bin(sec);
                b.0 += can;
                b.1 += end - t;
                left -= can;
                t = end;
            }
        }
        self.free = t;
        self.report_until(t);
        t
    }

    fn frame(&mut self, buf: &gst::BufferRef) {
        let p = buf.pts().expect("output PTS").nseconds() as f64 / 1e9;
        let map = buf.map_readable().unwrap();
        self.out.extend_from_slice(&map);
        let d = self.send(p, map.len() as f64 * 8.0);
        let start = *self.play_start.get_or_insert(d + STARTUP);
        let due = start + p + self.stall;
        if d > due {
            self.stall += d - due;
            self.stalls += 1;
        }
        self.frames.push(Delivered {
            p,
            d,
            rendition: self.current.expect("caps before buffers"),
        });
    }

    fn caps(&mut self, caps: &gst::CapsRef) {
        let w = caps.structure(0).unwrap().get::<i32>("width").unwrap();
        self.current = Some(
            self.widths
                .iter()
                .position(|&x| x == w)
                .expect("a ladder width"),
        );
    }
}

// ---------------------------------------------------------------- one run

#[derive(Clone, Copy, Debug)]
enum Mode {
    Ours,
    Rule,
}

#[derive(Default, Clone, Copy)]
struct Score {
    ratio: f64,
    over_s: f64,
    switches: u32,
    stall_s: f64,
    stalls: u32,
    qoe: f64,
}

/// Runs `abrselector` over `trace`; returns the score and the output file.
fn run(ladder: &[Rendition], trace: &Trace, mode: Mode, out: &Path) -> Score {
    let abr = gst::ElementFactory::make("abrselector")
        .property_from_str("estimator", "none")
        .build()
        .expect("abrselector (libgstabrselector.so built?)");
    if let (Mode::Ours, Ok(v)) = (mode, std::env::var("ABR_OURS")) {
        for kv in v.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap();
            abr.set_property_from_str(k, v);
        }
    }
    if let Mode::Rule = mode {
        abr.set_property("safety-factor", 0.9f64);
        abr.set_property("up-factor", 1.0f64 / 0.9);
        abr.set_property("min-switch-interval", 0u64);
        abr.set_property("fast-half-life", 0.01f64);
        abr.set_property("slow-half-life", 0.01f64);
        abr.set_property("max-queue-delay", 0u64);
    }
    let pipeline = gst::Pipeline::new();
    pipeline.add(&abr).unwrap();

    let widths: Vec<i32> = LADDER.iter().map(|l| l.0 as i32).collect();
    let link = Arc::new(Mutex::new(Link::new(trace, widths)));
    let l1 = link.clone();
    let l2 = link.clone();
    let sink = gst::Pad::builder(gst::PadDirection::Sink)
        .name("link")
        .chain_function(move |_, _, buf| {
            l1.lock().unwrap().frame(&buf);
            Ok(gst::FlowSuccess::Ok)
        })
        .event_function(move |_, _, ev| {
            if let gst::EventView::Caps(c) = ev.view() {
                l2.lock().unwrap().caps(c.caps());
            }
            true
        })
        .query_function(|_, _, q| match q.view_mut() {
            gst::QueryViewMut::AcceptCaps(q) => {
                q.set_result(true);
                true
            }
            gst::QueryViewMut::Caps(q) => {
                let caps = q.filter_owned().unwrap_or_else(gst::Caps::new_any);
                q.set_result(&caps);
                true
            }
            _ => false,
        })
        .build();
    sink.set_active(true).unwrap();
    abr.static_pad("src").unwrap().link(&sink).unwrap();

    let mut srcs = Vec::new();
    for (i, r) in ladder.iter().enumerate() {
        let src = gst::Pad::builder(gst::PadDirection::Src)
            .name(format!("r{i}"))
            .build();
        let sinkpad = abr.request_pad_simple("sink_%u").unwrap();
        sinkpad.set_property("bitrate", r.bps);
        src.link(&sinkpad).unwrap();
        srcs.push(src);
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    // Both start from the same conservative estimate (a player's usual
    // start-up guess), then follow the receiver's reports.
    abr.set_property("bandwidth-estimate", 1_000_000u64);
    let group = gst::GroupId::next();
    for (i, (src, r)) in srcs.iter().zip(ladder).enumerate() {
        src.set_active(true).unwrap();
        assert!(src.push_event(
            gst::event::StreamStart::builder(&format!("r{i}"))
                .group_id(group)
                .build()
        ));
        assert!(src.push_event(gst::event::Caps::new(&r.caps)));
        let seg = gst::FormattedSegment::<gst::ClockTime>::new();
        assert!(src.push_event(gst::event::Segment::new(&seg)));
    }
    for k in 0..FRAMES {
        let now = frame_ns(k) as f64 / 1e9;
        // Reports made by now reach the selector before this frame.
        loop {
            let rep = {
                let mut l = link.lock().unwrap();
                match l.reports.front() {
                    Some(&(r, _)) if r <= now => l.reports.pop_front(),
                    _ => None,
                }
            };
            let Some((_, bps)) = rep else { break };
            let s = gst::Structure::builder("abr-bandwidth-estimate")
                .field("bitrate", bps)
                .build();
            sink.push_event(gst::event::CustomUpstream::new(s));
        }
        for (src, r) in srcs.iter().zip(ladder) {
            let mut b = r.frames[k].copy();
            {
                let b = b.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(frame_ns(k)));
                b.set_dts(gst::ClockTime::from_nseconds(frame_ns(k)));
                b.set_duration(gst::ClockTime::from_nseconds(frame_ns(k + 1) - frame_ns(k)));
            }
            let res = src.push(b);
            assert!(
                matches!(res, Ok(_) | Err(gst::FlowError::Eos)),
                "push: {res:?}"
            );
        }
    }
    for src in &srcs {
        src.push_event(gst::event::Eos::new());
    }
    // Errors or warnings from the element fail the run.
    let bus = pipeline.bus().unwrap();
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => panic!("{}: {e:?}", trace.name),
            gst::MessageView::Warning(w) => panic!("{}: {w:?}", trace.name),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    for src in &srcs {
        let _ = src.set_active(false);
    }

    let l = std::mem::replace(&mut *link.lock().unwrap(), Link::new(trace, Vec::new()));
    std::fs::File::create(out)
        .unwrap()
        .write_all(&l.out)
        .unwrap();
    assert_eq!(
        l.frames.len(),
        FRAMES,
        "{} {mode:?}: every frame goes out once",
        trace.name
    );
    for w in l.frames.windows(2) {
        assert!(w[1].p > w[0].p, "{}: output time increases", trace.name);
        assert!(w[1].d >= w[0].d);
    }
    score(ladder, trace, &l)
}

fn score(ladder: &[Rendition], trace: &Trace, l: &Link) -> Score {
    let mbps: Vec<f64> = ladder.iter().map(|r| r.bps as f64 / 1e6).collect();
    // The rendition shown in each media second (switches land on 2 s
    // keyframes, so one per second).
    let mut per_sec = vec![None; SECONDS];
    for f in &l.frames {
        let s = (f.p.floor() as usize).min(SECONDS - 1);
        per_sec[s].get_or_insert(f.rendition);
    }
    let rates: Vec<f64> = per_sec.iter().map(|r| mbps[r.unwrap()]).collect();
    if std::env::var("ABR_ONLY").is_ok() {
        for (s, (c, r)) in trace.mbps.iter().zip(&rates).enumerate() {
            eprintln!("{s} cap {c:.2} sel {r:.2}");
        }
    }
    let sum: f64 = rates.iter().sum();
    let changes: f64 = rates.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
    let switches = l
        .frames
        .windows(2)
        .filter(|w| w[0].rendition != w[1].rendition)
        .count() as u32;
    let avail: f64 = trace.mbps.iter().sum();
    let over = rates
        .iter()
        .zip(&trace.mbps)
        .filter(|(r, c)| *r > *c)
        .count() as f64;
    Score {
        ratio: sum / avail,
        over_s: over,
        switches,
        stall_s: l.stall,
        stalls: l.stalls,
        qoe: sum - STALL_PENALTY * l.stall - changes,
    }
}

/// ffmpeg's decode of `file`: (stderr, frames decoded).
fn decode(file: &Path) -> (String, u64) {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-nostats", "-i"])
        .arg(file)
        .args(["-f", "null", "-progress", "pipe:1", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut err = String::from_utf8_lossy(&o.stderr).into_owned();
    if !o.status.success() {
        err += &format!("(exit status {})", o.status);
    }
    let frames = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
        .unwrap_or(0);
    (err, frames)
}

#[test]
fn abr_traces_beat_throughput_rule() {
    let _g = heavy();
    gst::init().unwrap();
    gst::Plugin::load_file(plugin_dir().join("libgstabrselector.so"))
        .expect("libgstabrselector.so: run `cargo build --release -p gst-plugin-abrselector`");
    let t0 = Instant::now();
    let ladder = encode_ladder();
    let encode_s = t0.elapsed().as_secs_f64();
    let tmp = tempfile::tempdir().unwrap();
    let mut traces = traces();
    if let Ok(only) = std::env::var("ABR_ONLY") {
        traces.retain(|t| t.name == only);
    }
    assert!(traces.len() >= 20 || std::env::var("ABR_ONLY").is_ok());

    let mut report = format!(
        "ladder {} s: {} b/s (encoded in {encode_s:.1} s)\n",
        SECONDS,
        ladder
            .iter()
            .map(|r| r.bps.to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    );
    report += &format!(
        "{:<16} {:>5} | {:>5} {:>4} {:>3} {:>6} {:>7} | {:>5} {:>4} {:>3} {:>6} {:>7}\n",
        "trace",
        "avail",
        "sel/a",
        "over",
        "sw",
        "stall",
        "QoE",
        "sel/a",
        "over",
        "sw",
        "stall",
        "QoE"
    );
    report += &format!(
        "{:<22} | {:^32} | {:^32}\n",
        "", "abrselector", "0.9 x throughput rule"
    );
    let mut sums = [Score::default(); 2];
    // (trace, ours, rule) where ours loses by more than MAX_LOSS.
    let mut lost = Vec::new();
    let mut decodes: Vec<std::thread::JoinHandle<(PathBuf, String, u64)>> = Vec::new();
    for (ti, trace) in traces.iter().enumerate() {
        let mut row = Vec::new();
        for (mi, mode) in [Mode::Ours, Mode::Rule].into_iter().enumerate() {
            let file = tmp.path().join(format!("t{ti}-{mi}.h264"));
            let s = run(&ladder, trace, mode, &file);
            // Decode beside the next runs, two at a time at most.
            if decodes.len() >= 2 {
                let h = decodes.remove(0);
                check_decode(h.join().unwrap());
            }
            decodes.push(std::thread::spawn(move || {
                let (err, n) = decode(&file);
                (file, err, n)
            }));
            let sum = &mut sums[mi];
            sum.ratio += s.ratio;
            sum.over_s += s.over_s;
            sum.switches += s.switches;
            sum.stall_s += s.stall_s;
            sum.stalls += s.stalls;
            sum.qoe += s.qoe;
            row.push(s);
        }
        if row[0].qoe < row[1].qoe - MAX_LOSS {
            lost.push((trace.name.clone(), row[0].qoe, row[1].qoe));
        }
        let avail = trace.mbps.iter().sum::<f64>() / SECONDS as f64;
        report += &format!("{:<16} {avail:>5.2}", trace.name);
        for s in &row {
            report += &format!(
                " | {:>5.2} {:>4.0} {:>3} {:>6.2} {:>7.1}",
                s.ratio, s.over_s, s.switches, s.stall_s, s.qoe
            );
        }
        report.push('\n');
    }
    for h in decodes {
        check_decode(h.join().unwrap());
    }
    let n = traces.len() as f64;
    report += &format!("{:<16} {:>5}", "MEAN", "");
    for s in &sums {
        report += &format!(
            " | {:>5.2} {:>4.1} {:>3.1} {:>6.2} {:>7.1}",
            s.ratio / n,
            s.over_s / n,
            s.switches as f64 / n,
            s.stall_s / n,
            s.qoe / n
        );
    }
    report += &format!(
        "\n{} traces x 2 runs, all decoded without error, in {:.1} s\n",
        traces.len(),
        t0.elapsed().as_secs_f64()
    );
    println!("{report}");
    assert!(
        sums[0].qoe > sums[1].qoe,
        "mean QoE {:.1} not above the throughput rule's {:.1}\n{report}",
        sums[0].qoe / n,
        sums[1].qoe / n
    );
    assert!(
        sums[0].qoe / n >= MIN_MEAN_QOE,
        "mean QoE {:.1} below {MIN_MEAN_QOE}\n{report}",
        sums[0].qoe / n
    );
    assert!(
        lost.is_empty(),
        "traces lost to the rule by more than {MAX_LOSS} QoE points (trace, ours, rule): \
         {lost:?}\n{report}"
    );
}

fn check_decode((file, err, n): (PathBuf, String, u64)) {
    assert!(err.is_empty(), "{}: decode errors: {err}", file.display());
    assert_eq!(n, FRAMES as u64, "{}: decoded frames", file.display());
}
