// SPDX-License-Identifier: MPL-2.0
//! Residual loss of the iterative two-dimensional decoder at L = D = 10,
//! block-aligned, with i.i.d. loss on the media and on both FEC streams.
//!
//! The targets: at most 1e-4 of media packets lost after FEC at 1%
//! loss and at most 5e-4 at 3%. Every packet that leaves the decoder is
//! checked byte for byte against the one sent.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{media_packet, Rng};
use gstst2022fec::fec::{ColumnLayout, Decoder, DecoderConfig, Encoder, EncoderConfig, Output};

const PACKETS: usize = 2_000_000;
const RING: usize = 4096;

struct Run {
    media_lost: u64,
    residual: u64,
    delivered: u64,
    recovered: u64,
}

fn run(loss: f64, layout: ColumnLayout, seed: u64) -> Run {
    let mut rng = Rng(seed);
    let mut loss_rng = Rng(seed ^ 0x5555);
    let mut enc = Encoder::new(EncoderConfig {
        columns: 10,
        rows: 10,
        layout,
        ..Default::default()
    })
    .unwrap();
    let mut dec: Decoder<Arc<[u8]>> = Decoder::new(DecoderConfig::default());
    let mut sent: Vec<Option<Arc<[u8]>>> = vec![None; RING];
    let mut fec = Vec::new();
    let mut out = Vec::new();
    let mut media_lost = 0u64;
    let mut delivered = 0u64;
    let mut lost_out = 0u64;
    let mut t = 0u64;
    let mut check = |out: &mut Vec<Output<Arc<[u8]>>>, sent: &[Option<Arc<[u8]>>]| {
        for o in out.drain(..) {
            match o {
                Output::Media(p) => {
                    let s = sent[usize::from(u16::from_be_bytes([p[2], p[3]])) % RING].as_ref();
                    assert_eq!(s.map(|s| &s[..]), Some(&p[..]), "received packet differs");
                    delivered += 1;
                }
                Output::Recovered(v) => {
                    let s = sent[usize::from(u16::from_be_bytes([v[2], v[3]])) % RING].as_ref();
                    assert_eq!(s.map(|s| &s[..]), Some(&v[..]), "recovered packet differs");
                    delivered += 1;
                }
                Output::Lost { .. } => lost_out += 1,
                Output::Late(_) | Output::LateRecovered(_) => unreachable!("pass_late is off"),
            }
        }
    };
    for i in 0..PACKETS {
        let seq = (i as u16).wrapping_add(40_000);
        let p: Arc<[u8]> = Arc::from(media_packet(
            &mut rng,
            seq,
            (i as u32) * 263,
            0x2022_0001,
            1316,
        ));
        sent[usize::from(seq) % RING] = Some(p.clone());
        enc.push(&p, &mut fec).unwrap();
        t += 1;
        if loss_rng.unit() >= loss {
            dec.push_media(t, p, &mut out).unwrap();
        } else {
            media_lost += 1;
        }
        for f in fec.drain(..) {
            t += 1;
            if loss_rng.unit() >= loss {
                dec.push_fec(t, Arc::from(f.into_packet()), &mut out)
                    .unwrap();
            }
        }
        check(&mut out, &sent);
    }
    enc.flush(&mut fec);
    for f in fec.drain(..) {
        dec.push_fec(t, Arc::from(f.into_packet()), &mut out)
            .unwrap();
    }
    dec.drain(&mut out);
    check(&mut out, &sent);
    let s = dec.stats();
    assert_eq!(s.recovery_rejected, 0, "{s}");
    assert_eq!(s.recovery_mismatch, 0, "{s}");
    assert_eq!(s.unrecoverable, lost_out);
    assert_eq!(s.received + s.recovered, delivered);
    // Every packet from the first received to the last sent left once.
    assert!(delivered + lost_out >= PACKETS as u64 - 200, "{s}");
    Run {
        media_lost,
        residual: lost_out,
        delivered,
        recovered: s.recovered,
    }
}

fn report(name: &str, loss: f64, r: &Run) -> f64 {
    let total = (r.delivered + r.residual) as f64;
    let residual = r.residual as f64 / total;
    println!(
        "{name}: L=D=10 i.i.d. loss {:.0}% on media+row+column: media lost {} ({:.4}%), recovered {}, \
         residual {} of {} = {:.2e} ({:.5}%)",
        loss * 100.0,
        r.media_lost,
        r.media_lost as f64 / total * 100.0,
        r.recovered,
        r.residual,
        total as u64,
        residual,
        residual * 100.0
    );
    residual
}

#[test]
fn residual_loss_at_1_percent() {
    let t = Instant::now();
    let r = run(0.01, ColumnLayout::BlockAligned, 1);
    let residual = report("ours", 0.01, &r);
    println!(
        "  ({} media packets in {:.1} s)",
        PACKETS,
        t.elapsed().as_secs_f64()
    );
    assert!(residual <= 1e-4, "residual {residual:.2e} above 1e-4");
}

#[test]
fn residual_loss_at_3_percent() {
    let t = Instant::now();
    let r = run(0.03, ColumnLayout::BlockAligned, 3);
    let residual = report("ours", 0.03, &r);
    println!(
        "  ({} media packets in {:.1} s)",
        PACKETS,
        t.elapsed().as_secs_f64()
    );
    assert!(residual <= 5e-4, "residual {residual:.2e} above 5e-4");
}
