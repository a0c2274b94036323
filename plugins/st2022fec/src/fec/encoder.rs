// SPDX-License-Identifier: MPL-2.0
//! ST 2022-1 encoder state: media RTP packets in, row and column FEC
//! packets out.
//!
//! Media packets are numbered into L x D matrices in arrival order, row by
//! row: packet `k` of a matrix is in row `k / L` and column `k % L`. A row
//! FEC packet protects the L packets of one row (offset 1, NA = L) and is
//! emitted right after the row's last packet. A column FEC packet protects
//! the D packets of one column (offset L, NA = D); it is emitted
//!
//! - [`ColumnLayout::BlockAligned`]: right after the column's last packet,
//!   so all L column packets of a matrix leave during its last row;
//! - [`ColumnLayout::Staggered`]: during the next matrix, column `c` after
//!   that matrix's packet `c x D`, which spreads them out against bursts.
//!   This is when FFmpeg's `prompeg` and GStreamer's `rtpst2022-1-fecenc`
//!   send them.
//!
//! The FEC covers each media packet from byte 12 on (RFC 2733 section 7),
//! zero-padded to the longest of its group; length recovery is the XOR of
//! those lengths. A sequence-number gap or an SSRC change on the input
//! starts a new matrix: a group that would protect packets this encoder
//! never saw cannot be sent.

use std::collections::VecDeque;
use std::fmt;

use super::header::{
    FecDirection, FecHeader, FEC_HEADER_LEN, FEC_PACKET_HEADER_LEN, MAX_COLUMNS, MAX_MATRIX,
    MAX_ROWS, MIN_ROWS, MIN_ROW_FEC_COLUMNS,
};
use super::rtp::{RtpError, RtpHeader, RTP_HEADER_LEN};
use super::xor::{xor_into, xor_into_both};

/// When column FEC packets are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ColumnLayout {
    /// Each column packet as soon as its column is complete (during the
    /// matrix's last row).
    #[default]
    BlockAligned,
    /// Column `c` of a matrix after packet `c x D` of the next matrix, as
    /// FFmpeg and GStreamer send them.
    Staggered,
}

/// Encoder settings. [`EncoderConfig::validate`] checks them against the
/// ST 2022-1 limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderConfig {
    /// L: columns, packets per row, 1 to 20 (4 to 20 with row FEC).
    pub columns: u8,
    /// D: rows, packets per column, 4 to 20. L x D at most 100.
    pub rows: u8,
    /// Send row FEC (ST 2022-1 "2D" needs both; "1D" is column only).
    pub row_fec: bool,
    /// Send column FEC.
    pub column_fec: bool,
    /// When column FEC packets go out.
    pub layout: ColumnLayout,
    /// RTP payload type of the FEC packets, 7 bits (96 by convention).
    pub pt: u8,
    /// SSRC of the column FEC stream (ST 2022-1 senders commonly use 0).
    pub column_ssrc: u32,
    /// SSRC of the row FEC stream.
    pub row_ssrc: u32,
    /// RTP sequence number of the first column FEC packet.
    pub column_seq: u16,
    /// RTP sequence number of the first row FEC packet.
    pub row_seq: u16,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            columns: 10,
            rows: 10,
            row_fec: true,
            column_fec: true,
            layout: ColumnLayout::BlockAligned,
            pt: 96,
            column_ssrc: 0,
            row_ssrc: 0,
            column_seq: 0,
            row_seq: 0,
        }
    }
}

/// An invalid [`EncoderConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// L outside 1..=20.
    Columns(u8),
    /// D outside 4..=20.
    Rows(u8),
    /// L x D above 100.
    MatrixTooLarge { columns: u8, rows: u8 },
    /// Row FEC with L below 4.
    RowFecColumns(u8),
    /// PT above 127.
    PayloadType(u8),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Columns(l) => write!(f, "columns (L) {l} outside 1..=20"),
            ConfigError::Rows(d) => write!(f, "rows (D) {d} outside 4..=20"),
            ConfigError::MatrixTooLarge { columns, rows } => {
                write!(f, "columns x rows = {columns}x{rows} exceeds 100")
            }
            ConfigError::RowFecColumns(l) => {
                write!(f, "row FEC needs at least 4 columns (L), got {l}")
            }
            ConfigError::PayloadType(pt) => write!(f, "payload type {pt} above 127"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl EncoderConfig {
    /// Checks the ST 2022-1 limits: L 1..=20, D 4..=20, L x D <= 100, and
    /// L >= 4 when row FEC is on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.columns == 0 || self.columns > MAX_COLUMNS {
            return Err(ConfigError::Columns(self.columns));
        }
        if self.rows < MIN_ROWS || self.rows > MAX_ROWS {
            return Err(ConfigError::Rows(self.rows));
        }
        if u16::from(self.columns) * u16::from(self.rows) > MAX_MATRIX {
            return Err(ConfigError::MatrixTooLarge {
                columns: self.columns,
                rows: self.rows,
            });
        }
        if self.row_fec && self.columns < MIN_ROW_FEC_COLUMNS {
            return Err(ConfigError::RowFecColumns(self.columns));
        }
        if self.pt > 0x7f {
            return Err(ConfigError::PayloadType(self.pt));
        }
        Ok(())
    }
}

/// One FEC packet produced by the encoder: a complete RTP packet (RTP
/// header, 16-byte FEC header, XOR payload), read with
/// [`FecOutput::packet`].
///
/// The packet sits at a small offset (0 to 63 bytes) in its allocation:
/// the encoder accumulates the XOR payload in place, on a 64-byte
/// (cache-line) boundary, and hands the same allocation out.
#[derive(Debug, Clone)]
pub struct FecOutput {
    /// Column packets go to `fec_0` (port P+2), row packets to `fec_1` (P+4).
    pub direction: FecDirection,
    buf: Vec<u8>,
    start: usize,
}

impl FecOutput {
    /// The RTP packet: RTP header + FEC header + XOR payload.
    pub fn packet(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The RTP packet in a `Vec` of its own (moves the bytes to the front
    /// of the allocation, no new allocation).
    pub fn into_packet(mut self) -> Vec<u8> {
        self.buf.drain(..self.start);
        self.buf
    }
}

impl PartialEq for FecOutput {
    fn eq(&self, other: &Self) -> bool {
        self.direction == other.direction && self.packet() == other.packet()
    }
}

impl Eq for FecOutput {}

/// Encoder counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncoderStats {
    /// Media packets accepted.
    pub media: u64,
    /// Column FEC packets emitted.
    pub column_packets: u64,
    /// Row FEC packets emitted.
    pub row_packets: u64,
    /// Matrices restarted because of a sequence gap or SSRC change.
    pub discontinuities: u64,
}

/// Largest media packet the encoder protects: the FEC packet must have a
/// 16-bit length recovery and fit in a UDP datagram.
pub const MAX_MEDIA_PACKET: usize = 65_507 - FEC_HEADER_LEN;

/// Alignment of the XOR payload in a group's buffer: one cache line.
const PAYLOAD_ALIGN: usize = 64;

/// XOR accumulator of one row or column.
#[derive(Debug, Default)]
struct Group {
    /// `[off bytes][28 header bytes][XOR of payloads]`; the headers are
    /// written when the packet is emitted, so the buffer is handed out
    /// without a copy.
    buf: Vec<u8>,
    /// 0..64: puts the XOR payload on a cache-line boundary. Unaligned,
    /// half of the XOR's 32-byte stores split a cache line, which cost the
    /// element about 20 to 35 ns per media packet (`bench/README.md`).
    off: usize,
    /// Packets added so far.
    n: u8,
    sn_base: u16,
    length: u16,
    pxcc: u8,
    marker: bool,
    pt: u8,
    ts: u32,
}

impl Group {
    /// Starts the group with its first packet, copying the payload.
    #[inline]
    fn start(&mut self, data: &[u8], h: &RtpHeader) {
        let payload = &data[RTP_HEADER_LEN..];
        self.buf.clear();
        // Room for the largest offset, so that the buffer does not move
        // (and lose its alignment) below.
        self.buf
            .reserve_exact(PAYLOAD_ALIGN - 1 + FEC_PACKET_HEADER_LEN + payload.len());
        let addr = self.buf.as_ptr() as usize + FEC_PACKET_HEADER_LEN;
        self.off = addr.next_multiple_of(PAYLOAD_ALIGN) - addr;
        self.buf.resize(self.off + FEC_PACKET_HEADER_LEN, 0);
        self.buf.extend_from_slice(payload);
        self.n = 1;
        self.sn_base = h.sequence_number;
        self.length = payload.len() as u16;
        self.pxcc = data[0] & 0x3f;
        self.marker = h.marker;
        self.pt = h.payload_type;
        self.ts = h.timestamp;
    }

    /// Adds the header fields of one more packet and makes room for its
    /// payload; the caller XORs the payload into [`Group::payload`].
    ///
    /// A packet longer than all before it in the group may move the buffer,
    /// which keeps the contents but not the alignment, for this group only.
    #[inline]
    fn add_fields(&mut self, data: &[u8], h: &RtpHeader) {
        let plen = data.len() - RTP_HEADER_LEN;
        if self.buf.len() < self.off + FEC_PACKET_HEADER_LEN + plen {
            self.buf.resize(self.off + FEC_PACKET_HEADER_LEN + plen, 0);
        }
        self.n += 1;
        self.length ^= plen as u16;
        self.pxcc ^= data[0] & 0x3f;
        self.marker ^= h.marker;
        self.pt ^= h.payload_type;
        self.ts ^= h.timestamp;
    }

    /// The XOR of the payloads so far.
    #[inline]
    fn payload(&mut self) -> &mut [u8] {
        &mut self.buf[self.off + FEC_PACKET_HEADER_LEN..]
    }

    /// Writes the RTP and FEC headers and hands the packet out; `next`
    /// (empty, any capacity) becomes the buffer of the next group.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        direction: FecDirection,
        offset: u8,
        pt: u8,
        seq: u16,
        ts: u32,
        ssrc: u32,
        next: Vec<u8>,
    ) -> FecOutput {
        let fec = FecHeader {
            sn_base_low: self.sn_base,
            length_recovery: self.length,
            e: true,
            pt_recovery: self.pt,
            mask: 0,
            ts_recovery: self.ts,
            x: false,
            direction,
            fec_type: 0,
            index: 0,
            offset,
            na: self.n,
            sn_base_ext: 0,
        };
        let rtp = RtpHeader {
            padding: self.pxcc & 0x20 != 0,
            extension: self.pxcc & 0x10 != 0,
            csrc_count: self.pxcc & 0x0f,
            marker: self.marker,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
        };
        let mut buf = std::mem::take(&mut self.buf);
        let head = &mut buf[self.off..self.off + FEC_PACKET_HEADER_LEN];
        rtp.write((&mut head[..RTP_HEADER_LEN]).try_into().expect("12 bytes"));
        head[RTP_HEADER_LEN..].copy_from_slice(&fec.to_bytes());
        self.n = 0;
        self.buf = next;
        FecOutput {
            direction,
            buf,
            start: self.off,
        }
    }
}

/// ST 2022-1 FEC encoder for one media stream.
#[derive(Debug)]
pub struct Encoder {
    cfg: EncoderConfig,
    row: Group,
    columns: Vec<Group>,
    /// Position of the next packet in the matrix, 0..L*D.
    pos: usize,
    /// Row FEC for the row in progress (the setting is sampled at row start).
    row_active: bool,
    /// Column FEC for the matrix in progress (sampled at matrix start).
    column_active: bool,
    /// Wanted settings, applied at the next row / matrix.
    want_row: bool,
    want_column: bool,
    /// Sequence number and SSRC the next media packet should have.
    expected: Option<(u16, u32)>,
    row_seq: u16,
    column_seq: u16,
    /// Media packets accepted since creation (index of the next one).
    count: u64,
    /// `count` at the start of the current matrix.
    matrix_start: u64,
    /// Staggered column packets waiting for their media packet index.
    queued: VecDeque<(u64, FecOutput)>,
    /// Buffers handed back by [`Encoder::recycle`], reused for new groups.
    spare: Vec<Vec<u8>>,
    last_ts: u32,
    stats: EncoderStats,
}

impl Encoder {
    /// A new encoder; fails if the configuration breaks an ST 2022-1 limit.
    pub fn new(cfg: EncoderConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let columns = (0..cfg.columns).map(|_| Group::default()).collect();
        Ok(Encoder {
            row: Group::default(),
            columns,
            pos: 0,
            row_active: cfg.row_fec,
            column_active: cfg.column_fec,
            want_row: cfg.row_fec,
            want_column: cfg.column_fec,
            expected: None,
            row_seq: cfg.row_seq,
            column_seq: cfg.column_seq,
            count: 0,
            matrix_start: 0,
            queued: VecDeque::new(),
            spare: Vec::new(),
            last_ts: 0,
            stats: EncoderStats::default(),
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> EncoderStats {
        self.stats
    }

    /// Turns row FEC on or off from the next row. Turning it on needs
    /// L >= 4 (ST 2022-1); otherwise the call is refused.
    pub fn set_row_fec(&mut self, on: bool) -> Result<(), ConfigError> {
        if on && self.cfg.columns < MIN_ROW_FEC_COLUMNS {
            return Err(ConfigError::RowFecColumns(self.cfg.columns));
        }
        self.want_row = on;
        self.cfg.row_fec = on;
        Ok(())
    }

    /// Turns column FEC on or off from the next matrix.
    pub fn set_column_fec(&mut self, on: bool) {
        self.want_column = on;
        self.cfg.column_fec = on;
    }

    /// Gives back an [`FecOutput`] once its bytes have been copied out, so
    /// that later FEC packets reuse the allocation. Optional; at most L + 1
    /// buffers are kept.
    pub fn recycle(&mut self, fec: FecOutput) {
        if self.spare.len() <= usize::from(self.cfg.columns) {
            let mut buf = fec.buf;
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// An empty buffer for a new group: a recycled one, or an unallocated
    /// one ([`Group::start`] sizes it).
    fn next_buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Sequence number the next column FEC packet will carry.
    pub fn next_column_seq(&self) -> u16 {
        self.column_seq
    }

    /// Sequence number the next row FEC packet will carry.
    pub fn next_row_seq(&self) -> u16 {
        self.row_seq
    }

    /// Adds one media RTP packet (in sequence order) and appends the FEC
    /// packets to send after it to `out`: the row packet of a completed
    /// row, column packets of completed columns (block-aligned) or due
    /// (staggered).
    ///
    /// Fails, leaving the state unchanged, if `media` is not RTP version 2
    /// or too long to protect.
    pub fn push(&mut self, media: &[u8], out: &mut Vec<FecOutput>) -> Result<(), RtpError> {
        let h = RtpHeader::parse(media)?;
        if media.len() > MAX_MEDIA_PACKET {
            return Err(RtpError::TooLong { len: media.len() });
        }
        match self.expected {
            Some((seq, ssrc)) if seq == h.sequence_number && ssrc == h.ssrc => {}
            Some(_) => {
                // A gap, a repeat or a new source: the groups in progress
                // protect packets we will not see. Start a new matrix.
                self.stats.discontinuities += 1;
                self.pos = 0;
                self.row.n = 0;
                for c in &mut self.columns {
                    c.n = 0;
                }
            }
            None => {}
        }
        self.expected = Some((h.sequence_number.wrapping_add(1), h.ssrc));

        let l = usize::from(self.cfg.columns);
        let d = usize::from(self.cfg.rows);
        if self.pos == 0 {
            self.column_active = self.want_column;
            self.matrix_start = self.count;
        }
        if self.pos.is_multiple_of(l) {
            self.row_active = self.want_row;
        }
        let col = self.pos % l;
        let row = self.pos / l;
        let payload = &media[RTP_HEADER_LEN..];

        let row_group = self.row_active.then_some(&mut self.row);
        let col_group = if self.column_active {
            Some(&mut self.columns[col])
        } else {
            None
        };
        match (row_group, col_group) {
            (Some(r), Some(c)) if r.n > 0 && c.n > 0 => {
                r.add_fields(media, &h);
                c.add_fields(media, &h);
                xor_into_both(r.payload(), c.payload(), payload);
            }
            (r, c) => {
                for g in [r, c].into_iter().flatten() {
                    if g.n == 0 {
                        g.start(media, &h);
                    } else {
                        g.add_fields(media, &h);
                        xor_into(g.payload(), payload);
                    }
                }
            }
        }

        self.last_ts = h.timestamp;
        let index = self.count;
        self.count += 1;
        self.stats.media += 1;

        if self.row_active && col == l - 1 && self.row.n > 0 {
            let next = self.next_buffer();
            let fec = self.row.finish(
                FecDirection::Row,
                1,
                self.cfg.pt,
                self.row_seq,
                h.timestamp,
                self.cfg.row_ssrc,
                next,
            );
            self.row_seq = self.row_seq.wrapping_add(1);
            self.stats.row_packets += 1;
            out.push(fec);
        }

        if self.column_active && row == d - 1 && self.columns[col].n > 0 {
            let seq = self.column_seq;
            self.column_seq = self.column_seq.wrapping_add(1);
            let next = self.next_buffer();
            let fec = self.columns[col].finish(
                FecDirection::Column,
                self.cfg.columns,
                self.cfg.pt,
                seq,
                h.timestamp,
                self.cfg.column_ssrc,
                next,
            );
            match self.cfg.layout {
                ColumnLayout::BlockAligned => {
                    self.stats.column_packets += 1;
                    out.push(fec);
                }
                ColumnLayout::Staggered => {
                    let due = self.matrix_start + (l * d) as u64 + (col * d) as u64;
                    self.queued.push_back((due, fec));
                }
            }
        }

        while self.queued.front().is_some_and(|(due, _)| *due <= index) {
            let (_, fec) = self.queued.pop_front().expect("front");
            self.emit_queued(fec, out);
        }

        self.pos += 1;
        if self.pos == l * d {
            self.pos = 0;
        }
        Ok(())
    }

    /// Sends the staggered column packets still waiting (at end of stream).
    /// Groups in progress are incomplete and dropped.
    pub fn flush(&mut self, out: &mut Vec<FecOutput>) {
        while let Some((_, fec)) = self.queued.pop_front() {
            self.emit_queued(fec, out);
        }
    }

    /// Forgets every group in progress and every queued packet (flush
    /// events); the FEC sequence numbers continue.
    pub fn reset(&mut self) {
        self.queued.clear();
        self.expected = None;
        self.pos = 0;
        self.row.n = 0;
        for c in &mut self.columns {
            c.n = 0;
        }
    }

    fn emit_queued(&mut self, mut fec: FecOutput, out: &mut Vec<FecOutput>) {
        // RFC 2733 6.1: the timestamp of the media at transmission time.
        let ts = fec.start + 4;
        fec.buf[ts..ts + 4].copy_from_slice(&self.last_ts.to_be_bytes());
        self.stats.column_packets += 1;
        out.push(fec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fec::header::parse_fec_packet;

    fn media(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = RtpHeader {
            payload_type: 33,
            sequence_number: seq,
            timestamp: ts,
            ssrc: 0x1234_5678,
            ..Default::default()
        }
        .to_bytes()
        .to_vec();
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn config_limits() {
        let ok = EncoderConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let c = |l, d, row| EncoderConfig {
            columns: l,
            rows: d,
            row_fec: row,
            ..Default::default()
        };
        assert_eq!(c(0, 10, false).validate(), Err(ConfigError::Columns(0)));
        assert_eq!(c(21, 4, false).validate(), Err(ConfigError::Columns(21)));
        assert_eq!(c(5, 3, false).validate(), Err(ConfigError::Rows(3)));
        assert_eq!(c(5, 21, false).validate(), Err(ConfigError::Rows(21)));
        assert_eq!(
            c(20, 6, false).validate(),
            Err(ConfigError::MatrixTooLarge {
                columns: 20,
                rows: 6
            })
        );
        assert_eq!(c(3, 4, true).validate(), Err(ConfigError::RowFecColumns(3)));
        assert_eq!(c(1, 20, false).validate(), Ok(()));
        assert_eq!(c(20, 5, true).validate(), Ok(()));
    }

    #[test]
    fn block_aligned_packets_and_headers() {
        let mut enc = Encoder::new(EncoderConfig {
            columns: 4,
            rows: 4,
            column_seq: 0xFFFF,
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::new();
        let mut all = Vec::new();
        for i in 0..16u16 {
            out.clear();
            let seq = 65530u16.wrapping_add(i);
            enc.push(&media(seq, 1000 + u32::from(i), &[i as u8; 188]), &mut out)
                .unwrap();
            let rows = out
                .iter()
                .filter(|o| o.direction == FecDirection::Row)
                .count();
            let cols = out.len() - rows;
            assert_eq!(rows, usize::from(i % 4 == 3), "packet {i}");
            assert_eq!(cols, usize::from(i >= 12), "packet {i}");
            all.append(&mut out);
        }
        let cols: Vec<_> = all
            .iter()
            .filter(|o| o.direction == FecDirection::Column)
            .collect();
        // Column FEC sequence numbers wrap.
        let seqs: Vec<u16> = cols
            .iter()
            .map(|o| u16::from_be_bytes([o.packet()[2], o.packet()[3]]))
            .collect();
        assert_eq!(seqs, [0xFFFF, 0, 1, 2]);
        for (c, o) in cols.iter().enumerate() {
            let p = parse_fec_packet(o.packet()).unwrap();
            assert_eq!(p.fec.direction, FecDirection::Column);
            assert_eq!(p.fec.sn_base_low, 65530u16.wrapping_add(c as u16));
            assert_eq!((p.fec.offset, p.fec.na), (4, 4));
            assert!(p.fec.e);
            // An even number of equal lengths and PTs XOR to zero.
            assert_eq!(p.fec.length_recovery, 0);
            assert_eq!(p.fec.pt_recovery, 0);
            let ts = (0..4).fold(0u32, |a, r| a ^ (1000 + c as u32 + 4 * r));
            assert_eq!(p.fec.ts_recovery, ts);
            let b = (0..4).fold(0u8, |a, r| a ^ (c as u8 + 4 * r));
            assert!(p.payload.iter().all(|&x| x == b));
            assert_eq!(p.rtp.payload_type, 96);
        }
        let rows: Vec<_> = all
            .iter()
            .filter(|o| o.direction == FecDirection::Row)
            .map(|o| parse_fec_packet(o.packet()).unwrap())
            .collect();
        assert_eq!(rows.len(), 4);
        for (r, p) in rows.iter().enumerate() {
            assert_eq!(p.fec.sn_base_low, 65530u16.wrapping_add(4 * r as u16));
            assert_eq!((p.fec.offset, p.fec.na), (1, 4));
            assert_eq!(p.rtp.sequence_number, r as u16);
        }
    }

    #[test]
    fn staggered_columns_follow_ffmpeg_schedule() {
        let (l, d) = (5u8, 4u8);
        let mut enc = Encoder::new(EncoderConfig {
            columns: l,
            rows: d,
            layout: ColumnLayout::Staggered,
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::new();
        let mut when = Vec::new();
        for i in 0..40u16 {
            out.clear();
            enc.push(&media(i, u32::from(i), &[1; 100]), &mut out)
                .unwrap();
            for o in out.iter().filter(|o| o.direction == FecDirection::Column) {
                let p = parse_fec_packet(o.packet()).unwrap();
                when.push((i, p.fec.sn_base_low));
                // The RTP timestamp is the media's at transmission.
                assert_eq!(p.rtp.timestamp, u32::from(i));
            }
        }
        // Column c of matrix 0 after packet 20 + c*4 (index c*D of matrix 1).
        assert_eq!(when, [(20, 0), (24, 1), (28, 2), (32, 3), (36, 4)]);
        out.clear();
        enc.flush(&mut out);
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn accumulators_are_cache_line_aligned_and_packets_start_at_their_offset() {
        let mut enc = Encoder::new(EncoderConfig::default()).unwrap();
        let mut out = Vec::new();
        let mut fec = Vec::new();
        // Two matrices of 1316-byte payloads: the second reuses recycled
        // buffers, whose offsets differ from the first allocations'.
        for i in 0..200u16 {
            enc.push(&media(i, 7, &[i as u8; 1316]), &mut out).unwrap();
            for g in std::iter::once(&mut enc.row).chain(enc.columns.iter_mut()) {
                if g.n > 0 {
                    assert_eq!(g.payload().as_ptr() as usize % PAYLOAD_ALIGN, 0);
                    assert!(g.off < PAYLOAD_ALIGN);
                }
            }
            for o in out.drain(..) {
                assert_eq!(o.packet().len(), FEC_PACKET_HEADER_LEN + 1316);
                let p = parse_fec_packet(o.packet()).unwrap();
                assert_eq!(p.rtp.payload_type, 96);
                fec.push(o.clone().into_packet());
                assert_eq!(fec.last().unwrap().as_slice(), o.packet());
                enc.recycle(o);
            }
        }
        assert_eq!(fec.len(), 40);
        // Row r of matrix m: the XOR of 10 payloads filled with their
        // sequence numbers.
        let row = parse_fec_packet(&fec[0]).unwrap();
        let b = (0..10u8).fold(0, |a, i| a ^ i);
        assert!(row.payload.iter().all(|&x| x == b));
        let a = FecOutput {
            direction: FecDirection::Row,
            buf: vec![9, 1, 2],
            start: 1,
        };
        let b = FecOutput {
            direction: FecDirection::Row,
            buf: vec![1, 2],
            start: 0,
        };
        assert_eq!(a, b);
        assert_eq!(a.into_packet(), [1, 2]);
    }

    #[test]
    fn variable_lengths_and_gap_restart() {
        let mut enc = Encoder::new(EncoderConfig {
            columns: 4,
            rows: 4,
            column_fec: false,
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::new();
        for (i, len) in [10usize, 3, 7, 12].iter().enumerate() {
            enc.push(&media(i as u16, 0, &vec![0xFF; *len]), &mut out)
                .unwrap();
        }
        assert_eq!(out.len(), 1);
        let p = parse_fec_packet(out[0].packet()).unwrap();
        assert_eq!(p.fec.length_recovery, (10 ^ 3 ^ 7 ^ 12) as u16);
        assert_eq!(p.payload.len(), 12);
        // Bytes 0..3 covered by 4 packets, 3..7 by 3, 7..10 by 2, 10..12 by 1.
        assert_eq!(
            p.payload,
            [0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF]
        );
        // A gap restarts the row: 4 more packets give exactly one row packet.
        out.clear();
        enc.push(&media(10, 0, &[1]), &mut out).unwrap();
        enc.push(&media(11, 0, &[1]), &mut out).unwrap();
        enc.push(&media(20, 0, &[1]), &mut out).unwrap();
        for s in 21..24 {
            enc.push(&media(s, 0, &[1]), &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        assert_eq!(
            parse_fec_packet(out[0].packet()).unwrap().fec.sn_base_low,
            20
        );
        assert_eq!(enc.stats().discontinuities, 2);
        assert!(enc.push(&[0x40; 12], &mut out).is_err());
    }
}
