// SPDX-License-Identifier: MPL-2.0

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_exporter as exporter;

use crate::fec::{Decoder, DecoderConfig, DecoderStats, Output};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "st2022fecdec",
        gst::DebugColorFlags::empty(),
        Some("SMPTE ST 2022-1 FEC decoder"),
    )
});

const DEFAULT_LATENCY_MS: u32 = 1000;
const MAX_LATENCY_MS: u32 = 60_000;
const DEFAULT_LATENCY_MATRICES: u32 = 2;
const MAX_LATENCY_MATRICES: u32 = 16;

/// A packet the decoder keeps: a readable mapping of the input buffer,
/// shared when the decoder still needs it after it left.
#[derive(Clone)]
struct Packet(Arc<gst::MappedBuffer<gst::buffer::Readable>>);

impl AsRef<[u8]> for Packet {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Packet {
    fn into_buffer(self) -> gst::Buffer {
        match Arc::try_unwrap(self.0) {
            Ok(m) => m.into_buffer(),
            Err(shared) => shared.buffer_owned(),
        }
    }
}

/// Prometheus families of `st2022fecdec`.
struct Families {
    received: prometheus::IntCounterVec,
    recovered: prometheus::IntCounterVec,
    unrecoverable: prometheus::IntCounterVec,
    late: prometheus::IntCounterVec,
    duplicates: prometheus::IntCounterVec,
    malformed: prometheus::IntCounterVec,
    fec: prometheus::IntCounterVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| Families {
    received: exporter::counter_vec(
        "gst_st2022fec_media_received_total",
        "Media RTP packets an ST 2022-1 FEC decoder sent on as received.",
    ),
    recovered: exporter::counter_vec(
        "gst_st2022fec_recovered_total",
        "Media RTP packets rebuilt from ST 2022-1 FEC and sent on.",
    ),
    unrecoverable: exporter::counter_vec(
        "gst_st2022fec_unrecoverable_total",
        "Media RTP packets missing and not recovered by their deadline (left as a gap).",
    ),
    late: exporter::counter_vec(
        "gst_st2022fec_late_total",
        "Media RTP packets that arrived after their place in the output had passed.",
    ),
    duplicates: exporter::counter_vec(
        "gst_st2022fec_duplicates_total",
        "Media RTP packets received twice (dropped).",
    ),
    malformed: exporter::counter_vec(
        "gst_st2022fec_malformed_total",
        "Malformed packets ignored: media that is not RTP, FEC packets that are not \
         ST 2022-1 (stream media or fec).",
    ),
    fec: exporter::counter_vec(
        "gst_st2022fec_fec_packets_total",
        "ST 2022-1 FEC packets sent (encoder) or accepted (decoder), by direction (stream \
         column or row).",
    ),
});

/// Metric handles of one running decoder (streams `media`, `fec`,
/// `column`, `row`); its series leave the registry when this is dropped.
struct Series {
    received: prometheus::IntCounter,
    recovered: prometheus::IntCounter,
    unrecoverable: prometheus::IntCounter,
    late: prometheus::IntCounter,
    duplicates: prometheus::IntCounter,
    malformed_media: prometheus::IntCounter,
    malformed_fec: prometheus::IntCounter,
    fec_column: prometheus::IntCounter,
    fec_row: prometheus::IntCounter,
    _handles: [exporter::Series; 4],
}

impl Series {
    fn new(pipeline: &str, element: &str) -> Self {
        let f = &*FAMILIES;
        let mut m = exporter::Series::new(pipeline, element, "media");
        let mut fec = exporter::Series::new(pipeline, element, "fec");
        let mut c = exporter::Series::new(pipeline, element, "column");
        let mut r = exporter::Series::new(pipeline, element, "row");
        Series {
            received: m.child(&f.received),
            recovered: m.child(&f.recovered),
            unrecoverable: m.child(&f.unrecoverable),
            late: m.child(&f.late),
            duplicates: m.child(&f.duplicates),
            malformed_media: m.child(&f.malformed),
            malformed_fec: fec.child(&f.malformed),
            fec_column: c.child(&f.fec),
            fec_row: r.child(&f.fec),
            _handles: [m, fec, c, r],
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    latency_ms: u32,
    latency_matrices: u32,
    pass_late: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            latency_ms: DEFAULT_LATENCY_MS,
            latency_matrices: DEFAULT_LATENCY_MATRICES,
            pass_late: false,
        }
    }
}

impl Settings {
    fn config(&self) -> DecoderConfig {
        DecoderConfig {
            latency_ns: Some(u64::from(self.latency_ms) * 1_000_000),
            latency_matrices: (self.latency_matrices > 0).then_some(self.latency_matrices),
            latency_packets: None,
            pass_late: self.pass_late,
        }
    }
}

struct State {
    decoder: Decoder<Packet>,
    series: Option<Series>,
    /// Decoder counts reported to the registry so far.
    reported: DecoderStats,
    fec_column: u64,
    fec_row: u64,
    malformed_media: u64,
    malformed_fec: u64,
    warned_media: bool,
    warned_fec: bool,
    /// Timestamps of the last buffer sent, for rebuilt packets.
    last_pts: Option<gst::ClockTime>,
    last_dts: Option<gst::ClockTime>,
    /// Between READY->PAUSED and PAUSED->READY.
    running: bool,
    flushing: bool,
    /// Tells the timer thread to stop.
    shutdown: bool,
    /// The clock wait the timer thread is in: deadline (ns) and id.
    waiting: Option<(u64, gst::SingleShotClockId)>,
    /// The timer thread waits on `cond` (no deadline to wait for).
    timer_idle: bool,
    /// A deadline the timer thread found due that released nothing (a
    /// clock change); not waited for again.
    timer_stale: Option<u64>,
    /// Clock time of the latest media packet, ns (for the debug log: a
    /// packet given up long after the media stopped is the stream's tail).
    last_media_at: Option<u64>,
    /// What the timer thread's last push returned, for the next chain call.
    timer_flow: Result<gst::FlowSuccess, gst::FlowError>,
    /// Media positions that have left in sequence order (sent, rebuilt or
    /// given up) since the stream started.
    released: u64,
    /// Serialized events that came in while packets before them were held,
    /// each with the `released` count after which it goes out.
    held_events: VecDeque<(u64, gst::Event)>,
}

impl State {
    fn new(cfg: DecoderConfig) -> Self {
        State {
            decoder: Decoder::new(cfg),
            series: None,
            reported: DecoderStats::default(),
            fec_column: 0,
            fec_row: 0,
            malformed_media: 0,
            malformed_fec: 0,
            warned_media: false,
            warned_fec: false,
            last_pts: None,
            last_dts: None,
            running: false,
            flushing: false,
            shutdown: false,
            waiting: None,
            timer_idle: false,
            timer_stale: None,
            last_media_at: None,
            timer_flow: Ok(gst::FlowSuccess::Ok),
            released: 0,
            held_events: VecDeque::new(),
        }
    }
}

pub struct St2022FecDec {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Wakes the timer thread (new deadline, flush, shutdown).
    cond: Condvar,
    /// Held while output is computed and pushed, so that the streaming
    /// threads and the timer thread send in sequence order. Taken before
    /// `state`.
    push_lock: Mutex<()>,
    timer: Mutex<Option<JoinHandle<()>>>,
    fec_pads: Mutex<Vec<gst::Pad>>,
}

#[glib::object_subclass]
impl ObjectSubclass for St2022FecDec {
    const NAME: &'static str = "GstSt2022FecDec";
    type Type = super::St2022FecDec;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|_pad, parent, buffer| {
                St2022FecDec::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                St2022FecDec::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, event),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                St2022FecDec::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| gst::Iterator::from_vec(vec![this.srcpad.clone()]),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .query_function(|pad, parent, query| {
                St2022FecDec::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_query(pad, query),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                St2022FecDec::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| gst::Iterator::from_vec(vec![this.sinkpad.clone()]),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        let settings = Settings::default();
        St2022FecDec {
            sinkpad,
            srcpad,
            state: Mutex::new(State::new(settings.config())),
            settings: Mutex::new(settings),
            cond: Condvar::new(),
            push_lock: Mutex::new(()),
            timer: Mutex::new(None),
            fec_pads: Mutex::new(Vec::new()),
        }
    }
}

impl St2022FecDec {
    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push_guard(&self) -> MutexGuard<'_, ()> {
        self.push_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock deadlines are measured on: the pipeline clock, or the
    /// (monotonic) system clock before the element has one.
    fn clock(&self) -> gst::Clock {
        self.obj().clock().unwrap_or_else(gst::SystemClock::obtain)
    }

    fn now(&self) -> u64 {
        self.clock().time().nseconds()
    }

    /// Reports the decoder's new counts to the registry.
    fn update_counters(st: &mut State) {
        let now = st.decoder.stats();
        if let Some(s) = &st.series {
            let r = &st.reported;
            s.received.inc_by(now.received - r.received);
            s.recovered.inc_by(now.recovered - r.recovered);
            s.unrecoverable.inc_by(now.unrecoverable - r.unrecoverable);
            s.late.inc_by(now.late - r.late);
            s.duplicates.inc_by(now.duplicate - r.duplicate);
        }
        st.reported = now;
    }

    /// Tells the timer thread that the deadline may have changed. It is
    /// woken only when it has to wait for an earlier time than it does: a
    /// deadline that moved later (or went away) just makes its next wake-up
    /// find nothing due. Called on every packet, so it must stay cheap.
    fn kick(&self, st: &State) {
        let deadline = if st.flushing {
            None
        } else {
            st.decoder.next_deadline()
        };
        if let Some((d, id)) = &st.waiting {
            if st.flushing || deadline.is_some_and(|n| n < *d) {
                id.unschedule();
            }
        } else if st.timer_idle && deadline.is_some() && deadline != st.timer_stale {
            self.cond.notify_one();
        }
    }

    /// After a packet or a drain, in the streaming thread: the decoder's
    /// output as buffers, the counters reported, and the timer told about
    /// the new earliest deadline.
    fn settle(&self, st: &mut State, out: Vec<Output<Packet>>) -> Vec<Item> {
        let bufs = self.to_buffers(st, out);
        Self::update_counters(st);
        self.kick(st);
        bufs
    }

    /// Turns decoder output into what the source pad sends: received media
    /// as it came, rebuilt packets with the timestamps of the buffer before
    /// them, and the held serialized events whose packets have all left
    /// placed after them.
    fn to_buffers(&self, st: &mut State, out: Vec<Output<Packet>>) -> Vec<Item> {
        let mut items: Vec<Item> = Vec::with_capacity(out.len());
        let mut untimed = false;
        for o in out {
            if matches!(
                o,
                Output::Media(_) | Output::Recovered(_) | Output::Lost { .. }
            ) {
                st.released += 1;
            }
            match o {
                Output::Media(p) => {
                    let b = p.into_buffer();
                    if b.pts().is_some() {
                        st.last_pts = b.pts();
                    }
                    if b.dts().is_some() {
                        st.last_dts = b.dts();
                    }
                    items.push(Item::Buffer(b));
                }
                Output::Recovered(bytes) => {
                    let mut b = gst::Buffer::from_mut_slice(bytes);
                    {
                        let b = b.get_mut().expect("new buffer");
                        b.set_pts(st.last_pts);
                        b.set_dts(st.last_dts);
                    }
                    untimed |= st.last_pts.is_none();
                    gst::trace!(CAT, imp = self, "recovered packet {:?}", rtp_seq(&b));
                    items.push(Item::Buffer(b));
                }
                Output::Lost { seq } => {
                    let idle = st
                        .last_media_at
                        .map(|t| self.now().saturating_sub(t) / 1_000_000);
                    gst::debug!(
                        CAT,
                        imp = self,
                        "gave up packet {} (media idle {:?} ms)",
                        seq,
                        idle
                    );
                }
                // Out of order, after their place was given up: sent with
                // their own (or the latest) timestamps, which do not move
                // the ones rebuilt packets take.
                Output::Late(p) => {
                    let b = p.into_buffer();
                    gst::debug!(CAT, imp = self, "late packet {:?}", rtp_seq(&b));
                    items.push(Item::Buffer(b));
                }
                Output::LateRecovered(bytes) => {
                    let mut b = gst::Buffer::from_mut_slice(bytes);
                    {
                        let b = b.get_mut().expect("new buffer");
                        b.set_pts(st.last_pts);
                        b.set_dts(st.last_dts);
                    }
                    gst::debug!(CAT, imp = self, "late recovered packet {:?}", rtp_seq(&b));
                    items.push(Item::Buffer(b));
                }
            }
            while st
                .held_events
                .front()
                .is_some_and(|(at, _)| *at <= st.released)
            {
                let (_, e) = st.held_events.pop_front().expect("front");
                items.push(Item::Event(e));
            }
        }
        if st.decoder.pending() == 0 {
            // Nothing is held any more: neither is any event.
            items.extend(st.held_events.drain(..).map(|(_, e)| Item::Event(e)));
        }
        if untimed {
            // Rebuilt packets before any timestamped buffer: take the
            // timestamps of the next one.
            let mut next: (Option<gst::ClockTime>, Option<gst::ClockTime>) = (None, None);
            for item in items.iter_mut().rev() {
                let Item::Buffer(b) = item else { continue };
                if b.pts().is_some() {
                    next = (b.pts(), b.dts());
                } else if let Some(bm) = b.get_mut() {
                    bm.set_pts(next.0);
                    bm.set_dts(next.1);
                }
            }
        }
        items
    }

    /// Sends `items` in order. After a buffer push fails, the remaining
    /// buffers are dropped and the events still sent (sticky ones must reach
    /// the pad); returns the first failure.
    fn push_all(&self, items: Vec<Item>) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut ret = Ok(gst::FlowSuccess::Ok);
        for item in items {
            match item {
                Item::Buffer(b) => {
                    if ret.is_ok() {
                        ret = self.srcpad.push(b);
                    }
                }
                Item::Event(e) => {
                    gst::log!(CAT, imp = self, "sending held {:?} event", e.type_());
                    self.srcpad.push_event(e);
                }
            }
        }
        ret
    }

    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let _push = self.push_guard();
        let mut warn = None;
        let bufs = {
            let mut st = self.state();
            if !st.running || st.flushing {
                return Err(gst::FlowError::Flushing);
            }
            match std::mem::replace(&mut st.timer_flow, Ok(gst::FlowSuccess::Ok)) {
                Err(e) if e != gst::FlowError::Flushing => return Err(e),
                _ => {}
            }
            let now = self.now();
            st.last_media_at = Some(now);
            let mut out = Vec::new();
            let prepended = st.decoder.prepended();
            let res = match buffer.into_mapped_buffer_readable() {
                Ok(m) => st
                    .decoder
                    .push_media(now, Packet(Arc::new(m)), &mut out)
                    .map_err(|e| e.to_string()),
                Err(_) => Err("buffer not readable".to_string()),
            };
            // Earlier packets put in front of the start (nothing has left
            // yet): the held events go out after them too.
            let ahead = st.decoder.prepended() - prepended;
            if ahead > 0 {
                for (at, _) in st.held_events.iter_mut() {
                    *at += ahead;
                }
            }
            if let Err(e) = res {
                st.malformed_media += 1;
                if let Some(s) = &st.series {
                    s.malformed_media.inc();
                }
                gst::debug!(CAT, imp = self, "malformed media packet: {}", e);
                if !st.warned_media {
                    st.warned_media = true;
                    warn = Some(e);
                }
            }
            self.settle(&mut st, out)
        };
        if let Some(e) = warn {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "Ignoring a media packet on {} that is not RTP ({}); further ones are only \
                     counted",
                    self.sinkpad.name(),
                    e
                )
            );
        }
        self.push_all(bufs)
    }

    fn fec_chain(
        &self,
        pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let _push = self.push_guard();
        let mut warn = None;
        let bufs = {
            let mut st = self.state();
            if !st.running || st.flushing {
                return Err(gst::FlowError::Flushing);
            }
            let now = self.now();
            let mut out = Vec::new();
            let res = match buffer.into_mapped_buffer_readable() {
                Ok(m) => {
                    let packet = Packet(Arc::new(m));
                    let row = packet.as_ref().get(24).is_some_and(|b| b & 0x40 != 0);
                    st.decoder
                        .push_fec(now, packet, &mut out)
                        .map(|()| row)
                        .map_err(|e| e.to_string())
                }
                Err(_) => Err("buffer not readable".to_string()),
            };
            match res {
                Ok(true) => {
                    st.fec_row += 1;
                    if let Some(s) = &st.series {
                        s.fec_row.inc();
                    }
                }
                Ok(false) => {
                    st.fec_column += 1;
                    if let Some(s) = &st.series {
                        s.fec_column.inc();
                    }
                }
                Err(e) => {
                    st.malformed_fec += 1;
                    if let Some(s) = &st.series {
                        s.malformed_fec.inc();
                    }
                    gst::debug!(CAT, obj = pad, "malformed FEC packet: {}", e);
                    if !st.warned_fec {
                        st.warned_fec = true;
                        warn = Some(e);
                    }
                }
            }
            self.settle(&mut st, out)
        };
        if let Some(e) = warn {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "Ignoring a malformed FEC packet on {}: {}; further ones are only counted",
                    pad.name(),
                    e
                )
            );
        }
        // A FEC stream does not fail because of the media branch: report
        // only flushing upstream.
        match self.push_all(bufs) {
            Err(gst::FlowError::Flushing) => Err(gst::FlowError::Flushing),
            _ => Ok(gst::FlowSuccess::Ok),
        }
    }

    /// Sends what the decoder holds (missing packets given up).
    fn drain(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let bufs = {
            let mut st = self.state();
            if st.decoder.pending() == 0 && st.held_events.is_empty() {
                return Ok(gst::FlowSuccess::Ok);
            }
            let mut out = Vec::new();
            st.decoder.drain(&mut out);
            self.settle(&mut st, out)
        };
        self.push_all(bufs)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::FlushStart(_) => {
                {
                    let mut st = self.state();
                    st.flushing = true;
                    self.kick(&st);
                }
                self.srcpad.push_event(event)
            }
            EventView::FlushStop(_) => {
                let _push = self.push_guard();
                let held = {
                    let mut st = self.state();
                    st.decoder.reset();
                    st.released = 0;
                    let held = std::mem::take(&mut st.held_events);
                    st.flushing = false;
                    st.timer_flow = Ok(gst::FlowSuccess::Ok);
                    st.last_pts = None;
                    st.last_dts = None;
                    self.kick(&st);
                    held
                };
                let ret = self.srcpad.push_event(event);
                // A flush drops the serialized events that were held, except
                // sticky ones (tags, TOC), which stay with the stream.
                for (_, e) in held {
                    if e.is_sticky() {
                        self.srcpad.push_event(e);
                    }
                }
                ret
            }
            EventView::Eos(_)
            | EventView::Caps(_)
            | EventView::Segment(_)
            | EventView::StreamStart(_) => {
                // What is held belongs before the event.
                let _push = self.push_guard();
                let _ = self.drain();
                self.srcpad.push_event(event)
            }
            _ if event.is_serialized() => {
                // Goes out after the media received before it: held while
                // packets before it are (a loss waiting for its FEC).
                let _push = self.push_guard();
                {
                    let mut st = self.state();
                    let pending = st.decoder.pending();
                    if pending > 0 {
                        let at = st.released + pending;
                        gst::log!(
                            CAT,
                            imp = self,
                            "holding {:?} event behind {} packets",
                            event.type_(),
                            pending
                        );
                        st.held_events.push_back((at, event));
                        return true;
                    }
                }
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn fec_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        // The FEC streams end in the decoder: their stream-start, caps,
        // segment and EOS go no further; the media stream's are sent.
        gst::log!(CAT, obj = pad, "FEC stream event {:?}", event.type_());
        true
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                let mut upstream = gst::query::Latency::new();
                if !self.sinkpad.peer_query(&mut upstream) {
                    return false;
                }
                let (live, min, max) = upstream.result();
                let extra = gst::ClockTime::from_mseconds(u64::from(self.settings().latency_ms));
                q.set(live, min + extra, max.map(|m| m + extra));
                true
            }
            gst::QueryViewMut::Scheduling(_) => false,
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    /// The timer thread: gives up missing packets at their deadline and
    /// sends what follows them, also when no input arrives.
    fn timer_loop(&self) {
        loop {
            {
                let mut st = self.state();
                loop {
                    if st.shutdown {
                        return;
                    }
                    let deadline = if st.flushing {
                        None
                    } else {
                        st.decoder.next_deadline()
                    };
                    match deadline {
                        Some(d) if st.timer_stale != Some(d) => {
                            let clock = self.clock();
                            if clock.time().nseconds() >= d {
                                break;
                            }
                            let id = clock.new_single_shot_id(gst::ClockTime::from_nseconds(d));
                            st.waiting = Some((d, id.clone()));
                            drop(st);
                            let _ = id.wait();
                            st = self.state();
                            st.waiting = None;
                        }
                        _ => {
                            st.timer_idle = true;
                            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
                            st.timer_idle = false;
                        }
                    }
                }
            }
            let _push = self.push_guard();
            let bufs = {
                let mut st = self.state();
                if st.shutdown {
                    return;
                }
                if st.flushing {
                    continue;
                }
                let deadline = st.decoder.next_deadline();
                let mut out = Vec::new();
                let now = self.now();
                st.decoder.poll(now, &mut out);
                // A deadline that released nothing is not waited for again
                // (a clock change): the next input wakes the thread.
                st.timer_stale = if out.is_empty() { deadline } else { None };
                let bufs = self.to_buffers(&mut st, out);
                Self::update_counters(&mut st);
                bufs
            };
            let ret = self.push_all(bufs);
            if let Err(e) = ret {
                gst::debug!(CAT, imp = self, "timer push: {:?}", e);
                self.state().timer_flow = ret;
            }
        }
    }

    fn start_timer(&self) {
        let weak = self.obj().downgrade();
        let handle = std::thread::Builder::new()
            .name("st2022fecdec".into())
            .spawn(move || {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().timer_loop();
                }
            });
        match handle {
            Ok(h) => *self.timer.lock().unwrap_or_else(|e| e.into_inner()) = Some(h),
            Err(e) => gst::element_imp_warning!(
                self,
                gst::CoreError::Thread,
                (
                    "Could not start the timer thread ({}): missing packets are given up only \
                     when more input arrives",
                    e
                )
            ),
        }
    }

    fn stop_timer(&self) {
        {
            let mut st = self.state();
            st.shutdown = true;
            if let Some((_, id)) = &st.waiting {
                id.unschedule();
            }
        }
        self.cond.notify_all();
        let handle = self.timer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    fn stats(&self) -> gst::Structure {
        let st = self.state();
        let s = st.decoder.stats();
        let (columns, rows) = st.decoder.geometry();
        gst::Structure::builder("st2022fecdec-stats")
            .field("received", s.received)
            .field("recovered", s.recovered)
            .field("unrecoverable", s.unrecoverable)
            .field("late", s.late)
            .field("late-recovered", s.late_recovered)
            .field("duplicates", s.duplicate)
            .field("malformed", s.malformed)
            .field("malformed-media", st.malformed_media)
            .field("malformed-fec", st.malformed_fec)
            .field("fec-column", st.fec_column)
            .field("fec-row", st.fec_row)
            .field("fec-duplicates", s.fec_duplicate)
            .field("fec-unusable", s.fec_unusable)
            .field("recovery-rejected", s.recovery_rejected)
            .field("resyncs", s.resyncs)
            .field("columns", u32::from(columns.unwrap_or(0)))
            .field("rows", u32::from(rows.unwrap_or(0)))
            .field("pending", st.decoder.pending())
            .build()
    }
}

/// What goes out of the source pad, in order.
enum Item {
    Buffer(gst::Buffer),
    /// A serialized event that waited for the packets received before it.
    Event(gst::Event),
}

/// Sequence number of an RTP buffer, for logs.
fn rtp_seq(b: &gst::Buffer) -> Option<u16> {
    let mut s = [0u8; 2];
    (b.copy_to_slice(2, &mut s).is_ok()).then(|| u16::from_be_bytes(s))
}

impl ObjectImpl for St2022FecDec {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb(
                        "Longest wait for FEC to rebuild a missing packet, in ms after it was \
                         known missing (1 to 60000); the packets behind it wait with it. \
                         Added to the latency query. With staggered column FEC it should \
                         cover two matrices of packets (2 x L x D / packet rate)",
                    )
                    .minimum(1)
                    .maximum(MAX_LATENCY_MS)
                    .default_value(DEFAULT_LATENCY_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("latency-matrices")
                    .nick("Latency Matrices")
                    .blurb(
                        "Also give up a missing packet once this many L x D matrices of newer \
                         media arrived (0 to 16; 0: latency only). 2 covers staggered column \
                         FEC; 1 suits block-aligned column FEC",
                    )
                    .maximum(MAX_LATENCY_MATRICES)
                    .default_value(DEFAULT_LATENCY_MATRICES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("pass-late")
                    .nick("Pass Late Packets")
                    .blurb(
                        "Also send media packets that arrive, or are rebuilt, after they were \
                         given up (out of sequence order, timestamped on arrival), for an \
                         rtpjitterbuffer or retransmission downstream to slot in. Off: they \
                         are counted as late and dropped",
                    )
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Counts: received, recovered, unrecoverable, late, late-recovered, \
                         duplicates, malformed (malformed-media, malformed-fec), fec-column, \
                         fec-row, fec-duplicates, fec-unusable, recovery-rejected, resyncs; \
                         columns and rows as learned from the FEC (0: not yet); pending packets",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let cfg = {
            let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            match pspec.name() {
                "latency" => s.latency_ms = value.get().expect("type checked"),
                "latency-matrices" => s.latency_matrices = value.get().expect("type checked"),
                "pass-late" => s.pass_late = value.get().expect("type checked"),
                _ => unimplemented!(),
            }
            s.config()
        };
        {
            let mut st = self.state();
            st.decoder.set_config(cfg);
            self.kick(&st);
        }
        if pspec.name() == "latency" {
            let obj = self.obj();
            let _ = obj.post_message(gst::message::Latency::builder().src(&*obj).build());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "latency" => self.settings().latency_ms.to_value(),
            "latency-matrices" => self.settings().latency_matrices.to_value(),
            "pass-late" => self.settings().pass_late.to_value(),
            "stats" => self.stats().to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for St2022FecDec {}

impl ElementImpl for St2022FecDec {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "SMPTE ST 2022-1 FEC decoder",
                "Codec/Decoder/Network/RTP",
                "Rebuilds lost RTP packets from SMPTE ST 2022-1 (Pro-MPEG CoP3) row and column \
                 FEC (fec_%u, routed by the FEC header) and sends the media in sequence order \
                 within a bounded latency",
                "gst-broadcast developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let rtp = gst::Caps::new_empty_simple("application/x-rtp");
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &rtp,
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &rtp,
                )
                .expect("src template"),
                gst::PadTemplate::new(
                    "fec_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &rtp,
                )
                .expect("fec template"),
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
        if templ.name_template() != "fec_%u" {
            return None;
        }
        let mut pads = self.fec_pads.lock().unwrap_or_else(|e| e.into_inner());
        let used: Vec<u32> = pads
            .iter()
            .filter_map(|p| gstbroadcast_common::pad_index(&p.name(), "fec_"))
            .collect();
        let name = match gstbroadcast_common::request_pad_index(name, "fec_", |i| used.contains(&i))
        {
            Ok(i) => format!("fec_{i}"),
            Err(err) => {
                gst::warning!(CAT, imp = self, "Refusing a FEC pad: {}", err);
                return None;
            }
        };
        let pad = gst::Pad::builder_from_template(templ)
            .name(name.as_str())
            .chain_function(|pad, parent, buffer| {
                St2022FecDec::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.fec_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                St2022FecDec::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.fec_event(pad, event),
                )
            })
            .iterate_internal_links_function(|_pad, _parent| gst::Iterator::from_vec(vec![]))
            .build();
        let obj = self.obj();
        if obj.current_state() > gst::State::Ready {
            let _ = pad.set_active(true);
        }
        if obj.add_pad(&pad).is_err() {
            return None;
        }
        pads.push(pad.clone());
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        self.fec_pads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != pad);
        let _ = pad.set_active(false);
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let cfg = self.settings().config();
            // An old handle leaves before the new one takes the labels.
            self.state().series = None;
            let series = Series::new(&exporter::pipeline_label(&*self.obj()), &self.obj().name());
            {
                let mut st = self.state();
                *st = State::new(cfg);
                st.series = Some(series);
                st.running = true;
            }
            self.start_timer();
        }
        let ret = match self.parent_change_state(transition) {
            Ok(r) => r,
            Err(e) => {
                if transition == gst::StateChange::ReadyToPaused {
                    self.stop_timer();
                }
                return Err(e);
            }
        };
        if transition == gst::StateChange::PausedToReady {
            self.stop_timer();
            let mut st = self.state();
            st.running = false;
            st.decoder.reset();
            st.held_events.clear();
            // Dropping the series removes them from the registry.
            st.series = None;
        }
        Ok(ret)
    }
}
