//! End-to-end interoperability of `st2022fecenc`/`st2022fecdec` (SMPTE
//! ST 2022-1 row/column FEC) with FFmpeg's `prompeg` and GStreamer's
//! `rtpst2022-1-fecenc`/`rtpst2022-1-fecdec`, their recovery under random
//! loss, and the `pipelines/st2022fec-{send,recv}.sh` recipes.
//!
//! Losses are deterministic: the packets of the three streams (media, column
//! FEC, row FEC) are captured or produced once, in send order, and fed to a
//! decoder element in process from one thread with a fixed loss pattern
//! (see `gst_broadcast_e2e::fec`):
//!
//! - FFmpeg as the sender: `ffmpeg -re -i in.ts -c copy -f rtp_mpegts -fec
//!   prompeg=l=L:d=D 'rtp://127.0.0.1:P?pkt_size=1328'` captured on P, P+2,
//!   P+4 (ordered by kernel timestamps), then nine loss patterns (one
//!   matrix each: two packets of a row of the first matrix, before the
//!   decoder has seen any column FEC; a single packet, a row, L consecutive
//!   packets across two rows, a column, an L-shape needing row-column-row
//!   recovery, media with its own row or column FEC, FEC only, two in a
//!   row) are dropped. Our decoder must put out every media packet, in
//!   order, and the TS `rtpmp2tdepay` makes of it must equal FFmpeg's
//!   loss-free TS byte for byte.
//! - GStreamer both ways: a TS file packetised by `rtpmp2tpay ssrc=0`
//!   (GStreamer's encoder protects SSRC 0 only) through each encoder, the same
//!   patterns, each decoder.
//! - Statistics through the elements: 300000 packets, L = D = 10,
//!   block-aligned, i.i.d. loss on media and both FEC streams at 1 % and 3 %,
//!   and bursts of L media packets at every offset of the matrix; ours beside
//!   GStreamer's decoder on the same packets.
//! - The recipes `pipelines/st2022fec-send.sh` and `st2022fec-recv.sh` on
//!   loopback, with media dropped at random at the receiver (`--drop`), with
//!   and without `--rtx`: the received TS decodes, and the decoder's
//!   counters (metrics textfile) show recoveries.
//!
//! Only our elements' failures fail a test; GStreamer's decoder is printed
//! beside ours. Each test writes its table to
//! `target/<profile>/st2022fec-e2e-<test>.txt` as well.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gst_broadcast_e2e::fec::*;
use gst_broadcast_e2e::{heavy, plugin_dir, repo_root};

const OUR_ENC: &str = "st2022fecenc";
const OUR_DEC: &str = "st2022fecdec";
const GST_ENC: &str = "rtpst2022-1-fecenc";
const GST_DEC: &str = "rtpst2022-1-fecdec";

/// Seconds of the test TS: enough matrices for every pattern at 10 x 10.
const TS_SECONDS: u32 = 6;

/// The test TS, generated once per build directory.
fn input_ts() -> PathBuf {
    static TS: OnceLock<PathBuf> = OnceLock::new();
    TS.get_or_init(|| {
        let dir = plugin_dir().join("st2022fec-e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("in-{TS_SECONDS}s.ts"));
        if !path.exists() {
            let tmp = dir.join(format!("in-{TS_SECONDS}s.tmp.ts"));
            generate_ts(&tmp, TS_SECONDS).expect("generate the test TS with ffmpeg");
            // A whole number of 7-packet RTP payloads: `rtpmp2tpay` (1.22)
            // drops a shorter last block at EOS.
            let mut bytes = std::fs::read(&tmp).unwrap();
            bytes.truncate(bytes.len() / 1316 * 1316);
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        path
    })
    .clone()
}

fn require_our_elements() {
    for e in [OUR_ENC, OUR_DEC] {
        assert!(
            have_element(e),
            "{e} not found in {}: cargo build --release -p gst-plugin-st2022fec",
            plugin_dir().display()
        );
    }
}

fn report(test: &str, text: &str) {
    println!("{text}");
    let path = plugin_dir().join(format!("st2022fec-e2e-{test}.txt"));
    std::fs::write(&path, text).ok();
}

/// Our decoder's row: everything back, in order, byte for byte, and its
/// `stats` counted the recoveries.
fn check_ours(row: &PatternRow) -> Vec<String> {
    let mut f = Vec::new();
    let what = format!("{} -> {}", row.sender, row.decoder);
    if !row.missing.is_empty() {
        f.push(format!("{what}: missing media {:?}", row.missing));
    }
    if row.corrupted > 0 {
        f.push(format!(
            "{what}: {} packets differ from the sent ones",
            row.corrupted
        ));
    }
    if row.duplicates > 0 || row.reordered > 0 {
        f.push(format!(
            "{what}: {} duplicates, {} out of order",
            row.duplicates, row.reordered
        ));
    }
    if !row.identical {
        f.push(format!(
            "{what}: depayloaded TS differs from the loss-free one"
        ));
    }
    if !row.messages.is_empty() {
        f.push(format!("{what}: messages {:?}", row.messages));
    }
    if let Some(s) = &row.stats {
        if stat(s, "unrecoverable") != 0 || stat(s, "malformed") != 0 {
            f.push(format!("{what}: stats {s}"));
        }
        // A packet rebuilt from FEC that then arrives itself (FEC sent
        // before the media packet completing the group) counts as recovered
        // and as a duplicate: recovered - duplicates is what was lost.
        let recovered = stat(s, "recovered") - stat(s, "duplicates").min(stat(s, "recovered"));
        if recovered != row.lost as u64 {
            f.push(format!(
                "{what}: stats recovered - duplicates = {recovered}, {} were lost: {s}",
                row.lost
            ));
        }
    } else {
        f.push(format!("{what}: no stats property"));
    }
    f
}

/// FFmpeg's `prompeg` as the sender, captured on loopback, with every
/// pattern: our decoder rebuilds FFmpeg's loss-free TS byte for byte.
#[test]
fn ffmpeg_prompeg_sender() {
    let _g = heavy();
    require_our_elements();
    let ts = input_ts();
    let started = Instant::now();
    // Both captures at once: each takes TS_SECONDS of wall time (-re).
    let configs: [(u8, u8); 2] = [(10, 10), (6, 8)];
    let captures: Vec<(u8, u8, Vec<Packet>)> = std::thread::scope(|s| {
        let handles: Vec<_> = configs
            .iter()
            .map(|&(l, d)| {
                let ts = ts.clone();
                s.spawn(move || (l, d, capture_ffmpeg(&ts, l, d)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (l, d, c) = h.join().unwrap();
                (
                    l,
                    d,
                    c.unwrap_or_else(|e| panic!("prompeg l={l} d={d}: {e}")),
                )
            })
            .collect()
    });
    let capture_wall = started.elapsed();

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (l, d, cap) in &captures {
        let g = Geometry::of(cap, (*l).into(), (*d).into());
        assert!(
            g.full_matrices(cap) as usize >= PATTERNS.len() + 2,
            "prompeg l={l} d={d}: {} matrices captured, the patterns need {}",
            g.full_matrices(cap),
            PATTERNS.len() + 2
        );
        let losses = patterns(g);
        let reference = reference_ts(cap);
        // The patterns do hit the TS: without FEC it would differ.
        let bare: Vec<Packet> = losses
            .apply(cap)
            .into_iter()
            .filter(|p| p.stream == Stream::Media)
            .collect();
        assert_ne!(reference_ts(&bare), reference);
        let sender = format!("ffmpeg prompeg l={l} d={d}");
        let ours = run_pattern(&sender, OUR_DEC, cap, &losses, &reference);
        failures.extend(check_ours(&ours));
        rows.push(ours);
        rows.push(run_pattern(&sender, GST_DEC, cap, &losses, &reference));
    }
    let mut text = format!(
        "FFmpeg prompeg -> decoders ({TS_SECONDS} s TS, captures took {:.1} s); patterns:\n",
        capture_wall.as_secs_f64()
    );
    for p in PATTERNS {
        let _ = writeln!(text, "  - {p}");
    }
    text += &format_patterns(&rows);
    report("ffmpeg", &text);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Both directions with GStreamer's elements, and ours with ours: every
/// encoder's stream with every pattern through every decoder.
#[test]
fn gstreamer_elements_both_directions() {
    // Not real time, but its pipelines fill both cores: beside the live
    // senders of `pipeline_recipes_on_loopback` they made x264 late and
    // frames went missing before the FEC (130 of 150 once).
    let _g = heavy();
    require_our_elements();
    let ts = input_ts();
    let file = std::fs::read(&ts).unwrap();
    let media = rtp_from_ts(&ts);
    assert!(
        reference_ts(&media) == file,
        "rtpmp2tpay payloads are the file"
    );

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut fec_compare = String::new();
    for (l, d) in [(10u8, 10u8), (6, 8)] {
        let encoders = [
            format!("{GST_ENC} columns={l} rows={d}"),
            format!("{OUR_ENC} columns={l} rows={d} column-layout=staggered"),
            format!("{OUR_ENC} columns={l} rows={d} column-layout=block-aligned"),
        ];
        let label = |enc: &str| {
            let layout = enc.split("column-layout=").nth(1).unwrap_or("");
            let name = enc.split_whitespace().next().unwrap();
            format!("{name} L={l} D={d} {layout}")
                .trim_end()
                .to_string()
        };
        let mut streams: HashMap<String, Vec<Packet>> = HashMap::new();
        for enc in &encoders {
            let (out, msgs) = encode(enc, &media);
            assert!(msgs.is_empty(), "{enc}: {msgs:?}");
            if enc.starts_with(OUR_ENC) {
                failures.extend(check_encoder_output(enc, &out, &media, l, d));
            }
            streams.insert(enc.clone(), out);
        }
        // Our staggered FEC against GStreamer's, packet by packet.
        let _ = writeln!(
            fec_compare,
            "{}",
            compare_fec(
                &streams[&encoders[0]],
                &streams[&encoders[1]],
                &label(&encoders[1])
            )
        );

        let mut theirs_ok: HashMap<String, bool> = HashMap::new();
        for enc in &encoders {
            let stream = &streams[enc];
            let g = Geometry::of(stream, l.into(), d.into());
            let losses = patterns(g);
            let ours = run_pattern(&label(enc), OUR_DEC, stream, &losses, &file);
            failures.extend(check_ours(&ours));
            rows.push(ours);
            let theirs = run_pattern(&label(enc), GST_DEC, stream, &losses, &file);
            theirs_ok.insert(enc.clone(), theirs.identical && theirs.missing.is_empty());
            rows.push(theirs);
        }
        // Where GStreamer's decoder recovers GStreamer's encoder, it must
        // recover ours too.
        if theirs_ok[&encoders[0]] {
            for enc in &encoders[1..] {
                if !theirs_ok[enc] {
                    failures.push(format!(
                        "{GST_DEC} recovers {} but not {enc} under the same patterns",
                        encoders[0]
                    ));
                }
            }
        }
    }
    let mut text = String::from("GStreamer <-> ours (encoder -> decoder), same patterns:\n");
    text += &format_patterns(&rows);
    text += &fec_compare;
    report("gstreamer", &text);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Our encoder's pads carry what they should: media unchanged on `src`,
/// column FEC (D = 0, offset L, NA = D) only on `fec_0`, row FEC (D = 1,
/// offset 1, NA = L) only on `fec_1`, one of each per column/row of every
/// complete matrix, and one per complete column (all D rows present) of a
/// last, partial matrix (staggered columns still queued are sent at EOS).
fn check_encoder_output(enc: &str, out: &[Packet], media: &[Packet], l: u8, d: u8) -> Vec<String> {
    let mut f = Vec::new();
    let sent: Vec<&[u8]> = out
        .iter()
        .filter(|p| p.stream == Stream::Media)
        .map(|p| p.data.as_slice())
        .collect();
    let orig: Vec<&[u8]> = media.iter().map(|p| p.data.as_slice()).collect();
    if sent != orig {
        f.push(format!("{enc}: src does not carry the media unchanged"));
    }
    let mut cols = BTreeSet::new();
    let mut rows = BTreeSet::new();
    for p in out.iter().filter(|p| p.stream != Stream::Media) {
        match core::parse_fec_packet(&p.data) {
            Ok(fec) => {
                let h = fec.fec;
                let ok = match (p.stream, h.direction) {
                    (Stream::Column, core::FecDirection::Column) => {
                        cols.insert(h.sn_base_low);
                        h.offset == l && h.na == d
                    }
                    (Stream::Row, core::FecDirection::Row) => {
                        rows.insert(h.sn_base_low);
                        h.offset == 1 && h.na == l
                    }
                    _ => false,
                };
                if !ok {
                    f.push(format!("{enc}: {:?} pad carried {h:?}", p.stream));
                }
            }
            Err(e) => f.push(format!(
                "{enc}: {:?} pad carried a bad FEC packet: {e}",
                p.stream
            )),
        }
    }
    let n = media.len();
    let (l, d) = (usize::from(l), usize::from(d));
    if rows.len() != n / l {
        f.push(format!(
            "{enc}: {} row FEC packets for {n} media (L={l})",
            rows.len()
        ));
    }
    // Staggered columns of the last matrix go out at EOS, and so do the
    // complete columns of a partial one: with r of its L x D packets, the
    // last row holds r - L x (D - 1) of them. (The media count follows the
    // size of the x264 output, which varies from run to run.)
    let want = n / (l * d) * l + (n % (l * d)).saturating_sub(l * (d - 1));
    if cols.len() != want {
        f.push(format!(
            "{enc}: {} column FEC packets for {n} media, expected {want}",
            cols.len()
        ));
    }
    f
}

/// Compares two encoders' FEC packets for the same groups: the FEC header
/// and payload (bytes 12 on) must be equal; the RTP header is each
/// sender's own.
fn compare_fec(theirs: &[Packet], ours: &[Packet], what: &str) -> String {
    let index = |s: &[Packet]| -> HashMap<(bool, u16), Vec<u8>> {
        s.iter()
            .filter(|p| p.stream != Stream::Media)
            .filter_map(|p| {
                let (dir, sn) = fec_key(&p.data)?;
                Some(((dir == core::FecDirection::Row, sn), p.data.clone()))
            })
            .collect()
    };
    let (a, b) = (index(theirs), index(ours));
    let (mut same, mut differ, mut example) = (0, 0, String::new());
    for (k, pa) in &a {
        if let Some(pb) = b.get(k) {
            if pa[12..] == pb[12..] {
                same += 1;
            } else {
                differ += 1;
                if example.is_empty() {
                    let at = pa[12..]
                        .iter()
                        .zip(&pb[12..])
                        .position(|(x, y)| x != y)
                        .map_or(pa.len().min(pb.len()), |i| i + 12);
                    example = format!(
                        " (first: {} FEC SNBase {}, byte {at}: {GST_ENC} {:02x?} ours {:02x?})",
                        if k.0 { "row" } else { "column" },
                        k.1,
                        &pa[at.min(pa.len())..(at + 4).min(pa.len())],
                        &pb[at.min(pb.len())..(at + 4).min(pb.len())]
                    );
                }
            }
        }
    }
    format!(
        "FEC packets of {what} vs {GST_ENC} for the same groups: {same} identical from byte 12 on, \
         {differ} different{example}"
    )
}

/// Residual loss at L = D = 10, block-aligned, through the elements: 1 %
/// and 3 % i.i.d. loss on media and both FEC streams, and bursts of L
/// media packets at every offset of the matrix; ours beside GStreamer's
/// decoder on the same packets.
#[test]
fn recovery_statistics() {
    let _g = heavy();
    require_our_elements();
    const N: u64 = 300_000;
    let enc = "st2022fecenc columns=10 rows=10 column-layout=block-aligned";
    let staggered = "st2022fecenc columns=10 rows=10 column-layout=staggered";
    let decoders = [OUR_DEC, GST_DEC];
    let started = Instant::now();
    let mut rows = Vec::new();
    for (p, seed, goal) in [(0.01, 1u64, 1e-4), (0.03, 3, 5e-4)] {
        let label = format!("i.i.d. {:.0} %, all streams", p * 100.0);
        let r = run_statistics(enc, &decoders, N, &label, &mut IidLoss(Rng::new(seed), p));
        rows.extend(r.into_iter().map(|r| (r, Some(goal))));
    }
    // 100 bursts of L media packets, each one packet later in its matrix.
    let burst = |wire| BurstLoss {
        len: 10,
        every: 300,
        span: 100,
        start: 150,
        wire,
    };
    let r = run_statistics(
        enc,
        &decoders,
        30_000,
        "bursts of L media",
        &mut burst(false),
    );
    rows.extend(r.into_iter().map(|r| (r, Some(0.0))));
    // For information: the same bursts taking the FEC sent meanwhile too,
    // block-aligned (columns leave during the last row) and staggered.
    for (e, name) in [(enc, "block-aligned"), (staggered, "staggered")] {
        let label = format!("bursts of L on the wire, {name}");
        let r = run_statistics(e, &decoders, 30_000, &label, &mut burst(true));
        rows.extend(r.into_iter().map(|r| (r, None)));
    }
    let wall = started.elapsed();

    let mut failures = Vec::new();
    for (r, goal) in &rows {
        if r.decoder != OUR_DEC {
            continue;
        }
        if let Some(goal) = goal {
            if r.residual_rate() > *goal {
                failures.push(format!(
                    "{}: residual {:.2e} above {goal:.0e}",
                    r.loss,
                    r.residual_rate()
                ));
            }
        }
        if r.bad > 0 || r.duplicates > 0 || r.reordered > 0 || !r.messages.is_empty() {
            failures.push(format!(
                "{}: {} bad, {} duplicate, {} reordered packets; messages {:?}",
                r.loss, r.bad, r.duplicates, r.reordered, r.messages
            ));
        }
        if let Some(s) = &r.stats {
            if stat(s, "unrecoverable") != r.residual {
                failures.push(format!(
                    "{}: stats unrecoverable {} but {} missing: {s}",
                    r.loss,
                    stat(s, "unrecoverable"),
                    r.residual
                ));
            }
        }
    }
    let plain: Vec<StatsRow> = rows.iter().map(|(r, _)| r.clone()).collect();
    let text = format!(
        "Recovery through the elements, L = D = 10 ({:.1} s); goals for ours: \
         1 % <= 1e-4, 3 % <= 5e-4, bursts of L media = 0\n{}",
        wall.as_secs_f64(),
        format_stats(&plain)
    );
    report("statistics", &text);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The value of a metric line `name{...stream="media"...} v` in the
/// textfiles of `dir` (the sum over the files and series that match).
fn metric(dir: &Path, name: &str, stream: &str) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        // `*.prom`, not hidden: the exporter writes `.<name>.prom.*.tmp`
        // first and renames it.
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') || !file.ends_with(".prom") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if line.starts_with(&format!("{name}{{"))
                && line.contains(&format!("stream=\"{stream}\""))
            {
                total += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0) as u64;
            }
        }
    }
    total
}

/// One sender/receiver run of the recipes on loopback.
fn run_recipes(name: &str, extra: &[&str], drop: &str) -> Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("st2022fec-recipes-{name}-"))
        .tempdir()
        .unwrap();
    let d = dir.path();
    let out = d.join("received.ts");
    let (recv_prom, send_prom) = (d.join("recv-prom"), d.join("send-prom"));
    std::fs::create_dir_all(&recv_prom).unwrap();
    std::fs::create_dir_all(&send_prom).unwrap();
    // P, P+2, P+4 free (P+1 and P+6 are assumed free as well).
    let port = Ports::bind().base;
    let script = |s: &str| repo_root().join("pipelines").join(s);
    let log = |s: &str| std::fs::File::create(d.join(s)).unwrap();

    let mut recv = Command::new("bash");
    recv.arg(script("st2022fec-recv.sh"))
        .args([
            "--port",
            &port.to_string(),
            "--duration",
            "10",
            "--drop",
            drop,
        ])
        .arg("--out")
        .arg(&out)
        .args(extra)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_METRICS_TEXTFILE_DIR", &recv_prom)
        .env("GST_METRICS_INTERVAL_MS", "200")
        .env("GST_DEBUG", "rtprtxreceive:5,st2022fecdec:7")
        .env("GST_DEBUG_NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log("recv.log"))
        .stderr(log("recv.err"));
    let mut recv = recv.spawn().map_err(|e| format!("recv: {e}"))?;
    // The receiver is PLAYING before the sender starts.
    let t0 = Instant::now();
    while !std::fs::read_to_string(d.join("recv.log"))
        .unwrap_or_default()
        .contains("Setting pipeline to PLAYING")
    {
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = recv.kill();
            return Err(format!(
                "{name}: receiver not PLAYING after 10 s: {}",
                std::fs::read_to_string(d.join("recv.err")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut send = Command::new("bash")
        .arg(script("st2022fec-send.sh"))
        .args(["--port", &port.to_string(), "--duration", "5"])
        .args(extra)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_METRICS_TEXTFILE_DIR", &send_prom)
        .env("GST_METRICS_INTERVAL_MS", "200")
        .stdin(Stdio::null())
        .stdout(log("send.log"))
        .stderr(log("send.err"))
        .spawn()
        .map_err(|e| format!("send: {e}"))?;
    // The counters are read while the pipelines run: a stream's series
    // leave the registry (and the textfile) when it ends.
    let mut counters: HashMap<(String, String), u64> = HashMap::new();
    let mut poll = |dir: &Path, name: &str, stream: &str| {
        let v = metric(dir, name, stream);
        let e = counters
            .entry((name.to_string(), stream.to_string()))
            .or_default();
        *e = (*e).max(v);
    };
    let (mut send_status, mut recv_status) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(40);
    while (send_status.is_none() || recv_status.is_none()) && Instant::now() < deadline {
        for (n, st) in [
            ("gst_st2022fec_recovered_total", "media"),
            ("gst_st2022fec_unrecoverable_total", "media"),
            ("gst_st2022fec_media_received_total", "media"),
        ] {
            poll(&recv_prom, n, st);
        }
        poll(&send_prom, "gst_st2022fec_fec_packets_total", "column");
        poll(&send_prom, "gst_st2022fec_fec_packets_total", "row");
        if send_status.is_none() {
            send_status = send.try_wait().map_err(|e| e.to_string())?;
        }
        if recv_status.is_none() {
            recv_status = recv.try_wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    let mut problems = Vec::new();
    match send_status {
        Some(s) if s.success() => {}
        s => {
            let _ = send.kill();
            problems.push(format!("sender failed ({s:?}): {}", read("send.err")));
        }
    }
    match recv_status {
        Some(s) if s.success() => {}
        s => {
            let _ = recv.kill();
            problems.push(format!(
                "receiver failed ({s:?}): {}\n{}",
                read("recv.log"),
                read("recv.err")
            ));
        }
    }

    let frames = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args(["stream=codec_name,nb_read_frames", "-of", "csv=p=0"])
        .arg(&out)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let video: u64 = frames
        .lines()
        .find_map(|l| l.strip_prefix("h264,"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let audio = frames.lines().any(|l| l.starts_with("aac,"));
    // The last packets of the stream have no FEC (the last row and matrix
    // are incomplete), and when they are lost nothing after them tells
    // anyone: decode the first 4.5 s of the 5.
    let errors = {
        let o = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&out)
            .args(["-t", "4.5", "-f", "null", "-"])
            .output()
            .map_err(|e| format!("ffmpeg: {e}"))?;
        String::from_utf8_lossy(&o.stderr).trim().to_string()
    };
    let c = |n: &str, st: &str| counters.get(&(n.to_string(), st.to_string())).copied();
    let recovered = c("gst_st2022fec_recovered_total", "media").unwrap_or(0);
    let unrecoverable = c("gst_st2022fec_unrecoverable_total", "media").unwrap_or(0);
    let received = c("gst_st2022fec_media_received_total", "media").unwrap_or(0);
    let fec_sent = c("gst_st2022fec_fec_packets_total", "column").unwrap_or(0)
        + c("gst_st2022fec_fec_packets_total", "row").unwrap_or(0);
    // 5 s of 30 fps from the sender. A packet FEC could not rebuild may cost
    // a frame or two; damage before the tail must be explained by a packet
    // the decoder counted.
    if video < 140 || !audio {
        problems.push(format!(
            "received TS has {video} of 150 video frames (ffprobe: {frames:?})"
        ));
    }
    if !errors.is_empty() && unrecoverable == 0 {
        problems.push(format!(
            "ffmpeg decode errors, but no packet counted unrecoverable: {errors}"
        ));
    }
    if recovered == 0 || unrecoverable > 2 {
        problems.push(format!(
            "decoder: {recovered} recovered, {unrecoverable} unrecoverable of {received} received"
        ));
    }
    if fec_sent == 0 {
        problems.push("encoder: no FEC packets counted in the sender's metrics".into());
    }
    let rtx = read("recv.err").matches("Got rtx packet").count()
        + read("recv.log").matches("Got rtx packet").count();
    if extra.contains(&"--rtx") && rtx == 0 {
        problems.push("no retransmission reached rtprtxreceive".into());
    }
    // What the decoder gave up and recovered (its debug log), to tell where
    // in the stream the losses were.
    let seqs_after = |what: &str| -> Vec<u32> {
        let text = read("recv.err") + &read("recv.log");
        text.lines()
            .filter_map(|l| l.split(what).nth(1))
            .filter_map(|r| {
                r.trim_start_matches(|c: char| !c.is_ascii_digit())
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    // A packet given up while media still flows is a failure. One given up
    // after the media stopped (the decoder logs how long it has been idle)
    // is in the stream's tail, whose FEC the sender never completed: it is
    // only counted against `unrecoverable` above.
    let (tail, gave_up): (GaveUp, GaveUp) = {
        let text = read("recv.err") + &read("recv.log");
        text.lines()
            .filter_map(|l| l.split("gave up packet ").nth(1))
            .filter_map(|r| {
                let (seq, rest) = r.split_once(' ')?;
                let idle = rest
                    .split("Some(")
                    .nth(1)
                    .and_then(|v| v.split(')').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Some((seq.parse().ok()?, idle))
            })
            .partition(|&(_, idle)| idle >= TAIL_IDLE_MS)
    };
    let rebuilt = seqs_after("recovered packet");
    if !gave_up.is_empty() {
        problems.push(format!(
            "decoder gave up (sequence number, ms the media had been idle) {gave_up:?} while \
             media flowed; it recovered {} packets, sequence numbers {:?}",
            rebuilt.len(),
            rebuilt
        ));
    }
    let summary = format!(
        "{name:<10} drop {drop}: {received} received, {recovered} recovered by FEC, \
         {unrecoverable} unrecoverable ({} given up after the media stopped), {rtx} \
         retransmitted; \
         encoder sent {fec_sent} FEC packets; \
         TS: {video} video frames, audio {audio}, ffmpeg decode {}",
        tail.len(),
        if errors.is_empty() {
            "clean"
        } else {
            "with errors"
        }
    );
    if problems.is_empty() {
        Ok(summary)
    } else {
        let keep = dir.keep();
        Err(format!(
            "{summary}\n  {}\n  (logs kept in {})",
            problems.join("\n  "),
            keep.display()
        ))
    }
}

/// Packets the decoder gave up: (sequence number, ms the media had been idle).
type GaveUp = Vec<(u32, u64)>;

/// A packet given up this long after the last media packet arrived is in
/// the tail of the stream (the sender has stopped), ms.
const TAIL_IDLE_MS: u64 = 200;

/// `pipelines/st2022fec-send.sh` to `pipelines/st2022fec-recv.sh` on
/// loopback, media dropped at random before the receiver (`--drop`): 1 %
/// with FEC through rtpbin's fec-encoders/fec-decoders, then 2 % with
/// `--rtx` as well (retransmission first, FEC for the rest).
#[test]
fn pipeline_recipes_on_loopback() {
    let _g = heavy();
    require_our_elements();
    for s in ["st2022fec-send.sh", "st2022fec-recv.sh"] {
        let out = Command::new("bash")
            .arg(repo_root().join("pipelines").join(s))
            .arg("--dry-run")
            .output()
            .unwrap();
        assert!(out.status.success(), "{s} --dry-run: {out:?}");
    }
    let started = Instant::now();
    // One after the other: two live x264 senders at once on 2 cores make
    // the senders late, and frames go missing before the FEC.
    let results = [
        run_recipes("fec", &[], "0.01"),
        run_recipes("fec+rtx", &["--rtx"], "0.02"),
    ];
    let mut text = format!(
        "Recipes on loopback ({:.1} s):\n",
        started.elapsed().as_secs_f64()
    );
    for r in &results {
        let _ = writeln!(text, "  {}", r.as_ref().unwrap_or_else(|e| e));
    }
    report("recipes", &text);
    assert!(results.iter().all(|r| r.is_ok()), "{text}");
}
