// SPDX-License-Identifier: MPL-2.0

//! The timestamp repair engine of `ptscorrector`, free of GStreamer types so
//! that it is cheap per buffer and testable with exact numbers.
//!
//! All times are signed nanoseconds of running time. Each stream owns a
//! [`StreamCore`]; all streams of one element share a [`Timeline`], so a jump
//! repaired on one stream shifts the others by the same amount and a drift
//! correction slews every stream together.
//!
//! Domains a timestamp goes through, per stream:
//! 1. *input*: running time of the buffer as it arrived;
//! 2. *unwrapped*: input plus whole 2^33 and 2^32 wraps of the 90 kHz clock
//!    (MPEG-TS PES and RTP timestamps, ISO/IEC 13818-1 2.4.3.7, RFC 3550 5.1);
//! 3. *continuous*: unwrapped plus the stream's jump offset;
//! 4. *output*: continuous plus the shared drift slew (and DTS rebuilt where
//!    the input's DTS could not be used).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One second in ns.
pub const SECOND: i64 = 1_000_000_000;

/// 2^33 ticks of 90 kHz (the MPEG-TS PTS/DTS wrap), in ns, rounded:
/// 95 443.717 688 889 s, about 26.5 hours.
pub const WRAP_33_NS: i64 = 95_443_717_688_889;
/// 2^32 ticks of 90 kHz (the RTP timestamp wrap of video), in ns, rounded:
/// 47 721.858 844 444 s, about 13.3 hours.
pub const WRAP_32_NS: i64 = 47_721_858_844_444;

/// Streams are told apart by what the repair may assume of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Video (raw or encoded): DTS must increase strictly; PTS may be
    /// reordered.
    Video,
    /// Encoded video whose frames depend on each other: gaps cannot be filled
    /// by repeating a buffer.
    InterVideo,
    /// Audio or anything else: PTS must increase strictly, DTS = PTS.
    Audio,
}

/// What was repaired, as named in the element message and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repair {
    /// PTS missing, interpolated.
    MissingPts,
    /// DTS missing (video), rebuilt from the reordered PTS.
    MissingDts,
    /// DTS later than PTS (video), rebuilt.
    DtsAfterPts,
    /// DTS not increasing (video), rebuilt.
    NonMonotonicDts,
    /// Audio PTS behind the previous buffer's end but not a duplicate:
    /// moved to the expected time.
    Overlap,
    /// Timestamp ahead of the expected one by more than the jump threshold.
    JumpForward,
    /// Timestamp behind the expected one by more than the jump threshold.
    JumpBackward,
    /// 2^33 or 2^32 wrap of the 90 kHz clock, unwrapped.
    Wrap,
    /// Missing frames (a step of more than 1.5 frame durations, below the
    /// jump threshold).
    Gap,
    /// A buffer with the timestamp of one already sent.
    Duplicate,
    /// Drift against the pipeline clock beyond the tolerance: slewing
    /// started or stopped.
    Drift,
}

impl Repair {
    /// Every kind, in the order of [`Repair::index`].
    pub const ALL: [Repair; 11] = [
        Repair::MissingPts,
        Repair::MissingDts,
        Repair::DtsAfterPts,
        Repair::NonMonotonicDts,
        Repair::Overlap,
        Repair::JumpForward,
        Repair::JumpBackward,
        Repair::Wrap,
        Repair::Gap,
        Repair::Duplicate,
        Repair::Drift,
    ];

    /// Position in [`Repair::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in messages (`kind` field) and the `stats` structure.
    pub fn name(self) -> &'static str {
        match self {
            Repair::MissingPts => "missing-pts",
            Repair::MissingDts => "missing-dts",
            Repair::DtsAfterPts => "dts-after-pts",
            Repair::NonMonotonicDts => "non-monotonic-dts",
            Repair::Overlap => "overlap",
            Repair::JumpForward => "jump-forward",
            Repair::JumpBackward => "jump-backward",
            Repair::Wrap => "wrap",
            Repair::Gap => "gap",
            Repair::Duplicate => "duplicate",
            Repair::Drift => "drift",
        }
    }
}

/// One repair as reported to the element: `before` is the input timestamp
/// (running time, ns; `None` when missing), `after` the repaired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// What was repaired.
    pub kind: Repair,
    /// Input running time, ns.
    pub before: Option<i64>,
    /// Output running time, ns.
    pub after: Option<i64>,
}

/// Settings of the repair, shared by every stream of an element.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// A step from the expected timestamp larger than this (ns) is a jump.
    pub jump_threshold: i64,
    /// Frames of lookahead used to rebuild DTS of reordered video.
    pub max_reorder: u32,
    /// Repeat the previous buffer (or send a gap, for inter-coded video)
    /// into a gap instead of only counting it.
    pub fill_gaps: bool,
    /// Drop duplicates instead of passing them on with repaired timestamps.
    pub drop_duplicates: bool,
    /// Drift beyond this (ns) starts a slew.
    pub drift_tolerance: i64,
    /// Largest slew rate, parts per million of stream time.
    pub max_slew_ppm: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            jump_threshold: SECOND,
            max_reorder: 4,
            fill_gaps: false,
            drop_duplicates: true,
            drift_tolerance: 20_000_000,
            max_slew_ppm: 1000,
        }
    }
}

/// A jump repaired by one stream, for the other streams to follow.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    id: u64,
    /// Input step of the detecting stream: actual minus expected, ns.
    deviation: i64,
    /// Continuous time (of the detecting stream) where it happened.
    at: i64,
}

/// How long (continuous ns) a jump of one stream waits for the same jump in
/// the other streams, beyond the jump threshold.
const EPOCH_MATCH_WINDOW: i64 = 5 * SECOND;

/// One piece of the slew function: from continuous time `start` on, the
/// offset is `offset + rate * (t - start)`.
#[derive(Debug, Clone, Copy, Default)]
struct Piece {
    start: i64,
    offset: f64,
    rate: f64,
}

/// Pieces of the slew kept for streams that lag behind the others.
const SLEW_HISTORY: usize = 128;

/// The drift slew: a continuous, piecewise-linear offset over continuous
/// stream time, the same function for every stream. A new piece starts at
/// or after the latest time any stream has evaluated, so a timestamp
/// already sent never changes meaning and no stream sees a step.
#[derive(Debug, Default)]
struct Slew {
    pieces: VecDeque<Piece>,
    /// Latest continuous time evaluated by any stream.
    frontier: i64,
    /// Slewing in progress.
    engaged: bool,
    /// The stream whose drift drives the slew (the first to measure one).
    reference: Option<u32>,
    /// Last measured drift of the reference stream, ns.
    drift: i64,
}

impl Slew {
    fn piece_at(&self, t: i64) -> Piece {
        self.pieces
            .iter()
            .rev()
            .find(|p| p.start <= t)
            .or(self.pieces.front())
            .copied()
            .unwrap_or_default()
    }

    fn at(&self, t: i64) -> f64 {
        let p = self.piece_at(t);
        p.offset + p.rate * (t - p.start) as f64
    }

    fn rate(&self) -> f64 {
        self.pieces.back().map_or(0.0, |p| p.rate)
    }

    /// Continues with `rate` from the frontier (or `t`, if later).
    fn set_rate(&mut self, t: i64, rate: f64) {
        if self.pieces.back().is_some_and(|p| p.rate == rate) {
            return;
        }
        let start = t.max(self.frontier);
        let offset = self.at(start);
        self.pieces.push_back(Piece {
            start,
            offset,
            rate,
        });
        if self.pieces.len() > SLEW_HISTORY {
            self.pieces.pop_front();
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    epochs: VecDeque<Epoch>,
    next_epoch: u64,
    slew: Slew,
}

/// The timeline shared by all streams of one element: pending jumps and the
/// drift slew.
#[derive(Debug, Default)]
pub struct Timeline {
    shared: Mutex<Shared>,
    /// Fast path: no slew offset to apply yet.
    slewing: AtomicBool,
}

impl Timeline {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets pending jumps and the slew (on flush or stop).
    pub fn reset(&self) {
        *self.lock() = Shared::default();
        self.slewing.store(false, Ordering::Relaxed);
    }

    /// The newest jump id (streams created now ignore older jumps).
    fn latest_epoch(&self) -> u64 {
        self.lock().next_epoch
    }

    /// A stream saw a jump of `deviation` at continuous time `at`: returns
    /// the shift to apply (ns) and the jump's id. Follows a jump of another
    /// stream of about the same size (within `threshold`) made after the
    /// stream's last one and close in time, so that all streams move
    /// together; otherwise records a new jump.
    fn jump(&self, after_id: u64, deviation: i64, at: i64, threshold: i64) -> (i64, u64) {
        let mut s = self.lock();
        if let Some(e) = s.epochs.iter().find(|e| {
            e.id > after_id
                && (e.deviation - deviation).abs() <= threshold
                && (e.at - at).abs() <= threshold + EPOCH_MATCH_WINDOW
        }) {
            return (-e.deviation, e.id);
        }
        s.next_epoch += 1;
        let id = s.next_epoch;
        s.epochs.push_back(Epoch { id, deviation, at });
        if s.epochs.len() > 32 {
            s.epochs.pop_front();
        }
        (-deviation, id)
    }

    /// Slew offset (ns) at continuous time `t`, and `duration` (ns)
    /// stretched to end where the slew puts `t + duration` (1 ns short, so
    /// the buffer ends before the next one starts despite rounding).
    fn slew_at(&self, t: i64, duration: Option<i64>) -> (i64, Option<i64>) {
        if !self.slewing.load(Ordering::Relaxed) {
            return (0, duration);
        }
        let mut s = self.lock();
        let end = t + duration.unwrap_or(0);
        s.slew.frontier = s.slew.frontier.max(end);
        let start = s.slew.at(t).round() as i64;
        let duration = duration.map(|d| (d + s.slew.at(end).round() as i64 - start - 1).max(0));
        (start, duration)
    }

    /// The current drift (ns), slew rate (ppm) and slew offset at the
    /// frontier (ns).
    pub fn drift_state(&self) -> (i64, f64, i64) {
        let s = self.lock();
        (
            s.slew.drift,
            s.slew.rate() * 1e6,
            s.slew.at(s.slew.frontier).round() as i64,
        )
    }

    /// A stream measured `drift` (ns: its PTS minus arrival, against its
    /// first measurement) at continuous time `t`. Only the reference stream
    /// steers the slew: when |drift + slew| exceeds the tolerance, the slew
    /// rate follows the error with a time constant of tolerance / max-slew,
    /// capped at max-slew, until the error is below a quarter of the
    /// tolerance. Returns `Some(true/false)` when slewing starts/stops.
    fn drift(&self, stream: u32, drift: i64, t: i64, cfg: &Config) -> Option<bool> {
        let mut s = self.lock();
        let reference = *s.slew.reference.get_or_insert(stream);
        if reference != stream {
            return None;
        }
        s.slew.drift = drift;
        let current = s.slew.at(t);
        let error = drift as f64 + current;
        let tol = cfg.drift_tolerance.max(1) as f64;
        let max_rate = cfg.max_slew_ppm as f64 * 1e-6;
        let mut changed = None;
        if !s.slew.engaged && error.abs() > tol {
            s.slew.engaged = true;
            changed = Some(true);
        } else if s.slew.engaged && error.abs() < tol / 4.0 {
            s.slew.engaged = false;
            changed = Some(false);
        }
        let rate = if s.slew.engaged {
            let tau = tol / max_rate.max(1e-12);
            (-error / tau).clamp(-max_rate, max_rate)
        } else {
            0.0
        };
        s.slew.set_rate(t, rate);
        if !s.slew.pieces.is_empty() {
            self.slewing.store(true, Ordering::Relaxed);
        }
        changed
    }
}

/// A buffer as the engine sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input {
    /// PTS as running time, ns.
    pub pts: Option<i64>,
    /// DTS as running time, ns.
    pub dts: Option<i64>,
    /// Duration, ns.
    pub duration: Option<i64>,
    /// Arrival as running time of the pipeline clock, ns (drift only).
    pub arrival: Option<i64>,
}

/// What the engine asks the element to send, in order.
#[derive(Debug)]
pub enum Output<T> {
    /// A buffer with its repaired timestamps (running time, ns).
    Buffer {
        /// The buffer.
        payload: T,
        /// Repaired PTS.
        pts: i64,
        /// Repaired DTS (= PTS for audio).
        dts: i64,
        /// Set DISCONT: the buffer follows a jump.
        discont: bool,
        /// Duration scaled by the slew rate (ns), when slewing; else the
        /// buffer's own.
        duration: Option<i64>,
        /// A copy of an earlier buffer sent to fill a gap.
        filler: bool,
    },
    /// A gap of `duration` ns at `pts` (inter-coded video cannot be filled).
    Gap {
        /// Start of the gap, running time ns.
        pts: i64,
        /// Length, ns.
        duration: i64,
    },
}

/// Counts of one stream.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Buffers received.
    pub buffers: u64,
    /// Repairs per kind, indexed by [`Repair::index`].
    pub repairs: [u64; Repair::ALL.len()],
    /// Buffers sent to fill gaps.
    pub filled: u64,
}

struct Pending<T> {
    payload: T,
    pts: i64,
    duration: Option<i64>,
    /// Upstream DTS (with slew), used while it is valid.
    dts: Option<i64>,
    discont: bool,
}

/// The repair state of one stream.
pub struct StreamCore<T> {
    id: u32,
    kind: StreamKind,
    /// Frame duration from the caps, ns.
    caps_step: Option<i64>,
    /// Smallest positive step between reference timestamps seen, ns.
    measured_step: Option<i64>,
    /// Whole wraps added, in 90 kHz ticks.
    wrap_ticks: i128,
    wrap_ns: i64,
    /// Period of the last wrap seen, ns (used to match PTS to DTS).
    wrap_period: i64,
    /// Jump offset, ns.
    offset: i64,
    epoch: u64,
    /// Reference timestamp (DTS, else PTS) of the last buffer, continuous.
    prev_ref: Option<i64>,
    prev_step: i64,
    /// Last continuous PTS and DTS of the input.
    prev_pts: Option<i64>,
    prev_dts: Option<i64>,
    /// PTS - DTS of the last buffer with both (video), for a missing PTS.
    pts_dts: i64,
    /// Continuous PTS of recent buffers, to tell duplicates.
    recent: [i64; 64],
    recent_len: usize,
    recent_pos: usize,
    /// Last output DTS (video) or PTS (audio).
    last_out: Option<i64>,
    /// Earliest running time the output segment can carry (its stream time
    /// 0), ns.
    floor: i64,
    /// Video DTS is rebuilt from PTS through the reorder window.
    rebuild: bool,
    /// DTS of the last buffer that left the lookahead with its own DTS.
    last_window_dts: Option<i64>,
    /// Audio after a jump: buffers overlapping the previous end are dropped.
    splicing: bool,
    /// The jump's DISCONT goes to the next buffer sent.
    pending_discont: bool,
    window: VecDeque<Pending<T>>,
    heap: BinaryHeap<Reverse<i64>>,
    last_sorted: Option<i64>,
    /// Previous buffer, for gap filling.
    last_payload: Option<T>,
    /// Drift meter: max of PTS - arrival over the current window.
    drift_window_end: Option<i64>,
    drift_max: i64,
    drift_base: Option<i64>,
    /// Counters.
    pub counts: Counts,
}

/// Frame step assumed for video when neither caps nor timestamps give one.
const DEFAULT_VIDEO_STEP: i64 = SECOND / 30;
/// Drift is measured as the maximum of PTS minus arrival per window of this
/// many ns of arrival time (the least delayed arrival of each window).
const DRIFT_WINDOW: i64 = SECOND;
/// Smallest step between timestamps the engine makes up (one 90 kHz tick,
/// rounded up, ns), so that they stay distinct in MPEG-TS and RTP.
pub const TICK: i64 = 11_112;
/// Gap filling stops after this many buffers per gap.
const MAX_FILL: i64 = 1000;

impl<T: Clone> StreamCore<T> {
    /// A new stream `id` of `kind` joining `timeline`.
    pub fn new(id: u32, kind: StreamKind, timeline: &Timeline) -> Self {
        StreamCore {
            id,
            kind,
            caps_step: None,
            measured_step: None,
            wrap_ticks: 0,
            wrap_ns: 0,
            wrap_period: WRAP_33_NS,
            offset: 0,
            epoch: timeline.latest_epoch(),
            prev_ref: None,
            prev_step: 0,
            prev_pts: None,
            prev_dts: None,
            pts_dts: 0,
            recent: [i64::MIN; 64],
            recent_len: 0,
            recent_pos: 0,
            last_out: None,
            floor: i64::MIN,
            rebuild: false,
            last_window_dts: None,
            splicing: false,
            pending_discont: false,
            window: VecDeque::new(),
            heap: BinaryHeap::new(),
            last_sorted: None,
            last_payload: None,
            drift_window_end: None,
            drift_max: i64::MIN,
            drift_base: None,
            counts: Counts::default(),
        }
    }

    /// The stream kind.
    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// Changes the kind (new caps) without forgetting the timeline.
    pub fn set_kind(&mut self, kind: StreamKind) {
        self.kind = kind;
    }

    /// Frame duration from the caps (ns), e.g. 1/framerate or samples per
    /// frame / rate.
    pub fn set_caps_step(&mut self, step: Option<i64>) {
        self.caps_step = step.filter(|s| *s > 0);
    }

    /// Sets the earliest running time (ns) the output can carry: made-up
    /// timestamps are not put before it.
    pub fn set_floor(&mut self, floor: i64) {
        self.floor = floor;
    }

    /// The frame duration in use, ns.
    pub fn frame_step(&self) -> Option<i64> {
        self.caps_step.or(self.measured_step)
    }

    /// The jump offset plus unwrapping currently applied (ns), without the
    /// drift slew.
    pub fn correction(&self) -> i64 {
        self.offset + self.wrap_ns
    }

    /// DTS are rebuilt through the reorder window.
    pub fn rebuilding(&self) -> bool {
        self.rebuild
    }

    /// Latency the reorder window may add, ns (video only).
    pub fn reorder_latency(&self, cfg: &Config) -> i64 {
        match self.kind {
            StreamKind::Audio => 0,
            _ => cfg.max_reorder as i64 * self.frame_step().unwrap_or(DEFAULT_VIDEO_STEP),
        }
    }

    fn step_for(&self, duration: Option<i64>) -> i64 {
        duration
            .filter(|d| *d > 0)
            .or(self.caps_step)
            .or(self.measured_step)
            .unwrap_or(match self.kind {
                StreamKind::Audio => 0,
                _ => DEFAULT_VIDEO_STEP,
            })
    }

    fn remember(&mut self, pts: i64) {
        self.recent[self.recent_pos] = pts;
        self.recent_pos = (self.recent_pos + 1) % self.recent.len();
        self.recent_len = (self.recent_len + 1).min(self.recent.len());
    }

    fn is_duplicate(&self, pts: i64, step: i64) -> bool {
        let tol = (step / 4).max(1);
        self.recent[..self.recent_len]
            .iter()
            .any(|r| (r - pts).abs() < tol)
    }

    fn count(
        &mut self,
        kind: Repair,
        before: Option<i64>,
        after: Option<i64>,
        report: &mut impl FnMut(Report),
    ) {
        self.counts.repairs[kind.index()] += 1;
        report(Report {
            kind,
            before,
            after,
        });
    }

    /// Sets the wrap count so that the 90 kHz tick total is `ticks`.
    fn set_wrap(&mut self, ticks: i128) {
        self.wrap_ticks = ticks;
        // ns = ticks * 1e9 / 90 000, rounded to nearest.
        self.wrap_ns = ((ticks * 100_000 + if ticks >= 0 { 4 } else { -4 }) / 9) as i64;
    }

    /// Repairs one buffer. Sends what is ready through `emit` (possibly
    /// nothing while the reorder window fills, possibly several buffers)
    /// and every repair through `report`.
    pub fn push(
        &mut self,
        input: Input,
        payload: T,
        cfg: &Config,
        timeline: &Timeline,
        emit: &mut impl FnMut(Output<T>),
        report: &mut impl FnMut(Report),
    ) {
        self.counts.buffers += 1;
        let video = self.kind != StreamKind::Audio;
        let mut discont = false;

        // 1. Unwrap and apply the jump offset.
        let base = self.wrap_ns + self.offset;
        let mut dts = if video {
            input.dts.map(|t| t + base)
        } else {
            None
        };
        let mut pts = input.pts.map(|t| t + base);
        let reference = dts.or(pts);
        if let (Some(r), Some(prev)) = (reference, self.prev_ref) {
            let dev = r - (prev + self.prev_step);
            if dev.abs() > cfg.jump_threshold {
                let wrap = [(33u32, WRAP_33_NS), (32, WRAP_32_NS)]
                    .into_iter()
                    .find(|(_, p)| (dev + p).abs() <= cfg.jump_threshold);
                let shift = if let Some((bits, period)) = wrap {
                    let before = self.wrap_ns;
                    self.set_wrap(self.wrap_ticks + (1i128 << bits));
                    self.wrap_period = period;
                    self.count(
                        Repair::Wrap,
                        input.dts.or(input.pts),
                        Some(r + period),
                        report,
                    );
                    self.wrap_ns - before
                } else {
                    let (shift, id) = timeline.jump(self.epoch, dev, prev, cfg.jump_threshold);
                    self.epoch = id;
                    self.offset += shift;
                    discont = true;
                    // A jump of the input is not drift.
                    self.drift_base = None;
                    self.drift_window_end = None;
                    let kind = if dev > 0 {
                        Repair::JumpForward
                    } else {
                        Repair::JumpBackward
                    };
                    self.count(kind, input.dts.or(input.pts), Some(r + shift), report);
                    shift
                };
                dts = dts.map(|t| t + shift);
                pts = pts.map(|t| t + shift);
            }
        }
        // PTS and DTS wrap on their own: bring PTS to within half a wrap of
        // DTS.
        if let (Some(p), Some(d)) = (pts, dts) {
            let half = self.wrap_period / 2;
            if p - d > half {
                pts = Some(p - self.wrap_period);
            } else if d - p > half {
                pts = Some(p + self.wrap_period);
            }
        }

        let step = self.step_for(input.duration);

        // 2. Missing timestamps.
        let pts = match pts {
            Some(p) => p,
            None => {
                let p = match dts {
                    Some(d) => d + self.pts_dts.max(0),
                    None => self.prev_pts.map_or(0, |p| p + step),
                };
                self.count(Repair::MissingPts, None, Some(p), report);
                p
            }
        };

        if video {
            self.push_video(
                input, payload, pts, dts, step, discont, cfg, timeline, emit, report,
            );
        } else {
            self.push_audio(
                input, payload, pts, step, discont, cfg, timeline, emit, report,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_audio(
        &mut self,
        input: Input,
        payload: T,
        pts: i64,
        step: i64,
        discont: bool,
        cfg: &Config,
        timeline: &Timeline,
        emit: &mut impl FnMut(Output<T>),
        report: &mut impl FnMut(Report),
    ) {
        if discont {
            // A splice: what overlaps the previous buffer's end is dropped,
            // so that the streams keep their offset.
            self.splicing = true;
            self.pending_discont = true;
        }
        if let Some(prev) = self.prev_pts {
            let expected = prev + self.prev_step;
            if pts < expected - TICK {
                if !self.splicing
                    && pts <= prev + TICK
                    && self.is_duplicate(pts, self.prev_step.max(step))
                {
                    // Sent on (duplicate-mode=pass) just after the previous
                    // buffer, without moving the expected time.
                    let out = self.last_out.map_or(pts, |l| l + TICK);
                    self.count(Repair::Duplicate, input.pts, Some(out), report);
                    if !cfg.drop_duplicates {
                        self.last_out = Some(out);
                        emit(Output::Buffer {
                            payload,
                            pts: out,
                            dts: out,
                            discont: false,
                            duration: None,
                            filler: false,
                        });
                    }
                    return;
                }
                if self.splicing || pts <= prev + TICK || expected - pts > self.prev_step / 2 {
                    // A step back, or an overlap of more than half a buffer
                    // or at a splice: dropped until the input catches up.
                    self.count(Repair::Overlap, input.pts, None, report);
                    return;
                }
                // A small overlap on a continuous stream is a duration
                // that does not match the timestamps: PTS still increase.
            } else if step > 0 && pts - expected > step / 2 {
                let missing = ((pts - expected) + step / 2) / step;
                self.count(Repair::Gap, Some(expected), Some(pts), report);
                if cfg.fill_gaps {
                    self.fill(expected, step, missing, timeline, emit);
                }
            }
        }
        self.splicing = false;
        let discont = std::mem::take(&mut self.pending_discont);
        self.observe_step(pts);
        self.prev_ref = Some(pts);
        self.prev_pts = Some(pts);
        self.prev_step = step;
        self.remember(pts);
        self.measure_drift(pts, input.arrival, cfg, timeline, report);
        let (slew, duration) = timeline.slew_at(pts, input.duration);
        let mut out = pts + slew;
        if let Some(last) = self.last_out {
            if out <= last {
                out = last + TICK;
            }
        }
        self.last_out = Some(out);
        if cfg.fill_gaps {
            self.last_payload = Some(payload.clone());
        }
        emit(Output::Buffer {
            payload,
            pts: out,
            dts: out,
            discont,
            duration,
            filler: false,
        });
    }

    /// Sends `missing` copies of the previous buffer (or a gap event for
    /// inter-coded video) from `from`, one `step` apart.
    fn fill(
        &mut self,
        from: i64,
        step: i64,
        missing: i64,
        timeline: &Timeline,
        emit: &mut impl FnMut(Output<T>),
    ) {
        let missing = missing.min(MAX_FILL);
        if self.kind == StreamKind::InterVideo {
            let pts = from + timeline.slew_at(from, None).0;
            emit(Output::Gap {
                pts,
                duration: missing * step,
            });
            return;
        }
        let Some(last) = self.last_payload.clone() else {
            return;
        };
        for i in 0..missing {
            let t = from + i * step;
            let (slew, duration) = timeline.slew_at(t, Some(step));
            let mut out = t + slew;
            if let Some(l) = self.last_out {
                out = out.max(l + TICK);
            }
            self.last_out = Some(out);
            self.counts.filled += 1;
            emit(Output::Buffer {
                payload: last.clone(),
                pts: out,
                dts: out,
                discont: false,
                duration,
                filler: true,
            });
        }
    }

    fn observe_step(&mut self, reference: i64) {
        if self.caps_step.is_none() {
            if let Some(prev) = self.prev_ref {
                let d = reference - prev;
                if d > 0 {
                    self.measured_step = Some(self.measured_step.map_or(d, |m| m.min(d)));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_video(
        &mut self,
        input: Input,
        payload: T,
        pts: i64,
        dts: Option<i64>,
        step: i64,
        discont: bool,
        cfg: &Config,
        timeline: &Timeline,
        emit: &mut impl FnMut(Output<T>),
        report: &mut impl FnMut(Report),
    ) {
        // 3. Is the DTS usable?
        let mut duplicate = false;
        match dts {
            None => {
                self.count(Repair::MissingDts, None, None, report);
                self.rebuild = true;
            }
            Some(d) => {
                if self.prev_dts.is_some_and(|p| d <= p) && !discont {
                    if self.is_duplicate(pts, step) {
                        duplicate = true;
                    } else {
                        self.count(Repair::NonMonotonicDts, input.dts, None, report);
                        self.rebuild = true;
                    }
                } else if d > pts {
                    self.count(Repair::DtsAfterPts, input.dts, None, report);
                    self.rebuild = true;
                } else {
                    self.pts_dts = pts - d;
                }
            }
        }
        if !duplicate && self.rebuild && dts.is_none() && self.is_duplicate(pts, step) {
            duplicate = true;
        }
        if duplicate {
            self.count(Repair::Duplicate, input.pts, None, report);
            if cfg.drop_duplicates {
                return;
            }
        }

        // 4. Without lookahead, gaps are found on the DTS as they come; the
        // lookahead finds them when buffers leave it (on DTS, or on the
        // sorted PTS once DTS are rebuilt).
        if cfg.max_reorder == 0 && !self.rebuild && !duplicate {
            if let (Some(d), Some(prev)) = (dts, self.prev_dts) {
                let expected = prev + self.prev_step;
                if step > 0 && d - expected > step / 2 {
                    let missing = ((d - expected) + step / 2) / step;
                    self.count(Repair::Gap, Some(expected), Some(d), report);
                    if cfg.fill_gaps {
                        self.fill(pts - missing * step, step, missing, timeline, emit);
                    }
                }
            }
        }

        let reference = dts.unwrap_or(pts);
        if !duplicate {
            if dts.is_some() {
                self.observe_step(reference);
            }
            self.prev_ref = Some(reference);
            self.prev_step = step;
            self.prev_pts = Some(pts);
            if let Some(d) = dts {
                self.prev_dts = Some(d);
            }
        }
        self.remember(pts);
        self.measure_drift(pts, input.arrival, cfg, timeline, report);

        let (slew, duration) = timeline.slew_at(pts, input.duration);
        let pts_out = pts + slew;
        let dts_out = dts.map(|d| d + slew);
        if cfg.max_reorder == 0 {
            if cfg.fill_gaps {
                self.last_payload = Some(payload.clone());
            }
            // No lookahead: DTS is the upstream one or, once broken, the
            // PTS, kept strictly increasing.
            let mut d = match (self.rebuild, dts_out) {
                (false, Some(d)) => d,
                _ => pts_out,
            };
            if let Some(last) = self.last_out {
                if d <= last {
                    d = last + TICK;
                }
            }
            self.last_out = Some(d);
            emit(Output::Buffer {
                payload,
                pts: pts_out.max(d),
                dts: d,
                discont,
                duration,
                filler: false,
            });
            return;
        }
        // Every video buffer goes through the lookahead, so that when the
        // DTS turn out broken, the buffers still waiting (those before the
        // first broken one included) get rebuilt DTS too.
        self.window.push_back(Pending {
            payload,
            pts: pts_out,
            dts: dts_out,
            duration,
            discont,
        });
        self.heap.push(Reverse(pts_out));
        while self.window.len() > cfg.max_reorder as usize {
            self.pop_window(step, cfg, timeline, report, emit);
        }
    }

    /// Sends the oldest buffer of the lookahead. With usable DTS it keeps its
    /// own; once they are rebuilt, its DTS is the smallest PTS still waiting
    /// minus the reorder delay. Kept strictly increasing. Gaps are found
    /// here (on DTS, or on the sorted PTS), and filled before the buffer.
    fn pop_window(
        &mut self,
        step: i64,
        cfg: &Config,
        timeline: &Timeline,
        report: &mut impl FnMut(Report),
        emit: &mut impl FnMut(Output<T>),
    ) {
        let Some(item) = self.window.pop_front() else {
            return;
        };
        let Reverse(smallest) = self.heap.pop().unwrap_or(Reverse(item.pts));
        let frame = self.frame_step().unwrap_or(step.max(1));
        let last_sorted = self.last_sorted.replace(smallest);
        let (mut dts, gap) = match item.dts {
            Some(d) if !self.rebuild => {
                let prev = self.last_window_dts.replace(d);
                (d, prev.map(|p| (p + frame, d)))
            }
            _ => (
                (smallest - cfg.max_reorder as i64 * frame).max(self.floor),
                last_sorted.map(|l| (l + frame, smallest)),
            ),
        };
        if let Some((expected, got)) = gap {
            if !item.discont && got - expected > frame / 2 {
                let missing = (got - expected + frame / 2) / frame;
                self.count(Repair::Gap, Some(expected), Some(got), report);
                if cfg.fill_gaps {
                    self.fill(expected, frame, missing, timeline, emit);
                }
            }
        }
        if let Some(last) = self.last_out {
            if dts <= last {
                dts = last + TICK;
            }
        }
        self.last_out = Some(dts);
        if cfg.fill_gaps {
            self.last_payload = Some(item.payload.clone());
        }
        emit(Output::Buffer {
            payload: item.payload,
            pts: item.pts.max(dts),
            dts,
            discont: item.discont,
            duration: item.duration,
            filler: false,
        });
    }

    /// Sends everything held in the reorder window (EOS).
    pub fn drain(
        &mut self,
        cfg: &Config,
        timeline: &Timeline,
        emit: &mut impl FnMut(Output<T>),
        report: &mut impl FnMut(Report),
    ) {
        let step = self.frame_step().unwrap_or(DEFAULT_VIDEO_STEP);
        while !self.window.is_empty() {
            self.pop_window(step, cfg, timeline, report, emit);
        }
    }

    /// Forgets the stream's history (flush): the next buffer starts afresh.
    /// Counters are kept.
    pub fn reset(&mut self, timeline: &Timeline) {
        let counts = std::mem::take(&mut self.counts);
        let (id, kind, caps_step, floor) = (self.id, self.kind, self.caps_step, self.floor);
        *self = StreamCore::new(id, kind, timeline);
        self.caps_step = caps_step;
        self.floor = floor;
        self.counts = counts;
    }

    fn measure_drift(
        &mut self,
        pts: i64,
        arrival: Option<i64>,
        cfg: &Config,
        timeline: &Timeline,
        report: &mut impl FnMut(Report),
    ) {
        let Some(arrival) = arrival else {
            return;
        };
        let x = pts - arrival;
        let end = *self.drift_window_end.get_or_insert(arrival + DRIFT_WINDOW);
        self.drift_max = self.drift_max.max(x);
        if arrival < end {
            return;
        }
        let measured = self.drift_max;
        self.drift_max = i64::MIN;
        self.drift_window_end = Some(arrival + DRIFT_WINDOW);
        let base = *self.drift_base.get_or_insert(measured);
        let drift = measured - base;
        if let Some(started) = timeline.drift(self.id, drift, pts, cfg) {
            let (_, _, offset) = timeline.drift_state();
            self.count(
                Repair::Drift,
                Some(drift),
                Some(if started { offset } else { 0 }),
                report,
            );
        }
    }
}
