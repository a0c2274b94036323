// SPDX-License-Identifier: MPL-2.0
//! Property tests of the ST 2022-1 core: random streams, losses,
//! reordering, duplicates and malformed or random FEC packets never make
//! the decoder panic, and it never emits a packet that was not sent.

mod common;

use std::sync::Arc;

use common::{check_output, receive, send, Pkt, Rng, Wire};
use gstst2022fec::fec::{
    parse_fec_packet, rtp::validate_layout, ColumnLayout, Decoder, DecoderConfig, EncoderConfig,
    FecDirection, FecHeader, Output,
};
use proptest::prelude::*;

/// A media stream with random header bits, lengths and payloads.
fn random_stream(rng: &mut Rng, first_seq: u16, n: usize, variable: bool) -> Vec<Vec<u8>> {
    let fixed = 1 + rng.below(300) as usize;
    (0..n)
        .map(|i| {
            let seq = first_seq.wrapping_add(i as u16);
            let mut p = vec![
                0x80u8,
                rng.below(128) as u8 | if rng.below(4) == 0 { 0x80 } else { 0 },
            ];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
            p.extend_from_slice(&0x0BAD_CAFEu32.to_be_bytes());
            if variable {
                let cc = rng.below(3) as u8;
                p[0] |= cc;
                for _ in 0..cc {
                    p.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
                }
                if rng.below(4) == 0 {
                    p[0] |= 0x10;
                    p.extend_from_slice(&[0x10, 0x00, 0x00, 0x01, 7, 7, 7, 7]);
                }
            }
            let len = if variable {
                rng.below(300) as usize
            } else {
                fixed
            };
            let mut payload = vec![0u8; len];
            rng.fill(&mut payload);
            p.extend_from_slice(&payload);
            if variable && rng.below(5) == 0 {
                p[0] |= 0x20;
                p.extend_from_slice(&[0, 2]);
            }
            p
        })
        .collect()
}

/// An FEC packet made malformed in a way `parse_fec_packet` must catch.
fn malform(rng: &mut Rng, good: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    match rng.below(8) {
        0 => b.truncate(rng.below(28) as usize),
        1 => b[0] = (b[0] & 0x3f) | ((rng.below(2) as u8) << 6),
        2 => b[24] |= 0x08 << rng.below(3),
        3 => b[24] |= 0x80,
        4 => {
            b[24] |= 0x40;
            b[25] = 2 + rng.below(254) as u8;
        }
        5 => {
            b[26] = if rng.below(2) == 0 {
                0
            } else {
                21 + rng.below(235) as u8
            }
        }
        6 => {
            b[24] &= !0x40;
            b[25] = if rng.below(2) == 0 {
                0
            } else {
                21 + rng.below(235) as u8
            };
        }
        _ => {
            let plen = b.len().saturating_sub(28);
            let bound = (plen + 1).next_power_of_two();
            if bound > 0xffff {
                b.truncate(3);
            } else {
                let v = bound + rng.below((0x10000 - bound) as u64) as usize;
                b[14..16].copy_from_slice(&(v as u16).to_be_bytes());
            }
        }
    }
    b
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    columns: u8,
    rows: u8,
    row_fec: bool,
    column_fec: bool,
    staggered: bool,
    first_seq: u16,
    n: usize,
    variable: bool,
    media_loss: f64,
    fec_loss: f64,
    reorder: usize,
    duplicate: f64,
    malformed: f64,
    latency_packets: Option<u32>,
    latency_ms: Option<u64>,
    pass_late: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        (1u8..=20, 4u8..=20).prop_filter("L x D <= 100", |(l, d)| {
            u16::from(*l) * u16::from(*d) <= 100
        }),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        any::<u16>(),
        1usize..500,
        any::<bool>(),
        (
            0.0f64..0.3,
            0.0f64..0.3,
            0usize..24,
            0.0f64..0.2,
            0.0f64..0.1,
        ),
        (
            proptest::option::of(0u32..400),
            proptest::option::of(0u64..300),
        ),
    )
        .prop_map(
            |(
                seed,
                (columns, rows),
                (row_fec, column_fec, staggered),
                first_seq,
                n,
                variable,
                losses,
                lat,
            )| {
                let (media_loss, fec_loss, reorder, duplicate, malformed) = losses;
                Scenario {
                    seed,
                    columns,
                    rows,
                    row_fec: row_fec && columns >= 4,
                    column_fec,
                    staggered,
                    first_seq,
                    n,
                    variable,
                    media_loss,
                    fec_loss,
                    reorder,
                    duplicate,
                    malformed,
                    latency_packets: lat.0,
                    latency_ms: lat.1,
                    pass_late: false,
                }
            },
        )
}

/// Sends, damages and receives a scenario; returns the sent media, the
/// output and the decoder.
fn play(s: &Scenario) -> (Vec<Vec<u8>>, Vec<Output<Pkt>>, Decoder<Pkt>) {
    let mut rng = Rng(s.seed);
    let media = random_stream(&mut rng, s.first_seq, s.n, s.variable);
    let wire = send(
        EncoderConfig {
            columns: s.columns,
            rows: s.rows,
            row_fec: s.row_fec,
            column_fec: s.column_fec,
            layout: if s.staggered {
                ColumnLayout::Staggered
            } else {
                ColumnLayout::BlockAligned
            },
            ..Default::default()
        },
        &media,
    );
    // Loss, malformed copies, duplicates.
    let mut arrivals: Vec<Wire> = Vec::new();
    for w in wire {
        let p_loss = match w {
            Wire::Media(_) => s.media_loss,
            Wire::Fec(..) => s.fec_loss,
        };
        if rng.unit() < p_loss {
            continue;
        }
        if let Wire::Fec(dir, p) = &w {
            if rng.unit() < s.malformed {
                arrivals.push(Wire::Fec(*dir, malform(&mut rng, p)));
            }
        }
        if rng.unit() < s.duplicate {
            arrivals.push(w.clone());
        }
        arrivals.push(w);
    }
    // Reordering: shuffle within windows.
    if s.reorder > 1 {
        for chunk in arrivals.chunks_mut(s.reorder) {
            for i in (1..chunk.len()).rev() {
                chunk.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
    }
    let mut dec = Decoder::new(DecoderConfig {
        latency_ns: s.latency_ms.map(|ms| ms * 1_000_000),
        latency_matrices: None,
        latency_packets: s.latency_packets,
        pass_late: s.pass_late,
    });
    let mut out = Vec::new();
    let mut now = 0u64;
    for w in &arrivals {
        now += 1_000_000;
        match w {
            Wire::Media(i) => dec
                .push_media(now, Arc::from(&media[*i][..]), &mut out)
                .unwrap(),
            Wire::Fec(_, p) => {
                let _ = dec.push_fec(now, Arc::from(&p[..]), &mut out);
            }
        }
        dec.poll(now, &mut out);
        if let Some(d) = dec.next_deadline() {
            assert!(d > now, "a deadline in the past was not released");
        }
    }
    dec.drain(&mut out);
    assert_eq!(dec.pending(), 0);
    (media, out, dec)
}

/// Every emitted packet is byte-identical to the sent packet of its
/// sequence number; without a resync, sequence numbers strictly increase.
fn check_sent(media: &[Vec<u8>], out: &[Output<Pkt>], resyncs: u64) {
    if resyncs == 0 {
        check_output(media, out);
        return;
    }
    let by_seq: std::collections::HashMap<u16, &Vec<u8>> = media
        .iter()
        .map(|m| (u16::from_be_bytes([m[2], m[3]]), m))
        .collect();
    for o in out {
        let b: &[u8] = match o {
            Output::Media(p) | Output::Late(p) => p,
            Output::Recovered(v) | Output::LateRecovered(v) => v,
            Output::Lost { .. } => continue,
        };
        let seq = u16::from_be_bytes([b[2], b[3]]);
        assert_eq!(
            Some(&b.to_vec()),
            by_seq.get(&seq).copied(),
            "emitted unsent packet {seq}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random streams, loss, reordering, duplicates, malformed FEC: no
    /// panic, nothing emitted that was not sent, counters consistent.
    #[test]
    fn never_emits_unsent(s in scenario()) {
        let (media, out, dec) = play(&s);
        let st = dec.stats();
        check_sent(&media, &out, st.resyncs);
        prop_assert_eq!(st.recovery_mismatch, 0);
        prop_assert_eq!(st.recovery_rejected, 0);
        let emitted = out.iter().filter(|o| !matches!(o, Output::Lost { .. })).count() as u64;
        let lost = out.len() as u64 - emitted;
        prop_assert_eq!(st.received + st.recovered, emitted);
        prop_assert_eq!(st.unrecoverable, lost);
    }

    /// With `pass_late`, packets arriving or rebuilt after they were given
    /// up are released too: each was sent, the in-order output still
    /// strictly increases, and the late outputs match the late counters.
    #[test]
    fn pass_late_releases_only_sent_packets(mut s in scenario()) {
        s.pass_late = true;
        let (media, out, dec) = play(&s);
        let st = dec.stats();
        check_sent(&media, &out, 1);
        if st.resyncs == 0 {
            let in_order: Vec<_> = out
                .iter()
                .filter(|o| !matches!(o, Output::Late(_) | Output::LateRecovered(_)))
                .cloned()
                .collect();
            check_output(&media, &in_order);
        }
        let late = out.iter().filter(|o| matches!(o, Output::Late(_))).count() as u64;
        let late_rec = out.iter().filter(|o| matches!(o, Output::LateRecovered(_))).count() as u64;
        prop_assert_eq!(late, st.late);
        prop_assert_eq!(late_rec, st.late_recovered);
    }

    /// Without media loss, and a latency above the reordering, every packet
    /// leaves, in order.
    #[test]
    fn lossless_reordered_stream_passes_whole(mut s in scenario()) {
        s.media_loss = 0.0;
        s.latency_ms = None;
        s.latency_packets = Some(2 * s.reorder as u32 + 50);
        let (media, out, dec) = play(&s);
        let (emitted, lost) = check_output(&media, &out);
        prop_assert_eq!((emitted, lost), (media.len(), 0), "{}", dec.stats());
    }

    /// One loss in every complete row, all FEC delivered (reordered within
    /// the latency): everything is recovered.
    #[test]
    fn single_loss_per_row_always_recovered(
        seed in any::<u64>(),
        (l, d) in (4u8..=20, 4u8..=20).prop_filter("L x D <= 100", |(l, d)| u16::from(*l) * u16::from(*d) <= 100),
        staggered in any::<bool>(),
        first_seq in any::<u16>(),
        matrices in 1usize..4,
        reorder in 0usize..8,
    ) {
        let mut rng = Rng(seed);
        let (lu, du) = (usize::from(l), usize::from(d));
        let media = random_stream(&mut rng, first_seq, lu * du * (matrices + 1), seed % 2 == 0);
        let wire = send(
            EncoderConfig {
                columns: l,
                rows: d,
                layout: if staggered { ColumnLayout::Staggered } else { ColumnLayout::BlockAligned },
                ..Default::default()
            },
            &media,
        );
        let lose: Vec<usize> = (0..lu * du * matrices / lu)
            .map(|r| r * lu + rng.below(lu as u64) as usize)
            .filter(|&i| i > 0)
            .collect();
        let mut arrivals: Vec<Wire> = wire
            .into_iter()
            .filter(|w| !matches!(w, Wire::Media(i) if lose.contains(i)))
            .collect();
        if reorder > 1 {
            for chunk in arrivals.chunks_mut(reorder) {
                for i in (1..chunk.len()).rev() {
                    chunk.swap(i, rng.below(i as u64 + 1) as usize);
                }
            }
        }
        // Media 0 first, so that the stream starts there.
        let first = arrivals.iter().position(|w| *w == Wire::Media(0)).unwrap();
        let w0 = arrivals.remove(first);
        arrivals.insert(0, w0);
        let (out, dec) = receive(
            DecoderConfig { latency_packets: Some(3 * u32::from(l) * u32::from(d)), latency_matrices: None, latency_ns: None, pass_late: false },
            &media,
            &arrivals,
        );
        let (emitted, lost) = check_output(&media, &out);
        prop_assert_eq!((emitted, lost), (media.len(), 0), "{}", dec.stats());
        // Reordered packets may be recovered before their late original.
        prop_assert!(dec.stats().recovered >= lose.len() as u64);
    }

    /// Random bytes as FEC packets (and as media) never panic; media
    /// outputs are packets pushed as media; recovered outputs are valid RTP.
    #[test]
    fn random_bytes_never_panic(
        seed in any::<u64>(),
        packets in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..120)), 0..200),
    ) {
        let mut rng = Rng(seed);
        let mut dec: Decoder<Vec<u8>> = Decoder::new(DecoderConfig { latency_packets: Some(rng.below(50) as u32), ..Default::default() });
        let mut out = Vec::new();
        let mut pushed = Vec::new();
        for (t, (is_fec, mut bytes)) in packets.into_iter().enumerate() {
            if is_fec {
                // Make half of them look like FEC packets.
                if bytes.len() >= 28 && rng.below(2) == 0 {
                    bytes[0] = 0x80 | (bytes[0] & 0x3f);
                    bytes[24] &= 0x47;
                    if bytes[24] & 0x40 != 0 { bytes[25] = 1; } else { bytes[25] = 1 + bytes[25] % 10; }
                    bytes[26] = 1 + bytes[26] % 10;
                    bytes[12] = 0;
                }
                let _ = dec.push_fec(t as u64, bytes, &mut out);
            } else {
                if bytes.len() >= 12 && rng.below(2) == 0 {
                    bytes[0] = 0x80 | (bytes[0] & 0x3f);
                    bytes[2] = 0;
                }
                pushed.push(bytes.clone());
                let _ = dec.push_media(t as u64, bytes, &mut out);
            }
            dec.poll(t as u64, &mut out);
        }
        dec.drain(&mut out);
        for o in &out {
            match o {
                Output::Media(p) | Output::Late(p) => prop_assert!(pushed.contains(p)),
                Output::Recovered(v) | Output::LateRecovered(v) => {
                    prop_assert!(validate_layout(v).is_ok())
                }
                Output::Lost { .. } => {}
            }
        }
    }

    /// Any 16 bytes round-trip through the FEC header; parsing any bytes
    /// never panics and accepts only what ST 2022-1 allows.
    #[test]
    fn fec_header_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if bytes.len() >= 16 {
            let h: [u8; 16] = bytes[..16].try_into().unwrap();
            prop_assert_eq!(FecHeader::from_bytes(&h).to_bytes(), h);
        }
        if let Ok(p) = parse_fec_packet(&bytes) {
            prop_assert_eq!(p.fec.fec_type, 0);
            prop_assert!(!p.fec.x);
            prop_assert!(p.fec.na >= 1 && p.fec.na <= 20);
            match p.fec.direction {
                FecDirection::Row => prop_assert_eq!(p.fec.offset, 1),
                FecDirection::Column => prop_assert!(u16::from(p.fec.offset) * u16::from(p.fec.na) <= 100),
            }
            prop_assert_eq!(p.payload.len(), bytes.len() - 28);
        }
    }
}
