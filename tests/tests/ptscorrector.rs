//! End-to-end test of `ptscorrector ! hlsladdersink` on a corpus of broken
//! inputs generated here (no downloads): backward and forward timestamp
//! jumps, duplicated frames, missing DTS, two recordings concatenated with
//! restarting timestamps, dropped frames, a live source 200 ppm fast for 10
//! minutes of stream time, two 2^33 wraps, and (issue 19) a recording
//! spliced onto itself 20 s ahead or 5 s back, with either stream meeting
//! the splice first and resuming up to 1.7 s after the other.
//!
//! Every case starts from clean ffmpeg recordings with a sync mark every 2 s
//! (a white frame and a beep at the same media time) and breaks their
//! timestamps into one MPEG-TS file with ffmpeg (`setts` and `noise`
//! bitstream filters on parts that are then byte-concatenated; the DTS case
//! strips the DTS field of the PES headers, which ffmpeg cannot write). The
//! same file goes to
//! - ours: its PES packets with their raw timestamps (see
//!   `gst_broadcast_e2e::pts::read_ts`: `tsdemux` would repair PCR jumps
//!   before our element sees them) through `h264parse`/`aacparse` into
//!   `ptscorrector ! hlsladdersink`, in process;
//! - FFmpeg: `ffmpeg -fflags +genpts -i broken.ts -c copy -f hls`.
//!
//! Both outputs get the same checks (`pts::check_output`): strictly
//! increasing DTS per stream (ffprobe), no `ffmpeg -v warning` output
//! decoding each segment and the whole, an hls.js play-through in Chromium
//! without a stall, and the A/V offset of the decoded sync marks at the end
//! equal to the one at the start within one frame; plus, per case, the
//! output's frame counts and no timeline hole over 1 s. Each case also
//! asserts that its input really is broken at `ptscorrector`'s sink pads
//! (probes), that the element counted exactly the expected repairs per
//! stream (`stats`, nothing else; a `ptscorrector-repair` message for each
//! kind), and that no audio buffer it sends starts before the previous one
//! ends (its documented "moved to the expected time"; downstream,
//! `hlsladdersink` takes PTS + duration as "audio complete up to").
//!
//! Only our failures fail the test; FFmpeg's are printed beside them in a
//! table (also written to `target/<profile>/ptscorrector-e2e-report.txt`).
//!
//! `PTS_E2E_KEEP=1` keeps each case's directory (corpus, both outputs, and
//! `input.csv`/`output.csv`: the timestamps at the element's pads;
//! `repairs.txt`: its `ptscorrector-repair` messages).
//!
//! `PTS_E2E_IDENTITY=1` puts `identity` where `ptscorrector` goes and
//! asserts nothing about the output: the table then shows what the broken
//! inputs do without the element.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gst_broadcast_e2e::pts::*;
use gst_broadcast_e2e::{heavy, plugin_dir};

/// hlsladdersink target duration of the 20 s cases.
const TARGET: u32 = 2;
/// hls.js playback rate of the play-through checks.
const RATE: f64 = 4.0;
/// 1 s in ns.
const S: i64 = 1_000_000_000;

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

fn identity_mode() -> bool {
    std::env::var_os("PTS_E2E_IDENTITY").is_some_and(|v| v == "1")
}

/// What a case built and what its input must show.
struct Corpus {
    /// The broken file.
    file: std::path::PathBuf,
    /// The file whose video and audio frames every output must hold (the
    /// clean source when the repair must drop nothing and add nothing).
    frames_of: std::path::PathBuf,
}

/// Per-case element properties, expectations and input checks.
struct Case {
    name: &'static str,
    absent_dts_is_pts: bool,
    props: Vec<(String, String)>,
    drift_ppm: Option<f64>,
    /// The corrector sees the buffers in file order (no queue in front).
    in_file_order: bool,
    target: u32,
    play: Play,
    expect: Expect,
}

impl Case {
    fn new(name: &'static str, min_pairs: usize) -> Self {
        Case {
            name,
            absent_dts_is_pts: true,
            props: Vec::new(),
            drift_ppm: None,
            in_file_order: false,
            target: TARGET,
            play: Play::Through(RATE),
            expect: Expect {
                min_pairs,
                frames: None,
                drift: None,
                input_span_s: 0.0,
                max_step_s: 1.0,
                audio_dropped: 0,
                segment_warnings_allowed: 0,
            },
        }
    }
}

/// Input timestamps per stream: DTS (else PTS) for video, PTS for audio.
fn input_ts(run: &PipelineRun, i: usize) -> Vec<u64> {
    run.input[i]
        .iter()
        .filter_map(|r| if i == 0 { r.dts.or(r.pts) } else { r.pts })
        .collect()
}

/// The corrector's sink pad of stream `i` (0 video, 1 audio).
fn stream_name(i: usize) -> &'static str {
    ["sink_0", "sink_1"][i]
}

/// Runs one case: ours and ffmpeg's on `corpus`, the common checks, the
/// case's own `element_checks` (failures of ours, given the run), the
/// table row; panics when the input is not broken (`input_check`) or ours
/// failed.
fn run_case(
    case: Case,
    corpus: impl FnOnce(&Path) -> Corpus,
    input_check: impl Fn(&PipelineRun) -> Result<String, String>,
    element_checks: impl Fn(&PipelineRun) -> Vec<String>,
) {
    let _g = heavy();
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(
            "pts-e2e-{}-",
            case.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ))
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    let dir = dir.as_path();
    let corpus = corpus(dir);
    let corpus_s = started.elapsed().as_secs_f64();
    let mut expect = case.expect.clone();
    expect.frames = Some((
        count_packets(&corpus.frames_of, "v:0").unwrap(),
        count_packets(&corpus.frames_of, "a:0").unwrap(),
    ));

    let identity = identity_mode();
    assert!(
        identity || ptscorrector_built(),
        "{}/libgstptscorrector.so is missing: build the workspace with --release first \
         (PTS_E2E_IDENTITY=1 runs the corpus through identity instead)",
        plugin_dir().display()
    );
    let corrector = if identity {
        Corrector::Identity
    } else {
        Corrector::PtsCorrector(case.props.clone())
    };

    // Ours.
    let ours_dir = dir.join("ours");
    std::fs::create_dir_all(&ours_dir).unwrap();
    let bytes = std::fs::read(&corpus.file).unwrap();
    let pes = read_ts(&bytes).unwrap();
    let run = run_pipeline(
        &pes,
        &ours_dir,
        &PipelineOptions {
            corrector,
            target_duration: case.target,
            drift_ppm: case.drift_ppm,
            timeout: Duration::from_secs(240),
            absent_dts_is_pts: case.absent_dts_is_pts,
            in_file_order: case.in_file_order,
        },
    );
    let input = input_check(&run);
    if case.drift_ppm.is_some() {
        let v = input_ts(&run, 0);
        expect.input_span_s = (v.last().unwrap() - v.first().unwrap()) as f64 / 1e9;
    }
    let mut ours = Vec::new();
    ours.extend(run.errors.iter().map(|e| format!("pipeline error: {e}")));
    if !run.eos {
        ours.push("no EOS".into());
    }
    let ours_check = check_output(
        &ours_dir,
        "index.m3u8",
        &ours_dir.join("v0/index.m3u8"),
        case.play,
        &expect,
    );
    ours.extend(ours_check.failures.iter().cloned());
    if !identity {
        ours.extend(audio_overlaps(&run));
        ours.extend(element_checks(&run));
    }

    // FFmpeg.
    let ff_dir = dir.join("ffmpeg");
    let mut ffmpeg = Vec::new();
    let mut ff_check = OutputCheck::default();
    match ffmpeg_genpts_hls(&corpus.file, &ff_dir, case.target) {
        Ok(_) => {
            ff_check = check_output(
                &ff_dir,
                "index.m3u8",
                &ff_dir.join("media.m3u8"),
                case.play,
                &expect,
            );
            ffmpeg.extend(ff_check.failures.iter().cloned());
        }
        Err(e) => ffmpeg.push(e.lines().next().unwrap_or("").to_string()),
    }

    let offs = |c: &OutputCheck| {
        c.offsets
            .map(|(a, b)| format!("{:+.1}/{:+.1} ms", a * 1e3, b * 1e3))
            .unwrap_or_else(|| "-".into())
    };
    let notes = format!(
        "input: {}; A/V offset start/end: ours {} ({} marks), ffmpeg {} ({} marks); \
         {:.0} s (corpus {corpus_s:.0} s, pipeline {:.1} s, checks {:.0}+{:.0} s){}",
        input.as_ref().map(|s| s.as_str()).unwrap_or("NOT BROKEN"),
        offs(&ours_check),
        ours_check.pairs,
        offs(&ff_check),
        ff_check.pairs,
        started.elapsed().as_secs_f64(),
        run.wall.as_secs_f64(),
        ours_check.seconds,
        ff_check.seconds,
        if identity { " [identity]" } else { "" },
    );
    let row = Row {
        case: case.name.into(),
        ours: ours.clone(),
        ffmpeg,
        notes,
    };
    let table = {
        let mut rows = ROWS.lock().unwrap_or_else(|e| e.into_inner());
        rows.retain(|r| r.case != row.case);
        rows.push(row);
        rows.sort_by_key(|r| CASES.iter().position(|c| *c == r.case));
        format_table(&rows)
    };
    println!("\n{table}");
    let _ = std::fs::write(plugin_dir().join("ptscorrector-e2e-report.txt"), &table);
    if !run.warnings.is_empty() {
        println!("{}: pipeline warnings: {:#?}", case.name, run.warnings);
    }
    if let Some(s) = &run.stats {
        println!("{}: stats {s}", case.name);
    }
    println!("{}: ours hls.js {}", case.name, ours_check.play_report);
    println!("{}: ffmpeg hls.js {}", case.name, ff_check.play_report);
    if std::env::var_os("PTS_E2E_KEEP").is_some() {
        dump_records(dir, &run);
        println!("{}: kept {}", case.name, tmp.keep().display());
    }
    if let Err(e) = input {
        panic!(
            "{}: the corpus does not deliver broken input: {e}",
            case.name
        );
    }
    if !identity {
        assert!(
            ours.is_empty(),
            "{}: our output fails: {ours:#?}",
            case.name
        );
    }
}

const CASES: [&str; 16] = [
    "backward jump",
    "forward jump",
    "splice +20 s, video first",
    "splice +20 s, jump-threshold 100 ms",
    "splice +20 s, video 1.5 s late",
    "splice +20 s, audio 1.6 s late",
    "splice -5 s, video first",
    "splice -5 s, video 1.5 s late",
    "splice -5 s, audio 1.6 s late",
    "duplicated frames",
    "DTS missing",
    "DTS missing, read as PTS",
    "concatenated recordings",
    "dropped frames",
    "drift 200 ppm",
    "double 2^33 wrap",
];

/// The element's audio output: each buffer must end (PTS + duration) by
/// the next one's PTS (2 ns for rounding): downstream takes PTS + duration
/// as "audio complete up to".
fn audio_overlaps(run: &PipelineRun) -> Vec<String> {
    let mut n = 0;
    let mut worst = 0i64;
    let mut first = None;
    for w in run.output[1].windows(2) {
        if let (Some(p), Some(d), Some(next)) = (w[0].pts, w[0].duration, w[1].pts) {
            let over = (p + d) as i64 - next as i64;
            if over > 2 {
                n += 1;
                worst = worst.max(over);
                first.get_or_insert(p);
            }
        }
    }
    if n == 0 {
        return vec![];
    }
    vec![format!(
        "sink_1 out: {n} buffers end after the next one starts (by up to {:.1} us, first at PTS {:.3} s)",
        worst as f64 / 1e3,
        first.unwrap() as f64 / 1e9
    )]
}

/// Both streams of the input step by about `jump` (ns, signed) once.
fn input_has_jump(run: &PipelineRun, jump: i64) -> Result<String, String> {
    input_has_jump_within(run, jump, [S, S])
}

/// Both streams of the input step by `jump` (ns, signed) within `tol` (ns,
/// per stream) once.
fn input_has_jump_within(run: &PipelineRun, jump: i64, tol: [i64; 2]) -> Result<String, String> {
    let mut s = Vec::new();
    for (i, tol) in tol.into_iter().enumerate() {
        let (back, fwd) = extreme_steps(&input_ts(run, i));
        let step = if jump < 0 { back } else { fwd };
        if (step - jump).abs() > tol {
            return Err(format!(
                "{}: largest step {:.3} s, expected about {:.3} s",
                stream_name(i),
                step as f64 / 1e9,
                jump as f64 / 1e9
            ));
        }
        s.push(format!("{:+.2} s", step as f64 / 1e9));
    }
    Ok(format!("steps {}", s.join("/")))
}

/// Repair kinds of `ptscorrector`: its `stats` fields and message kinds.
const KINDS: [&str; 11] = [
    "missing-pts",
    "missing-dts",
    "dts-after-pts",
    "non-monotonic-dts",
    "overlap",
    "jump-forward",
    "jump-backward",
    "wrap",
    "gap",
    "duplicate",
    "drift",
];

/// Any number of repairs of a kind.
const ANY: RangeInclusive<u64> = 0..=u64::MAX;
/// At least one repair of a kind.
const SOME: RangeInclusive<u64> = 1..=u64::MAX;

/// Checks the element's `stats` per stream: every listed kind within its
/// [video, audio] range, every other kind 0 on both streams (a repair
/// where the input has nothing to repair is a misdetection), and a
/// `ptscorrector-repair` message for every kind and stream counted.
fn repairs(run: &PipelineRun, expected: &[(&str, [RangeInclusive<u64>; 2])]) -> Vec<String> {
    let Some(stats) = &run.stats else {
        return vec!["no stats".into()];
    };
    let mut f = Vec::new();
    for kind in KINDS {
        for i in 0..2 {
            let st = stream_name(i);
            let n = stat(stats, Some(st), kind);
            let range = expected
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, r)| r[i].clone())
                .unwrap_or(0..=0);
            if !range.contains(&n) {
                let want = match (range.start(), range.end()) {
                    (a, &u64::MAX) => format!(">= {a}"),
                    (a, b) if a == b => format!("{a}"),
                    (a, b) => format!("{a}..{b}"),
                };
                f.push(format!("{st}: {n} {kind} repairs counted, expected {want}"));
            }
            let messages = run
                .repairs
                .iter()
                .filter(|m| m.get::<&str>("kind").ok() == Some(kind))
                .filter(|m| m.get::<&str>("stream").ok() == Some(st))
                .count();
            if n > 0 && messages == 0 {
                f.push(format!(
                    "{st}: {n} {kind} repairs but no ptscorrector-repair message"
                ));
            }
        }
    }
    f
}

/// Repeated PTS of stream `i` of the input.
fn repeats(run: &PipelineRun, i: usize) -> u64 {
    let mut seen = std::collections::HashSet::new();
    run.input[i]
        .iter()
        .filter_map(|r| r.pts)
        .filter(|p| !seen.insert(*p))
        .count() as u64
}

fn split_shift_concat(dir: &Path, src: &Path, cuts: &[f64], shifts: &[i64]) -> std::path::PathBuf {
    let parts = split_ts(src, cuts, dir, "part").unwrap();
    let mut out = Vec::new();
    for (k, p) in parts.iter().enumerate() {
        if shifts[k] == 0 {
            out.push(p.clone());
        } else {
            let q = dir.join(format!("shifted{k}.ts"));
            remux_with_bsf(p, &q, &[("bsf", &setts_shift(shifts[k]))]).unwrap();
            out.push(q);
        }
    }
    let file = dir.join("broken.ts");
    concat_files(&out, &file).unwrap();
    file
}

fn clean(dir: &Path, src: Source) -> std::path::PathBuf {
    let p = dir.join("clean.ts");
    src.encode(&p).unwrap();
    p
}

/// Backward jump: at 10 s of media time every stream's PTS and DTS step
/// back by 5 s (`setts` on the second part, byte-concatenated; B-frames).
/// Asserts: both streams' input steps back ~5 s, the element counts a
/// backward jump, and our output passes every common check.
#[test]
fn backward_jump() {
    run_case(
        Case::new("backward jump", 9),
        |dir| {
            let src = clean(dir, Source::short(2));
            Corpus {
                file: split_shift_concat(dir, &src, &[10.0], &[0, -5 * 90_000]),
                frames_of: src,
            }
        },
        |run| input_has_jump(run, -5 * S),
        |run| repairs(run, &[("jump-backward", [1..=1, 1..=1])]),
    );
}

/// Forward jump: at 10 s of media time every stream's PTS and DTS jump
/// ahead by 5 s (`setts`). Asserts: both streams' input steps ~+5 s, the
/// element counts a forward jump, and our output passes every common check
/// (re-based: no 5 s hole).
#[test]
fn forward_jump() {
    run_case(
        Case::new("forward jump", 9),
        |dir| {
            let src = clean(dir, Source::short(2));
            Corpus {
                file: split_shift_concat(dir, &src, &[10.0], &[0, 5 * 90_000]),
                frames_of: src,
            }
        },
        |run| input_has_jump(run, 5 * S),
        |run| repairs(run, &[("jump-forward", [1..=1, 1..=1])]),
    );
}

/// Output minus input PTS of the last buffer of each stream (ns; the
/// element keeps the buffer order of each stream, so the last ones out are
/// the last ones in): the shift the element applied to each stream by the
/// end.
fn end_shifts(run: &PipelineRun) -> Option<[i64; 2]> {
    let shift = |i: usize| -> Option<i64> {
        let i_pts = run.input[i].last()?.pts? as i64;
        let o_pts = run.output[i].last()?.pts? as i64;
        Some(o_pts - i_pts)
    };
    Some([shift(0)?, shift(1)?])
}

/// How one splice case is built.
struct Splice {
    name: &'static str,
    /// Step of both streams' timestamps at the join, s (`-output_ts_offset`
    /// is 10 + step).
    step: i64,
    /// First packets of one stream of the second half removed (see
    /// `pts::splice_with_offset`).
    drop_head: Option<(&'static str, u32)>,
    /// Element properties beyond the defaults.
    props: &'static [(&'static str, &'static str)],
}

/// Issue 19: a recording spliced onto itself with `-t 10` / `-ss 10
/// -output_ts_offset <10 + step>` (see `pts::splice_with_offset`;
/// B-frames), so that both streams step by `step` s at 10 s of media time.
/// With `-c copy`, the second half's audio restarts 230 ms before its video
/// (in timestamps; video comes first in file order), so the two streams'
/// steps differ by 180 ms. `drop_head` makes them further apart: `("v",
/// 45)` (the first three GOPs) makes audio meet the join first and video
/// resume 1.5 s after it; `("a", 75)` makes audio resume 1.6 s after video.
/// The element sees the buffers in file order (no queue in front), so
/// which stream meets the jump first is the file's doing.
///
/// Asserts: both streams' input steps by about `step` s; the element
/// counts one jump per stream, and shifts both by the same amount (output
/// minus input PTS of the last buffers equal within 1 ms); every frame of
/// the file comes out except the audio overlapping the first half's end
/// (at most 24 frames, 512 ms); the stream that resumes late keeps its
/// hole (up to 2 s allowed between consecutive timestamps, instead of 1 s;
/// the other stream has none, or the A/V offset would move); and the
/// common checks pass: in particular, the A/V offset of the decoded sync
/// marks at the end equals the one at the start (the source's) within one
/// frame. The sync marks repeat every 2 s and pair within 0.5 s, so an
/// offset error of 1.68 s reads as -320 ms there: the shift check gives
/// the exact one. hls.js is not run (the jump cases above do).
fn splice_case(sp: Splice) {
    let mut case = Case::new(sp.name, 8);
    case.in_file_order = true;
    case.play = Play::Skip;
    case.expect.audio_dropped = 24;
    if sp.drop_head.is_some() {
        case.expect.max_step_s = 2.0;
    }
    if matches!(sp.drop_head, Some(("v", _))) {
        // hlsladdersink, not the element: when video resumes 1.7 s after
        // its last frame, it drops the audio of the video hole (80 frames,
        // all sent by the element) and writes a segment holding one audio
        // packet that ffmpeg cannot probe alone.
        case.expect.audio_dropped += 80;
        case.expect.segment_warnings_allowed = 1;
    }
    case.props = sp
        .props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let step = sp.step;
    let kind = if step > 0 {
        "jump-forward"
    } else {
        "jump-backward"
    };
    run_case(
        case,
        |dir| {
            let src = clean(dir, Source::short(2));
            let file =
                splice_with_offset(&src, dir, 10.0, 10.0 + step as f64, sp.drop_head).unwrap();
            Corpus {
                frames_of: file.clone(),
                file,
            }
        },
        move |run| {
            // The stream that resumes late steps by up to 1.8 s more.
            let late = match sp.drop_head {
                Some(("v", _)) => [2 * S, S],
                Some(_) => [S, 2 * S],
                None => [S, S],
            };
            input_has_jump_within(run, step * S, late)
        },
        move |run| {
            let mut f = repairs(
                run,
                &[
                    (kind, [1..=1, 1..=1]),
                    ("overlap", [0..=0, ANY]),
                    ("gap", [ANY, ANY]),
                    ("duplicate", [ANY, ANY]),
                ],
            );
            match end_shifts(run) {
                None => f.push("no output to measure the shifts on".into()),
                Some([v, a]) => {
                    println!(
                        "{}: shift video {:+.3} ms, audio {:+.3} ms: A/V offset moved {:+.3} ms",
                        sp.name,
                        v as f64 / 1e6,
                        a as f64 / 1e6,
                        (a - v) as f64 / 1e6
                    );
                    if (a - v).abs() > 1_000_000 {
                        f.push(format!(
                            "shifted video by {:+.3} s, audio by {:+.3} s: A/V offset moved {:+.1} ms",
                            v as f64 / 1e9,
                            a as f64 / 1e9,
                            (a - v) as f64 / 1e6
                        ));
                    }
                }
            }
            f
        },
    );
}

/// Splice +20 s (`-output_ts_offset 30`, the file): video meets
/// the jump first, audio lands 180 ms before its continuation.
#[test]
fn splice_forward_video_first() {
    splice_case(Splice {
        name: "splice +20 s, video first",
        step: 20,
        drop_head: None,
        props: &[],
    });
}

/// The file with `jump-threshold` 100 ms, below the 180 ms between
/// the two streams' steps.
#[test]
fn splice_forward_threshold_100ms() {
    splice_case(Splice {
        name: "splice +20 s, jump-threshold 100 ms",
        step: 20,
        drop_head: None,
        props: &[("jump-threshold", "100000000")],
    });
}

/// Splice +20 s, the first three video GOPs of the second half dropped:
/// audio meets the jump first, video resumes 1.5 s later.
#[test]
fn splice_forward_video_late() {
    splice_case(Splice {
        name: "splice +20 s, video 1.5 s late",
        step: 20,
        drop_head: Some(("v", 45)),
        props: &[],
    });
}

/// Splice +20 s, the first 75 audio frames of the second half dropped:
/// video meets the jump first, audio resumes 1.6 s after it.
#[test]
fn splice_forward_audio_late() {
    splice_case(Splice {
        name: "splice +20 s, audio 1.6 s late",
        step: 20,
        drop_head: Some(("a", 75)),
        props: &[],
    });
}

/// Splice -5 s (`-output_ts_offset 5`): video meets the jump first.
#[test]
fn splice_backward_video_first() {
    splice_case(Splice {
        name: "splice -5 s, video first",
        step: -5,
        drop_head: None,
        props: &[],
    });
}

/// Splice -5 s, the first three video GOPs of the second half dropped:
/// audio meets the jump first, video resumes 1.5 s later.
#[test]
fn splice_backward_video_late() {
    splice_case(Splice {
        name: "splice -5 s, video 1.5 s late",
        step: -5,
        drop_head: Some(("v", 45)),
        props: &[],
    });
}

/// Splice -5 s, the first 75 audio frames of the second half dropped:
/// video meets the jump first, audio resumes 1.6 s after it.
#[test]
fn splice_backward_audio_late() {
    splice_case(Splice {
        name: "splice -5 s, audio 1.6 s late",
        step: -5,
        drop_head: Some(("a", 75)),
        props: &[],
    });
}

/// Every stream of the input repeats at least `n` PTS it already had.
fn input_repeats(run: &PipelineRun, n: u64) -> Result<String, String> {
    let mut s = Vec::new();
    for i in 0..2 {
        let dups = repeats(run, i);
        if dups < n {
            return Err(format!(
                "{}: {dups} repeated PTS, expected >= {n}",
                stream_name(i)
            ));
        }
        s.push(dups.to_string());
    }
    Ok(format!("{} repeated PTS", s.join("/")))
}

/// Duplicated frames: the 0.5 s GOP from 10.0 s to 10.5 s of media time
/// (holding a sync mark) comes twice with the same timestamps and content
/// (parts byte-concatenated as A B B C; B-frames). Asserts: each input
/// stream repeats >= 10 PTS; the element counts duplicates; our output
/// holds exactly the source's video frames (the copies dropped) and
/// passes every common check.
#[test]
fn duplicated_frames() {
    run_case(
        Case::new("duplicated frames", 9),
        |dir| {
            let src = clean(dir, Source::short(2));
            let p = split_ts(&src, &[10.0, 10.5], dir, "part").unwrap();
            let file = dir.join("broken.ts");
            let order = [p[0].clone(), p[1].clone(), p[1].clone(), p[2].clone()];
            concat_files(&order, &file).unwrap();
            Corpus {
                file,
                frames_of: src.clone(),
            }
        },
        |run| input_repeats(run, 10),
        |run| {
            let (v, a) = (repeats(run, 0), repeats(run, 1));
            repairs(run, &[("duplicate", [v..=v, a..=a])])
        },
    );
}

/// DTS missing: the PES headers of the B-frame video carry a PTS only
/// (the DTS fields stripped from a clean file: ffmpeg cannot write that,
/// its muxer regenerates a missing DTS, `setts=dts=NOPTS` included).
/// `absent_dts_is_pts` decides what the element gets for it (see
/// [`PipelineOptions::absent_dts_is_pts`]).
fn dts_missing_case(name: &'static str, absent_dts_is_pts: bool) {
    let mut case = Case::new(name, 9);
    case.absent_dts_is_pts = absent_dts_is_pts;
    run_case(
        case,
        |dir| {
            let src = clean(dir, Source::short(2));
            let (bytes, n) = strip_video_dts(&std::fs::read(&src).unwrap()).unwrap();
            assert!(n > 100, "only {n} DTS stripped");
            let file = dir.join("broken.ts");
            std::fs::write(&file, bytes).unwrap();
            Corpus {
                file,
                frames_of: src.clone(),
            }
        },
        |run| {
            let v = &run.input[0];
            let mut last = None;
            let mut missing = 0;
            let mut unusable = 0;
            for r in v {
                match (r.dts, r.pts) {
                    (None, _) => missing += 1,
                    (Some(d), Some(p)) if d > p || last.is_some_and(|l| d <= l) => unusable += 1,
                    _ => {}
                }
                last = r.dts.or(last);
            }
            if (missing + unusable) * 4 < v.len() {
                return Err(format!(
                    "{missing} without DTS, {unusable} with an unusable one, of {}",
                    v.len()
                ));
            }
            Ok(format!(
                "of {} video buffers {missing} without DTS, {unusable} not increasing",
                v.len()
            ))
        },
        move |run| {
            if absent_dts_is_pts {
                repairs(run, &[("non-monotonic-dts", [SOME, 0..=0])])
            } else {
                repairs(run, &[("missing-dts", [SOME, 0..=0])])
            }
        },
    );
}

/// DTS missing, delivered as GST_CLOCK_TIME_NONE (what ffmpeg's demuxer
/// sees in that file, and what RTP depayloaders or matroskademux give).
/// Asserts: every video buffer reaches the element without DTS; the
/// element counts the DTS repairs; our output passes every common check
/// (DTS rebuilt strictly increasing) and holds every frame.
#[test]
fn dts_missing() {
    dts_missing_case("DTS missing", false);
}

/// DTS missing, read as the MPEG-TS rule says (absent DTS = PTS, as
/// `tsdemux` does): B-frame video then has DTS = PTS, going back at every
/// B-frame. Asserts: >= 25 % of the video buffers reach the element with a
/// DTS not increasing; the element counts the DTS repairs; our output
/// passes every common check and holds every frame.
#[test]
fn dts_missing_read_as_pts() {
    dts_missing_case("DTS missing, read as PTS", true);
}

/// Two recordings concatenated: two separately encoded 10 s recordings,
/// each with timestamps starting at 1.4 s, byte-concatenated (the second
/// restarts its timestamps: about -10 s at the join; B-frames). Asserts:
/// both input streams step back ~10 s; the element counts a backward jump
/// per stream; the second recording's audio that would overlap the first
/// recording's last audio frame is dropped (at most 2 frames, counted as
/// overlap), which may leave a gap of under a frame (counted); our output
/// passes every common check (the second recording's own A/V offset kept).
#[test]
fn concatenated_recordings() {
    let mut case = Case::new("concatenated recordings", 9);
    case.expect.audio_dropped = 2;
    run_case(
        case,
        |dir| {
            let rec = Source {
                seconds: 10,
                ..Source::short(2)
            };
            let a = dir.join("rec1.ts");
            let b = dir.join("rec2.ts");
            rec.encode(&a).unwrap();
            rec.encode(&b).unwrap();
            let file = dir.join("broken.ts");
            concat_files(&[a, b], &file).unwrap();
            Corpus {
                frames_of: file.clone(),
                file,
            }
        },
        |run| input_has_jump(run, -10 * S),
        |run| {
            repairs(
                run,
                &[
                    ("jump-backward", [1..=1, 1..=1]),
                    ("overlap", [0..=0, 0..=2]),
                    ("gap", [0..=0, 0..=1]),
                ],
            )
        },
    );
}

/// Dropped frames: ffmpeg's `noise` bitstream filter removes 10 video
/// frames (the last P-frame before a keyframe, which nothing references;
/// no B-frames) and 10 AAC frames (in the silence between beeps), leaving
/// one-frame gaps. Asserts: each input stream has >= 8 steps of more than
/// 1.5 frames; the element counts gaps; our output keeps every remaining
/// frame where it was (gap-mode=pass: A/V offset kept) and passes every
/// common check.
#[test]
fn dropped_frames() {
    run_case(
        Case::new("dropped frames", 9),
        |dir| {
            let src = clean(dir, Source::short(0));
            let file = dir.join("broken.ts");
            remux_with_bsf(
                &src,
                &file,
                &[
                    ("bsf:v", "noise=drop=eq(mod(n\\,60)\\,44)"),
                    ("bsf:a", "noise=drop=eq(mod(n\\,94)\\,47)"),
                ],
            )
            .unwrap();
            Corpus {
                frames_of: file.clone(),
                file,
            }
        },
        |run| {
            let mut s = Vec::new();
            for (i, frame) in [(0, 1e9 / 30.0), (1, 1024.0 * 1e9 / 48000.0)] {
                let ts = input_ts(run, i);
                let gaps = ts
                    .windows(2)
                    .filter(|w| (w[1] as f64 - w[0] as f64) > 1.5 * frame)
                    .count();
                if gaps < 8 {
                    return Err(format!("{}: {gaps} gaps", stream_name(i)));
                }
                s.push(gaps.to_string());
            }
            Ok(format!("{} one-frame gaps", s.join("/")))
        },
        |run| repairs(run, &[("gap", [10..=10, 10..=10])]),
    );
}

/// `pts - clock` of the video buffers, in ms relative to the first
/// window: the median of every window of 300 frames (10 s), leaving out the
/// first and the last 30 frames (start-up, and the drain at EOS when the
/// clock stands still). Video drives the arrival clock; audio comes in
/// bursts of several AAC frames per PES and would only add noise.
fn pts_minus_clock(recs: &[Rec]) -> Vec<f64> {
    let (skip, n) = (30, 300);
    let d: Vec<f64> = recs
        .iter()
        .filter_map(|r| Some(r.pts? as f64 - r.clock? as f64))
        .collect();
    if d.len() < 2 * (n + skip) {
        return Vec::new();
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut w: Vec<f64> = (skip..d.len() - skip - n)
        .step_by(n)
        .map(|k| median(&d[k..k + n]))
        .collect();
    w.push(median(&d[d.len() - skip - n..d.len() - skip]));
    let base = w[0];
    w.iter().map(|v| (v - base) / 1e6).collect()
}

/// Drift: a live source whose clock runs 200 ppm fast against the pipeline
/// clock for 10 minutes of stream time (no B-frames). A `TestClock` is the
/// pipeline clock, set as each buffer reaches the element to arrival
/// running time = (DTS - first DTS) / (1 + 200e-6) + 200 ms, and
/// `drift-correction=on`; nothing waits for real time. Asserts: the input's
/// PTS minus arrival grows by 100-140 ms (120 ms expected); the output's
/// PTS minus arrival stays within `drift-tolerance` (20 ms) of the start,
/// at the end and in every 10 s window (22 ms); the output video DTS span equals the arrival span within 20 ms;
/// and every common check passes (A/V offset of the marks kept). hls.js
/// plays the first 15 s and, after a seek, the last 15 s (all ten minutes
/// would take too long; the seek itself is not a stall). FFmpeg's remux of
/// the file has no clock to follow: it keeps the 120 ms.
#[test]
fn drift_200_ppm() {
    let mut case = Case::new("drift 200 ppm", 285);
    case.props = vec![
        ("drift-correction".into(), "on".into()),
        ("drift-tolerance".into(), "20000000".into()),
    ];
    case.drift_ppm = Some(200.0);
    case.target = 6;
    // Ten minutes at rate 4 would take 2.5 min per output: play the first
    // 15 s, seek, and play the last 15 s.
    case.play = Play::HeadAndTail {
        rate: RATE,
        head: 15.0,
        tail: 15.0,
    };
    case.expect.drift = Some((200.0, 0.020));
    run_case(
        case,
        |dir| {
            let src = Source {
                seconds: 600,
                bframes: 0,
                gop: 30,
                preset: "ultrafast",
            };
            let file = clean(dir, src);
            Corpus {
                frames_of: file.clone(),
                file,
            }
        },
        |run| {
            let w = pts_minus_clock(&run.input[0]);
            let drift = *w.last().ok_or("no arrival times")?;
            if !(100.0..140.0).contains(&drift) {
                return Err(format!(
                    "input PTS - arrival grows by {drift:.1} ms, not ~120 ms"
                ));
            }
            Ok(format!("PTS - arrival grows {drift:.1} ms"))
        },
        |run| {
            let mut f = Vec::new();
            // Within drift-tolerance all along (10 s medians; 2 ms for the
            // detection period of 1 s and the median), and at the end.
            let w = pts_minus_clock(&run.output[0]);
            let worst = w
                .iter()
                .copied()
                .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            match w.last() {
                None => f.push("no output arrival times".into()),
                Some(end) if end.abs() > 20.0 || worst.abs() > 22.0 => f.push(format!(
                    "output PTS - arrival moved {end:+.1} ms by the end, {worst:+.1} ms at \
                     worst (drift-tolerance 20 ms)"
                )),
                Some(_) => {}
            }
            f.extend(repairs(run, &[("drift", [ANY, ANY])]));
            if run
                .stats
                .as_ref()
                .is_some_and(|s| stat(s, None, "drift") == 0)
            {
                f.push("no drift repair counted".into());
            }
            f
        },
    );
}

/// Double 2^33 wrap: the two halves of a clean recording, each shifted
/// with `setts` to start 3 s before the 2^33 wrap (B-frames), byte-
/// concatenated: the raw timestamps wrap 3 s in, go back to 2^33 - 3 s at
/// the join and wrap again 3 s later. Asserts: each input stream steps
/// back by about 2^33 ticks (95443.7 s) exactly twice; the element counts
/// 2 wraps per stream and at most one jump per stream (the join: a wrap
/// is not a jump); our output passes every common check.
#[test]
fn double_wrap() {
    run_case(
        Case::new("double 2^33 wrap", 9),
        |dir| {
            let src = clean(dir, Source::short(2));
            let parts = split_ts(&src, &[10.0], dir, "part").unwrap();
            let mut shifted = Vec::new();
            for (k, p) in parts.iter().enumerate() {
                let first = first_timestamps(p)
                    .unwrap()
                    .values()
                    .map(|&(pts, dts)| pts.min(dts))
                    .min()
                    .unwrap();
                let shift = (WRAP_TICKS - 3 * TICKS_PER_SECOND) as i64 - first as i64;
                let q = dir.join(format!("wrapped{k}.ts"));
                remux_with_bsf(p, &q, &[("bsf", &setts_shift(shift))]).unwrap();
                shifted.push(q);
            }
            let file = dir.join("broken.ts");
            concat_files(&shifted, &file).unwrap();
            Corpus {
                file,
                frames_of: src.clone(),
            }
        },
        |run| {
            let wrap = ticks_to_ns(WRAP_TICKS) as i64;
            let mut s = Vec::new();
            for i in 0..2 {
                let ts = input_ts(run, i);
                let wraps = ts
                    .windows(2)
                    .filter(|w| w[1] as i64 - w[0] as i64 <= -(wrap - 60 * S))
                    .count();
                if wraps != 2 {
                    return Err(format!("{}: {wraps} wraps", stream_name(i)));
                }
                s.push(wraps.to_string());
            }
            Ok(format!("{} raw wraps", s.join("/")))
        },
        |run| {
            let Some(stats) = &run.stats else {
                return vec!["no stats".into()];
            };
            // The join (2^33 - 3 s after 7 s past the wrap) is one jump,
            // of either direction; the wraps are none.
            let mut f = repairs(
                run,
                &[
                    ("wrap", [2..=2, 2..=2]),
                    ("jump-forward", [0..=1, 0..=1]),
                    ("jump-backward", [0..=1, 0..=1]),
                ],
            );
            for i in 0..2 {
                let st = stream_name(i);
                let jumps =
                    stat(stats, Some(st), "jump-forward") + stat(stats, Some(st), "jump-backward");
                if jumps != 1 {
                    f.push(format!(
                        "{st}: {jumps} jumps counted, the join is the one jump"
                    ));
                }
            }
            f
        },
    );
}

/// Writes the timestamps seen at the corrector's pads (ns; stream 0 video,
/// 1 audio) to `input.csv` and `output.csv` in `dir`.
fn dump_records(dir: &Path, run: &PipelineRun) {
    for (name, recs) in [("input.csv", &run.input), ("output.csv", &run.output)] {
        let mut s = String::from("stream,pts,dts,duration,discont,delta,clock\n");
        for (i, v) in recs.iter().enumerate() {
            for r in v {
                let o = |x: Option<u64>| x.map(|v| v.to_string()).unwrap_or_default();
                s += &format!(
                    "{i},{},{},{},{},{},{}\n",
                    o(r.pts),
                    o(r.dts),
                    o(r.duration),
                    r.discont as u8,
                    r.delta as u8,
                    o(r.clock)
                );
            }
        }
        let _ = std::fs::write(dir.join(name), s);
    }
    let messages: Vec<String> = run.repairs.iter().map(|m| m.to_string()).collect();
    let _ = std::fs::write(dir.join("repairs.txt"), messages.join("\n"));
}
