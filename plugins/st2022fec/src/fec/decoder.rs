// SPDX-License-Identifier: MPL-2.0
//! ST 2022-1 decoder state: media and FEC packets in, in any order; media in
//! sequence order out, with what FEC recovered, within a bounded latency.
//!
//! # Recovery
//!
//! Every FEC packet describes the packets it protects by itself (SNBase,
//! offset, NA), so the decoder needs no configuration to recover and
//! follows any change of L and D. Each stored FEC packet keeps a count of
//! its protected packets still missing. When the count falls to one, the
//! missing packet is rebuilt (RFC 2733 section 8.1): the XOR of the FEC
//! payload with the other packets' bytes from byte 12 on, and of the
//! recovery fields with their headers (P, X, CC and M from the FEC packet's
//! RTP header, PT, timestamp and length from the FEC header); the sequence
//! number is SNBase + i x offset and the SSRC that of the other packets.
//! A recovered packet counts as present for the other dimension, which may
//! bring another FEC packet down to one missing: row and column recoveries
//! alternate until none is possible. A packet newer than the newest media
//! packet is not known to be lost (the FEC of a row often arrives, on its
//! own socket, before the row's last packet): its recovery waits for newer
//! media, a deadline or the end of the stream, so that `recovered` counts
//! only packets that were lost.
//!
//! This peeling recovers everything the code allows: every media packet is
//! in exactly one row and one column, so the lost packets are the edges of
//! a bipartite graph between rows and columns. Peeling stops only when
//! every row or column whose FEC packet arrived touches none or at least
//! two lost edges; walking along such edges from any of them must then
//! close a cycle or end, at both ends, at a row or column without FEC. The
//! edges of that cycle or path XOR to zero in every parity equation that
//! exists, so no decoder (not even Gaussian elimination) can tell them
//! apart: they are not recoverable.
//!
//! A recovery is dropped rather than emitted when it is inconsistent: a
//! protected packet longer than the FEC payload, a recovered length longer
//! than the FEC payload, non-zero bytes past the recovered length (the
//! missing packet was zero-padded there), protected packets of different
//! SSRCs, or a rebuilt packet whose CSRC list, extension or padding does
//! not fit (RFC 3550 5.1). With genuine FEC packets of the stream this
//! never happens; it stops FEC packets that do not belong to it (a wrong
//! port, a stale sender) in most cases, though no parity code can detect a
//! well-formed FEC packet of another stream in all of them.
//!
//! # Output and latency
//!
//! Media leaves in sequence order. A packet that is present (received or
//! recovered) leaves as soon as everything before it has left. A missing
//! packet holds back the ones after it until it is recovered or its
//! deadline passes; then it is given up ([`Output::Lost`], counted in
//! `unrecoverable`) and the gap stays visible in the sequence numbers for a
//! jitterbuffer or depayloader downstream. The deadline is whichever comes
//! first of
//!
//! - `latency_ns` after the decoder learned the packet was missing (a later
//!   packet, or an FEC packet protecting it, arrived): the caller passes a
//!   monotonic `now` in nanoseconds with every call, [`Decoder::poll`]
//!   releases what is due, and [`Decoder::next_deadline`] says when to poll;
//! - `latency_packets` (or `latency_matrices` x L x D) newer media packets
//!   having arrived. Until a column FEC packet has told D, D is taken as
//!   the largest the standard allows with the L of the row FEC
//!   (min(20, 100 / L)), and L x D as 100 before any FEC packet.
//!
//! Received packets stay available for recovery for [`HISTORY`] packets
//! after they left, which covers every group of an L x D <= 100 matrix.
//!
//! Output begins one latency period after the first media packet (by the
//! same time or packet limit): earlier packets that arrive reordered in
//! that period move the start back, so the stream starts at the lowest
//! sequence number received. After that, packets pass without delay
//! unless one before them is missing.
//!
//! # Robustness
//!
//! Sequence numbers are extended past 16 bits around the newest media
//! packet, so wraps are transparent. Duplicates are counted and dropped.
//! An SSRC change, a jump of more than [`MAX_DROPOUT`] packets, or
//! [`MAX_MISORDER_RUN`] media packets in a row that all arrive after their
//! place in the output restart the decoder (what it holds leaves first).
//! FEC packets that arrive before any media are held (up to 256).

use std::collections::VecDeque;
use std::fmt;

use super::header::{
    parse_fec_packet, FecDirection, FecError, FEC_PACKET_HEADER_LEN, MAX_MATRIX, MAX_ROWS,
};
use super::rtp::{seq_of, ssrc_of, ts_of, validate_layout, RtpError, RtpHeader, RTP_HEADER_LEN};
use super::xor::xor_into;

/// How long the decoder keeps packets that already left, in packets. A group
/// spans at most `(D - 1) x L + 1 <= 100` packets (ST 2022-1 L x D <= 100).
pub const HISTORY: u64 = 128;

/// An FEC packet protecting packets more than this far past the newest
/// media packet is ignored, packets.
pub const FEC_AHEAD: u64 = 1024;

/// A media packet this far past the newest restarts the decoder (a new
/// sender or a long outage; RFC 3550 A.1 `MAX_DROPOUT`), packets.
pub const MAX_DROPOUT: u64 = 3000;

/// This many media packets in a row that are all late or duplicates also
/// restart it (a sender restarting at a lower sequence number).
pub const MAX_MISORDER_RUN: u32 = 32;

/// Largest window the decoder holds, packets (half the sequence space).
pub const MAX_WINDOW: u64 = 1 << 15;

/// FEC packets kept while no media packet has arrived yet.
const MAX_PRESTART_FEC: usize = 256;

/// Matrix size assumed before any FEC packet told L and D, packets.
const DEFAULT_MATRIX: u64 = MAX_MATRIX as u64;

/// Extended sequence numbers start here so that they never go below zero.
const EXT_ORIGIN: u64 = 1 << 32;

/// Access to the bytes of a packet the decoder keeps.
///
/// Implemented for every `AsRef<[u8]> + Clone` type (`Vec<u8>`,
/// `Arc<[u8]>`, ...). An element can implement it for a wrapper around
/// `gst::Buffer` whose `Bytes` is a readable map, so media passes through
/// without a copy; clones are taken when a packet leaves while the decoder
/// still needs it for recovery.
pub trait PacketBytes: Clone {
    /// A view of the bytes.
    type Bytes<'a>: AsRef<[u8]>
    where
        Self: 'a;
    /// The packet's bytes (the whole RTP packet).
    fn bytes(&self) -> Self::Bytes<'_>;
}

impl<T: AsRef<[u8]> + Clone> PacketBytes for T {
    type Bytes<'a>
        = &'a [u8]
    where
        T: 'a;
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.as_ref()
    }
}

/// Decoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Give up a missing packet this many nanoseconds after it was known to
    /// be missing. `None`: no time limit.
    pub latency_ns: Option<u64>,
    /// Give up a missing packet once this many L x D matrices of newer
    /// media arrived (L x D as learned from FEC; D = min(20, 100 / L)
    /// while only row FEC has been seen, L x D = 100 before any FEC).
    pub latency_matrices: Option<u32>,
    /// Give up a missing packet once this many newer media packets arrived.
    pub latency_packets: Option<u32>,
    /// Also release packets that arrive, or are recovered, after their
    /// place in the output was given up ([`Output::Late`],
    /// [`Output::LateRecovered`]), out of sequence order, for a
    /// jitterbuffer or retransmission downstream to slot in. Off: they are
    /// only counted (`late`, `late_recovered`) and kept to help recover
    /// their neighbours.
    pub pass_late: bool,
}

impl Default for DecoderConfig {
    /// Two matrices: enough for column FEC sent staggered over the next
    /// matrix, as FFmpeg and GStreamer do.
    fn default() -> Self {
        DecoderConfig {
            latency_ns: None,
            latency_matrices: Some(2),
            latency_packets: None,
            pass_late: false,
        }
    }
}

/// What the decoder releases, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<P> {
    /// A media packet as it was received.
    Media(P),
    /// A media packet rebuilt from FEC (a complete RTP packet).
    Recovered(Vec<u8>),
    /// A packet given up at its deadline; nothing is sent for it.
    Lost {
        /// Its RTP sequence number.
        seq: u16,
    },
    /// With [`DecoderConfig::pass_late`]: a media packet that arrived after
    /// it was given up, out of sequence order.
    Late(P),
    /// With [`DecoderConfig::pass_late`]: a packet rebuilt after it was
    /// given up, out of sequence order.
    LateRecovered(Vec<u8>),
}

/// Decoder counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecoderStats {
    /// Media packets released as received.
    pub received: u64,
    /// Media packets released after recovery from FEC.
    pub recovered: u64,
    /// Media packets given up at their deadline.
    pub unrecoverable: u64,
    /// Media packets that arrived after their place in the output passed
    /// (given up, or before the first packet).
    pub late: u64,
    /// Recoveries that completed after the packet had been given up.
    pub late_recovered: u64,
    /// Media packets that arrived when already present.
    pub duplicate: u64,
    /// Malformed packets ignored: media that is not RTP, FEC packets that
    /// fail [`parse_fec_packet`].
    pub malformed: u64,
    /// FEC packets accepted.
    pub fec_received: u64,
    /// FEC packets that repeated one still stored.
    pub fec_duplicate: u64,
    /// Well-formed FEC packets that could not be used: protecting a packet
    /// given up and no longer kept, too far ahead of the media, or
    /// overlapping a different stored FEC packet of the same direction.
    /// (FEC arriving after all its packets arrived and left is not
    /// counted: it was not needed.)
    pub fec_unusable: u64,
    /// Recoveries dropped as inconsistent (see the module documentation).
    pub recovery_rejected: u64,
    /// Received packets that differ from an earlier recovery of the same
    /// sequence number (should stay 0).
    pub recovery_mismatch: u64,
    /// Restarts after a sequence jump, a run of late packets or an SSRC
    /// change.
    pub resyncs: u64,
}

#[derive(Debug, Clone)]
enum Data<P> {
    Empty,
    Received(P),
    Recovered(Box<[u8]>),
}

#[derive(Debug, Clone)]
struct Slot<P> {
    data: Data<P>,
    /// When the decoder learned of this sequence number, ns.
    known_ns: u64,
    /// Stored row / column FEC protecting this packet: slab index + 1.
    row_fec: u32,
    col_fec: u32,
}

/// What the decoder keeps of an FEC header.
#[derive(Debug, Clone, Copy)]
struct FecMeta {
    direction: FecDirection,
    sn_base: u16,
    step: u64,
    count: u32,
    length_recovery: u16,
    pt_recovery: u8,
    ts_recovery: u32,
    /// P, X, CC recovery from the FEC packet's RTP header byte 0.
    pxcc: u8,
    /// M recovery from the FEC packet's RTP header.
    marker: bool,
}

impl<P> Default for Slot<P> {
    fn default() -> Self {
        Slot {
            data: Data::Empty,
            known_ns: 0,
            row_fec: 0,
            col_fec: 0,
        }
    }
}

#[derive(Debug)]
struct FecEntry<P> {
    packet: P,
    /// Extended sequence number of the first protected packet.
    first: u64,
    /// Protected packets not present.
    missing: u32,
    meta: FecMeta,
}

impl<P> FecEntry<P> {
    #[inline]
    fn seqs(&self) -> impl Iterator<Item = u64> + use<P> {
        let (first, step) = (self.first, self.meta.step);
        (0..u64::from(self.meta.count)).map(move |i| first + i * step)
    }
}

/// ST 2022-1 FEC decoder for one media stream and its row and column FEC
/// streams. `P` is the packet type kept for output (see [`PacketBytes`]).
#[derive(Debug)]
pub struct Decoder<P: PacketBytes> {
    cfg: DecoderConfig,
    ring: Vec<Slot<P>>,
    mask: u64,
    started: bool,
    /// Output has begun (see [`Decoder::push_media`]: the first latency
    /// period after a start waits for reordered earlier packets).
    primed: bool,
    /// When the stream started, ns.
    begin_ns: u64,
    /// Window `[base, end)` of extended sequence numbers in `ring`; packets
    /// below `next_out` have left.
    base: u64,
    next_out: u64,
    end: u64,
    /// First sequence number released after a start.
    start: u64,
    /// Newest media packet received.
    max_media: u64,
    ssrc: u32,
    columns: Option<u8>,
    rows: Option<u8>,
    fecs: Vec<Option<FecEntry<P>>>,
    free: Vec<u32>,
    work: Vec<u32>,
    /// FEC packets whose one missing packet is newer than the newest
    /// media packet: not known to be lost yet (see [`Self::run_work`]).
    deferred: Vec<u32>,
    /// Packets given up lately, oldest first (at most [`HISTORY`] x 4).
    lost_recent: VecDeque<u64>,
    /// Packets rebuilt after they were given up, for the next output
    /// ([`DecoderConfig::pass_late`]).
    late_out: Vec<Vec<u8>>,
    prestart_fec: VecDeque<(u64, P)>,
    misorder_run: u32,
    /// Packets (slots) put in front of the start since the decoder was
    /// made, see [`Decoder::prepended`].
    prepended: u64,
    stats: DecoderStats,
}

impl<P: PacketBytes> Decoder<P> {
    /// A new decoder.
    pub fn new(cfg: DecoderConfig) -> Self {
        let cap = 256usize;
        Decoder {
            cfg,
            ring: (0..cap).map(|_| Slot::default()).collect(),
            mask: cap as u64 - 1,
            started: false,
            primed: false,
            begin_ns: 0,
            base: 0,
            next_out: 0,
            end: 0,
            start: 0,
            max_media: 0,
            ssrc: 0,
            columns: None,
            rows: None,
            fecs: Vec::new(),
            free: Vec::new(),
            work: Vec::new(),
            deferred: Vec::new(),
            late_out: Vec::new(),
            lost_recent: VecDeque::new(),
            prestart_fec: VecDeque::new(),
            misorder_run: 0,
            prepended: 0,
            stats: DecoderStats::default(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Changes the latency; takes effect at the next call.
    pub fn set_config(&mut self, cfg: DecoderConfig) {
        self.cfg = cfg;
    }

    /// Counters.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// L (columns) and D (rows) as last seen in FEC headers.
    pub fn geometry(&self) -> (Option<u8>, Option<u8>) {
        (self.columns, self.rows)
    }

    /// Packets waiting to leave (present or missing).
    pub fn pending(&self) -> u64 {
        if self.started {
            self.end - self.next_out
        } else {
            0
        }
    }

    /// Packets, present or missing, put in front of the first one before
    /// any had left, since the decoder was made (never reset): a packet
    /// earlier in sequence than the first one received moves the start
    /// back, and that many more packets now come before what
    /// [`Decoder::pending`] counted. A caller that places its own items
    /// (serialized events) by count moves them back by the difference.
    pub fn prepended(&self) -> u64 {
        self.prepended
    }

    /// Adds a media packet received at `now` (monotonic, ns) and appends
    /// what can leave to `out`. A packet that is not RTP version 2 is
    /// counted in `malformed` and dropped.
    pub fn push_media(
        &mut self,
        now: u64,
        packet: P,
        out: &mut Vec<Output<P>>,
    ) -> Result<(), RtpError> {
        let (seq, ssrc) = {
            let b = packet.bytes();
            let b = b.as_ref();
            if let Err(e) = RtpHeader::parse(b) {
                self.stats.malformed += 1;
                return Err(e);
            }
            if b.len() - RTP_HEADER_LEN > usize::from(u16::MAX) {
                self.stats.malformed += 1;
                return Err(RtpError::TooLong { len: b.len() });
            }
            (seq_of(b), ssrc_of(b))
        };

        if self.started && ssrc != self.ssrc {
            self.resync(out);
        }
        if !self.started {
            self.begin(now, seq, ssrc);
        }
        let mut ext = self.unwrap(seq);
        if ext > self.max_media + MAX_DROPOUT {
            self.resync(out);
            self.begin(now, seq, ssrc);
            ext = self.unwrap(seq);
        }

        if ext < self.base && !self.primed && self.max_media - ext < MAX_DROPOUT {
            // Nothing has left yet: an earlier packet moves the start back.
            self.extend_back(ext, now);
        }
        if ext < self.base {
            // Too old to be of any use.
            if self.misordered() {
                self.resync(out);
                return self.push_media(now, packet, out);
            }
            self.stats.late += 1;
            if self.cfg.pass_late {
                out.push(Output::Late(packet));
            }
            return Ok(());
        }
        if ext >= self.end {
            self.extend(ext + 1, now, out);
        }
        let idx = self.idx(ext);
        let duplicate = match &self.ring[idx].data {
            Data::Empty => false,
            Data::Received(_) => true,
            Data::Recovered(r) => {
                if r.as_ref() != packet.bytes().as_ref() {
                    self.stats.recovery_mismatch += 1;
                }
                true
            }
        };
        if duplicate {
            if ext < self.next_out && self.misordered() {
                self.resync(out);
                return self.push_media(now, packet, out);
            }
            self.stats.duplicate += 1;
            return Ok(());
        }
        if ext < self.next_out {
            // Given up already; kept to help recover its neighbours.
            if self.misordered() {
                self.resync(out);
                return self.push_media(now, packet, out);
            }
            self.stats.late += 1;
            if self.cfg.pass_late {
                out.push(Output::Late(packet.clone()));
            }
        } else {
            self.misorder_run = 0;
        }
        self.ring[idx].data = Data::Received(packet);
        self.max_media = self.max_media.max(ext);
        self.filled(ext);
        // Newer media: deferred recoveries may now be of packets known lost.
        self.work.append(&mut self.deferred);
        self.run_work();
        self.release(now, out);
        Ok(())
    }

    /// Adds an FEC packet (row or column, told apart by its `D` bit)
    /// received at `now` and appends what can leave to `out`. A malformed
    /// packet is counted in `malformed` and dropped.
    pub fn push_fec(
        &mut self,
        now: u64,
        packet: P,
        out: &mut Vec<Output<P>>,
    ) -> Result<(), FecError> {
        self.accept_fec(now, packet, out)?;
        if self.started {
            self.run_work();
            self.release(now, out);
        }
        Ok(())
    }

    /// Releases what is due at `now`: missing packets whose deadline passed
    /// are given up, and what follows them leaves.
    pub fn poll(&mut self, now: u64, out: &mut Vec<Output<P>>) {
        if self.started {
            // No media for a while: what is deferred is lost, not in flight.
            self.run_deferred();
            self.release(now, out);
        }
    }

    /// When the first missing packet is due to be given up (ns), if the
    /// time limit applies to it.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.started || self.next_out >= self.end {
            return None;
        }
        if !self.primed {
            return self.cfg.latency_ns.map(|l| self.begin_ns.saturating_add(l));
        }
        let slot = &self.ring[self.idx(self.next_out)];
        match slot.data {
            Data::Empty => self.cfg.latency_ns.map(|l| slot.known_ns.saturating_add(l)),
            _ => None,
        }
    }

    /// Releases everything held, giving up what is missing (end of stream),
    /// and forgets the stream: the next packet starts afresh.
    pub fn drain(&mut self, out: &mut Vec<Output<P>>) {
        if self.started {
            self.run_deferred();
            out.extend(self.late_out.drain(..).map(Output::LateRecovered));
            while self.next_out < self.end {
                self.release_head(out);
            }
            self.prestart_fec.clear();
        }
        self.clear();
    }

    /// Forgets everything without output (flush).
    pub fn reset(&mut self) {
        self.clear();
        self.prestart_fec.clear();
    }

    // ----------------------------------------------------------------------

    #[inline]
    fn idx(&self, ext: u64) -> usize {
        (ext & self.mask) as usize
    }

    /// Extended sequence number of `seq`, the one nearest the newest media.
    #[inline]
    fn unwrap(&self, seq: u16) -> u64 {
        let delta = i64::from(seq.wrapping_sub(self.max_media as u16) as i16);
        (self.max_media as i64 + delta) as u64
    }

    fn begin(&mut self, now: u64, seq: u16, ssrc: u32) {
        let ext = EXT_ORIGIN + u64::from(seq);
        self.started = true;
        self.primed = false;
        self.begin_ns = now;
        self.base = ext;
        self.next_out = ext;
        self.end = ext;
        self.start = ext;
        self.max_media = ext;
        self.ssrc = ssrc;
        self.misorder_run = 0;
        // FEC packets that came before the first media packet. Output has
        // not begun, so nothing can leave yet.
        self.retry_held_fec();
        self.run_work();
    }

    /// Counts a media packet that arrived after its place in the output;
    /// true when so many came in a row that the sender must have restarted
    /// below the window.
    fn misordered(&mut self) -> bool {
        self.misorder_run += 1;
        self.misorder_run >= MAX_MISORDER_RUN
    }

    /// Lets everything held leave, giving up what is missing, and stops.
    fn resync(&mut self, out: &mut Vec<Output<P>>) {
        if self.started {
            self.stats.resyncs += 1;
        }
        self.drain(out);
    }

    /// Parses an FEC packet and stores it (or holds it until the first
    /// media packet).
    fn accept_fec(
        &mut self,
        now: u64,
        packet: P,
        out: &mut Vec<Output<P>>,
    ) -> Result<(), FecError> {
        let meta = {
            let b = packet.bytes();
            let p = match parse_fec_packet(b.as_ref()) {
                Ok(p) => p,
                Err(e) => {
                    self.stats.malformed += 1;
                    return Err(e);
                }
            };
            self.columns = Some(p.fec.columns());
            if let Some(d) = p.fec.rows() {
                self.rows = Some(d);
            }
            FecMeta {
                direction: p.fec.direction,
                sn_base: p.fec.sn_base_low,
                step: match p.fec.direction {
                    FecDirection::Row => 1,
                    FecDirection::Column => u64::from(p.fec.offset),
                },
                count: u32::from(p.fec.na),
                length_recovery: p.fec.length_recovery,
                pt_recovery: p.fec.pt_recovery,
                ts_recovery: p.fec.ts_recovery,
                pxcc: p.pxcc_recovery(),
                marker: p.rtp.marker,
            }
        };
        if !self.started {
            self.hold_fec(now, packet);
            return Ok(());
        }
        let first = self.unwrap(meta.sn_base);
        if !self.primed && first < self.base && self.max_media - first < MAX_DROPOUT {
            // Protects packets before the first media packet: keep it in
            // case they arrive (reordered) before output begins.
            self.hold_fec(now, packet);
            return Ok(());
        }
        self.add_fec(
            now,
            FecEntry {
                packet,
                first,
                missing: 0,
                meta,
            },
            out,
        );
        Ok(())
    }

    fn clear(&mut self) {
        for s in &mut self.ring {
            *s = Slot::default();
        }
        self.fecs.clear();
        self.free.clear();
        self.work.clear();
        self.deferred.clear();
        self.late_out.clear();
        self.lost_recent.clear();
        self.started = false;
        self.misorder_run = 0;
    }

    /// Makes the window reach `new_end` (exclusive).
    fn extend(&mut self, new_end: u64, now: u64, out: &mut Vec<Output<P>>) {
        if new_end <= self.end {
            return;
        }
        // Too long a window (a time limit far above the packet rate): the
        // oldest packets leave, missing ones given up.
        while new_end - self.base > MAX_WINDOW {
            if self.next_out < self.end {
                self.release_head(out);
                let b = self.base + 1;
                self.evict_to(b);
            } else if self.base < self.end {
                let e = self.end;
                self.evict_to(e);
            } else {
                // Nothing held. Unreachable while MAX_DROPOUT and FEC_AHEAD
                // are far below MAX_WINDOW.
                self.base = new_end - MAX_WINDOW;
                self.next_out = self.base;
                self.end = self.base;
            }
        }
        let need = new_end - self.base;
        if need > self.ring.len() as u64 {
            self.grow(need.next_power_of_two());
        }
        for s in self.end..new_end {
            let i = self.idx(s);
            self.ring[i] = Slot {
                known_ns: now,
                ..Slot::default()
            };
        }
        self.end = new_end;
    }

    /// Keeps an FEC packet for later: before the first media packet, or
    /// protecting packets before the start while output has not begun.
    fn hold_fec(&mut self, now: u64, packet: P) {
        if self.prestart_fec.len() == MAX_PRESTART_FEC {
            self.prestart_fec.pop_front();
            self.stats.fec_unusable += 1;
        }
        self.prestart_fec.push_back((now, packet));
    }

    /// Retries the FEC packets held by [`Self::hold_fec`].
    fn retry_held_fec(&mut self) {
        let held = std::mem::take(&mut self.prestart_fec);
        let mut sink = Vec::new();
        for (t, p) in held {
            let _ = self.accept_fec(t, p, &mut sink);
        }
        debug_assert!(sink.is_empty());
    }

    /// Moves the start of a stream that has not begun output back to `ext`.
    fn extend_back(&mut self, ext: u64, now: u64) {
        let need = self.end - ext;
        if need > MAX_WINDOW {
            return;
        }
        if need > self.ring.len() as u64 {
            self.grow(need.next_power_of_two());
        }
        for s in ext..self.base {
            let i = self.idx(s);
            self.ring[i] = Slot {
                known_ns: now,
                ..Slot::default()
            };
        }
        self.prepended += self.base - ext;
        self.base = ext;
        self.next_out = ext;
        self.start = ext;
        self.retry_held_fec();
    }

    fn grow(&mut self, cap: u64) {
        let mut ring: Vec<Slot<P>> = (0..cap).map(|_| Slot::default()).collect();
        let new_mask = cap - 1;
        for s in self.base..self.end {
            let old = (s & self.mask) as usize;
            ring[(s & new_mask) as usize] = std::mem::take(&mut self.ring[old]);
        }
        self.ring = ring;
        self.mask = new_mask;
    }

    /// Forgets packets below `new_base`, and FEC packets that needed them.
    fn evict_to(&mut self, new_base: u64) {
        while self.base < new_base {
            let i = self.idx(self.base);
            let (r, c) = (self.ring[i].row_fec, self.ring[i].col_fec);
            for id in [r, c] {
                if id != 0 {
                    self.remove_fec(id - 1);
                }
            }
            self.ring[i] = Slot::default();
            self.base += 1;
        }
    }

    /// Whether the missing packet `ext` is due to be given up.
    ///
    /// While only row FEC has been seen (L known, D not), a missing packet
    /// may still need column FEC, which comes at the end of its matrix or,
    /// staggered, during the next one: the matrix is taken as the largest
    /// the standard allows for this L (D = min(20, 100 / L)).
    #[inline]
    fn expired(&self, ext: u64, known_ns: u64, now: u64) -> bool {
        let matrix = match (self.columns, self.rows) {
            (Some(l), Some(d)) => u64::from(l) * u64::from(d),
            (Some(l), None) => {
                let l = u64::from(l.max(1));
                l * u64::from(MAX_ROWS).min(DEFAULT_MATRIX / l)
            }
            _ => DEFAULT_MATRIX,
        };
        self.due(ext, known_ns, now, matrix)
    }

    /// Whether output may begin: one latency period after the first media
    /// packet, for reordered earlier packets to arrive. While D is unknown
    /// a matrix counts as one row (L packets), so that output does not wait
    /// for column FEC that may never come; losses are held by
    /// [`Self::expired`] after that.
    fn start_due(&self, now: u64) -> bool {
        let matrix = match (self.columns, self.rows) {
            (Some(l), Some(d)) => u64::from(l) * u64::from(d),
            (Some(l), None) => u64::from(l),
            _ => DEFAULT_MATRIX,
        };
        self.due(self.start, self.begin_ns, now, matrix)
    }

    /// The deadline test: `latency_ns` after `known_ns`, or the packet limit
    /// (`latency_packets`, or `latency_matrices` x `matrix` packets) of newer
    /// media after `ext`.
    #[inline]
    fn due(&self, ext: u64, known_ns: u64, now: u64, matrix: u64) -> bool {
        if self
            .cfg
            .latency_ns
            .is_some_and(|l| now.saturating_sub(known_ns) >= l)
        {
            return true;
        }
        let mut limit: Option<u64> = self.cfg.latency_packets.map(u64::from);
        if let Some(m) = self.cfg.latency_matrices {
            let m = u64::from(m) * matrix;
            limit = Some(limit.map_or(m, |p| p.min(m)));
        }
        limit.is_some_and(|n| self.max_media.saturating_sub(ext) >= n)
    }

    /// Releases the head of the window whatever it holds.
    fn release_head(&mut self, out: &mut Vec<Output<P>>) {
        // Output has begun: the start can no longer move back.
        self.primed = true;
        let i = self.idx(self.next_out);
        match &self.ring[i].data {
            Data::Received(p) => {
                out.push(Output::Media(p.clone()));
                self.stats.received += 1;
            }
            Data::Recovered(b) => {
                out.push(Output::Recovered(b.to_vec()));
                self.stats.recovered += 1;
            }
            Data::Empty => {
                out.push(Output::Lost {
                    seq: self.next_out as u16,
                });
                self.stats.unrecoverable += 1;
                if self.lost_recent.len() as u64 == 4 * HISTORY {
                    self.lost_recent.pop_front();
                }
                self.lost_recent.push_back(self.next_out);
            }
        }
        self.next_out += 1;
    }

    fn release(&mut self, now: u64, out: &mut Vec<Output<P>>) {
        out.extend(self.late_out.drain(..).map(Output::LateRecovered));
        if !self.primed {
            if !self.start_due(now) {
                return;
            }
            self.primed = true;
            // FEC packets for packets before the start are of no use now.
            self.stats.fec_unusable += self.prestart_fec.len() as u64;
            self.prestart_fec.clear();
        }
        while self.next_out < self.end {
            let slot = &self.ring[self.idx(self.next_out)];
            if matches!(slot.data, Data::Empty) && !self.expired(self.next_out, slot.known_ns, now)
            {
                break;
            }
            self.release_head(out);
        }
        if self.next_out > self.base + HISTORY {
            self.evict_to(self.next_out - HISTORY);
        }
    }

    fn alloc_fec(&mut self, e: FecEntry<P>) -> u32 {
        if let Some(id) = self.free.pop() {
            self.fecs[id as usize] = Some(e);
            id
        } else {
            self.fecs.push(Some(e));
            (self.fecs.len() - 1) as u32
        }
    }

    fn remove_fec(&mut self, id: u32) {
        let Some(e) = self.fecs[id as usize].take() else {
            return;
        };
        for s in e.seqs() {
            if s < self.base || s >= self.end {
                continue;
            }
            let i = self.idx(s);
            let slot = &mut self.ring[i];
            let r = match e.meta.direction {
                FecDirection::Row => &mut slot.row_fec,
                FecDirection::Column => &mut slot.col_fec,
            };
            if *r == id + 1 {
                *r = 0;
            }
        }
        self.free.push(id);
    }

    fn add_fec(&mut self, now: u64, e: FecEntry<P>, out: &mut Vec<Output<P>>) {
        let last = e.first + e.meta.step * u64::from(e.meta.count - 1);
        if e.first < self.base {
            // Protects packets no longer kept (staggered column FEC of a
            // column that arrived whole comes after its first packets left
            // the history): of no use, and of no interest unless one of
            // them was given up.
            if e.seqs().any(|s| self.given_up(s)) {
                self.stats.fec_unusable += 1;
            }
            return;
        }
        if last > self.max_media + FEC_AHEAD {
            self.stats.fec_unusable += 1;
            return;
        }
        if last >= self.end {
            self.extend(last + 1, now, out);
            if e.first < self.base {
                self.stats.fec_unusable += 1;
                return;
            }
        }
        let mut missing = 0;
        for s in e.seqs() {
            let slot = &self.ring[self.idx(s)];
            let r = match e.meta.direction {
                FecDirection::Row => slot.row_fec,
                FecDirection::Column => slot.col_fec,
            };
            if r != 0 {
                let other = self.fecs[(r - 1) as usize].as_ref().expect("live FEC");
                if other.first == e.first
                    && other.meta.step == e.meta.step
                    && other.meta.count == e.meta.count
                {
                    self.stats.fec_duplicate += 1;
                } else {
                    self.stats.fec_unusable += 1;
                }
                return;
            }
            if matches!(slot.data, Data::Empty) {
                missing += 1;
            }
        }
        self.stats.fec_received += 1;
        if missing == 0 {
            return;
        }
        let direction = e.meta.direction;
        let seqs = e.seqs();
        let id = self.alloc_fec(FecEntry { missing, ..e });
        for s in seqs {
            let i = self.idx(s);
            match direction {
                FecDirection::Row => self.ring[i].row_fec = id + 1,
                FecDirection::Column => self.ring[i].col_fec = id + 1,
            }
        }
        if missing == 1 {
            self.work.push(id);
        }
    }

    /// Whether `ext` left the window as given up (and was not recovered
    /// after that while still kept).
    fn given_up(&self, ext: u64) -> bool {
        if ext >= self.base && ext < self.end {
            return ext < self.next_out && matches!(self.ring[self.idx(ext)].data, Data::Empty);
        }
        self.lost_recent.iter().rev().any(|&l| l == ext)
    }

    /// Packet `ext` became present: its FEC packets miss one fewer.
    fn filled(&mut self, ext: u64) {
        let i = self.idx(ext);
        let (r, c) = (self.ring[i].row_fec, self.ring[i].col_fec);
        for id in [r, c] {
            if id == 0 {
                continue;
            }
            let id = id - 1;
            let e = self.fecs[id as usize].as_mut().expect("live FEC");
            e.missing -= 1;
            match e.missing {
                0 => self.remove_fec(id),
                1 => self.work.push(id),
                _ => {}
            }
        }
    }

    /// Rebuilds the missing packet of every FEC packet in `work` that
    /// misses exactly one, and of those it completes in turn.
    ///
    /// A missing packet newer than the newest media packet is not known to
    /// be lost: media and FEC arrive on different sockets, and the FEC of a
    /// row often comes before the row's last packet. Its recovery is
    /// deferred until newer media arrives ([`Self::push_media`]), a
    /// deadline passes ([`Self::poll`]) or the stream ends
    /// ([`Self::drain`]); when the packet itself arrives first, nothing is
    /// rebuilt, and `recovered` counts only packets that were lost.
    fn run_work(&mut self) {
        self.run_work_inner(false);
    }

    /// Runs the deferred recoveries as well.
    fn run_deferred(&mut self) {
        self.work.append(&mut self.deferred);
        self.run_work_inner(true);
    }

    fn run_work_inner(&mut self, force: bool) {
        while let Some(id) = self.work.pop() {
            let Some(e) = self.fecs[id as usize].as_ref() else {
                continue;
            };
            if e.missing != 1 {
                continue;
            }
            let Some(m) = e
                .seqs()
                .find(|&s| matches!(self.ring[self.idx(s)].data, Data::Empty))
            else {
                continue;
            };
            if m > self.max_media && !force {
                self.deferred.push(id);
                continue;
            }
            let rebuilt = self.rebuild(e, m);
            self.remove_fec(id);
            match rebuilt {
                Some(packet) => {
                    if m < self.next_out {
                        self.stats.late_recovered += 1;
                        if self.cfg.pass_late {
                            self.late_out.push(packet.clone());
                        }
                    }
                    let i = self.idx(m);
                    self.ring[i].data = Data::Recovered(packet.into_boxed_slice());
                    self.filled(m);
                }
                None => self.stats.recovery_rejected += 1,
            }
        }
    }

    /// RFC 2733 8.1: rebuilds packet `m` from FEC entry `e` and the other
    /// packets it protects, or `None` if the result is inconsistent.
    fn rebuild(&self, e: &FecEntry<P>, m: u64) -> Option<Vec<u8>> {
        let fec_bytes = e.packet.bytes();
        let fec_payload = &fec_bytes.as_ref()[FEC_PACKET_HEADER_LEN..];
        let mut out = vec![0u8; RTP_HEADER_LEN + fec_payload.len()];
        out[RTP_HEADER_LEN..].copy_from_slice(fec_payload);
        let mut length = e.meta.length_recovery;
        let mut pxcc = e.meta.pxcc;
        let mut marker = e.meta.marker;
        let mut pt = e.meta.pt_recovery;
        let mut ts = e.meta.ts_recovery;
        let mut ssrc: Option<u32> = None;
        for s in e.seqs() {
            if s == m {
                continue;
            }
            let slot = &self.ring[self.idx(s)];
            let held;
            let b: &[u8] = match &slot.data {
                Data::Received(p) => {
                    held = p.bytes();
                    held.as_ref()
                }
                Data::Recovered(r) => r,
                Data::Empty => return None,
            };
            let plen = b.len() - RTP_HEADER_LEN;
            if plen > fec_payload.len() {
                return None;
            }
            let s_ssrc = ssrc_of(b);
            if ssrc.is_some_and(|x| x != s_ssrc) {
                return None;
            }
            ssrc = Some(s_ssrc);
            length ^= plen as u16;
            pxcc ^= b[0] & 0x3f;
            marker ^= b[1] & 0x80 != 0;
            pt ^= b[1] & 0x7f;
            ts ^= ts_of(b);
            xor_into(&mut out[RTP_HEADER_LEN..], &b[RTP_HEADER_LEN..]);
        }
        let length = usize::from(length);
        if length > fec_payload.len() {
            return None;
        }
        if out[RTP_HEADER_LEN + length..].iter().any(|&x| x != 0) {
            return None;
        }
        out.truncate(RTP_HEADER_LEN + length);
        let header = RtpHeader {
            padding: pxcc & 0x20 != 0,
            extension: pxcc & 0x10 != 0,
            csrc_count: pxcc & 0x0f,
            marker,
            payload_type: pt & 0x7f,
            sequence_number: m as u16,
            timestamp: ts,
            ssrc: ssrc.unwrap_or(self.ssrc),
        };
        header.write((&mut out[..RTP_HEADER_LEN]).try_into().expect("12 bytes"));
        validate_layout(&out).ok()?;
        Some(out)
    }
}

impl fmt::Display for DecoderStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {} recovered {} unrecoverable {} late {} late-recovered {} duplicate {} \
             malformed {} fec {} fec-duplicate {} fec-unusable {} rejected {} mismatch {} resyncs {}",
            self.received,
            self.recovered,
            self.unrecoverable,
            self.late,
            self.late_recovered,
            self.duplicate,
            self.malformed,
            self.fec_received,
            self.fec_duplicate,
            self.fec_unusable,
            self.recovery_rejected,
            self.recovery_mismatch,
            self.resyncs
        )
    }
}
