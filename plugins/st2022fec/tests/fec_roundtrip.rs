// SPDX-License-Identifier: MPL-2.0
//! Encoder + decoder round trips of the ST 2022-1 core: what the code can
//! recover is recovered byte for byte, in order; what it cannot is given up
//! at its deadline and the gap left visible.

mod common;

use std::sync::Arc;

use common::*;
use gstst2022fec::fec::{
    parse_fec_packet, ColumnLayout, Decoder, DecoderConfig, EncoderConfig, FecDirection, Output,
};

fn cfg(l: u8, d: u8, layout: ColumnLayout) -> EncoderConfig {
    EncoderConfig {
        columns: l,
        rows: d,
        layout,
        ..Default::default()
    }
}

fn sn_base(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[12], p[13]])
}

/// Drops the media packets whose index `lose` says.
fn drop_media(wire: &[Wire], lose: impl Fn(usize) -> bool) -> Vec<Wire> {
    wire.iter()
        .filter(|w| !matches!(w, Wire::Media(i) if lose(*i)))
        .cloned()
        .collect()
}

fn all_recovered(media: &[Vec<u8>], out: &[Output<Arc<[u8]>>]) {
    let (emitted, lost) = check_output(media, out);
    assert_eq!(lost, 0, "packets given up");
    assert_eq!(emitted, media.len());
}

#[test]
fn one_loss_per_row_anywhere() {
    for layout in [ColumnLayout::BlockAligned, ColumnLayout::Staggered] {
        let mut rng = Rng(1);
        let (l, d) = (10usize, 10usize);
        let media = ts_stream(&mut rng, 100, l * d * 6);
        let wire = send(cfg(l as u8, d as u8, layout), &media);
        // In every row of the matrices before the last, one random column.
        let cols: Vec<usize> = (0..media.len() / l)
            .map(|_| rng.below(l as u64) as usize)
            .collect();
        let lossy = drop_media(&wire, |i| i < l * d * 5 && i % l == cols[i / l]);
        let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
        all_recovered(&media, &out);
        let s = dec.stats();
        assert_eq!(s.recovered, 50, "{s}");
        assert_eq!(s.received as usize, media.len() - 50);
        assert_eq!(dec.geometry(), (Some(10), Some(10)));
    }
}

#[test]
fn burst_of_l_consecutive_packets() {
    for layout in [ColumnLayout::BlockAligned, ColumnLayout::Staggered] {
        for start in 0..100usize {
            let mut rng = Rng(start as u64);
            let (l, d) = (10usize, 10usize);
            let media = ts_stream(&mut rng, 65_500, l * d * 3);
            let wire = send(cfg(l as u8, d as u8, layout), &media);
            let burst = l * d + start;
            let lossy = drop_media(&wire, |i| (burst..burst + l).contains(&i));
            let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
            all_recovered(&media, &out);
            assert_eq!(dec.stats().recovered, l as u64, "{layout:?} start {start}");
        }
    }
}

/// Two losses in one row of the very first matrix need column FEC, which
/// comes at the end of the matrix (block-aligned) or during the next one
/// (staggered): the decoder must hold them although D is not known yet
/// (only row FEC has arrived when the losses become known).
#[test]
fn two_losses_in_a_row_of_the_first_matrix() {
    for layout in [ColumnLayout::BlockAligned, ColumnLayout::Staggered] {
        for (l, d) in [(10usize, 10usize), (4, 4), (5, 20), (20, 5)] {
            let mut rng = Rng(11);
            let media = ts_stream(&mut rng, 28_614, l * d * 4);
            let wire = send(cfg(l as u8, d as u8, layout), &media);
            let lost = [l + 1, l + 2];
            let lossy = drop_media(&wire, |i| lost.contains(&i));
            let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
            all_recovered(&media, &out);
            assert_eq!(dec.stats().recovered, 2, "{layout:?} {l}x{d}");
        }
    }
}

/// Staggered column FEC comes up to two matrices after the first packet
/// of its column, when a clean column has left the decoder's history: not
/// needed, so not counted as unusable.
#[test]
fn clean_staggered_stream_has_no_unusable_fec() {
    let mut rng = Rng(3);
    let media = ts_stream(&mut rng, 65_000, 100 * 8);
    let wire = send(cfg(10, 10, ColumnLayout::Staggered), &media);
    let (out, dec) = receive(DecoderConfig::default(), &media, &wire);
    all_recovered(&media, &out);
    let s = dec.stats();
    assert_eq!(s.fec_unusable, 0, "{s}");
}

#[test]
fn burst_with_column_fec_only() {
    // "1D" FEC: column only, a burst of L recovered by the L columns.
    let mut rng = Rng(5);
    let media = ts_stream(&mut rng, 0, 200);
    let wire = send(
        EncoderConfig {
            columns: 5,
            rows: 8,
            row_fec: false,
            ..Default::default()
        },
        &media,
    );
    let lossy = drop_media(&wire, |i| (43..48).contains(&i));
    let (out, _) = receive(DecoderConfig::default(), &media, &lossy);
    all_recovered(&media, &out);
}

#[test]
fn iterative_row_column_row_column() {
    // L = D = 4, second matrix from seq 16. Lost: A=(r0,c0) B=(r1,c0)
    // C=(r1,c1) D=(r2,c1) and the row FEC of row 2. Only A is recoverable
    // at first (by its row); then B by column 0, C by row 1, D by column 1.
    let mut rng = Rng(7);
    let media = ts_stream(&mut rng, 0, 48);
    let wire = send(cfg(4, 4, ColumnLayout::BlockAligned), &media);
    let lost = [16usize, 20, 21, 25];
    let lossy: Vec<Wire> = drop_media(&wire, |i| lost.contains(&i))
        .into_iter()
        .filter(|w| !matches!(w, Wire::Fec(FecDirection::Row, p) if sn_base(p) == 24))
        .collect();
    let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
    all_recovered(&media, &out);
    assert_eq!(dec.stats().recovered, 4);

    // Without the row FEC of row 0 the chain never starts.
    let lossy: Vec<Wire> = lossy
        .into_iter()
        .filter(|w| !matches!(w, Wire::Fec(FecDirection::Row, p) if sn_base(p) == 16))
        .collect();
    let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
    let (emitted, given_up) = check_output(&media, &out);
    assert_eq!((emitted, given_up), (44, 4));
    assert_eq!(dec.stats().unrecoverable, 4);
}

#[test]
fn fec_before_media_reordered_and_duplicated() {
    let mut rng = Rng(11);
    let (l, d) = (5usize, 6usize);
    let media = ts_stream(&mut rng, 65_000, l * d * 8);
    let wire = send(cfg(l as u8, d as u8, ColumnLayout::Staggered), &media);
    let lossy = drop_media(&wire, |i| i % 7 == 3 && i < l * d * 7);
    // All FEC packets first, then media shuffled within windows of 12,
    // every fifth packet twice.
    let mut order: Vec<Wire> = lossy
        .iter()
        .filter(|w| matches!(w, Wire::Fec(..)))
        .cloned()
        .collect();
    let mut m: Vec<Wire> = lossy
        .iter()
        .filter(|w| matches!(w, Wire::Media(_)))
        .cloned()
        .collect();
    for chunk in m.chunks_mut(12) {
        for i in (1..chunk.len()).rev() {
            chunk.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    for (k, w) in m.into_iter().enumerate() {
        if k % 5 == 0 {
            order.push(w.clone());
        }
        order.push(w);
    }
    // Latency in packets large enough for the reordering.
    let (out, dec) = receive(
        DecoderConfig {
            latency_matrices: None,
            latency_packets: Some(400),
            latency_ns: None,
            pass_late: false,
        },
        &media,
        &order,
    );
    all_recovered(&media, &out);
    let s = dec.stats();
    assert!(s.duplicate > 0, "{s}");
    assert_eq!(s.recovery_mismatch, 0);
}

#[test]
fn fec_long_after_media_within_latency() {
    // The column FEC stream is delayed by 150 packets.
    let mut rng = Rng(13);
    let media = ts_stream(&mut rng, 10, 600);
    let wire = send(cfg(10, 10, ColumnLayout::BlockAligned), &media);
    let lossy = drop_media(&wire, |i| (200..210).contains(&i));
    let mut delayed: Vec<(usize, Wire)> = Vec::new();
    for (k, w) in lossy.into_iter().enumerate() {
        let at = if matches!(w, Wire::Fec(FecDirection::Column, _)) {
            k + 150
        } else {
            k
        };
        delayed.push((at, w));
    }
    delayed.sort_by_key(|(at, _)| *at);
    let order: Vec<Wire> = delayed.into_iter().map(|(_, w)| w).collect();
    // The column packet of matrix 2 protecting the burst's last packet is
    // sent at packet 299 and arrives at about 450: 250 packets after the
    // loss, more than the default 2 matrices.
    let (out, _) = receive(
        DecoderConfig {
            latency_packets: Some(300),
            latency_matrices: None,
            latency_ns: None,
            pass_late: false,
        },
        &media,
        &order,
    );
    all_recovered(&media, &out);
    let (out, _) = receive(DecoderConfig::default(), &media, &order);
    let (_, lost) = check_output(&media, &out);
    assert!(lost > 0);
}

#[test]
fn geometry_change_is_followed() {
    let mut rng = Rng(17);
    let media = ts_stream(&mut rng, 30_000, 20 * 10 + 100 * 4);
    let (a, b) = media.split_at(200);
    let mut wire = send(cfg(5, 4, ColumnLayout::BlockAligned), a);
    let second = send(cfg(20, 5, ColumnLayout::Staggered), b);
    wire.extend(second.into_iter().map(|w| match w {
        Wire::Media(i) => Wire::Media(i + 200),
        f => f,
    }));
    let lossy = drop_media(&wire, |i| i == 42 || i == 43 || (300..320).contains(&i));
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = Vec::new();
    let mut geometries = Vec::new();
    for (t, w) in lossy.iter().enumerate() {
        match w {
            Wire::Media(i) => dec
                .push_media(t as u64, Arc::<[u8]>::from(&media[*i][..]), &mut out)
                .unwrap(),
            Wire::Fec(_, p) => dec
                .push_fec(t as u64, Arc::<[u8]>::from(&p[..]), &mut out)
                .unwrap(),
        }
        if geometries.last() != Some(&dec.geometry()) {
            geometries.push(dec.geometry());
        }
    }
    dec.drain(&mut out);
    all_recovered(&media, &out);
    assert_eq!(geometries.first(), Some(&(None, None)));
    assert!(geometries.contains(&(Some(5), Some(4))));
    assert_eq!(dec.geometry(), (Some(20), Some(5)));
}

#[test]
fn missing_row_stream() {
    let mut rng = Rng(19);
    let media = ts_stream(&mut rng, 0, 400);
    let wire: Vec<Wire> = send(cfg(10, 10, ColumnLayout::Staggered), &media)
        .into_iter()
        .filter(|w| !matches!(w, Wire::Fec(FecDirection::Row, _)))
        .collect();
    // One loss per column of each matrix: recoverable by columns alone.
    let lossy = drop_media(&wire, |i| i < 300 && (i % 100) % 11 == 1);
    let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
    all_recovered(&media, &out);
    assert_eq!(dec.geometry(), (Some(10), Some(10)));
}

#[test]
fn unrecoverable_is_given_up_and_counted() {
    let mut rng = Rng(23);
    let media = ts_stream(&mut rng, 0, 300);
    let wire = send(cfg(4, 4, ColumnLayout::BlockAligned), &media);
    // A 2x2 square in matrix 2: no row or column has a single loss.
    let lost = [32usize, 33, 36, 37];
    let lossy = drop_media(&wire, |i| lost.contains(&i));
    let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
    let (emitted, given_up) = check_output(&media, &out);
    assert_eq!((emitted, given_up), (296, 4));
    let s = dec.stats();
    assert_eq!((s.received, s.recovered, s.unrecoverable), (296, 0, 4));
    let lost_seqs: Vec<u16> = out
        .iter()
        .filter_map(|o| match o {
            Output::Lost { seq } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(lost_seqs, [32, 33, 36, 37]);
}

#[test]
fn time_deadline_and_poll() {
    let mut rng = Rng(29);
    let media = ts_stream(&mut rng, 0, 10);
    let ms = 1_000_000u64;
    let mut dec: Decoder<Vec<u8>> = Decoder::new(DecoderConfig {
        latency_ns: Some(100 * ms),
        latency_matrices: None,
        latency_packets: None,
        pass_late: false,
    });
    let mut out = Vec::new();
    // Output starts one latency after the first packet, in case earlier
    // ones arrive reordered.
    dec.push_media(5 * ms, media[1].clone(), &mut out).unwrap();
    assert_eq!(dec.next_deadline(), Some(105 * ms));
    dec.push_media(6 * ms, media[0].clone(), &mut out).unwrap();
    // Packet 2 lost: 3 and 4 wait.
    dec.push_media(10 * ms, media[3].clone(), &mut out).unwrap();
    dec.push_media(20 * ms, media[4].clone(), &mut out).unwrap();
    assert!(out.is_empty());
    dec.poll(104 * ms, &mut out);
    assert!(out.is_empty());
    dec.poll(105 * ms, &mut out);
    assert_eq!(
        out,
        [
            Output::Media(media[0].clone()),
            Output::Media(media[1].clone())
        ]
    );
    assert_eq!(dec.pending(), 3);
    assert_eq!(dec.next_deadline(), Some(110 * ms));
    dec.poll(109 * ms, &mut out);
    assert_eq!(out.len(), 2);
    dec.poll(110 * ms, &mut out);
    assert_eq!(out.len(), 5);
    assert_eq!(out[2], Output::Lost { seq: 2 });
    assert_eq!(out[3], Output::Media(media[3].clone()));
    assert_eq!(dec.next_deadline(), None);
    // Packet 2 arriving now is late, and not emitted; 5 passes at once.
    dec.push_media(120 * ms, media[2].clone(), &mut out)
        .unwrap();
    dec.push_media(121 * ms, media[5].clone(), &mut out)
        .unwrap();
    assert_eq!(out.len(), 6);
    let s = dec.stats();
    assert_eq!((s.received, s.unrecoverable, s.late), (5, 1, 1));
}

#[test]
fn packet_deadline_in_matrices() {
    // Latency 1 matrix of 4x4: a missing packet is given up once media 16
    // packets newer has arrived.
    let mut rng = Rng(31);
    let media = ts_stream(&mut rng, 0, 64);
    let wire = send(cfg(4, 4, ColumnLayout::BlockAligned), &media);
    let lossy = drop_media(&wire, |i| [5usize, 6].contains(&i));
    let lossy: Vec<Wire> = lossy
        .into_iter()
        .filter(|w| !matches!(w, Wire::Fec(..)))
        .collect();
    let mut dec = Decoder::new(DecoderConfig {
        latency_matrices: Some(1),
        ..Default::default()
    });
    // Teach it the geometry with one FEC packet of the stream.
    let fec = send(cfg(4, 4, ColumnLayout::BlockAligned), &media)
        .into_iter()
        .find_map(|w| match w {
            Wire::Fec(FecDirection::Column, p) => Some(p),
            _ => None,
        })
        .unwrap();
    let mut out = Vec::new();
    let mut released_at = None;
    for (t, w) in lossy.iter().enumerate() {
        if let Wire::Media(i) = w {
            dec.push_media(t as u64, Arc::<[u8]>::from(&media[*i][..]), &mut out)
                .unwrap();
            if *i == 0 {
                dec.push_fec(t as u64, Arc::<[u8]>::from(&fec[..]), &mut out)
                    .unwrap();
            }
            if released_at.is_none() && out.iter().any(|o| matches!(o, Output::Lost { seq: 5 })) {
                released_at = Some(*i);
            }
        }
    }
    assert_eq!(released_at, Some(21));
}

#[test]
fn malformed_fec_is_counted_and_ignored() {
    let mut rng = Rng(37);
    let media = ts_stream(&mut rng, 0, 40);
    let wire = send(cfg(4, 4, ColumnLayout::BlockAligned), &media);
    let mut dec: Decoder<Vec<u8>> = Decoder::new(DecoderConfig::default());
    let mut out = Vec::new();
    let good = wire
        .iter()
        .find_map(|w| match w {
            Wire::Fec(FecDirection::Column, p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let mut bad = Vec::new();
    bad.push(good[..20].to_vec()); // short
    let mut b = good.clone();
    b[24] = 0x40; // row with offset 4
    bad.push(b);
    let mut b = good.clone();
    b[26] = 0; // NA 0
    bad.push(b);
    let mut b = good.clone();
    b[24] |= 0x10; // type 2
    bad.push(b);
    let mut b = good[..28 + 100].to_vec();
    b[14..16].copy_from_slice(&1316u16.to_be_bytes()); // length > any XOR of lengths <= 100
    bad.push(b);
    for (t, p) in bad.into_iter().enumerate() {
        assert!(dec.push_fec(t as u64, p, &mut out).is_err());
    }
    assert!(dec.push_media(9, vec![0x40; 20], &mut out).is_err());
    assert_eq!(dec.stats().malformed, 6);
    for (t, w) in wire.iter().enumerate() {
        match w {
            Wire::Media(i) if *i != 9 => dec
                .push_media(10 + t as u64, media[*i].clone(), &mut out)
                .unwrap(),
            Wire::Media(_) => {}
            Wire::Fec(_, p) => dec.push_fec(10 + t as u64, p.clone(), &mut out).unwrap(),
        }
    }
    dec.drain(&mut out);
    let (emitted, lost) = check_output(&media, &out);
    assert_eq!((emitted, lost), (40, 0));
}

#[test]
fn variable_lengths_and_header_bits_are_restored() {
    // Packets with CSRCs, extensions, padding, markers and different
    // payload types and lengths: every lost one comes back byte-exact.
    let mut rng = Rng(41);
    let mut media = Vec::new();
    for i in 0..200u16 {
        let mut p = vec![0x80u8, if i % 3 == 0 { 0x80 | 33 } else { 96 }];
        p.extend_from_slice(&i.wrapping_add(65_400).to_be_bytes());
        p.extend_from_slice(&(u32::from(i) * 3003).to_be_bytes());
        p.extend_from_slice(&0xABCD_0001u32.to_be_bytes());
        let cc = (i % 3) as u8;
        p[0] |= cc;
        for _ in 0..cc {
            p.extend_from_slice(&rng.next_u64().to_be_bytes()[..4]);
        }
        if i % 4 == 1 {
            p[0] |= 0x10;
            p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]);
        }
        let len = rng.below(400) as usize;
        let mut payload = vec![0; len];
        rng.fill(&mut payload);
        p.extend_from_slice(&payload);
        if i % 5 == 2 {
            p[0] |= 0x20;
            p.extend_from_slice(&[0, 0, 3]);
        }
        media.push(p);
    }
    let wire = send(cfg(5, 5, ColumnLayout::Staggered), &media);
    let lossy = drop_media(&wire, |i| i < 175 && (i % 25) % 6 == 1);
    let (out, dec) = receive(DecoderConfig::default(), &media, &lossy);
    all_recovered(&media, &out);
    assert!(dec.stats().recovered > 20);
}

/// FEC packets built the way FFmpeg's `prompeg` builds them: a "bitstring"
/// per media packet (byte 0 & 0x3f, byte 1, timestamp, length from byte 12,
/// payload) XORed over the group, then RTP header `0x80 | bs[0]&0x3f`,
/// `bs[1]&0x80 | 96`, sequence from 1, timestamp of the group's first
/// packet, SSRC 0, and FEC header SNBase, length, `0x80 | bs[1]`, mask 0,
/// TS, `0x00`/`0x40`, offset L/1, NA D/L, 0.
fn ffmpeg_fec(media: &[Vec<u8>], l: usize, d: usize, row: bool, idx: usize, seq: u16) -> Vec<u8> {
    let members: Vec<&Vec<u8>> = if row {
        (0..l).map(|c| &media[idx + c]).collect()
    } else {
        (0..d).map(|r| &media[idx + r * l]).collect()
    };
    let len = members[0].len() - 12;
    let mut bs = vec![0u8; 8 + len];
    for m in &members {
        let mut b = vec![m[0] & 0x3f, m[1], m[4], m[5], m[6], m[7]];
        b.extend_from_slice(&(len as u16).to_be_bytes());
        b.extend_from_slice(&m[12..]);
        for (x, y) in bs.iter_mut().zip(&b) {
            *x ^= y;
        }
    }
    let first = members[0];
    let mut p = vec![0x80 | (bs[0] & 0x3f), (bs[1] & 0x80) | 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&first[4..8]);
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(&first[2..4]);
    p.extend_from_slice(&bs[6..8]);
    p.push(0x80 | bs[1]);
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&bs[2..6]);
    p.push(if row { 0x40 } else { 0 });
    p.push(if row { 1 } else { l as u8 });
    p.push(if row { l as u8 } else { d as u8 });
    p.push(0);
    p.extend_from_slice(&bs[8..]);
    p
}

#[test]
fn encoder_matches_ffmpeg_prompeg_bytes() {
    let mut rng = Rng(43);
    let (l, d) = (6usize, 4usize);
    let media = ts_stream(&mut rng, 65_530, l * d * 2);
    let wire = send(
        EncoderConfig {
            columns: l as u8,
            rows: d as u8,
            column_seq: 1,
            row_seq: 1,
            ..Default::default()
        },
        &media,
    );
    let ours: Vec<(FecDirection, Vec<u8>)> = wire
        .into_iter()
        .filter_map(|w| match w {
            Wire::Fec(dir, p) => Some((dir, p)),
            _ => None,
        })
        .collect();
    let mut row_seq = 1u16;
    let mut col_seq = 1u16;
    let mut checked = 0;
    for (dir, p) in &ours {
        let base = sn_base(p).wrapping_sub(65_530) as usize;
        let reference = match dir {
            FecDirection::Row => {
                row_seq += 1;
                ffmpeg_fec(&media, l, d, true, base, row_seq - 1)
            }
            FecDirection::Column => {
                col_seq += 1;
                ffmpeg_fec(&media, l, d, false, base, col_seq - 1)
            }
        };
        // All bytes but the RTP timestamp (FFmpeg: the group's first
        // packet's; ours: the media's at transmission, as RFC 2733 6.1).
        assert_eq!(p[..4], reference[..4], "{dir:?} SNBase {}", sn_base(p));
        assert_eq!(p[8..], reference[8..], "{dir:?} SNBase {}", sn_base(p));
        checked += 1;
    }
    assert_eq!(checked, 2 * (l + d));
}

#[test]
fn decodes_ffmpeg_send_order() {
    // FFmpeg sends a row packet before the first packet of the next row
    // and column c of a matrix before packet c*D of the next one.
    let mut rng = Rng(47);
    let (l, d) = (5usize, 5usize);
    let media = ts_stream(&mut rng, 65_000, l * d * 6);
    let mut wire = Vec::new();
    let (mut rs, mut cs) = (1u16, 1u16);
    for i in 0..media.len() {
        let pos = i % (l * d);
        if i % l == 0 && i > 0 {
            wire.push(Wire::Fec(
                FecDirection::Row,
                ffmpeg_fec(&media, l, d, true, i - l, rs),
            ));
            rs += 1;
        }
        if i >= l * d && pos % d == 0 {
            let c = pos / d;
            let m0 = i - pos - l * d;
            wire.push(Wire::Fec(
                FecDirection::Column,
                ffmpeg_fec(&media, l, d, false, m0 + c, cs),
            ));
            cs += 1;
        }
        wire.push(Wire::Media(i));
    }
    let lossy = drop_media(&wire, |i| {
        i < l * d * 5 && (i % 13 == 4 || (60..65).contains(&i))
    });
    let (out, _) = receive(DecoderConfig::default(), &media, &lossy);
    let (emitted, lost) = check_output(&media, &out);
    assert_eq!((emitted, lost), (media.len(), 0));
}

#[test]
fn parses_every_encoder_packet() {
    let mut rng = Rng(53);
    let media = ts_stream(&mut rng, 0, 300);
    for (l, d) in [(1u8, 4u8), (4, 4), (20, 5), (5, 20), (10, 10)] {
        let wire = send(
            EncoderConfig {
                columns: l,
                rows: d,
                row_fec: l >= 4,
                ..Default::default()
            },
            &media,
        );
        for w in &wire {
            if let Wire::Fec(dir, p) = w {
                let f = parse_fec_packet(p).unwrap();
                assert_eq!(f.fec.direction, *dir);
                assert_eq!(f.fec.columns(), l);
            }
        }
    }
}

#[test]
fn resyncs_on_new_source_jump_and_restart() {
    let mut rng = Rng(59);
    let mut dec: Decoder<Vec<u8>> = Decoder::new(DecoderConfig {
        latency_packets: Some(8),
        latency_matrices: None,
        latency_ns: None,
        pass_late: false,
    });
    let mut out = Vec::new();
    let mut sent = Vec::new();
    let mut push =
        |dec: &mut Decoder<Vec<u8>>, out: &mut Vec<Output<Vec<u8>>>, seq: u16, ssrc: u32| {
            let p = common::media_packet(&mut rng, seq, u32::from(seq), ssrc, 50);
            sent.push(p.clone());
            dec.push_media(0, p, out).unwrap();
        };
    for s in 100..120 {
        push(&mut dec, &mut out, s, 1);
    }
    // A new SSRC: what was held leaves, the new source starts.
    for s in 5000..5020 {
        push(&mut dec, &mut out, s, 2);
    }
    assert_eq!(dec.stats().resyncs, 1);
    // A jump far beyond MAX_DROPOUT.
    for s in 20_000..20_020 {
        push(&mut dec, &mut out, s, 2);
    }
    assert_eq!(dec.stats().resyncs, 2);
    // The sender restarts just below: 32 late packets in a row restart us.
    for s in 19_000..19_100 {
        push(&mut dec, &mut out, s, 2);
    }
    assert_eq!(dec.stats().resyncs, 3);
    dec.drain(&mut out);
    let emitted: Vec<u16> = out.iter().map(out_seq).collect();
    // Nothing lost, nothing invented; the late run is dropped but for its
    // last packet, which starts the new stream.
    assert!(out.iter().all(|o| !matches!(o, Output::Lost { .. })));
    for o in &out {
        if let Output::Media(p) = o {
            assert!(sent.contains(p));
        }
    }
    assert_eq!(emitted.len(), 20 + 20 + 20 + (100 - 31));
    assert_eq!(dec.stats().late, 31);
}
