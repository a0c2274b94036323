// SPDX-License-Identifier: MPL-2.0

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, TryLockError};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_exporter as exporter;

use super::EstimatorMode;
use crate::nal::{self, AccessUnit, Codec, ParamSetCache};
use crate::policy::{Config, LinkSample, Policy, Push, PushTiming, Reason, Rendition, SECOND};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "abrselector",
        gst::DebugColorFlags::empty(),
        Some("Bandwidth-driven rendition selector"),
    )
});

/// Name of the estimate events and of their structure.
pub(crate) const ESTIMATE_EVENT: &str = "abr-bandwidth-estimate";

const DEFAULT_SAFETY_FACTOR: f64 = 0.85;
const DEFAULT_UP_FACTOR: f64 = 1.3;
const DEFAULT_MIN_SWITCH_INTERVAL: u64 = 2 * SECOND as u64;
const DEFAULT_FAST_HALF_LIFE: f64 = 2.0;
const DEFAULT_SLOW_HALF_LIFE: f64 = 8.0;
const DEFAULT_MAX_QUEUE_DELAY: u64 = SECOND as u64;

/// Bit rate measurement: bytes over the PTS span of this much running time…
const MEASURE_WINDOW: i64 = 3 * SECOND;
/// …known once the span reaches this.
const MEASURE_MIN_SPAN: i64 = SECOND;
/// The target's held buffers may span this much running time while the
/// old rendition has not reached the switch instant; then the switch
/// happens anyway.
const HOLD_MAX: i64 = 2 * SECOND;
/// The selected rendition's buffers held at a predicted keyframe of the
/// target may span this much running time; then they go out and that
/// switch no longer predicts.
const OLD_HOLD_MAX: i64 = SECOND;
/// Keyframe intervals remembered per rendition (the prediction uses the
/// largest, so a scene-cut keyframe does not shorten it).
const KEY_PERIODS: usize = 3;
/// The first selection waits at most this long (running time from the
/// first buffer) for every rendition's caps and bit rate.
const INITIAL_WAIT: i64 = SECOND;
/// Before the first output, each rendition keeps the access units since
/// its last usable keyframe (at most this many), so the first selection
/// starts without waiting for another keyframe.
const STARTUP_MAX: usize = 300;
/// A rendition without a keyframe for this long gets a warning.
const KEYFRAME_TIMEOUT: i64 = 10 * SECOND;
/// With `estimator=auto`, push timing is ignored this long after an
/// estimate event.
const EXPLICIT_HOLD: i64 = 10 * SECOND;

/// Prometheus families shared by every `abrselector` instance.
struct Families {
    switches: prometheus::IntCounterVec,
    current: prometheus::IntGaugeVec,
    estimate: prometheus::GaugeVec,
    forwarded: prometheus::IntCounterVec,
    dropped: prometheus::IntCounterVec,
    inserted: prometheus::IntCounterVec,
    unparseable: prometheus::IntCounterVec,
    keyframe_timeouts: prometheus::IntCounterVec,
    rejected_caps: prometheus::IntCounterVec,
    bitrate: prometheus::GaugeVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    // The switch counter carries a `direction` label besides the usual
    // ones, so it is registered here rather than through `counter_vec`.
    let labels = [
        exporter::STREAM_LABELS[0],
        exporter::STREAM_LABELS[1],
        exporter::STREAM_LABELS[2],
        "direction",
    ];
    let switches = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "gst_abrselector_switches_total",
            "Rendition switches made, by direction (up or down); the first selection is not counted.",
        ),
        &labels,
    )
    .expect("valid metric name");
    let _ = exporter::registry().register(Box::new(switches.clone()));
    Families {
        switches,
        current: exporter::gauge_vec(
            "gst_abrselector_current_rendition",
            "Sink pad number of the rendition being forwarded (sink_N gives N), -1 when none.",
        ),
        estimate: exporter::float_gauge_vec(
            "gst_abrselector_bandwidth_estimate_bits_per_second",
            "Bandwidth estimate the policy uses (the smaller of its fast and slow averages), bits per second.",
        ),
        forwarded: exporter::counter_vec(
            "gst_abrselector_buffers_forwarded_total",
            "Buffers of this rendition sent downstream.",
        ),
        dropped: exporter::counter_vec(
            "gst_abrselector_buffers_dropped_total",
            "Buffers of this rendition consumed without being sent (not selected, before a switch point, or late).",
        ),
        inserted: exporter::counter_vec(
            "gst_abrselector_parameter_sets_inserted_total",
            "Switch keyframes of this rendition that lacked parameter sets and got the cached ones.",
        ),
        unparseable: exporter::counter_vec(
            "gst_abrselector_unparseable_buffers_total",
            "Buffers that are not Annex B access units (never used as a switch point).",
        ),
        keyframe_timeouts: exporter::counter_vec(
            "gst_abrselector_keyframe_timeouts_total",
            "Times this rendition went 10 s of running time without a keyframe.",
        ),
        rejected_caps: exporter::counter_vec(
            "gst_abrselector_rejected_caps_total",
            "Caps refused on this pad (not H.264/H.265 byte-stream with alignment au).",
        ),
        bitrate: exporter::float_gauge_vec(
            "gst_abrselector_rendition_bitrate_bits_per_second",
            "Nominal bit rate of this rendition as the policy sees it (property, tag or measured), 0 unknown.",
        ),
    }
});

fn label_refs(labels: &[String; 3]) -> [&str; 3] {
    [labels[0].as_str(), labels[1].as_str(), labels[2].as_str()]
}

/// Element-level metric handles (stream label `src`).
struct ElementSeries {
    labels: [String; 3],
    up: prometheus::IntCounter,
    down: prometheus::IntCounter,
    current: prometheus::IntGauge,
    estimate: prometheus::Gauge,
}

impl ElementSeries {
    fn new(labels: [String; 3]) -> Self {
        let l = label_refs(&labels);
        let f = &*FAMILIES;
        let s = ElementSeries {
            up: f.switches.with_label_values(&[l[0], l[1], l[2], "up"]),
            down: f.switches.with_label_values(&[l[0], l[1], l[2], "down"]),
            current: f.current.with_label_values(&l),
            estimate: f.estimate.with_label_values(&l),
            labels,
        };
        s.current.set(-1);
        s
    }

    fn remove(&self) {
        let l = label_refs(&self.labels);
        let f = &*FAMILIES;
        for d in ["up", "down"] {
            let _ = f.switches.remove_label_values(&[l[0], l[1], l[2], d]);
        }
        let _ = f.current.remove_label_values(&l);
        let _ = f.estimate.remove_label_values(&l);
    }
}

/// Metric handles of one sink pad.
struct PadSeries {
    labels: [String; 3],
    forwarded: prometheus::IntCounter,
    dropped: prometheus::IntCounter,
    inserted: prometheus::IntCounter,
    unparseable: prometheus::IntCounter,
    keyframe_timeouts: prometheus::IntCounter,
    rejected_caps: prometheus::IntCounter,
    bitrate: prometheus::Gauge,
}

impl PadSeries {
    fn new(labels: [String; 3]) -> Self {
        let l = label_refs(&labels);
        let f = &*FAMILIES;
        PadSeries {
            forwarded: f.forwarded.with_label_values(&l),
            dropped: f.dropped.with_label_values(&l),
            inserted: f.inserted.with_label_values(&l),
            unparseable: f.unparseable.with_label_values(&l),
            keyframe_timeouts: f.keyframe_timeouts.with_label_values(&l),
            rejected_caps: f.rejected_caps.with_label_values(&l),
            bitrate: f.bitrate.with_label_values(&l),
            labels,
        }
    }

    fn remove(&self) {
        let l = label_refs(&self.labels);
        let f = &*FAMILIES;
        for c in [
            &f.forwarded,
            &f.dropped,
            &f.inserted,
            &f.unparseable,
            &f.keyframe_timeouts,
            &f.rejected_caps,
        ] {
            let _ = c.remove_label_values(&l);
        }
        let _ = f.bitrate.remove_label_values(&l);
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    bandwidth_estimate: u64,
    estimator: EstimatorMode,
    safety_factor: f64,
    up_factor: f64,
    min_switch_interval: u64,
    fast_half_life: f64,
    slow_half_life: f64,
    max_queue_delay: u64,
    force_key_unit: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bandwidth_estimate: 0,
            estimator: EstimatorMode::Auto,
            safety_factor: DEFAULT_SAFETY_FACTOR,
            up_factor: DEFAULT_UP_FACTOR,
            min_switch_interval: DEFAULT_MIN_SWITCH_INTERVAL,
            fast_half_life: DEFAULT_FAST_HALF_LIFE,
            slow_half_life: DEFAULT_SLOW_HALF_LIFE,
            max_queue_delay: DEFAULT_MAX_QUEUE_DELAY,
            force_key_unit: false,
        }
    }
}

impl Settings {
    fn config(&self) -> Config {
        Config {
            safety_factor: self.safety_factor,
            up_factor: self.up_factor,
            min_switch_interval: self.min_switch_interval.min(i64::MAX as u64) as i64,
            fast_half_life: self.fast_half_life,
            slow_half_life: self.slow_half_life,
            max_queue_delay: self.max_queue_delay.min(i64::MAX as u64) as i64,
        }
    }
}

/// A TIME segment reduced to the running-time conversions.
#[derive(Debug, Clone)]
struct SegmentMap {
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// running time = timestamp + shift, when the rate is 1.
    shift: Option<i64>,
}

impl SegmentMap {
    fn new(segment: gst::FormattedSegment<gst::ClockTime>) -> Self {
        let shift = (segment.rate() == 1.0).then(|| {
            segment.base().map_or(0, |b| b.nseconds() as i64)
                - segment.start().map_or(0, |s| s.nseconds() as i64)
        });
        SegmentMap { segment, shift }
    }

    fn to_running(&self, ts: Option<gst::ClockTime>) -> Option<i64> {
        let ts = ts?;
        if let Some(shift) = self.shift {
            return Some(ts.nseconds() as i64 + shift);
        }
        Some(match self.segment.to_running_time_full(ts)? {
            gst::Signed::Positive(v) => v.nseconds() as i64,
            gst::Signed::Negative(v) => -(v.nseconds() as i64),
        })
    }

    /// The timestamp in this segment of running time `rt`, `None` before
    /// its start.
    fn position(&self, rt: i64) -> Option<gst::ClockTime> {
        if let Some(shift) = self.shift {
            let ts = rt - shift;
            return (ts >= 0).then(|| gst::ClockTime::from_nseconds(ts as u64));
        }
        if rt < 0 {
            return None;
        }
        match self
            .segment
            .position_from_running_time_full(gst::ClockTime::from_nseconds(rt as u64))?
        {
            gst::Signed::Positive(v) => Some(v),
            gst::Signed::Negative(_) => None,
        }
    }

    /// `ts` of this segment as a timestamp in `out`.
    fn convert(&self, out: &SegmentMap, ts: Option<gst::ClockTime>) -> Option<gst::ClockTime> {
        if self.segment == out.segment {
            return ts;
        }
        out.position(self.to_running(ts)?)
    }
}

/// Per-pad counters (the `stats` property of the pad).
#[derive(Debug, Default, Clone, Copy)]
struct PadStats {
    buffers: u64,
    bytes: u64,
    forwarded: u64,
    dropped: u64,
    keyframes: u64,
    inserted: u64,
    unparseable: u64,
    late: u64,
    keyframe_timeouts: u64,
    rejected_caps: u64,
}

/// One rendition.
struct PadState {
    pad: super::AbrSelectorSinkPad,
    name: String,
    codec: Option<Codec>,
    caps: Option<gst::Caps>,
    segment: Option<SegmentMap>,
    stream_start: Option<gst::Event>,
    stream_tags: Option<gst::Event>,
    tag_bitrate: Option<u64>,
    params: ParamSetCache,
    /// (PTS running time, bytes) of the last `MEASURE_WINDOW`.
    measure: VecDeque<(i64, u64)>,
    last_rt: Option<i64>,
    /// Running time of the last keyframe, or of the first buffer.
    key_ref: Option<i64>,
    /// Running time of the last keyframe.
    last_key: Option<i64>,
    /// The last `KEY_PERIODS` keyframe intervals.
    key_periods: VecDeque<i64>,
    /// Before the first output: the access units since the last usable
    /// keyframe, unprepared.
    startup: Vec<Unprepared>,
    eos: bool,
    flushing: bool,
    warned_unparseable: bool,
    warned_keyframe: bool,
    /// Caps already warned about.
    warned_caps: Vec<String>,
    stats: PadStats,
    series: Option<PadSeries>,
}

impl PadState {
    fn new(pad: super::AbrSelectorSinkPad) -> Self {
        PadState {
            name: pad.name().to_string(),
            pad,
            codec: None,
            caps: None,
            segment: None,
            stream_start: None,
            stream_tags: None,
            tag_bitrate: None,
            params: ParamSetCache::default(),
            measure: VecDeque::new(),
            last_rt: None,
            key_ref: None,
            last_key: None,
            key_periods: VecDeque::new(),
            startup: Vec::new(),
            eos: false,
            flushing: false,
            warned_unparseable: false,
            warned_keyframe: false,
            warned_caps: Vec::new(),
            stats: PadStats::default(),
            series: None,
        }
    }

    /// Forgets the stream (not the settings, caps or parameter sets).
    fn reset_stream(&mut self) {
        self.startup.clear();
        self.segment = None;
        self.measure.clear();
        self.last_rt = None;
        self.key_ref = None;
        self.last_key = None;
        self.key_periods.clear();
        self.eos = false;
        self.warned_keyframe = false;
    }

    fn measured(&self) -> Option<u64> {
        let (first, _) = *self.measure.front()?;
        let (last, _) = *self.measure.back()?;
        let span = last - first;
        if span < MEASURE_MIN_SPAN {
            return None;
        }
        // The bytes of the last buffer lie beyond the span.
        let bytes: u64 = self.measure.iter().rev().skip(1).map(|(_, b)| *b).sum();
        Some((bytes as f64 * 8.0 * SECOND as f64 / span as f64).round() as u64)
    }

    fn measure_push(&mut self, pts_rt: i64, bytes: u64) {
        if self
            .measure
            .back()
            .is_some_and(|(t, _)| pts_rt < *t - MEASURE_WINDOW)
        {
            self.measure.clear();
        }
        // Keep PTS order for the span (B-frames arrive out of order).
        let pos = self
            .measure
            .iter()
            .rposition(|(t, _)| *t <= pts_rt)
            .map_or(0, |p| p + 1);
        self.measure.insert(pos, (pts_rt, bytes));
        let newest = self.measure.back().map_or(pts_rt, |(t, _)| *t);
        while self
            .measure
            .front()
            .is_some_and(|(t, _)| newest - *t > MEASURE_WINDOW)
        {
            self.measure.pop_front();
        }
    }

    /// The first keyframe expected after `after`, from the keyframe
    /// interval (the largest of the last few).
    fn next_keyframe(&self, after: i64) -> Option<i64> {
        let k = self.last_key?;
        let p = *self.key_periods.iter().max()?;
        if p <= 0 {
            return None;
        }
        let m = if after < k { 1 } else { (after - k) / p + 1 };
        Some(k + m.max(1) * p)
    }

    /// Effective nominal bit rate and where it comes from.
    fn bitrate(&self) -> Option<(u64, &'static str)> {
        let prop = self.pad.imp().bitrate.load(Ordering::Relaxed);
        if prop > 0 {
            return Some((prop, "property"));
        }
        if let Some(t) = self.tag_bitrate.filter(|b| *b > 0) {
            return Some((t, "tag"));
        }
        self.measured().map(|m| (m, "measured"))
    }
}

/// An access unit kept before the first output, with its parse.
struct Unprepared {
    buffer: gst::Buffer,
    au: Option<AccessUnit>,
    rt: Option<i64>,
    end: Option<i64>,
}

/// What the chain function under the lock decided: drain (`Some(blocking)`),
/// whether the pad is the selected one, the last push result.
type ChainOutcome = (Option<bool>, bool, Result<gst::FlowSuccess, gst::FlowError>);

/// A buffer waiting to go out.
struct OutBuf {
    buffer: gst::Buffer,
    /// Running time of DTS (PTS when there is none).
    rt: Option<i64>,
    /// Running time of its end.
    end: Option<i64>,
}

enum OutItem {
    Event(gst::Event),
    Buffer(OutBuf),
}

enum Phase {
    /// Waiting for a keyframe with parameter sets on the target.
    Waiting,
    /// The target's keyframe at running time `t` and what followed it,
    /// waiting for the old rendition to reach `t`.
    Armed { t: i64, held: VecDeque<OutBuf> },
}

struct Switch {
    /// `None`: the first rendition with a usable keyframe (nothing known).
    to: Option<u32>,
    reason: Reason,
    estimate: Option<u64>,
    phase: Phase,
    /// Running time where the target's next keyframe is expected (from its
    /// keyframe interval); the selected rendition holds its buffers from
    /// there until the target shows what it has at that time.
    predicted: Option<i64>,
    /// Prediction allowed (off after the held buffers overflowed).
    predict: bool,
    /// The selected rendition's buffers held at `predicted`.
    old_held: VecDeque<OutBuf>,
}

impl Switch {
    fn new(to: Option<u32>, reason: Reason, estimate: Option<u64>) -> Self {
        Switch {
            to,
            reason,
            estimate,
            phase: Phase::Waiting,
            predicted: None,
            predict: true,
            old_held: VecDeque::new(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    switches_up: u64,
    switches_down: u64,
}

struct State {
    pads: BTreeMap<u32, PadState>,
    active: Option<u32>,
    switch: Option<Switch>,
    policy: Policy,
    /// Largest running time seen on any pad: the policy's clock.
    now: Option<i64>,
    /// Running time of the first buffer (for `INITIAL_WAIT`).
    first_now: Option<i64>,
    out: VecDeque<OutItem>,
    out_segment: Option<SegmentMap>,
    out_caps: Option<gst::Caps>,
    /// The pad the last buffer went out from (tags follow a change).
    out_pad: Option<u32>,
    stream_started: bool,
    last_out_rt: Option<i64>,
    discont: bool,
    out_eos: bool,
    src_flushing: bool,
    last_flow: Result<gst::FlowSuccess, gst::FlowError>,
    /// Running time of the last estimate event.
    explicit_at: Option<i64>,
    timing: PushTiming,
    wall_origin: Instant,
    fku_sent: Option<u32>,
    counts: Counts,
    series: Option<ElementSeries>,
}

impl State {
    fn new(cfg: Config) -> Self {
        State {
            pads: BTreeMap::new(),
            active: None,
            switch: None,
            policy: Policy::new(cfg),
            now: None,
            first_now: None,
            out: VecDeque::new(),
            out_segment: None,
            out_caps: None,
            out_pad: None,
            stream_started: false,
            last_out_rt: None,
            discont: false,
            out_eos: false,
            src_flushing: false,
            last_flow: Ok(gst::FlowSuccess::Ok),
            explicit_at: None,
            timing: PushTiming::default(),
            wall_origin: Instant::now(),
            fku_sent: None,
            counts: Counts::default(),
            series: None,
        }
    }

    fn name(&self, id: Option<u32>) -> Option<String> {
        id.and_then(|i| self.pads.get(&i)).map(|p| p.name.clone())
    }

    fn drop_buffer(&mut self, id: u32) {
        if let Some(ps) = self.pads.get_mut(&id) {
            ps.stats.dropped += 1;
            if let Some(s) = &ps.series {
                s.dropped.inc();
            }
        }
    }

    fn update_gauges(&self) {
        if let Some(s) = &self.series {
            s.estimate.set(self.policy.estimate().unwrap_or(0) as f64);
            s.current.set(self.active.map_or(-1, |a| a as i64));
        }
    }
}

/// Things to do once the state lock is released.
#[derive(Default)]
struct Actions {
    messages: Vec<gst::Structure>,
    fku: Option<super::AbrSelectorSinkPad>,
    notify_current: bool,
    warnings: Vec<(gst::StreamError, String)>,
}

pub struct AbrSelector {
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Held while pushing on `src`: one thread drains the output queue at a
    /// time.
    src_lock: Mutex<()>,
}

#[glib::object_subclass]
impl ObjectSubclass for AbrSelector {
    const NAME: &'static str = "GstAbrSelector";
    type Type = super::AbrSelector;
    type ParentType = gst::Element;
    type Interfaces = (gst::ChildProxy,);

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .event_function(|_pad, parent, event| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_event(event),
                )
            })
            .query_function(|_pad, parent, query| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_query(query),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| {
                        let st = this.state();
                        let pads = st
                            .active
                            .and_then(|a| st.pads.get(&a))
                            .map(|p| vec![p.pad.clone().upcast::<gst::Pad>()])
                            .unwrap_or_default();
                        gst::Iterator::from_vec(pads)
                    },
                )
            })
            .build();
        let settings = Settings::default();
        AbrSelector {
            srcpad,
            state: Mutex::new(State::new(settings.config())),
            settings: Mutex::new(settings),
            src_lock: Mutex::new(()),
        }
    }
}

fn h26x_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().expect("new caps");
        for name in ["video/x-h264", "video/x-h265"] {
            caps.append_structure(
                gst::Structure::builder(name)
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
        }
    }
    caps
}

/// The codec of acceptable caps, or why they are refused.
fn check_caps(caps: &gst::CapsRef) -> Result<Codec, String> {
    let Some(s) = caps.structure(0) else {
        return Err("empty caps".into());
    };
    let Some(codec) = Codec::from_caps_name(s.name()) else {
        return Err(format!(
            "{} is not H.264 or H.265 (video/x-h264, video/x-h265)",
            s.name()
        ));
    };
    if let Ok(f) = s.get::<&str>("stream-format") {
        if f != "byte-stream" {
            return Err(format!(
                "stream-format {f} is not byte-stream (put h264parse/h265parse upstream)"
            ));
        }
    }
    if let Ok(a) = s.get::<&str>("alignment") {
        if a != "au" {
            return Err(format!(
                "alignment {a} is not au (put h264parse/h265parse upstream)"
            ));
        }
    }
    Ok(codec)
}

/// A `bitrate` field of any numeric type, as bits/s.
fn estimate_field(s: &gst::StructureRef) -> Option<u64> {
    if let Ok(v) = s.get::<u64>("bitrate") {
        return Some(v);
    }
    if let Ok(v) = s.get::<u32>("bitrate") {
        return Some(v as u64);
    }
    if let Ok(v) = s.get::<i64>("bitrate") {
        return u64::try_from(v).ok();
    }
    if let Ok(v) = s.get::<i32>("bitrate") {
        return u64::try_from(v).ok();
    }
    if let Ok(v) = s.get::<f64>("bitrate") {
        return (v.is_finite() && v >= 0.0).then_some(v.round() as u64);
    }
    None
}

fn clock_time(t: Option<i64>) -> u64 {
    t.map_or(u64::MAX, |v| v.max(0) as u64)
}

impl AbrSelector {
    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pad_labels(&self, pad: &str) -> [String; 3] {
        [
            exporter::pipeline_label(&*self.obj()),
            self.obj().name().to_string(),
            pad.to_string(),
        ]
    }

    /// Posts messages, sends force-key-unit and warnings; no lock held.
    fn run(&self, actions: Actions) {
        for (err, text) in actions.warnings {
            gst::warning!(CAT, imp = self, "{}", text);
            gst::element_imp_warning!(self, err, ("{}", text));
        }
        if let Some(pad) = actions.fku {
            gst::debug!(CAT, obj = pad, "requesting a keyframe");
            let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            if !pad.push_event(ev) {
                gst::debug!(CAT, obj = pad, "force-key-unit not handled upstream");
            }
        }
        for s in actions.messages {
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        if actions.notify_current {
            self.obj().notify("current");
        }
    }

    /// Pushes the output queue. `blocking`: wait for another thread that is
    /// pushing (the selected rendition's thread does, for back-pressure);
    /// otherwise leave the queue to that thread. Returns the result of the
    /// last buffer this thread pushed.
    fn drain(&self, blocking: bool) -> Option<Result<gst::FlowSuccess, gst::FlowError>> {
        let settings = self.settings();
        let mut result = None;
        let mut block = blocking;
        loop {
            let guard = if block {
                self.src_lock.lock().unwrap_or_else(|e| e.into_inner())
            } else {
                match self.src_lock.try_lock() {
                    Ok(g) => g,
                    Err(TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(TryLockError::WouldBlock) => return result,
                }
            };
            loop {
                let (item, origin) = {
                    let mut st = self.state();
                    if st.src_flushing {
                        st.out.clear();
                    }
                    (st.out.pop_front(), st.wall_origin)
                };
                let Some(item) = item else { break };
                match item {
                    OutItem::Event(ev) => {
                        gst::log!(CAT, imp = self, "pushing {:?}", ev.type_());
                        let _ = self.srcpad.push_event(ev);
                    }
                    OutItem::Buffer(b) => {
                        let bytes = b.buffer.size() as u64;
                        let start = Instant::now();
                        let r = self.srcpad.push(b.buffer);
                        let stop = Instant::now();
                        result = Some(r);
                        let mut st = self.state();
                        st.last_flow = r;
                        if r.is_ok() && settings.estimator != EstimatorMode::None {
                            if let Some(rt) = b.rt {
                                let push = Push {
                                    wall_start: start.duration_since(origin).as_nanos() as i64,
                                    wall_end: stop.duration_since(origin).as_nanos() as i64,
                                    bytes,
                                    media_start: rt,
                                    media_end: b.end.unwrap_or(rt).max(rt),
                                };
                                if let Some(sample) = st.timing.record(push) {
                                    self.link_sample(&mut st, &settings, sample);
                                }
                            }
                        }
                    }
                }
            }
            drop(guard);
            // Another thread may have queued something and found the lock
            // taken while this one was finishing.
            if self.state().out.is_empty() {
                return result;
            }
            block = false;
        }
    }

    fn link_sample(&self, st: &mut State, settings: &Settings, sample: LinkSample) {
        let now = st.now.unwrap_or(0);
        if settings.estimator == EstimatorMode::Auto
            && (settings.bandwidth_estimate > 0
                || st.explicit_at.is_some_and(|t| now - t < EXPLICIT_HOLD))
        {
            return;
        }
        gst::log!(CAT, imp = self, "push timing: {:?}", sample);
        match sample {
            LinkSample::Measured(v) => st.policy.sample(now, v),
            LinkSample::AtLeast(v) => {
                // The link carries what goes out without holding it back,
                // so the selected rendition fits: never less than its
                // bit rate divided by the safety factor.
                let current = st
                    .active
                    .and_then(|a| st.pads.get(&a))
                    .and_then(|p| p.bitrate())
                    .map_or(0, |(b, _)| b);
                let floor = (v.max(current) as f64 / settings.safety_factor).ceil() as u64;
                st.policy.sample_at_least(now, floor);
            }
        }
        st.update_gauges();
    }

    /// An explicit estimate (event or property) at the current running time.
    fn explicit_estimate(&self, bps: u64, from_event: bool) {
        let mut st = self.state();
        let now = st.now.unwrap_or(0);
        gst::debug!(
            CAT,
            imp = self,
            "bandwidth estimate {} bit/s from {}",
            bps,
            if from_event { "event" } else { "property" }
        );
        if from_event {
            st.explicit_at = Some(now);
        }
        if bps > 0 {
            st.policy.sample(now, bps);
        } else {
            st.policy.release(now);
        }
        st.update_gauges();
    }

    fn estimate_event(&self, s: &gst::StructureRef) -> bool {
        match estimate_field(s) {
            Some(v) => {
                self.explicit_estimate(v, true);
                true
            }
            None => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    (
                        "{} event without a usable bitrate field (guint64 bits/s): {}",
                        ESTIMATE_EVENT,
                        s
                    )
                );
                false
            }
        }
    }

    /// Runs the policy and updates the pending switch.
    fn evaluate(&self, st: &mut State, settings: &Settings, actions: &mut Actions) {
        if st.out_eos || st.pads.is_empty() {
            return;
        }
        if matches!(
            st.switch,
            Some(Switch {
                phase: Phase::Armed { .. },
                ..
            })
        ) {
            return;
        }
        let Some(now) = st.now else { return };
        st.policy.set_config(settings.config());
        let ladder: Vec<Rendition> = st
            .pads
            .iter()
            .filter(|(_, p)| !p.eos && !p.flushing && p.caps.is_some())
            .filter_map(|(id, p)| {
                let b = p.bitrate().map(|(b, _)| b);
                if let Some(s) = &p.series {
                    s.bitrate.set(b.unwrap_or(0) as f64);
                }
                b.map(|bitrate| Rendition { id: *id, bitrate })
            })
            .collect();
        if st.active.is_none()
            && st.switch.is_none()
            && ladder.len() < st.pads.values().filter(|p| !p.eos).count()
            && now - st.first_now.unwrap_or(now) < INITIAL_WAIT
        {
            // Some renditions have no caps or bit rate yet: give them a
            // moment before the first choice.
            st.policy.decide(now, None, &[]);
            st.update_gauges();
            return;
        }
        let decision = st.policy.decide(now, st.active, &ladder);
        st.update_gauges();
        match (st.active, decision) {
            (None, None) => {
                if st.switch.is_none() {
                    st.switch = Some(Switch::new(None, Reason::Initial, st.policy.estimate()));
                }
            }
            (_, Some(d)) => {
                if st.switch.as_ref().is_some_and(|s| s.to == Some(d.target)) {
                    return;
                }
                gst::debug!(
                    CAT,
                    imp = self,
                    "{} switch to {:?} decided at {} (estimate {:?})",
                    d.reason.as_str(),
                    st.name(Some(d.target)),
                    now,
                    d.estimate
                );
                self.release_old_held(st);
                st.switch = Some(Switch::new(Some(d.target), d.reason, d.estimate));
                if settings.force_key_unit && st.fku_sent != Some(d.target) {
                    st.fku_sent = Some(d.target);
                    actions.fku = st.pads.get(&d.target).map(|p| p.pad.clone());
                }
            }
            (Some(_), None) => {
                if let Some(to) = st.switch.as_ref().map(|s| s.to) {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "switch to {:?} no longer wanted",
                        st.name(to)
                    );
                    self.cancel_switch(st);
                }
            }
        }
    }

    /// Queues a buffer of `id` for output, with the events it needs first.
    fn output_buffer(&self, st: &mut State, id: u32, mut b: OutBuf) {
        if let (Some(r), Some(l)) = (b.rt, st.last_out_rt) {
            if r <= l {
                gst::debug!(
                    CAT,
                    imp = self,
                    "late buffer of sink_{} at {} dropped",
                    id,
                    r
                );
                if let Some(ps) = st.pads.get_mut(&id) {
                    ps.stats.late += 1;
                }
                st.drop_buffer(id);
                return;
            }
        }
        let Some(ps) = st.pads.get_mut(&id) else {
            return;
        };
        if !st.stream_started {
            st.stream_started = true;
            let stream_id = ps
                .stream_start
                .as_ref()
                .and_then(|e| match e.view() {
                    gst::EventView::StreamStart(s) => Some(s.stream_id().to_string()),
                    _ => None,
                })
                .map(|s| format!("{s}/abrselector"))
                .unwrap_or_else(|| format!("abrselector-{:08x}", glib::random_int()));
            let mut ev = gst::event::StreamStart::builder(&stream_id);
            if let Some(g) = ps.stream_start.as_ref().and_then(|e| match e.view() {
                gst::EventView::StreamStart(s) => s.group_id(),
                _ => None,
            }) {
                ev = ev.group_id(g);
            }
            st.out.push_back(OutItem::Event(ev.build()));
        }
        if let Some(c) = &ps.caps {
            if st.out_caps.as_ref().is_none_or(|o| o != c) {
                gst::debug!(CAT, obj = ps.pad, "output caps {}", c);
                st.out.push_back(OutItem::Event(gst::event::Caps::new(c)));
                st.out_caps = Some(c.clone());
            }
        }
        if st.out_segment.is_none() {
            if let Some(seg) = &ps.segment {
                st.out
                    .push_back(OutItem::Event(gst::event::Segment::new(&seg.segment)));
                st.out_segment = Some(seg.clone());
            }
        }
        if st.out_pad != Some(id) {
            if let Some(t) = &ps.stream_tags {
                st.out.push_back(OutItem::Event(t.clone()));
            }
            st.out_pad = Some(id);
        }
        if let (Some(inp), Some(out)) = (&ps.segment, &st.out_segment) {
            if inp.segment != out.segment {
                let buf = b.buffer.make_mut();
                let pts = inp.convert(out, buf.pts());
                let dts = inp.convert(out, buf.dts());
                buf.set_pts(pts);
                buf.set_dts(dts);
            }
        }
        if std::mem::take(&mut st.discont) {
            b.buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
        }
        ps.stats.forwarded += 1;
        if let Some(s) = &ps.series {
            s.forwarded.inc();
        }
        if let Some(rt) = b.rt {
            st.last_out_rt = Some(rt);
            st.policy.sent(rt, b.buffer.size() as u64 * 8);
        }
        st.out.push_back(OutItem::Buffer(b));
    }

    /// The armed switch takes effect: the target becomes the selected
    /// rendition and its held buffers are queued for output.
    fn complete_switch(&self, st: &mut State, actions: &mut Actions, why: &str) {
        let Some(sw) = st.switch.take() else { return };
        let Phase::Armed { t, held } = sw.phase else {
            st.switch = Some(sw);
            return;
        };
        let Some(to) = sw.to else { return };
        let from = st.active.replace(to);
        let bitrate = |id: Option<u32>| {
            id.and_then(|i| st.pads.get(&i))
                .and_then(|p| p.bitrate())
                .map_or(0, |(b, _)| b)
        };
        let (from_bitrate, to_bitrate) = (bitrate(from), bitrate(Some(to)));
        let reason = match (from, sw.reason) {
            (Some(_), Reason::Initial) if to_bitrate >= from_bitrate => Reason::Up,
            (Some(_), Reason::Initial) => Reason::Down,
            (_, r) => r,
        };
        gst::info!(
            CAT,
            imp = self,
            "{} switch {:?} -> {:?} at {} ({}, estimate {:?})",
            reason.as_str(),
            st.name(from),
            st.name(Some(to)),
            t,
            why,
            sw.estimate
        );
        st.policy.note_switch(t);
        st.discont = true;
        for p in st.pads.values_mut() {
            let n = p.startup.len() as u64;
            if n > 0 {
                p.startup.clear();
                p.stats.dropped += n;
                if let Some(s) = &p.series {
                    s.dropped.inc_by(n);
                }
            }
        }
        st.fku_sent = None;
        match reason {
            Reason::Up => {
                st.counts.switches_up += 1;
                if let Some(s) = &st.series {
                    s.up.inc();
                }
            }
            Reason::Down => {
                st.counts.switches_down += 1;
                if let Some(s) = &st.series {
                    s.down.inc();
                }
            }
            Reason::Initial => {}
        }
        actions.messages.push(
            gst::Structure::builder("abr-switch")
                .field("from", st.name(from))
                .field("to", st.name(Some(to)).unwrap_or_default())
                .field("from-bitrate", from_bitrate)
                .field("to-bitrate", to_bitrate)
                .field("reason", reason.as_str())
                .field(
                    "estimate",
                    sw.estimate.or(st.policy.estimate()).unwrap_or(0),
                )
                .field("running-time", clock_time(Some(t)))
                .build(),
        );
        actions.notify_current = true;
        for b in held {
            self.output_buffer(st, to, b);
        }
        st.update_gauges();
    }

    /// Sets DELTA_UNIT from the parse and, at a switch point, inserts the
    /// cached parameter sets the keyframe lacks.
    fn prepare(
        &self,
        ps: &mut PadState,
        buffer: gst::Buffer,
        au: Option<&AccessUnit>,
        switch_point: bool,
    ) -> gst::Buffer {
        let Some(au) = au else { return buffer };
        let mut buffer = buffer;
        if switch_point && au.keyframe {
            if let Some(codec) = ps.codec {
                let inserted = buffer
                    .map_readable()
                    .ok()
                    .and_then(|m| nal::insert_parameter_sets(codec, &m, au, &ps.params));
                if let Some(data) = inserted {
                    let mut nb = gst::Buffer::from_mut_slice(data);
                    {
                        let nbm = nb.get_mut().expect("new buffer");
                        let _ = buffer.copy_into(
                            nbm,
                            gst::BufferCopyFlags::FLAGS
                                | gst::BufferCopyFlags::TIMESTAMPS
                                | gst::BufferCopyFlags::META,
                            ..,
                        );
                    }
                    buffer = nb;
                    ps.stats.inserted += 1;
                    if let Some(s) = &ps.series {
                        s.inserted.inc();
                    }
                    gst::debug!(
                        CAT,
                        obj = ps.pad,
                        "parameter sets inserted at a switch keyframe"
                    );
                }
            }
        }
        let delta = buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        if delta == au.keyframe {
            let b = buffer.make_mut();
            if au.keyframe {
                b.unset_flags(gst::BufferFlags::DELTA_UNIT);
            } else {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        buffer
    }

    fn sink_chain(
        &self,
        pad: &super::AbrSelectorSinkPad,
        id: u32,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings();
        let codec = {
            let st = self.state();
            match st.pads.get(&id) {
                Some(p) => p.codec,
                None => return Err(gst::FlowError::Flushing),
            }
        };
        let Some(codec) = codec else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Buffer on {} before caps", pad.name())
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        // Parse outside the lock.
        let (au, param_sets) = {
            let Ok(map) = buffer.map_readable() else {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Cannot map a buffer of {}", pad.name())
                );
                return Err(gst::FlowError::Error);
            };
            let au = nal::parse(codec, &map);
            let sets = au
                .as_ref()
                .map(|a| nal::extract_parameter_sets(codec, &map, a))
                .unwrap_or_default();
            (au, sets)
        };
        let mut actions = Actions::default();
        let outcome = {
            let mut st = self.state();
            self.chain_locked(
                &mut st,
                &settings,
                &mut actions,
                pad,
                id,
                codec,
                buffer,
                au,
                param_sets,
            )
        };
        match outcome {
            Ok((drain, selected, last_flow)) => {
                let result = self.finish(actions, drain);
                if selected {
                    result.unwrap_or(last_flow)
                } else {
                    Ok(gst::FlowSuccess::Ok)
                }
            }
            Err((err, msg)) => {
                self.run(actions);
                if let Some(msg) = msg {
                    gst::element_imp_error!(self, gst::StreamError::Format, ("{}", msg));
                }
                Err(err)
            }
        }
    }

    /// The chain function under the state lock. Returns whether to drain
    /// (and blocking or not), whether `id` is the selected rendition now
    /// and the last push result; or an error with a message to post.
    #[allow(clippy::too_many_arguments)]
    fn chain_locked(
        &self,
        st: &mut State,
        settings: &Settings,
        actions: &mut Actions,
        pad: &super::AbrSelectorSinkPad,
        id: u32,
        codec: Codec,
        buffer: gst::Buffer,
        au: Option<AccessUnit>,
        param_sets: Vec<(nal::ParamSet, Vec<Vec<u8>>)>,
    ) -> Result<ChainOutcome, (gst::FlowError, Option<String>)> {
        if st.out_eos {
            return Err((gst::FlowError::Eos, None));
        }
        let Some(ps) = st.pads.get_mut(&id) else {
            return Err((gst::FlowError::Flushing, None));
        };
        if ps.flushing {
            return Err((gst::FlowError::Flushing, None));
        }
        let Some(seg) = ps.segment.clone() else {
            return Err((
                gst::FlowError::Error,
                Some(format!("Buffer on {} before a TIME segment", ps.name)),
            ));
        };
        let size = buffer.size() as u64;
        ps.stats.buffers += 1;
        ps.stats.bytes += size;
        for (kind, nals) in param_sets {
            ps.params.replace(kind, nals);
        }
        let rt = seg.to_running(buffer.dts().or(buffer.pts()));
        let end = rt.map(|r| r + buffer.duration().map_or(0, |d| d.nseconds() as i64));
        if let Some(p) = seg.to_running(buffer.pts()).or(rt) {
            ps.measure_push(p, size);
        }
        if rt.is_some() {
            ps.last_rt = rt;
        }
        match &au {
            None => {
                ps.stats.unparseable += 1;
                if let Some(s) = &ps.series {
                    s.unparseable.inc();
                }
                if !ps.warned_unparseable {
                    ps.warned_unparseable = true;
                    actions.warnings.push((
                        gst::StreamError::Decode,
                        format!(
                            "{}: buffer is not an Annex B access unit (no start code at its \
                             start); such buffers are never switch points",
                            ps.name
                        ),
                    ));
                }
            }
            Some(a) if a.keyframe => {
                ps.stats.keyframes += 1;
                if let Some(r) = rt {
                    ps.key_ref = rt;
                    if let Some(k) = ps.last_key.filter(|k| r > *k) {
                        if ps.key_periods.len() == KEY_PERIODS {
                            ps.key_periods.pop_front();
                        }
                        ps.key_periods.push_back(r - k);
                    }
                    ps.last_key = Some(r);
                }
                ps.warned_keyframe = false;
            }
            Some(_) => {}
        }
        match (rt, ps.key_ref) {
            (Some(r), None) => ps.key_ref = Some(r),
            (Some(r), Some(k)) if r - k > KEYFRAME_TIMEOUT && !ps.warned_keyframe => {
                ps.warned_keyframe = true;
                ps.stats.keyframe_timeouts += 1;
                if let Some(s) = &ps.series {
                    s.keyframe_timeouts.inc();
                }
                actions.warnings.push((
                    gst::StreamError::Demux,
                    format!(
                        "{}: no keyframe for {} s of running time; this rendition cannot be \
                         switched to (check the encoder's key-int-max)",
                        ps.name,
                        KEYFRAME_TIMEOUT / SECOND
                    ),
                ));
            }
            _ => {}
        }
        let switchable = rt.is_some()
            && au
                .as_ref()
                .is_some_and(|a| nal::self_contained_with(codec, a, &ps.params));
        if let Some(r) = rt {
            st.now = Some(st.now.map_or(r, |n| n.max(r)));
            st.first_now.get_or_insert(r);
        }
        self.evaluate(st, settings, actions);

        if st.active.is_none() && !st.stream_started {
            return Ok(self.startup(st, actions, id, buffer, au, switchable, rt, end));
        }

        let is_target = st
            .switch
            .as_ref()
            .is_some_and(|s| s.to == Some(id) || (s.to.is_none() && st.active.is_none()));
        let armed_at = match &st.switch {
            Some(Switch {
                phase: Phase::Armed { t, .. },
                ..
            }) => Some(*t),
            _ => None,
        };
        if st.active == Some(id) {
            if let (Some(t), Some(r)) = (armed_at, rt) {
                if r >= t {
                    // The old rendition reached the switch instant.
                    self.complete_switch(st, actions, "old rendition reached it");
                    st.drop_buffer(id);
                    return Ok(self.chain_done(st, id));
                }
            }
            let ps = st.pads.get_mut(&id).expect("pad exists");
            let b = OutBuf {
                buffer: self.prepare(ps, buffer, au.as_ref(), false),
                rt,
                end,
            };
            if let Some(b) = self.hold_old(st, b) {
                self.output_buffer(st, id, b);
            }
        } else if is_target && armed_at.is_none() {
            let r = rt.unwrap_or(i64::MIN);
            if switchable && st.last_out_rt.is_none_or(|l| l < r) {
                let ps = st.pads.get_mut(&id).expect("pad exists");
                let buffer = self.prepare(ps, buffer, au.as_ref(), true);
                let old_gone = match st.active {
                    None => true,
                    Some(a) => st.pads.get(&a).is_none_or(|p| p.eos),
                };
                let sw = st.switch.as_mut().expect("switch exists");
                sw.to = Some(id);
                let old_held = std::mem::take(&mut sw.old_held);
                sw.predicted = None;
                sw.phase = Phase::Armed {
                    t: r,
                    held: VecDeque::from([OutBuf { buffer, rt, end }]),
                };
                gst::debug!(CAT, obj = pad, "switch point at {}", r);
                // The old rendition's buffers held at the predicted keyframe:
                // those before the switch instant go out, the others are
                // replaced.
                let mut reached = old_gone;
                if let Some(a) = st.active {
                    for b in old_held {
                        if b.rt.is_some_and(|x| x >= r) {
                            reached = true;
                            st.drop_buffer(a);
                        } else {
                            self.output_buffer(st, a, b);
                        }
                    }
                }
                if reached {
                    self.complete_switch(st, actions, "old rendition reached it");
                }
            } else {
                if switchable {
                    gst::debug!(
                        CAT,
                        obj = pad,
                        "keyframe at {} is not after the output, waiting for the next",
                        r
                    );
                }
                let missed = st
                    .switch
                    .as_ref()
                    .and_then(|s| s.predicted)
                    .is_some_and(|p| r >= p);
                if missed {
                    // No keyframe where one was expected: the held buffers
                    // of the selected rendition go out.
                    gst::debug!(CAT, obj = pad, "no keyframe at the predicted time ({})", r);
                    self.release_old_held(st);
                }
                st.drop_buffer(id);
            }
        } else if let (true, Some(t)) = (is_target, armed_at) {
            let ps = st.pads.get_mut(&id).expect("pad exists");
            let buffer = self.prepare(ps, buffer, au.as_ref(), false);
            if let Some(Switch {
                phase: Phase::Armed { held, .. },
                ..
            }) = st.switch.as_mut()
            {
                held.push_back(OutBuf { buffer, rt, end });
            }
            if rt.is_some_and(|r| r - t > HOLD_MAX) {
                self.complete_switch(
                    st,
                    actions,
                    "old rendition stalled, cut at the switch instant",
                );
            }
        } else {
            st.drop_buffer(id);
        }
        Ok(self.chain_done(st, id))
    }

    /// What `chain_locked` returns once done with a buffer of `id`: drain
    /// (blocking for the selected rendition) when output is queued.
    fn chain_done(&self, st: &State, id: u32) -> ChainOutcome {
        let selected = st.active == Some(id);
        let drain = (!st.out.is_empty()).then_some(selected);
        (drain, selected, st.last_flow)
    }

    /// A buffer of the selected rendition while a switch waits for the
    /// target's keyframe: held (`None`) when it is at or after the target's
    /// predicted next keyframe and the target has not shown that time yet,
    /// so that a target whose buffers arrive later (another thread, a slower
    /// encoder, or pushed after this one by the same thread) can still take
    /// over there. The held buffers go out when the prediction fails, when
    /// they span `OLD_HOLD_MAX` (then this switch stops predicting), or when
    /// the switch is given up. Never blocks.
    fn hold_old(&self, st: &mut State, b: OutBuf) -> Option<OutBuf> {
        let last_out = st.last_out_rt;
        let Some(sw) = st.switch.as_mut() else {
            return Some(b);
        };
        if !matches!(sw.phase, Phase::Waiting) || !sw.predict {
            return Some(b);
        }
        let Some(target) = sw.to.and_then(|t| st.pads.get(&t)) else {
            return Some(b);
        };
        if target.eos || target.flushing {
            return Some(b);
        }
        if !sw.old_held.is_empty() {
            let first = sw.old_held.front().and_then(|h| h.rt);
            let span = b.rt.zip(first).map_or(0, |(r, f)| r - f);
            sw.old_held.push_back(b);
            if span > OLD_HOLD_MAX {
                gst::debug!(
                    CAT,
                    imp = self,
                    "no keyframe of {} for too long, not predicting any more",
                    target.name
                );
                sw.predict = false;
                self.release_old_held(st);
            }
            return None;
        }
        let Some(r) = b.rt else { return Some(b) };
        let base = last_out
            .unwrap_or(i64::MIN)
            .max(target.last_rt.unwrap_or(i64::MIN));
        let predicted = match sw.predicted.filter(|p| *p > base) {
            Some(p) => p,
            None => match target.next_keyframe(base) {
                Some(p) => p,
                None => return Some(b),
            },
        };
        sw.predicted = Some(predicted);
        if r >= predicted && target.last_rt.is_none_or(|t| t < predicted) {
            gst::log!(
                CAT,
                imp = self,
                "holding at {}: {} expected to have a keyframe at {}",
                r,
                target.name,
                predicted
            );
            sw.old_held.push_back(b);
            return None;
        }
        Some(b)
    }

    /// Sends on the selected rendition's buffers held at a predicted
    /// keyframe.
    fn release_old_held(&self, st: &mut State) {
        let Some(sw) = st.switch.as_mut() else { return };
        let held = std::mem::take(&mut sw.old_held);
        sw.predicted = None;
        if let Some(a) = st.active {
            for b in held {
                self.output_buffer(st, a, b);
            }
        }
    }

    /// Gives up the pending switch (its held buffers of the selected
    /// rendition go out).
    fn cancel_switch(&self, st: &mut State) {
        self.release_old_held(st);
        st.switch = None;
        st.fku_sent = None;
    }

    /// Before the first output: keeps the access units since each
    /// rendition's last usable keyframe and starts on the chosen one's as
    /// soon as the first selection is made.
    #[allow(clippy::too_many_arguments)]
    fn startup(
        &self,
        st: &mut State,
        actions: &mut Actions,
        id: u32,
        buffer: gst::Buffer,
        au: Option<AccessUnit>,
        switchable: bool,
        rt: Option<i64>,
        end: Option<i64>,
    ) -> ChainOutcome {
        let ps = st.pads.get_mut(&id).expect("pad exists");
        let mut discarded = 0u64;
        if switchable {
            discarded += ps.startup.len() as u64;
            ps.startup.clear();
            ps.startup.push(Unprepared {
                buffer,
                au,
                rt,
                end,
            });
        } else if !ps.startup.is_empty() && ps.startup.len() < STARTUP_MAX {
            ps.startup.push(Unprepared {
                buffer,
                au,
                rt,
                end,
            });
        } else {
            discarded += ps.startup.len() as u64 + 1;
            ps.startup.clear();
        }
        if discarded > 0 {
            ps.stats.dropped += discarded;
            if let Some(s) = &ps.series {
                s.dropped.inc_by(discarded);
            }
        }
        let target = match &st.switch {
            Some(Switch {
                to,
                phase: Phase::Waiting,
                ..
            }) => to.or(Some(id)),
            _ => None,
        };
        gst::trace!(
            CAT,
            imp = self,
            "startup: sink_{} keeps {} (switchable {}), target {:?}",
            id,
            st.pads.get(&id).map_or(0, |p| p.startup.len()),
            switchable,
            target
        );
        let Some(target) = target else {
            return (None, false, st.last_flow);
        };
        let Some(tp) = st.pads.get_mut(&target) else {
            return (None, false, st.last_flow);
        };
        if tp.startup.is_empty() {
            return (None, false, st.last_flow);
        }
        let gop = std::mem::take(&mut tp.startup);
        let mut held = VecDeque::with_capacity(gop.len());
        let mut t = None;
        for (
            i,
            Unprepared {
                buffer,
                au,
                rt,
                end,
            },
        ) in gop.into_iter().enumerate()
        {
            let buffer = self.prepare(tp, buffer, au.as_ref(), i == 0);
            if i == 0 {
                t = rt;
            }
            held.push_back(OutBuf { buffer, rt, end });
        }
        let sw = st.switch.as_mut().expect("switch exists");
        sw.to = Some(target);
        sw.phase = Phase::Armed {
            t: t.unwrap_or(0),
            held,
        };
        self.complete_switch(st, actions, "first selection");
        (Some(target == id), st.active == Some(id), st.last_flow)
    }

    /// Runs the actions and drains; the state lock must not be held.
    fn finish(
        &self,
        actions: Actions,
        drain: Option<bool>,
    ) -> Option<Result<gst::FlowSuccess, gst::FlowError>> {
        self.run(actions);
        drain.and_then(|blocking| self.drain(blocking))
    }

    fn sink_event(&self, pad: &super::AbrSelectorSinkPad, id: u32, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "event {:?}", event.type_());
        let mut actions = Actions::default();
        let mut drain = None;
        let ret = {
            let mut guard = self.state();
            let st = &mut *guard;
            let selected = st.active == Some(id);
            let Some(ps) = st.pads.get_mut(&id) else {
                return false;
            };
            match event.view() {
                EventView::StreamStart(_) => {
                    ps.stream_start = Some(event.clone());
                    ps.eos = false;
                    true
                }
                EventView::Caps(c) => match check_caps(c.caps()) {
                    Ok(codec) => {
                        let caps = c.caps_owned();
                        if ps.codec.is_some_and(|old| old != codec) {
                            ps.params.clear();
                        }
                        ps.codec = Some(codec);
                        ps.caps = Some(caps.clone());
                        if selected
                            && st.stream_started
                            && st.out_caps.as_ref().is_none_or(|o| *o != caps)
                        {
                            st.out
                                .push_back(OutItem::Event(gst::event::Caps::new(&caps)));
                            st.out_caps = Some(caps);
                            drain = Some(true);
                        }
                        true
                    }
                    Err(why) => {
                        drop(guard);
                        self.reject_caps(pad, c.caps(), &why);
                        return false;
                    }
                },
                EventView::Segment(seg) => match seg.segment().downcast_ref::<gst::ClockTime>() {
                    Some(seg) => {
                        ps.segment = Some(SegmentMap::new(seg.clone()));
                        true
                    }
                    None => {
                        actions.warnings.push((
                            gst::StreamError::Format,
                            format!(
                                "{}: {:?} segment refused, only TIME segments are supported",
                                ps.name,
                                seg.segment().format()
                            ),
                        ));
                        false
                    }
                },
                EventView::Tag(t) => {
                    let tags = t.tag();
                    let pick = tags
                        .get::<gst::tags::NominalBitrate>()
                        .or_else(|| tags.get::<gst::tags::Bitrate>())
                        .or_else(|| tags.get::<gst::tags::MaximumBitrate>())
                        .map(|v| v.get() as u64)
                        .filter(|v| *v > 0);
                    if let Some(b) = pick {
                        if ps.tag_bitrate != Some(b) {
                            gst::debug!(CAT, obj = pad, "bit rate from tags: {}", b);
                        }
                        ps.tag_bitrate = Some(b);
                    }
                    if tags.scope() == gst::TagScope::Stream {
                        ps.stream_tags = Some(event.clone());
                    }
                    if selected && st.stream_started {
                        st.out.push_back(OutItem::Event(event.clone()));
                        drain = Some(true);
                    }
                    true
                }
                EventView::Gap(g) => {
                    if selected && st.stream_started {
                        let (ts, dur) = g.get();
                        let seg = ps.segment.clone();
                        let mapped = match (&seg, &st.out_segment) {
                            (Some(i), Some(o)) => i.convert(o, Some(ts)),
                            _ => Some(ts),
                        };
                        if let Some(ts) = mapped {
                            let mut b = gst::event::Gap::builder(ts);
                            if let Some(d) = dur {
                                b = b.duration(d);
                            }
                            st.out.push_back(OutItem::Event(b.build()));
                            drain = Some(true);
                        }
                    }
                    true
                }
                EventView::Eos(_) => {
                    ps.eos = true;
                    gst::debug!(CAT, obj = pad, "EOS");
                    if selected {
                        if matches!(
                            st.switch,
                            Some(Switch {
                                phase: Phase::Armed { .. },
                                ..
                            })
                        ) {
                            self.complete_switch(st, &mut actions, "old rendition ended");
                            drain = Some(false);
                        } else {
                            self.cancel_switch(st);
                            st.out.push_back(OutItem::Event(gst::event::Eos::new()));
                            st.out_eos = true;
                            drain = Some(true);
                        }
                    } else if st.switch.as_ref().is_some_and(|s| s.to == Some(id)) {
                        gst::debug!(CAT, obj = pad, "switch target ended, switch cancelled");
                        self.cancel_switch(st);
                    }
                    if st.active.is_none() && !st.out_eos && st.pads.values().all(|p| p.eos) {
                        actions.warnings.push((
                            gst::StreamError::Demux,
                            "Every rendition ended without a keyframe with parameter sets: \
                             nothing was output"
                                .to_string(),
                        ));
                        self.queue_eos_without_data(st, id);
                        drain = Some(true);
                    }
                    true
                }
                EventView::FlushStart(_) => {
                    ps.flushing = true;
                    if st.switch.as_ref().is_some_and(|s| s.to == Some(id)) {
                        self.cancel_switch(st);
                    }
                    if selected {
                        st.src_flushing = true;
                        st.out.clear();
                        drop(guard);
                        return self.srcpad.push_event(event);
                    }
                    true
                }
                EventView::FlushStop(_) => {
                    ps.flushing = false;
                    ps.reset_stream();
                    if st.switch.as_ref().is_some_and(|s| s.to == Some(id)) {
                        self.cancel_switch(st);
                    }
                    if selected {
                        st.switch = None;
                        st.src_flushing = false;
                        st.out.clear();
                        st.out_eos = false;
                        st.out_segment = None;
                        st.last_out_rt = None;
                        st.last_flow = Ok(gst::FlowSuccess::Ok);
                        st.now = None;
                        st.first_now = None;
                        st.timing.reset();
                        st.policy.retime();
                        drop(guard);
                        let _lock = self.src_lock.lock().unwrap_or_else(|e| e.into_inner());
                        return self.srcpad.push_event(event);
                    }
                    true
                }
                EventView::CustomDownstream(_)
                | EventView::CustomDownstreamOob(_)
                | EventView::CustomBoth(_)
                    if event
                        .structure()
                        .is_some_and(|s| s.name() == ESTIMATE_EVENT) =>
                {
                    drop(guard);
                    return self.estimate_event(event.structure().expect("checked"));
                }
                _ => {
                    if !selected {
                        true
                    } else if event.is_serialized() {
                        st.out.push_back(OutItem::Event(event.clone()));
                        drain = Some(true);
                        true
                    } else {
                        drop(guard);
                        return self.srcpad.push_event(event);
                    }
                }
            }
        };
        let drain = drain.or_else(|| (!self.state().out.is_empty()).then_some(false));
        self.finish(actions, drain);
        ret
    }

    /// EOS when nothing was ever selected: stream-start and segment first,
    /// as downstream expects them before EOS.
    fn queue_eos_without_data(&self, st: &mut State, id: u32) {
        if !st.stream_started {
            st.stream_started = true;
            st.out
                .push_back(OutItem::Event(gst::event::StreamStart::new(&format!(
                    "abrselector-{:08x}",
                    glib::random_int()
                ))));
        }
        if st.out_segment.is_none() {
            let seg = st
                .pads
                .get(&id)
                .and_then(|p| p.segment.clone())
                .unwrap_or_else(|| SegmentMap::new(gst::FormattedSegment::new()));
            st.out
                .push_back(OutItem::Event(gst::event::Segment::new(&seg.segment)));
            st.out_segment = Some(seg);
        }
        st.out.push_back(OutItem::Event(gst::event::Eos::new()));
        st.switch = None;
        st.out_eos = true;
    }

    /// Counts refused caps (accept-caps query or caps event) and warns once
    /// per pad and caps.
    fn reject_caps(&self, pad: &super::AbrSelectorSinkPad, caps: &gst::CapsRef, why: &str) {
        let text = {
            let mut st = self.state();
            let Some(ps) = st.pads.values_mut().find(|p| &p.pad == pad) else {
                return;
            };
            ps.stats.rejected_caps += 1;
            if let Some(s) = &ps.series {
                s.rejected_caps.inc();
            }
            let key = caps.to_string();
            if ps.warned_caps.contains(&key) {
                None
            } else {
                ps.warned_caps.push(key);
                Some(format!("{}: caps refused: {} ({})", ps.name, why, caps))
            }
        };
        if let Some(text) = text {
            gst::warning!(CAT, obj = pad, "{}", text);
            gst::element_imp_warning!(self, gst::StreamError::WrongType, ("{}", text));
        }
    }

    fn sink_query(&self, pad: &super::AbrSelectorSinkPad, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Caps(q) => {
                let templ = pad.pad_template_caps();
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&templ, gst::CapsIntersectMode::First),
                    None => templ,
                };
                q.set_result(&caps);
                true
            }
            QueryViewMut::AcceptCaps(q) => {
                let verdict = check_caps(q.caps()).and_then(|_| {
                    if q.caps().can_intersect(&pad.pad_template_caps()) {
                        Ok(())
                    } else {
                        Err("not within the pad template".to_string())
                    }
                });
                q.set_result(verdict.is_ok());
                if let Err(why) = verdict {
                    self.reject_caps(pad, q.caps(), &why);
                }
                true
            }
            // Not proxied: the selected rendition changes, and the others
            // are consumed here.
            QueryViewMut::Allocation(_) => false,
            QueryViewMut::Drain(_) => true,
            _ => self.srcpad.peer_query(query),
        }
    }

    fn src_event(&self, event: gst::Event) -> bool {
        use gst::EventView;
        let pads: Vec<super::AbrSelectorSinkPad>;
        let active;
        {
            let st = self.state();
            pads = st.pads.values().map(|p| p.pad.clone()).collect();
            active = st
                .active
                .and_then(|a| st.pads.get(&a))
                .map(|p| p.pad.clone());
        }
        match event.view() {
            EventView::CustomUpstream(_) | EventView::CustomBoth(_)
                if event
                    .structure()
                    .is_some_and(|s| s.name() == ESTIMATE_EVENT) =>
            {
                self.estimate_event(event.structure().expect("checked"))
            }
            EventView::Seek(_) | EventView::Reconfigure(_) | EventView::Latency(_) => {
                let mut any = false;
                for p in pads {
                    any |= p.push_event(event.clone());
                }
                any
            }
            _ => match active {
                Some(p) => p.push_event(event),
                None => {
                    let mut any = false;
                    for p in pads {
                        any |= p.push_event(event.clone());
                    }
                    any
                }
            },
        }
    }

    fn src_query(&self, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        let (pads, active) = {
            let st = self.state();
            (
                st.pads.values().map(|p| p.pad.clone()).collect::<Vec<_>>(),
                st.active
                    .and_then(|a| st.pads.get(&a))
                    .map(|p| p.pad.clone()),
            )
        };
        match query.view_mut() {
            QueryViewMut::Caps(q) => {
                let templ = self.srcpad.pad_template_caps();
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&templ, gst::CapsIntersectMode::First),
                    None => templ,
                };
                q.set_result(&caps);
                true
            }
            QueryViewMut::Latency(q) => {
                // Every rendition is live or not alike; the output can be
                // as late as the latest one.
                let mut answered = false;
                let mut live = false;
                let mut min = gst::ClockTime::ZERO;
                // None: unbounded.
                let mut max: Option<gst::ClockTime> = None;
                for p in pads {
                    let mut uq = gst::query::Latency::new();
                    if p.peer_query(&mut uq) {
                        let (l, mn, mx) = uq.result();
                        answered = true;
                        live |= l;
                        min = min.max(mn);
                        if let Some(mx) = mx {
                            max = Some(max.map_or(mx, |m| m.min(mx)));
                        }
                    }
                }
                if answered {
                    q.set(live, min, max);
                }
                answered
            }
            QueryViewMut::Scheduling(_) => false,
            _ => match active.or_else(|| pads.into_iter().next()) {
                Some(p) => p.peer_query(query),
                None => false,
            },
        }
    }

    fn pad_stats(&self, name: &str) -> Option<gst::Structure> {
        let st = self.state();
        let (id, ps) = st.pads.iter().find(|(_, p)| p.name == name)?;
        Some(Self::pad_structure(&st, *id, ps))
    }

    fn pad_structure(st: &State, id: u32, ps: &PadState) -> gst::Structure {
        let (bitrate, source) = ps.bitrate().unwrap_or((0, "unknown"));
        let c = &ps.stats;
        gst::Structure::builder(ps.name.as_str())
            .field("selected", st.active == Some(id))
            .field("bitrate", bitrate)
            .field("bitrate-source", source)
            .field("measured-bitrate", ps.measured().unwrap_or(0))
            .field("tag-bitrate", ps.tag_bitrate.unwrap_or(0))
            .field("buffers", c.buffers)
            .field("bytes", c.bytes)
            .field("forwarded", c.forwarded)
            .field("dropped", c.dropped)
            .field("late", c.late)
            .field("keyframes", c.keyframes)
            .field("parameter-sets-inserted", c.inserted)
            .field(
                "parameter-sets-cached",
                ps.codec.is_some_and(|k| ps.params.complete(k)),
            )
            .field("unparseable", c.unparseable)
            .field("keyframe-timeouts", c.keyframe_timeouts)
            .field("rejected-caps", c.rejected_caps)
            .field("eos", ps.eos)
            .build()
    }

    fn stats(&self) -> gst::Structure {
        let st = self.state();
        let e = st.policy.estimator();
        let pending = st.switch.as_ref().and_then(|s| st.name(s.to));
        let renditions: Vec<glib::SendValue> = st
            .pads
            .iter()
            .map(|(id, p)| Self::pad_structure(&st, *id, p).to_send_value())
            .collect();
        let (mut fwd, mut dropped, mut inserted) = (0u64, 0u64, 0u64);
        for p in st.pads.values() {
            fwd += p.stats.forwarded;
            dropped += p.stats.dropped;
            inserted += p.stats.inserted;
        }
        gst::Structure::builder("abrselector-stats")
            .field("current", st.name(st.active))
            .field("pending", pending)
            .field("estimate", st.policy.estimate().unwrap_or(0))
            .field("estimate-fast", e.fast().unwrap_or(0))
            .field("estimate-slow", e.slow().unwrap_or(0))
            .field("queue-delay", st.policy.queue_delay().unwrap_or(0.0))
            .field("switches", st.counts.switches_up + st.counts.switches_down)
            .field("switches-up", st.counts.switches_up)
            .field("switches-down", st.counts.switches_down)
            .field("buffers-forwarded", fwd)
            .field("buffers-dropped", dropped)
            .field("parameter-sets-inserted", inserted)
            .field("renditions", gst::Array::from_values(renditions))
            .build()
    }

    /// Creates the metric series of the element and its pads.
    fn create_series(&self, st: &mut State) {
        let pipeline = exporter::pipeline_label(&*self.obj());
        let element = self.obj().name().to_string();
        if let Some(s) = st.series.take() {
            s.remove();
        }
        st.series = Some(ElementSeries::new([
            pipeline.clone(),
            element.clone(),
            "src".to_string(),
        ]));
        for p in st.pads.values_mut() {
            if let Some(s) = p.series.take() {
                s.remove();
            }
            p.series = Some(PadSeries::new([
                pipeline.clone(),
                element.clone(),
                p.name.clone(),
            ]));
        }
    }

    fn remove_series(st: &mut State) {
        if let Some(s) = st.series.take() {
            s.remove();
        }
        for p in st.pads.values_mut() {
            if let Some(s) = p.series.take() {
                s.remove();
            }
        }
    }

    /// Back to the initial state, keeping the pads and their settings.
    fn reset(&self, st: &mut State) {
        let settings = self.settings();
        let pads = std::mem::take(&mut st.pads);
        let series = st.series.take();
        *st = State::new(settings.config());
        st.series = series;
        st.pads = pads;
        for p in st.pads.values_mut() {
            let series = p.series.take();
            let stats_pad = p.pad.clone();
            *p = PadState::new(stats_pad);
            p.series = series;
        }
        if settings.bandwidth_estimate > 0 {
            st.policy.sample(0, settings.bandwidth_estimate);
        }
    }
}

impl ObjectImpl for AbrSelector {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt64::builder("bandwidth-estimate")
                    .nick("Bandwidth Estimate")
                    .blurb(
                        "Estimate of the downstream link, in bits/s (0 = none from this \
                         property); each change is a sample of the estimator, changeable in \
                         PLAYING",
                    )
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("estimator", EstimatorMode::Auto)
                    .nick("Estimator")
                    .blurb(
                        "Built-in estimate from push timing on src: none, push-timing \
                         (always), auto (while bandwidth-estimate is 0 and no \
                         abr-bandwidth-estimate event came in the last 10 s)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("safety-factor")
                    .nick("Safety Factor")
                    .blurb(
                        "A rendition fits when its bit rate <= safety-factor x estimate; the \
                         current one above that is left at the next keyframe (0.1 to 1.0)",
                    )
                    .minimum(0.1)
                    .maximum(1.0)
                    .default_value(DEFAULT_SAFETY_FACTOR)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("up-factor")
                    .nick("Up Factor")
                    .blurb(
                        "Headroom for an upswitch: a higher rendition needs bit rate x \
                         up-factor <= estimate for min-switch-interval (1.0 to 10.0; keep it \
                         >= 1 / safety-factor)",
                    )
                    .minimum(1.0)
                    .maximum(10.0)
                    .default_value(DEFAULT_UP_FACTOR)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("min-switch-interval")
                    .nick("Min Switch Interval")
                    .blurb(
                        "How long the headroom for an upswitch must hold, and the least time \
                         from any switch to an upswitch, in ns of running time (0 to 1 hour; \
                         downswitches are never held back)",
                    )
                    .maximum(3_600 * SECOND as u64)
                    .default_value(DEFAULT_MIN_SWITCH_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("fast-half-life")
                    .nick("Fast Half-Life")
                    .blurb(
                        "Half-life of the fast moving average of the estimate, in seconds of \
                         running time (0.01 to 600); downswitches follow min(fast, latest \
                         sample), upswitch headroom min(fast, slow)",
                    )
                    .minimum(0.01)
                    .maximum(600.0)
                    .default_value(DEFAULT_FAST_HALF_LIFE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("slow-half-life")
                    .nick("Slow Half-Life")
                    .blurb(
                        "Half-life of the slow moving average of the estimate, in seconds of \
                         running time (0.01 to 3600)",
                    )
                    .minimum(0.01)
                    .maximum(3600.0)
                    .default_value(DEFAULT_SLOW_HALF_LIFE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("max-queue-delay")
                    .nick("Max Queue Delay")
                    .blurb(
                        "Queue delay budget of the link model (what was sent against the \
                         estimate), in ns (0 to 60 s; 0 turns it off): a rendition above \
                         safety-factor x estimate is kept, or taken on an upswitch, while the \
                         modelled queue stays within it and estimates keep coming; a longer \
                         queue makes it go down. Set it below the receiver's buffer",
                    )
                    .maximum(60 * SECOND as u64)
                    .default_value(DEFAULT_MAX_QUEUE_DELAY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("force-key-unit")
                    .nick("Force Key Unit")
                    .blurb(
                        "On a decided switch, send an upstream force-key-unit event \
                         (all-headers=true) on the target's pad so its encoder makes an IDR \
                         sooner",
                    )
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("current")
                    .nick("Current Rendition")
                    .blurb("Name of the sink pad being forwarded (NULL before the first selection)")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "current, pending (pad names), estimate, estimate-fast, estimate-slow \
                         (bits/s), queue-delay (modelled, s), switches, switches-up, switches-down, buffers-forwarded, \
                         buffers-dropped, parameter-sets-inserted, and per pad in \"renditions\"",
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
            "bandwidth-estimate" => {
                let v: u64 = value.get().expect("type checked");
                let changed = s.bandwidth_estimate != v;
                s.bandwidth_estimate = v;
                drop(s);
                if changed || v > 0 {
                    self.explicit_estimate(v, false);
                }
            }
            "estimator" => s.estimator = value.get().expect("type checked"),
            "safety-factor" => s.safety_factor = value.get().expect("type checked"),
            "up-factor" => s.up_factor = value.get().expect("type checked"),
            "min-switch-interval" => s.min_switch_interval = value.get().expect("type checked"),
            "fast-half-life" => s.fast_half_life = value.get().expect("type checked"),
            "slow-half-life" => s.slow_half_life = value.get().expect("type checked"),
            "max-queue-delay" => s.max_queue_delay = value.get().expect("type checked"),
            "force-key-unit" => s.force_key_unit = value.get().expect("type checked"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stats" => return self.stats().to_value(),
            "current" => {
                let st = self.state();
                return st.name(st.active).to_value();
            }
            _ => {}
        }
        let s = self.settings();
        match pspec.name() {
            "bandwidth-estimate" => s.bandwidth_estimate.to_value(),
            "estimator" => s.estimator.to_value(),
            "safety-factor" => s.safety_factor.to_value(),
            "up-factor" => s.up_factor.to_value(),
            "min-switch-interval" => s.min_switch_interval.to_value(),
            "fast-half-life" => s.fast_half_life.to_value(),
            "slow-half-life" => s.slow_half_life.to_value(),
            "max-queue-delay" => s.max_queue_delay.to_value(),
            "force-key-unit" => s.force_key_unit.to_value(),
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .add_pad(&self.srcpad)
            .expect("adding the src pad");
    }
}

impl GstObjectImpl for AbrSelector {}

impl ElementImpl for AbrSelector {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "ABR rendition selector",
                "Generic/Video/Network",
                "Forwards one of N H.264/H.265 renditions picked by a bandwidth estimate, \
                 switching only on a keyframe that carries its parameter sets",
                "gst-broadcast developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = h26x_caps();
            vec![
                gst::PadTemplate::with_gtype(
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &caps,
                    super::AbrSelectorSinkPad::static_type(),
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
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
        let mut st = self.state();
        let id = match name.and_then(|n| n.strip_prefix("sink_")) {
            Some(n) => match n.parse::<u32>() {
                Ok(i) if !st.pads.contains_key(&i) => i,
                _ => {
                    gst::warning!(CAT, imp = self, "Pad name {:?} is taken or invalid", name);
                    return None;
                }
            },
            None => (0..)
                .find(|i| !st.pads.contains_key(i))
                .expect("free index"),
        };
        let pad = gst::PadBuilder::<super::AbrSelectorSinkPad>::from_template(templ)
            .name(format!("sink_{id}"))
            .chain_function(move |pad, parent, buffer| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(pad, id, buffer),
                )
            })
            .event_function(move |pad, parent, event| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, id, event),
                )
            })
            .query_function(|pad, parent, query| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad, query),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| gst::Iterator::from_vec(vec![this.srcpad.clone()]),
                )
            })
            .build();
        let mut ps = PadState::new(pad.clone());
        let obj = self.obj();
        if obj.current_state() > gst::State::Ready {
            ps.series = Some(PadSeries::new(self.pad_labels(&ps.name)));
        }
        st.pads.insert(id, ps);
        drop(st);
        let _ = pad.set_active(obj.current_state() > gst::State::Ready);
        if obj.add_pad(&pad).is_err() {
            let mut st = self.state();
            if let Some(ps) = st.pads.remove(&id) {
                if let Some(s) = ps.series {
                    s.remove();
                }
            }
            return None;
        }
        obj.child_added(&pad, &pad.name());
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let mut actions = Actions::default();
        let found = {
            let mut guard = self.state();
            let st = &mut *guard;
            let id = st
                .pads
                .iter()
                .find(|(_, p)| p.pad.upcast_ref::<gst::Pad>() == pad)
                .map(|(i, _)| *i);
            if let Some(id) = id {
                if st.active == Some(id) {
                    if matches!(
                        st.switch,
                        Some(Switch {
                            phase: Phase::Armed { .. },
                            ..
                        })
                    ) {
                        self.complete_switch(st, &mut actions, "old rendition released");
                    } else {
                        st.active = None;
                        st.switch = None;
                        actions.notify_current = true;
                    }
                } else if st.switch.as_ref().is_some_and(|s| s.to == Some(id)) {
                    self.cancel_switch(st);
                }
                if let Some(ps) = st.pads.remove(&id) {
                    if let Some(s) = ps.series {
                        s.remove();
                    }
                }
                st.update_gauges();
            }
            id.is_some()
        };
        self.finish(actions, Some(false));
        if found {
            let _ = pad.set_active(false);
            let _ = self.obj().remove_pad(pad);
            self.obj().child_removed(pad, &pad.name());
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let mut st = self.state();
            self.reset(&mut st);
            self.create_series(&mut st);
            st.update_gauges();
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            let mut st = self.state();
            Self::remove_series(&mut st);
            self.reset(&mut st);
        }
        Ok(ret)
    }
}

impl ChildProxyImpl for AbrSelector {
    fn child_by_index(&self, index: u32) -> Option<glib::Object> {
        self.obj()
            .sink_pads()
            .into_iter()
            .nth(index as usize)
            .map(|p| p.upcast())
    }

    fn children_count(&self) -> u32 {
        self.obj().num_sink_pads() as u32
    }

    fn child_by_name(&self, name: &str) -> Option<glib::Object> {
        self.obj().static_pad(name).map(|p| p.upcast())
    }
}

/// The `sink_%u` pad.
#[derive(Default)]
pub struct AbrSelectorSinkPad {
    /// `bitrate` property, bits/s (0 = from tags or measured).
    pub(super) bitrate: AtomicU64,
}

#[glib::object_subclass]
impl ObjectSubclass for AbrSelectorSinkPad {
    const NAME: &'static str = "GstAbrSelectorSinkPad";
    type Type = super::AbrSelectorSinkPad;
    type ParentType = gst::Pad;
}

impl ObjectImpl for AbrSelectorSinkPad {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt64::builder("bitrate")
                    .nick("Bitrate")
                    .blurb(
                        "Nominal bit rate of this rendition, in bits/s (0 = from its \
                         nominal-bitrate, bitrate or maximum-bitrate tag, else measured over \
                         the last 3 s of PTS)",
                    )
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "selected, bitrate (bits/s, as used), bitrate-source (property, tag, \
                         measured, unknown), measured-bitrate, tag-bitrate, buffers, bytes, \
                         forwarded, dropped, late, keyframes, parameter-sets-inserted, \
                         parameter-sets-cached, unparseable, keyframe-timeouts, \
                         rejected-caps, eos",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "bitrate" => self
                .bitrate
                .store(value.get().expect("type checked"), Ordering::Relaxed),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "bitrate" => self.bitrate.load(Ordering::Relaxed).to_value(),
            "stats" => {
                let obj = self.obj();
                let name = obj.name();
                obj.parent()
                    .and_downcast::<super::AbrSelector>()
                    .and_then(|e| e.imp().pad_stats(&name))
                    .unwrap_or_else(|| gst::Structure::new_empty(name.as_str()))
                    .to_value()
            }
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for AbrSelectorSinkPad {}

impl PadImpl for AbrSelectorSinkPad {}
