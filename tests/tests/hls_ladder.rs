//! End-to-end checks of `hlsladdersink` with real encoders, ffmpeg, ffprobe
//! and an m3u8-rs based RFC 8216 checker.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gst_broadcast_e2e::*;

fn variant_dirs(out: &Path, n: usize) -> Vec<std::path::PathBuf> {
    (0..n).map(|i| out.join(format!("v{i}"))).collect()
}

/// Every segment of a 60 s, 3-variant run decodes without a single ffmpeg
/// message and starts with a keyframe; variants are cut at the same PTS;
/// the multivariant playlist's BANDWIDTH and AVERAGE-BANDWIDTH are the
/// measured peak and average segment bit rates.
#[test]
fn sixty_second_ladder_decodes_and_is_keyframe_aligned() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let mut ladder = Ladder::new(&MAIN_LADDER, 60, false);
    ladder.sink_props = "target-duration=6 playlist-type=vod".into();
    ladder.bframes = 2;
    ladder.run(out);

    let master = read_master_playlist(&out.join("index.m3u8")).unwrap();
    assert_eq!(master.variants.len(), 3);
    let mut extinfs: Vec<Vec<f32>> = Vec::new();
    let mut first_pts: Vec<Vec<f64>> = Vec::new();
    for (i, dir) in variant_dirs(out, 3).iter().enumerate() {
        let pl = read_media_playlist(&dir.join("index.m3u8")).unwrap();
        check_media_playlist(&pl, dir, 6).unwrap();
        assert!(pl.end_list, "vod playlist ends with EXT-X-ENDLIST");
        assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        let total: f32 = pl.segments.iter().map(|s| s.duration).sum();
        assert!((total - 60.0).abs() < 0.1, "variant {i} lists {total} s");
        assert_eq!(pl.segments.len(), 10, "60 s in 6 s segments");

        let mut peak = 0f64;
        let mut bits = 0f64;
        let mut pts = Vec::new();
        for s in &pl.segments {
            let file = dir.join(&s.uri);
            let errors = ffmpeg_decode_errors(&file);
            assert!(
                errors.is_empty(),
                "{}: ffmpeg says {errors}",
                file.display()
            );
            let frames = ffprobe_video_frames(&file);
            assert!(!frames.is_empty(), "{} has no video frames", file.display());
            assert!(
                frames[0].0 && frames[0].1 == "I",
                "{} starts with {:?}",
                file.display(),
                frames[0]
            );
            pts.push(frames[0].2);
            // DTS strictly increasing per stream.
            let mut last = std::collections::HashMap::new();
            for (stream, dts) in ffprobe_packet_dts(&file) {
                if let Some(prev) = last.insert(stream, dts) {
                    assert!(
                        dts > prev,
                        "{}: stream {stream} DTS {dts} after {prev}",
                        file.display()
                    );
                }
            }
            let size = std::fs::metadata(&file).unwrap().len() as f64 * 8.0;
            bits += size;
            if s.duration >= 3.0 {
                peak = peak.max(size / s.duration as f64);
            }
        }
        let v = &master.variants[i];
        let r = MAIN_LADDER[i];
        assert_eq!(v.uri, format!("v{i}/index.m3u8"));
        let res = v.resolution.unwrap();
        assert_eq!((res.width, res.height), (r.width as u64, r.height as u64));
        assert_eq!(v.frame_rate, Some(30.0));
        let codecs = v.codecs.as_deref().unwrap();
        let parts: Vec<&str> = codecs.split(',').collect();
        assert!(
            parts[0].starts_with("avc1.") && parts[0].len() == 11,
            "{codecs}"
        );
        assert_eq!(parts[1], "mp4a.40.2");
        let avg = v.average_bandwidth.unwrap() as f64;
        assert!(
            (v.bandwidth as f64 - peak).abs() / peak < 0.01,
            "BANDWIDTH {} vs peak {peak}",
            v.bandwidth
        );
        assert!(
            (avg - bits / total as f64).abs() / avg < 0.01,
            "AVERAGE-BANDWIDTH {avg}"
        );
        assert!(v.bandwidth as f64 >= avg);
        extinfs.push(pl.segments.iter().map(|s| s.duration).collect());
        first_pts.push(pts);
    }
    assert_aligned(&extinfs, &first_pts);
}

/// Segment N of every variant covers the same time span: equal EXTINF and
/// the same first PTS (within half a frame at 30 fps).
fn assert_aligned(extinfs: &[Vec<f32>], first_pts: &[Vec<f64>]) {
    for i in 1..extinfs.len() {
        assert_eq!(extinfs[i], extinfs[0], "EXTINF of v{i} differs from v0");
        for (a, b) in first_pts[i].iter().zip(&first_pts[0]) {
            assert!(
                (a - b).abs() < 0.017,
                "v{i} segment starts at {a}, v0 at {b}"
            );
        }
    }
}

/// Encoders of very different speeds from a non-live source: x264 `medium`
/// with B-frames (seconds of lookahead) on one rendition, `ultrafast` on the
/// others. With the slow encoder on the top rendition the fast ones run
/// ahead of the reference; on the last one, the reference asks for key units
/// before the slow encoder has delivered anything. Either way every variant
/// is cut at the same PTS, with no misalignment reported.
#[test]
fn encoders_of_different_speeds_are_cut_at_the_same_pts() {
    let _g = heavy();
    for slow in [0, 2] {
        aligned_with_slow_encoder(slow);
    }
}

fn aligned_with_slow_encoder(slow: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let mut ladder = Ladder::new(&MAIN_LADDER, 24, false);
    ladder.sink_props = "target-duration=2 playlist-type=vod".into();
    ladder.bframes = 3;
    ladder.slow_preset = Some((slow, "medium"));
    let run = ladder.run(out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !stderr.contains("no keyframe at the cut"),
        "slow v{slow}: misalignment reported: {stderr}"
    );
    let mut extinfs = Vec::new();
    let mut first_pts = Vec::new();
    for dir in variant_dirs(out, 3) {
        let pl = read_media_playlist(&dir.join("index.m3u8")).unwrap();
        check_media_playlist(&pl, &dir, 2).unwrap();
        assert_eq!(pl.segments.len(), 12, "24 s in 2 s segments");
        first_pts.push(
            pl.segments
                .iter()
                .map(|s| {
                    let frames = ffprobe_video_frames(&dir.join(&s.uri));
                    assert!(frames[0].0, "{} starts without a keyframe", s.uri);
                    frames[0].2
                })
                .collect(),
        );
        extinfs.push(pl.segments.iter().map(|s| s.duration).collect());
    }
    assert_aligned(&extinfs, &first_pts);
}

/// A live run is checked on every playlist rewrite: RFC 8216 rules, sliding
/// window, hold-back before deletion and the max-files bound.
#[test]
fn live_playlists_follow_rfc8216_on_every_rewrite() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_path_buf();
    let mut ladder = Ladder::new(&SMALL_LADDER, 30, true);
    ladder.sink_props = "target-duration=2 playlist-length=4 max-files=12".into();
    let mut child = gst_launch(&ladder.pipeline(&out))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let dirs = variant_dirs(&out, 3);
    let mut checkers: Vec<RewriteChecker> = (0..3).map(|_| RewriteChecker::default()).collect();
    let mut last_text: Vec<Vec<u8>> = vec![Vec::new(); 3];
    let mut max_on_disk = 0;
    // Media sequence -> EXT-X-PROGRAM-DATE-TIME in ms, per variant, and
    // media sequence -> EXTINF in ms.
    let mut pdt_ms: Vec<std::collections::BTreeMap<u64, i64>> = vec![Default::default(); 3];
    let mut durations_ms = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = child.try_wait().unwrap().is_some();
        for (i, dir) in dirs.iter().enumerate() {
            let path = dir.join("index.m3u8");
            let Ok(text) = std::fs::read(&path) else {
                continue;
            };
            max_on_disk = max_on_disk.max(segment_files(dir).len());
            if text == last_text[i] {
                continue;
            }
            let pl = m3u8_rs::parse_media_playlist_res(&text).expect("parsable on every rewrite");
            check_media_playlist(&pl, dir, 2).unwrap_or_else(|e| panic!("v{i} rewrite: {e}"));
            checkers[i]
                .check(&pl, dir, 4)
                .unwrap_or_else(|e| panic!("v{i} rewrite: {e}"));
            assert!(
                pl.playlist_type.is_none(),
                "live playlists carry no PLAYLIST-TYPE"
            );
            assert!(
                String::from_utf8_lossy(&text).contains("#EXT-X-DISCONTINUITY-SEQUENCE:"),
                "v{i}: EXT-X-DISCONTINUITY-SEQUENCE missing (it is written also at 0)"
            );
            let first_pdt = pl.segments.first().and_then(|s| s.program_date_time);
            assert!(
                first_pdt.is_some(),
                "v{i}: no EXT-X-PROGRAM-DATE-TIME on the first segment"
            );
            for (k, seg) in pl.segments.iter().enumerate() {
                let seq = pl.media_sequence + k as u64;
                durations_ms.insert(seq, (seg.duration as f64 * 1000.0).round() as i64);
                if let Some(t) = seg.program_date_time {
                    let ms = t.timestamp_millis();
                    let earlier = pdt_ms[i].insert(seq, ms);
                    assert!(
                        earlier.is_none_or(|e| e == ms),
                        "v{i}: PDT of sequence {seq} changed"
                    );
                }
            }
            last_text[i] = text;
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "live pipeline did not finish");
        std::thread::sleep(Duration::from_millis(15));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (i, c) in checkers.iter().enumerate() {
        assert!(c.rewrites >= 12, "v{i}: only {} rewrites seen", c.rewrites);
        assert!(
            c.media_sequence >= 10,
            "v{i}: window never slid ({})",
            c.media_sequence
        );
        let pl = read_media_playlist(&dirs[i].join("index.m3u8")).unwrap();
        assert!(pl.end_list, "EXT-X-ENDLIST at EOS");
    }
    // One wall-clock anchor: the same instant in every variant at the same
    // media sequence number, advancing exactly with the listed durations.
    for i in 1..3 {
        for (seq, ms) in &pdt_ms[i] {
            if let Some(ref_ms) = pdt_ms[0].get(seq) {
                assert_eq!(ms, ref_ms, "v{i} PDT at sequence {seq} differs from v0");
            }
        }
    }
    for (i, pdts) in pdt_ms.iter().enumerate() {
        assert!(pdts.len() >= 10, "v{i}: only {} PDTs seen", pdts.len());
        let seqs: Vec<(&u64, &i64)> = pdts.iter().collect();
        for w in seqs.windows(2) {
            let ((&a, &ta), (&b, &tb)) = (w[0], w[1]);
            let listed: i64 = (a..b).map(|q| durations_ms[&q]).sum();
            assert_eq!(tb - ta, listed, "v{i}: PDT from sequence {a} to {b}");
        }
    }
    assert!(
        max_on_disk <= 12,
        "{max_on_disk} segments on disk, max-files=12"
    );
    assert!(
        max_on_disk > 4,
        "removed segments were deleted without hold-back"
    );
}

/// `kill -9` at any moment leaves playlists whose every listed segment
/// exists and decodes to its end.
#[test]
fn kill_9_leaves_consistent_playlists() {
    let _g = heavy();
    for (round, kill_after_ms) in [7300u64, 9100].into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().to_path_buf();
        let mut ladder = Ladder::new(&SMALL_LADDER, 600, true);
        ladder.sink_props = "target-duration=1 playlist-length=5".into();
        ladder.key_int = 15;
        let mut child = gst_launch(&ladder.pipeline(&out))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let master = read_master_playlist(&out.join("index.m3u8")).unwrap();
        assert_eq!(master.variants.len(), 3, "round {round}");
        for v in &master.variants {
            let path = out.join(&v.uri);
            let dir = path.parent().unwrap();
            let pl = read_media_playlist(&path).unwrap();
            check_media_playlist(&pl, dir, 1).unwrap();
            assert!(
                pl.segments.len() >= 3,
                "round {round}: {} segments",
                pl.segments.len()
            );
            for s in &pl.segments {
                let file = dir.join(&s.uri);
                let errors = ffmpeg_decode_errors(&file);
                assert!(errors.is_empty(), "{}: {errors}", file.display());
                let frames = ffprobe_video_frames(&file);
                let expected = (s.duration * 30.0).round() as usize;
                assert!(
                    frames.len().abs_diff(expected) <= 1,
                    "{}: {} frames for EXTINF {}",
                    file.display(),
                    frames.len(),
                    s.duration
                );
            }
        }
    }
}
