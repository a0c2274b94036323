//! Helpers for the end-to-end tests: run real `gst-launch-1.0` pipelines with
//! the workspace's plugins and check their output with real clients
//! (ffmpeg, ffprobe, hls.js) and an RFC 8216 playlist checker built on m3u8-rs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use m3u8_rs::{MasterPlaylist, MediaPlaylist};

pub mod fec;
pub mod pts;

/// Serialises the heavy tests: 2 cores cannot run several encoding ladders
/// in real time at once.
static HEAVY: Mutex<()> = Mutex::new(());

/// Takes the heavy-test lock for the guard's lifetime.
pub fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Directory holding the workspace's built plugins: the cargo profile
/// directory of the running test binary (`target/<profile>`).
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    assert!(
        dir.join("libgsthlsladder.so").exists(),
        "{}/libgsthlsladder.so is missing: run `cargo build` for this profile first",
        dir.display()
    );
    dir
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

/// A `gst-launch-1.0` command that finds the workspace plugins first.
pub fn gst_launch(pipeline: &str) -> Command {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-e");
    cmd.args(pipeline.split_whitespace());
    cmd.env("GST_PLUGIN_PATH", plugin_dir());
    cmd
}

/// One rendition of a test ladder.
#[derive(Clone, Copy, Debug)]
pub struct Rendition {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// x264 bit rate in kbit/s.
    pub kbps: u32,
}

/// 1280x720 / 854x480 / 640x360, the main job's ladder.
pub const MAIN_LADDER: [Rendition; 3] = [
    Rendition {
        width: 1280,
        height: 720,
        kbps: 3000,
    },
    Rendition {
        width: 854,
        height: 480,
        kbps: 1500,
    },
    Rendition {
        width: 640,
        height: 360,
        kbps: 800,
    },
];

/// A lighter ladder for tests that must keep up in real time beside a browser.
pub const SMALL_LADDER: [Rendition; 3] = [
    Rendition {
        width: 640,
        height: 360,
        kbps: 800,
    },
    Rendition {
        width: 480,
        height: 270,
        kbps: 500,
    },
    Rendition {
        width: 320,
        height: 180,
        kbps: 300,
    },
];

/// Options of a test ladder pipeline.
#[derive(Clone, Debug)]
pub struct Ladder {
    /// Renditions, one variant each.
    pub renditions: Vec<Rendition>,
    /// Stream length in seconds (sources stop with EOS after it).
    pub seconds: u32,
    /// Live sources (real-time) or as fast as possible.
    pub live: bool,
    /// Extra `hlsladdersink` properties, `key=value` separated by spaces.
    pub sink_props: String,
    /// x264 keyframe interval in frames (30 fps).
    pub key_int: u32,
    /// B-frames per GOP (0 for zerolatency).
    pub bframes: u32,
    /// A rendition (by index) whose x264 uses this `speed-preset` instead of
    /// `ultrafast`: encoders of very different speeds.
    pub slow_preset: Option<(usize, &'static str)>,
}

impl Ladder {
    /// A ladder of `renditions` lasting `seconds`.
    pub fn new(renditions: &[Rendition], seconds: u32, live: bool) -> Self {
        Ladder {
            renditions: renditions.to_vec(),
            seconds,
            live,
            sink_props: String::new(),
            key_int: 60,
            bframes: 0,
            slow_preset: None,
        }
    }

    /// The gst-launch description writing into `out`.
    pub fn pipeline(&self, out: &Path) -> String {
        let top = self.renditions[0];
        let mut p = format!(
            "videotestsrc is-live={live} num-buffers={frames} pattern=smpte ! \
             video/x-raw,format=I420,width={w},height={h},framerate=30/1 ! tee name=t ",
            live = self.live,
            frames = self.seconds * 30,
            w = top.width,
            h = top.height,
        );
        let tune = if self.bframes == 0 {
            "tune=zerolatency"
        } else {
            ""
        };
        for (i, r) in self.renditions.iter().enumerate() {
            p += &format!(
                "t. ! queue ! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! \
                 x264enc speed-preset={preset} {tune} bframes={bf} key-int-max={ki} \
                 bitrate={b} option-string=scenecut=0 ! h264parse ! s.video_{i} ",
                w = r.width,
                h = r.height,
                preset = match self.slow_preset {
                    Some((slow, preset)) if slow == i => preset,
                    _ => "ultrafast",
                },
                bf = self.bframes,
                ki = self.key_int,
                b = r.kbps,
            );
        }
        p += &format!(
            "audiotestsrc is-live={live} num-buffers={n} samplesperbuffer=1024 ! \
             audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac ! aacparse ! s.audio_0 \
             hlsladdersink name=s output-directory={out} {props}",
            live = self.live,
            n = self.seconds * 48000 / 1024,
            out = out.display(),
            props = self.sink_props,
        );
        p
    }

    /// Runs the pipeline to its end; panics with its output on failure.
    pub fn run(&self, out: &Path) -> Output {
        let output = gst_launch(&self.pipeline(out))
            .output()
            .expect("gst-launch-1.0 runs");
        assert!(
            output.status.success(),
            "pipeline failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

/// What `ffmpeg -v error -i FILE -f null -` prints (empty for a clean decode).
pub fn ffmpeg_decode_errors(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text += &format!("(exit status {})", out.status);
    }
    text
}

/// Video frames of `file` as ffprobe reports them: (key_frame, pict_type, pts_time).
pub fn ffprobe_video_frames(file: &Path) -> Vec<(bool, String, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_frames"])
        .args([
            "-show_entries",
            "frame=key_frame,pict_type,pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() < 3 {
                return None;
            }
            Some((
                f[0] == "1",
                f[2].to_string(),
                f[1].parse().unwrap_or(f64::NAN),
            ))
        })
        .collect()
}

/// Per-packet (stream index, dts_time) of `file` in file order.
pub fn ffprobe_packet_dts(file: &Path) -> Vec<(u32, f64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,dts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// Parses a media playlist file.
pub fn read_media_playlist(path: &Path) -> Result<MediaPlaylist, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    m3u8_rs::parse_media_playlist_res(&bytes)
        .map_err(|e| format!("{}: unparsable media playlist: {e:?}", path.display()))
}

/// Parses a multivariant playlist file.
pub fn read_master_playlist(path: &Path) -> Result<MasterPlaylist, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    m3u8_rs::parse_master_playlist_res(&bytes).map_err(|e| {
        format!(
            "{}: unparsable multivariant playlist: {e:?}",
            path.display()
        )
    })
}

/// Static RFC 8216 checks on one media playlist: EXTINF rounded to the
/// nearest integer at most EXT-X-TARGETDURATION (4.3.3.1), the target
/// duration as configured, version 3 for decimal EXTINF, independent
/// segments, and every listed segment present on disk.
pub fn check_media_playlist(pl: &MediaPlaylist, dir: &Path, target: u64) -> Result<(), String> {
    if pl.target_duration != target {
        return Err(format!(
            "EXT-X-TARGETDURATION {} != {target}",
            pl.target_duration
        ));
    }
    if pl.version.unwrap_or(1) < 3 {
        return Err("decimal EXTINF needs EXT-X-VERSION 3".into());
    }
    if !pl.independent_segments {
        return Err("EXT-X-INDEPENDENT-SEGMENTS missing".into());
    }
    for s in &pl.segments {
        if (s.duration as f64).round() as u64 > target {
            return Err(format!(
                "{}: EXTINF {} rounds above {target}",
                s.uri, s.duration
            ));
        }
        if s.duration <= 0.0 {
            return Err(format!("{}: EXTINF {} is not positive", s.uri, s.duration));
        }
        if !dir.join(&s.uri).exists() {
            return Err(format!("{} is listed but missing on disk", s.uri));
        }
    }
    Ok(())
}

/// Checks across successive rewrites of one live media playlist.
#[derive(Default, Debug)]
pub struct RewriteChecker {
    /// Media sequence number to URI, as first seen.
    pub uris: HashMap<u64, String>,
    /// Highest media sequence seen.
    pub media_sequence: u64,
    /// Highest discontinuity sequence seen.
    pub discontinuity_sequence: u64,
    /// Number of distinct playlist texts checked.
    pub rewrites: usize,
    /// URIs listed by the previous rewrite.
    previous: Vec<String>,
}

impl RewriteChecker {
    /// Checks one rewrite against the earlier ones: media and discontinuity
    /// sequence never decrease (RFC 8216 6.2.1/6.2.2), a media sequence
    /// number always names the same URI, segments leave only from the front,
    /// at most `window` segments are listed, and a segment that left the
    /// playlist is still on disk (its hold-back has not passed yet).
    pub fn check(&mut self, pl: &MediaPlaylist, dir: &Path, window: usize) -> Result<(), String> {
        self.rewrites += 1;
        if pl.media_sequence < self.media_sequence {
            return Err(format!(
                "EXT-X-MEDIA-SEQUENCE went back from {} to {}",
                self.media_sequence, pl.media_sequence
            ));
        }
        if pl.discontinuity_sequence < self.discontinuity_sequence {
            return Err("EXT-X-DISCONTINUITY-SEQUENCE went back".into());
        }
        if pl.segments.len() > window {
            return Err(format!(
                "{} segments listed, window is {window}",
                pl.segments.len()
            ));
        }
        for (i, s) in pl.segments.iter().enumerate() {
            let seq = pl.media_sequence + i as u64;
            match self.uris.get(&seq) {
                Some(u) if u != &s.uri => {
                    return Err(format!("media sequence {seq} was {u}, now {}", s.uri));
                }
                Some(_) => {}
                None => {
                    self.uris.insert(seq, s.uri.clone());
                }
            }
        }
        let now: Vec<String> = pl.segments.iter().map(|s| s.uri.clone()).collect();
        for gone in self.previous.iter().filter(|u| !now.contains(u)) {
            if !dir.join(gone).exists() {
                return Err(format!(
                    "{gone} left the playlist and was deleted at once (RFC 8216 6.2.2)"
                ));
            }
        }
        self.previous = now;
        self.media_sequence = pl.media_sequence;
        self.discontinuity_sequence = pl.discontinuity_sequence;
        Ok(())
    }
}

/// The segment files (`*.ts`) of a variant directory, sorted by name.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "ts"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs `node tests/browser/play.mjs` on `dir`/`master`, expecting the
/// variants' picture sizes in order; returns (success, its JSON report).
pub fn play_in_chromium(
    dir: &Path,
    master: &str,
    expect: &[Rendition],
    live: bool,
) -> (bool, String) {
    let script = repo_root().join("tests/browser/play.mjs");
    let sizes: Vec<String> = expect
        .iter()
        .map(|r| format!("{}x{}", r.width, r.height))
        .collect();
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .arg("--dir")
        .arg(dir)
        .args(["--master", master, "--expect", &sizes.join(",")]);
    if live {
        cmd.arg("--live");
    }
    let out = cmd.output().expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}
