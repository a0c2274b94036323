// SPDX-License-Identifier: MPL-2.0

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_common::SegmentMap;
use gstbroadcast_exporter as exporter;

use super::{DriftCorrection, DuplicateMode, GapMode};
use crate::core::{
    Config, Input, Output, Repair, Report, StreamCore, StreamKind, Timeline, SECOND,
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "ptscorrector",
        gst::DebugColorFlags::empty(),
        Some("Timestamp repair"),
    )
});

const DEFAULT_JUMP_THRESHOLD: u64 = SECOND as u64;
const DEFAULT_MAX_REORDER: u32 = 4;
const DEFAULT_DRIFT_TOLERANCE: u64 = 20_000_000;
const DEFAULT_MAX_SLEW: u32 = 1000;
/// After the first message of a kind on a stream, at most one per this.
const MESSAGE_INTERVAL: Duration = Duration::from_secs(1);

/// Prometheus families shared by every `ptscorrector` instance.
struct Families {
    buffers: prometheus::IntCounterVec,
    repairs: Vec<prometheus::IntCounterVec>,
    filled: prometheus::IntCounterVec,
    drift: prometheus::GaugeVec,
    slew: prometheus::GaugeVec,
    correction: prometheus::GaugeVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let repairs = Repair::ALL
        .iter()
        .map(|k| {
            let (name, help) = match k {
                Repair::MissingPts => (
                    "gst_ptscorrector_missing_pts_total",
                    "Buffers without PTS, interpolated.",
                ),
                Repair::MissingDts => (
                    "gst_ptscorrector_missing_dts_total",
                    "Video buffers without DTS, DTS rebuilt from the PTS order.",
                ),
                Repair::DtsAfterPts => (
                    "gst_ptscorrector_dts_after_pts_total",
                    "Video buffers with DTS later than PTS, DTS rebuilt.",
                ),
                Repair::NonMonotonicDts => (
                    "gst_ptscorrector_nonmonotonic_dts_total",
                    "Video buffers whose DTS did not increase, DTS rebuilt.",
                ),
                Repair::Overlap => (
                    "gst_ptscorrector_overlaps_total",
                    "Audio buffers starting before the previous one ended, moved to its end.",
                ),
                Repair::JumpForward => (
                    "gst_ptscorrector_jumps_forward_total",
                    "Forward timestamp jumps beyond jump-threshold, re-based.",
                ),
                Repair::JumpBackward => (
                    "gst_ptscorrector_jumps_backward_total",
                    "Backward timestamp jumps beyond jump-threshold, re-based.",
                ),
                Repair::Wrap => (
                    "gst_ptscorrector_wraps_total",
                    "2^33 or 2^32 wraps of the 90 kHz clock, unwrapped.",
                ),
                Repair::Gap => (
                    "gst_ptscorrector_gaps_total",
                    "Gaps of more than 1.5 frame durations below jump-threshold.",
                ),
                Repair::Duplicate => (
                    "gst_ptscorrector_duplicates_total",
                    "Buffers with a PTS already sent (dropped unless duplicate-mode=pass).",
                ),
                Repair::Drift => (
                    "gst_ptscorrector_drift_slews_total",
                    "Drift slews started or stopped (drift beyond drift-tolerance).",
                ),
            };
            exporter::counter_vec(name, help)
        })
        .collect();
    Families {
        buffers: exporter::counter_vec("gst_ptscorrector_buffers_total", "Buffers received."),
        repairs,
        filled: exporter::counter_vec(
            "gst_ptscorrector_filled_total",
            "Buffers repeated into gaps (gap-mode=fill).",
        ),
        drift: exporter::float_gauge_vec(
            "gst_ptscorrector_drift_seconds",
            "PTS minus arrival running time against the first second, as last measured.",
        ),
        slew: exporter::float_gauge_vec(
            "gst_ptscorrector_slew_ppm",
            "Current drift slew rate, parts per million (negative slows the stream down).",
        ),
        correction: exporter::float_gauge_vec(
            "gst_ptscorrector_correction_seconds",
            "Output minus input timestamp: jump offsets, unwrapping and slew.",
        ),
    }
});

/// Metric handles of one stream; its series leave the registry when this
/// is dropped.
struct Series {
    buffers: prometheus::IntCounter,
    repairs: Vec<prometheus::IntCounter>,
    filled: prometheus::IntCounter,
    drift: prometheus::Gauge,
    slew: prometheus::Gauge,
    correction: prometheus::Gauge,
    _handle: exporter::Series,
}

impl Series {
    fn new(pipeline: &str, element: &str, stream: &str) -> Self {
        let mut h = exporter::Series::new(pipeline, element, stream);
        let f = &*FAMILIES;
        Series {
            buffers: h.child(&f.buffers),
            repairs: f.repairs.iter().map(|c| h.child(c)).collect(),
            filled: h.child(&f.filled),
            drift: h.child(&f.drift),
            slew: h.child(&f.slew),
            correction: h.child(&f.correction),
            _handle: h,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    jump_threshold: u64,
    max_reorder: u32,
    drift_correction: DriftCorrection,
    drift_tolerance: u64,
    max_slew: u32,
    gap_mode: GapMode,
    duplicate_mode: DuplicateMode,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            jump_threshold: DEFAULT_JUMP_THRESHOLD,
            max_reorder: DEFAULT_MAX_REORDER,
            drift_correction: DriftCorrection::Auto,
            drift_tolerance: DEFAULT_DRIFT_TOLERANCE,
            max_slew: DEFAULT_MAX_SLEW,
            gap_mode: GapMode::Pass,
            duplicate_mode: DuplicateMode::Drop,
        }
    }
}

impl Settings {
    fn config(&self) -> Config {
        Config {
            jump_threshold: self.jump_threshold.min(i64::MAX as u64) as i64,
            max_reorder: self.max_reorder,
            fill_gaps: self.gap_mode == GapMode::Fill,
            drop_duplicates: self.duplicate_mode == DuplicateMode::Drop,
            drift_tolerance: self.drift_tolerance.min(i64::MAX as u64) as i64,
            max_slew_ppm: self.max_slew,
        }
    }
}

struct StreamState {
    core: StreamCore<gst::Buffer>,
    input: Option<SegmentMap>,
    output: Option<SegmentMap>,
    /// Non-TIME segment: buffers pass untouched.
    bypass: bool,
    series: Option<Series>,
    /// Measure drift against the pipeline clock.
    drift: Option<bool>,
    clock: Option<(gst::Clock, gst::ClockTime)>,
    last_message: [Option<Instant>; Repair::ALL.len()],
    suppressed: [u64; Repair::ALL.len()],
    reported_filled: u64,
}

/// One `sink_%u` / `src_%u` pair.
struct Stream {
    id: u32,
    name: String,
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    state: Mutex<StreamState>,
}

impl Stream {
    fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one buffer produced, sent after the stream lock is released.
enum Outs {
    None,
    One(Output<gst::Buffer>),
    Many(Vec<Output<gst::Buffer>>),
}

impl Outs {
    fn push(&mut self, o: Output<gst::Buffer>) {
        *self = match std::mem::replace(self, Outs::None) {
            Outs::None => Outs::One(o),
            Outs::One(first) => Outs::Many(vec![first, o]),
            Outs::Many(mut v) => {
                v.push(o);
                Outs::Many(v)
            }
        };
    }
}

#[derive(Default)]
pub struct PtsCorrector {
    settings: Mutex<Settings>,
    streams: Mutex<Vec<Arc<Stream>>>,
    timeline: Timeline,
}

#[glib::object_subclass]
impl ObjectSubclass for PtsCorrector {
    const NAME: &'static str = "GstPtsCorrector";
    type Type = super::PtsCorrector;
    type ParentType = gst::Element;
}

fn clock_time(t: Option<i64>) -> u64 {
    t.map_or(u64::MAX, |v| v.max(0) as u64)
}

impl PtsCorrector {
    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn streams(&self) -> Vec<Arc<Stream>> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stream_kind(caps: &gst::CapsRef) -> (StreamKind, Option<i64>) {
        let Some(s) = caps.structure(0) else {
            return (StreamKind::Audio, None);
        };
        let name = s.name();
        if name.starts_with("video/") || name.starts_with("image/") {
            let step = s
                .get::<gst::Fraction>("framerate")
                .ok()
                .filter(|f| f.numer() > 0 && f.denom() > 0)
                .map(|f| (SECOND as i128 * f.denom() as i128 / f.numer() as i128) as i64);
            let intra = name == "video/x-raw"
                || name == "image/jpeg"
                || name == "video/x-prores"
                || name == "video/x-dnxhd";
            let kind = if intra {
                StreamKind::Video
            } else {
                StreamKind::InterVideo
            };
            (kind, step)
        } else {
            let rate = s.get::<i32>("rate").ok().filter(|r| *r > 0);
            let samples = match name.as_str() {
                "audio/mpeg" => match s.get::<i32>("mpegversion") {
                    Ok(2) | Ok(4) => Some(1024),
                    Ok(1) => Some(1152),
                    _ => None,
                },
                "audio/x-ac3" | "audio/x-eac3" => Some(1536),
                "audio/x-opus" => Some(960),
                _ => None,
            };
            let step = rate.zip(samples).map(|(r, n)| n as i64 * SECOND / r as i64);
            (StreamKind::Audio, step)
        }
    }

    fn arrival(&self, st: &mut StreamState) -> Option<i64> {
        if st.clock.is_none() {
            let obj = self.obj();
            st.clock = Some((obj.clock()?, obj.base_time()?));
        }
        let (clock, base) = st.clock.as_ref()?;
        Some(clock.time().nseconds() as i64 - base.nseconds() as i64)
    }

    fn upstream_live(stream: &Stream) -> bool {
        let mut q = gst::query::Latency::new();
        stream.sinkpad.peer_query(&mut q) && q.result().0
    }

    fn sink_chain(
        &self,
        stream: &Stream,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings();
        let cfg = settings.config();
        let mut outs = Outs::None;
        let mut reports: Vec<Report> = Vec::new();
        let output_map;
        {
            let mut st = stream.lock();
            if st.bypass {
                drop(st);
                return stream.srcpad.push(buffer);
            }
            let Some(input_map) = st.input.clone() else {
                drop(st);
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("Buffer on {} before a segment event", stream.name)
                );
                return Err(gst::FlowError::Error);
            };
            output_map = st.output.clone().unwrap_or_else(|| input_map.clone());
            if st.drift.is_none() {
                st.drift = Some(match settings.drift_correction {
                    DriftCorrection::On => true,
                    DriftCorrection::Off => false,
                    DriftCorrection::Auto => Self::upstream_live(stream),
                });
            }
            let arrival = if st.drift == Some(true) {
                self.arrival(&mut st)
            } else {
                None
            };
            let input = Input {
                pts: input_map.running_time(buffer.pts()),
                dts: input_map.running_time(buffer.dts()),
                duration: buffer.duration().map(|d| d.nseconds() as i64),
                arrival,
            };
            st.core.push(
                input,
                buffer,
                &cfg,
                &self.timeline,
                &mut |o| outs.push(o),
                &mut |r| reports.push(r),
            );
            if let Some(series) = &st.series {
                series.buffers.inc();
                let filled = st.core.counts.filled;
                if filled != st.reported_filled {
                    series.filled.inc_by(filled - st.reported_filled);
                }
            }
            st.reported_filled = st.core.counts.filled;
            if !reports.is_empty() {
                self.note_repairs(stream, &mut st, &reports, &input_map, &output_map);
            } else if arrival.is_some() && st.core.counts.buffers.is_multiple_of(64) {
                self.update_gauges(&st);
            }
        }
        match outs {
            Outs::None => Ok(gst::FlowSuccess::Ok),
            Outs::One(o) => self.send(stream, &output_map, o),
            Outs::Many(v) => {
                let mut last = Ok(gst::FlowSuccess::Ok);
                for o in v {
                    last = self.send(stream, &output_map, o);
                    if last.is_err() {
                        break;
                    }
                }
                last
            }
        }
    }

    /// Counts and announces repairs (rate-limited messages).
    fn note_repairs(
        &self,
        stream: &Stream,
        st: &mut StreamState,
        reports: &[Report],
        input_map: &SegmentMap,
        output_map: &SegmentMap,
    ) {
        let now = Instant::now();
        let mut messages = Vec::new();
        for r in reports {
            let i = r.kind.index();
            if let Some(series) = &st.series {
                series.repairs[i].inc();
            }
            gst::debug!(
                CAT,
                obj = stream.sinkpad,
                "{}: {:?} -> {:?}",
                r.kind.name(),
                r.before,
                r.after
            );
            if st.last_message[i].is_some_and(|t| now.duration_since(t) < MESSAGE_INTERVAL) {
                st.suppressed[i] += 1;
                continue;
            }
            st.last_message[i] = Some(now);
            let suppressed = std::mem::take(&mut st.suppressed[i]);
            let count = st.core.counts.repairs[i];
            let mut b = gst::Structure::builder("ptscorrector-repair")
                .field("kind", r.kind.name())
                .field("stream", stream.name.as_str())
                .field("count", count)
                .field("suppressed", suppressed);
            if r.kind == Repair::Drift {
                let (drift, ppm, _) = self.timeline.drift_state();
                b = b.field("drift", drift).field("slew-ppm", ppm);
            } else {
                let before = r.before.map(|t| input_map.stream_time(t).nseconds() as i64);
                let after = r.after.map(|t| output_map.stream_time(t).nseconds() as i64);
                b = b
                    .field("before", clock_time(before))
                    .field("after", clock_time(after));
            }
            messages.push(b.build());
        }
        self.update_gauges(st);
        for s in messages {
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
    }

    /// Drift, slew and correction gauges of the stream.
    fn update_gauges(&self, st: &StreamState) {
        if let Some(series) = &st.series {
            let (drift, ppm, slew) = self.timeline.drift_state();
            series.drift.set(drift as f64 / SECOND as f64);
            series.slew.set(ppm);
            series
                .correction
                .set((st.core.correction() + slew) as f64 / SECOND as f64);
        }
    }

    fn send(
        &self,
        stream: &Stream,
        map: &SegmentMap,
        out: Output<gst::Buffer>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        match out {
            Output::Buffer {
                mut payload,
                pts,
                dts,
                discont,
                duration,
                filler,
            } => {
                let pts = map.stream_time(pts);
                let dts = map.stream_time(dts);
                let duration = duration.map(|d| gst::ClockTime::from_nseconds(d.max(0) as u64));
                if payload.pts() != Some(pts)
                    || payload.dts() != Some(dts)
                    || discont
                    || filler
                    || duration.is_some_and(|d| payload.duration() != Some(d))
                {
                    let b = payload.make_mut();
                    b.set_pts(pts);
                    b.set_dts(dts);
                    if duration.is_some() {
                        b.set_duration(duration);
                    }
                    if discont {
                        b.set_flags(gst::BufferFlags::DISCONT);
                    }
                    if filler {
                        b.set_flags(gst::BufferFlags::GAP);
                    }
                }
                stream.srcpad.push(payload)
            }
            Output::Gap { pts, duration } => {
                let ev = gst::event::Gap::builder(map.stream_time(pts))
                    .duration(gst::ClockTime::from_nseconds(duration.max(0) as u64))
                    .build();
                stream.srcpad.push_event(ev);
                Ok(gst::FlowSuccess::Ok)
            }
        }
    }

    fn drain(&self, stream: &Stream) {
        let cfg = self.settings().config();
        let mut outs = Vec::new();
        let mut reports = Vec::new();
        let map;
        {
            let mut st = stream.lock();
            let Some(m) = st.output.clone().or_else(|| st.input.clone()) else {
                return;
            };
            map = m;
            st.core
                .drain(&cfg, &self.timeline, &mut |o| outs.push(o), &mut |r| {
                    reports.push(r)
                });
            if !reports.is_empty() {
                let input = st.input.clone().unwrap_or_else(|| map.clone());
                self.note_repairs(stream, &mut st, &reports, &input, &map);
            }
        }
        for o in outs {
            if self.send(stream, &map, o).is_err() {
                break;
            }
        }
    }

    fn sink_event(&self, stream: &Stream, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(c) => {
                let (kind, step) = Self::stream_kind(c.caps());
                let mut st = stream.lock();
                st.core.set_kind(kind);
                st.core.set_caps_step(step);
                drop(st);
                stream.srcpad.push_event(event)
            }
            EventView::Segment(s) => {
                let mut st = stream.lock();
                match s.segment().downcast_ref::<gst::ClockTime>() {
                    Some(seg) => {
                        st.bypass = false;
                        st.input = Some(SegmentMap::new(seg.clone()));
                        if st.output.is_some() {
                            // Absorbed: timestamps continue in running time.
                            gst::debug!(CAT, obj = stream.sinkpad, "absorbing segment {:?}", seg);
                            return true;
                        }
                        let map = SegmentMap::new(seg.clone());
                        let floor = map.running_time(Some(gst::ClockTime::ZERO)).unwrap_or(0);
                        st.core.set_floor(floor);
                        st.output = Some(map);
                    }
                    None => {
                        if !st.bypass {
                            gst::element_imp_warning!(
                                self,
                                gst::StreamError::Format,
                                (
                                    "{} has a {:?} segment, not TIME: its timestamps pass unrepaired",
                                    stream.name,
                                    s.segment().format()
                                )
                            );
                        }
                        st.bypass = true;
                    }
                }
                drop(st);
                stream.srcpad.push_event(event)
            }
            EventView::FlushStop(_) => {
                {
                    let mut st = stream.lock();
                    st.core.reset(&self.timeline);
                    st.input = None;
                    st.output = None;
                }
                if self.streams().len() <= 1 {
                    self.timeline.reset();
                }
                stream.srcpad.push_event(event)
            }
            EventView::Eos(_) => {
                self.drain(stream);
                self.timeline.forget_position(stream.id);
                stream.srcpad.push_event(event)
            }
            EventView::Gap(g) => {
                let (ts, dur) = g.get();
                let st = stream.lock();
                let mapped = match (&st.input, &st.output) {
                    (Some(i), Some(o)) => i
                        .running_time(Some(ts))
                        .map(|rt| o.stream_time(rt + st.core.correction())),
                    _ => Some(ts),
                };
                drop(st);
                let mut b = gst::event::Gap::builder(mapped.unwrap_or(ts));
                if let Some(d) = dur {
                    b = b.duration(d);
                }
                stream.srcpad.push_event(b.build())
            }
            _ => stream.srcpad.push_event(event),
        }
    }

    fn sink_query(&self, stream: &Stream, query: &mut gst::QueryRef) -> bool {
        stream.srcpad.peer_query(query)
    }

    fn src_event(&self, stream: &Stream, event: gst::Event) -> bool {
        stream.sinkpad.push_event(event)
    }

    fn src_query(&self, stream: &Stream, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let mut upstream = gst::query::Latency::new();
            if !stream.sinkpad.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let extra = {
                let st = stream.lock();
                st.core.reorder_latency(&self.settings().config())
            };
            let extra = gst::ClockTime::from_nseconds(extra.max(0) as u64);
            q.set(live, min + extra, max.map(|m| m + extra));
            return true;
        }
        if query.type_() == gst::QueryType::Scheduling {
            // Buffers only flow in push mode: not forwarded, so that
            // downstream does not try to pull through this element.
            return false;
        }
        stream.sinkpad.peer_query(query)
    }

    fn stats(&self) -> gst::Structure {
        let mut totals = [0u64; Repair::ALL.len()];
        let mut buffers = 0u64;
        let mut filled = 0u64;
        let mut per_stream = Vec::new();
        for s in self.streams() {
            let st = s.lock();
            let c = &st.core.counts;
            buffers += c.buffers;
            filled += c.filled;
            let mut b = gst::Structure::builder(s.name.as_str())
                .field("buffers", c.buffers)
                .field("filled", c.filled)
                .field("correction", st.core.correction())
                .field("rebuilding-dts", st.core.rebuilding());
            for k in Repair::ALL {
                totals[k.index()] += c.repairs[k.index()];
                b = b.field(k.name(), c.repairs[k.index()]);
            }
            per_stream.push(b.build().to_send_value());
        }
        let (drift, ppm, slew) = self.timeline.drift_state();
        let mut b = gst::Structure::builder("ptscorrector-stats")
            .field("buffers", buffers)
            .field("filled", filled)
            .field("drift-offset", drift)
            .field("slew-ppm", ppm)
            .field("slew-offset", slew);
        for k in Repair::ALL {
            b = b.field(k.name(), totals[k.index()]);
        }
        b.field("streams", gst::Array::from_values(per_stream))
            .build()
    }
}

impl ObjectImpl for PtsCorrector {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt64::builder("jump-threshold")
                    .nick("Jump Threshold")
                    .blurb(
                        "A timestamp further than this from the expected one (previous plus \
                         duration) is a jump and is re-based, in ns (1 ms to 1 hour); smaller \
                         steps are gaps or overlaps",
                    )
                    .minimum(1_000_000)
                    .maximum(3_600 * SECOND as u64)
                    .default_value(DEFAULT_JUMP_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-reorder")
                    .nick("Max Reorder")
                    .blurb(
                        "Frames of lookahead used to rebuild the DTS of video whose DTS is \
                         missing or broken (0 to 16); adds this many frame durations of latency",
                    )
                    .maximum(16)
                    .default_value(DEFAULT_MAX_REORDER)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "drift-correction",
                    DriftCorrection::Auto,
                )
                .nick("Drift Correction")
                .blurb("Measure PTS against arrival on the pipeline clock and slew the drift away")
                .mutable_ready()
                .build(),
                glib::ParamSpecUInt64::builder("drift-tolerance")
                    .nick("Drift Tolerance")
                    .blurb(
                        "Drift (PTS minus arrival against the first second) beyond which \
                         slewing starts, in ns (1 ms to 10 s)",
                    )
                    .minimum(1_000_000)
                    .maximum(10 * SECOND as u64)
                    .default_value(DEFAULT_DRIFT_TOLERANCE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-slew")
                    .nick("Max Slew")
                    .blurb("Largest drift correction rate, in ppm of stream time (1 to 100000)")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(DEFAULT_MAX_SLEW)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("gap-mode", GapMode::Pass)
                    .nick("Gap Mode")
                    .blurb("What to do with gaps below jump-threshold")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("duplicate-mode", DuplicateMode::Drop)
                    .nick("Duplicate Mode")
                    .blurb("What to do with buffers whose PTS was already sent")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Counts per repair kind (totals and per stream in \"streams\"), \
                         drift-offset (ns, PTS minus arrival against the first second), \
                         slew-ppm and slew-offset (ns)",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "jump-threshold" => s.jump_threshold = value.get().expect("type checked"),
            "max-reorder" => s.max_reorder = value.get().expect("type checked"),
            "drift-correction" => s.drift_correction = value.get().expect("type checked"),
            "drift-tolerance" => s.drift_tolerance = value.get().expect("type checked"),
            "max-slew" => s.max_slew = value.get().expect("type checked"),
            "gap-mode" => s.gap_mode = value.get().expect("type checked"),
            "duplicate-mode" => s.duplicate_mode = value.get().expect("type checked"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        let s = self.settings();
        match pspec.name() {
            "jump-threshold" => s.jump_threshold.to_value(),
            "max-reorder" => s.max_reorder.to_value(),
            "drift-correction" => s.drift_correction.to_value(),
            "drift-tolerance" => s.drift_tolerance.to_value(),
            "max-slew" => s.max_slew.to_value(),
            "gap-mode" => s.gap_mode.to_value(),
            "duplicate-mode" => s.duplicate_mode.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for PtsCorrector {}

impl ElementImpl for PtsCorrector {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "PTS/DTS corrector",
                "Filter/Timestamp",
                "Repairs missing, non-monotonic, jumping, wrapping and drifting timestamps of \
                 all streams of a program together, keeping their A/V offset",
                "gst-broadcast developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            vec![
                gst::PadTemplate::new(
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &caps,
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src_%u",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &caps,
                )
                .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        if templ.name_template() != "sink_%u" {
            return None;
        }
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let used: Vec<u32> = streams.iter().map(|s| s.id).collect();
        let id = match gstbroadcast_common::request_pad_index(name, "sink_", |i| used.contains(&i))
        {
            Ok(id) => id,
            Err(err) => {
                gst::warning!(CAT, imp = self, "Refusing a sink pad: {}", err);
                return None;
            }
        };
        let src_templ = self.obj().pad_template("src_%u").expect("src template");
        let stream = Arc::new_cyclic(|weak: &Weak<Stream>| {
            let w = weak.clone();
            let sinkpad = gst::Pad::builder_from_template(templ)
                .name(format!("sink_{id}"))
                .chain_function(move |_pad, parent, buffer| {
                    let w = w.clone();
                    PtsCorrector::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |this| match w.upgrade() {
                            Some(s) => this.sink_chain(&s, buffer),
                            None => Err(gst::FlowError::Flushing),
                        },
                    )
                })
                .event_function({
                    let w = weak.clone();
                    move |_pad, parent, event| {
                        PtsCorrector::catch_panic_pad_function(
                            parent,
                            || false,
                            |this| w.upgrade().is_some_and(|s| this.sink_event(&s, event)),
                        )
                    }
                })
                .query_function({
                    let w = weak.clone();
                    move |_pad, parent, query| {
                        PtsCorrector::catch_panic_pad_function(
                            parent,
                            || false,
                            |this| w.upgrade().is_some_and(|s| this.sink_query(&s, query)),
                        )
                    }
                })
                .iterate_internal_links_function({
                    let w = weak.clone();
                    move |_pad, _parent| match w.upgrade() {
                        Some(s) => gst::Iterator::from_vec(vec![s.srcpad.clone()]),
                        None => gst::Iterator::from_vec(vec![]),
                    }
                })
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            let srcpad = gst::Pad::builder_from_template(&src_templ)
                .name(format!("src_{id}"))
                .event_function({
                    let w = weak.clone();
                    move |_pad, parent, event| {
                        PtsCorrector::catch_panic_pad_function(
                            parent,
                            || false,
                            |this| w.upgrade().is_some_and(|s| this.src_event(&s, event)),
                        )
                    }
                })
                .query_function({
                    let w = weak.clone();
                    move |_pad, parent, query| {
                        PtsCorrector::catch_panic_pad_function(
                            parent,
                            || false,
                            |this| w.upgrade().is_some_and(|s| this.src_query(&s, query)),
                        )
                    }
                })
                .iterate_internal_links_function({
                    let w = weak.clone();
                    move |_pad, _parent| match w.upgrade() {
                        Some(s) => gst::Iterator::from_vec(vec![s.sinkpad.clone()]),
                        None => gst::Iterator::from_vec(vec![]),
                    }
                })
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            let name = format!("sink_{id}");
            Stream {
                id,
                state: Mutex::new(StreamState {
                    core: StreamCore::new(id, StreamKind::Audio, &self.timeline),
                    input: None,
                    output: None,
                    bypass: false,
                    series: None,
                    drift: None,
                    clock: None,
                    last_message: [None; Repair::ALL.len()],
                    suppressed: [0; Repair::ALL.len()],
                    reported_filled: 0,
                }),
                name,
                sinkpad,
                srcpad,
            }
        });
        streams.push(stream.clone());
        drop(streams);
        let obj = self.obj();
        if self.obj().current_state() > gst::State::Ready {
            let pipeline = exporter::pipeline_label(&*self.obj());
            stream.lock().series = Some(Series::new(&pipeline, &obj.name(), &stream.name));
        }
        let _ = stream
            .srcpad
            .set_active(obj.current_state() > gst::State::Ready);
        let _ = stream
            .sinkpad
            .set_active(obj.current_state() > gst::State::Ready);
        if obj.add_pad(&stream.srcpad).is_err() || obj.add_pad(&stream.sinkpad).is_err() {
            let _ = obj.remove_pad(&stream.srcpad);
            self.streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|s| s.id != id);
            return None;
        }
        Some(stream.sinkpad.clone())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let stream = {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            let pos = streams.iter().position(|s| &s.sinkpad == pad);
            pos.map(|p| streams.remove(p))
        };
        if let Some(s) = stream {
            self.timeline.forget_position(s.id);
            // Dropping the series removes them from the registry.
            s.lock().series = None;
            let _ = s.srcpad.set_active(false);
            let _ = self.obj().remove_pad(&s.srcpad);
            let _ = self.obj().remove_pad(&s.sinkpad);
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            self.timeline.reset();
            let pipeline = exporter::pipeline_label(&*self.obj());
            let element = self.obj().name().to_string();
            for s in self.streams() {
                let mut st = s.lock();
                st.core.reset(&self.timeline);
                st.core.counts = Default::default();
                st.reported_filled = 0;
                st.input = None;
                st.output = None;
                st.drift = None;
                st.clock = None;
                // The old handle leaves before the new one takes the labels.
                st.series = None;
                st.series = Some(Series::new(&pipeline, &element, &s.name));
            }
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            for s in self.streams() {
                s.lock().series = None;
            }
        }
        Ok(ret)
    }
}
