// SPDX-License-Identifier: MPL-2.0
//! SMPTE ST 2022-1 forward error correction, without GStreamer types.
//!
//! ST 2022-1 (Pro-MPEG Code of Practice 3 release 2) protects an RTP media
//! stream with XOR parity over an L x D matrix of consecutive packets: one
//! column FEC packet per column (D packets, L apart), sent on port P+2, and
//! one row FEC packet per row (L consecutive packets), sent on port P+4,
//! beside the media on port P. The FEC packet format is RFC 2733's with an
//! extra header word carrying the matrix geometry.
//!
//! - [`rtp`]: the RTP fixed header (RFC 3550 5.1);
//! - [`header`]: the FEC header and FEC packet parsing, with typed errors;
//! - [`xor`]: the XOR kernel;
//! - [`encoder`]: media packets in, row and column FEC packets out;
//! - [`decoder`]: media and FEC in any order, media in sequence order out,
//!   with iterative two-dimensional recovery and a bounded latency.

pub mod decoder;
pub mod encoder;
pub mod header;
pub mod rtp;
pub mod xor;

pub use decoder::{Decoder, DecoderConfig, DecoderStats, Output, PacketBytes};
pub use encoder::{ColumnLayout, ConfigError, Encoder, EncoderConfig, EncoderStats, FecOutput};
pub use header::{parse_fec_packet, FecDirection, FecError, FecHeader, FecPacket};
pub use rtp::{RtpError, RtpHeader};
pub use xor::{xor_into, xor_into_both};
