// SPDX-License-Identifier: MPL-2.0
//! CPU cost per media packet of the ST 2022-1 core (no GStreamer):
//! encoder and decoder at L = D = 10, 1316-byte MPEG-TS payloads, the
//! decoder with 2% i.i.d. loss on media and both FEC streams.
//!
//! `cargo run --release -p gst-plugin-st2022fec --example core_bench`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use gstst2022fec::fec::{
    ColumnLayout, Decoder, DecoderConfig, Encoder, EncoderConfig, FecOutput, Output, RtpHeader,
};

const PACKETS: usize = 1_000_000;
const DISTINCT: usize = 4096;

fn main() {
    // A pool of distinct packets, renumbered as they are sent.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let pool: Vec<Vec<u8>> = (0..DISTINCT)
        .map(|_| {
            let mut p = RtpHeader {
                payload_type: 33,
                ssrc: 0x1000,
                ..Default::default()
            }
            .to_bytes()
            .to_vec();
            p.extend((0..1316).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }));
            p
        })
        .collect();
    let media: Vec<Arc<[u8]>> = (0..PACKETS)
        .map(|i| {
            let mut p = pool[i % DISTINCT].clone();
            p[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            p[4..8].copy_from_slice(&((i as u32) * 263).to_be_bytes());
            Arc::from(p)
        })
        .collect();

    for layout in [ColumnLayout::BlockAligned, ColumnLayout::Staggered] {
        let mut enc = Encoder::new(EncoderConfig {
            layout,
            ..Default::default()
        })
        .unwrap();
        let mut fec: Vec<FecOutput> = Vec::with_capacity(16);
        let mut wire: Vec<(bool, Arc<[u8]>)> = Vec::with_capacity(PACKETS * 6 / 5 + 100);
        // Packets from a small pool renumbered in place, so that they are
        // in cache as a payloader's output would be.
        let mut hot: Vec<Vec<u8>> = pool[..256].to_vec();
        let t = Instant::now();
        for i in 0..PACKETS {
            let m = &mut hot[i % 256];
            m[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            m[4..8].copy_from_slice(&((i as u32) * 263).to_be_bytes());
            enc.push(m, &mut fec).unwrap();
            black_box(&fec);
            fec.clear();
        }
        let enc_ns = t.elapsed().as_nanos() as f64 / PACKETS as f64;
        println!("encoder {layout:?}: {enc_ns:.0} ns per media packet");

        // The wire, with 2% loss.
        let mut enc = Encoder::new(EncoderConfig {
            layout,
            ..Default::default()
        })
        .unwrap();
        let mut lost = 0u64;
        for m in &media {
            enc.push(m, &mut fec).unwrap();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if !x.is_multiple_of(50) {
                wire.push((true, m.clone()));
            } else {
                lost += 1;
            }
            for f in fec.drain(..) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if !x.is_multiple_of(50) {
                    wire.push((false, Arc::from(f.into_packet())));
                }
            }
        }
        let mut dec: Decoder<Arc<[u8]>> = Decoder::new(DecoderConfig::default());
        let mut out: Vec<Output<Arc<[u8]>>> = Vec::with_capacity(1024);
        let t = Instant::now();
        for (i, (is_media, p)) in wire.into_iter().enumerate() {
            if is_media {
                dec.push_media(i as u64, p, &mut out).unwrap();
            } else {
                dec.push_fec(i as u64, p, &mut out).unwrap();
            }
            if out.len() > 512 {
                black_box(&out);
                out.clear();
            }
        }
        dec.drain(&mut out);
        let dec_ns = t.elapsed().as_nanos() as f64 / PACKETS as f64;
        let s = dec.stats();
        println!(
            "decoder {layout:?}, 2% loss: {dec_ns:.0} ns per media packet (lost {lost}, recovered {}, unrecoverable {})",
            s.recovered, s.unrecoverable
        );
    }
}
