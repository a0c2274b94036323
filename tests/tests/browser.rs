//! hls.js 1.x in headless Chromium plays `hlsladdersink` output, live and
//! vod, with every variant forced in turn (`hls.currentLevel`), reaching that
//! variant's picture size with no hls.js error event.

use std::process::Stdio;
use std::time::{Duration, Instant};

use gst_broadcast_e2e::*;

#[test]
fn hlsjs_plays_every_variant_of_a_vod_ladder() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let mut ladder = Ladder::new(&MAIN_LADDER, 24, false);
    ladder.sink_props = "target-duration=2 playlist-type=vod".into();
    ladder.run(tmp.path());
    let (ok, report) = play_in_chromium(tmp.path(), "index.m3u8", &MAIN_LADDER, false);
    assert!(ok, "hls.js failed on the vod ladder: {report}");
}

#[test]
fn hlsjs_plays_every_variant_of_a_live_ladder() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_path_buf();
    let mut ladder = Ladder::new(&SMALL_LADDER, 120, true);
    ladder.sink_props = "target-duration=2 playlist-length=6".into();
    let mut child = gst_launch(&ladder.pipeline(&out))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // hls.js starts three target durations from the live edge: wait for
    // four segments in every variant.
    let deadline = Instant::now() + Duration::from_secs(40);
    while !(0..3).all(|i| segment_files(&out.join(format!("v{i}"))).len() >= 4)
        || !out.join("index.m3u8").exists()
    {
        assert!(
            Instant::now() < deadline,
            "live ladder produced no segments"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, report) = play_in_chromium(&out, "index.m3u8", &SMALL_LADDER, true);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "hls.js failed on the live ladder: {report}");
}
