//! Helpers for the SMPTE ST 2022-1 FEC end-to-end tests
//! (`tests/tests/st2022fec.rs`): packets of a media stream and its two FEC
//! streams, captured from a real sender (FFmpeg's `prompeg`) or produced by
//! an encoder element, with deterministic losses, pushed through a decoder
//! element in process and depayloaded with `rtpmp2tdepay`.
//!
//! Elements run in a [`Rig`]: the element under test in a pipeline, with
//! pads of ours linked to its pads. The test pushes every packet itself, in
//! one thread and in a fixed order across the media and FEC pads, so a run
//! is deterministic (`appsrc`s in their own threads would interleave the
//! three streams differently from run to run).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use gst::prelude::*;

pub use gstst2022fec::fec as core;
use gstst2022fec::fec::{parse_fec_packet, FecDirection};

use crate::plugin_dir;

/// Caps of an MPEG-TS RTP stream (RFC 2250, static payload type 33).
pub const MP2T_CAPS: &str =
    "application/x-rtp,media=video,clock-rate=90000,encoding-name=MP2T,payload=33";
/// Caps of an ST 2022-1 FEC stream.
pub const FEC_CAPS: &str = "application/x-rtp,media=application,clock-rate=90000,payload=96";

/// `gst::init()` plus this workspace's FEC plugin from the build directory
/// (when it has been built).
pub fn gst_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst::init");
        let path = plugin_dir().join("libgstst2022fec.so");
        if path.exists() {
            gst::Plugin::load_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    });
}

/// Whether a GStreamer element factory of that name is available.
pub fn have_element(name: &str) -> bool {
    gst_init();
    gst::ElementFactory::find(name).is_some()
}

/// An element from `"factory prop=value prop=value"`.
pub fn make_element(desc: &str) -> gst::Element {
    gst_init();
    let mut words = desc.split_whitespace();
    let factory = words.next().expect("element description");
    let element = gst::ElementFactory::make(factory)
        .build()
        .unwrap_or_else(|e| panic!("element {factory}: {e}"));
    for kv in words {
        let (k, v) = kv
            .split_once('=')
            .unwrap_or_else(|| panic!("{desc}: {kv} is not prop=value"));
        element.set_property_from_str(k, v);
    }
    element
}

// ------------------------------------------------------------------ packets

/// Which of the three RTP streams a packet travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// The media, port P.
    Media,
    /// Column FEC, port P+2 (`fec_0`).
    Column,
    /// Row FEC, port P+4 (`fec_1`).
    Row,
}

impl Stream {
    /// All three, in port order.
    pub const ALL: [Stream; 3] = [Stream::Media, Stream::Column, Stream::Row];

    /// Port offset from the media port.
    pub fn port_offset(self) -> u16 {
        match self {
            Stream::Media => 0,
            Stream::Column => 2,
            Stream::Row => 4,
        }
    }
}

/// One RTP packet of one of the three streams.
#[derive(Clone, Debug)]
pub struct Packet {
    /// The stream it was sent on (for FEC: the pad or port it came from).
    pub stream: Stream,
    /// The whole RTP packet.
    pub data: Vec<u8>,
    /// Arrival (or send) time from the start of the stream, ns. Used as the
    /// buffer PTS: `rtpst2022-1-fecdec` keeps packets by it (`size-time`).
    pub at_ns: u64,
}

/// RTP sequence number.
pub fn rtp_seq(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[2], p[3]])
}

/// RTP SSRC.
pub fn rtp_ssrc(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[8], p[9], p[10], p[11]])
}

/// RTP payload type.
pub fn rtp_pt(p: &[u8]) -> u8 {
    p[1] & 0x7f
}

/// The payload of an RTP packet (after CSRCs and extension, before padding).
pub fn rtp_payload(p: &[u8]) -> Option<&[u8]> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut start = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*p.get(start + 2)?, *p.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*p.last()?))?;
    }
    p.get(start..end)
}

/// Direction and SNBase of an FEC packet (its identity within a stream).
pub fn fec_key(p: &[u8]) -> Option<(FecDirection, u16)> {
    parse_fec_packet(p)
        .ok()
        .map(|f| (f.fec.direction, f.fec.sn_base_low))
}

/// Extends 16-bit sequence numbers in arrival order into a monotonic
/// counter (nearest to the previous one).
#[derive(Default, Clone, Debug)]
pub struct SeqExtender {
    last: Option<i64>,
}

impl SeqExtender {
    /// The extended value of `seq`.
    pub fn extend(&mut self, seq: u16) -> i64 {
        let v = match self.last {
            None => i64::from(seq) + (1 << 20),
            Some(last) => {
                let d = i64::from(seq.wrapping_sub(last as u16) as i16);
                last + d
            }
        };
        self.last = Some(self.last.map_or(v, |l| l.max(v)));
        v
    }
}

/// The media packets of `packets`, by extended sequence number (the first
/// copy of each).
pub fn media_by_seq(packets: &[Packet]) -> BTreeMap<i64, &[u8]> {
    let mut ext = SeqExtender::default();
    let mut map = BTreeMap::new();
    for p in packets.iter().filter(|p| p.stream == Stream::Media) {
        map.entry(ext.extend(rtp_seq(&p.data)))
            .or_insert(p.data.as_slice());
    }
    map
}

/// Sorts RTP packets by sequence number and drops repeats: what a
/// jitterbuffer does for a decoder that pushes recovered packets out of
/// order (`rtpst2022-1-fecdec`).
pub fn reorder(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut ext = SeqExtender::default();
    let mut map = BTreeMap::new();
    for p in packets {
        map.entry(ext.extend(rtp_seq(p)))
            .or_insert_with(|| p.clone());
    }
    map.into_values().collect()
}

/// Whether the sequence numbers strictly increase (gaps allowed).
pub fn in_sequence_order(packets: &[Vec<u8>]) -> Result<(), String> {
    let mut ext = SeqExtender::default();
    let mut prev: Option<i64> = None;
    for (i, p) in packets.iter().enumerate() {
        let s = ext.extend(rtp_seq(p));
        if let Some(q) = prev {
            if s <= q {
                return Err(format!(
                    "output packet {i} has sequence number {} after {}",
                    rtp_seq(p),
                    q as u16
                ));
            }
        }
        prev = Some(s);
    }
    Ok(())
}

/// Media sequence numbers of `sent` that `out` lacks.
pub fn missing_seqs(sent: &[Packet], out: &[Vec<u8>]) -> Vec<u16> {
    let have: HashSet<u16> = out.iter().map(|p| rtp_seq(p)).collect();
    let mut seen = HashSet::new();
    sent.iter()
        .filter(|p| p.stream == Stream::Media)
        .map(|p| rtp_seq(&p.data))
        .filter(|s| !have.contains(s) && seen.insert(*s))
        .collect()
}

/// Output packets whose bytes differ from the sent packet of the same
/// sequence number: (seq, first differing byte, out length, sent length).
pub fn corrupted(sent: &[Packet], out: &[Vec<u8>]) -> Vec<(u16, usize, usize, usize)> {
    let by_seq: HashMap<u16, &[u8]> = sent
        .iter()
        .filter(|p| p.stream == Stream::Media)
        .map(|p| (rtp_seq(&p.data), p.data.as_slice()))
        .collect();
    out.iter()
        .filter_map(|o| {
            let s = by_seq.get(&rtp_seq(o))?;
            if *s == o.as_slice() {
                return None;
            }
            let at = s
                .iter()
                .zip(o.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(s.len().min(o.len()));
            Some((rtp_seq(o), at, o.len(), s.len()))
        })
        .collect()
}

// ---------------------------------------------------------------- randomness

/// SplitMix64: a small deterministic generator for loss patterns.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

// ---------------------------------------------------------------- rig

/// What a collecting pad keeps of each buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The bytes.
    All,
    /// Nothing but the sequence number (long statistical runs), after
    /// checking the bytes are those of [`synthetic_media`] (else counted in
    /// [`Collected::bad`]).
    Synthetic,
}

/// Buffers and events seen by the collecting pads of a [`Rig`].
#[derive(Default, Debug)]
pub struct Collected {
    /// Buffers in arrival order across all collecting pads.
    pub packets: Vec<Packet>,
    /// With [`Keep::Synthetic`]: (stream, seq) of each buffer.
    pub seqs: Vec<(Stream, u16)>,
    /// With [`Keep::Synthetic`]: buffers that are not a synthetic media
    /// packet byte for byte.
    pub bad: u64,
    /// Streams that got EOS.
    pub eos: HashSet<Stream>,
    /// Names of the other serialized events seen (no sticky ones).
    pub events: Vec<String>,
}

struct Shared {
    state: Mutex<Collected>,
    cond: Condvar,
    keep: Keep,
    /// Arrival time stamped on collected buffers (see [`Rig::set_now`]).
    now: AtomicU64,
}

/// An element under test in a pipeline, fed from pads of ours in the
/// test's thread and drained into pads of ours.
pub struct Rig {
    /// The pipeline holding the element (its clock and bus).
    pub pipeline: gst::Pipeline,
    /// The element under test.
    pub element: gst::Element,
    feeds: Vec<(gst::Pad, gst::Caps)>,
    collectors: Arc<Mutex<Vec<gst::Pad>>>,
    shared: Arc<Shared>,
}

fn collector(shared: &Arc<Shared>, stream: Stream, name: &str) -> gst::Pad {
    let s1 = shared.clone();
    let s2 = shared.clone();
    let templ = gst::PadTemplate::new(
        "sink",
        gst::PadDirection::Sink,
        gst::PadPresence::Always,
        &gst::Caps::new_any(),
    )
    .unwrap();
    gst::Pad::builder_from_template(&templ)
        .name(name)
        .chain_function(move |_pad, _parent, buffer| {
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            let mut st = s1.state.lock().unwrap();
            match s1.keep {
                Keep::All => {
                    let at_ns = s1.now.load(Ordering::Relaxed);
                    st.packets.push(Packet {
                        stream,
                        data: map.as_slice().to_vec(),
                        at_ns,
                    });
                }
                Keep::Synthetic => {
                    if !is_synthetic_media(map.as_slice()) {
                        st.bad += 1;
                    }
                    if map.len() >= 12 {
                        st.seqs.push((stream, rtp_seq(map.as_slice())));
                    }
                }
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .event_function(move |_pad, _parent, event| {
            let mut st = s2.state.lock().unwrap();
            match event.view() {
                gst::EventView::Eos(_) => {
                    st.eos.insert(stream);
                    s2.cond.notify_all();
                }
                gst::EventView::StreamStart(_)
                | gst::EventView::Caps(_)
                | gst::EventView::Segment(_) => {}
                _ => st.events.push(event.type_().name().to_string()),
            }
            true
        })
        .build()
}

impl Rig {
    /// `element` in a new pipeline, nothing linked yet.
    pub fn new(element: gst::Element, keep: Keep) -> Rig {
        gst_init();
        let pipeline = gst::Pipeline::new();
        pipeline.add(&element).expect("add element");
        Rig {
            pipeline,
            element,
            feeds: Vec::new(),
            collectors: Arc::new(Mutex::new(Vec::new())),
            shared: Arc::new(Shared {
                state: Mutex::new(Collected::default()),
                cond: Condvar::new(),
                keep,
                now: AtomicU64::new(0),
            }),
        }
    }

    /// Links a feeding pad of ours to the element's `pad` (a static pad
    /// name, or a request template such as `fec_%u`); returns its index for
    /// [`Rig::push`].
    pub fn feed(&mut self, pad: &str, caps: &str) -> usize {
        let target = self
            .element
            .static_pad(pad)
            .or_else(|| self.element.request_pad_simple(pad))
            .unwrap_or_else(|| panic!("{}: no pad {pad}", self.element.name()));
        let src = gst::Pad::builder(gst::PadDirection::Src)
            .name(format!("feed_{}", self.feeds.len()))
            .build();
        src.link(&target)
            .unwrap_or_else(|e| panic!("link to {}: {e:?}", target.name()));
        self.feeds
            .push((src, caps.parse::<gst::Caps>().expect("caps")));
        self.feeds.len() - 1
    }

    /// Collects what the element pushes on its source pad `pad` (when it
    /// exists now, or once it is added), tagged as `stream`.
    pub fn collect(&mut self, pad: &str, stream: Stream) {
        if let Some(src) = self.element.static_pad(pad) {
            let sink = collector(&self.shared, stream, &format!("collect_{pad}"));
            src.link(&sink).expect("link collector");
            self.collectors.lock().unwrap().push(sink);
            return;
        }
        let shared = self.shared.clone();
        let collectors = self.collectors.clone();
        let want = pad.to_string();
        self.element.connect_pad_added(move |_el, src| {
            if src.name() == want.as_str() {
                let sink = collector(&shared, stream, &format!("collect_{want}"));
                sink.set_active(true).expect("activate collector");
                src.link(&sink).expect("link collector");
                collectors.lock().unwrap().push(sink);
            }
        });
    }

    /// Sets the pipeline PLAYING and sends stream-start, caps and a TIME
    /// segment on every feeding pad.
    pub fn start(&self) {
        for c in self.collectors.lock().unwrap().iter() {
            c.set_active(true).expect("activate collector");
        }
        for (src, _) in &self.feeds {
            src.set_active(true).expect("activate feed");
        }
        self.pipeline
            .set_state(gst::State::Playing)
            .unwrap_or_else(|e| panic!("{}: PLAYING: {e}", self.element.name()));
        let group = gst::GroupId::next();
        for (i, (src, caps)) in self.feeds.iter().enumerate() {
            src.push_event(
                gst::event::StreamStart::builder(&format!("feed-{i}"))
                    .group_id(group)
                    .build(),
            );
            src.push_event(gst::event::Caps::new(caps));
            src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
                gst::ClockTime,
            >::new()));
        }
    }

    /// Stamps collected buffers with this arrival time from now on.
    pub fn set_now(&self, at_ns: u64) {
        self.shared.now.store(at_ns, Ordering::Relaxed);
    }

    /// Pushes one packet (PTS = `at_ns`) into feed `feed`.
    pub fn push(&self, feed: usize, data: &[u8], at_ns: u64) -> Result<(), gst::FlowError> {
        self.set_now(at_ns);
        let mut buf = gst::Buffer::from_slice(data.to_vec());
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_nseconds(at_ns));
        self.feeds[feed].0.push(buf).map(|_| ())
    }

    /// Takes what was collected so far.
    pub fn take(&self) -> Collected {
        let mut st = self.shared.state.lock().unwrap();
        Collected {
            packets: std::mem::take(&mut st.packets),
            seqs: std::mem::take(&mut st.seqs),
            bad: std::mem::take(&mut st.bad),
            eos: st.eos.clone(),
            events: std::mem::take(&mut st.events),
        }
    }

    /// Error or warning messages posted so far.
    pub fn messages(&self) -> Vec<String> {
        let bus = self.pipeline.bus().expect("bus");
        let mut v = Vec::new();
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Error(e) => v.push(format!(
                    "ERROR {}: {}",
                    e.error(),
                    e.debug().unwrap_or_default()
                )),
                gst::MessageView::Warning(w) => v.push(format!(
                    "WARNING {}: {}",
                    w.error(),
                    w.debug().unwrap_or_default()
                )),
                _ => {}
            }
        }
        v
    }

    /// Sends EOS on every feed (FEC feeds first), waits up to `timeout` for
    /// EOS on the collecting pad of `wait_for`, stops the pipeline and
    /// returns what was collected.
    pub fn finish(self, wait_for: Stream, timeout: Duration) -> (Collected, Vec<String>) {
        for (src, _) in self.feeds.iter().rev() {
            src.push_event(gst::event::Eos::new());
        }
        let deadline = Instant::now() + timeout;
        {
            let mut st = self.shared.state.lock().unwrap();
            while !st.eos.contains(&wait_for) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = self.shared.cond.wait_timeout(st, left).unwrap().0;
            }
        }
        let mut messages = self.messages();
        if !self.shared.state.lock().unwrap().eos.contains(&wait_for) {
            messages.push(format!("no EOS on {wait_for:?} within {timeout:?}"));
        }
        self.pipeline.set_state(gst::State::Null).ok();
        let collected = self.take();
        (collected, messages)
    }
}

// ---------------------------------------------------------------- encode / decode

/// Runs media packets through an FEC encoder element (`desc`, e.g.
/// `"st2022fecenc columns=10 rows=10"`) and returns everything it put out
/// in order: media from `src`, column FEC from `fec_0`, row FEC from
/// `fec_1`, each stamped with the arrival time of the media packet that
/// caused it. Also returns error/warning messages.
pub fn encode(desc: &str, media: &[Packet]) -> (Vec<Packet>, Vec<String>) {
    let mut rig = Rig::new(make_element(desc), Keep::All);
    let feed = rig.feed("sink", MP2T_CAPS);
    rig.collect("src", Stream::Media);
    rig.collect("fec_0", Stream::Column);
    rig.collect("fec_1", Stream::Row);
    rig.start();
    let mut msgs = Vec::new();
    for p in media {
        if let Err(e) = rig.push(feed, &p.data, p.at_ns) {
            msgs.push(format!("push media {}: {e:?}", rtp_seq(&p.data)));
            break;
        }
    }
    let (c, m) = rig.finish(Stream::Media, Duration::from_secs(30));
    msgs.extend(m);
    (c.packets, msgs)
}

/// What a decoder element put out.
#[derive(Debug)]
pub struct Decoded {
    /// RTP packets from its source pad, in the order pushed.
    pub packets: Vec<Vec<u8>>,
    /// The `stats` property at the end, when it has one.
    pub stats: Option<gst::Structure>,
    /// Error and warning messages, a missing EOS, failed pushes.
    pub messages: Vec<String>,
    /// Wall time of the run.
    pub wall: Duration,
}

/// Feeds `input` in order through an FEC decoder element (`desc`): media
/// into `sink`, column FEC into the first `fec_%u` request pad, row FEC into
/// the second (for a given stream, always the same pad), with PTS =
/// `at_ns`.
pub fn decode(desc: &str, input: &[Packet]) -> Decoded {
    let started = Instant::now();
    let mut rig = Rig::new(make_element(desc), Keep::All);
    let feeds = [
        rig.feed("sink", MP2T_CAPS),
        rig.feed("fec_%u", FEC_CAPS),
        rig.feed("fec_%u", FEC_CAPS),
    ];
    rig.collect("src", Stream::Media);
    rig.start();
    let mut messages = Vec::new();
    for p in input {
        let f = feeds[p.stream as usize];
        if let Err(e) = rig.push(f, &p.data, p.at_ns) {
            messages.push(format!("push {:?} {}: {e:?}", p.stream, rtp_seq(&p.data)));
            break;
        }
    }
    let stats = stats_of(&rig.element);
    let element = rig.element.clone();
    let (c, m) = rig.finish(Stream::Media, Duration::from_secs(60));
    messages.extend(m);
    Decoded {
        packets: c.packets.into_iter().map(|p| p.data).collect(),
        stats: stats_of(&element).or(stats),
        messages,
        wall: started.elapsed(),
    }
}

/// The element's `stats` structure, when it has that property.
pub fn stats_of(element: &gst::Element) -> Option<gst::Structure> {
    element.find_property("stats")?;
    Some(element.property::<gst::Structure>("stats"))
}

/// A `u64` field of a stats structure (any integer type), 0 when absent.
pub fn stat(stats: &gst::Structure, field: &str) -> u64 {
    if let Ok(v) = stats.get::<u64>(field) {
        return v;
    }
    if let Ok(v) = stats.get::<u32>(field) {
        return v.into();
    }
    if let Ok(v) = stats.get::<i64>(field) {
        return v.max(0) as u64;
    }
    if let Ok(v) = stats.get::<i32>(field) {
        return v.max(0) as u64;
    }
    0
}

/// The MPEG-TS carried by RTP `packets`, through `rtpmp2tdepay` in order.
pub fn depay_mp2t(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut rig = Rig::new(make_element("rtpmp2tdepay"), Keep::All);
    let feed = rig.feed("sink", MP2T_CAPS);
    rig.collect("src", Stream::Media);
    rig.start();
    for (i, p) in packets.iter().enumerate() {
        rig.push(feed, p, i as u64 * 1_000_000)
            .unwrap_or_else(|e| panic!("rtpmp2tdepay: {e:?}"));
    }
    let (c, msgs) = rig.finish(Stream::Media, Duration::from_secs(30));
    assert!(c.eos.contains(&Stream::Media), "rtpmp2tdepay: {msgs:?}");
    c.packets.into_iter().flat_map(|p| p.data).collect()
}

// ---------------------------------------------------------------- media

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Writes a short MPEG-TS (testsrc2 640x360 25 fps H.264 and a 440 Hz sine
/// in AAC) of `seconds` into `out`.
pub fn generate_ts(out: &Path, seconds: u32) -> Result<(), String> {
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M"])
        .args(["-maxrate", "3M", "-bufsize", "1M", "-g", "25"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "mpegts"])
        .arg(out))
}

/// Interval between media packets of a 4 Mb/s stream of 1316-byte
/// payloads, ns.
pub const PACKET_INTERVAL_NS: u64 = 1316 * 8 * 1_000_000_000 / 4_000_000;

/// A TS file packetised by GStreamer: `filesrc blocksize=1316 !
/// rtpmp2tpay ssrc=0 pt=33` (7 TS packets per RTP packet; SSRC 0 because
/// `rtpst2022-1-fecenc` protects only that SSRC). The payloads put together
/// are the file. `at_ns` paces the packets at 4 Mb/s.
pub fn rtp_from_ts(ts: &Path) -> Vec<Packet> {
    gst_init();
    let desc = format!(
        "filesrc location={} blocksize=1316 ! video/mpegts,systemstream=true,packetsize=188 ! \
         rtpmp2tpay ssrc=0 pt=33 seqnum-offset=65000 ! fakesink name=out sync=false",
        ts.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .expect("parse")
        .downcast::<gst::Pipeline>()
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let sink = pipeline.by_name("out").unwrap();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buf) = info.buffer() {
                let map = buf.map_readable().unwrap();
                let mut g = g.lock().unwrap();
                let at_ns = g.len() as u64 * PACKET_INTERVAL_NS;
                g.push(Packet {
                    stream: Stream::Media,
                    data: map.as_slice().to_vec(),
                    at_ns,
                });
            }
            gst::PadProbeReturn::Ok
        });
    run_to_eos(&pipeline, Duration::from_secs(60)).expect("rtpmp2tpay pipeline");
    let v = std::mem::take(&mut *got.lock().unwrap());
    v
}

/// Runs a pipeline until EOS (Ok) or an error (Err), then stops it.
pub fn run_to_eos(pipeline: &gst::Pipeline, timeout: Duration) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("PLAYING: {e}"))?;
    let bus = pipeline.bus().unwrap();
    let res = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64))
        else {
            break Err("timeout".to_string());
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!("{}: {}", e.error(), e.debug().unwrap_or_default()))
            }
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null).ok();
    res
}

// ---------------------------------------------------------------- UDP capture

/// Three UDP sockets on 127.0.0.1 ports P, P+2 and P+4.
pub struct Ports {
    /// P.
    pub base: u16,
    sockets: Vec<UdpSocket>,
}

impl Ports {
    /// Binds three free ports P, P+2, P+4 (P even).
    pub fn bind() -> Ports {
        for _ in 0..200 {
            let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let p = probe.local_addr().unwrap().port() & !1;
            drop(probe);
            if !(1024..=65530).contains(&p) {
                continue;
            }
            let socks: Vec<_> = [0u16, 2, 4]
                .iter()
                .map_while(|o| UdpSocket::bind(("127.0.0.1", p + o)).ok())
                .collect();
            if socks.len() == 3 {
                for s in &socks {
                    // Turns timestamping on before anything arrives (fails
                    // with ENOENT: nothing received yet).
                    let _ = kernel_timestamp(s);
                }
                return Ports {
                    base: p,
                    sockets: socks,
                };
            }
        }
        panic!("no three free UDP ports P, P+2, P+4 on 127.0.0.1");
    }

    /// Receives on the three ports until `child` exits and nothing more
    /// arrives for `idle`; returns the packets in the order they were sent,
    /// with arrival times from the first.
    ///
    /// Threads reading three sockets cannot tell that order (a burst of
    /// packets on two ports is read in whatever order the threads get the
    /// CPU), so each packet is ordered by its kernel receive timestamp
    /// (`SIOCGSTAMPNS`): on loopback it is taken inside the sender's
    /// `sendto`, which gives the send order.
    pub fn capture(self, mut child: Child, idle: Duration) -> Result<Vec<Packet>, String> {
        let log = Arc::new(Mutex::new(Vec::<(u64, Stream, Vec<u8>)>::new()));
        let done = Arc::new(Mutex::new(false));
        let mut threads = Vec::new();
        for (sock, stream) in self.sockets.into_iter().zip(Stream::ALL) {
            sock.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let log = log.clone();
            let done = done.clone();
            threads.push(thread::spawn(move || -> Result<(), String> {
                let mut buf = vec![0u8; 65536];
                let mut last = Instant::now();
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => {
                            last = Instant::now();
                            let ts = kernel_timestamp(&sock)?;
                            log.lock().unwrap().push((ts, stream, buf[..n].to_vec()));
                        }
                        Err(_) => {
                            if *done.lock().unwrap() && last.elapsed() >= idle {
                                return Ok(());
                            }
                        }
                    }
                }
            }));
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let stderr = child
            .stderr
            .take()
            .map(|mut s| {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut s, &mut t).ok();
                t
            })
            .unwrap_or_default();
        *done.lock().unwrap() = true;
        for h in threads {
            h.join().unwrap()?;
        }
        if !status.success() {
            return Err(format!("sender failed ({status}): {stderr}"));
        }
        let mut log = std::mem::take(&mut *log.lock().unwrap());
        log.sort_by_key(|(t, s, _)| (*t, *s));
        let t0 = log.first().map_or(0, |(t, _, _)| *t);
        Ok(log
            .into_iter()
            .map(|(t, stream, data)| Packet {
                stream,
                data,
                at_ns: t - t0,
            })
            .collect())
    }
}

/// `SIOCGSTAMPNS` (linux/sockios.h; `libc` does not define it).
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// Kernel receive time of the last packet read from `sock`, ns. The first
/// call on a socket also turns on receive timestamps.
fn kernel_timestamp(sock: &UdpSocket) -> Result<u64, String> {
    use std::os::fd::AsRawFd;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: SIOCGSTAMPNS writes one `struct timespec` to the pointer,
    // which points to a live, writable timespec; the fd is open.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSTAMPNS as _, &mut ts) };
    if r != 0 {
        return Err(format!("SIOCGSTAMPNS: {}", std::io::Error::last_os_error()));
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Sends `ts` in real time with FFmpeg's Pro-MPEG FEC
/// (`ffmpeg -re -i in.ts -c copy -f rtp_mpegts -fec prompeg=l=L:d=D
/// 'rtp://127.0.0.1:P?pkt_size=1328'`) and captures the three streams.
/// Checks that the capture is complete: no media sequence gap and one row
/// packet per L media packets, one column packet per D x L.
pub fn capture_ffmpeg(ts: &Path, l: u8, d: u8) -> Result<Vec<Packet>, String> {
    let mut last_err = String::new();
    for _ in 0..3 {
        let ports = Ports::bind();
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-re", "-i"])
            .arg(ts)
            .args(["-c", "copy", "-f", "rtp_mpegts", "-fec"])
            .arg(format!("prompeg=l={l}:d={d}"))
            .arg(format!("rtp://127.0.0.1:{}?pkt_size=1328", ports.base))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ffmpeg: {e}"))?;
        let packets = ports.capture(child, Duration::from_millis(300))?;
        match check_capture(&packets, l, d) {
            Ok(()) => return Ok(packets),
            Err(e) => last_err = e,
        }
    }
    Err(format!("incomplete UDP capture (3 tries): {last_err}"))
}

/// A capture is complete: contiguous media sequence numbers, and the FEC
/// packets that a sender of L x D sends for that many media packets (within
/// one matrix, for the ones of the last, incomplete matrix).
pub fn check_capture(packets: &[Packet], l: u8, d: u8) -> Result<(), String> {
    let media = media_by_seq(packets);
    let (Some(first), Some(last)) = (media.keys().next(), media.keys().next_back()) else {
        return Err("no media packets".into());
    };
    let n = (last - first + 1) as usize;
    if media.len() != n {
        return Err(format!("{} media packets of {n} (gaps)", media.len()));
    }
    let rows = packets.iter().filter(|p| p.stream == Stream::Row).count();
    let cols = packets
        .iter()
        .filter(|p| p.stream == Stream::Column)
        .count();
    let (l, d) = (usize::from(l), usize::from(d));
    if rows + 1 < n / l || rows > n / l + 1 {
        return Err(format!("{rows} row FEC packets for {n} media (L={l})"));
    }
    if cols + l + 1 < n / (l * d) * l || cols > n / (l * d) * l + l {
        return Err(format!(
            "{cols} column FEC packets for {n} media (L={l}, D={d})"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- loss patterns

/// The matrix layout of a stream: media packet `base + m*L*D + r*L + c` is
/// in matrix `m`, row `r`, column `c`.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Sequence number of the first packet of matrix 0.
    pub base: u16,
    /// Columns.
    pub l: u16,
    /// Rows.
    pub d: u16,
}

impl Geometry {
    /// The layout of a stream as its first row FEC packet tells it (the
    /// first column packet when there is no row FEC).
    pub fn of(packets: &[Packet], l: u16, d: u16) -> Geometry {
        let first_media = packets
            .iter()
            .find(|p| p.stream == Stream::Media)
            .map(|p| rtp_seq(&p.data))
            .expect("media");
        let base = packets
            .iter()
            .filter(|p| p.stream != Stream::Media)
            .filter_map(|p| fec_key(&p.data))
            .map(|(_, sn)| sn)
            .min_by_key(|sn| sn.wrapping_sub(first_media))
            .unwrap_or(first_media);
        Geometry { base, l, d }
    }

    /// Sequence number of matrix `m`, row `r`, column `c`.
    pub fn seq(&self, m: u16, r: u16, c: u16) -> u16 {
        self.base
            .wrapping_add(m.wrapping_mul(self.l * self.d))
            .wrapping_add(r * self.l)
            .wrapping_add(c)
    }

    /// Number of complete matrices of media in `packets`.
    pub fn full_matrices(&self, packets: &[Packet]) -> u16 {
        let n = packets
            .iter()
            .filter(|p| p.stream == Stream::Media)
            .map(|p| rtp_seq(&p.data).wrapping_sub(self.base))
            .filter(|o| *o < 0x8000)
            .max()
            .map_or(0, |o| o + 1);
        n / (self.l * self.d)
    }
}

/// Packets to drop, by identity: media by sequence number, FEC by
/// direction and SNBase.
#[derive(Default, Clone, Debug)]
pub struct Losses {
    /// Media sequence numbers.
    pub media: HashSet<u16>,
    /// Column FEC SNBases.
    pub columns: HashSet<u16>,
    /// Row FEC SNBases.
    pub rows: HashSet<u16>,
    /// What each pattern dropped, for reports: (name, media seqs).
    pub labels: Vec<(String, Vec<u16>)>,
}

impl Losses {
    /// Whether `p` is dropped. FEC packets are told apart by their header
    /// (the D bit), whatever port they came on.
    pub fn drops(&self, p: &Packet) -> bool {
        match p.stream {
            Stream::Media => self.media.contains(&rtp_seq(&p.data)),
            _ => match fec_key(&p.data) {
                Some((FecDirection::Column, sn)) => self.columns.contains(&sn),
                Some((FecDirection::Row, sn)) => self.rows.contains(&sn),
                None => false,
            },
        }
    }

    /// `packets` without the dropped ones.
    pub fn apply(&self, packets: &[Packet]) -> Vec<Packet> {
        packets.iter().filter(|p| !self.drops(p)).cloned().collect()
    }

    /// Which pattern a lost media packet belonged to.
    pub fn label_of(&self, seq: u16) -> &str {
        self.labels
            .iter()
            .find(|(_, s)| s.contains(&seq))
            .map_or("?", |(n, _)| n.as_str())
    }
}

/// Every pattern is recoverable by a 2D (row and column) decoder. Pattern
/// `i` is placed in matrix `i`: the first one in the stream's first matrix,
/// where the decoder has seen no column FEC yet (it learns D from the first
/// column packet, which comes at the end of that matrix, or during the next
/// one when staggered).
pub const PATTERNS: [&str; 9] = [
    "first matrix: two packets of one row (column FEC needed)",
    "one media packet",
    "L consecutive media packets (one row)",
    "L consecutive media packets across two rows",
    "D media packets of one column",
    "three in an L (needs row, then column, then row)",
    "media + its row FEC; media + its column FEC",
    "FEC only (2 row, 2 column packets)",
    "two packets of the last row",
];

/// The deterministic loss patterns of [`PATTERNS`] for a stream of layout
/// `g`, pattern `i` in matrix `i`.
pub fn patterns(g: Geometry) -> Losses {
    let mut out = Losses::default();
    let (l, d) = (g.l, g.d);
    for (i, name) in PATTERNS.iter().enumerate() {
        let m = i as u16;
        let mut media: Vec<u16> = Vec::new();
        match i {
            0 => media.extend([g.seq(m, 1, 1), g.seq(m, 1, l - 2)]),
            1 => media.push(g.seq(m, d / 2, l / 2)),
            2 => media.extend((0..l).map(|c| g.seq(m, 2 % d, c))),
            3 => media.extend((0..l).map(|k| g.seq(m, 1, l / 2 + k))),
            4 => media.extend((0..d).map(|r| g.seq(m, r, 1 % l))),
            5 => media.extend([g.seq(m, 1, 1), g.seq(m, 1, 2), g.seq(m, 2, 1)]),
            6 => {
                media.push(g.seq(m, 3, 2));
                out.rows.insert(g.seq(m, 3, 0));
                media.push(g.seq(m, 1, l - 1));
                out.columns.insert(g.seq(m, 0, l - 1));
            }
            7 => {
                out.rows.insert(g.seq(m, 0, 0));
                out.rows.insert(g.seq(m, d - 1, 0));
                out.columns.insert(g.seq(m, 0, 0));
                out.columns.insert(g.seq(m, 0, l / 2));
            }
            8 => {
                // Two in one row: the columns recover them.
                media.extend([g.seq(m, d - 1, 0), g.seq(m, d - 1, l - 1)]);
            }
            _ => unreachable!(),
        }
        out.media.extend(media.iter().copied());
        out.labels.push((format!("matrix {m}: {name}"), media));
    }
    out
}

/// Drops each packet of any stream with probability `p` (one draw per
/// packet, in order).
pub fn iid(packets: &[Packet], p: f64, seed: u64) -> Vec<Packet> {
    let mut rng = Rng::new(seed);
    packets.iter().filter(|_| !rng.chance(p)).cloned().collect()
}

// ---------------------------------------------------------------- statistics

/// Payload bytes of a synthetic media packet (7 TS packets).
pub const SYNTHETIC_PAYLOAD: usize = 1316;

fn synthetic_word(index: u64) -> u32 {
    (index ^ 0x5a5a_5a5a).wrapping_mul(0x9e37_79b9_7f4a_7c15) as u32 >> 1 | 1
}

/// Media packet number `index` of a synthetic stream: PT 33, SSRC 0,
/// sequence number `index` mod 2^16, timestamp `index` x 237 (90 kHz at
/// 4 Mb/s), payload: `index` (8 bytes) then a 32-bit word derived from it
/// repeated.
pub fn synthetic_media(index: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + SYNTHETIC_PAYLOAD);
    p.extend_from_slice(&[0x80, 33]);
    p.extend_from_slice(&(index as u16).to_be_bytes());
    p.extend_from_slice(&((index * 237) as u32).to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&index.to_be_bytes());
    let w = synthetic_word(index).to_be_bytes();
    while p.len() < 12 + SYNTHETIC_PAYLOAD {
        p.extend_from_slice(&w);
    }
    p
}

/// Whether `p` is exactly [`synthetic_media`] of the index it carries.
pub fn is_synthetic_media(p: &[u8]) -> bool {
    if p.len() != 12 + SYNTHETIC_PAYLOAD {
        return false;
    }
    let index = u64::from_be_bytes(p[12..20].try_into().unwrap());
    p == synthetic_media(index).as_slice()
}

/// One decoder's result on one lossy stream.
#[derive(Clone, Debug)]
pub struct StatsRow {
    /// The loss applied.
    pub loss: String,
    /// The decoder element description.
    pub decoder: String,
    /// Media packets sent.
    pub media: u64,
    /// Media packets the channel dropped.
    pub media_lost: u64,
    /// FEC packets sent and dropped.
    pub fec: u64,
    /// FEC packets the channel dropped.
    pub fec_lost: u64,
    /// Media packets missing from the decoder's output.
    pub residual: u64,
    /// Output packets that repeat one already put out.
    pub duplicates: u64,
    /// Output packets whose bytes are wrong.
    pub bad: u64,
    /// Output packets after a higher sequence number (out of order).
    pub reordered: u64,
    /// Decoder stats at the end (ours).
    pub stats: Option<gst::Structure>,
    /// Messages, missing EOS.
    pub messages: Vec<String>,
}

impl StatsRow {
    /// Residual media loss rate.
    pub fn residual_rate(&self) -> f64 {
        self.residual as f64 / self.media as f64
    }
}

/// What the channel does with one packet: `media_index` is the index of
/// the newest media packet sent so far (the packet itself when media).
pub trait Channel {
    /// True to drop the packet.
    fn drops(&mut self, p: &Packet, media_index: u64) -> bool;
}

/// i.i.d. loss of probability `p` on every packet of the three streams.
pub struct IidLoss(pub Rng, pub f64);

impl Channel for IidLoss {
    fn drops(&mut self, _p: &Packet, _i: u64) -> bool {
        self.0.chance(self.1)
    }
}

/// Bursts of `len` consecutive media packets starting at media index
/// `start + k x every + (k mod span)` for k = 0, 1, ...: each burst starts
/// one packet later in its matrix than the one before, so `span` bursts
/// cover every position. `wire`: also drop the FEC packets sent during the
/// burst (what a link outage does); otherwise only media.
pub struct BurstLoss {
    /// Media packets per burst.
    pub len: u64,
    /// Distance between burst starts before the shift.
    pub every: u64,
    /// Positions cycled through.
    pub span: u64,
    /// First burst start.
    pub start: u64,
    /// Drop FEC sent during a burst too.
    pub wire: bool,
}

impl BurstLoss {
    fn in_burst(&self, i: u64) -> bool {
        if i < self.start {
            return false;
        }
        let k = (i - self.start) / self.every;
        let s = self.start + k * self.every + k % self.span;
        i >= s && i < s + self.len
    }
}

impl Channel for BurstLoss {
    fn drops(&mut self, p: &Packet, i: u64) -> bool {
        (self.wire || p.stream == Stream::Media) && self.in_burst(i)
    }
}

/// Sends `n_media` [`synthetic_media`] packets (paced at 4 Mb/s) through
/// the encoder element `encoder`, drops what `channel` says, and feeds the
/// same surviving packets, in the same order, through every decoder of
/// `decoders` (all running side by side in this thread). Returns one row
/// per decoder. Make `n_media` a whole number of matrices, so that every
/// media packet is protected.
pub fn run_statistics(
    encoder: &str,
    decoders: &[&str],
    n_media: u64,
    loss: &str,
    channel: &mut dyn Channel,
) -> Vec<StatsRow> {
    let mut enc = Rig::new(make_element(encoder), Keep::All);
    let enc_feed = enc.feed("sink", MP2T_CAPS);
    enc.collect("src", Stream::Media);
    enc.collect("fec_0", Stream::Column);
    enc.collect("fec_1", Stream::Row);
    enc.start();
    let decs: Vec<(Rig, [usize; 3])> = decoders
        .iter()
        .map(|d| {
            let mut rig = Rig::new(make_element(d), Keep::Synthetic);
            let feeds = [
                rig.feed("sink", MP2T_CAPS),
                rig.feed("fec_%u", FEC_CAPS),
                rig.feed("fec_%u", FEC_CAPS),
            ];
            rig.collect("src", Stream::Media);
            rig.start();
            (rig, feeds)
        })
        .collect();
    let (mut media_lost, mut fec, mut fec_lost) = (0u64, 0u64, 0u64);
    let mut messages = Vec::new();
    for i in 0..n_media {
        let at = i * PACKET_INTERVAL_NS;
        if let Err(e) = enc.push(enc_feed, &synthetic_media(i), at) {
            messages.push(format!("encoder push {i}: {e:?}"));
            break;
        }
        for p in enc.take().packets {
            let dropped = channel.drops(&p, i);
            match (p.stream, dropped) {
                (Stream::Media, true) => media_lost += 1,
                (Stream::Media, false) => {}
                (_, d) => {
                    fec += 1;
                    fec_lost += u64::from(d);
                }
            }
            if dropped {
                continue;
            }
            for (rig, feeds) in &decs {
                if let Err(e) = rig.push(feeds[p.stream as usize], &p.data, at) {
                    messages.push(format!("{}: push: {e:?}", rig.element.name()));
                }
            }
        }
    }
    let (_c, m) = enc.finish(Stream::Media, Duration::from_secs(10));
    messages.extend(m);
    decs.into_iter()
        .zip(decoders)
        .map(|((rig, _), desc)| {
            let element = rig.element.clone();
            let (c, mut msgs) = rig.finish(Stream::Media, Duration::from_secs(60));
            msgs.extend(messages.iter().cloned());
            let mut seen = HashSet::new();
            let mut ext = SeqExtender::default();
            let (mut duplicates, mut reordered) = (0, 0);
            let mut max = i64::MIN;
            for (_, s) in &c.seqs {
                let e = ext.extend(*s);
                if !seen.insert(e) {
                    duplicates += 1;
                } else if e < max {
                    reordered += 1;
                }
                max = max.max(e);
            }
            StatsRow {
                loss: loss.to_string(),
                decoder: desc.to_string(),
                media: n_media,
                media_lost,
                fec,
                fec_lost,
                residual: n_media - seen.len() as u64,
                duplicates,
                bad: c.bad,
                reordered,
                stats: stats_of(&element),
                messages: msgs,
            }
        })
        .collect()
}

/// A text table of statistics rows.
pub fn format_stats(rows: &[StatsRow]) -> String {
    let mut t = format!(
        "{:<38} {:<20} {:>8} {:>7} {:>6} {:>8} {:>10} {:>5} {:>9} {:>4}\n",
        "loss", "decoder", "media", "lost", "fec", "residual", "rate", "dups", "reordered", "bad"
    );
    for r in rows {
        t += &format!(
            "{:<38} {:<20} {:>8} {:>7} {:>6} {:>8} {:>10.2e} {:>5} {:>9} {:>4}\n",
            r.loss,
            r.decoder.split_whitespace().next().unwrap_or(""),
            r.media,
            r.media_lost,
            r.fec_lost,
            r.residual,
            r.residual_rate(),
            r.duplicates,
            r.reordered,
            r.bad
        );
    }
    t
}

// ---------------------------------------------------------------- pattern runs

/// One decoder's result on a stream with [`patterns`] losses.
#[derive(Debug)]
pub struct PatternRow {
    /// Who made the FEC.
    pub sender: String,
    /// The decoder element description.
    pub decoder: String,
    /// Media packets sent.
    pub media: usize,
    /// Media packets dropped by the patterns.
    pub lost: usize,
    /// Media packets missing from the output, with their pattern.
    pub missing: Vec<(u16, String)>,
    /// Output packets whose bytes differ from the sent ones.
    pub corrupted: usize,
    /// Output packets that repeat one already put out.
    pub duplicates: usize,
    /// Output packets behind a higher sequence number.
    pub reordered: usize,
    /// The depayloaded TS (after reordering, for a decoder that does not
    /// keep order) equals the loss-free one.
    pub identical: bool,
    /// The decoder's `stats`, when it has them.
    pub stats: Option<gst::Structure>,
    /// Messages of the run.
    pub messages: Vec<String>,
}

/// Duplicates and out-of-order packets of a decoder's output.
pub fn order_counts(out: &[Vec<u8>]) -> (usize, usize) {
    let mut seen = HashSet::new();
    let mut ext = SeqExtender::default();
    let (mut dup, mut reord) = (0, 0);
    let mut max = i64::MIN;
    for p in out {
        let e = ext.extend(rtp_seq(p));
        if !seen.insert(e) {
            dup += 1;
        } else if e < max {
            reord += 1;
        }
        max = max.max(e);
    }
    (dup, reord)
}

/// Drops `losses` from `stream` (media and FEC as sent, in order), decodes
/// the rest with `decoder` and compares the depayloaded TS with `reference`.
pub fn run_pattern(
    sender: &str,
    decoder: &str,
    stream: &[Packet],
    losses: &Losses,
    reference: &[u8],
) -> PatternRow {
    let lossy = losses.apply(stream);
    let out = decode(decoder, &lossy);
    let (duplicates, reordered) = order_counts(&out.packets);
    let ts = depay_mp2t(&reorder(&out.packets));
    PatternRow {
        sender: sender.to_string(),
        decoder: decoder.to_string(),
        media: stream.iter().filter(|p| p.stream == Stream::Media).count(),
        lost: stream
            .iter()
            .filter(|p| p.stream == Stream::Media && losses.drops(p))
            .count(),
        missing: missing_seqs(stream, &out.packets)
            .into_iter()
            .map(|s| (s, losses.label_of(s).to_string()))
            .collect(),
        corrupted: corrupted(stream, &out.packets).len(),
        duplicates,
        reordered,
        identical: ts == reference,
        stats: out.stats,
        messages: out.messages,
    }
}

/// A text table of pattern rows.
pub fn format_patterns(rows: &[PatternRow]) -> String {
    let mut t = format!(
        "{:<40} {:<20} {:>6} {:>5} {:>8} {:>5} {:>5} {:>9}  {}\n",
        "sender", "decoder", "media", "lost", "missing", "bad", "dups", "reordered", "TS identical"
    );
    for r in rows {
        t += &format!(
            "{:<40} {:<20} {:>6} {:>5} {:>8} {:>5} {:>5} {:>9}  {}\n",
            r.sender,
            r.decoder.split_whitespace().next().unwrap_or(""),
            r.media,
            r.lost,
            r.missing.len(),
            r.corrupted,
            r.duplicates,
            r.reordered,
            if r.identical { "yes" } else { "NO" }
        );
    }
    t
}

/// The TS of a loss-free stream: its media payloads in sequence order.
pub fn reference_ts(stream: &[Packet]) -> Vec<u8> {
    media_by_seq(stream)
        .values()
        .flat_map(|p| rtp_payload(p).unwrap_or_default().to_vec())
        .collect()
}
