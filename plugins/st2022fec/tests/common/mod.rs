// SPDX-License-Identifier: MPL-2.0
//! Helpers shared by the FEC core tests: a deterministic RNG, media
//! streams, a sender that interleaves media and FEC as the encoder emits
//! them, and output checks.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use gstst2022fec::fec::{
    Decoder, DecoderConfig, Encoder, EncoderConfig, FecDirection, Output, RtpHeader,
};

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A media RTP packet: PT 33 (MP2T), 90 kHz timestamps, random payload.
pub fn media_packet(rng: &mut Rng, seq: u16, ts: u32, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = RtpHeader {
        marker: seq.is_multiple_of(7),
        payload_type: 33,
        sequence_number: seq,
        timestamp: ts,
        ssrc,
        ..Default::default()
    }
    .to_bytes()
    .to_vec();
    let mut payload = vec![0u8; len];
    rng.fill(&mut payload);
    p.extend_from_slice(&payload);
    p
}

/// `n` media packets from `first_seq` with 1316-byte payloads.
pub fn ts_stream(rng: &mut Rng, first_seq: u16, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let seq = first_seq.wrapping_add(i as u16);
            media_packet(rng, seq, 1000 + (i as u32 / 3) * 300, 0xC0FF_EE00, 1316)
        })
        .collect()
}

/// One packet on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// Index into the media list.
    Media(usize),
    Fec(FecDirection, Vec<u8>),
}

/// Runs the encoder over `media` and returns the send order: each media
/// packet followed by the FEC packets the encoder emitted after it, then
/// the flushed ones.
pub fn send(cfg: EncoderConfig, media: &[Vec<u8>]) -> Vec<Wire> {
    let mut enc = Encoder::new(cfg).expect("config");
    let mut wire = Vec::new();
    let mut out = Vec::new();
    for (i, m) in media.iter().enumerate() {
        enc.push(m, &mut out).expect("media");
        wire.push(Wire::Media(i));
        wire.extend(
            out.drain(..)
                .map(|o| Wire::Fec(o.direction, o.into_packet())),
        );
    }
    enc.flush(&mut out);
    wire.extend(
        out.drain(..)
            .map(|o| Wire::Fec(o.direction, o.into_packet())),
    );
    wire
}

/// Packets as the tests hand them to the decoder.
pub type Pkt = Arc<[u8]>;

/// What a decoder released, and the decoder.
pub type Received = (Vec<Output<Pkt>>, Decoder<Pkt>);

/// Feeds `wire` to a decoder (one packet per "ns" tick) and drains it.
pub fn receive(cfg: DecoderConfig, media: &[Vec<u8>], wire: &[Wire]) -> Received {
    let mut dec = Decoder::new(cfg);
    let mut out = Vec::new();
    for (t, w) in wire.iter().enumerate() {
        match w {
            Wire::Media(i) => dec
                .push_media(t as u64, Arc::from(&media[*i][..]), &mut out)
                .expect("media"),
            Wire::Fec(_, p) => {
                let _ = dec.push_fec(t as u64, Arc::from(&p[..]), &mut out);
            }
        }
    }
    dec.drain(&mut out);
    (out, dec)
}

/// What the output says about each sequence number, checked against the
/// sent media: every packet emitted is byte-identical to the one sent with
/// its sequence number, sequence numbers strictly increase (modulo 2^16),
/// and each appears once. Returns (emitted, lost) counts.
pub fn check_output<P: AsRef<[u8]>>(media: &[Vec<u8>], out: &[Output<P>]) -> (usize, usize) {
    let by_seq: HashMap<u16, &Vec<u8>> = media
        .iter()
        .map(|m| (u16::from_be_bytes([m[2], m[3]]), m))
        .collect();
    let mut last: Option<u16> = None;
    let (mut emitted, mut lost) = (0, 0);
    for o in out {
        let (seq, bytes): (u16, Option<&[u8]>) = match o {
            Output::Media(p) => (
                u16::from_be_bytes([p.as_ref()[2], p.as_ref()[3]]),
                Some(p.as_ref()),
            ),
            Output::Recovered(v) => (u16::from_be_bytes([v[2], v[3]]), Some(&v[..])),
            Output::Lost { seq } => (*seq, None),
            Output::Late(_) | Output::LateRecovered(_) => panic!("late output without pass_late"),
        };
        if let Some(l) = last {
            let d = seq.wrapping_sub(l) as i16;
            assert!(d > 0, "sequence {seq} after {l}");
        }
        last = Some(seq);
        match bytes {
            Some(b) => {
                let sent = by_seq
                    .get(&seq)
                    .unwrap_or_else(|| panic!("emitted unsent seq {seq}"));
                assert_eq!(
                    b,
                    &sent[..],
                    "emitted packet {seq} differs from the one sent"
                );
                emitted += 1;
            }
            None => lost += 1,
        }
    }
    (emitted, lost)
}

/// Sequence number of an output.
pub fn out_seq<P: AsRef<[u8]>>(o: &Output<P>) -> u16 {
    match o {
        Output::Media(p) => u16::from_be_bytes([p.as_ref()[2], p.as_ref()[3]]),
        Output::Recovered(v) => u16::from_be_bytes([v[2], v[3]]),
        Output::Lost { seq } => *seq,
        Output::Late(p) => u16::from_be_bytes([p.as_ref()[2], p.as_ref()[3]]),
        Output::LateRecovered(v) => u16::from_be_bytes([v[2], v[3]]),
    }
}
