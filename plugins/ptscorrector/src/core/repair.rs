// SPDX-License-Identifier: MPL-2.0

//! Stream repair: the state of one stream of `ptscorrector` and the
//! repairs made within it (see the [`super`] module doc for the time
//! domains). What moves the stream against the others (jumps, drift) is
//! asked of the shared [`Timeline`]: a step beyond the jump threshold
//! becomes a shift (the timeline's epoch, the same for every stream) or a
//! gap of this stream alone, never a shift computed from this stream's own
//! step when another stream met the jump first. What differs between the
//! streams at a jump stays in each: a gap (counted, or filled with
//! `fill_gaps`) or, for audio, an overlap dropped until the input catches
//! up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::timeline::{Step, Timeline};
use super::*;

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
    /// Reference timestamp (continuous) of the last buffer received, sent
    /// or not: while splicing, steps are measured from it, so that the
    /// overlap being dropped is not a jump of its own.
    last_in: Option<i64>,
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
            last_in: None,
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
        let prev = if self.splicing {
            self.last_in
        } else {
            self.prev_ref
        };
        if let (Some(r), Some(prev)) = (reference, prev) {
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
                    match timeline.step(self.id, self.epoch, prev, r, dev, cfg.jump_threshold) {
                        Step::Jump { shift, epoch, .. } => {
                            self.epoch = epoch;
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
                        }
                        // A hole in this stream alone: kept (and found
                        // as a gap below).
                        Step::Gap => 0,
                    }
                };
                dts = dts.map(|t| t + shift);
                pts = pts.map(|t| t + shift);
            }
        }
        if let Some(r) = dts.or(pts) {
            timeline.set_position(self.id, r);
            self.last_in = Some(r);
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
        timeline.forget_position(self.id);
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

#[cfg(test)]
mod tests {
    //! Two streams of one element (video 30 fps without B-frames, AAC at
    //! 48 kHz) on one timeline, fed in a given order, with exact ns.

    use super::super::timeline::Epoch;
    use super::*;

    /// Video frame, ns (the engine's caps step for 30/1).
    const F: i64 = 33_333_333;
    /// AAC frame (1024 samples at 48 kHz), ns.
    const A: i64 = 21_333_333;
    /// First video DTS = PTS of the recording (ffmpeg's 1.4 s mux delay).
    const V0: i64 = 1_400_000_000;
    /// First audio PTS of the recording.
    const A0: i64 = 1_412_000_000;

    /// Video frame `k` of the recording, ns.
    fn v(k: i64) -> i64 {
        V0 + k * F
    }
    /// Audio frame `j` of the recording, ns.
    fn a(j: i64) -> i64 {
        A0 + j * A
    }

    const VIDEO: usize = 0;
    const AUDIO: usize = 1;

    /// What one stream sent: (frame number, PTS, DTS, DISCONT).
    type Sent = Vec<(i64, i64, i64, bool)>;

    /// Keeps a buffer the stream sent.
    fn record(sent: &mut Sent, o: Output<i64>) {
        if let Output::Buffer {
            payload,
            pts,
            dts,
            discont,
            ..
        } = o
        {
            sent.push((payload, pts, dts, discont));
        }
    }

    struct Rig {
        cfg: Config,
        timeline: Timeline,
        streams: [StreamCore<i64>; 2],
        sent: [Sent; 2],
        reports: [Vec<Report>; 2],
    }

    impl Rig {
        fn new(cfg: Config) -> Self {
            let timeline = Timeline::default();
            let mut video = StreamCore::new(0, StreamKind::InterVideo, &timeline);
            video.set_caps_step(Some(F));
            let mut audio = StreamCore::new(1, StreamKind::Audio, &timeline);
            audio.set_caps_step(Some(A));
            Rig {
                cfg,
                timeline,
                streams: [video, audio],
                sent: [Vec::new(), Vec::new()],
                reports: [Vec::new(), Vec::new()],
            }
        }

        /// Pushes frame `n` of stream `s` at input time `t` (PTS = DTS).
        fn push(&mut self, s: usize, n: i64, t: i64) {
            let input = Input {
                pts: Some(t),
                dts: (s == VIDEO).then_some(t),
                duration: Some(if s == VIDEO { F } else { A }),
                arrival: None,
            };
            let sent = &mut self.sent[s];
            let reports = &mut self.reports[s];
            self.streams[s].push(
                input,
                n,
                &self.cfg,
                &self.timeline,
                &mut |o| record(sent, o),
                &mut |r| reports.push(r),
            );
        }

        fn drain(&mut self) {
            for s in [VIDEO, AUDIO] {
                let sent = &mut self.sent[s];
                let reports = &mut self.reports[s];
                self.streams[s].drain(
                    &self.cfg,
                    &self.timeline,
                    &mut |o| record(sent, o),
                    &mut |r| reports.push(r),
                );
            }
        }

        fn count(&self, s: usize, kind: Repair) -> u64 {
            self.streams[s].counts.repairs[kind.index()]
        }

        /// Output PTS of frame `n` of stream `s` (the last one sent).
        fn out(&self, s: usize, n: i64) -> Option<i64> {
            self.sent[s].iter().rev().find(|x| x.0 == n).map(|x| x.1)
        }
    }

    /// One splice of the recording onto itself: frames `..v_cut` /
    /// `..a_cut` of the first half, then frames `v_from..` / `a_from..` of
    /// the second half `jump` ns later, up to 20 s of recording. In each
    /// half the buffers come in timestamp order, except that the second
    /// half starts with the first buffer of `leader`.
    struct Splice {
        v_cut: i64,
        a_cut: i64,
        v_from: i64,
        a_from: i64,
        jump: i64,
        leader: usize,
    }

    impl Splice {
        /// The issue's file: `-t 10` and `-ss 10 -output_ts_offset <o>`
        /// with `-c copy` give video frames 0..300 and 300.., audio frames
        /// 0..470 and 459.. (the second half's audio restarts 234.7 ms
        /// before the first half's ends, its video where the first half's
        /// ends), and `jump` = o - 10.012 s; video comes first in file
        /// order.
        fn issue(jump: i64) -> Self {
            Splice {
                v_cut: 300,
                a_cut: 470,
                v_from: 300,
                a_from: 459,
                jump,
                leader: VIDEO,
            }
        }

        fn run(&self, cfg: Config) -> Rig {
            let mut rig = Rig::new(cfg);
            let mut first: Vec<(i64, usize, i64)> = (0..self.v_cut)
                .map(|k| (v(k), VIDEO, k))
                .chain((0..self.a_cut).map(|j| (a(j), AUDIO, j)))
                .collect();
            first.sort();
            for (t, s, n) in first {
                rig.push(s, n, t);
            }
            let mut second: Vec<(i64, usize, i64)> = (self.v_from..600)
                .map(|k| (v(k) + self.jump, VIDEO, k))
                .chain((self.a_from..938).map(|j| (a(j) + self.jump, AUDIO, j)))
                .collect();
            second.sort();
            let lead = second
                .iter()
                .position(|x| x.1 == self.leader)
                .expect("leader has buffers");
            let lead = second.remove(lead);
            for (t, s, n) in std::iter::once(lead).chain(second) {
                rig.push(s, n, t);
            }
            rig.drain();
            rig
        }
    }

    /// Output minus recording time of every frame of the second half that
    /// was sent, per stream: the shift, which must be one value.
    fn shifts(rig: &Rig, sp: &Splice) -> [Vec<i64>; 2] {
        let mut out = [Vec::new(), Vec::new()];
        for k in sp.v_from..600 {
            if let Some(p) = rig.out(VIDEO, k) {
                out[VIDEO].push(p - v(k));
            }
        }
        for j in sp.a_from..938 {
            if let Some(p) = rig.out(AUDIO, j) {
                out[AUDIO].push(p - a(j));
            }
        }
        for s in &mut out {
            s.dedup();
        }
        out
    }

    /// The issue's forward splice (+30 s offset: jump 19.988 s), video
    /// first: both streams get the video's shift, -19.988 s, so every
    /// frame comes out at its recording time; the 11 audio frames that
    /// overlap the first half's end are dropped.
    #[test]
    fn forward_splice_video_first() {
        let sp = Splice::issue(19_988_000_000);
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![0], vec![0]]);
        assert_eq!(rig.out(VIDEO, 300), Some(11_399_999_900));
        assert_eq!(rig.out(AUDIO, 470), Some(11_438_666_510));
        assert_eq!(rig.out(AUDIO, 469), Some(a(469)), "first half's, kept");
        assert_eq!(rig.sent[AUDIO].len(), 470 + 479 - 11);
        assert_eq!(rig.sent[VIDEO].len(), 600);
        assert_eq!(rig.count(VIDEO, Repair::JumpForward), 1);
        assert_eq!(rig.count(AUDIO, Repair::JumpForward), 1);
        assert_eq!(rig.count(AUDIO, Repair::Overlap), 11);
        assert_eq!(rig.count(AUDIO, Repair::Gap), 0);
        // The first buffer sent after the jump carries DISCONT.
        let d: Vec<i64> = rig.sent[AUDIO]
            .iter()
            .filter(|x| x.3)
            .map(|x| x.0)
            .collect();
        assert_eq!(d, vec![470]);
        assert_eq!(
            rig.timeline.epochs(),
            vec![Epoch {
                id: 1,
                shift: -19_988_000_000,
                before: v(299),
                after: v(300) + 19_988_000_000,
            }]
        );
    }

    /// The same with a jump threshold (100 ms) below the 234.7 ms between
    /// the streams' steps: still one shift (before, audio took its own
    /// step, 234.7 ms off).
    #[test]
    fn forward_splice_small_threshold() {
        let sp = Splice::issue(19_988_000_000);
        let rig = sp.run(Config {
            jump_threshold: 100_000_000,
            ..Config::default()
        });
        assert_eq!(shifts(&rig, &sp), [vec![0], vec![0]]);
        assert_eq!(rig.count(AUDIO, Repair::Overlap), 11);
    }

    /// Forward splice, audio first: its step (19.988 s - 11 frames =
    /// 19 753 333 337 ns) is the shift of both; video, 234 666 663 ns
    /// behind its own continuation, keeps that hole.
    #[test]
    fn forward_splice_audio_first() {
        let sp = Splice {
            leader: AUDIO,
            ..Splice::issue(19_988_000_000)
        };
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![234_666_663], vec![234_666_663]]);
        assert_eq!(rig.out(AUDIO, 459), Some(a(470)));
        assert_eq!(rig.out(VIDEO, 300), Some(v(300) + 234_666_663));
        assert_eq!(rig.sent[AUDIO].len(), 470 + 479);
        assert_eq!(rig.count(AUDIO, Repair::Overlap), 0);
    }

    /// Forward splice, the second half's first 45 video frames missing:
    /// audio meets the jump first and video resumes 1.5 s + 234.7 ms
    /// behind its continuation, beyond the jump threshold: it follows
    /// audio's shift all the same, and the hole stays in video.
    #[test]
    fn forward_splice_video_late() {
        let sp = Splice {
            v_from: 345,
            leader: AUDIO,
            ..Splice::issue(19_988_000_000)
        };
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![234_666_663], vec![234_666_663]]);
        assert_eq!(rig.out(VIDEO, 345), Some(v(345) + 234_666_663));
        assert_eq!(rig.count(VIDEO, Repair::JumpForward), 1);
        assert_eq!(rig.count(AUDIO, Repair::JumpForward), 1);
    }

    /// Forward splice, the second half's first 75 audio frames missing:
    /// video meets the jump first; audio, 1.6 s behind, follows its shift
    /// and keeps the hole (counted as a gap).
    #[test]
    fn forward_splice_audio_late() {
        let sp = Splice {
            a_from: 534,
            ..Splice::issue(19_988_000_000)
        };
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![0], vec![0]]);
        assert_eq!(rig.out(AUDIO, 534), Some(a(534)));
        assert_eq!(rig.count(AUDIO, Repair::Gap), 1);
        assert_eq!(rig.count(AUDIO, Repair::Overlap), 0);
    }

    /// The issue's backward splice (-5 s: `-output_ts_offset 5`, jump
    /// -5.012 s), video first: every frame at its recording time.
    #[test]
    fn backward_splice_video_first() {
        let sp = Splice::issue(-5_012_000_000);
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![0], vec![0]]);
        assert_eq!(rig.count(VIDEO, Repair::JumpBackward), 1);
        assert_eq!(rig.count(AUDIO, Repair::JumpBackward), 1);
        assert_eq!(rig.count(AUDIO, Repair::Overlap), 11);
    }

    /// Backward splice, audio first: audio's step is the shift.
    #[test]
    fn backward_splice_audio_first() {
        let sp = Splice {
            leader: AUDIO,
            ..Splice::issue(-5_012_000_000)
        };
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![234_666_663], vec![234_666_663]]);
    }

    /// Backward splice, video 1.5 s late: it follows audio's shift.
    #[test]
    fn backward_splice_video_late() {
        let sp = Splice {
            v_from: 345,
            leader: AUDIO,
            ..Splice::issue(-5_012_000_000)
        };
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![234_666_663], vec![234_666_663]]);
    }

    /// Backward splice, audio 1.6 s late: it follows video's shift.
    #[test]
    fn backward_splice_audio_late() {
        let sp = Splice {
            a_from: 534,
            ..Splice::issue(-5_012_000_000)
        };
        let rig = sp.run(Config::default());
        assert_eq!(shifts(&rig, &sp), [vec![0], vec![0]]);
        assert_eq!(rig.count(AUDIO, Repair::Gap), 1);
    }

    /// A 3 s hole in audio alone (frames 400..541 missing, no splice):
    /// video is already where audio resumes, so it is a gap, not a jump:
    /// audio is not shifted, the hole stays (and is counted).
    #[test]
    fn hole_in_one_stream_stays() {
        let mut rig = Rig::new(Config::default());
        let mut all: Vec<(i64, usize, i64)> = (0..600)
            .map(|k| (v(k), VIDEO, k))
            .chain(
                (0..938)
                    .filter(|j| !(400..541).contains(j))
                    .map(|j| (a(j), AUDIO, j)),
            )
            .collect();
        all.sort();
        for (t, s, n) in all {
            rig.push(s, n, t);
        }
        rig.drain();
        assert_eq!(rig.out(AUDIO, 541), Some(a(541)));
        assert_eq!(rig.out(VIDEO, 599), Some(v(599)));
        assert_eq!(rig.count(AUDIO, Repair::JumpForward), 0);
        assert_eq!(rig.count(AUDIO, Repair::Gap), 1);
        assert!(rig.timeline.epochs().is_empty());
    }

    /// gap-mode=fill: the hole of a late stream at a splice is filled with
    /// copies of the stream's last buffer, at the shared shift.
    #[test]
    fn late_stream_gap_filled() {
        let sp = Splice {
            a_from: 534,
            ..Splice::issue(19_988_000_000)
        };
        let rig = sp.run(Config {
            fill_gaps: true,
            ..Config::default()
        });
        assert_eq!(shifts(&rig, &sp), [vec![0], vec![0]]);
        // a(470) .. a(533) filled with copies of frame 469.
        assert_eq!(rig.streams[AUDIO].counts.filled, 64);
        let fill: Vec<i64> = rig.sent[AUDIO]
            .iter()
            .filter(|x| x.0 == 469)
            .map(|x| x.1)
            .collect();
        assert_eq!(fill.len(), 65);
        assert_eq!(fill[1], a(470));
        assert_eq!(fill[64], a(533));
    }
}
