//! `abrselector` through `gst_check::Harness` with synthetic Annex B access
//! units (every NAL carries the rendition number after its header, so each
//! output buffer tells where it came from), plus one pipeline with real
//! x264enc renditions decoded by avdec_h264 and FFmpeg.

use std::sync::{mpsc, Arc, Mutex, Once};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;

/// 30 fps frame duration, ns.
const F: u64 = 33_333_333;
const SECOND: u64 = 1_000_000_000;
const MB: u64 = 1_000_000;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstabrselector::plugin_register_static().expect("plugin registers");
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    H264,
    H265,
}

/// One access unit of rendition `r`: AUD, then (with `params`) the
/// parameter sets, then an IDR/IRAP (`key`) or a non-IDR slice of
/// `payload` bytes. Every NAL ends with the rendition number.
fn au(codec: Codec, r: u8, key: bool, params: bool, payload: usize) -> Vec<u8> {
    let mut nals: Vec<Vec<u8>> = Vec::new();
    let slice_body = |hdr: &[u8]| {
        let mut v = hdr.to_vec();
        v.push(r + 1);
        v.extend(std::iter::repeat_n(0xaa, payload));
        v
    };
    match codec {
        Codec::H264 => {
            nals.push(vec![0x09, 0xf0]);
            if params {
                nals.push(vec![0x67, r + 1, 0x42, 0x1e]);
                nals.push(vec![0x68, r + 1, 0xce]);
            }
            nals.push(slice_body(if key { &[0x65] } else { &[0x41] }));
        }
        Codec::H265 => {
            nals.push(vec![0x46, 0x01, 0x50]);
            if params {
                nals.push(vec![0x40, 0x01, r + 1]);
                nals.push(vec![0x42, 0x01, r + 1]);
                nals.push(vec![0x44, 0x01, r + 1]);
            }
            nals.push(slice_body(if key { &[0x26, 0x01] } else { &[0x02, 0x01] }));
        }
    }
    let mut out = Vec::new();
    for n in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&n);
    }
    out
}

/// NAL units (type, rendition) of an access unit built by [`au`].
fn nals(codec: Codec, data: &[u8]) -> Vec<(u8, u8)> {
    let mut v = Vec::new();
    let mut i = 0;
    let mut starts = Vec::new();
    while i + 4 <= data.len() {
        if data[i..i + 4] == [0, 0, 0, 1] {
            starts.push(i + 4);
            i += 4;
        } else {
            i += 1;
        }
    }
    for (k, s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |n| n - 4);
        let nal = &data[*s..end];
        let (kind, marker) = match codec {
            Codec::H264 => (nal[0] & 0x1f, nal[1]),
            Codec::H265 => ((nal[0] >> 1) & 0x3f, nal[2]),
        };
        v.push((kind, marker.wrapping_sub(1)));
    }
    v
}

fn caps(codec: Codec, r: u8) -> gst::Caps {
    let name = match codec {
        Codec::H264 => "video/x-h264",
        Codec::H265 => "video/x-h265",
    };
    gst::Caps::builder(name)
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .field("width", 320 * (r as i32 + 1))
        .field("height", 180 * (r as i32 + 1))
        .field("framerate", gst::Fraction::new(30, 1))
        .build()
}

fn buffer(data: Vec<u8>, n: u64, key: bool) -> gst::Buffer {
    let mut b = gst::Buffer::from_mut_slice(data);
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(n * F));
        b.set_dts(gst::ClockTime::from_nseconds(n * F));
        b.set_duration(gst::ClockTime::from_nseconds(F));
        if !key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
    }
    b
}

/// What went out of `src`, in order.
#[derive(Debug, Clone)]
enum Out {
    Buffer {
        pts: u64,
        /// Rendition of the slice.
        r: u8,
        key: bool,
        /// NAL types, in order.
        kinds: Vec<u8>,
        /// Every NAL is of the slice's rendition.
        consistent: bool,
        discont: bool,
        delta: bool,
    },
    StreamStart,
    Caps(i32),
    Segment,
    Tag,
    Eos,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
struct SwitchMsg {
    from: Option<String>,
    to: String,
    from_bitrate: u64,
    to_bitrate: u64,
    reason: String,
    estimate: u64,
    running_time: u64,
}

/// `abrselector` with one harness per rendition: `hs[0]` also owns `src`.
struct Ladder {
    el: gst::Element,
    hs: Vec<Harness>,
    bus: gst::Bus,
    out: Arc<Mutex<Vec<Out>>>,
    codec: Codec,
    gop: u64,
}

impl Ladder {
    fn new(name: &str, codec: Codec, bitrates: &[u64], props: &[(&str, &str)]) -> Ladder {
        init();
        let mut b = gst::ElementFactory::make("abrselector").name(name);
        for (k, v) in props {
            b = b.property_from_str(k, v);
        }
        let el = b.build().unwrap();
        let bus = gst::Bus::new();
        el.set_bus(Some(&bus));
        let out = Arc::new(Mutex::new(Vec::new()));
        let rec = out.clone();
        el.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_pad, info| {
                let item = match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => {
                        let map = b.map_readable().unwrap();
                        let n = nals(codec, &map);
                        let slice = n.last().copied().unwrap_or((0, 255));
                        let key = match codec {
                            Codec::H264 => slice.0 == 5,
                            Codec::H265 => (16..=21).contains(&slice.0),
                        };
                        Out::Buffer {
                            pts: b.pts().unwrap().nseconds(),
                            r: slice.1,
                            key,
                            kinds: n.iter().map(|x| x.0).collect(),
                            consistent: n.iter().skip(1).all(|x| x.1 == slice.1),
                            discont: b.flags().contains(gst::BufferFlags::DISCONT),
                            delta: b.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        }
                    }
                    Some(gst::PadProbeData::Event(e)) => match e.view() {
                        gst::EventView::StreamStart(_) => Out::StreamStart,
                        gst::EventView::Caps(c) => {
                            Out::Caps(c.caps().structure(0).unwrap().get::<i32>("width").unwrap())
                        }
                        gst::EventView::Segment(_) => Out::Segment,
                        gst::EventView::Tag(_) => Out::Tag,
                        gst::EventView::Eos(_) => Out::Eos,
                        _ => Out::Other,
                    },
                    _ => Out::Other,
                };
                rec.lock().unwrap().push(item);
                gst::PadProbeReturn::Ok
            },
        );
        let mut hs = Vec::new();
        for (i, br) in bitrates.iter().enumerate() {
            let pad = format!("sink_{i}");
            let mut h = if i == 0 {
                Harness::with_element(&el, Some(&pad), Some("src"))
            } else {
                Harness::with_element(&el, Some(&pad), None)
            };
            el.static_pad(&pad).unwrap().set_property("bitrate", *br);
            h.set_src_caps(caps(codec, i as u8));
            hs.push(h);
        }
        hs[0].set_drop_buffers(true);
        Ladder {
            el,
            hs,
            bus,
            out,
            codec,
            gop: 15,
        }
    }

    /// Pushes frame `n` of rendition `r`.
    fn push_frame(&mut self, r: usize, n: u64, key: bool, params: bool) -> gst::FlowSuccess {
        let data = au(self.codec, r as u8, key, params, 200);
        self.hs[r]
            .push(buffer(data, n, key))
            .unwrap_or_else(|e| panic!("push of frame {n} on sink_{r}: {e:?}"))
    }

    /// Frame `n` of every rendition (keyframes with parameter sets every
    /// `gop` frames).
    fn frame(&mut self, n: u64) {
        let key = n.is_multiple_of(self.gop);
        for r in 0..self.hs.len() {
            self.push_frame(r, n, key, key);
        }
    }

    fn frames(&mut self, range: std::ops::Range<u64>) {
        for n in range {
            self.frame(n);
        }
    }

    fn set_estimate(&self, bps: u64) {
        self.el.set_property("bandwidth-estimate", bps);
    }

    fn output(&self) -> Vec<Out> {
        self.out.lock().unwrap().clone()
    }

    /// (pts, rendition, key, params present, discont) of the output buffers.
    fn buffers(&self) -> Vec<(u64, u8, bool, bool, bool)> {
        self.output()
            .into_iter()
            .filter_map(|o| match o {
                Out::Buffer {
                    pts,
                    r,
                    key,
                    kinds,
                    discont,
                    ..
                } => {
                    let params = match self.codec {
                        Codec::H264 => kinds.contains(&7) && kinds.contains(&8),
                        Codec::H265 => {
                            kinds.contains(&32) && kinds.contains(&33) && kinds.contains(&34)
                        }
                    };
                    Some((pts, r, key, params, discont))
                }
                _ => None,
            })
            .collect()
    }

    fn switches(&self) -> Vec<SwitchMsg> {
        let mut v = Vec::new();
        while let Some(m) = self.bus.pop_filtered(&[gst::MessageType::Element]) {
            let s = m.structure().unwrap();
            if s.name() == "abr-switch" {
                v.push(SwitchMsg {
                    from: s.get::<Option<String>>("from").unwrap(),
                    to: s.get::<String>("to").unwrap(),
                    from_bitrate: s.get::<u64>("from-bitrate").unwrap(),
                    to_bitrate: s.get::<u64>("to-bitrate").unwrap(),
                    reason: s.get::<String>("reason").unwrap(),
                    estimate: s.get::<u64>("estimate").unwrap(),
                    running_time: s.get::<u64>("running-time").unwrap(),
                });
            }
        }
        v
    }

    fn warnings(&self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(m) = self.bus.pop_filtered(&[gst::MessageType::Warning]) {
            if let gst::MessageView::Warning(w) = m.view() {
                v.push(w.error().to_string());
            }
        }
        v
    }

    fn stat<T: for<'a> glib::value::FromValue<'a> + 'static>(&self, field: &str) -> T {
        self.el
            .property::<gst::Structure>("stats")
            .get::<T>(field)
            .unwrap()
    }

    fn pad_stat<T: for<'a> glib::value::FromValue<'a> + 'static>(
        &self,
        r: usize,
        field: &str,
    ) -> T {
        self.el
            .static_pad(&format!("sink_{r}"))
            .unwrap()
            .property::<gst::Structure>("stats")
            .get::<T>(field)
            .unwrap()
    }

    fn current(&self) -> Option<String> {
        self.el.property::<Option<String>>("current")
    }
}

use gst::glib;

/// Checks the output is one stream: one stream-start and segment, PTS
/// strictly increasing by one frame (nothing lost or repeated across
/// switches), every rendition change on a keyframe with its own parameter
/// sets and DISCONT, caps announcing every change of rendition.
fn check_continuous(l: &Ladder, first: u64) {
    let out = l.output();
    let count = |f: fn(&Out) -> bool| out.iter().filter(|o| f(o)).count();
    assert_eq!(count(|o| matches!(o, Out::StreamStart)), 1, "{out:?}");
    assert_eq!(count(|o| matches!(o, Out::Segment)), 1);
    let mut width = None;
    let mut last: Option<(u64, u8)> = None;
    for o in &out {
        match o {
            Out::Caps(w) => width = Some(*w),
            Out::Buffer {
                pts,
                r,
                key,
                kinds,
                consistent,
                discont,
                delta,
            } => {
                assert!(*consistent, "NALs of another rendition in {pts}: {kinds:?}");
                assert_eq!(width, Some(320 * (*r as i32 + 1)), "caps at {pts}");
                assert_eq!(*delta, !*key, "DELTA_UNIT at {pts}");
                match last {
                    None => {
                        assert_eq!(*pts, first * F);
                        assert!(*key);
                    }
                    Some((p, prev)) => {
                        assert_eq!(*pts, p + F, "PTS not continuous after {p}");
                        if prev != *r {
                            assert!(*key, "switch {prev} -> {r} at {pts} not on a keyframe");
                            assert!(*discont, "no DISCONT at the switch at {pts}");
                        } else {
                            assert!(!*discont, "DISCONT without switch at {pts}");
                        }
                    }
                }
                if last.is_none_or(|(_, prev)| prev != *r) {
                    let params: &[u8] = match l.codec {
                        Codec::H264 => &[9, 7, 8],
                        Codec::H265 => &[35, 32, 33, 34],
                    };
                    assert_eq!(&kinds[..params.len()], params, "parameter sets at {pts}");
                }
                last = Some((*pts, *r));
            }
            _ => {}
        }
    }
}

/// The estimate steps 5, 1, 3, 0.5, 5 Mb/s on a 0.8/2/4 Mb/s ladder:
/// initial 4 Mb/s, down to 0.8, up to 2 (2 x 1.2 <= 3, the last switch 10 s
/// before: at once), down to 0.8, up to 4 (4 x 1.2 <= 5); each switch on
/// the target's next keyframe, messages with the right fields, counters and
/// gauges in the registry.
#[test]
fn property_steps_switch_down_and_up_in_order() {
    let mut l = Ladder::new(
        "abr_steps",
        Codec::H264,
        &[800_000, 2 * MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("min-switch-interval", "1900000000"),
            ("up-factor", "1.2"),
            ("estimator", "none"),
            ("max-queue-delay", "0"),
        ],
    );
    l.set_estimate(5 * MB);
    // Steps at 10.2, 20.2, 30.2, 40.2 s; keyframes every 0.5 s.
    let steps = [(306, MB), (606, 3 * MB), (906, MB / 2), (1206, 5 * MB)];
    let mut next = 0;
    for n in 0..1500 {
        if next < steps.len() && steps[next].0 == n {
            l.set_estimate(steps[next].1);
            next += 1;
        }
        l.frame(n);
    }
    let got = l.switches();
    let expect = [
        (None, "sink_2", 0, 4 * MB, "initial", 5 * MB, 0),
        (Some("sink_2"), "sink_0", 4 * MB, 800_000, "down", MB, 315),
        (Some("sink_0"), "sink_1", 800_000, 2 * MB, "up", 3 * MB, 615),
        (
            Some("sink_1"),
            "sink_0",
            2 * MB,
            800_000,
            "down",
            MB / 2,
            915,
        ),
        (
            Some("sink_0"),
            "sink_2",
            800_000,
            4 * MB,
            "up",
            5 * MB,
            1215,
        ),
    ];
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expect) {
        assert_eq!(g.from.as_deref(), e.0, "{g:?}");
        assert_eq!(g.to, e.1, "{g:?}");
        assert_eq!((g.from_bitrate, g.to_bitrate), (e.2, e.3), "{g:?}");
        assert_eq!(g.reason, e.4, "{g:?}");
        let rel = (g.estimate as f64 - e.5 as f64).abs() / e.5 as f64;
        assert!(rel < 0.1, "estimate {} vs {}: {g:?}", g.estimate, e.5);
        assert_eq!(g.running_time, e.6 * F, "{g:?}");
    }
    check_continuous(&l, 0);
    let b = l.buffers();
    assert_eq!(b.len(), 1500);
    // Rendition by time follows the switches.
    for (pts, r, ..) in &b {
        let n = pts / F;
        let want = match n {
            0..315 => 2,
            315..615 => 0,
            615..915 => 1,
            915..1215 => 0,
            _ => 2,
        };
        assert_eq!(*r, want, "frame {n}");
    }
    assert_eq!(l.current().as_deref(), Some("sink_2"));
    assert_eq!(l.stat::<u64>("switches-up"), 2);
    assert_eq!(l.stat::<u64>("switches-down"), 2);
    assert_eq!(
        l.pad_stat::<u64>(0, "forwarded"),
        (615 - 315) + (1215 - 915)
    );
    assert_eq!(
        l.pad_stat::<u64>(0, "dropped"),
        1500 - (615 - 315) - (1215 - 915)
    );
    assert_eq!(l.pad_stat::<String>(1, "bitrate-source"), "property");

    let text = gstbroadcast_exporter::render_local_text();
    let labels = r#"element="abr_steps",pipeline="abr_steps",stream="src""#;
    for line in [
        format!(r#"gst_abrselector_switches_total{{direction="down",{labels}}} 2"#),
        format!(r#"gst_abrselector_switches_total{{direction="up",{labels}}} 2"#),
        format!(r#"gst_abrselector_current_rendition{{{labels}}} 2"#),
        r#"gst_abrselector_buffers_forwarded_total{element="abr_steps",pipeline="abr_steps",stream="sink_0"} 600"#.to_string(),
        r#"gst_abrselector_rendition_bitrate_bits_per_second{element="abr_steps",pipeline="abr_steps",stream="sink_1"} 2000000"#.to_string(),
    ] {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    let est = text
        .lines()
        .find(|l| {
            l.starts_with(
                "gst_abrselector_bandwidth_estimate_bits_per_second{element=\"abr_steps\"",
            )
        })
        .expect("estimate gauge");
    let v: f64 = est.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((v - 5e6).abs() < 1e4, "{est}");

    // Stopping removes the series.
    l.el.set_state(gst::State::Null).unwrap();
    let text = gstbroadcast_exporter::render_local_text();
    assert!(!text.contains("abr_steps"), "{text}");
}

/// 2.3 Mb/s never moves the 1 Mb/s rendition up to 2 Mb/s (over 0.85 x
/// 2.3, and no headroom: 2 x 1.3 = 2.6); 2.4 Mb/s does (2 <= 0.85 x 2.4),
/// but only after min-switch-interval (3 s) and on the target's next
/// keyframe.
#[test]
fn up_factor_and_min_switch_interval_hold_off_upswitch() {
    let mut l = Ladder::new(
        "abr_hold",
        Codec::H264,
        &[MB, 2 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("min-switch-interval", "3000000000"),
            ("up-factor", "1.3"),
            ("estimator", "none"),
            ("max-queue-delay", "0"),
        ],
    );
    l.set_estimate(1_500_000);
    l.frames(0..66);
    l.set_estimate(2_300_000);
    l.frames(66..366);
    let s = l.switches();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        (s[0].to.as_str(), s[0].reason.as_str()),
        ("sink_0", "initial")
    );
    // The estimate is 2.3 Mb/s, and no upswitch in 10 s.
    let est = l.stat::<u64>("estimate");
    assert_eq!(est, 2_300_000);
    assert_eq!(l.current().as_deref(), Some("sink_0"));

    // 12.2 s: 2.4 Mb/s, the estimate at once (set by the application):
    // the switch is decided at 15.2 s and lands on the keyframe at 15.5 s.
    l.set_estimate(2_400_000);
    l.frames(366..600);
    let s = l.switches();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].to.as_str(), s[0].reason.as_str()), ("sink_1", "up"));
    assert_eq!(s[0].running_time, 465 * F);
    assert!(s[0].running_time >= 366 * F + 3 * SECOND);
    check_continuous(&l, 0);
}

/// `abr-bandwidth-estimate` custom events change the estimate: upstream on
/// `src` and in-band on a sink pad (any integer type); a malformed one is
/// refused with a warning.
#[test]
fn custom_events_change_the_estimate() {
    let mut l = Ladder::new(
        "abr_events",
        Codec::H264,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("min-switch-interval", "1000000000"),
            ("estimator", "none"),
        ],
    );
    // No estimate at all: the highest rendition.
    l.frames(0..36);
    assert_eq!(l.current().as_deref(), Some("sink_1"));
    assert_eq!(l.stat::<u64>("estimate"), 0);

    let ev = gst::event::CustomUpstream::new(
        gst::Structure::builder("abr-bandwidth-estimate")
            .field("bitrate", 1_500_000u64)
            .build(),
    );
    assert!(l.hs[0].push_upstream_event(ev));
    l.frames(36..66);
    let est = l.stat::<u64>("estimate");
    assert!((est as f64 - 1.5e6).abs() < 1e4, "{est}");
    let s = l.switches();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[1].to.as_str(), s[1].reason.as_str()), ("sink_0", "down"));
    assert_eq!(s[1].running_time, 45 * F);

    // In-band on sink_1, as a guint: serialized with the buffers.
    let ev = gst::event::CustomDownstream::new(
        gst::Structure::builder("abr-bandwidth-estimate")
            .field("bitrate", 9_000_000u32)
            .build(),
    );
    assert!(l.hs[1].push_event(ev));
    l.frames(66..150);
    let s = l.switches();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].to.as_str(), s[0].reason.as_str()), ("sink_1", "up"));
    // Headroom at once (4 x 1.3 <= 9), min-switch-interval (1 s) after the
    // last switch at frame 45: 75 is 1 ns short of it (33333333 ns frames),
    // so the next keyframe.
    assert_eq!(s[0].running_time, 90 * F);
    let est = l.stat::<u64>("estimate");
    assert!((est as f64 - 9e6).abs() < 1e4, "{est}");

    // Out-of-band downstream, as a double.
    let ev = gst::event::CustomDownstreamOob::new(
        gst::Structure::builder("abr-bandwidth-estimate")
            .field("bitrate", 2e6f64)
            .build(),
    );
    assert!(l.hs[0].push_event(ev));
    l.frames(150..170);
    let est = l.stat::<u64>("estimate");
    assert!((est as f64 - 2e6).abs() < 2e4, "{est}");

    // Malformed: refused, with a warning naming the event.
    l.warnings();
    let ev = gst::event::CustomUpstream::new(
        gst::Structure::builder("abr-bandwidth-estimate")
            .field("rate", "fast")
            .build(),
    );
    assert!(!l.hs[0].push_upstream_event(ev));
    let w = l.warnings();
    assert!(
        w.iter().any(|m| m.contains("abr-bandwidth-estimate")),
        "{w:?}"
    );
    check_continuous(&l, 0);
}

/// With force-key-unit=true a decided switch sends an upstream
/// GstForceKeyUnit (all-headers) on the target's pad only, once; the
/// encoder's early keyframe is where the switch lands.
#[test]
fn force_key_unit_is_sent_upstream_on_the_target() {
    let mut l = Ladder::new(
        "abr_fku",
        Codec::H264,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("force-key-unit", "true"),
            ("estimator", "none"),
        ],
    );
    l.gop = 90;
    l.set_estimate(5 * MB);
    let fku = |h: &mut Harness| {
        let mut n = 0;
        while let Some(e) = h.try_pull_upstream_event() {
            if let Ok(f) = gst_video::UpstreamForceKeyUnitEvent::parse(&e) {
                assert!(f.all_headers);
                n += 1;
            }
        }
        n
    };
    l.frames(0..30);
    assert_eq!(l.current().as_deref(), Some("sink_1"));
    // The first selection asked sink_1 for a keyframe.
    assert_eq!(fku(&mut l.hs[1]), 1);
    assert_eq!(fku(&mut l.hs[0]), 0);

    l.set_estimate(MB);
    l.frames(30..33);
    assert_eq!(fku(&mut l.hs[0]), 1, "force-key-unit on the target");
    assert_eq!(fku(&mut l.hs[1]), 0);
    l.frames(33..36);
    assert_eq!(fku(&mut l.hs[0]), 0, "sent once per decision");
    // The "encoder" answers with a keyframe at frame 36 (GOP would be 90).
    l.push_frame(0, 36, true, true);
    l.push_frame(1, 36, false, false);
    l.frames(37..50);
    let s = l.switches();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[1].to.as_str(), s[1].running_time), ("sink_0", 36 * F));
    check_continuous(&l, 0);
}

/// Keyframes without SPS/PPS (config-interval=0 upstream): the switch
/// keyframe gets the target's cached parameter sets after its AUD.
#[test]
fn cached_parameter_sets_are_inserted_at_the_switch() {
    let mut l = Ladder::new(
        "abr_params",
        Codec::H264,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("estimator", "none"),
        ],
    );
    l.set_estimate(5 * MB);
    // Parameter sets only in the first access unit of each rendition.
    for n in 0..60u64 {
        if n == 36 {
            l.set_estimate(MB);
        }
        let key = n.is_multiple_of(15);
        for r in 0..2 {
            l.push_frame(r, n, key, n == 0);
        }
    }
    let s = l.switches();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[1].to.as_str(), s[1].running_time), ("sink_0", 45 * F));
    let out = l.output();
    let at_switch = out
        .iter()
        .find_map(|o| match o {
            Out::Buffer { pts, kinds, r, .. } if *pts == 45 * F => Some((kinds.clone(), *r)),
            _ => None,
        })
        .unwrap();
    assert_eq!(at_switch, (vec![9, 7, 8, 5], 0));
    assert_eq!(l.pad_stat::<u64>(0, "parameter-sets-inserted"), 1);
    assert_eq!(l.pad_stat::<u64>(1, "parameter-sets-inserted"), 0);
    assert_eq!(l.stat::<u64>("parameter-sets-inserted"), 1);
    check_continuous(&l, 0);
}

/// A target whose keyframes carry no parameter sets and has none cached is
/// not switched to until a keyframe brings them.
#[test]
fn switch_waits_for_parameter_sets() {
    let mut l = Ladder::new(
        "abr_noparams",
        Codec::H264,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("estimator", "none"),
        ],
    );
    l.set_estimate(5 * MB);
    for n in 0..100u64 {
        if n == 6 {
            l.set_estimate(MB);
        }
        let key = n.is_multiple_of(15);
        l.push_frame(1, n, key, key);
        // sink_0 sends SPS/PPS for the first time at frame 75.
        l.push_frame(0, n, key, n == 75);
    }
    let s = l.switches();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[1].to.as_str(), s[1].running_time), ("sink_0", 75 * F));
    assert_eq!(l.stat::<Option<String>>("pending"), None);
    check_continuous(&l, 0);
}

/// The switch instant is one point in time whatever the threads' order:
/// a target running ahead is held until the old rendition reaches its
/// keyframe; nothing is lost or repeated.
#[test]
fn target_ahead_is_held_until_the_old_rendition_reaches_the_switch() {
    let mut l = Ladder::new(
        "abr_ahead",
        Codec::H264,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("estimator", "none"),
        ],
    );
    l.set_estimate(5 * MB);
    l.frames(0..20);
    l.set_estimate(MB);
    // sink_0 (the target) runs 8 frames ahead of sink_1.
    for n in 20..28 {
        l.push_frame(0, n, n.is_multiple_of(15), n.is_multiple_of(15));
    }
    for n in 20..80u64 {
        let k = n + 8;
        l.push_frame(0, k, k.is_multiple_of(15), k.is_multiple_of(15));
        // The keyframe at 30 is held while sink_1 is still before it.
        if n < 30 {
            assert_eq!(l.current().as_deref(), Some("sink_1"), "frame {n}");
        }
        l.push_frame(1, n, n.is_multiple_of(15), n.is_multiple_of(15));
    }
    let s = l.switches();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[1].to.as_str(), s[1].running_time), ("sink_0", 30 * F));
    check_continuous(&l, 0);
    assert_eq!(l.buffers().len(), 88);
}

/// A selected rendition that runs ahead of the target (another thread, a
/// slower encoder for the target, or just pushed first) holds its buffers
/// from the target's predicted next keyframe (from its keyframe interval)
/// until the target shows that time; the switch lands there, nothing is
/// lost or repeated, and no push waits.
#[test]
fn old_rendition_ahead_holds_at_the_predicted_keyframe() {
    let mut l = Ladder::new(
        "abr_behind",
        Codec::H264,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("min-switch-interval", "1000000000"),
            ("estimator", "none"),
        ],
    );
    l.set_estimate(5 * MB);
    l.frames(0..20);
    l.set_estimate(MB);
    l.frame(20);
    let g = |n: u64| n.is_multiple_of(15);
    // sink_1 (selected) is pushed 5 frames ahead of sink_0.
    for n in 21..26 {
        l.push_frame(1, n, g(n), g(n));
    }
    for n in 26..70 {
        l.push_frame(1, n, g(n), g(n));
        if (30..35).contains(&n) {
            // Held at the predicted keyframe (30) of sink_0.
            assert_eq!(l.buffers().last().unwrap().0, 29 * F, "frame {n}");
        }
        l.push_frame(0, n - 5, g(n - 5), g(n - 5));
    }
    for n in 65..70 {
        l.push_frame(0, n, g(n), g(n));
    }
    let s = l.switches();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[1].to.as_str(), s[1].running_time), ("sink_0", 30 * F));
    check_continuous(&l, 0);
    assert_eq!(l.buffers().len(), 70);

    // A keyframe that does not come where predicted (sink_1's GOP changes
    // to 20 frames): the held buffers go out, the switch lands on the
    // actual keyframe.
    l.set_estimate(6 * MB);
    let g2 = |n: u64| n.is_multiple_of(15) && n < 90 || n >= 90 && (n - 90).is_multiple_of(20);
    for n in 70..200 {
        l.push_frame(0, n, g(n), g(n));
        l.push_frame(1, n, g2(n), g2(n));
    }
    let s = l.switches();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].to, "sink_1");
    assert!(g2(s[0].running_time / F));
    check_continuous(&l, 0);
    assert_eq!(l.buffers().len(), 200);
}

/// An old rendition that stops delivering does not hold the target back
/// for more than 2 s of running time.
#[test]
fn stalled_old_rendition_is_cut_at_the_switch() {
    let mut l = Ladder::new(
        "abr_stall",
        Codec::H264,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("estimator", "none"),
        ],
    );
    l.set_estimate(5 * MB);
    l.frames(0..20);
    l.set_estimate(MB);
    l.frames(20..25);
    // sink_1 stalls at frame 25; sink_0 goes on.
    for n in 25..120u64 {
        l.push_frame(0, n, n.is_multiple_of(15), n.is_multiple_of(15));
    }
    let s = l.switches();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[1].to.as_str(), s[1].running_time), ("sink_0", 30 * F));
    let b = l.buffers();
    // 0..25 from sink_1, the gap 25..30, then 30.. from sink_0.
    assert_eq!(b.iter().filter(|x| x.1 == 1).count(), 25);
    assert_eq!(b.iter().filter(|x| x.1 == 0).count(), 90);
    assert!(b.windows(2).all(|w| w[0].0 < w[1].0));
    // A late buffer of the old rendition is dropped.
    l.push_frame(1, 25, false, false);
    assert_eq!(l.buffers().len(), b.len());
}

/// Non-selected renditions never block: while the selected rendition's
/// push is stuck downstream, pushes on the others return at once.
#[test]
fn non_selected_pads_never_block() {
    let mut l = Ladder::new(
        "abr_block",
        Codec::H264,
        &[MB, 2 * MB, 4 * MB],
        &[("estimator", "none")],
    );
    l.set_estimate(3 * MB);
    l.frames(0..10);
    assert_eq!(l.current().as_deref(), Some("sink_1"));
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate_rx = Mutex::new(gate_rx);
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let src = l.el.static_pad("src").unwrap();
    let probe = src
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = gate_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            gst::PadProbeReturn::Ok
        })
        .unwrap();
    let Ladder { hs, el, .. } = &mut l;
    let el = el.clone();
    let (a, b) = hs.split_at_mut(1);
    let (h1, c) = b.split_at_mut(1);
    let (h0, h1, h2) = (&mut a[0], &mut h1[0], &mut c[0]);
    std::thread::scope(|scope| {
        let t = scope.spawn(move || {
            h1.push(buffer(au(Codec::H264, 1, false, false, 100), 10, false))
                .unwrap();
        });
        entered_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("selected push reached the blocked sink");
        for n in 10..40u64 {
            let key = n.is_multiple_of(15);
            for (r, h) in [(0u8, &mut *h0), (2u8, &mut *h2)] {
                let start = Instant::now();
                h.push(buffer(au(Codec::H264, r, key, key, 100), n, key))
                    .unwrap();
                assert!(
                    start.elapsed() < Duration::from_millis(100),
                    "push on sink_{r} waited {:?}",
                    start.elapsed()
                );
            }
        }
        // Estimates and properties do not wait either.
        let start = Instant::now();
        let _ = el.property::<gst::Structure>("stats");
        assert!(start.elapsed() < Duration::from_millis(100));
        gate_tx.send(()).unwrap();
        t.join().unwrap();
    });
    src.remove_probe(probe);
}

/// Push timing: a sink that takes 66 ms per 33 ms buffer is the
/// bottleneck; the estimate follows its throughput and the selector goes
/// down to the rendition that fits.
#[test]
fn push_timing_measures_a_blocking_sink() {
    let mut l = Ladder::new(
        "abr_timing",
        Codec::H264,
        &[20_000, 60_000, 400_000],
        &[
            ("estimator", "auto"),
            ("fast-half-life", "0.2"),
            ("slow-half-life", "0.4"),
        ],
    );
    l.gop = 6;
    let src = l.el.static_pad("src").unwrap();
    src.add_probe(gst::PadProbeType::BUFFER, |_, _| {
        std::thread::sleep(Duration::from_millis(66));
        gst::PadProbeReturn::Ok
    });
    // No estimate: the highest first. About 1000 bytes a frame at 15 fps
    // of wall time: 120 kb/s.
    for n in 0..30u64 {
        let key = n.is_multiple_of(l.gop);
        for r in 0..3 {
            let data = au(Codec::H264, r as u8, key, key, 1000);
            l.hs[r].push(buffer(data, n, key)).unwrap();
        }
    }
    let s = l.switches();
    assert!(s.len() >= 2, "{s:?}");
    assert_eq!(
        (s[0].to.as_str(), s[0].reason.as_str()),
        ("sink_2", "initial")
    );
    assert_eq!((s[1].to.as_str(), s[1].reason.as_str()), ("sink_1", "down"));
    let est = s[1].estimate as f64;
    assert!((60_000.0..200_000.0).contains(&est), "{s:?}");
    // An explicit estimate takes over in auto mode.
    l.set_estimate(5 * MB);
    l.frames(30..50);
    let e = l.stat::<u64>("estimate");
    assert!(e > MB, "{e}");
}

/// Rendition bit rates from tags, or measured from bytes over PTS.
#[test]
fn bitrates_from_tags_or_measured() {
    let mut l = Ladder::new("abr_rates", Codec::H264, &[0, 0], &[("estimator", "none")]);
    let mut tags = gst::TagList::new();
    tags.get_mut()
        .unwrap()
        .add::<gst::tags::NominalBitrate>(&1_234_000u32, gst::TagMergeMode::Replace);
    assert!(l.hs[1].push_event(gst::event::Tag::new(tags)));
    l.frames(0..60);
    assert_eq!(l.pad_stat::<String>(1, "bitrate-source"), "tag");
    assert_eq!(l.pad_stat::<u64>(1, "bitrate"), 1_234_000);
    // sink_0 has 200 + 5 bytes and more a frame at 30 fps: about 50 kb/s.
    assert_eq!(l.pad_stat::<String>(0, "bitrate-source"), "measured");
    let m = l.pad_stat::<u64>(0, "bitrate") as f64;
    let size = |key: bool| au(Codec::H264, 0, key, key, 200).len() as f64;
    let expected = (size(false) * 14.0 + size(true)) / 15.0 * 8.0 * 30.0;
    assert!((m - expected).abs() / expected < 0.05, "{m} vs {expected}");
    // Known after 1 s: the first choice waited for both (1 s at most) and
    // with no estimate took the highest.
    let s = l.switches();
    assert_eq!(s[0].to, "sink_1", "{s:?}");
}

/// H.265: IRAP switch points need VPS, SPS and PPS; a keyframe whose
/// missing VPS is cached gets it inserted.
#[test]
fn h265_switches_on_irap_with_vps() {
    let mut l = Ladder::new(
        "abr_hevc",
        Codec::H265,
        &[MB, 4 * MB],
        &[
            ("fast-half-life", "0.05"),
            ("slow-half-life", "0.1"),
            ("estimator", "none"),
        ],
    );
    l.set_estimate(5 * MB);
    l.frames(0..20);
    l.set_estimate(MB);
    for n in 20..60u64 {
        let key = n.is_multiple_of(15);
        l.push_frame(1, n, key, key);
        l.push_frame(0, n, key, key);
    }
    let s = l.switches();
    assert_eq!((s[1].to.as_str(), s[1].running_time), ("sink_0", 30 * F));
    check_continuous(&l, 0);
}

/// Bad input: caps that are not H.264/H.265 byte-stream are refused with a
/// warning and a counter; data that is not Annex B is counted and warned
/// about once, never a switch point, never a panic.
#[test]
fn bad_input_is_warned_and_counted() {
    let mut l = Ladder::new(
        "abr_bad",
        Codec::H264,
        &[MB, 4 * MB],
        &[("estimator", "none")],
    );
    l.set_estimate(5 * MB);
    let raw = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .build();
    l.hs[0].push_event(gst::event::Caps::new(&raw));
    let avc = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .build();
    l.hs[0].push_event(gst::event::Caps::new(&avc));
    assert_eq!(l.pad_stat::<u64>(0, "rejected-caps"), 2);
    // The pad keeps its earlier caps (the harness has to send them again).
    let sink0 = l.el.static_pad("sink_0").unwrap();
    assert_eq!(sink0.current_caps().unwrap(), caps(Codec::H264, 0));
    assert!(l.hs[0].push_event(gst::event::Caps::new(&caps(Codec::H264, 0))));
    let w = l.warnings();
    assert!(w.iter().any(|m| m.contains("video/x-raw")), "{w:?}");
    assert!(w.iter().any(|m| m.contains("byte-stream")), "{w:?}");
    l.frames(0..10);
    // Garbage on the selected rendition: forwarded as is (it cannot be
    // judged), counted, one warning.
    for n in 10..13u64 {
        let b = buffer(vec![0x12, 0x34, 0x56, 0x78, 0x9a], n, false);
        l.hs[1].push(b).unwrap();
        l.push_frame(0, n, false, false);
    }
    assert_eq!(l.pad_stat::<u64>(1, "unparseable"), 3);
    let w = l.warnings();
    assert_eq!(
        w.iter().filter(|m| m.contains("Annex B")).count(),
        1,
        "{w:?}"
    );
    let text = gstbroadcast_exporter::render_local_text();
    assert!(text.contains(
        r#"gst_abrselector_unparseable_buffers_total{element="abr_bad",pipeline="abr_bad",stream="sink_1"} 3"#
    ));
    assert!(text.contains(
        r#"gst_abrselector_rejected_caps_total{element="abr_bad",pipeline="abr_bad",stream="sink_0"} 2"#
    ));
    // A rendition without keyframes for 10 s: one warning, a counter.
    l.gop = 1000;
    l.frames(13..330);
    assert_eq!(l.pad_stat::<u64>(0, "keyframe-timeouts"), 1);
    let w = l.warnings();
    assert!(w.iter().any(|m| m.contains("no keyframe")), "{w:?}");
}

/// EOS goes out when the selected rendition ends; the others' EOS is
/// absorbed, and their later buffers are refused.
#[test]
fn eos_follows_the_selected_rendition() {
    let mut l = Ladder::new(
        "abr_eos",
        Codec::H264,
        &[MB, 4 * MB],
        &[("estimator", "none")],
    );
    l.set_estimate(5 * MB);
    l.frames(0..10);
    assert!(l.hs[0].push_event(gst::event::Eos::new()));
    assert!(!l.output().iter().any(|o| matches!(o, Out::Eos)));
    l.push_frame(1, 10, false, false);
    assert!(l.hs[1].push_event(gst::event::Eos::new()));
    let out = l.output();
    assert!(matches!(out.last(), Some(Out::Eos)), "{out:?}");
    assert_eq!(out.iter().filter(|o| matches!(o, Out::Eos)).count(), 1);
}

/// A flush on the selected rendition is forwarded and a new segment
/// follows; output starts again on a keyframe.
#[test]
fn flush_restarts_the_output_segment() {
    let mut l = Ladder::new(
        "abr_flush",
        Codec::H264,
        &[MB, 4 * MB],
        &[("estimator", "none")],
    );
    l.set_estimate(5 * MB);
    l.frames(0..10);
    for h in l.hs.iter_mut() {
        assert!(h.push_event(gst::event::FlushStart::new()));
    }
    for h in l.hs.iter_mut() {
        assert!(h.push_event(gst::event::FlushStop::new(true)));
        h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
    }
    l.frames(0..20);
    let out = l.output();
    assert_eq!(out.iter().filter(|o| matches!(o, Out::Segment)).count(), 2);
    let b = l.buffers();
    assert_eq!(b.len(), 30);
    assert!(b[10].2 && b[10].0 == 0);
}

/// Real x264enc renditions (320x180, 480x270, 640x360) through
/// abrselector, driven down and up by in-band estimate events; the output
/// decodes with avdec_h264 at the rendition's size, and FFmpeg reports no
/// error over the whole stream.
#[test]
fn x264_renditions_decode_across_switches() {
    init();
    let dir = std::env::temp_dir().join(format!("abrselector-x264-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("out.h264");
    let sizes = [(320, 180, 300), (480, 270, 600), (640, 360, 1200)];
    let mut desc = String::from(
        "videotestsrc num-buffers=240 pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! tee name=t ",
    );
    for (i, (w, h, kbps)) in sizes.iter().enumerate() {
        desc += &format!(
            "t. ! queue max-size-buffers=2 ! videoscale ! video/x-raw,width={w},height={h} ! \
             x264enc name=enc{i} bitrate={kbps} key-int-max=15 tune=zerolatency speed-preset=ultrafast ! \
             h264parse config-interval=-1 name=parse{i} ! abr.sink_{i} "
        );
    }
    desc += &format!(
        "abrselector name=abr estimator=none max-queue-delay=0 fast-half-life=0.1 slow-half-life=0.2 \
         min-switch-interval=1000000000 up-factor=1.2 bandwidth-estimate=1500000 \
         sink_0::bitrate=300000 sink_1::bitrate=600000 sink_2::bitrate=1200000 ! \
         tee name=o o. ! queue ! filesink location={} \
         o. ! queue ! h264parse ! avdec_h264 ! fakesink name=sink sync=false signal-handoffs=true",
        file.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    // In-band estimates on sink_0's stream: 0.4 Mb/s at 2.17 s, 1.5 at
    // 4.17 s (between keyframes).
    // (The encoders' timestamps start at 1000 h: frames are counted.)
    let parse0 = pipeline.by_name("parse0").unwrap();
    let count = std::sync::atomic::AtomicU64::new(0);
    parse0
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, _info| {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let bps = match n {
                65 => 400_000u64,
                125 => 1_500_000,
                _ => return gst::PadProbeReturn::Ok,
            };
            let ev = gst::event::CustomDownstream::new(
                gst::Structure::builder("abr-bandwidth-estimate")
                    .field("bitrate", bps)
                    .build(),
            );
            pad.push_event(ev);
            gst::PadProbeReturn::Ok
        });
    let frames = Arc::new(Mutex::new(Vec::<(u64, i32)>::new()));
    let f2 = frames.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .connect("handoff", false, move |args| {
            let buf = args[1].get::<gst::Buffer>().unwrap();
            let pad = args[2].get::<gst::Pad>().unwrap();
            let w = pad
                .current_caps()
                .and_then(|c| c.structure(0).and_then(|s| s.get::<i32>("width").ok()))
                .unwrap_or(0);
            let pts = buf.pts().map_or(0, |p| p.nseconds());
            f2.lock().unwrap().push((pts, w));
            None
        });
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut switches = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            gst::MessageView::Warning(w) => panic!("warning: {} {:?}", w.error(), w.debug()),
            gst::MessageView::Element(e) => {
                let s = e.structure().unwrap();
                if s.name() == "abr-switch" {
                    switches.push((
                        s.get::<String>("to").unwrap(),
                        s.get::<String>("reason").unwrap(),
                        s.get::<u64>("running-time").unwrap(),
                    ));
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let names: Vec<(&str, &str)> = switches
        .iter()
        .map(|(t, r, _)| (t.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        names,
        [("sink_2", "initial"), ("sink_0", "down"), ("sink_2", "up")],
        "{switches:?}"
    );
    // Decoded frames: all 240, sizes following the switches.
    let frames = frames.lock().unwrap().clone();
    assert_eq!(frames.len(), 240, "{frames:?}");
    let (t_down, t_up) = (switches[1].2, switches[2].2);
    assert!((60 * F..90 * F).contains(&t_down), "{switches:?}");
    assert!((120 * F..180 * F).contains(&t_up), "{switches:?}");
    assert!(frames.windows(2).all(|w| w[0].0 < w[1].0));
    for (n, (_, w)) in frames.iter().enumerate() {
        let rt = n as u64 * SECOND / 30;
        let want = if rt < t_down || rt >= t_up { 640 } else { 320 };
        assert_eq!(*w, want, "decoded width of frame {n}");
    }
    // FFmpeg decodes the whole elementary stream without an error.
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
