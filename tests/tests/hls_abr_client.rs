//! Client-side ABR of the `hlsladdersink` ladder (issue 6, abrselector):
//! hls.js in headless Chromium, with its own automatic level selection
//! (nothing forced), plays a 3-rendition VOD ladder served over loopback
//! while Chrome DevTools Protocol throttling
//! (`Network.emulateNetworkConditions`, browser cache disabled) goes
//! 20 Mb/s -> 0.9 Mb/s -> 20 Mb/s. Asserted:
//! - the top level is on screen when the throttle starts;
//! - the first lower level shown afterwards comes from a fragment requested
//!   while throttled (hls.js switched down because of the throttle);
//! - later a higher level is shown from a fragment requested after the lift;
//! - after every LEVEL_SWITCHED the video element decodes that level's
//!   RESOLUTION; no hls.js error (stall reports aside), no stall over 1 s,
//!   and the playhead keeps up with the wall clock.
//!
//! `tests/browser/abr.mjs` (with `abr.html`) drives Chromium and prints what
//! happened, one `KIND key=value ...` record a line; every judgement is made
//! here, and a report (timeline, fragments per level, stalls) is printed.
//!
//! Margins around the renditions' measured bit rates (checked first):
//! - 20 Mb/s is over 4x the top BANDWIDTH (~3.6 Mb/s);
//! - 0.9 Mb/s is under 2/3 of the middle AVERAGE-BANDWIDTH (~1.4 Mb/s) and
//!   1.4x the bottom BANDWIDTH (~0.63 Mb/s): hls.js must drop to the bottom
//!   and can keep playing there;
//! - back at 20 Mb/s hls.js climbs again: its slow EWMA estimate reaches the
//!   middle within seconds, the top only near the end of the run.
//!
//! hls.js buffers at most 20 s ahead (`maxBufferLength` = `maxMaxBufferLength`
//! = 20; with its defaults a 90 s VOD is buffered whole within seconds at
//! 20 Mb/s and no throttle has any visible effect). Its ABR runs with the
//! defaults. 20 s is what keeps the throttled start stall-free: hls.js needs
//! one or two 7 s top-level fragments at 0.9 Mb/s before its estimate drops,
//! and the buffer went down to ~5 s in trial runs (~2 s with 15 s).
//! A level picked is shown (LEVEL_SWITCHED) when the playhead reaches its
//! fragments, up to 20 s later, so the down-switch shows around the time the
//! throttle lifts (before or after): it is judged by when its fragment was
//! requested. The throttle lasts 26 s: a longer one lets hls.js' slow
//! estimate settle at 0.9 Mb/s and the climb back takes too long for an 80 s
//! run at playback rate 1. Run time: ~30 s of encoding, ~85 s of playback.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gst_broadcast_e2e::*;

/// The ladder, top first (the `hlsladdersink` pad order).
const LADDER: [Rendition; 3] = [
    Rendition {
        width: 1280,
        height: 720,
        kbps: 3000,
    },
    Rendition {
        width: 854,
        height: 480,
        kbps: 1200,
    },
    Rendition {
        width: 480,
        height: 270,
        kbps: 400,
    },
];
const AUDIO_KBPS: u32 = 64;
/// Stream length (s) and segment target duration (s).
const SECONDS: u32 = 90;
const TARGET_DURATION: u64 = 2;

/// Throttle schedule, seconds after the first `playing` event.
const HIGH_KBPS: f64 = 20_000.0;
const LOW_KBPS: f64 = 900.0;
const THROTTLE_AT: f64 = 10.0;
const LIFT_AT: f64 = 36.0;
/// Playback watched for this long after the first `playing` (rate 1).
const RUN_S: f64 = 80.0;
/// hls.js forward buffer (s).
const BUFFER_S: u32 = 20;
/// Longest acceptable stall (s).
const MAX_STALL_S: f64 = 1.0;

/// The ladder pipeline: a noise picture (`snow`: no two frames alike, so
/// x264 in CBR with a 1 s VBV really spends each rendition's bit rate) cut
/// into keyframe-aligned 2 s segments.
fn pipeline(out: &Path) -> String {
    let top = LADDER[0];
    let mut p = format!(
        "videotestsrc num-buffers={frames} pattern=snow ! \
         video/x-raw,format=I420,width={w},height={h},framerate=30/1 ! tee name=t ",
        frames = SECONDS * 30,
        w = top.width,
        h = top.height,
    );
    for (i, r) in LADDER.iter().enumerate() {
        p += &format!(
            "t. ! queue ! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
             x264enc speed-preset=ultrafast pass=cbr bitrate={b} vbv-buf-capacity=1000 \
             bframes=0 key-int-max=60 option-string=scenecut=0 ! h264parse ! s.video_{i} ",
            w = r.width,
            h = r.height,
            b = r.kbps,
        );
    }
    p += &format!(
        "audiotestsrc num-buffers={n} samplesperbuffer=1024 ! \
         audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac bitrate={a} ! aacparse ! \
         s.audio_0 hlsladdersink name=s output-directory={out} \
         target-duration={TARGET_DURATION} playlist-type=vod",
        n = SECONDS * 48000 / 1024,
        a = AUDIO_KBPS * 1000,
        out = out.display(),
    );
    p
}

/// One `KIND key=value ...` record of abr.mjs.
struct Rec {
    kind: String,
    fields: HashMap<String, String>,
}

impl Rec {
    fn parse(line: &str) -> Option<Rec> {
        let mut it = line.split_whitespace();
        let kind = it.next()?.to_string();
        let fields = it
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Rec { kind, fields })
    }
    fn s(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
    fn f(&self, k: &str) -> f64 {
        self.fields
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{} record without numeric {k}: {:?}",
                    self.kind, self.fields
                )
            })
    }
    fn i(&self, k: &str) -> i64 {
        self.f(k) as i64
    }
    fn f_or(&self, k: &str, default: f64) -> f64 {
        self.fields
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

/// Runs abr.mjs; returns (exit code, stdout, stderr). Ends it (SIGTERM, then
/// SIGKILL) if it outlives `limit`.
fn run_abr_mjs(dir: &Path, limit: Duration) -> (Option<i32>, String, String) {
    let schedule = format!("{HIGH_KBPS}@0,{LOW_KBPS}@{THROTTLE_AT},{HIGH_KBPS}@{LIFT_AT}");
    let config = format!(r#"{{"maxBufferLength":{BUFFER_S},"maxMaxBufferLength":{BUFFER_S}}}"#);
    let mut child = Command::new("node")
        .arg(repo_root().join("tests/browser/abr.mjs"))
        .arg("--dir")
        .arg(dir)
        .args(["--master", "index.m3u8", "--schedule", &schedule])
        .args(["--run-s", &RUN_S.to_string(), "--hls-config", &config])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (apt-get install nodejs; npm ci in tests/browser)");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let mut termed = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline && !termed {
            // abr.mjs closes Chromium and its server on SIGTERM. SAFETY:
            // kill(2) on the pid of our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            termed = true;
        }
        if Instant::now() > deadline + Duration::from_secs(15) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = t_err.join().unwrap();
    if termed {
        stderr += &format!("\n(abr.mjs still running after {limit:?}: terminated)");
    }
    (status.code(), t_out.join().unwrap(), stderr)
}

/// The decoded picture size in effect at page time `t` (the last resize at or
/// before it; 0x0 before the first).
fn size_at(resizes: &[(f64, u32, u32)], t: f64) -> (u32, u32) {
    resizes
        .iter()
        .take_while(|r| r.0 <= t)
        .last()
        .map(|r| (r.1, r.2))
        .unwrap_or((0, 0))
}

#[test]
fn hlsjs_abr_follows_throttling_without_stalls() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let mut report = String::new();
    macro_rules! say {
        ($($a:tt)*) => {{ report += &format!($($a)*); report.push('\n'); }};
    }

    // ---- the ladder
    let t0 = Instant::now();
    let o = gst_launch(&pipeline(out))
        .output()
        .expect("gst-launch-1.0 runs");
    assert!(
        o.status.success(),
        "ladder pipeline failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let encode_s = t0.elapsed().as_secs_f64();
    let master = read_master_playlist(&out.join("index.m3u8")).unwrap();
    assert_eq!(
        master.variants.len(),
        LADDER.len(),
        "one variant a rendition"
    );
    say!("ladder: {SECONDS} s VOD, {TARGET_DURATION} s segments, encoded in {encode_s:.1} s");
    let mut avg_bw = Vec::new();
    let mut peak_bw = Vec::new();
    for (i, (v, r)) in master.variants.iter().zip(LADDER).enumerate() {
        let dir = out.join(format!("v{i}"));
        let pl = read_media_playlist(&dir.join("index.m3u8")).unwrap();
        check_media_playlist(&pl, &dir, TARGET_DURATION).unwrap();
        assert!(pl.end_list, "v{i}: VOD playlist without EXT-X-ENDLIST");
        let dur: f64 = pl.segments.iter().map(|s| s.duration as f64).sum();
        assert!((dur - SECONDS as f64).abs() < 0.5, "v{i} lists {dur} s");
        let bits: u64 = pl
            .segments
            .iter()
            .map(|s| std::fs::metadata(dir.join(&s.uri)).unwrap().len() * 8)
            .sum();
        let files_bps = bits as f64 / dur;
        let res = v.resolution.expect("RESOLUTION");
        assert_eq!(
            (res.width, res.height),
            (r.width as u64, r.height as u64),
            "v{i} RESOLUTION"
        );
        let avg = v.average_bandwidth.expect("AVERAGE-BANDWIDTH") as f64;
        let peak = v.bandwidth as f64;
        let nominal = (r.kbps + AUDIO_KBPS) as f64 * 1000.0;
        say!(
            "  v{i} {}x{} x264 {} kbit/s + AAC {AUDIO_KBPS}: BANDWIDTH {:.0} kbit/s, \
             AVERAGE-BANDWIDTH {:.0} kbit/s (segment files: {:.0} kbit/s)",
            r.width,
            r.height,
            r.kbps,
            peak / 1000.0,
            avg / 1000.0,
            files_bps / 1000.0
        );
        // The segments really carry the configured rate (TS and audio
        // overhead on top), and the playlist says what the files hold.
        assert!(
            (1.0..1.5).contains(&(avg / nominal)),
            "v{i}: AVERAGE-BANDWIDTH {avg} is not 1-1.5x the configured {nominal} bit/s"
        );
        assert!(
            peak >= avg && peak < 1.6 * nominal,
            "v{i}: BANDWIDTH {peak} vs AVERAGE-BANDWIDTH {avg}, configured {nominal}"
        );
        assert!(
            (files_bps / avg - 1.0).abs() < 0.05,
            "v{i}: segment files hold {files_bps} bit/s, AVERAGE-BANDWIDTH says {avg}"
        );
        avg_bw.push(avg);
        peak_bw.push(peak);
    }
    // Clearly separated renditions, and the schedule's margins around them.
    for i in 1..LADDER.len() {
        assert!(
            avg_bw[i - 1] > 2.0 * avg_bw[i],
            "v{} and v{i} are not clearly separated: {avg_bw:?}",
            i - 1
        );
    }
    let low_bps = LOW_KBPS * 1000.0;
    assert!(
        HIGH_KBPS * 1000.0 > 4.0 * peak_bw[0],
        "20 Mb/s is not a wide margin over the top BANDWIDTH {}",
        peak_bw[0]
    );
    assert!(
        avg_bw[1] > 1.4 * low_bps && peak_bw[2] * 1.3 < low_bps,
        "throttle {low_bps} bit/s has no wide margin: middle AVERAGE-BANDWIDTH {}, bottom BANDWIDTH {}",
        avg_bw[1],
        peak_bw[2]
    );

    // ---- hls.js under throttling
    let t1 = Instant::now();
    let (code, stdout, stderr) = run_abr_mjs(out, Duration::from_secs(260));
    let play_s = t1.elapsed().as_secs_f64();
    let recs: Vec<Rec> = stdout.lines().filter_map(Rec::parse).collect();
    let ctx = |report: &str| {
        format!(
            "{report}\n--- abr.mjs exit {code:?}, stderr:\n{stderr}\n--- stdout (no frag/sample):\n{}",
            stdout
                .lines()
                .filter(|l| !l.starts_with("frag ") && !l.starts_with("sample "))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert!(
        code == Some(0) && recs.iter().any(|r| r.kind == "done"),
        "abr.mjs did not record a run:\n{}",
        ctx(&report)
    );
    let of = |k: &'static str| recs.iter().filter(move |r| r.kind == k);
    let play_t = of("play").next().map(|r| r.f("t")).expect("play record");
    let rel = |t: f64| t - play_t;
    // hls.js levels, ascending bit rate: the ladder bottom first.
    let levels: Vec<(u32, u32, f64)> = of("level")
        .map(|r| (r.i("width") as u32, r.i("height") as u32, r.f("bitrate")))
        .collect();
    assert_eq!(
        levels.len(),
        LADDER.len(),
        "hls.js levels:\n{}",
        ctx(&report)
    );
    for (j, l) in levels.iter().enumerate() {
        let r = LADDER[LADDER.len() - 1 - j];
        assert_eq!((l.0, l.1), (r.width, r.height), "hls.js level {j} is {l:?}");
    }
    let top = levels.len() as i64 - 1;
    // (in force from, kbps, page time the CDP command was sent)
    let phases: Vec<(f64, f64, f64)> = of("phase")
        .map(|r| (r.f("t"), r.f("kbps"), r.f("sent")))
        .collect();
    assert_eq!(phases.len(), 3, "throttle phases:\n{}", ctx(&report));
    let (throttle_t, lift_t) = (phases[1].0, phases[2].0);
    let phase_name = |t: f64| {
        if t < throttle_t {
            "high"
        } else if t < lift_t {
            "throttled"
        } else {
            "recovered"
        }
    };
    // (t, level, sn of the fragment under the playhead)
    let switched: Vec<(f64, i64, i64)> = of("switched")
        .map(|r| (r.f("t"), r.i("level"), r.f_or("sn", -1.0) as i64))
        .collect();
    let switching: Vec<(f64, i64)> = of("switching").map(|r| (r.f("t"), r.i("level"))).collect();
    let resizes: Vec<(f64, u32, u32)> = of("resize")
        .map(|r| (r.f("t"), r.i("width") as u32, r.i("height") as u32))
        .collect();
    // (request time, level, sn, bytes, load seconds)
    let frags: Vec<(f64, i64, i64, f64, f64)> = of("frag")
        .map(|r| {
            let start = r.f("start");
            (
                start,
                r.i("level"),
                r.i("sn"),
                r.f("bytes"),
                r.f("end") - start,
            )
        })
        .collect();
    // When the fragment shown by a LEVEL_SWITCHED was requested (its last
    // load before it was shown).
    let requested = |t: f64, level: i64, sn: i64| {
        frags
            .iter()
            .filter(|f| f.1 == level && f.2 == sn && f.0 < t)
            .map(|f| f.0)
            .reduce(f64::max)
    };
    let end = of("end").next().expect("end record");
    let end_t = end.f("t");
    let errors: Vec<&Rec> = of("error").collect();
    let mut stalls: Vec<(f64, f64, &str)> = of("wait")
        .map(|r| (r.f("t"), r.f("seconds"), "waiting"))
        .chain(of("frozen").map(|r| (r.f("t"), r.f("seconds"), "frozen playhead")))
        .collect();
    stalls.sort_by(|a, b| a.0.total_cmp(&b.0));
    let max_stall = stalls.iter().map(|s| s.1).fold(0.0, f64::max);
    let playing_at = |t: f64| {
        switched
            .iter()
            .take_while(|s| s.0 <= t)
            .last()
            .map(|s| s.1)
            .unwrap_or(-1)
    };

    // ---- the switches that matter
    // Down: the first lower level shown after the throttle started.
    let down = switched
        .iter()
        .find(|s| s.0 > throttle_t && s.1 < top)
        .copied();
    // Up: after it, the first level shown above the lowest one shown so far
    // whose fragment was requested after the lift.
    let mut low = top;
    let mut up = None;
    if let Some(d) = down {
        for s in switched.iter().filter(|s| s.0 >= d.0) {
            if s.1 > low && requested(s.0, s.1, s.2).is_some_and(|r| r >= lift_t) {
                up = Some(*s);
                break;
            }
            low = low.min(s.1);
        }
    }

    // ---- report
    say!(
        "throttle (CDP Network.emulateNetworkConditions, cache disabled): {HIGH_KBPS} kbit/s, \
         {LOW_KBPS} kbit/s at {:+.1} s, {HIGH_KBPS} kbit/s at {:+.1} s (s after the first \
         'playing'); hls.js {} buffers {BUFFER_S} s ahead",
        rel(throttle_t),
        rel(lift_t),
        of("meta").next().map(|m| m.s("hlsjs")).unwrap_or("?")
    );
    let mut timeline: Vec<(f64, String)> = Vec::new();
    for p in &phases[1..] {
        timeline.push((p.0, format!("---- throttle {} kbit/s", p.1)));
    }
    for &(t, l) in &switching {
        timeline.push((t, format!("hls.js picks level {l} for the next fragments")));
    }
    for &(t, l, sn) in &switched {
        let (w, h, b) = levels[l as usize];
        let req = requested(t, l, sn)
            .map(|r| format!("requested {:+.1} s, {}", rel(r), phase_name(r)))
            .unwrap_or_default();
        timeline.push((
            t,
            format!(
                "plays level {l} {w}x{h} @{:.0} kbit/s from sn {sn} ({req})",
                b / 1000.0
            ),
        ));
    }
    for &(t, w, h) in &resizes {
        timeline.push((t, format!("video element decodes {w}x{h}")));
    }
    for r in of("emergency") {
        timeline.push((
            r.f("t"),
            format!("emergency abort of level {} sn {}", r.s("level"), r.s("sn")),
        ));
    }
    for &(t, secs, kind) in &stalls {
        timeline.push((t, format!("{kind} for {secs:.2} s")));
    }
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    say!("timeline (s after the first 'playing'):");
    for (t, what) in &timeline {
        say!("  {:+7.2}  {what}", rel(*t));
    }
    let mut per: BTreeMap<(i64, &str), (u32, f64, f64)> = BTreeMap::new();
    for f in &frags {
        let e = per.entry((f.1, phase_name(f.0))).or_insert((0, 0.0, 0.0));
        e.0 += 1;
        e.1 += f.4;
        e.2 += f.3 * 8.0;
    }
    say!("fragments loaded (level, phase of the request: count, mean load time, rate):");
    for ((l, ph), (n, secs, bits)) in &per {
        say!(
            "  level {l} {ph:>9}: {n:3}, {:.2} s, {:.0} kbit/s",
            secs / *n as f64,
            bits / secs / 1000.0
        );
    }
    // Media sequence numbers loaded more than once (any level), reported,
    // not judged: hls.js 1.7 loads the fragment under the buffered end again
    // on the new level at a level switch (seen with segment ends exact to
    // the 90 kHz tick as well), which costs one segment of bandwidth.
    let mut loads: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for f in &frags {
        loads.entry(f.2).or_default().push(f.1);
    }
    let refetched: Vec<String> = loads
        .iter()
        .filter(|(_, l)| l.len() > 1)
        .map(|(sn, l)| format!("sn {sn} on levels {l:?}"))
        .collect();
    say!(
        "fragments loaded: {}, media sequence numbers loaded more than once: {}{}",
        frags.len(),
        refetched.len(),
        if refetched.is_empty() {
            String::new()
        } else {
            format!(" ({})", refetched.join(", "))
        }
    );
    let shown: Vec<String> = switched
        .iter()
        .map(|&(t, l, _)| format!("{l} ({:+.1} s, {})", rel(t), phase_name(t)))
        .collect();
    say!("levels shown: {}", shown.join(" -> "));
    let ct = end.f("ct") - of("play").next().map(|r| r.f("ct")).unwrap_or(0.0);
    let watched = end_t - play_t;
    let (frames, dropped) = of("quality")
        .next()
        .map(|q| (q.i("total"), q.i("dropped")))
        .unwrap_or((0, 0));
    let gaps: Vec<f64> = of("tickgap").map(|r| r.f("seconds")).collect();
    // Forward buffer once playing (2 s on), for the margin against stalls.
    let min_buf = of("sample")
        .filter(|r| r.f("t") > play_t + 2.0)
        .map(|r| (r.f("buf"), r.f("t")))
        .reduce(|a, b| if b.0 < a.0 { b } else { a });
    if let Some((b, t)) = min_buf {
        say!(
            "forward buffer: lowest {b:.1} s at {:+.1} s ({})",
            rel(t),
            phase_name(t)
        );
    }
    say!(
        "playback: {ct:.1} s of media in {watched:.1} s, {dropped} of {frames} frames dropped, \
         {} stall episode(s) over 0.1 s, longest {max_stall:.2} s (limit {MAX_STALL_S} s), \
         page sampler late {} time(s); abr.mjs ran {play_s:.1} s",
        stalls.len(),
        gaps.len()
    );
    for e in &errors {
        say!(
            "  error {}: {} {}/{} fatal={} {}",
            e.s("t"),
            e.s("source"),
            e.s("type"),
            e.s("details"),
            e.s("fatal"),
            e.s("reason")
        );
    }
    println!("{report}");

    // ---- judgement
    let mut failures: Vec<String> = Vec::new();
    // Throttling was in force: fragments requested and finished while
    // throttled came in at the throttled rate.
    let lift_sent = phases[2].2;
    let throttled: Vec<f64> = frags
        .iter()
        .filter(|f| f.0 >= throttle_t && f.0 + f.4 <= lift_sent)
        .map(|f| f.3 * 8.0 / f.4 / 1000.0)
        .collect();
    if throttled.len() < 3 {
        failures.push(format!(
            "only {} fragment(s) loaded wholly within the throttled phase",
            throttled.len()
        ));
    }
    if let Some(m) = throttled.iter().cloned().reduce(f64::max) {
        if m > 1.3 * LOW_KBPS {
            failures.push(format!(
                "a fragment came at {m:.0} kbit/s while throttled to {LOW_KBPS}"
            ));
        }
    }
    // Top level shown when the throttle starts.
    let before = playing_at(throttle_t);
    if before != top {
        failures.push(format!(
            "level {before} shown when the throttle started, not the top level {top}"
        ));
    }
    // Down because of the throttle: the first lower level shown after it
    // started was requested while throttled.
    match down {
        None => failures.push("no lower level shown after the throttle started".into()),
        Some((t, l, sn)) => match requested(t, l, sn) {
            Some(r) if r >= throttle_t && r < lift_t => {}
            r => failures.push(format!(
                "lower level {l} shown at {:+.1} s from sn {sn}, requested at {:?}, not while throttled",
                rel(t),
                r.map(rel)
            )),
        },
    }
    if !switching
        .iter()
        .any(|s| s.0 >= throttle_t && s.0 < lift_t && s.1 < top)
    {
        failures.push("hls.js picked no lower level while throttled".into());
    }
    // Up after the lift (see `up`).
    if down.is_some() && up.is_none() {
        failures.push(format!(
            "no level above {low} shown from a fragment requested after the lift (run ended at {:+.1} s)",
            rel(end_t)
        ));
    }
    // The decoded picture follows the level shown: after every switch, at
    // some moment before the next one, videoWidth x videoHeight is that
    // level's RESOLUTION.
    for (k, &(t, l, _)) in switched.iter().enumerate() {
        let next = switched.get(k + 1).map(|s| s.0).unwrap_or(end_t);
        if k + 1 == switched.len() && end_t - t < 1.0 {
            continue; // shown in the run's last second: the picture may lag
        }
        let want = (levels[l as usize].0, levels[l as usize].1);
        let seen = std::iter::once(size_at(&resizes, t))
            .chain(
                resizes
                    .iter()
                    .filter(|r| r.0 > t && r.0 <= next)
                    .map(|r| (r.1, r.2)),
            )
            .any(|s| s == want);
        if !seen {
            failures.push(format!(
                "level {l} shown at {:+.2} s but the video element never decoded {}x{} before {:+.2} s",
                rel(t),
                want.0,
                want.1,
                rel(next)
            ));
        }
    }
    // No stall over the limit, and the playhead kept up with the wall clock
    // (a slack of 10 % for the many sub-0.1 s hiccups of a busy 2-core box).
    for &(t, s, kind) in &stalls {
        if s > MAX_STALL_S {
            failures.push(format!("{kind} for {s:.2} s at {:+.2} s", rel(t)));
        }
    }
    if watched < RUN_S - 1.0 {
        failures.push(format!(
            "watched only {watched:.1} s of the planned {RUN_S} s"
        ));
    }
    if ct < 0.9 * watched {
        failures.push(format!(
            "only {ct:.1} s of media played in {watched:.1} s at rate 1"
        ));
    }
    // No error: fatal, element, page or HTTP. Of hls.js' non-fatal ones only
    // its stall reports (judged by the stall measurement above) and the
    // `aborted` that follows its own emergency down-switch (abandoning a
    // fragment that loads too slowly: ABR at work) are let through.
    let emergencies: Vec<(f64, &str)> = of("emergency").map(|r| (r.f("t"), r.s("level"))).collect();
    for e in &errors {
        let stall_report = matches!(e.s("details"), "bufferStalledError" | "bufferNudgeOnStall");
        let t = e.f_or("t", f64::NAN);
        let abandoned = e.s("details") == "aborted"
            && emergencies
                .iter()
                .any(|&(te, l)| l == e.s("level") && t >= te && t < te + 10.0);
        if e.s("fatal") == "true" || !(stall_report || abandoned) {
            failures.push(format!(
                "error: {} {}/{} fatal={} {}",
                e.s("source"),
                e.s("type"),
                e.s("details"),
                e.s("fatal"),
                e.s("reason")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "client-side ABR failed:\n  {}\n{}",
        failures.join("\n  "),
        ctx(&report)
    );
}
