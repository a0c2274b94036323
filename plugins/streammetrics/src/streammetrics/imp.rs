// SPDX-License-Identifier: MPL-2.0

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_common::SegmentMap;
use gstbroadcast_exporter as exporter;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "streammetrics",
        gst::DebugColorFlags::empty(),
        Some("Transparent stream metrics probe"),
    )
});

const SECOND: f64 = 1e9;
/// A timestamp step of more than this many frame durations counts the
/// missing frames as dropped.
const GAP_FACTOR: f64 = 1.5;

/// Prometheus families shared by every `streammetrics` instance.
struct Families {
    frames: prometheus::IntCounterVec,
    keyframes: prometheus::IntCounterVec,
    bytes: prometheus::IntCounterVec,
    dropped: prometheus::IntCounterVec,
    gop_interval: prometheus::HistogramVec,
    gop_length: prometheus::IntGaugeVec,
    jitter: prometheus::GaugeVec,
    bitrate: prometheus::GaugeVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    Families {
    frames: exporter::counter_vec("gst_stream_frames_total", "Buffers (frames) seen."),
    keyframes: exporter::counter_vec(
        "gst_stream_keyframes_total",
        "Buffers without the DELTA_UNIT flag (keyframes).",
    ),
    bytes: exporter::counter_vec("gst_stream_bytes_total", "Payload bytes seen."),
    dropped: exporter::counter_vec(
        "gst_stream_frames_dropped_total",
        "Frames missing: PTS/DTS gaps against the frame duration, RTP sequence gaps, late QoS events.",
    ),
    gop_interval: exporter::histogram_vec(
        "gst_stream_gop_interval_seconds",
        "Keyframe-to-keyframe interval by PTS, encoded video only.",
        vec![
            0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0,
        ],
    ),
    gop_length: exporter::gauge_vec(
        "gst_stream_gop_length_frames",
        "Frames in the last complete GOP, encoded video only.",
    ),
    jitter: exporter::float_gauge_vec(
        "gst_stream_jitter_seconds",
        "RFC 3550 interarrival jitter of buffer arrival against PTS (or RTP timestamp), 1/16 smoothing.",
    ),
    bitrate: exporter::float_gauge_vec(
        "gst_stream_data_rate_bytes_per_second",
        "Data rate over the last one-second window of PTS (multiply by 8 for bits/s).",
    ),
}
});

/// Metric handles of one stream, resolved once so that the per-buffer path
/// only does atomic increments; the stream's series leave the registry when
/// this is dropped.
struct Series {
    frames: prometheus::IntCounter,
    keyframes: prometheus::IntCounter,
    bytes: prometheus::IntCounter,
    dropped: prometheus::IntCounter,
    gop_interval: prometheus::Histogram,
    gop_length: prometheus::IntGauge,
    jitter: prometheus::Gauge,
    bitrate: prometheus::Gauge,
    _handle: exporter::Series,
}

impl Series {
    fn new(pipeline: &str, element: &str, stream: &str) -> Self {
        let mut h = exporter::Series::new(pipeline, element, stream);
        let f = &*FAMILIES;
        Series {
            frames: h.child(&f.frames),
            keyframes: h.child(&f.keyframes),
            bytes: h.child(&f.bytes),
            dropped: h.child(&f.dropped),
            gop_interval: h.child(&f.gop_interval),
            gop_length: h.child(&f.gop_length),
            jitter: h.child(&f.jitter),
            bitrate: h.child(&f.bitrate),
            _handle: h,
        }
    }
}

/// What kind of stream flows, from the caps.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Encoded video: GOP metrics apply.
    EncodedVideo,
    /// Raw video.
    RawVideo,
    /// Audio, raw or encoded.
    Audio,
    /// RTP with the given clock-rate in Hz.
    Rtp(u32),
    /// Anything else.
    Other,
}

#[derive(Debug, Clone, Default)]
struct Settings {
    stream_name: Option<String>,
    listen_address: Option<String>,
}

/// The pipeline clock and base time, once known.
struct ClockInfo {
    clock: gst::Clock,
    base: gst::ClockTime,
    /// A `GstSystemClock` of type monotonic, i.e. one that runs at the rate
    /// of `Instant` unless it is slaved to a master.
    system_monotonic: bool,
}

#[derive(Default)]
struct State {
    series: Option<Series>,
    /// From the caps; `None` until the first caps.
    kind: Option<Kind>,
    /// Frame duration from the caps, ns.
    caps_frame_ns: Option<u64>,
    /// Smallest timestamp step seen, ns (frame duration when caps lack one).
    measured_frame_ns: Option<u64>,
    last_ts: Option<i64>,
    last_dur: Option<u64>,
    frames: u64,
    keyframes: u64,
    bytes: u64,
    dropped: u64,
    qos_late: u64,
    last_key_pts: Option<i64>,
    frames_since_key: u64,
    gop_count: u64,
    gop_sum_ns: u64,
    gop_length: u64,
    /// RFC 3550 jitter estimate, seconds.
    jitter: f64,
    last_transit: Option<f64>,
    rtp_last_seq: Option<u16>,
    rtp_ts_ext: Option<u64>,
    window_start: Option<i64>,
    window_bytes: u64,
    bitrate: f64,
    clock: Option<ClockInfo>,
    /// Arrival anchor: running time (s) of the pipeline clock at an
    /// `Instant`, renewed every second so that a calibrated clock is
    /// followed while most buffers only read the monotonic clock.
    arrival_anchor: Option<(f64, std::time::Instant)>,
    /// The last TIME segment; `None` before it or after a segment in
    /// another format.
    segment: Option<SegmentMap>,
}

pub struct StreamMetrics {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for StreamMetrics {
    const NAME: &'static str = "GstStreamMetrics";
    type Type = super::StreamMetrics;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|_pad, parent, buffer| {
                StreamMetrics::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                StreamMetrics::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                StreamMetrics::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad, query),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                StreamMetrics::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| gst::Iterator::from_vec(vec![this.srcpad.clone()]),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();

        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .event_function(|pad, parent, event| {
                StreamMetrics::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                StreamMetrics::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_query(pad, query),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                StreamMetrics::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| gst::Iterator::from_vec(vec![this.sinkpad.clone()]),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();

        StreamMetrics {
            sinkpad,
            srcpad,
            settings: Mutex::default(),
            state: Mutex::default(),
        }
    }
}

impl StreamMetrics {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the series from the registry and forgets all counts.
    fn reset(&self) {
        let mut s = self.lock_state();
        // Dropping the series removes them from the registry.
        *s = State::default();
    }

    fn stats(&self) -> gst::Structure {
        let s = self.lock_state();
        let gop_mean = if s.gop_count > 0 {
            s.gop_sum_ns as f64 / s.gop_count as f64 / SECOND
        } else {
            0.0
        };
        gst::Structure::builder("streammetrics-stats")
            .field("frames", s.frames)
            .field("keyframes", s.keyframes)
            .field("bytes", s.bytes)
            .field("frames-dropped", s.dropped)
            .field("qos-late", s.qos_late)
            .field("gop-count", s.gop_count)
            .field("gop-interval-mean", gop_mean)
            .field("gop-length", s.gop_length)
            .field("jitter", s.jitter)
            .field("bitrate", s.bitrate)
            .build()
    }

    fn add_dropped(s: &mut State, n: u64) {
        if n > 0 {
            s.dropped += n;
            if let Some(series) = &s.series {
                series.dropped.inc_by(n);
            }
        }
    }

    /// RFC 3550 6.4.1: J += (|D| - J) / 16 with D the difference of transit
    /// times (arrival minus media timestamp) of consecutive packets.
    fn update_jitter(s: &mut State, arrival_s: f64, media_s: f64) {
        let transit = arrival_s - media_s;
        if let Some(last) = s.last_transit {
            let d = (transit - last).abs();
            s.jitter += (d - s.jitter) / 16.0;
            if let Some(series) = &s.series {
                series.jitter.set(s.jitter);
            }
        }
        s.last_transit = Some(transit);
    }

    fn arrival_seconds(&self, s: &mut State) -> Option<f64> {
        if s.clock.is_none() {
            let obj = self.obj();
            let clock = obj.clock()?;
            let base = obj.base_time()?;
            // Only the monotonic system clock runs at the rate of
            // `Instant`; other clocks (audio, network, test) are read every
            // time.
            let system_monotonic = clock.downcast_ref::<gst::SystemClock>().is_some_and(|c| {
                c.property::<gst::ClockType>("clock-type") == gst::ClockType::Monotonic
            });
            s.clock = Some(ClockInfo {
                clock,
                base,
                system_monotonic,
            });
            s.arrival_anchor = None;
        }
        let now = std::time::Instant::now();
        if let Some((at, instant)) = s.arrival_anchor {
            let elapsed = now.duration_since(instant).as_secs_f64();
            if elapsed < 1.0 {
                return Some(at + elapsed);
            }
        }
        let c = s.clock.as_ref()?;
        let at = c.clock.time().saturating_sub(c.base).nseconds() as f64 / SECOND;
        let monotonic = c.system_monotonic && c.clock.master().is_none();
        s.arrival_anchor = monotonic.then_some((at, now));
        Some(at)
    }

    /// Accounts `buf`; `false` before caps (not negotiated).
    fn observe(&self, buf: &gst::BufferRef) -> bool {
        let mut guard = self.lock_state();
        let s = &mut *guard;
        let Some(kind) = s.kind else {
            return false;
        };
        let size = buf.size() as u64;
        let keyframe = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
        s.frames += 1;
        s.bytes += size;
        if keyframe {
            s.keyframes += 1;
        }
        if let Some(series) = &s.series {
            series.frames.inc();
            series.bytes.inc_by(size);
            if keyframe {
                series.keyframes.inc();
            }
        }
        let pts = s
            .segment
            .as_ref()
            .and_then(|seg| seg.running_time(buf.pts()));

        if let Kind::Rtp(clock_rate) = kind {
            self.observe_rtp(s, buf, clock_rate);
        } else if let Some(ts) = s
            .segment
            .as_ref()
            .and_then(|seg| seg.running_time(buf.dts()))
            .or(pts)
        {
            // Gaps against the frame duration (DTS when known, so that
            // B-frame reordering is not taken for a gap).
            if let Some(last) = s.last_ts {
                if ts > last {
                    let step = (ts - last) as u64;
                    if let Some(frame) = s.caps_frame_ns.or(s.measured_frame_ns).or(s.last_dur) {
                        if frame > 0 && step as f64 > GAP_FACTOR * frame as f64 {
                            let missing = (step as f64 / frame as f64).round() as u64 - 1;
                            Self::add_dropped(s, missing);
                        }
                    }
                    if s.caps_frame_ns.is_none() {
                        s.measured_frame_ns =
                            Some(s.measured_frame_ns.map_or(step, |m| m.min(step)));
                    }
                }
            }
            s.last_ts = Some(ts);
            s.last_dur = buf.duration().map(|d| d.nseconds());
            if let Some(pts) = pts {
                if let Some(arrival) = self.arrival_seconds(s) {
                    Self::update_jitter(s, arrival, pts as f64 / SECOND);
                }
            }
        }

        if kind == Kind::EncodedVideo {
            s.frames_since_key += 1;
            if keyframe {
                if let Some(pts) = pts {
                    if let Some(last) = s.last_key_pts {
                        if pts > last {
                            let interval = (pts - last) as u64;
                            s.gop_count += 1;
                            s.gop_sum_ns += interval;
                            s.gop_length = s.frames_since_key - 1;
                            if let Some(series) = &s.series {
                                series.gop_interval.observe(interval as f64 / SECOND);
                                series.gop_length.set(s.gop_length as i64);
                            }
                        }
                    }
                    s.last_key_pts = Some(pts);
                    s.frames_since_key = 1;
                }
            }
        }

        // Bit rate over one-second windows of PTS.
        if let Some(pts) = pts {
            let start = *s.window_start.get_or_insert(pts);
            s.window_bytes += size;
            if pts >= start + 1_000_000_000 {
                s.bitrate = s.window_bytes as f64 * 8.0 * SECOND / (pts - start) as f64;
                if let Some(series) = &s.series {
                    series.bitrate.set(s.bitrate / 8.0);
                }
                s.window_start = Some(pts);
                s.window_bytes = 0;
            }
        }
        true
    }

    /// RTP (RFC 3550): sequence number gaps are drops; jitter uses the RTP
    /// timestamp in units of the clock-rate.
    fn observe_rtp(&self, s: &mut State, buf: &gst::BufferRef, clock_rate: u32) {
        let mut header = [0u8; 8];
        if buf.copy_to_slice(0, &mut header).is_err() || header[0] >> 6 != 2 {
            return;
        }
        let seq = u16::from_be_bytes([header[2], header[3]]);
        let ts = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if let Some(last) = s.rtp_last_seq {
            let diff = seq.wrapping_sub(last.wrapping_add(1)) as i16;
            if diff > 0 {
                Self::add_dropped(s, diff as u64);
            }
            if diff < 0 {
                // Late or duplicate packet: keep the highest sequence number.
                return;
            }
        }
        s.rtp_last_seq = Some(seq);
        // Extend the 32-bit timestamp across wraps.
        let ext = match s.rtp_ts_ext {
            Some(prev) => {
                let delta = ts.wrapping_sub(prev as u32) as i32 as i64;
                (prev as i64 + delta).max(0) as u64
            }
            None => ts as u64,
        };
        s.rtp_ts_ext = Some(ext);
        if clock_rate > 0 {
            if let Some(arrival) = self.arrival_seconds(s) {
                Self::update_jitter(s, arrival, ext as f64 / clock_rate as f64);
            }
        }
    }

    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        if !self.observe(&buffer) {
            // As `GstBaseTransform` did: no buffers before caps.
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("not negotiated"),
                ["not negotiated"]
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        self.srcpad.push(buffer)
    }

    /// Stream kind, frame duration and, on the first caps, the series.
    fn set_caps(&self, caps: &gst::CapsRef) {
        let (kind, frame_ns) = kind_of(caps);
        let name = self.settings.lock().unwrap().stream_name.clone();
        let pipeline = exporter::pipeline_label(&*self.obj());
        let mut s = self.lock_state();
        s.kind = Some(kind);
        s.caps_frame_ns = frame_ns;
        if s.series.is_none() {
            let stream = name.unwrap_or_else(|| default_stream_name(kind).to_string());
            s.series = Some(Series::new(&pipeline, &self.obj().name(), &stream));
        }
        gst::debug!(CAT, imp = self, "Caps {}: {:?}", caps, kind);
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        gst::log!(CAT, obj = pad, "Handling event {:?}", event);
        match event.view() {
            gst::EventView::Caps(c) => {
                self.set_caps(c.caps());
                let ok = self.srcpad.push_event(event);
                if !ok {
                    // Refused downstream: not negotiated until the next caps.
                    self.lock_state().kind = None;
                }
                return ok;
            }
            gst::EventView::Segment(e) => {
                self.lock_state().segment = e
                    .segment()
                    .downcast_ref::<gst::ClockTime>()
                    .cloned()
                    .map(SegmentMap::new);
            }
            gst::EventView::Eos(_) => {
                // An ended stream leaves the registry.
                self.lock_state().series = None;
            }
            _ => (),
        }
        self.srcpad.push_event(event)
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        gst::log!(CAT, obj = pad, "Handling query {:?}", query);
        self.srcpad.peer_query(query)
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        gst::log!(CAT, obj = pad, "Handling event {:?}", event);
        if let gst::EventView::Qos(q) = event.view() {
            let (_, _, diff, _) = q.get();
            if diff > 0 {
                let mut s = self.lock_state();
                s.qos_late += 1;
                Self::add_dropped(&mut s, 1);
            }
        }
        self.sinkpad.push_event(event)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        gst::log!(CAT, obj = pad, "Handling query {:?}", query);
        if query.type_() == gst::QueryType::Scheduling {
            // Buffers only flow in push mode: not forwarded, so that
            // downstream does not try to pull through this element.
            return gst::Pad::query_default(pad, Some(&*self.obj()), query);
        }
        self.sinkpad.peer_query(query)
    }
}

impl ObjectImpl for StreamMetrics {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("sink pad added");
        obj.add_pad(&self.srcpad).expect("src pad added");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("stream-name")
                    .nick("Stream Name")
                    .blurb(
                        "Value of the `stream` label of this element's series; keep it short \
                         and bounded (default: video, audio, rtp or data from the caps)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("listen-address")
                    .nick("Listen Address")
                    .blurb(
                        "If set, serve the process's /metrics and /healthz on this \
                         address:port (use 127.0.0.1 unless other interfaces must scrape); \
                         GST_METRICS_ADDR does the same for the whole process",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "frames, keyframes, bytes, frames-dropped, qos-late (guint64); \
                         gop-count (guint64), gop-interval-mean (gdouble, s), gop-length \
                         (guint64, frames), jitter (gdouble, s, RFC 3550), bitrate \
                         (gdouble, bits/s)",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "stream-name" => settings.stream_name = value.get().expect("type checked"),
            "listen-address" => settings.listen_address = value.get().expect("type checked"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stream-name" => self.settings.lock().unwrap().stream_name.to_value(),
            "listen-address" => self.settings.lock().unwrap().listen_address.to_value(),
            "stats" => self.stats().to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for StreamMetrics {}

impl ElementImpl for StreamMetrics {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Stream Metrics",
                "Filter/Analyzer",
                "Transparent probe measuring frames, keyframes, bytes, GOP interval and \
                 length, RFC 3550 jitter, dropped frames and bit rate into the Prometheus \
                 registry. Example: gst-launch-1.0 videotestsrc ! x264enc ! streammetrics \
                 listen-address=127.0.0.1:9464 ! fakesink",
                "gst-broadcast developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let addr = self.settings.lock().unwrap().listen_address.clone();
            if let Some(addr) = addr {
                let parsed: Result<std::net::SocketAddr, _> = addr.parse();
                let started = parsed
                    .map_err(|e| e.to_string())
                    .and_then(|a| exporter::start_http(a).map_err(|e| e.to_string()));
                if let Err(err) = started {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenRead,
                        ("Cannot serve metrics on listen-address {}: {}", addr, err)
                    );
                    return Err(gst::StateChangeError);
                }
            }
            self.reset();
        }
        let res = self.parent_change_state(transition)?;
        match transition {
            gst::StateChange::PausedToPlaying => {
                // The clock and base time are known now.
                let mut st = self.lock_state();
                st.clock = None;
                st.arrival_anchor = None;
            }
            // The pads are inactive now, so no buffer is in flight.
            gst::StateChange::PausedToReady => self.reset(),
            _ => (),
        }
        Ok(res)
    }
}

fn kind_of(caps: &gst::CapsRef) -> (Kind, Option<u64>) {
    let Some(s) = caps.structure(0) else {
        return (Kind::Other, None);
    };
    let name = s.name().as_str();
    let frame_ns = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| (SECOND * f.denom() as f64 / f.numer() as f64).round() as u64);
    let kind = if name == "application/x-rtp" {
        Kind::Rtp(s.get::<i32>("clock-rate").unwrap_or(0).max(0) as u32)
    } else if name == "video/x-raw" {
        Kind::RawVideo
    } else if name.starts_with("video/") || name.starts_with("image/") {
        Kind::EncodedVideo
    } else if name.starts_with("audio/") {
        Kind::Audio
    } else {
        Kind::Other
    };
    (kind, frame_ns)
}

fn default_stream_name(kind: Kind) -> &'static str {
    match kind {
        Kind::EncodedVideo | Kind::RawVideo => "video",
        Kind::Audio => "audio",
        Kind::Rtp(_) => "rtp",
        Kind::Other => "data",
    }
}
