// SPDX-License-Identifier: MPL-2.0

use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_exporter as exporter;

use super::ColumnLayout;
use crate::fec::{ConfigError, Encoder, EncoderConfig, EncoderStats, FecDirection, FecOutput};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "st2022fecenc",
        gst::DebugColorFlags::empty(),
        Some("SMPTE ST 2022-1 FEC encoder"),
    )
});

const DEFAULT_COLUMNS: u32 = 10;
const DEFAULT_ROWS: u32 = 10;
const DEFAULT_PT: u32 = 96;
const DEFAULT_ENABLE_COLUMN: bool = true;
const DEFAULT_ENABLE_ROW: bool = true;

/// Prometheus families of `st2022fecenc` (shared with `st2022fecdec` where
/// the names are the same).
struct Families {
    media: prometheus::IntCounterVec,
    fec: prometheus::IntCounterVec,
    malformed: prometheus::IntCounterVec,
    discontinuities: prometheus::IntCounterVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| Families {
    media: exporter::counter_vec(
        "gst_st2022fec_media_packets_total",
        "Media RTP packets protected by an ST 2022-1 FEC encoder.",
    ),
    fec: exporter::counter_vec(
        "gst_st2022fec_fec_packets_total",
        "ST 2022-1 FEC packets sent (encoder) or accepted (decoder), by direction (stream \
         column or row).",
    ),
    malformed: exporter::counter_vec(
        "gst_st2022fec_malformed_total",
        "Malformed packets ignored: media that is not RTP, FEC packets that are not \
         ST 2022-1 (stream media or fec).",
    ),
    discontinuities: exporter::counter_vec(
        "gst_st2022fec_discontinuities_total",
        "FEC matrices restarted by a sequence number gap or an SSRC change on the encoder input.",
    ),
});

/// Metric handles of one running encoder (streams `media`, `column`,
/// `row`); its series leave the registry when this is dropped.
struct Series {
    media: prometheus::IntCounter,
    column: prometheus::IntCounter,
    row: prometheus::IntCounter,
    malformed: prometheus::IntCounter,
    discontinuities: prometheus::IntCounter,
    _handles: [exporter::Series; 3],
}

impl Series {
    fn new(pipeline: &str, element: &str) -> Self {
        let f = &*FAMILIES;
        let mut m = exporter::Series::new(pipeline, element, "media");
        let mut c = exporter::Series::new(pipeline, element, "column");
        let mut r = exporter::Series::new(pipeline, element, "row");
        Series {
            media: m.child(&f.media),
            column: c.child(&f.fec),
            row: r.child(&f.fec),
            malformed: m.child(&f.malformed),
            discontinuities: m.child(&f.discontinuities),
            _handles: [m, c, r],
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    columns: u32,
    rows: u32,
    enable_column: bool,
    enable_row: bool,
    layout: ColumnLayout,
    pt: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            columns: DEFAULT_COLUMNS,
            rows: DEFAULT_ROWS,
            enable_column: DEFAULT_ENABLE_COLUMN,
            enable_row: DEFAULT_ENABLE_ROW,
            layout: ColumnLayout::default(),
            pt: DEFAULT_PT,
        }
    }
}

impl Settings {
    fn config(&self) -> EncoderConfig {
        EncoderConfig {
            // Property ranges keep these within u8.
            columns: self.columns.min(255) as u8,
            rows: self.rows.min(255) as u8,
            row_fec: self.enable_row,
            column_fec: self.enable_column,
            layout: self.layout.into(),
            pt: self.pt.min(255) as u8,
            ..EncoderConfig::default()
        }
    }
}

/// FEC buffers sent on one pad, kept so that their memory can be filled
/// again once downstream has let go of them.
///
/// A 1.3 kB FEC packet in a new buffer costs a `malloc` and a `free` of a
/// block too large for glibc's per-thread cache; reusing the buffer takes
/// about 30 ns per media packet off the encoder (`bench/README.md`).
/// `GstBufferPool` was measured slower than plain allocation here. While a
/// buffer is kept, downstream sees it shared and cannot change it in place,
/// so a buffer nobody else holds any more is as it was sent.
#[derive(Default)]
struct SentBuffers(VecDeque<gst::Buffer>);

impl SentBuffers {
    /// Buffers kept per pad: a sink holds its last buffer (last-sample),
    /// a short queue a few more.
    const DEPTH: usize = 4;

    /// A writable buffer of `len` bytes: the oldest one kept when nothing
    /// else holds it any more and it has that size, else a new one.
    fn take(&mut self, len: usize) -> gst::Buffer {
        if self.0.len() >= Self::DEPTH {
            let oldest = self.0.pop_front().expect("DEPTH > 0");
            if oldest.is_writable() && oldest.size() == len && oldest.n_memory() == 1 {
                return oldest;
            }
        }
        gst::Buffer::with_size(len).expect("FEC packet size")
    }

    /// Keeps a reference to a buffer about to be sent.
    fn keep(&mut self, buffer: &gst::Buffer) {
        self.0.push_back(buffer.clone());
    }
}

/// FEC buffers made for one media packet, pushed once the state lock is
/// released. Staggered columns give at most one row and one column packet
/// per media packet, so the usual case needs no heap allocation.
type FecBuffers = smallvec::SmallVec<[(FecDirection, gst::Buffer); 2]>;

#[derive(Default)]
struct State {
    encoder: Option<Encoder>,
    series: Option<Series>,
    /// Counts reported to the registry so far.
    reported: EncoderStats,
    malformed: u64,
    warned_malformed: bool,
    /// stream-start and caps pushed on the FEC pads.
    fec_headers: bool,
    /// Group of the media stream, for the FEC streams.
    group_id: Option<gst::GroupId>,
    /// Timestamps of the last media buffer, for FEC flushed at EOS.
    last_pts: Option<gst::ClockTime>,
    last_dts: Option<gst::ClockTime>,
    /// The FEC sinks have been sent a GAP to preroll on.
    fec_prerolled: bool,
    /// FEC packets of the current input packet, before they become buffers
    /// (kept for its allocation).
    fec_out: Vec<FecOutput>,
    /// Buffers sent on `fec_0` (column) and `fec_1` (row).
    sent: [SentBuffers; 2],
}

pub struct St2022FecEnc {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    column_pad: gst::Pad,
    row_pad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for St2022FecEnc {
    const NAME: &'static str = "GstSt2022FecEnc";
    type Type = super::St2022FecEnc;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|_pad, parent, buffer| {
                St2022FecEnc::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                St2022FecEnc::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, event),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let fec_pad = |name: &str| {
            let templ = klass.pad_template(name).expect("fec template");
            gst::Pad::builder_from_template(&templ)
                .query_function(|pad, parent, query| {
                    St2022FecEnc::catch_panic_pad_function(
                        parent,
                        || false,
                        |this| this.fec_src_query(pad, query),
                    )
                })
                .event_function(|pad, parent, event| {
                    St2022FecEnc::catch_panic_pad_function(
                        parent,
                        || false,
                        |this| this.fec_src_event(pad, event),
                    )
                })
                .build()
        };
        St2022FecEnc {
            column_pad: fec_pad("fec_0"),
            row_pad: fec_pad("fec_1"),
            sinkpad,
            srcpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
        }
    }
}

impl St2022FecEnc {
    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fec_caps(pt: u32) -> gst::Caps {
        gst::Caps::builder("application/x-rtp")
            .field("media", "application")
            .field("payload", pt as i32)
            .field("clock-rate", 90_000i32)
            .field("encoding-name", "PARITYFEC")
            .field("ssrc", 0u32)
            .build()
    }

    /// Explains an invalid configuration for an error message.
    fn describe(err: &ConfigError, s: &Settings) -> String {
        let hint = match err {
            ConfigError::Columns(_) => "ST 2022-1 allows 1 to 20 columns",
            ConfigError::Rows(_) => "ST 2022-1 allows 4 to 20 rows",
            ConfigError::MatrixTooLarge { .. } => "ST 2022-1 allows at most 100 packets per matrix",
            ConfigError::RowFecColumns(_) => {
                "ST 2022-1 row FEC needs at least 4 columns; set enable-row-fec=false for column \
                 FEC only"
            }
            ConfigError::PayloadType(_) => "RTP payload types are 7 bits",
        };
        format!(
            "Invalid FEC settings columns={} rows={} enable-row-fec={} pt={}: {} ({})",
            s.columns, s.rows, s.enable_row, s.pt, err, hint
        )
    }

    /// Pushes stream-start and caps on the FEC pads, once per stream (the
    /// segment follows the media's, see [`Self::ensure_fec_segment`]).
    fn ensure_fec_headers(&self) {
        let group = {
            let mut st = self.state();
            if st.fec_headers {
                return;
            }
            st.fec_headers = true;
            st.group_id
        };
        let pt = self.settings().pt;
        let obj = self.obj();
        for (pad, id) in [(&self.column_pad, "column"), (&self.row_pad, "row")] {
            let stream_id = pad.create_stream_id(&*obj, Some(id));
            let mut ss = gst::event::StreamStart::builder(stream_id.as_str());
            if let Some(g) = group {
                ss = ss.group_id(g);
            }
            pad.push_event(ss.build());
            pad.push_event(gst::event::Caps::new(&Self::fec_caps(pt)));
        }
    }

    /// Gives the FEC pads a segment before their first data: the media's,
    /// or a default TIME segment when the media has none.
    fn ensure_fec_segment(&self) {
        for pad in [&self.column_pad, &self.row_pad] {
            if pad.sticky_event::<gst::event::Segment>(0).is_some() {
                continue;
            }
            let segment = self
                .sinkpad
                .sticky_event::<gst::event::Segment>(0)
                .map(|e| e.segment().clone())
                .unwrap_or_else(|| gst::FormattedSegment::<gst::ClockTime>::new().upcast());
            pad.push_event(gst::event::Segment::new(&segment));
        }
    }

    /// Reports the encoder's new counts to the registry.
    fn update_counters(st: &mut State) {
        let Some(enc) = &st.encoder else { return };
        let now = enc.stats();
        if let Some(series) = &st.series {
            // Runs per packet: only the counters that moved are touched.
            let r = &st.reported;
            for (counter, delta) in [
                (&series.media, now.media - r.media),
                (&series.column, now.column_packets - r.column_packets),
                (&series.row, now.row_packets - r.row_packets),
                (
                    &series.discontinuities,
                    now.discontinuities - r.discontinuities,
                ),
            ] {
                if delta != 0 {
                    counter.inc_by(delta);
                }
            }
        }
        st.reported = now;
    }

    /// Turns the encoder's FEC packets into buffers stamped `pts`/`dts`,
    /// handing the packets' allocations back to the encoder.
    fn fec_buffers(
        enc: &mut Encoder,
        sent: &mut [SentBuffers; 2],
        fec: &mut Vec<FecOutput>,
        pts: Option<gst::ClockTime>,
        dts: Option<gst::ClockTime>,
    ) -> FecBuffers {
        let mut bufs = FecBuffers::new();
        for f in fec.drain(..) {
            let sent = match f.direction {
                FecDirection::Column => &mut sent[0],
                FecDirection::Row => &mut sent[1],
            };
            let mut buffer = sent.take(f.packet().len());
            {
                let b = buffer.get_mut().expect("writable buffer");
                b.copy_from_slice(0, f.packet()).expect("same size");
                b.unset_flags(gst::BufferFlags::all());
                b.set_pts(pts);
                b.set_dts(dts);
            }
            sent.keep(&buffer);
            let direction = f.direction;
            enc.recycle(f);
            bufs.push((direction, buffer));
        }
        bufs
    }

    fn push_fec(&self, fec: FecBuffers) {
        for (direction, buffer) in fec {
            let pad = match direction {
                FecDirection::Column => &self.column_pad,
                FecDirection::Row => &self.row_pad,
            };
            // The FEC streams do not take part in the element's flow: a
            // FEC pad left unlinked or failing must not stop the media.
            if let Err(err) = pad.push(buffer) {
                if err != gst::FlowError::Flushing && err != gst::FlowError::NotLinked {
                    gst::debug!(CAT, obj = pad, "FEC packet not sent: {:?}", err);
                }
            }
        }
    }

    /// Lets the sinks of the FEC branches preroll before their first
    /// packet: the first row FEC packet comes L media packets after the
    /// first, while a media sink prerolls on the first packet and blocks
    /// this thread until PLAYING, which waits for every sink to preroll.
    /// Each FEC pad gets a GAP event at the first media timestamp, pushed
    /// from another thread because a sink blocks it while prerolled.
    fn preroll_fec_sinks(&self, ts: gst::ClockTime) {
        for pad in [&self.column_pad, &self.row_pad] {
            if !pad.is_linked() {
                continue;
            }
            let pad = pad.clone();
            self.obj().call_async(move |_| {
                pad.push_event(gst::event::Gap::builder(ts).build());
            });
        }
    }

    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut warn: Option<String> = None;
        let (pts, dts) = (buffer.pts(), buffer.dts());
        let (preroll, headers, fec) = {
            let mut st = self.state();
            let st = &mut *st;
            let Some(enc) = st.encoder.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let preroll = !std::mem::replace(&mut st.fec_prerolled, true);
            st.last_pts = pts;
            st.last_dts = dts;
            let fec = &mut st.fec_out;
            let mut push = |data: &[u8]| enc.push(data, fec).map_err(|e| e.to_string());
            // A packet is one memory: mapping it alone skips the reference
            // to the memory that mapping the buffer takes and drops.
            let mapped = if buffer.n_memory() == 1 {
                buffer.peek_memory(0).map_readable().map(|m| push(&m))
            } else {
                buffer.map_readable().map(|m| push(&m))
            };
            let res = mapped.unwrap_or_else(|_| Err("buffer not readable".to_string()));
            let fec = if st.fec_out.is_empty() {
                FecBuffers::new()
            } else {
                Self::fec_buffers(enc, &mut st.sent, &mut st.fec_out, pts, dts)
            };
            match res {
                Ok(()) => Self::update_counters(st),
                Err(e) => {
                    st.malformed += 1;
                    if let Some(series) = &st.series {
                        series.malformed.inc();
                    }
                    gst::debug!(CAT, imp = self, "not RTP: {}", e);
                    if !st.warned_malformed {
                        st.warned_malformed = true;
                        warn = Some(e);
                    }
                }
            }
            (preroll, st.fec_headers, fec)
        };
        if let Some(e) = warn {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "Input on {} is not an RTP packet ({}): passed on without FEC; further ones \
                     are only counted",
                    self.sinkpad.name(),
                    e
                )
            );
        }
        if preroll {
            self.ensure_fec_headers();
            self.ensure_fec_segment();
            let ts = pts.or(dts).unwrap_or_else(|| {
                self.sinkpad
                    .sticky_event::<gst::event::Segment>(0)
                    .and_then(|e| {
                        e.segment()
                            .downcast_ref::<gst::ClockTime>()
                            .and_then(|s| s.start())
                    })
                    .unwrap_or(gst::ClockTime::ZERO)
            });
            self.preroll_fec_sinks(ts);
        } else if !fec.is_empty() && !headers {
            self.ensure_fec_headers();
        }
        // Media first: a receiver that sees the FEC of a row before its
        // last packet would rebuild a packet that was not lost.
        let res = self.srcpad.push(buffer);
        if !fec.is_empty() {
            self.push_fec(fec);
        }
        res
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::StreamStart(s) => {
                {
                    let mut st = self.state();
                    st.group_id = s.group_id();
                    st.fec_headers = false;
                }
                let ok = self.srcpad.push_event(event.clone());
                self.ensure_fec_headers();
                ok
            }
            EventView::Caps(_) => {
                let ok = self.srcpad.push_event(event.clone());
                self.ensure_fec_headers();
                ok
            }
            EventView::Segment(_) => {
                let ok = self.srcpad.push_event(event.clone());
                self.ensure_fec_headers();
                self.column_pad.push_event(event.clone());
                self.row_pad.push_event(event);
                ok
            }
            EventView::Eos(_) => {
                let fec = {
                    let mut st = self.state();
                    let st = &mut *st;
                    let (pts, dts) = (st.last_pts, st.last_dts);
                    let mut fec = Vec::new();
                    let bufs = match st.encoder.as_mut() {
                        Some(enc) => {
                            enc.flush(&mut fec);
                            Self::fec_buffers(enc, &mut st.sent, &mut fec, pts, dts)
                        }
                        None => FecBuffers::new(),
                    };
                    Self::update_counters(st);
                    bufs
                };
                self.ensure_fec_headers();
                self.ensure_fec_segment();
                self.push_fec(fec);
                self.column_pad.push_event(event.clone());
                self.row_pad.push_event(event.clone());
                self.srcpad.push_event(event)
            }
            EventView::FlushStart(_) => {
                self.column_pad.push_event(event.clone());
                self.row_pad.push_event(event.clone());
                self.srcpad.push_event(event)
            }
            EventView::FlushStop(_) => {
                {
                    let mut st = self.state();
                    if let Some(enc) = st.encoder.as_mut() {
                        enc.reset();
                    }
                    // The sinks preroll again after a flush.
                    st.fec_prerolled = false;
                }
                self.column_pad.push_event(event.clone());
                self.row_pad.push_event(event.clone());
                self.srcpad.push_event(event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn fec_src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let caps = Self::fec_caps(self.settings().pt);
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::Latency(_) => self.sinkpad.peer_query(query),
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    fn fec_src_event(&self, _pad: &gst::Pad, event: gst::Event) -> bool {
        // Upstream events from the FEC branches (QoS, reconfigure, seeks
        // from a sink) concern the media branch only through `src`.
        gst::log!(
            CAT,
            imp = self,
            "dropping upstream {:?} from a FEC pad",
            event.type_()
        );
        true
    }

    fn stats(&self) -> gst::Structure {
        let st = self.state();
        let s = st
            .encoder
            .as_ref()
            .map(|e| e.stats())
            .unwrap_or(st.reported);
        gst::Structure::builder("st2022fecenc-stats")
            .field("media-packets", s.media)
            .field("column-packets", s.column_packets)
            .field("row-packets", s.row_packets)
            .field("discontinuities", s.discontinuities)
            .field("malformed", st.malformed)
            .build()
    }
}

impl ObjectImpl for St2022FecEnc {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
        obj.add_pad(&self.column_pad).expect("add fec_0 pad");
        obj.add_pad(&self.row_pad).expect("add fec_1 pad");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("columns")
                    .nick("Columns")
                    .blurb(
                        "L: packets per row, the spacing of the packets a column FEC packet \
                         protects (1 to 20; at least 4 with row FEC; columns x rows at most 100)",
                    )
                    .minimum(1)
                    .maximum(20)
                    .default_value(DEFAULT_COLUMNS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("rows")
                    .nick("Rows")
                    .blurb(
                        "D: packets per column, rows of the FEC matrix (4 to 20; columns x rows \
                         at most 100)",
                    )
                    .minimum(4)
                    .maximum(20)
                    .default_value(DEFAULT_ROWS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("enable-column-fec")
                    .nick("Enable Column FEC")
                    .blurb(
                        "Send column FEC on fec_0 (one packet per column of each matrix); \
                         changes apply from the next matrix",
                    )
                    .default_value(DEFAULT_ENABLE_COLUMN)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("enable-row-fec")
                    .nick("Enable Row FEC")
                    .blurb(
                        "Send row FEC on fec_1 (one packet per row of columns packets; needs \
                         columns >= 4); changes apply from the next row",
                    )
                    .default_value(DEFAULT_ENABLE_ROW)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("column-layout", ColumnLayout::default())
                    .nick("Column Layout")
                    .blurb(
                        "When column FEC packets are sent: staggered over the next matrix \
                         (FFmpeg and GStreamer, resists bursts; receivers wait up to two \
                         matrices) or block-aligned at the end of each matrix (one matrix)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("pt")
                    .nick("Payload Type")
                    .blurb(
                        "RTP payload type of the FEC packets (0 to 127; dynamic 96 to 127 usual)",
                    )
                    .maximum(127)
                    .default_value(DEFAULT_PT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Counts: media-packets, column-packets, row-packets, discontinuities \
                         (matrices restarted by an input gap or SSRC change), malformed (input \
                         that is not RTP)",
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
            "columns" => s.columns = value.get().expect("type checked"),
            "rows" => s.rows = value.get().expect("type checked"),
            "column-layout" => s.layout = value.get().expect("type checked"),
            "pt" => s.pt = value.get().expect("type checked"),
            "enable-column-fec" => {
                let on: bool = value.get().expect("type checked");
                s.enable_column = on;
                drop(s);
                if let Some(enc) = self.state().encoder.as_mut() {
                    enc.set_column_fec(on);
                }
            }
            "enable-row-fec" => {
                let on: bool = value.get().expect("type checked");
                let refused = {
                    let mut st = self.state();
                    match st.encoder.as_mut() {
                        Some(enc) => enc.set_row_fec(on).err(),
                        None => None,
                    }
                };
                match refused {
                    Some(err) => {
                        let columns = s.columns;
                        drop(s);
                        gst::element_imp_warning!(
                            self,
                            gst::LibraryError::Settings,
                            (
                                "Cannot enable row FEC with columns={}: {} (ST 2022-1 row FEC \
                                 needs at least 4 columns)",
                                columns,
                                err
                            )
                        );
                    }
                    None => s.enable_row = on,
                }
            }
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        let s = self.settings();
        match pspec.name() {
            "columns" => s.columns.to_value(),
            "rows" => s.rows.to_value(),
            "enable-column-fec" => s.enable_column.to_value(),
            "enable-row-fec" => s.enable_row.to_value(),
            "column-layout" => s.layout.to_value(),
            "pt" => s.pt.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for St2022FecEnc {}

impl ElementImpl for St2022FecEnc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "SMPTE ST 2022-1 FEC encoder",
                "Codec/Encoder/Network/RTP",
                "Protects an RTP stream with SMPTE ST 2022-1 (Pro-MPEG CoP3) row and column XOR \
                 FEC: media unchanged on src, column FEC on fec_0 (port P+2), row FEC on fec_1 \
                 (port P+4)",
                "gst-broadcast developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let rtp = gst::Caps::new_empty_simple("application/x-rtp");
            let mk = |name, dir| {
                gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &rtp)
                    .expect("pad template")
            };
            vec![
                mk("sink", gst::PadDirection::Sink),
                mk("src", gst::PadDirection::Src),
                mk("fec_0", gst::PadDirection::Src),
                mk("fec_1", gst::PadDirection::Src),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let settings = self.settings();
            let encoder = match Encoder::new(settings.config()) {
                Ok(e) => e,
                Err(err) => {
                    gst::element_imp_error!(
                        self,
                        gst::LibraryError::Settings,
                        ("{}", Self::describe(&err, &settings))
                    );
                    return Err(gst::StateChangeError);
                }
            };
            // An old handle leaves before the new one takes the labels.
            self.state().series = None;
            let series = Series::new(&exporter::pipeline_label(&*self.obj()), &self.obj().name());
            let mut st = self.state();
            *st = State {
                encoder: Some(encoder),
                series: Some(series),
                ..State::default()
            };
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            let mut st = self.state();
            // Dropping the series removes them from the registry.
            st.series = None;
            // Keep the final counts readable in `stats`.
            let reported = st
                .encoder
                .as_ref()
                .map(|e| e.stats())
                .unwrap_or(st.reported);
            st.encoder = None;
            st.reported = reported;
            st.fec_headers = false;
            st.sent = Default::default();
        }
        Ok(ret)
    }
}
