// SPDX-License-Identifier: MPL-2.0
//! `st2022fecenc` and `st2022fecdec` through `gst_check::Harness`: FEC
//! packets and headers as the encoder sends them, the decoder's ordering,
//! recovery (byte-identical, in order), deadlines on the test clock,
//! malformed input, counters and property validation.

use std::sync::Once;

use gst::glib;
use gst::prelude::*;
use gst_check::Harness;

use gstst2022fec::fec::{parse_fec_packet, FecDirection, RtpHeader};

const MS: u64 = 1_000_000;
const SSRC: u32 = 0x1234_5678;
const MEDIA_CAPS: &str =
    "application/x-rtp, media=(string)video, clock-rate=(int)90000, encoding-name=(string)MP2T, payload=(int)33";
const FEC_CAPS: &str = "application/x-rtp, payload=(int)96";

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstst2022fec::plugin_register_static().expect("plugin registers");
    });
}

/// Deterministic bytes.
fn fill(seed: u64, buf: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// Media packet `i` of a stream starting at sequence number `first`:
/// PT 33, 90 kHz timestamps, marker on every 5th, payload lengths varying
/// between 188 and 1316 bytes.
fn media_packet(first: u16, i: usize) -> Vec<u8> {
    let mut p = RtpHeader {
        marker: i % 5 == 4,
        payload_type: 33,
        sequence_number: first.wrapping_add(i as u16),
        timestamp: 90_000 + 300 * (i as u32 / 4),
        ssrc: SSRC,
        ..Default::default()
    }
    .to_bytes()
    .to_vec();
    let mut payload = vec![0u8; 188 * (1 + (i * 3) % 7)];
    fill(i as u64 + 1, &mut payload);
    p.extend_from_slice(&payload);
    p
}

fn media(first: u16, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| media_packet(first, i)).collect()
}

/// PTS of media packet `i`: 1 ms apart from 1 s.
fn pts_of(i: usize) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(1_000 * MS + i as u64 * MS)
}

fn buffer(bytes: &[u8], pts: Option<gst::ClockTime>) -> gst::Buffer {
    let mut b = gst::Buffer::from_slice(bytes.to_vec());
    {
        let b = b.get_mut().unwrap();
        b.set_pts(pts);
        b.set_dts(pts);
    }
    b
}

fn bytes(b: &gst::Buffer) -> Vec<u8> {
    b.map_readable().unwrap().as_slice().to_vec()
}

fn seq(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[2], b[3]])
}

fn element(name: &str, props: &[(&str, &str)]) -> gst::Element {
    let mut b = gst::ElementFactory::make(name);
    for (k, v) in props {
        b = b.property_from_str(k, v);
    }
    b.build().unwrap()
}

fn stat(el: &gst::Element, field: &str) -> u64 {
    let s = el.property::<gst::Structure>("stats");
    s.get::<u64>(field)
        .unwrap_or_else(|_| panic!("stats field {field} in {s}"))
}

/// The sample line of `family` for the series of `element` and `stream`, if
/// the registry has one.
fn metric(family: &str, element: &str, stream: &str) -> Option<u64> {
    let text = gstbroadcast_exporter::render_local_text();
    let labels = format!("element=\"{element}\"");
    let stream = format!("stream=\"{stream}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .find(|l| l.contains(&labels) && l.contains(&stream))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

/// An encoder with harnesses on `src`, `fec_0` and `fec_1`.
struct Enc {
    el: gst::Element,
    media: Harness,
    column: Harness,
    row: Harness,
}

fn encoder(props: &[(&str, &str)]) -> Enc {
    let el = element("st2022fecenc", props);
    let mut media = Harness::with_element(&el, Some("sink"), Some("src"));
    let column = Harness::with_element(&el, None, Some("fec_0"));
    let row = Harness::with_element(&el, None, Some("fec_1"));
    media.set_src_caps_str(MEDIA_CAPS);
    Enc {
        el,
        media,
        column,
        row,
    }
}

fn pull_all(h: &mut Harness) -> Vec<gst::Buffer> {
    std::iter::from_fn(|| h.try_pull()).collect()
}

/// One packet on the wire, in the order the encoder sent it.
#[derive(Debug, Clone)]
enum Wire {
    Media(usize),
    Column(Vec<u8>),
    Row(Vec<u8>),
}

/// Runs `media` through an encoder and returns the send order (each media
/// packet followed by the FEC it released), after EOS.
fn encode(props: &[(&str, &str)], media: &[Vec<u8>]) -> Vec<Wire> {
    let mut e = encoder(props);
    let mut wire = Vec::new();
    let collect = |e: &mut Enc, wire: &mut Vec<Wire>| {
        wire.extend(
            pull_all(&mut e.column)
                .iter()
                .map(|b| Wire::Column(bytes(b))),
        );
        wire.extend(pull_all(&mut e.row).iter().map(|b| Wire::Row(bytes(b))));
    };
    for (i, m) in media.iter().enumerate() {
        e.media.push(buffer(m, Some(pts_of(i)))).unwrap();
        let out = e.media.pull().unwrap();
        assert_eq!(bytes(&out), *m);
        wire.push(Wire::Media(i));
        collect(&mut e, &mut wire);
    }
    assert!(e.media.push_event(gst::event::Eos::new()));
    collect(&mut e, &mut wire);
    wire
}

/// The FEC packets (both directions) [`encode`] sends, in send order.
fn encode_fec(props: &[(&str, &str)], media: &[Vec<u8>]) -> Vec<Vec<u8>> {
    encode(props, media)
        .into_iter()
        .filter_map(|w| match w {
            Wire::Media(_) => None,
            Wire::Column(b) | Wire::Row(b) => Some(b),
        })
        .collect()
}

/// A decoder with harnesses on `sink`/`src`, `fec_0` and `fec_1`, on the
/// test clock (time stands still unless a test moves it).
struct Dec {
    el: gst::Element,
    media: Harness,
    fec: [Harness; 2],
}

fn decoder(props: &[(&str, &str)]) -> Dec {
    let el = element("st2022fecdec", props);
    let mut media = Harness::with_element(&el, Some("sink"), Some("src"));
    let mut f0 = Harness::with_element(&el, Some("fec_0"), None);
    let mut f1 = Harness::with_element(&el, Some("fec_1"), None);
    f0.set_src_caps_str(FEC_CAPS);
    f1.set_src_caps_str(FEC_CAPS);
    media.set_src_caps_str(MEDIA_CAPS);
    media.use_testclock();
    Dec {
        el,
        media,
        fec: [f0, f1],
    }
}

/// Feeds `wire` to a decoder without the media packets in `lost`, column
/// FEC on pad `column_pad` and row FEC on the other, then EOS; returns the
/// buffers sent, in order.
fn decode(
    dec: &mut Dec,
    media: &[Vec<u8>],
    wire: &[Wire],
    lost: &[usize],
    column_pad: usize,
) -> Vec<gst::Buffer> {
    for w in wire {
        match w {
            Wire::Media(i) if lost.contains(i) => {}
            Wire::Media(i) => {
                dec.media
                    .push(buffer(&media[*i], Some(pts_of(*i))))
                    .unwrap();
            }
            Wire::Column(p) => {
                dec.fec[column_pad].push(buffer(p, None)).unwrap();
            }
            Wire::Row(p) => {
                dec.fec[1 - column_pad].push(buffer(p, None)).unwrap();
            }
        }
    }
    assert!(dec.media.push_event(gst::event::Eos::new()));
    pull_all(&mut dec.media)
}

/// Checks that `out` is exactly `media`, byte for byte, in order.
fn assert_complete(media: &[Vec<u8>], out: &[gst::Buffer]) {
    let got: Vec<u16> = out.iter().map(|b| seq(&bytes(b))).collect();
    let want: Vec<u16> = media.iter().map(|m| seq(m)).collect();
    assert_eq!(got, want, "sequence numbers out");
    for (m, b) in media.iter().zip(out) {
        assert_eq!(&bytes(b), m, "packet {} differs", seq(m));
    }
}

/// The encoder sends every media buffer on unchanged (the same buffer
/// object), one row FEC packet per row on fec_1 and, block-aligned, one
/// column FEC packet per column on fec_0 during the matrix's last row;
/// every FEC header (direction, SNBase, offset, NA, PT, sequence numbers,
/// recovery fields) and payload is what ST 2022-1 prescribes; FEC packets
/// carry the PTS of the media buffer they follow and the FEC caps.
#[test]
fn encoder_sends_media_unchanged_and_fec_per_matrix() {
    init();
    let (l, d) = (4usize, 5usize);
    let mut e = encoder(&[
        ("columns", "4"),
        ("rows", "5"),
        ("column-layout", "block-aligned"),
        ("pt", "100"),
    ]);
    let first = 65_530u16;
    let media = media(first, 2 * l * d);
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for (i, m) in media.iter().enumerate() {
        let inbuf = buffer(m, Some(pts_of(i)));
        e.media.push(inbuf.clone()).unwrap();
        let out = e.media.pull().unwrap();
        assert_eq!(out.as_ptr(), inbuf.as_ptr(), "media {i} is the same buffer");
        let c = pull_all(&mut e.column);
        let r = pull_all(&mut e.row);
        let pos = i % (l * d);
        assert_eq!(r.len(), usize::from(pos % l == l - 1), "row FEC after {i}");
        assert_eq!(
            c.len(),
            usize::from(pos / l == d - 1),
            "column FEC after {i}"
        );
        for b in c.iter().chain(&r) {
            assert_eq!(b.pts(), Some(pts_of(i)));
        }
        columns.extend(c.iter().map(|b| (i, bytes(b))));
        rows.extend(r.iter().map(|b| (i, bytes(b))));
    }
    assert_eq!(columns.len(), 2 * l);
    assert_eq!(rows.len(), 2 * d);

    for (k, (_, p)) in rows.iter().enumerate() {
        let f = parse_fec_packet(p).unwrap();
        let protected: Vec<&Vec<u8>> = media[k * l..(k + 1) * l].iter().collect();
        assert_eq!(f.fec.direction, FecDirection::Row);
        assert_eq!(f.rtp.payload_type, 100);
        assert_eq!(f.rtp.sequence_number, k as u16);
        assert_eq!(f.fec.sn_base_low, seq(protected[0]));
        assert_eq!((f.fec.offset, f.fec.na), (1, l as u8));
        check_recovery_fields(&f, &protected);
    }
    for (k, (_, p)) in columns.iter().enumerate() {
        let f = parse_fec_packet(p).unwrap();
        let (matrix, col) = (k / l, k % l);
        let protected: Vec<&Vec<u8>> = (0..d)
            .map(|r| &media[matrix * l * d + r * l + col])
            .collect();
        assert_eq!(f.fec.direction, FecDirection::Column);
        assert_eq!(f.rtp.payload_type, 100);
        assert_eq!(f.rtp.sequence_number, k as u16);
        assert_eq!(f.fec.sn_base_low, seq(protected[0]));
        assert_eq!((f.fec.offset, f.fec.na), (l as u8, d as u8));
        check_recovery_fields(&f, &protected);
    }

    // The FEC pads carry their own caps.
    let caps = e
        .column
        .sinkpad()
        .unwrap()
        .current_caps()
        .expect("fec_0 caps");
    let s = caps.structure(0).unwrap();
    assert_eq!(s.name(), "application/x-rtp");
    assert_eq!(s.get::<i32>("payload").unwrap(), 100);
    assert_eq!(s.get::<i32>("clock-rate").unwrap(), 90_000);
    assert!(e.row.sinkpad().unwrap().current_caps().is_some());

    assert_eq!(stat(&e.el, "media-packets"), 2 * (l * d) as u64);
    assert_eq!(stat(&e.el, "column-packets"), 2 * l as u64);
    assert_eq!(stat(&e.el, "row-packets"), 2 * d as u64);
    let name = e.el.name();
    assert_eq!(
        metric("gst_st2022fec_media_packets_total", &name, "media"),
        Some(2 * (l * d) as u64)
    );
    assert_eq!(
        metric("gst_st2022fec_fec_packets_total", &name, "column"),
        Some(2 * l as u64)
    );
    assert_eq!(
        metric("gst_st2022fec_fec_packets_total", &name, "row"),
        Some(2 * d as u64)
    );
    e.el.set_state(gst::State::Null).unwrap();
    assert_eq!(
        metric("gst_st2022fec_media_packets_total", &name, "media"),
        None,
        "series removed on stop"
    );
}

/// A packet in several memories (an RTP header and its payload apart, as
/// payloaders can make them) gets the same FEC as the same bytes in one.
#[test]
fn encoder_reads_packets_split_over_memories() {
    init();
    let props = [
        ("columns", "4"),
        ("rows", "5"),
        ("column-layout", "block-aligned"),
    ];
    let media = media(100, 2 * 4 * 5);
    let expected = encode_fec(&props, &media);
    assert_eq!(expected.len(), 2 * (4 + 5));

    let mut e = encoder(&props);
    let mut got = Vec::new();
    for (i, m) in media.iter().enumerate() {
        let mut b = gst::Buffer::new();
        {
            let b = b.get_mut().unwrap();
            b.append_memory(gst::Memory::from_slice(m[..12].to_vec()));
            b.append_memory(gst::Memory::from_slice(m[12..].to_vec()));
            b.set_pts(pts_of(i));
        }
        assert_eq!(b.n_memory(), 2);
        e.media.push(b).unwrap();
        assert_eq!(bytes(&e.media.pull().unwrap()), *m);
        got.extend(pull_all(&mut e.column).iter().map(bytes));
        got.extend(pull_all(&mut e.row).iter().map(bytes));
    }
    assert_eq!(got, expected);
    assert_eq!(stat(&e.el, "media-packets"), media.len() as u64);
}

/// The encoder refills FEC buffers it sent earlier once downstream has
/// released them, and never one that downstream still holds: kept buffers
/// keep their bytes, released ones come back with the new packet's bytes
/// and timestamps.
#[test]
fn encoder_reuses_only_released_fec_buffers() {
    init();
    let props = [
        ("columns", "4"),
        ("rows", "4"),
        ("column-layout", "block-aligned"),
    ];
    let media = media(7000, 6 * 4 * 4);
    let expected = encode_fec(&props, &media);
    assert_eq!(expected.len(), 6 * (4 + 4));

    for keep in [true, false] {
        let mut e = encoder(&props);
        let mut kept = Vec::new();
        let mut got = Vec::new();
        let mut addresses = std::collections::HashSet::new();
        for (i, m) in media.iter().enumerate() {
            e.media.push(buffer(m, Some(pts_of(i)))).unwrap();
            e.media.pull().unwrap();
            let fec: Vec<gst::Buffer> = pull_all(&mut e.column)
                .into_iter()
                .chain(pull_all(&mut e.row))
                .collect();
            for b in fec {
                assert_eq!(b.pts(), Some(pts_of(i)), "FEC after media packet {i}");
                assert!(b.flags().is_empty(), "{:?}", b.flags());
                // The encoder keeps a reference to what it sent, so
                // downstream never gets a FEC buffer writable in place.
                assert!(!b.is_writable(), "the encoder keeps what it sent");
                addresses.insert(b.as_ptr() as usize);
                got.push(bytes(&b));
                if keep {
                    kept.push(b);
                }
            }
        }
        assert_eq!(got, expected, "keep={keep}");
        if keep {
            // Every buffer is its own and still holds what was sent.
            assert_eq!(addresses.len(), expected.len());
            let now: Vec<Vec<u8>> = kept.iter().map(bytes).collect();
            assert_eq!(now, expected);
        } else {
            // Released buffers are refilled: a few per pad, not one per
            // packet.
            assert!(addresses.len() <= 2 * 5, "{} buffers", addresses.len());
        }
    }
}

/// The FEC header's recovery fields and payload are the XOR of the
/// protected packets' (RFC 2733 / ST 2022-1).
fn check_recovery_fields(f: &gstst2022fec::fec::FecPacket<'_>, protected: &[&Vec<u8>]) {
    let longest = protected.iter().map(|p| p.len() - 12).max().unwrap();
    let mut payload = vec![0u8; longest];
    let (mut len, mut pt, mut ts, mut m) = (0u16, 0u8, 0u32, false);
    for p in protected {
        for (a, b) in payload.iter_mut().zip(&p[12..]) {
            *a ^= b;
        }
        let h = RtpHeader::parse(p).unwrap();
        len ^= (p.len() - 12) as u16;
        pt ^= h.payload_type;
        ts ^= h.timestamp;
        m ^= h.marker;
    }
    assert_eq!(f.payload, &payload[..]);
    assert_eq!(f.fec.length_recovery, len);
    assert_eq!(f.fec.pt_recovery, pt);
    assert_eq!(f.fec.ts_recovery, ts);
    assert_eq!(f.rtp.marker, m);
    assert!(f.fec.e);
}

/// With the default staggered layout, column c of a matrix leaves after
/// packet c x D of the next matrix (FFmpeg's and GStreamer's schedule), the
/// columns still queued leave at EOS, with the complete columns of a last,
/// partial matrix (its incomplete ones are dropped), and the FEC pads get a
/// preroll GAP at the first media PTS and EOS.
#[test]
fn encoder_staggers_columns_and_flushes_at_eos() {
    init();
    let (l, d) = (5usize, 4usize);
    let mut e = encoder(&[("columns", "5"), ("rows", "4"), ("enable-row-fec", "false")]);
    // The second matrix ends after packet 15 of 20: only its column 0 is
    // complete.
    let media = media(100, l * d + 16);
    let mut when = Vec::new();
    for (i, m) in media.iter().enumerate() {
        e.media.push(buffer(m, Some(pts_of(i)))).unwrap();
        e.media.pull().unwrap();
        if i == 0 {
            // A GAP at the first media PTS for the sink of fec_0 to preroll
            // on, after stream-start, caps and segment (pushed from another
            // thread: waited for here).
            let mut types = Vec::new();
            let gap = loop {
                let ev = e.column.pull_event().unwrap();
                if let gst::EventView::Gap(g) = ev.view() {
                    break g.get().0;
                }
                types.push(ev.type_());
            };
            assert_eq!(gap, pts_of(0));
            assert_eq!(
                types,
                [
                    gst::EventType::StreamStart,
                    gst::EventType::Caps,
                    gst::EventType::Segment
                ]
            );
        }
        for b in pull_all(&mut e.column) {
            let f = parse_fec_packet(&bytes(&b)).unwrap().fec;
            when.push((i, f.sn_base_low));
        }
        assert!(e.row.try_pull().is_none(), "row FEC disabled");
    }
    // Column c (SNBase 100 + c) after packet 20 + 4c.
    assert_eq!(when, [(20, 100), (24, 101), (28, 102), (32, 103)]);
    assert!(e.media.push_event(gst::event::Eos::new()));
    let rest: Vec<u16> = pull_all(&mut e.column)
        .iter()
        .map(|b| parse_fec_packet(&bytes(b)).unwrap().fec.sn_base_low)
        .collect();
    // Column 4 of the first matrix, column 0 (SNBase 120) of the second.
    assert_eq!(rest, [104, 120]);
    let eos = std::iter::from_fn(|| e.column.try_pull_event())
        .any(|ev| ev.type_() == gst::EventType::Eos);
    assert!(eos, "EOS on fec_0");
    assert_eq!(stat(&e.el, "column-packets"), l as u64 + 1);
    assert_eq!(stat(&e.el, "row-packets"), 0);
}

/// A buffer that is not RTP goes on unchanged without FEC, is counted in
/// stats and the registry, and raises one warning message; a sequence gap
/// restarts the matrix (counted as a discontinuity).
#[test]
fn encoder_counts_bad_input_and_gaps() {
    init();
    let mut e = encoder(&[("columns", "4"), ("rows", "4")]);
    let bus = gst::Bus::new();
    e.el.set_bus(Some(&bus));
    let media = media(0, 8);
    e.media.push(buffer(&media[0], None)).unwrap();
    e.media.push(buffer(&[1, 2, 3, 4, 5], None)).unwrap();
    e.media.push(buffer(&[0x40; 20], None)).unwrap();
    let out: Vec<Vec<u8>> = pull_all(&mut e.media).iter().map(bytes).collect();
    assert_eq!(out, [media[0].clone(), vec![1, 2, 3, 4, 5], vec![0x40; 20]]);
    assert_eq!(stat(&e.el, "malformed"), 2);
    assert_eq!(
        metric("gst_st2022fec_malformed_total", &e.el.name(), "media"),
        Some(2)
    );
    let warnings: Vec<String> =
        std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
            .map(|m| match m.view() {
                gst::MessageView::Warning(w) => w.error().to_string(),
                _ => unreachable!(),
            })
            .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not an RTP packet"), "{}", warnings[0]);

    // Packets 1..3 then 5..8 (4 missing): the first row never completes,
    // the new matrix starts at 5 and its first row gives one row packet.
    for i in [1usize, 2, 3, 5, 6, 7] {
        e.media.push(buffer(&media[i], None)).unwrap();
    }
    e.media.push(buffer(&media_packet(0, 8), None)).unwrap();
    let rows: Vec<u16> = pull_all(&mut e.row)
        .iter()
        .map(|b| parse_fec_packet(&bytes(b)).unwrap().fec.sn_base_low)
        .collect();
    assert_eq!(rows, [0, 5]);
    assert_eq!(stat(&e.el, "discontinuities"), 1);
}

/// Settings that break the ST 2022-1 limits fail READY->PAUSED with an
/// element error naming the values; out-of-range values are refused by
/// the property; row FEC cannot be switched on while running with fewer
/// than 4 columns; valid extremes start.
#[test]
fn encoder_validates_settings() {
    init();
    let start = |props: &[(&str, &str)]| -> Result<(), String> {
        let pipeline = gst::Pipeline::new();
        let el = element("st2022fecenc", props);
        pipeline.add(&el).unwrap();
        let res = pipeline.set_state(gst::State::Paused);
        let msg = pipeline
            .bus()
            .unwrap()
            .pop_filtered(&[gst::MessageType::Error])
            .map(|m| match m.view() {
                gst::MessageView::Error(e) => e.error().to_string(),
                _ => unreachable!(),
            });
        pipeline.set_state(gst::State::Null).unwrap();
        match res {
            Ok(_) => {
                assert!(msg.is_none());
                Ok(())
            }
            Err(_) => Err(msg.expect("an error message")),
        }
    };
    let err = start(&[("columns", "20"), ("rows", "10")]).unwrap_err();
    assert!(err.contains("columns=20 rows=10"), "{err}");
    assert!(err.contains("20x10 exceeds 100"), "{err}");
    let err = start(&[("columns", "3"), ("rows", "4")]).unwrap_err();
    assert!(err.contains("columns=3"), "{err}");
    assert!(err.contains("at least 4 columns"), "{err}");
    assert_eq!(
        start(&[("columns", "3"), ("rows", "4"), ("enable-row-fec", "false")]),
        Ok(())
    );
    assert_eq!(start(&[("columns", "20"), ("rows", "5")]), Ok(()));
    assert_eq!(
        start(&[
            ("columns", "1"),
            ("rows", "20"),
            ("enable-row-fec", "false")
        ]),
        Ok(())
    );

    // GObject refuses values outside the property ranges.
    let el = element("st2022fecenc", &[]);
    let range = |name: &str| {
        let p = el.find_property(name).unwrap();
        let p = p.downcast_ref::<glib::ParamSpecUInt>().unwrap();
        (p.minimum(), p.maximum(), p.default_value())
    };
    assert_eq!(range("columns"), (1, 20, 10));
    assert_eq!(range("rows"), (4, 20, 10));
    assert_eq!(range("pt"), (0, 127, 96));

    let mut e = encoder(&[("columns", "2"), ("rows", "4"), ("enable-row-fec", "false")]);
    let bus = gst::Bus::new();
    e.el.set_bus(Some(&bus));
    e.el.set_property("enable-row-fec", true);
    assert!(!e.el.property::<bool>("enable-row-fec"));
    let warning = bus.pop_filtered(&[gst::MessageType::Warning]).unwrap();
    let gst::MessageView::Warning(w) = warning.view() else {
        unreachable!()
    };
    assert!(w.error().to_string().contains("columns=2"), "{}", w.error());
    for (i, m) in media(0, 8).iter().enumerate() {
        e.media.push(buffer(m, Some(pts_of(i)))).unwrap();
    }
    assert!(e.row.try_pull().is_none());
    assert_eq!(pull_all(&mut e.column).len(), 0, "one matrix is 8 packets");
}

/// Without FEC the decoder sends every media packet, the very same
/// buffers, in sequence order (adjacent swaps put back in order), starting
/// once the first latency period (2 matrices of 100 before L and D are
/// known) has passed, and all of it at EOS.
#[test]
fn decoder_passes_clean_media_in_order() {
    init();
    let mut dec = decoder(&[]);
    let media = media(65_500, 260);
    let mut order: Vec<usize> = (0..media.len()).collect();
    for k in (10..250).step_by(17) {
        order.swap(k, k + 1);
    }
    let mut sent = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let b = buffer(&media[i], Some(pts_of(i)));
        sent.push((i, b.as_ptr()));
        dec.media.push(b).unwrap();
        if k == 199 {
            assert_eq!(dec.media.buffers_in_queue(), 0, "first latency period");
        }
        if k == 200 {
            // Packet 200 is two matrices of 100 after the start.
            assert_eq!(dec.media.buffers_in_queue(), 201);
        }
    }
    // Every packet arrived: all are out, a swapped pair as soon as both
    // halves are in.
    assert_eq!(dec.media.buffers_in_queue(), 260);
    assert!(dec.media.push_event(gst::event::Eos::new()));
    let out = pull_all(&mut dec.media);
    assert_complete(&media, &out);
    for b in &out {
        let i = media.iter().position(|m| seq(m) == seq(&bytes(b))).unwrap();
        let ptr = sent.iter().find(|(j, _)| *j == i).unwrap().1;
        assert_eq!(b.as_ptr(), ptr, "packet {i} is the buffer received");
        assert_eq!(b.pts(), Some(pts_of(i)));
    }
    assert_eq!(stat(&dec.el, "received"), media.len() as u64);
    assert_eq!(stat(&dec.el, "recovered"), 0);
    assert_eq!(stat(&dec.el, "unrecoverable"), 0);
}

/// One loss in every row of a 2D 4x5 stream: each packet is rebuilt from
/// its row FEC, byte-identical and in place; a rebuilt packet gets the PTS
/// of the buffer sent before it; counters in stats and the registry.
#[test]
fn decoder_recovers_one_loss_per_row() {
    init();
    let (l, d) = (4usize, 5usize);
    let media = media(65_000, 3 * l * d);
    let wire = encode(&[("columns", "4"), ("rows", "5")], &media);
    // Packet (row r, column 1 + r % 3) of every row: never the first of a
    // row, so the buffer before it was received.
    let lost: Vec<usize> = (0..3 * d).map(|row| row * l + 1 + row % 3).collect();
    let mut dec = decoder(&[]);
    let out = decode(&mut dec, &media, &wire, &lost, 0);
    assert_complete(&media, &out);
    for &i in &lost {
        assert_eq!(out[i].pts(), Some(pts_of(i - 1)), "PTS of rebuilt {i}");
    }
    assert_eq!(stat(&dec.el, "recovered"), lost.len() as u64);
    assert_eq!(stat(&dec.el, "received"), (media.len() - lost.len()) as u64);
    assert_eq!(stat(&dec.el, "unrecoverable"), 0);
    let stats = dec.el.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u32>("columns").unwrap(), l as u32, "L learned");
    assert_eq!(stats.get::<u32>("rows").unwrap(), d as u32, "D learned");
    let name = dec.el.name();
    assert_eq!(
        metric("gst_st2022fec_recovered_total", &name, "media"),
        Some(lost.len() as u64)
    );
    assert_eq!(
        metric("gst_st2022fec_media_received_total", &name, "media"),
        Some((media.len() - lost.len()) as u64)
    );
    assert_eq!(
        metric("gst_st2022fec_fec_packets_total", &name, "row"),
        Some(3 * d as u64)
    );
    dec.el.set_state(gst::State::Null).unwrap();
    assert_eq!(
        metric("gst_st2022fec_recovered_total", &name, "media"),
        None
    );
}

/// Bursts of L consecutive packets (a whole row, and L packets across a
/// row boundary) are rebuilt from the staggered column FEC, which arrives
/// during the next matrix; the FEC streams are swapped between the pads
/// (column FEC on fec_1) to show that packets are routed by the FEC
/// header's D bit.
#[test]
fn decoder_recovers_burst_from_columns() {
    init();
    let (l, d) = (6usize, 4usize);
    let media = media(12_345, 4 * l * d);
    let wire = encode(&[("columns", "6"), ("rows", "4")], &media);
    // Row 1 of matrix 1 and a burst across a row boundary of matrix 2
    // (from matrix 1 on, the decoder knows D from the column FEC).
    let m = l * d;
    let lost: Vec<usize> = (m + l..m + 2 * l).chain(2 * m + 3..2 * m + 3 + l).collect();
    let mut dec = decoder(&[]);
    let out = decode(&mut dec, &media, &wire, &lost, 1);
    assert_complete(&media, &out);
    assert_eq!(stat(&dec.el, "recovered"), lost.len() as u64);
    assert_eq!(stat(&dec.el, "unrecoverable"), 0);
}

/// Losses that no single row or column can repair: (0,1), (0,2), (1,2),
/// (2,2), (2,3) of a 5x5 matrix. Row 1 rebuilds (1,2); column 2 then still misses two; row
/// 0 and row 2 miss two each; column 1 rebuilds (0,1), which lets row 0
/// rebuild (0,2), column 2 (2,2), and row 2 or column 3 (2,3): a chain of
/// row and column recoveries, every packet byte-identical and in order.
#[test]
fn decoder_recovers_row_column_chain() {
    init();
    let (l, d) = (5usize, 5usize);
    let media = media(7, 3 * l * d);
    let wire = encode(&[("columns", "5"), ("rows", "5")], &media);
    // In matrix 1.
    let at = |r: usize, c: usize| l * d + r * l + c;
    let lost = vec![at(0, 1), at(0, 2), at(1, 2), at(2, 2), at(2, 3)];
    let mut dec = decoder(&[]);
    let out = decode(&mut dec, &media, &wire, &lost, 0);
    assert_complete(&media, &out);
    assert_eq!(stat(&dec.el, "recovered"), lost.len() as u64);
}

/// A packet that cannot be recovered (no FEC at all) holds back the ones
/// after it until `latency` has passed on the pipeline clock, then is
/// given up: counted as unrecoverable, nothing sent in its place (the
/// sequence gap stays), and the held packets leave without further input.
/// The first output also waits one latency period. The latency query adds
/// `latency`.
#[test]
fn decoder_gives_up_after_latency_on_clock() {
    init();
    let mut dec = decoder(&[("latency", "100"), ("latency-matrices", "0")]);
    let media = media(500, 10);
    for (i, m) in media.iter().enumerate().take(5) {
        dec.media.push(buffer(m, Some(pts_of(i)))).unwrap();
    }
    assert_eq!(dec.media.buffers_in_queue(), 0, "first latency period");
    // The timer waits for t = 100 ms (start + latency).
    dec.media.crank_single_clock_wait().unwrap();
    for i in 0..5 {
        assert_eq!(seq(&bytes(&dec.media.pull().unwrap())), 500 + i);
    }
    assert_eq!(
        dec.media.testclock().unwrap().time(),
        gst::ClockTime::from_mseconds(100)
    );
    // Packet 5 is lost; 6..9 wait behind it.
    for (i, m) in media.iter().enumerate().skip(6) {
        dec.media.push(buffer(m, Some(pts_of(i)))).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(dec.media.buffers_in_queue(), 0, "held behind the loss");
    assert_eq!(stat(&dec.el, "pending"), 5);
    // Deadline: known missing at 100 ms, + 100 ms.
    dec.media.crank_single_clock_wait().unwrap();
    for i in 6..10 {
        assert_eq!(seq(&bytes(&dec.media.pull().unwrap())), 500 + i);
    }
    assert_eq!(
        dec.media.testclock().unwrap().time(),
        gst::ClockTime::from_mseconds(200)
    );
    assert_eq!(stat(&dec.el, "unrecoverable"), 1);
    assert_eq!(stat(&dec.el, "received"), 9);
    assert_eq!(
        metric("gst_st2022fec_unrecoverable_total", &dec.el.name(), "media"),
        Some(1)
    );

    dec.media
        .set_upstream_latency(gst::ClockTime::from_mseconds(20));
    assert_eq!(
        dec.media.query_latency(),
        Some(gst::ClockTime::from_mseconds(120))
    );
}

/// Serialized events keep their place among the media packets: one that
/// comes in while packets before it are held (waiting for the first latency
/// period, or behind a loss) goes out after them, not ahead, and after
/// packets earlier in sequence that arrive after it at the start; with nothing
/// held it goes straight through. A flush drops a held event unless it is
/// sticky.
#[test]
fn decoder_keeps_serialized_events_in_order() {
    use std::sync::{Arc, Mutex};
    init();
    let mut dec = decoder(&[("latency", "100"), ("latency-matrices", "0")]);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let srcpad = dec.el.static_pad("src").unwrap();
    let log = seen.clone();
    srcpad.add_probe(
        gst::PadProbeType::BUFFER
            | gst::PadProbeType::EVENT_DOWNSTREAM
            | gst::PadProbeType::EVENT_FLUSH,
        move |_, info| {
            let entry = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => Some(format!("b{}", seq(&bytes(b)))),
                Some(gst::PadProbeData::Event(e)) => match e.view() {
                    gst::EventView::CustomDownstream(c) => Some(
                        c.structure()
                            .map(|s| s.name().to_string())
                            .unwrap_or_default(),
                    ),
                    gst::EventView::Tag(_) => Some("tag".into()),
                    gst::EventView::FlushStop(_) => Some("flush-stop".into()),
                    _ => None,
                },
                _ => None,
            };
            if let Some(entry) = entry {
                log.lock().unwrap().push(entry);
            }
            gst::PadProbeReturn::Ok
        },
    );
    let take = || std::mem::take(&mut *seen.lock().unwrap());
    // What the timer thread sends after a crank: wait for `n` entries.
    let take_n = |n: usize| {
        let t0 = std::time::Instant::now();
        while seen.lock().unwrap().len() < n && t0.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        take()
    };
    let marker = |name: &str| gst::event::CustomDownstream::new(gst::Structure::new_empty(name));
    let media = media(500, 12);
    let push = |dec: &mut Dec, i: usize| {
        dec.media.push(buffer(&media[i], Some(pts_of(i)))).unwrap();
    };

    // Output waits for the first latency period: the event waits with it.
    // 0 and 1 arrive after it, reordered: earlier in sequence, they still
    // go out before it.
    for i in 2..5 {
        push(&mut dec, i);
    }
    assert!(dec.media.push_event(marker("e1")));
    for i in 0..2 {
        push(&mut dec, i);
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(take(), Vec::<String>::new(), "all held");
    dec.media.crank_single_clock_wait().unwrap();
    assert_eq!(take_n(6), ["b500", "b501", "b502", "b503", "b504", "e1"]);

    // Packet 5 is lost: 6..9 and the events after them wait behind it.
    for i in 6..10 {
        push(&mut dec, i);
    }
    assert!(dec.media.push_event(marker("e2")));
    let tags = gst::TagList::new();
    assert!(dec.media.push_event(gst::event::Tag::new(tags)));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(take(), Vec::<String>::new(), "held behind the loss");
    dec.media.crank_single_clock_wait().unwrap();
    assert_eq!(take_n(6), ["b506", "b507", "b508", "b509", "e2", "tag"]);
    assert_eq!(stat(&dec.el, "unrecoverable"), 1);

    // Nothing held: straight through, in order.
    push(&mut dec, 10);
    assert!(dec.media.push_event(marker("e3")));
    assert_eq!(take(), ["b510", "e3"]);

    // A flush while an event is held: the custom event is dropped, the
    // sticky tag event is sent after the flush.
    push(&mut dec, 11);
    let _ = take();
    // 12 is missing, 13 arrives: 13 and the events wait.
    let p13 = media_packet(500, 13);
    dec.media.push(buffer(&p13, Some(pts_of(13)))).unwrap();
    assert!(dec.media.push_event(marker("e4")));
    let mut tags = gst::TagList::new();
    tags.get_mut()
        .unwrap()
        .add::<gst::tags::Title>(&"after flush", gst::TagMergeMode::Replace);
    assert!(dec.media.push_event(gst::event::Tag::new(tags)));
    assert_eq!(take(), Vec::<String>::new(), "held behind 512");
    assert!(dec.media.push_event(gst::event::FlushStart::new()));
    assert!(dec.media.push_event(gst::event::FlushStop::new(true)));
    assert_eq!(take(), ["flush-stop", "tag"]);
}

/// With the packet limit, a missing packet is given up as soon as
/// `latency-matrices` L x D matrices of newer media arrived, without
/// waiting for the clock; a late arrival of it afterwards is counted as
/// late and not sent; duplicates are counted and dropped.
#[test]
fn decoder_matrix_limit_late_and_duplicates() {
    matrix_limit_late_and_duplicates(false);
}

/// The same with `pass-late`: the late packet is sent when it arrives,
/// once, out of order, with its own timestamp; everything else as above.
#[test]
fn decoder_pass_late_sends_late_packets() {
    matrix_limit_late_and_duplicates(true);
}

fn matrix_limit_late_and_duplicates(pass_late: bool) {
    init();
    let (l, d) = (4usize, 4usize);
    let media = media(0, 6 * l * d);
    let wire = encode(
        &[("columns", "4"), ("rows", "4"), ("enable-row-fec", "false")],
        &media,
    );
    let pass = if pass_late { "true" } else { "false" };
    let mut dec = decoder(&[("latency-matrices", "1"), ("pass-late", pass)]);
    // Packets 20 and 24 (one column of matrix 1) and their column FEC lost.
    let lost = [20usize, 24];
    let mut column_fec_dropped = false;
    for w in &wire {
        match w {
            Wire::Media(i) if lost.contains(i) => {}
            Wire::Media(i) => {
                dec.media
                    .push(buffer(&media[*i], Some(pts_of(*i))))
                    .unwrap();
                if *i == 30 {
                    dec.media
                        .push(buffer(&media[*i], Some(pts_of(*i))))
                        .unwrap();
                }
            }
            Wire::Column(p) => {
                let f = parse_fec_packet(p).unwrap().fec;
                if f.sn_base_low == 16 {
                    column_fec_dropped = true;
                } else {
                    dec.fec[0].push(buffer(p, None)).unwrap();
                }
            }
            Wire::Row(_) => unreachable!(),
        }
        if matches!(w, Wire::Media(i) if *i == 20 + l * d) {
            // One matrix after packet 20: both given up, the rest out.
            let out = pull_all(&mut dec.media);
            let last = seq(&bytes(out.last().unwrap()));
            assert_eq!(last, 23, "20 given up, 21..23 out, held behind 24");
        }
    }
    assert!(column_fec_dropped);
    let before = pull_all(&mut dec.media);
    assert!(before.iter().all(|b| seq(&bytes(b)) != 20));
    dec.media
        .push(buffer(&media[20], Some(pts_of(20))))
        .unwrap();
    let late = pull_all(&mut dec.media);
    if pass_late {
        assert_eq!(late.len(), 1, "the late packet, at once");
        assert_eq!(bytes(&late[0]), media[20]);
        assert_eq!(late[0].pts(), Some(pts_of(20)));
    } else {
        assert!(late.is_empty());
    }
    assert!(dec.media.push_event(gst::event::Eos::new()));
    let out = pull_all(&mut dec.media);
    assert!(out.iter().all(|b| seq(&bytes(b)) != 20));
    assert_eq!(stat(&dec.el, "unrecoverable"), 2);
    assert_eq!(stat(&dec.el, "late"), 1);
    assert_eq!(stat(&dec.el, "duplicates"), 1);
    let name = dec.el.name();
    assert_eq!(metric("gst_st2022fec_late_total", &name, "media"), Some(1));
    assert_eq!(
        metric("gst_st2022fec_duplicates_total", &name, "media"),
        Some(1)
    );
}

/// Malformed FEC packets (too short, wrong RTP version, unknown FEC type,
/// row packet with offset != 1) and media that is not RTP are counted per
/// kind and ignored, one warning message per kind; the media still flows
/// and a valid FEC packet afterwards still recovers.
#[test]
fn decoder_counts_malformed_input() {
    init();
    let (l, d) = (4usize, 4usize);
    let media = media(900, 3 * l * d);
    let wire = encode(&[("columns", "4"), ("rows", "4")], &media);
    let mut dec = decoder(&[]);
    let bus = gst::Bus::new();
    dec.el.set_bus(Some(&bus));

    let row = wire
        .iter()
        .find_map(|w| match w {
            Wire::Row(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let bad: Vec<Vec<u8>> = vec![
        vec![0x80; 20],
        {
            let mut p = row.clone();
            p[0] = 0x40;
            p
        },
        {
            let mut p = row.clone();
            p[24] |= 0x08;
            p
        },
        {
            let mut p = row.clone();
            p[25] = 4;
            p
        },
    ];
    for p in &bad {
        dec.fec[1].push(buffer(p, None)).unwrap();
    }
    dec.media.push(buffer(&[0x80, 1, 2], None)).unwrap();
    dec.media.push(buffer(&[0u8; 40], None)).unwrap();
    let out = decode(&mut dec, &media, &wire, &[5, 22], 0);
    assert_complete(&media, &out);
    assert_eq!(stat(&dec.el, "malformed-fec"), 4);
    assert_eq!(stat(&dec.el, "malformed-media"), 2);
    assert_eq!(stat(&dec.el, "malformed"), 6);
    assert_eq!(stat(&dec.el, "recovered"), 2);
    let name = dec.el.name();
    assert_eq!(
        metric("gst_st2022fec_malformed_total", &name, "fec"),
        Some(4)
    );
    assert_eq!(
        metric("gst_st2022fec_malformed_total", &name, "media"),
        Some(2)
    );
    let warnings: Vec<String> =
        std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
            .map(|m| match m.view() {
                gst::MessageView::Warning(w) => w.error().to_string(),
                _ => unreachable!(),
            })
            .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("malformed FEC packet on fec_1"),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].contains("not RTP"), "{}", warnings[1]);
}

/// A flush forgets what the decoder holds (nothing is sent for it) and the
/// stream starts afresh; caps on src are the media caps from sink; the FEC
/// streams' events do not reach src.
#[test]
fn decoder_flush_and_caps() {
    init();
    let mut dec = decoder(&[]);
    let caps = dec.media.srcpad().unwrap().current_caps().unwrap();
    let media = media(40_000, 30);
    for (i, m) in media.iter().enumerate().take(10) {
        dec.media.push(buffer(m, Some(pts_of(i)))).unwrap();
    }
    assert_eq!(stat(&dec.el, "pending"), 10);
    assert!(dec.media.push_event(gst::event::FlushStart::new()));
    assert!(dec.media.push_event(gst::event::FlushStop::new(true)));
    assert_eq!(stat(&dec.el, "pending"), 0);
    assert_eq!(dec.media.buffers_in_queue(), 0);
    dec.media
        .push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
    for (i, m) in media.iter().enumerate().skip(10) {
        dec.media.push(buffer(m, Some(pts_of(i)))).unwrap();
    }
    assert!(dec.media.push_event(gst::event::Eos::new()));
    let out = pull_all(&mut dec.media);
    assert_complete(&media[10..], &out);
    assert_eq!(
        dec.media.sinkpad().unwrap().current_caps().unwrap(),
        caps,
        "media caps on src"
    );
    // Only the media stream's stream-start reached src.
    let starts = std::iter::from_fn(|| dec.media.try_pull_event())
        .filter(|e| e.type_() == gst::EventType::StreamStart)
        .count();
    assert_eq!(starts, 1);
}

/// A row FEC packet that arrives before the row's last media packet (FEC
/// and media come on different sockets) does not "recover" that packet:
/// when the packet then arrives it is sent as received (no recovery, no
/// duplicate). When it is really lost, it is rebuilt as soon as newer media
/// shows the loss, or at the deadline when no more media comes.
#[test]
fn decoder_fec_ahead_of_media_is_not_a_recovery() {
    init();
    let (l, d) = (4usize, 4usize);
    let media = media(300, 3 * l * d);
    let wire = encode(
        &[
            ("columns", "4"),
            ("rows", "4"),
            ("enable-column-fec", "false"),
        ],
        &media,
    );
    let rows: Vec<Vec<u8>> = wire
        .iter()
        .filter_map(|w| match w {
            Wire::Row(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let mut dec = decoder(&[("latency", "100")]);
    let push = |dec: &mut Dec, i: usize| {
        dec.media.push(buffer(&media[i], Some(pts_of(i)))).unwrap();
    };
    // Rows 0..=7: FEC before the last packet of each row.
    for (row, fec) in rows.iter().enumerate().take(8) {
        for i in row * l..row * l + 3 {
            push(&mut dec, i);
        }
        dec.fec[1].push(buffer(fec, None)).unwrap();
        push(&mut dec, row * l + 3);
    }
    assert_eq!(stat(&dec.el, "recovered"), 0);
    assert_eq!(stat(&dec.el, "duplicates"), 0);
    // Row 8: its last packet (35) is lost; 36 shows it.
    for i in 32..35 {
        push(&mut dec, i);
    }
    dec.fec[1].push(buffer(&rows[8], None)).unwrap();
    assert_eq!(stat(&dec.el, "recovered"), 0, "35 may still be in flight");
    push(&mut dec, 36);
    assert_eq!(stat(&dec.el, "recovered"), 1, "36 arrived: 35 was lost");
    // Row 9: its last packet (39) is lost and the media stops: rebuilt at
    // the deadline (start + 100 ms, test clock).
    for i in 37..39 {
        push(&mut dec, i);
    }
    dec.fec[1].push(buffer(&rows[9], None)).unwrap();
    assert_eq!(stat(&dec.el, "recovered"), 1);
    // Output began by the packet limit (2 matrices of L = 4 while D is
    // unknown), so the only clock wait is 39's deadline: known missing at
    // t = 0 when the row FEC came, + 100 ms.
    let mut out = pull_all(&mut dec.media);
    assert_eq!(out.len(), 39, "0..=38 out, 39 missing");
    dec.media.crank_single_clock_wait().unwrap();
    out.push(dec.media.pull().unwrap());
    assert_eq!(
        dec.media.testclock().unwrap().time(),
        gst::ClockTime::from_mseconds(100)
    );
    assert_eq!(stat(&dec.el, "recovered"), 2);
    assert_eq!(stat(&dec.el, "unrecoverable"), 0);
    assert_complete(&media[..40], &out);
}
