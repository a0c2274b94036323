//! The README's main job (`scripts/main-job.sh`) and the `pipelines/ladder.sh`
//! recipe, run as a user runs them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gst_broadcast_e2e::*;

/// `GET path` from 127.0.0.1:port; returns (status code, body).
fn http_get(port: u16, path: &str) -> Option<(u32, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, buf[split + 4..].to_vec()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every variant of `out` is complete (EXT-X-ENDLIST) and every segment
/// decodes without an ffmpeg message.
fn check_complete_ladder(out: &Path, sizes: &[(u64, u64)]) {
    let master = read_master_playlist(&out.join("index.m3u8")).unwrap();
    assert_eq!(master.variants.len(), sizes.len());
    for (v, &(w, h)) in master.variants.iter().zip(sizes) {
        let res = v.resolution.unwrap();
        assert_eq!((res.width, res.height), (w, h));
        let path = out.join(&v.uri);
        let dir = path.parent().unwrap();
        let pl = read_media_playlist(&path).unwrap();
        check_media_playlist(&pl, dir, 2).unwrap();
        assert!(pl.end_list, "{}: no EXT-X-ENDLIST", path.display());
        assert!(pl.segments.len() >= 3);
        for s in &pl.segments {
            let errors = ffmpeg_decode_errors(&dir.join(&s.uri));
            assert!(errors.is_empty(), "{}: {errors}", s.uri);
        }
    }
}

#[test]
fn main_job_serves_the_live_ladder_on_loopback() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let port = free_port();
    let metrics_port = free_port();
    let child = Command::new("bash")
        .arg(repo_root().join("scripts/main-job.sh"))
        .args(["--no-build", "--duration", "14", "--target-duration", "2"])
        .args(["--metrics-port", &metrics_port.to_string()])
        .args(["--port", &port.to_string(), "--out"])
        .arg(&out)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // While it runs: the multivariant playlist, a media playlist and a
    // segment come over HTTP from 127.0.0.1, and the segment decodes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let master = loop {
        if let Some((200, body)) = http_get(port, "/index.m3u8") {
            if let Ok(m) = m3u8_rs::parse_master_playlist_res(&body) {
                if m.variants.len() == 3 {
                    break m;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no multivariant playlist served on {port}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let uri = &master.variants[0].uri;
    let (code, body) = http_get(port, &format!("/{uri}")).unwrap();
    assert_eq!(code, 200);
    let media = m3u8_rs::parse_media_playlist_res(&body).unwrap();
    let seg_uri = format!(
        "/{}/{}",
        uri.rsplit_once('/').unwrap().0,
        media.segments[0].uri
    );
    let (code, seg) = http_get(port, &seg_uri).unwrap();
    assert_eq!(code, 200, "{seg_uri}");
    let fetched = tmp.path().join("fetched.ts");
    std::fs::write(&fetched, &seg).unwrap();
    assert_eq!(ffmpeg_decode_errors(&fetched), "");
    assert_eq!(http_get(port, "/no-such-file").map(|r| r.0), Some(404));

    // The pipeline's own metrics endpoint shows the ladder's GOP interval,
    // jitter, drops and bit rate per rendition, and the HLS counters.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        if let Some((200, body)) = http_get(metrics_port, "/metrics") {
            let text = String::from_utf8_lossy(&body).to_string();
            if (0..3).all(|i| {
                text.contains(&format!(
                    "gst_stream_gop_interval_seconds_count{{element=\"metrics_v{i}\""
                ))
            }) && text.contains("gst_hls_segments_written_total")
            {
                break text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no GOP intervals on the metrics endpoint"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for name in [
        "gst_stream_jitter_seconds",
        "gst_stream_frames_dropped_total",
        "gst_stream_data_rate_bytes_per_second",
        "gst_hls_segment_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    assert!(metrics.contains(r#"stream="audio""#), "{metrics}");

    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/index.m3u8")),
        "{stdout}"
    );
    assert!(stdout.contains("ffplay"), "{stdout}");
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{metrics_port}/metrics")),
        "{stdout}"
    );
    // --duration ends with EOS: complete playlists; the server is gone.
    check_complete_ladder(&out, &[(1280, 720), (854, 480), (640, 360)]);
    assert!(
        http_get(port, "/index.m3u8").is_none(),
        "server still running"
    );
}

#[test]
fn ladder_recipe_takes_a_user_file() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("my input.mp4");
    let gen = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=500:sample_rate=44100"])
        .args([
            "-t",
            "8",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ])
        .arg(&input)
        .status()
        .unwrap();
    assert!(gen.success());
    let out = tmp.path().join("out");
    let status = Command::new("bash")
        .arg(repo_root().join("pipelines/ladder.sh"))
        .arg("--input")
        .arg(&input)
        .args(["--playlist-type", "vod", "--target-duration", "2", "--out"])
        .arg(&out)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    check_complete_ladder(&out, &[(1280, 720), (854, 480), (640, 360)]);
}
