// SPDX-License-Identifier: MPL-2.0
//! RTP fixed header (RFC 3550 section 5.1), as far as ST 2022-1 needs it.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           timestamp                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           synchronization source (SSRC) identifier            |
//! +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//! |            contributing source (CSRC) identifiers             |
//! |                             ....                              |
//! ```
//!
//! For FEC, everything after the 12-byte fixed header (CSRC list, header
//! extension, payload and padding) is "payload": RFC 2733 section 6.2 counts
//! them all in the length recovery field, and FFmpeg's `prompeg` XORs the
//! whole datagram from byte 12 on.

use std::fmt;

/// Length of the RTP fixed header (RFC 3550 5.1), bytes.
pub const RTP_HEADER_LEN: usize = 12;

/// The only RTP version there is (RFC 3550 5.1, `V`).
pub const RTP_VERSION: u8 = 2;

/// The RTP fixed header, all twelve bytes (RFC 3550 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// `P`: the packet ends with padding, whose last byte is its length.
    pub padding: bool,
    /// `X`: one header extension follows the CSRC list.
    pub extension: bool,
    /// `CC`: number of CSRC identifiers (0 to 15).
    pub csrc_count: u8,
    /// `M`: marker bit, meaning set by the profile.
    pub marker: bool,
    /// `PT`: payload type, 7 bits.
    pub payload_type: u8,
    /// Sequence number, 16 bits, +1 per packet, wrapping.
    pub sequence_number: u16,
    /// Media timestamp, units of the payload's clock rate (90 kHz for MPEG-TS).
    pub timestamp: u32,
    /// Synchronization source identifier.
    pub ssrc: u32,
}

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    /// Fewer than the 12 bytes of the fixed header.
    TooShort { len: usize },
    /// `V` is not 2.
    BadVersion { version: u8 },
    /// The CSRC list (4 bytes x `CC`) runs past the end.
    CsrcOverrun,
    /// The header extension (RFC 3550 5.3.1) runs past the end.
    ExtensionOverrun,
    /// `P` is set but the padding count is 0 or longer than the packet.
    BadPadding,
    /// The packet is too long for a 16-bit FEC length recovery field.
    TooLong { len: usize },
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::TooShort { len } => write!(f, "RTP packet of {len} bytes is shorter than 12"),
            RtpError::BadVersion { version } => write!(f, "RTP version {version}, expected 2"),
            RtpError::CsrcOverrun => write!(f, "RTP CSRC list runs past the end of the packet"),
            RtpError::ExtensionOverrun => {
                write!(f, "RTP header extension runs past the end of the packet")
            }
            RtpError::BadPadding => write!(f, "RTP padding count inconsistent with the packet"),
            RtpError::TooLong { len } => {
                write!(
                    f,
                    "RTP packet of {len} bytes is too long to protect with FEC"
                )
            }
        }
    }
}

impl std::error::Error for RtpError {}

impl RtpHeader {
    /// Reads the fixed header. Checks only the length (>= 12) and `V` = 2;
    /// [`validate_layout`] checks that CSRC list, extension and padding fit.
    #[inline]
    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        if data.len() < RTP_HEADER_LEN {
            return Err(RtpError::TooShort { len: data.len() });
        }
        let version = data[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion { version });
        }
        Ok(RtpHeader {
            padding: data[0] & 0x20 != 0,
            extension: data[0] & 0x10 != 0,
            csrc_count: data[0] & 0x0f,
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7f,
            sequence_number: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        })
    }

    /// The 12 header bytes, `V` = 2. `csrc_count` and `payload_type` are
    /// masked to their 4 and 7 bits.
    #[inline]
    pub fn to_bytes(&self) -> [u8; RTP_HEADER_LEN] {
        let mut b = [0u8; RTP_HEADER_LEN];
        self.write(&mut b);
        b
    }

    /// Writes the 12 header bytes into `out`.
    #[inline]
    pub fn write(&self, out: &mut [u8; RTP_HEADER_LEN]) {
        out[0] = (RTP_VERSION << 6)
            | (u8::from(self.padding) << 5)
            | (u8::from(self.extension) << 4)
            | (self.csrc_count & 0x0f);
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
    }
}

/// Checks that a packet is RTP version 2 and that its CSRC list, header
/// extension (RFC 3550 5.3.1: 16-bit profile word, 16-bit length in 32-bit
/// words) and padding (RFC 3550 5.1 `P`: last byte counts the padding bytes,
/// itself included) lie within it.
pub fn validate_layout(data: &[u8]) -> Result<(), RtpError> {
    let h = RtpHeader::parse(data)?;
    let mut pos = RTP_HEADER_LEN + 4 * usize::from(h.csrc_count);
    if pos > data.len() {
        return Err(RtpError::CsrcOverrun);
    }
    if h.extension {
        if pos + 4 > data.len() {
            return Err(RtpError::ExtensionOverrun);
        }
        let words = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        pos += 4 + 4 * words;
        if pos > data.len() {
            return Err(RtpError::ExtensionOverrun);
        }
    }
    if h.padding {
        let pad = usize::from(data[data.len() - 1]);
        if pad == 0 || pos + pad > data.len() {
            return Err(RtpError::BadPadding);
        }
    }
    Ok(())
}

/// Reads the sequence number of a packet already known to be >= 12 bytes.
#[inline]
pub(crate) fn seq_of(data: &[u8]) -> u16 {
    u16::from_be_bytes([data[2], data[3]])
}

/// Reads the timestamp of a packet already known to be >= 12 bytes.
#[inline]
pub(crate) fn ts_of(data: &[u8]) -> u32 {
    u32::from_be_bytes([data[4], data[5], data[6], data[7]])
}

/// Reads the SSRC of a packet already known to be >= 12 bytes.
#[inline]
pub(crate) fn ssrc_of(data: &[u8]) -> u32 {
    u32::from_be_bytes([data[8], data[9], data[10], data[11]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_bytes() {
        // V=2 P=0 X=1 CC=2, M=1 PT=33, seq 0xBEEF, ts 0x01020304, ssrc 0xCAFEBABE
        let b = [
            0x92, 0xA1, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0xCA, 0xFE, 0xBA, 0xBE,
        ];
        let h = RtpHeader::parse(&b).unwrap();
        assert_eq!(
            h,
            RtpHeader {
                padding: false,
                extension: true,
                csrc_count: 2,
                marker: true,
                payload_type: 33,
                sequence_number: 0xBEEF,
                timestamp: 0x0102_0304,
                ssrc: 0xCAFE_BABE,
            }
        );
        assert_eq!(h.to_bytes(), b);
    }

    #[test]
    fn round_trips_every_flag_combination() {
        for bits in 0u16..(1 << 11) {
            let h = RtpHeader {
                padding: bits & 1 != 0,
                extension: bits & 2 != 0,
                csrc_count: ((bits >> 2) & 0xf) as u8,
                marker: bits & 0x40 != 0,
                payload_type: (bits >> 4) as u8 & 0x7f,
                sequence_number: bits.wrapping_mul(4099),
                timestamp: u32::from(bits) * 1_000_003,
                ssrc: u32::from(bits) ^ 0xdead_beef,
            };
            assert_eq!(RtpHeader::parse(&h.to_bytes()), Ok(h));
        }
    }

    #[test]
    fn rejects_short_and_wrong_version() {
        assert_eq!(
            RtpHeader::parse(&[0x80; 11]),
            Err(RtpError::TooShort { len: 11 })
        );
        assert_eq!(
            RtpHeader::parse(&[0x40; 12]),
            Err(RtpError::BadVersion { version: 1 })
        );
    }

    #[test]
    fn layout_checks() {
        let mut p = vec![0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(validate_layout(&p), Ok(()));
        p[0] = 0x81; // CC=1 without the CSRC
        assert_eq!(validate_layout(&p), Err(RtpError::CsrcOverrun));
        p.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(validate_layout(&p), Ok(()));
        p[0] = 0x91; // + X
        assert_eq!(validate_layout(&p), Err(RtpError::ExtensionOverrun));
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]);
        assert_eq!(validate_layout(&p), Ok(()));
        p[0] = 0xB1; // + P, last byte 9 > available
        assert_eq!(validate_layout(&p), Err(RtpError::BadPadding));
        p.extend_from_slice(&[0, 0, 3]);
        assert_eq!(validate_layout(&p), Ok(()));
    }
}
