//! Helpers of the `ptscorrector` end-to-end test (`tests/tests/ptscorrector.rs`):
//! a corpus of broken inputs generated locally with ffmpeg (sync marks, `setts`
//! and `noise` bitstream filters, byte-concatenated MPEG-TS), a raw MPEG-TS
//! reader that hands the broken timestamps to an in-process pipeline untouched
//! (GStreamer's `tsdemux` repairs PCR discontinuities itself, so it cannot be
//! the source of a timestamp-repair test), the in-process `ptscorrector !
//! hlsladdersink` pipeline, and the output checks shared by our output and
//! FFmpeg's `-fflags +genpts -c copy` remux of the same file: DTS order
//! (ffprobe), decode warnings (ffmpeg), hls.js play-through (Chromium) and the
//! A/V offset measured on the decoded sync marks.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::{plugin_dir, repo_root};

/// 90 kHz ticks per second (MPEG-TS PTS/DTS).
pub const TICKS_PER_SECOND: u64 = 90_000;
/// PTS/DTS wrap: 2^33 ticks of 90 kHz.
pub const WRAP_TICKS: u64 = 1 << 33;
/// Frame duration of the corpus video (30 fps), in seconds.
pub const FRAME_S: f64 = 1.0 / 30.0;

/// Converts 90 kHz ticks to nanoseconds (exact for the values ffmpeg writes).
pub fn ticks_to_ns(t: u64) -> u64 {
    (t as u128 * 1_000_000_000 / TICKS_PER_SECOND as u128) as u64
}

// ---------------------------------------------------------------- commands

/// Runs `cmd`, returning stderr (and the exit status when it failed) as an
/// error; stdout on success.
pub fn run_cmd(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: cannot run: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} {:?} failed ({}): {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ffmpeg() -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-v", "error", "-y"]);
    c
}

// ---------------------------------------------------------------- corpus

/// One clean corpus recording: 320x180 30 fps H.264 (I420, SAR 1:1) and
/// 48 kHz mono AAC in MPEG-TS, with a sync mark every 2 s of media time:
/// a white frame (frame numbers 0, 60, 120, ...) and a 100 ms 1 kHz beep
/// starting at the same media time (0, 2, 4, ... s), silence in between.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// Length in seconds.
    pub seconds: u32,
    /// x264 B-frames (0: none). B-frames are never references (b-pyramid=none).
    pub bframes: u32,
    /// Keyframe interval in frames.
    pub gop: u32,
    /// x264 preset.
    pub preset: &'static str,
}

impl Source {
    /// A 20 s recording with `bframes` B-frames and a keyframe every 15 frames.
    pub fn short(bframes: u32) -> Self {
        Source {
            seconds: 20,
            bframes,
            gop: 15,
            preset: "veryfast",
        }
    }

    /// Encodes the recording into `out` (MPEG-TS).
    pub fn encode(&self, out: &Path) -> Result<(), String> {
        let video = "testsrc2=s=320x180:r=30,\
             drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(n,60),1)',\
             setsar=1,format=yuv420p";
        let audio = "aevalsrc=exprs='if(lt(mod(t,2),0.1),0.5*sin(2*PI*1000*t),0)':s=48000";
        let x264 = format!(
            "bframes={}:b-pyramid=none:keyint={g}:min-keyint={g}:scenecut=0",
            self.bframes,
            g = self.gop
        );
        run_cmd(
            ffmpeg()
                .args(["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio])
                .args(["-t", &self.seconds.to_string()])
                .args([
                    "-c:v",
                    "libx264",
                    "-preset",
                    self.preset,
                    "-x264-params",
                    &x264,
                ])
                .args(["-b:v", "250k", "-pix_fmt", "yuv420p"])
                .args(["-c:a", "aac", "-b:a", "48k", "-ac", "1", "-ar", "48000"])
                .args(["-f", "mpegts"])
                .arg(out),
        )
        .map(|_| ())
    }
}

/// Splits the MPEG-TS `src` at the keyframes at `times` (seconds from its
/// start) with ffmpeg's segment muxer, keeping the original timestamps;
/// returns the parts in order.
pub fn split_ts(src: &Path, times: &[f64], dir: &Path, stem: &str) -> Result<Vec<PathBuf>, String> {
    let list: Vec<String> = times.iter().map(|t| format!("{t}")).collect();
    let pattern = dir.join(format!("{stem}%d.ts"));
    run_cmd(
        ffmpeg()
            .arg("-i")
            .arg(src)
            .args(["-map", "0", "-c", "copy", "-f", "segment"])
            .args(["-segment_times", &list.join(",")])
            .args(["-segment_format", "mpegts", "-reset_timestamps", "0"])
            .arg(&pattern),
    )?;
    let parts: Vec<PathBuf> = (0..=times.len())
        .map(|i| dir.join(format!("{stem}{i}.ts")))
        .collect();
    for p in &parts {
        if !p.exists() {
            return Err(format!("segment muxer did not write {}", p.display()));
        }
    }
    Ok(parts)
}

/// Remuxes `src` to `out` (MPEG-TS, timestamps kept, no mux delay) through
/// the bitstream filters `bsfs` (ffmpeg `-bsf` specifier, value), e.g.
/// `("bsf", "setts=pts=PTS+90000:dts=DTS+90000")`.
pub fn remux_with_bsf(src: &Path, out: &Path, bsfs: &[(&str, &str)]) -> Result<(), String> {
    let mut cmd = ffmpeg();
    cmd.arg("-copyts")
        .arg("-i")
        .arg(src)
        .args(["-map", "0", "-c", "copy"]);
    for (spec, bsf) in bsfs {
        cmd.arg(format!("-{spec}")).arg(bsf);
    }
    cmd.args(["-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts"])
        .arg(out);
    run_cmd(&mut cmd).map(|_| ())
}

/// `setts` expression shifting PTS and DTS by `ticks` (90 kHz).
pub fn setts_shift(ticks: i64) -> String {
    format!("setts=pts=PTS+({ticks}):dts=DTS+({ticks})")
}

/// Writes the byte concatenation of `parts` to `out` (MPEG-TS files can be
/// concatenated: the result has every part's timestamps as they are).
pub fn concat_files(parts: &[PathBuf], out: &Path) -> Result<(), String> {
    let mut all = Vec::new();
    for p in parts {
        all.extend(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    std::fs::write(out, all).map_err(|e| format!("{}: {e}", out.display()))
}

/// Splices a recording onto itself the way a playout server or a careless
/// edit does (issue 19): the first `cut` seconds of `src` (`-t cut`), then
/// the rest from `cut` on (`-ss cut`) with its timestamps restarted at
/// `offset` seconds (`-output_ts_offset offset`), both `-c copy` and
/// byte-concatenated into `dir/broken.ts`. Both halves start with ffmpeg's
/// mux delay (1.4 s), so the timestamps step by about `offset - cut`
/// seconds at the join; since `-ss` on `-c copy` starts the video at the
/// keyframe at `cut` and the audio at the frame nearest to it, the two
/// streams of the second half restart a few hundred ms apart.
///
/// `drop_head` (`("v", n)` or `("a", n)`) also removes the first `n`
/// packets of that stream of the second half (`noise` bitstream filter),
/// so that the other stream meets the join first in file order and the
/// dropped one resumes `n` frames later.
pub fn splice_with_offset(
    src: &Path,
    dir: &Path,
    cut: f64,
    offset: f64,
    drop_head: Option<(&str, u32)>,
) -> Result<PathBuf, String> {
    let first = dir.join("half1.ts");
    let second = dir.join("half2.ts");
    run_cmd(
        ffmpeg()
            .arg("-i")
            .arg(src)
            .args(["-t", &cut.to_string(), "-map", "0", "-c", "copy"])
            .args(["-f", "mpegts"])
            .arg(&first),
    )?;
    let mut cmd = ffmpeg();
    cmd.args(["-ss", &cut.to_string(), "-i"])
        .arg(src)
        .args(["-map", "0", "-c", "copy"])
        .args(["-output_ts_offset", &offset.to_string()]);
    if let Some((stream, n)) = drop_head {
        cmd.arg(format!("-bsf:{stream}"))
            .arg(format!("noise=drop=lt(n\\,{n})"));
    }
    run_cmd(cmd.args(["-f", "mpegts"]).arg(&second))?;
    let out = dir.join("broken.ts");
    concat_files(&[first, second], &out)?;
    Ok(out)
}

// ---------------------------------------------------------------- raw MPEG-TS

/// H.264 stream type in a PMT.
pub const STREAM_TYPE_H264: u8 = 0x1b;
/// AAC in ADTS stream type in a PMT.
pub const STREAM_TYPE_AAC: u8 = 0x0f;

/// One PES packet of an MPEG-TS file, with its raw 33-bit timestamps.
#[derive(Clone, Debug)]
pub struct Pes {
    /// PID it came on.
    pub pid: u16,
    /// Stream type from the PMT.
    pub stream_type: u8,
    /// PTS in 90 kHz ticks, as written.
    pub pts: Option<u64>,
    /// DTS in 90 kHz ticks, as written (None: the PES has no DTS field).
    pub dts: Option<u64>,
    /// Payload (elementary stream bytes).
    pub data: Vec<u8>,
}

fn read_timestamp(b: &[u8]) -> u64 {
    (((b[0] >> 1) & 7) as u64) << 30
        | (b[1] as u64) << 22
        | ((b[2] >> 1) as u64) << 15
        | (b[3] as u64) << 7
        | (b[4] >> 1) as u64
}

/// Payload offset of a 188-byte TS packet, or None when it has no payload.
fn ts_payload_offset(pkt: &[u8]) -> Option<usize> {
    let afc = (pkt[3] >> 4) & 3;
    let mut off = 4;
    if afc & 2 != 0 {
        off += 1 + pkt[4] as usize;
    }
    (afc & 1 != 0 && off < pkt.len()).then_some(off)
}

/// PSI section bytes (after the pointer field) of a PUSI packet payload.
fn psi_section(payload: &[u8]) -> Option<&[u8]> {
    let ptr = *payload.first()? as usize;
    let sec = payload.get(1 + ptr..)?;
    if sec.len() < 3 {
        return None;
    }
    let len = (((sec[1] & 0x0f) as usize) << 8 | sec[2] as usize) + 3;
    sec.get(..len.min(sec.len()))
}

/// Reads every PES packet of an MPEG-TS file in file order (PAT/PMT
/// followed to the elementary streams), timestamps as written: no PCR
/// logic, no wrap correction, no interpolation. This is what the test feeds
/// its pipeline with, so that the breakage of a file reaches `ptscorrector`
/// exactly as it is in the file.
pub fn read_ts(bytes: &[u8]) -> Result<Vec<Pes>, String> {
    if !bytes.len().is_multiple_of(188) {
        return Err(format!(
            "{} bytes is not a whole number of TS packets",
            bytes.len()
        ));
    }
    let mut pmt_pids = Vec::new();
    let mut types: HashMap<u16, u8> = HashMap::new();
    let mut raw: Vec<(u16, u8, Vec<u8>)> = Vec::new();
    let mut open: HashMap<u16, usize> = HashMap::new();
    for (n, pkt) in bytes.chunks_exact(188).enumerate() {
        if pkt[0] != 0x47 {
            return Err(format!("TS packet {n}: no sync byte"));
        }
        let pusi = pkt[1] & 0x40 != 0;
        let pid = ((pkt[1] & 0x1f) as u16) << 8 | pkt[2] as u16;
        let Some(off) = ts_payload_offset(pkt) else {
            continue;
        };
        let payload = &pkt[off..];
        if pid == 0 {
            if let Some(sec) = psi_section(payload).filter(|_| pusi) {
                let end = sec.len().saturating_sub(4);
                let mut i = 8;
                while i + 4 <= end {
                    let program = (sec[i] as u16) << 8 | sec[i + 1] as u16;
                    let p = ((sec[i + 2] & 0x1f) as u16) << 8 | sec[i + 3] as u16;
                    if program != 0 && !pmt_pids.contains(&p) {
                        pmt_pids.push(p);
                    }
                    i += 4;
                }
            }
            continue;
        }
        if pmt_pids.contains(&pid) {
            if let Some(sec) = psi_section(payload).filter(|_| pusi && payload.len() > 12) {
                if sec.len() < 12 {
                    continue;
                }
                let end = sec.len().saturating_sub(4);
                let mut i = 12 + (((sec[10] & 0x0f) as usize) << 8 | sec[11] as usize);
                while i + 5 <= end {
                    let st = sec[i];
                    let p = ((sec[i + 1] & 0x1f) as u16) << 8 | sec[i + 2] as u16;
                    types.insert(p, st);
                    i += 5 + (((sec[i + 3] & 0x0f) as usize) << 8 | sec[i + 4] as usize);
                }
            }
            continue;
        }
        let Some(&st) = types.get(&pid) else {
            continue;
        };
        if pusi {
            raw.push((pid, st, payload.to_vec()));
            open.insert(pid, raw.len() - 1);
        } else if let Some(&i) = open.get(&pid) {
            raw[i].2.extend_from_slice(payload);
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    for (pid, stream_type, b) in raw {
        if b.len() < 9 || b[..3] != [0, 0, 1] {
            return Err(format!("PID {pid:#x}: PES without start code"));
        }
        let flags = b[7];
        let hdl = b[8] as usize;
        if b.len() < 9 + hdl {
            return Err(format!("PID {pid:#x}: PES header cut short"));
        }
        let pts = (flags & 0x80 != 0).then(|| read_timestamp(&b[9..14]));
        let dts = (flags & 0xc0 == 0xc0).then(|| read_timestamp(&b[14..19]));
        let plen = (b[4] as usize) << 8 | b[5] as usize;
        let end = if plen == 0 {
            b.len()
        } else {
            (6 + plen).min(b.len())
        };
        out.push(Pes {
            pid,
            stream_type,
            pts,
            dts,
            data: b[9 + hdl..end].to_vec(),
        });
    }
    Ok(out)
}

/// Removes the DTS field from every PES header of the H.264 stream of an
/// MPEG-TS file (PTS_DTS_flags 11 -> 10; the 5 bytes are given back as
/// adaptation-field stuffing). This is "DTS missing" as some encoders and
/// remuxers write it; ffmpeg cannot produce it (its muxer layer regenerates
/// a missing DTS, `setts=dts=NOPTS` included). Returns the new file and the
/// number of DTS removed.
pub fn strip_video_dts(bytes: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let video_pid = read_ts(bytes)?
        .iter()
        .find(|p| p.stream_type == STREAM_TYPE_H264)
        .map(|p| p.pid)
        .ok_or("no H.264 stream")?;
    let mut out = Vec::with_capacity(bytes.len());
    let mut stripped = 0;
    for pkt in bytes.chunks_exact(188) {
        let pid = ((pkt[1] & 0x1f) as u16) << 8 | pkt[2] as u16;
        let pusi = pkt[1] & 0x40 != 0;
        let mut p = pkt.to_vec();
        if let (true, true, Some(off)) = (pid == video_pid, pusi, ts_payload_offset(pkt)) {
            let h = off;
            if p.len() >= h + 19 && p[h..h + 3] == [0, 0, 1] && p[h + 7] & 0xc0 == 0xc0 {
                p[h + 7] = (p[h + 7] & 0x3f) | 0x80;
                p[h + 8] -= 5;
                let plen = (p[h + 4] as usize) << 8 | p[h + 5] as usize;
                if plen != 0 {
                    let plen = plen - 5;
                    p[h + 4] = (plen >> 8) as u8;
                    p[h + 5] = plen as u8;
                }
                p.drain(h + 14..h + 19);
                // Give the 5 bytes back as adaptation-field stuffing.
                if p[3] & 0x20 != 0 {
                    let af_len = p[4] as usize;
                    if af_len == 0 {
                        p[4] = 5;
                        p.splice(5..5, [0x00, 0xff, 0xff, 0xff, 0xff]);
                    } else {
                        p[4] += 5;
                        p.splice(5 + af_len..5 + af_len, [0xff; 5]);
                    }
                } else {
                    p[3] |= 0x20;
                    p.splice(4..4, [4, 0x00, 0xff, 0xff, 0xff]);
                }
                stripped += 1;
            }
        }
        debug_assert_eq!(p.len(), 188);
        out.extend_from_slice(&p);
    }
    Ok((out, stripped))
}

/// Packets of the first stream `select` (`v:0`, `a:0`) of `file` (ffprobe
/// -count_packets: AAC frames, not PES).
pub fn count_packets(file: &Path, select: &str) -> Result<usize, String> {
    let out = run_cmd(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", select, "-count_packets"])
            .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
            .arg(file),
    )?;
    // MPEG-TS: the stream is listed under its program and again alone.
    out.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|e| format!("{}: nb_read_packets {out:?}: {e}", file.display()))
}

/// First (PTS, DTS) in 90 kHz ticks per stream type of an MPEG-TS file.
pub fn first_timestamps(path: &Path) -> Result<HashMap<u8, (u64, u64)>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut m = HashMap::new();
    for p in read_ts(&bytes)? {
        if let Some(pts) = p.pts {
            m.entry(p.stream_type)
                .or_insert((pts, p.dts.unwrap_or(pts)));
        }
    }
    Ok(m)
}

// ---------------------------------------------------------------- pipeline

/// Timestamps of one buffer seen on a pad.
#[derive(Clone, Copy, Debug)]
pub struct Rec {
    /// PTS in ns.
    pub pts: Option<u64>,
    /// DTS in ns.
    pub dts: Option<u64>,
    /// Duration in ns.
    pub duration: Option<u64>,
    /// Buffer carries DISCONT.
    pub discont: bool,
    /// Buffer is a delta unit (not a keyframe).
    pub delta: bool,
    /// Running time of the pipeline clock when the buffer passed (ns).
    pub clock: Option<u64>,
}

/// What is between the parsers and `hlsladdersink`.
#[derive(Clone, Debug)]
pub enum Corrector {
    /// One `identity` per stream: the broken timestamps go through as they
    /// are (to develop and check the corpus and the measurement).
    Identity,
    /// `ptscorrector` with these properties (name, value as for gst-launch).
    PtsCorrector(Vec<(String, String)>),
}

/// Options of one in-process run.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// The element under test.
    pub corrector: Corrector,
    /// `hlsladdersink target-duration` (s).
    pub target_duration: u32,
    /// Live source whose clock runs this many ppm fast against the pipeline
    /// clock (a `TestClock` set, before each buffer reaches the corrector,
    /// to arrival running time = (DTS - first DTS) / (1 + ppm/1e6) + 200 ms).
    /// The feeding thread then pushes straight into the corrector (no
    /// queues in front of it), so that arrival is exact.
    pub drift_ppm: Option<f64>,
    /// Gives up after this long (wall).
    pub timeout: Duration,
    /// DTS of a PES that has only a PTS: `Some(())` reads it as equal to
    /// the PTS (ISO/IEC 13818-1 2.4.3.7; what `tsdemux` does), `None`
    /// leaves it missing (GST_CLOCK_TIME_NONE, as ffmpeg's demuxer and
    /// GStreamer's RTP depayloaders and matroskademux deliver it).
    pub absent_dts_is_pts: bool,
    /// No queue in front of the corrector: the feeding thread pushes
    /// straight into it, so that it sees the buffers of all streams in file
    /// order (which stream meets a jump first is then the file's doing, not
    /// the scheduler's). Always the case with `drift_ppm`.
    pub in_file_order: bool,
}

/// What one run saw.
#[derive(Debug, Default)]
pub struct PipelineRun {
    /// Buffers entering the corrector: [video, audio].
    pub input: [Vec<Rec>; 2],
    /// Buffers leaving the corrector: [video, audio].
    pub output: [Vec<Rec>; 2],
    /// `ptscorrector-repair` messages.
    pub repairs: Vec<gst::Structure>,
    /// `ptscorrector`'s `stats` at EOS.
    pub stats: Option<gst::Structure>,
    /// ERROR messages.
    pub errors: Vec<String>,
    /// WARNING messages.
    pub warnings: Vec<String>,
    /// EOS reached.
    pub eos: bool,
    /// Wall time of the run.
    pub wall: Duration,
}

/// Whether `libgstptscorrector.so` has been built next to the other plugins.
pub fn ptscorrector_built() -> bool {
    plugin_dir().join("libgstptscorrector.so").exists()
}

/// gst::init() plus the workspace's plugins loaded from the build directory.
pub fn gst_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst::init");
        for name in ["libgsthlsladder.so", "libgstptscorrector.so"] {
            let path = plugin_dir().join(name);
            if path.exists() {
                gst::Plugin::load_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    });
}

fn make(factory: &str) -> gst::Element {
    gst::ElementFactory::make(factory)
        .build()
        .unwrap_or_else(|e| panic!("element {factory}: {e}"))
}

fn record(buf: &gst::BufferRef, clock: Option<u64>) -> Rec {
    Rec {
        pts: buf.pts().map(|t| t.nseconds()),
        dts: buf.dts().map(|t| t.nseconds()),
        duration: buf.duration().map(|t| t.nseconds()),
        discont: buf.flags().contains(gst::BufferFlags::DISCONT),
        delta: buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
        clock,
    }
}

/// Feeds the PES packets of an MPEG-TS file (raw timestamps, file order)
/// through `h264parse`/`aacparse` into the corrector and `hlsladdersink
/// playlist-type=vod` writing into `out`, and waits for EOS:
///
/// ```text
/// feed(video PES) ! h264parse ! queue ! corrector.sink_0   corrector.src_0 ! queue ! s.video_0
/// feed(audio PES) ! aacparse  ! queue ! corrector.sink_1   corrector.src_1 ! queue ! s.audio_0
/// ```
///
/// Timestamps are the raw 33-bit values in ns (a wrap is a step back of
/// 95443.7 s), in a TIME segment starting at 0; see
/// [`PipelineOptions::absent_dts_is_pts`] for a PES without DTS. Probes on the corrector's
/// pads record what goes in and out.
pub fn run_pipeline(pes: &[Pes], out: &Path, opts: &PipelineOptions) -> PipelineRun {
    gst_init();
    let started = Instant::now();
    let pipeline = gst::Pipeline::with_name("ptscorrector-e2e");
    let vparse = make("h264parse");
    let aparse = make("aacparse");
    let sink = gst::ElementFactory::make("hlsladdersink")
        .name("s")
        .property("output-directory", out.to_str().expect("utf-8 path"))
        .property("target-duration", opts.target_duration)
        .property_from_str("playlist-type", "vod")
        .build()
        .expect("hlsladdersink (libgsthlsladder.so)");
    pipeline.add_many([&vparse, &aparse, &sink]).unwrap();

    let live = opts.drift_ppm.is_some();
    let direct = live || opts.in_file_order;
    let (corr, ins, outs): (Option<gst::Element>, Vec<gst::Pad>, Vec<gst::Pad>) =
        match &opts.corrector {
            Corrector::Identity => {
                let ids = [make("identity"), make("identity")];
                pipeline.add_many(&ids).unwrap();
                (
                    None,
                    ids.iter().map(|e| e.static_pad("sink").unwrap()).collect(),
                    ids.iter().map(|e| e.static_pad("src").unwrap()).collect(),
                )
            }
            Corrector::PtsCorrector(props) => {
                let mut b = gst::ElementFactory::make("ptscorrector").name("pc");
                for (k, v) in props {
                    b = b.property_from_str(k, v);
                }
                let pc = b.build().expect("ptscorrector (libgstptscorrector.so)");
                pipeline.add(&pc).unwrap();
                let s0 = pc.request_pad_simple("sink_0").expect("sink_0");
                let s1 = pc.request_pad_simple("sink_1").expect("sink_1");
                let o0 = pc.static_pad("src_0").expect("src_0 appears with sink_0");
                let o1 = pc.static_pad("src_1").expect("src_1 appears with sink_1");
                (Some(pc), vec![s0, s1], vec![o0, o1])
            }
        };
    for (i, parse) in [&vparse, &aparse].into_iter().enumerate() {
        let parse_src = parse.static_pad("src").unwrap();
        if direct {
            parse_src.link(&ins[i]).unwrap();
        } else {
            let q = make("queue");
            pipeline.add(&q).unwrap();
            parse_src.link(&q.static_pad("sink").unwrap()).unwrap();
            q.static_pad("src").unwrap().link(&ins[i]).unwrap();
        }
        let q = make("queue");
        pipeline.add(&q).unwrap();
        outs[i].link(&q.static_pad("sink").unwrap()).unwrap();
        let spad = sink
            .request_pad_simple(if i == 0 { "video_0" } else { "audio_0" })
            .unwrap();
        q.static_pad("src").unwrap().link(&spad).unwrap();
    }

    // Pipeline clock: a TestClock driven by the arrival model in live runs.
    let clock = gst_check::TestClock::new();
    if live {
        pipeline.use_clock(Some(&clock));
    }
    let input: Arc<Mutex<[Vec<Rec>; 2]>> = Arc::default();
    let output: Arc<Mutex<[Vec<Rec>; 2]>> = Arc::default();
    let first_dts: Arc<Mutex<Option<u64>>> = Arc::default();
    for i in 0..2 {
        let input = input.clone();
        let in_clock = clock.clone();
        let pipeline_weak = pipeline.downgrade();
        let first_dts = first_dts.clone();
        let ppm = opts.drift_ppm;
        ins[i].add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let mut now = None;
            if let (Some(ppm), Some(p)) = (ppm, pipeline_weak.upgrade()) {
                if let Some(t) = buf.dts().or(buf.pts()).map(|t| t.nseconds()) {
                    let t0 = *first_dts.lock().unwrap().get_or_insert(t);
                    let arrival =
                        (t.saturating_sub(t0) as f64 / (1.0 + ppm * 1e-6)) as u64 + 200_000_000;
                    let base = p.base_time().map(|b| b.nseconds()).unwrap_or(0);
                    let target = gst::ClockTime::from_nseconds(base + arrival);
                    if target > in_clock.time() {
                        in_clock.set_time(target);
                    }
                }
                now = Some(
                    in_clock.time().nseconds() - p.base_time().map(|b| b.nseconds()).unwrap_or(0),
                );
            }
            input.lock().unwrap()[i].push(record(buf, now));
            gst::PadProbeReturn::Ok
        });
        let output = output.clone();
        let out_clock = clock.clone();
        let pipeline_weak = pipeline.downgrade();
        outs[i].add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buf) = info.buffer() {
                let now = if live {
                    pipeline_weak.upgrade().map(|p| {
                        out_clock.time().nseconds()
                            - p.base_time().map(|b| b.nseconds()).unwrap_or(0)
                    })
                } else {
                    None
                };
                output.lock().unwrap()[i].push(record(buf, now));
            }
            gst::PadProbeReturn::Ok
        });
    }

    // Our own source pads, pushed from one thread in file order.
    let feeds = [
        (
            gst::Pad::builder(gst::PadDirection::Src)
                .name("feed_video")
                .build(),
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .build(),
            &vparse,
        ),
        (
            gst::Pad::builder(gst::PadDirection::Src)
                .name("feed_audio")
                .build(),
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "adts")
                .build(),
            &aparse,
        ),
    ];
    for (pad, _, parse) in &feeds {
        pad.link(&parse.static_pad("sink").unwrap()).unwrap();
    }
    let mut run = PipelineRun::default();
    if pipeline.set_state(gst::State::Playing).is_err() {
        run.errors.push("pipeline does not go to PLAYING".into());
    }
    let bus = pipeline.bus().unwrap();
    let feed_pads: Vec<(gst::Pad, gst::Caps)> = feeds
        .iter()
        .map(|(p, c, _)| (p.clone(), c.clone()))
        .collect();
    let packets: Vec<(usize, Option<u64>, Option<u64>, gst::Buffer)> = pes
        .iter()
        .filter_map(|p| {
            let i = match p.stream_type {
                STREAM_TYPE_H264 => 0,
                STREAM_TYPE_AAC => 1,
                _ => return None,
            };
            let dts = if opts.absent_dts_is_pts {
                p.dts.or(p.pts)
            } else {
                p.dts
            };
            Some((
                i,
                p.pts.map(ticks_to_ns),
                dts.map(ticks_to_ns),
                gst::Buffer::from_slice(p.data.clone()),
            ))
        })
        .collect();
    let feeder = std::thread::spawn(move || -> Result<(), String> {
        let group = gst::GroupId::next();
        for (i, (pad, caps)) in feed_pads.iter().enumerate() {
            pad.set_active(true).map_err(|e| e.to_string())?;
            pad.push_event(
                gst::event::StreamStart::builder(if i == 0 { "video" } else { "audio" })
                    .group_id(group)
                    .build(),
            );
            pad.push_event(gst::event::Caps::new(caps));
            pad.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
                gst::ClockTime,
            >::new()));
        }
        let mut first = [true, true];
        for (i, pts, dts, mut buf) in packets {
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(pts.map(gst::ClockTime::from_nseconds));
                b.set_dts(dts.map(gst::ClockTime::from_nseconds));
                if std::mem::take(&mut first[i]) {
                    b.set_flags(gst::BufferFlags::DISCONT);
                }
            }
            if let Err(e) = feed_pads[i].0.push(buf) {
                return Err(format!("pushing into stream {i}: {e:?}"));
            }
        }
        for (pad, _) in &feed_pads {
            pad.push_event(gst::event::Eos::new());
        }
        Ok(())
    });

    let deadline = started + opts.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            run.errors.push(format!("no EOS within {:?}", opts.timeout));
            break;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(left.as_millis() as u64))
        else {
            continue;
        };
        use gst::MessageView;
        match msg.view() {
            MessageView::Eos(_) => {
                run.eos = true;
                break;
            }
            MessageView::Error(e) => {
                run.errors.push(format!(
                    "{}: {} ({})",
                    e.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    e.error(),
                    e.debug().unwrap_or_default()
                ));
                break;
            }
            MessageView::Warning(w) => run.warnings.push(format!(
                "{}: {} ({})",
                w.src().map(|s| s.name().to_string()).unwrap_or_default(),
                w.error(),
                w.debug().unwrap_or_default()
            )),
            MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "ptscorrector-repair") {
                    run.repairs.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    if let Some(pc) = &corr {
        run.stats = Some(pc.property::<gst::Structure>("stats"));
    }
    let _ = pipeline.set_state(gst::State::Null);
    match feeder.join() {
        Ok(Err(e)) if !run.eos => run.errors.push(e),
        Err(_) => run.errors.push("feeding thread panicked".into()),
        _ => {}
    }
    run.input = std::mem::take(&mut *input.lock().unwrap());
    run.output = std::mem::take(&mut *output.lock().unwrap());
    run.wall = started.elapsed();
    run
}

/// A u64 counter of `stats` (top level: all streams) or of the per-stream
/// structure named `stream` (the sink pad name), 0 when absent.
pub fn stat(stats: &gst::Structure, stream: Option<&str>, field: &str) -> u64 {
    let s = match stream {
        None => Some(stats.to_owned()),
        Some(name) => stats.get::<gst::Array>("streams").ok().and_then(|a| {
            a.iter()
                .filter_map(|v| v.get::<gst::Structure>().ok())
                .find(|s| s.name() == name)
        }),
    };
    s.and_then(|s| {
        s.get::<u64>(field)
            .ok()
            .or_else(|| s.get::<u32>(field).ok().map(u64::from))
            .or_else(|| s.get::<i64>(field).ok().map(|v| v.max(0) as u64))
    })
    .unwrap_or(0)
}

/// Largest backward and forward steps (ns, signed) of a timestamp sequence.
pub fn extreme_steps(ts: &[u64]) -> (i64, i64) {
    let mut min = 0i64;
    let mut max = 0i64;
    for w in ts.windows(2) {
        let d = w[1] as i64 - w[0] as i64;
        min = min.min(d);
        max = max.max(d);
    }
    (min, max)
}

// ---------------------------------------------------------------- output checks

/// Segment files of a media playlist, in playlist order.
pub fn playlist_segments(media: &Path) -> Result<Vec<PathBuf>, String> {
    let pl = crate::read_media_playlist(media)?;
    let dir = media.parent().unwrap();
    Ok(pl.segments.iter().map(|s| dir.join(&s.uri)).collect())
}

/// (PTS, DTS) of one packet in 90 kHz ticks.
pub type PacketTimes = (Option<i64>, Option<i64>);

/// (pts, dts) in 90 kHz ticks of every packet of one stream type
/// (`v:0`/`a:0`) of `file` as ffprobe reports them, in file order; 33-bit
/// wraps unwrapped (a step back of more than 2^32 ticks is a wrap).
pub fn ffprobe_timestamps(file: &Path, select: &str) -> Result<Vec<PacketTimes>, String> {
    let text = run_cmd(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", select])
            .args(["-show_entries", "packet=pts,dts", "-of", "csv=p=0"])
            .arg(file),
    )?;
    let mut unwrap: [(i64, Option<i64>); 2] = [(0, None); 2];
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split(',');
        let mut v = [None, None];
        for (k, slot) in v.iter_mut().enumerate() {
            let raw = f.next().and_then(|s| s.trim().parse::<i64>().ok());
            *slot = raw.map(|r| {
                let r = r.rem_euclid(WRAP_TICKS as i64);
                let (ref mut add, ref mut last) = unwrap[k];
                if let Some(l) = *last {
                    if l - (r + *add) > (1 << 32) {
                        *add += WRAP_TICKS as i64;
                    } else if (r + *add) - l > (1 << 32) && *add > 0 {
                        *add -= WRAP_TICKS as i64;
                    }
                }
                *last = Some(r + *add);
                r + *add
            });
        }
        out.push((v[0], v[1]));
    }
    Ok(out)
}

/// The DTS-order failures of one stream: packets without DTS and DTS not
/// strictly increasing.
pub fn dts_failures(label: &str, ts: &[PacketTimes]) -> Vec<String> {
    let mut missing = 0;
    let mut bad = 0;
    let mut first_bad = None;
    let mut last: Option<i64> = None;
    for (n, (pts, dts)) in ts.iter().enumerate() {
        let Some(d) = dts.or(*pts) else {
            missing += 1;
            continue;
        };
        if let Some(l) = last {
            if d <= l {
                bad += 1;
                first_bad.get_or_insert((n, l, d));
            }
        }
        last = Some(d);
    }
    let mut f = Vec::new();
    if missing > 0 {
        f.push(format!("{label}: {missing} packets without DTS"));
    }
    if let Some((n, l, d)) = first_bad {
        f.push(format!(
            "{label}: DTS not increasing {bad}x (first: packet {n}, {:.3} s after {:.3} s)",
            d as f64 / 9e4,
            l as f64 / 9e4
        ));
    }
    f
}

/// What `ffmpeg -v warning` says when decoding `file` (empty: nothing).
/// Decoded frames keep the stream's 90 kHz time base (`-enc_time_base -1`):
/// with the default 1/30 s, two frames of a drift-corrected 30 fps stream
/// (33.327 ms apart at 200 ppm) can round to the same tick, which the null
/// muxer reports as non-monotonic although nothing is wrong with the file.
pub fn decode_warnings(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "warning", "-i"])
        .arg(file)
        .args(["-map", "0", "-enc_time_base", "-1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        text += &format!(" (exit status {})", out.status);
    }
    text
}

fn filter_path(p: &Path) -> String {
    // Escaping for a filter argument inside a filtergraph.
    let s = p.to_str().expect("utf-8 path");
    s.replace('\\', "\\\\\\\\")
        .replace(':', "\\\\:")
        .replace(',', "\\,")
        .replace('\'', "\\\\\\'")
}

/// Sync marks of a decoded file, on its own timestamps (ffprobe's lavfi
/// `movie`/`amovie` sources: decoder output timestamps, no ffmpeg CLI
/// timestamp fixing): video frames whose mean luma is above 200 (the white
/// flash; the picture otherwise stays below 130) and the onsets of the
/// 100 ms beeps (`silencedetect` silence ends followed by a silence start
/// within 30-300 ms).
#[derive(Clone, Debug, Default)]
pub struct Marks {
    /// Flash times (s), consecutive white frames counted once.
    pub flashes: Vec<f64>,
    /// Beep onset times (s).
    pub beeps: Vec<f64>,
}

impl Marks {
    /// Measures `file`.
    pub fn measure(file: &Path) -> Result<Marks, String> {
        let fp = filter_path(file);
        let video = run_cmd(
            Command::new("ffprobe")
                .args(["-v", "error", "-f", "lavfi"])
                .arg(format!("movie={fp},signalstats"))
                .args([
                    "-show_entries",
                    "frame=pts_time:frame_tags=lavfi.signalstats.YAVG",
                ])
                .args(["-of", "csv=p=0"]),
        )?;
        let mut flashes: Vec<f64> = Vec::new();
        let mut last_white = f64::NEG_INFINITY;
        for l in video.lines() {
            let mut f = l.split(',');
            let (Some(Ok(t)), Some(Ok(y))) = (
                f.next().map(|s| s.trim().parse::<f64>()),
                f.next().map(|s| s.trim().parse::<f64>()),
            ) else {
                continue;
            };
            if y > 200.0 {
                if t - last_white > 0.2 {
                    flashes.push(t);
                }
                last_white = t;
            }
        }
        let audio = run_cmd(
            Command::new("ffprobe")
                .args(["-v", "error", "-f", "lavfi"])
                .arg(format!("amovie={fp},silencedetect=n=-30dB:d=0.2"))
                .args([
                    "-show_entries",
                    "frame_tags=lavfi.silence_start,lavfi.silence_end",
                ])
                .args(["-of", "compact=p=0"]),
        )?;
        let mut events: Vec<(bool, f64)> = Vec::new();
        for l in audio.lines() {
            for kv in l.split('|') {
                if let Some(v) = kv.strip_prefix("tag:lavfi.silence_start=") {
                    if let Ok(t) = v.parse() {
                        events.push((true, t));
                    }
                } else if let Some(v) = kv.strip_prefix("tag:lavfi.silence_end=") {
                    if let Ok(t) = v.parse() {
                        events.push((false, t));
                    }
                }
            }
        }
        let mut beeps = Vec::new();
        for (k, &(start, t)) in events.iter().enumerate() {
            if start {
                continue;
            }
            if let Some(&(true, s)) = events.get(k + 1) {
                if (0.03..0.3).contains(&(s - t)) {
                    beeps.push(t);
                }
            }
        }
        Ok(Marks { flashes, beeps })
    }

    /// (flash time, beep onset minus flash time) for every flash with a beep
    /// within 0.5 s.
    pub fn pairs(&self) -> Vec<(f64, f64)> {
        self.flashes
            .iter()
            .filter_map(|&f| {
                self.beeps
                    .iter()
                    .map(|&b| b - f)
                    .filter(|d| d.abs() < 0.5)
                    .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                    .map(|d| (f, d))
            })
            .collect()
    }
}

/// How the output is played in Chromium.
#[derive(Clone, Copy, Debug)]
pub enum Play {
    /// Not played.
    Skip,
    /// From the start to the end at this playback rate.
    Through(f64),
    /// The first `head` seconds, then the last `tail` seconds, at `rate`.
    HeadAndTail {
        /// Playback rate.
        rate: f64,
        /// Seconds played from the start.
        head: f64,
        /// Seconds played up to the end.
        tail: f64,
    },
}

/// What a case expects of an output, beside the common checks.
#[derive(Clone, Debug)]
pub struct Expect {
    /// Sync-mark pairs (flash + beep) the output must show at least.
    pub min_pairs: usize,
    /// (video, audio) frames the output must hold: video exactly, audio
    /// within 2 frames (`hlsladdersink` drops audio that comes before the
    /// first video keyframe). None: not checked.
    pub frames: Option<(usize, usize)>,
    /// Live source drift (ppm) to be corrected: the output's video DTS span
    /// must equal the arrival span, (input span) / (1 + ppm/1e6), within
    /// `drift_tolerance_s`.
    pub drift: Option<(f64, f64)>,
    /// Input video DTS span (s), for the drift check.
    pub input_span_s: f64,
    /// Largest step (s) allowed between consecutive video DTS or audio PTS
    /// of the output: a jump must be re-based, not kept as a hole.
    pub max_step_s: f64,
    /// Audio frames the element may drop on purpose (audio overlapping the
    /// previous recording's end at a splice), beyond the 2 of `frames`.
    pub audio_dropped: usize,
    /// Segments `ffmpeg -v warning` may warn about decoding them alone
    /// (the concatenation must still decode without a warning): for
    /// inputs where the sink, not the element under test, writes an odd
    /// segment. 0 for every case but those that say why.
    pub segment_warnings_allowed: usize,
}

/// Results of the checks of one HLS output.
#[derive(Clone, Debug, Default)]
pub struct OutputCheck {
    /// Failed checks, short.
    pub failures: Vec<String>,
    /// A/V offset (beep minus flash) at the first and the last mark, s.
    pub offsets: Option<(f64, f64)>,
    /// Sync-mark pairs found.
    pub pairs: usize,
    /// play.mjs JSON line.
    pub play_report: String,
    /// Wall seconds spent checking.
    pub seconds: f64,
}

/// Runs the common checks on the HLS output whose media playlist is
/// `media` (and multivariant playlist `master`, relative to `root`, for
/// hls.js):
/// 1. DTS strictly increasing per stream over all segments in playlist
///    order (ffprobe on their concatenation, 33-bit wraps unwrapped);
/// 2. `ffmpeg -v warning` prints nothing decoding each segment, nor the
///    concatenation;
/// 3. hls.js in Chromium plays it without a stall (see `play.mjs
///    --play-through`);
/// 4. the A/V offset measured on the decoded sync marks at the last mark
///    equals the one at the first mark within one frame (33.3 ms);
///
/// plus the case's [`Expect`]ations.
pub fn check_output(
    root: &Path,
    master: &str,
    media: &Path,
    play: Play,
    expect: &Expect,
) -> OutputCheck {
    let started = Instant::now();
    let mut c = OutputCheck::default();
    let segments = match playlist_segments(media) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            c.failures.push("playlist lists no segment".into());
            return c;
        }
        Err(e) => {
            c.failures.push(format!("playlist: {e}"));
            return c;
        }
    };
    let whole = root.join("all-segments.ts");
    if let Err(e) = concat_files(&segments, &whole) {
        c.failures.push(e);
        return c;
    }

    // 1. DTS order.
    let mut video_ts = Vec::new();
    let mut audio_packets = 0;
    for (label, sel) in [("video", "v:0"), ("audio", "a:0")] {
        match ffprobe_timestamps(&whole, sel) {
            Ok(ts) => {
                c.failures.extend(dts_failures(label, &ts));
                let t: Vec<i64> = ts.iter().filter_map(|(p, d)| d.or(*p)).collect();
                let max = t.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
                if max as f64 / 9e4 > expect.max_step_s {
                    c.failures.push(format!(
                        "{label}: a {:.3} s hole in the timeline",
                        max as f64 / 9e4
                    ));
                }
                if label == "video" {
                    video_ts = ts;
                } else {
                    audio_packets = ts.len();
                }
            }
            Err(e) => c.failures.push(format!("ffprobe: {e}")),
        }
    }
    if let Some((v, a)) = expect.frames {
        if video_ts.len() != v {
            c.failures.push(format!(
                "{} video frames, the input has {v}",
                video_ts.len()
            ));
        }
        if audio_packets > a + 2 || audio_packets + 2 + expect.audio_dropped < a {
            c.failures
                .push(format!("{audio_packets} audio frames, the input has {a}"));
        }
    }
    if let Some((ppm, tol)) = expect.drift {
        let dts: Vec<i64> = video_ts.iter().filter_map(|(p, d)| d.or(*p)).collect();
        if let (Some(first), Some(last)) = (dts.first(), dts.last()) {
            let span = (last - first) as f64 / 9e4;
            let arrival = expect.input_span_s / (1.0 + ppm * 1e-6);
            let off = span - arrival;
            if off.abs() > tol {
                c.failures.push(format!(
                    "drift not corrected: output span {span:.3} s vs arrival span {arrival:.3} s ({:+.0} ms)",
                    off * 1e3
                ));
            }
        }
    }

    // 2. Decoding.
    let mut noisy = 0;
    let mut first_msg = None;
    for s in &segments {
        let w = decode_warnings(s);
        if !w.is_empty() {
            noisy += 1;
            first_msg.get_or_insert_with(|| {
                format!(
                    "{}: {}",
                    s.file_name().unwrap().to_string_lossy(),
                    w.lines().next().unwrap_or("")
                )
            });
        }
    }
    if noisy > expect.segment_warnings_allowed {
        c.failures.push(format!(
            "ffmpeg warns on {noisy}/{} segments ({})",
            segments.len(),
            first_msg.unwrap()
        ));
    }
    let w = decode_warnings(&whole);
    if !w.is_empty() {
        let n = w.lines().count();
        c.failures.push(format!(
            "ffmpeg warns {n}x on the concatenation ({})",
            w.lines().next().unwrap_or("")
        ));
    }

    // 4. Sync marks.
    match Marks::measure(&whole) {
        Ok(m) => {
            let pairs = m.pairs();
            c.pairs = pairs.len();
            if pairs.len() < expect.min_pairs {
                c.failures.push(format!(
                    "sync marks: {} flash+beep pairs, expected {} ({} flashes, {} beeps)",
                    pairs.len(),
                    expect.min_pairs,
                    m.flashes.len(),
                    m.beeps.len()
                ));
            }
            if let (Some(f), Some(l)) = (pairs.first(), pairs.last()) {
                c.offsets = Some((f.1, l.1));
                if (l.1 - f.1).abs() > FRAME_S + 1e-4 {
                    c.failures.push(format!(
                        "A/V offset {:+.1} ms at the start, {:+.1} ms at the end",
                        f.1 * 1e3,
                        l.1 * 1e3
                    ));
                }
            }
        }
        Err(e) => c.failures.push(format!("sync marks: {e}")),
    }
    let _ = std::fs::remove_file(&whole);

    // 3. hls.js.
    let played = match play {
        Play::Skip => None,
        Play::Through(rate) => Some(play_through_in_chromium(root, master, rate)),
        Play::HeadAndTail { rate, head, tail } => Some(play_head_and_tail_in_chromium(
            root, master, rate, head, tail,
        )),
    };
    if let Some((ok, report)) = played {
        let line = report
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or("")
            .to_string();
        if !ok {
            c.failures
                .push(format!("hls.js: {}", summarize_play(&line, &report)));
        }
        c.play_report = line;
    }
    c.seconds = started.elapsed().as_secs_f64();
    c
}

fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let k = format!("\"{key}\":");
    let i = json.find(&k)? + k.len();
    let rest = &json[i..];
    let end = if rest.starts_with('[') {
        rest.find(']').map(|e| e + 1)
    } else {
        rest.find([',', '}'])
    }?;
    Some(&rest[..end])
}

fn summarize_play(line: &str, all: &str) -> String {
    if line.is_empty() {
        return all
            .lines()
            .last()
            .unwrap_or("no output")
            .chars()
            .take(200)
            .collect();
    }
    let mut s = String::new();
    for key in ["stallCount", "playedSeconds", "failures"] {
        if let Some(v) = json_field(line, key) {
            let _ = write!(s, "{key}={} ", v.chars().take(300).collect::<String>());
        }
    }
    s.trim().to_string()
}

// ---------------------------------------------------------------- hls.js

fn play_mjs(dir: &Path, master: &str, extra: &[String]) -> (bool, String) {
    let script = repo_root().join("tests/browser/play.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg("--dir")
        .arg(dir)
        .args(["--master", master, "--play-through", "--timeout-s", "15"])
        .args(extra)
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// Runs `node tests/browser/play.mjs --play-through` on `dir`/`master`: hls.js
/// in headless Chromium plays the VOD from its start to its end at playback
/// rate `rate`, failing on any stall or hls.js error; returns (success, its
/// JSON report line followed by its stderr).
pub fn play_through_in_chromium(dir: &Path, master: &str, rate: f64) -> (bool, String) {
    play_mjs(dir, master, &["--rate".into(), rate.to_string()])
}

/// Like [`play_through_in_chromium`], but plays only the first `head`
/// seconds, then seeks to `tail` seconds before the end and plays to the end.
pub fn play_head_and_tail_in_chromium(
    dir: &Path,
    master: &str,
    rate: f64,
    head: f64,
    tail: f64,
) -> (bool, String) {
    play_mjs(
        dir,
        master,
        &[
            "--rate".into(),
            rate.to_string(),
            "--head-seconds".into(),
            head.to_string(),
            "--tail-seconds".into(),
            tail.to_string(),
        ],
    )
}

// ---------------------------------------------------------------- ffmpeg +genpts

/// Remuxes `input` the way the issue compares against:
/// `ffmpeg -fflags +genpts -i IN -c copy -f hls` (VOD, `target` s segments),
/// writing `dir/index.m3u8` (multivariant) and `dir/media.m3u8`. Returns
/// ffmpeg's own warnings (informative).
pub fn ffmpeg_genpts_hls(input: &Path, dir: &Path, target: u32) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "warning",
            "-y",
            "-fflags",
            "+genpts",
            "-i",
        ])
        .arg(input)
        .args(["-map", "0", "-c", "copy", "-f", "hls"])
        .args([
            "-hls_time",
            &target.to_string(),
            "-hls_playlist_type",
            "vod",
        ])
        .arg("-hls_segment_filename")
        .arg(dir.join("seg%05d.ts"))
        .args(["-master_pl_name", "index.m3u8"])
        .arg(dir.join("media.m3u8"))
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("ffmpeg -f hls failed ({}): {text}", out.status));
    }
    Ok(text)
}

// ---------------------------------------------------------------- report

/// One row of the comparison table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Case name.
    pub case: String,
    /// Failures of `ptscorrector ! hlsladdersink`.
    pub ours: Vec<String>,
    /// Failures of `ffmpeg -fflags +genpts -c copy -f hls`.
    pub ffmpeg: Vec<String>,
    /// Extra facts (offsets, timings).
    pub notes: String,
}

/// Formats rows as a plain-text table (one line per failure).
pub fn format_table(rows: &[Row]) -> String {
    const W: usize = 80;
    let short = |s: &str| -> String {
        if s.chars().count() > W {
            s.chars().take(W - 1).collect::<String>() + "…"
        } else {
            s.to_string()
        }
    };
    let cell = |v: &[String], k: usize| -> String {
        match v.get(k) {
            Some(s) => short(s),
            None if k == 0 => "ok".into(),
            None => String::new(),
        }
    };
    let w0 = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let w1 = rows
        .iter()
        .flat_map(|r| r.ours.iter().map(|s| s.chars().count()))
        .max()
        .unwrap_or(0)
        .clamp(12, W);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:w0$} | {:w1$} | ffmpeg -fflags +genpts -c copy failures",
        "case", "our failures"
    );
    let _ = writeln!(
        s,
        "{}-+-{}-+-{}",
        "-".repeat(w0),
        "-".repeat(w1),
        "-".repeat(40)
    );
    for r in rows {
        let n = r.ours.len().max(r.ffmpeg.len()).max(1);
        for k in 0..n {
            let _ = writeln!(
                s,
                "{:w0$} | {:w1$} | {}",
                if k == 0 { r.case.as_str() } else { "" },
                cell(&r.ours, k),
                cell(&r.ffmpeg, k)
            );
        }
        if !r.notes.is_empty() {
            let _ = writeln!(s, "{:w0$} |   {}", "", r.notes);
        }
    }
    s
}
