// SPDX-License-Identifier: MPL-2.0
//! The ST 2022-1 FEC packet: RTP fixed header, 16-byte FEC header, XOR payload.
//!
//! ST 2022-1 (Pro-MPEG Code of Practice 3 release 2) keeps the RFC 2733
//! section 6.2 FEC header (SNBase, length recovery, E, PT recovery, mask, TS
//! recovery) and extends it with a fourth 32-bit word that describes the
//! matrix, so a receiver learns L and D from the packets:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|    PT (FEC) |   sequence number (FEC stream)| RTP
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ bytes
//! |                           timestamp                           | 0..12
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                             SSRC                              |
//! +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//! |      SNBase low bits          |        Length recovery        | FEC
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ bytes
//! |E| PT recovery |                    Mask                       | 12..28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          TS recovery                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |X|D|type |index|    Offset     |      NA       |SNBase ext bits|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                XOR of the protected packets from              | payload
//! |                byte 12 on, zero-padded to the longest         | 28..
//! ```
//!
//! In the RTP header of an FEC packet, `P`, `X`, `CC` and `M` are not the
//! FEC packet's own flags but recovery fields (RFC 2733 section 6.1): the XOR
//! of the protected packets' `P`, `X`, `CC` and `M`. The FEC header always
//! starts at byte 12, whatever `CC` and `X` say. FFmpeg's `prompeg` writes
//! all four there (`buf[0] = 0x80 | (P,X,CC)`, `buf[1] = M | PT`);
//! GStreamer's `rtpst2022-1-fecenc` writes `P`, `X` and `M` (its `CC` is
//! always 0). Both write E = 1, mask 0, X = 0, type 0, index 0, SNBase ext
//! 0, and for a column packet offset = L and NA = D, for a row packet
//! offset = 1 and NA = L.

use std::fmt;

use super::rtp::{RtpError, RtpHeader, RTP_HEADER_LEN, RTP_VERSION};

/// Length of the ST 2022-1 FEC header, bytes.
pub const FEC_HEADER_LEN: usize = 16;

/// RTP fixed header plus FEC header: where the XOR payload starts, bytes.
pub const FEC_PACKET_HEADER_LEN: usize = RTP_HEADER_LEN + FEC_HEADER_LEN;

/// ST 2022-1 limit on L, the number of columns (packets per row).
pub const MAX_COLUMNS: u8 = 20;
/// ST 2022-1 limit on D, the number of rows (packets per column).
pub const MAX_ROWS: u8 = 20;
/// ST 2022-1 lower limit on D for an encoder.
pub const MIN_ROWS: u8 = 4;
/// ST 2022-1 lower limit on L when row FEC is sent.
pub const MIN_ROW_FEC_COLUMNS: u8 = 4;
/// ST 2022-1 limit on L x D, the packets of one matrix.
pub const MAX_MATRIX: u16 = 100;

/// `type` value of the XOR parity code, the only one ST 2022-1 defines.
pub const FEC_TYPE_XOR: u8 = 0;

/// Which dimension an FEC packet protects: the `D` bit of the FEC header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FecDirection {
    /// `D` = 0: protects one column, D packets `offset` = L apart.
    /// Sent on the first FEC stream (port P+2, GStreamer pad `fec_0`).
    Column,
    /// `D` = 1: protects one row, L consecutive packets (`offset` = 1).
    /// Sent on the second FEC stream (port P+4, GStreamer pad `fec_1`).
    Row,
}

/// The 16-byte ST 2022-1 FEC header, every field as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecHeader {
    /// SNBase low bits: sequence number of the first protected media
    /// packet (the lowest; the others follow at `offset` spacing).
    pub sn_base_low: u16,
    /// Length recovery (RFC 2733 6.2): XOR of the protected packets'
    /// lengths from byte 12 on (CSRC list + extension + payload + padding),
    /// bytes, as 16-bit big-endian values.
    pub length_recovery: u16,
    /// E: header extension flag; ST 2022-1 senders set 1 (the fourth word
    /// is present). Not checked on reception.
    pub e: bool,
    /// PT recovery (RFC 2733 6.2): XOR of the protected packets' 7-bit PT.
    pub pt_recovery: u8,
    /// Mask, 24 bits: 0 in ST 2022-1 (the packets are given by offset/NA).
    pub mask: u32,
    /// TS recovery (RFC 2733 6.2): XOR of the protected packets' RTP
    /// timestamps.
    pub ts_recovery: u32,
    /// X (called N by GStreamer): reserved extension bit, 0.
    pub x: bool,
    /// D: column (0) or row (1).
    pub direction: FecDirection,
    /// type, 3 bits: 0 = XOR.
    pub fec_type: u8,
    /// index, 3 bits: 0 for XOR.
    pub index: u8,
    /// Offset: spacing of the protected sequence numbers; L for a column
    /// packet, 1 for a row packet.
    pub offset: u8,
    /// NA: number of protected packets; D for a column packet, L for a row.
    pub na: u8,
    /// SNBase ext bits: upper bits of SNBase for transports with sequence
    /// numbers longer than 16 bits; 0 with RTP, ignored on reception.
    pub sn_base_ext: u8,
}

/// Why an FEC packet is malformed. The decoder counts and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FecError {
    /// Shorter than the 28 bytes of RTP and FEC headers.
    TooShort { len: usize },
    /// RTP `V` is not 2.
    BadRtpVersion { version: u8 },
    /// Longer than a 16-bit length recovery can describe.
    TooLong { len: usize },
    /// `type` is not 0 (XOR).
    UnsupportedType { fec_type: u8 },
    /// The reserved `X` bit of the FEC header is set.
    ExtensionFlag,
    /// A row packet (`D` = 1) whose offset is not 1.
    RowOffset { offset: u8 },
    /// Offset 0, or a column offset (L) above 20.
    OffsetOutOfRange { offset: u8 },
    /// NA 0 or above 20.
    NaOutOfRange { na: u8 },
    /// A column packet with L x D above 100.
    MatrixTooLarge { columns: u8, rows: u8 },
    /// Length recovery cannot be the XOR of lengths that all fit in the
    /// payload: XORs of values below 2^k stay below 2^k, so with a payload
    /// of n bytes it must be below the next power of two above n.
    BadLengthRecovery {
        length_recovery: u16,
        payload_len: usize,
    },
}

impl fmt::Display for FecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FecError::TooShort { len } => {
                write!(
                    f,
                    "FEC packet of {len} bytes is shorter than 28 (RTP + FEC header)"
                )
            }
            FecError::BadRtpVersion { version } => {
                write!(f, "FEC packet RTP version {version}, expected 2")
            }
            FecError::TooLong { len } => write!(f, "FEC packet of {len} bytes is too long"),
            FecError::UnsupportedType { fec_type } => {
                write!(f, "FEC type {fec_type} is not XOR (0)")
            }
            FecError::ExtensionFlag => write!(f, "FEC header X bit set"),
            FecError::RowOffset { offset } => {
                write!(f, "row FEC packet with offset {offset}, expected 1")
            }
            FecError::OffsetOutOfRange { offset } => {
                write!(f, "FEC offset {offset} outside 1..=20")
            }
            FecError::NaOutOfRange { na } => write!(f, "FEC NA {na} outside 1..=20"),
            FecError::MatrixTooLarge { columns, rows } => {
                write!(f, "FEC matrix {columns}x{rows} exceeds 100 packets")
            }
            FecError::BadLengthRecovery {
                length_recovery,
                payload_len,
            } => write!(
                f,
                "FEC length recovery {length_recovery} impossible with a {payload_len}-byte payload"
            ),
        }
    }
}

impl std::error::Error for FecError {}

impl From<RtpError> for FecError {
    fn from(e: RtpError) -> Self {
        match e {
            RtpError::TooShort { len } => FecError::TooShort { len },
            RtpError::BadVersion { version } => FecError::BadRtpVersion { version },
            RtpError::TooLong { len } => FecError::TooLong { len },
            // Only the fixed header of an FEC packet is parsed.
            _ => FecError::TooShort { len: 0 },
        }
    }
}

impl FecHeader {
    /// Reads the 16 header bytes as they are, without validation.
    #[inline]
    pub fn from_bytes(b: &[u8; FEC_HEADER_LEN]) -> Self {
        FecHeader {
            sn_base_low: u16::from_be_bytes([b[0], b[1]]),
            length_recovery: u16::from_be_bytes([b[2], b[3]]),
            e: b[4] & 0x80 != 0,
            pt_recovery: b[4] & 0x7f,
            mask: u32::from_be_bytes([0, b[5], b[6], b[7]]),
            ts_recovery: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            x: b[12] & 0x80 != 0,
            direction: if b[12] & 0x40 != 0 {
                FecDirection::Row
            } else {
                FecDirection::Column
            },
            fec_type: (b[12] >> 3) & 0x07,
            index: b[12] & 0x07,
            offset: b[13],
            na: b[14],
            sn_base_ext: b[15],
        }
    }

    /// The 16 header bytes. Fields wider on the struct than on the wire
    /// (`pt_recovery` 7 bits, `mask` 24, `fec_type` and `index` 3) are masked.
    #[inline]
    pub fn to_bytes(&self) -> [u8; FEC_HEADER_LEN] {
        let mut b = [0u8; FEC_HEADER_LEN];
        b[0..2].copy_from_slice(&self.sn_base_low.to_be_bytes());
        b[2..4].copy_from_slice(&self.length_recovery.to_be_bytes());
        b[4] = (u8::from(self.e) << 7) | (self.pt_recovery & 0x7f);
        b[5..8].copy_from_slice(&(self.mask & 0x00ff_ffff).to_be_bytes()[1..]);
        b[8..12].copy_from_slice(&self.ts_recovery.to_be_bytes());
        b[12] = (u8::from(self.x) << 7)
            | (u8::from(self.direction == FecDirection::Row) << 6)
            | ((self.fec_type & 0x07) << 3)
            | (self.index & 0x07);
        b[13] = self.offset;
        b[14] = self.na;
        b[15] = self.sn_base_ext;
        b
    }

    /// Checks the header against ST 2022-1: type XOR, X = 0, a row packet
    /// has offset 1, offset (L) and NA within 1..=20 and, for a column
    /// packet, L x D <= 100.
    ///
    /// The lower limits an encoder must respect (D >= 4, L >= 4 with row
    /// FEC) are not enforced here: GStreamer's `rtpst2022-1-fecenc` accepts
    /// any `rows`/`columns` from 1, and such packets are still decodable.
    pub fn validate(&self) -> Result<(), FecError> {
        if self.fec_type != FEC_TYPE_XOR {
            return Err(FecError::UnsupportedType {
                fec_type: self.fec_type,
            });
        }
        if self.x {
            return Err(FecError::ExtensionFlag);
        }
        if self.na == 0 || self.na > MAX_COLUMNS.max(MAX_ROWS) {
            return Err(FecError::NaOutOfRange { na: self.na });
        }
        match self.direction {
            FecDirection::Row => {
                if self.offset != 1 {
                    return Err(FecError::RowOffset {
                        offset: self.offset,
                    });
                }
            }
            FecDirection::Column => {
                if self.offset == 0 || self.offset > MAX_COLUMNS {
                    return Err(FecError::OffsetOutOfRange {
                        offset: self.offset,
                    });
                }
                if u16::from(self.offset) * u16::from(self.na) > MAX_MATRIX {
                    return Err(FecError::MatrixTooLarge {
                        columns: self.offset,
                        rows: self.na,
                    });
                }
            }
        }
        Ok(())
    }

    /// L, the number of columns, as far as this packet tells: NA of a row
    /// packet, offset of a column packet.
    #[inline]
    pub fn columns(&self) -> u8 {
        match self.direction {
            FecDirection::Row => self.na,
            FecDirection::Column => self.offset,
        }
    }

    /// D, the number of rows, if this packet tells (column packets only).
    #[inline]
    pub fn rows(&self) -> Option<u8> {
        match self.direction {
            FecDirection::Row => None,
            FecDirection::Column => Some(self.na),
        }
    }
}

/// A parsed FEC packet borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecPacket<'a> {
    /// The RTP header; its `padding`, `extension`, `csrc_count` and `marker`
    /// are the P, X, CC and M recovery fields (RFC 2733 6.1).
    pub rtp: RtpHeader,
    /// The FEC header.
    pub fec: FecHeader,
    /// The XOR payload (everything after byte 28).
    pub payload: &'a [u8],
}

impl FecPacket<'_> {
    /// Byte 0 recovery bits of the protected packets: P, X, CC (low 6 bits).
    #[inline]
    pub fn pxcc_recovery(&self) -> u8 {
        (u8::from(self.rtp.padding) << 5)
            | (u8::from(self.rtp.extension) << 4)
            | (self.rtp.csrc_count & 0x0f)
    }
}

/// Parses and validates an FEC packet (RTP fixed header + FEC header +
/// payload). The FEC header is read at byte 12 whatever the RTP header's
/// `CC` and `X` say, since those are recovery fields.
pub fn parse_fec_packet(data: &[u8]) -> Result<FecPacket<'_>, FecError> {
    if data.len() < FEC_PACKET_HEADER_LEN {
        return Err(FecError::TooShort { len: data.len() });
    }
    if data.len() > FEC_PACKET_HEADER_LEN + usize::from(u16::MAX) {
        return Err(FecError::TooLong { len: data.len() });
    }
    if data[0] >> 6 != RTP_VERSION {
        return Err(FecError::BadRtpVersion {
            version: data[0] >> 6,
        });
    }
    let rtp = RtpHeader::parse(data)?;
    let fec_bytes: &[u8; FEC_HEADER_LEN] = data[RTP_HEADER_LEN..FEC_PACKET_HEADER_LEN]
        .try_into()
        .expect("16 bytes");
    let fec = FecHeader::from_bytes(fec_bytes);
    fec.validate()?;
    let payload = &data[FEC_PACKET_HEADER_LEN..];
    if !length_recovery_possible(fec.length_recovery, payload.len()) {
        return Err(FecError::BadLengthRecovery {
            length_recovery: fec.length_recovery,
            payload_len: payload.len(),
        });
    }
    Ok(FecPacket { rtp, fec, payload })
}

/// Whether `length_recovery` can be the XOR of lengths none of which
/// exceeds `payload_len`.
#[inline]
fn length_recovery_possible(length_recovery: u16, payload_len: usize) -> bool {
    let bound = (payload_len + 1).next_power_of_two();
    usize::from(length_recovery) < bound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes FFmpeg's `prompeg_write_fec` produces for a column packet
    /// of L=10, D=10 over MPEG-TS (PT 33, payload 1316): SN 1, TS
    /// 0x11223344, SSRC 0, SNBase 0x1234, length recovery 0 (an even
    /// number of equal lengths), E=1 | PT recovery 0, mask 0, TS recovery
    /// 0xA5A5A5A5, D=0, offset 10, NA 10.
    const FFMPEG_COLUMN: [u8; 28] = [
        0x80, 0x60, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, // RTP
        0x12, 0x34, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0xA5, 0xA5, 0xA5, 0xA5, // FEC
        0x00, 0x0A, 0x0A, 0x00,
    ];

    #[test]
    fn parses_ffmpeg_column_layout() {
        let p = parse_fec_packet(&FFMPEG_COLUMN).unwrap();
        assert_eq!(p.rtp.payload_type, 96);
        assert_eq!(p.rtp.sequence_number, 1);
        assert_eq!(
            p.fec,
            FecHeader {
                sn_base_low: 0x1234,
                length_recovery: 0,
                e: true,
                pt_recovery: 0,
                mask: 0,
                ts_recovery: 0xA5A5_A5A5,
                x: false,
                direction: FecDirection::Column,
                fec_type: 0,
                index: 0,
                offset: 10,
                na: 10,
                sn_base_ext: 0,
            }
        );
        assert_eq!(p.fec.columns(), 10);
        assert_eq!(p.fec.rows(), Some(10));
        assert!(p.payload.is_empty());
    }

    #[test]
    fn row_layout_and_round_trip() {
        // Row packet as FFmpeg writes it: byte 24 = 0x40 (D=1), offset 1,
        // NA = L = 5; an odd number of 1316-byte packets, so length
        // recovery 1316 and PT recovery 33; P, X, CC, M recovery in the
        // RTP header (P=1, CC=3, M=1).
        let mut b = vec![
            0xA3, 0xE0, 0xFF, 0xFF, 0, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF, // RTP
            0xFF, 0xFE, 0x05, 0x24, 0xA1, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, // FEC
            0x40, 0x01, 0x05, 0x00,
        ];
        b.resize(28 + 1316, 0x5A);
        let p = parse_fec_packet(&b).unwrap();
        assert_eq!(p.fec.direction, FecDirection::Row);
        assert_eq!(p.fec.sn_base_low, 0xFFFE);
        assert_eq!(p.fec.length_recovery, 1316);
        assert_eq!(p.fec.pt_recovery, 33);
        assert!(p.fec.e);
        assert_eq!(p.fec.columns(), 5);
        assert_eq!(p.fec.rows(), None);
        assert_eq!(p.pxcc_recovery(), 0x23);
        assert!(p.rtp.marker);
        assert_eq!(p.rtp.payload_type, 96);
        assert_eq!(p.rtp.ssrc, 0xDEAD_BEEF);
        assert_eq!(p.payload.len(), 1316);
        assert_eq!(&p.fec.to_bytes()[..], &b[12..28]);
    }

    #[test]
    fn header_round_trips_all_bit_fields() {
        for i in 0u32..4096 {
            let h = FecHeader {
                sn_base_low: (i * 40_503) as u16,
                length_recovery: (i * 7919) as u16,
                e: i & 1 != 0,
                pt_recovery: (i >> 1) as u8 & 0x7f,
                mask: (i * 2_654_435_761u32) & 0x00ff_ffff,
                ts_recovery: i.wrapping_mul(0x9E37_79B9),
                x: i & 2 != 0,
                direction: if i & 4 != 0 {
                    FecDirection::Row
                } else {
                    FecDirection::Column
                },
                fec_type: (i >> 3) as u8 & 7,
                index: (i >> 6) as u8 & 7,
                offset: (i >> 2) as u8,
                na: (i >> 4) as u8,
                sn_base_ext: (i >> 5) as u8,
            };
            assert_eq!(FecHeader::from_bytes(&h.to_bytes()), h);
        }
    }

    fn with(mutate: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut b = FFMPEG_COLUMN.to_vec();
        b.resize(28 + 188, 0);
        mutate(&mut b);
        b
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            parse_fec_packet(&FFMPEG_COLUMN[..27]),
            Err(FecError::TooShort { len: 27 })
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[0] = 0x40)),
            Err(FecError::BadRtpVersion { version: 1 })
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[24] = 0x08)),
            Err(FecError::UnsupportedType { fec_type: 1 })
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[24] = 0x80)),
            Err(FecError::ExtensionFlag)
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[24] = 0x40)),
            Err(FecError::RowOffset { offset: 10 })
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[25] = 0)),
            Err(FecError::OffsetOutOfRange { offset: 0 })
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[25] = 21)),
            Err(FecError::OffsetOutOfRange { offset: 21 })
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[26] = 0)),
            Err(FecError::NaOutOfRange { na: 0 })
        );
        assert_eq!(
            parse_fec_packet(&with(|b| {
                b[25] = 11;
                b[26] = 10
            })),
            Err(FecError::MatrixTooLarge {
                columns: 11,
                rows: 10
            })
        );
        // 188-byte payload: XORs of lengths <= 188 stay below 256.
        assert!(
            parse_fec_packet(&with(|b| b[14..16].copy_from_slice(&255u16.to_be_bytes()))).is_ok()
        );
        assert_eq!(
            parse_fec_packet(&with(|b| b[14..16].copy_from_slice(&256u16.to_be_bytes()))),
            Err(FecError::BadLengthRecovery {
                length_recovery: 256,
                payload_len: 188
            })
        );
        // E = 0, a mask, index and SNBase ext are tolerated.
        assert!(parse_fec_packet(&with(|b| {
            b[16] = 0;
            b[17] = 1;
            b[24] = 0x03;
            b[27] = 9;
        }))
        .is_ok());
    }

    #[test]
    fn length_recovery_bound_is_sound() {
        // Every XOR of two lengths <= n passes the check for n.
        for n in 0..300usize {
            for a in 0..=n {
                for b in [0, n / 3, n] {
                    assert!(length_recovery_possible((a ^ b) as u16, n), "{a}^{b} n={n}");
                }
            }
        }
    }
}
