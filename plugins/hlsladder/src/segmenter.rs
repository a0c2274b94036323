//! The cut policy of `hlsladdersink`, free of GStreamer: samples in, actions
//! out.
//!
//! Every video pad is a variant; variant 0 is the reference. The reference's
//! keyframes decide where segments are cut (the first keyframe at or after
//! the target duration from the segment start, RFC 8216 4.3.3.1), and every
//! other variant is cut at its keyframe with the same PTS (within half a
//! frame). Audio samples are paired with each variant's segment by PTS.
//!
//! Key units are requested *ahead of time*: as soon as a segment start is
//! known, every variant's encoder is asked for keyframes on the grid
//! `start + k * target` up to [`Config::lead_ns`] ahead, and never for a time
//! that the variant may already have passed (its latest PTS plus its
//! upstream latency). `GstVideoEncoder` honours such a request at the first
//! frame at or after the requested running time, so the cuts land on the same
//! PTS in every variant whatever the relative speed of the encoders.
//!
//! All times are running times in nanoseconds (signed: B-frames can put DTS
//! before zero).

use std::collections::VecDeque;

/// One access unit (video) or frame (audio), with its payload `D`
/// (a `gst::Buffer` in the element, anything in tests).
#[derive(Clone, Debug)]
pub struct Sample<D> {
    /// Presentation time as running time, in ns (may be negative).
    pub pts: i64,
    /// Decoding time as running time, in ns; equals `pts` when unknown.
    pub dts: i64,
    /// Duration in ns, 0 when unknown.
    pub duration: i64,
    /// Sync sample (IDR for video; every AAC frame).
    pub keyframe: bool,
    /// First sample after a timestamp discontinuity detected on its stream.
    pub discont: bool,
    /// The coded data.
    pub data: D,
}

impl<D> Sample<D> {
    /// End of the sample in presentation time, in ns.
    pub fn pts_end(&self) -> i64 {
        self.pts + self.duration
    }
}

/// One second in ns.
pub const SECOND: i64 = 1_000_000_000;
/// A segment rounds above the target duration from target + 0.5 s on, in ns.
const ROUNDING_MARGIN_NS: i64 = SECOND / 2;
/// Tolerance for matching keyframe PTS across variants when the frame rate
/// is unknown, in ns.
const DEFAULT_TOLERANCE_NS: i64 = 20_000_000;
/// A DTS step larger than this (or backwards by more than half of it) is a
/// timestamp discontinuity, in ns.
pub const JUMP_THRESHOLD_NS: i64 = SECOND;
/// Audio kept ahead of the video that will consume it, in ns (at least four
/// target durations). Audio from a non-live source can run far ahead of a
/// slow video encoder; only a backlog beyond this is dropped.
const AUDIO_BACKLOG_NS: i64 = 120 * SECOND;

/// Settings of a [`Segmenter`], fixed for a run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Target segment duration in ns (EXT-X-TARGETDURATION), > 0.
    pub target_ns: i64,
    /// How far ahead of a segment start key units are requested, in ns; at
    /// least one target duration is always requested.
    pub lead_ns: i64,
}

impl Config {
    /// A config for `target_ns`, requesting key units `max(3 x target, 10 s)`
    /// ahead: enough to stay in front of encoders with seconds of lookahead.
    pub fn new(target_ns: i64) -> Self {
        Config {
            target_ns,
            lead_ns: (3 * target_ns).max(10 * SECOND),
        }
    }
}

/// A stream of the segmenter: video variant or audio track, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Video variant `i` (0 is the reference).
    Video(usize),
    /// Audio track `i`, muxed into every variant.
    Audio(usize),
}

/// Why an input sample was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A video sample before the variant's first keyframe.
    BeforeFirstKeyframe,
    /// An audio sample that ends before every variant's open segment.
    LateAudio,
    /// Audio more than 120 s (or four target durations) ahead of the video.
    AudioBacklog,
    /// An audio frame with no timestamp and no earlier frame to follow.
    NoTimestamp,
}

impl DropReason {
    /// A short human-readable reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BeforeFirstKeyframe => "before the first keyframe",
            DropReason::LateAudio => "audio later than the segment it belongs to",
            DropReason::AudioBacklog => "audio backlog over 120 s",
            DropReason::NoTimestamp => "no timestamp",
        }
    }
}

/// A segment to write: one variant's video samples and the audio samples of
/// every audio track that fall inside it.
#[derive(Debug)]
pub struct Segment<D> {
    /// The variant.
    pub variant: usize,
    /// Video samples in decode order; the first is a keyframe.
    pub video: Vec<Sample<D>>,
    /// Per audio track, its samples whose PTS lies inside the segment.
    pub audio: Vec<Vec<Sample<D>>>,
    /// PTS of the first video sample, ns.
    pub start: i64,
    /// End PTS, ns: the next segment's first PTS, or the end of the last
    /// sample before a discontinuity and at the end of the stream.
    pub end: i64,
    /// Media duration in ns: the sum of the segment's runs of continuous
    /// timestamps, so that a jump inside a segment does not count.
    pub duration: i64,
    /// The segment follows a discontinuity (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
}

/// What the element has to do after a call.
#[derive(Debug)]
pub enum Action<D> {
    /// Ask variant `variant`'s encoder for a key unit at `running_time` ns.
    RequestKeyUnit {
        /// The variant.
        variant: usize,
        /// Running time of the boundary, ns.
        running_time: i64,
    },
    /// Write this segment (in order, per variant).
    Write(Segment<D>),
    /// `variant` had no keyframe at the reference cut `cut_pts` and was cut
    /// at its next keyframe, `keyframe_pts`.
    Misaligned {
        /// The variant.
        variant: usize,
        /// PTS of the reference cut, ns.
        cut_pts: i64,
        /// PTS of the keyframe the variant was cut at instead, ns.
        keyframe_pts: i64,
    },
    /// A sample was dropped.
    Dropped {
        /// Its stream.
        stream: Stream,
        /// Why.
        reason: DropReason,
    },
}

/// A cut decided on the reference variant.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cut {
    /// PTS of the keyframe that starts the next segment, ns.
    pts: i64,
    /// The next segment follows a discontinuity.
    discont: bool,
}

#[derive(Debug)]
struct VideoTrack<D> {
    pending: VecDeque<Sample<D>>,
    started: bool,
    last_dts: Option<i64>,
    max_pts_end: i64,
    /// Absolute index of the next cut this variant has to make.
    next_cut: usize,
    /// The next segment written follows a discontinuity.
    open_discont: bool,
    eos: bool,
    written_end: Option<i64>,
    frame_duration: Option<i64>,
    /// Upstream latency (encoder lookahead and queues), ns.
    latency: i64,
    /// Latest boundary requested from (or skipped for) this variant, ns.
    requested_until: i64,
}

impl<D> VideoTrack<D> {
    fn new() -> Self {
        VideoTrack {
            pending: VecDeque::new(),
            started: false,
            last_dts: None,
            max_pts_end: i64::MIN,
            next_cut: 0,
            open_discont: false,
            eos: false,
            written_end: None,
            frame_duration: None,
            latency: 0,
            requested_until: i64::MIN,
        }
    }

    fn tolerance(&self) -> i64 {
        self.frame_duration
            .map(|d| d / 2)
            .unwrap_or(DEFAULT_TOLERANCE_NS)
    }
}

#[derive(Debug)]
struct AudioTrack<D> {
    pending: VecDeque<Sample<D>>,
    max_pts_end: i64,
    next_pts: Option<i64>,
    eos: bool,
}

/// The reference variant's cut state.
#[derive(Debug, Default)]
struct Reference {
    /// PTS of the open segment's first keyframe.
    seg_start: Option<i64>,
    /// The last keyframe inside the open segment (an early cut point).
    candidate: Option<i64>,
    /// Latest PTS end seen since the segment start.
    max_end: i64,
    /// A discontinuity was seen; the next keyframe cuts.
    discont_pending: bool,
}

/// The segmenter of one `hlsladdersink`: see the module documentation.
#[derive(Debug)]
pub struct Segmenter<D> {
    cfg: Config,
    videos: Vec<VideoTrack<D>>,
    audios: Vec<AudioTrack<D>>,
    /// Cuts not yet made by every variant; `cuts[0]` has index `cut_base`.
    cuts: VecDeque<Cut>,
    cut_base: usize,
    reference: Reference,
}

impl<D: Clone> Segmenter<D> {
    /// A segmenter with no streams.
    pub fn new(cfg: Config) -> Self {
        Segmenter {
            cfg,
            videos: Vec::new(),
            audios: Vec::new(),
            cuts: VecDeque::new(),
            cut_base: 0,
            reference: Reference::default(),
        }
    }

    /// Adds a video variant and returns its index (the first is the
    /// reference). A variant added after cuts were made joins at the next cut.
    pub fn add_video(&mut self) -> usize {
        let mut v = VideoTrack::new();
        v.next_cut = self.cut_base + self.cuts.len();
        self.videos.push(v);
        self.videos.len() - 1
    }

    /// Adds an audio track and returns its index.
    pub fn add_audio(&mut self) -> usize {
        self.audios.push(AudioTrack {
            pending: VecDeque::new(),
            max_pts_end: i64::MIN,
            next_pts: None,
            eos: false,
        });
        self.audios.len() - 1
    }

    /// Sets variant `v`'s frame duration (ns), which sets the tolerance for
    /// matching keyframes across variants (half a frame).
    pub fn set_frame_duration(&mut self, v: usize, ns: Option<i64>) {
        self.videos[v].frame_duration = ns.filter(|&d| d > 0);
    }

    /// Sets the upstream latency of variant `v` (ns): how far its encoder's
    /// input may be ahead of what reaches the segmenter. Key units are never
    /// requested inside that distance.
    pub fn set_latency(&mut self, v: usize, ns: i64) {
        self.videos[v].latency = ns.max(0);
    }

    /// Whether variant `v` has received its first keyframe.
    pub fn started(&self, v: usize) -> bool {
        self.videos[v].started
    }

    /// Marks a discontinuity on variant `v` (flush, new segment): its next
    /// sample starts a new timeline, and the reference cuts at its next
    /// keyframe.
    pub fn mark_discontinuity(&mut self, v: usize) {
        let t = &mut self.videos[v];
        if t.started {
            t.last_dts = None;
            self.reference.discont_pending = true;
        }
    }

    /// Takes one video access unit of variant `v` (decode order).
    pub fn push_video(&mut self, v: usize, mut sample: Sample<D>) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        let t = &mut self.videos[v];
        let mut discont = false;
        if let Some(last) = t.last_dts {
            let dts = sample.dts;
            if dts < last - JUMP_THRESHOLD_NS / 2
                || dts > last + JUMP_THRESHOLD_NS + sample.duration
            {
                discont = true;
            }
        }
        t.last_dts = Some(sample.dts);
        if !t.started {
            if !sample.keyframe {
                actions.push(Action::Dropped {
                    stream: Stream::Video(v),
                    reason: DropReason::BeforeFirstKeyframe,
                });
                return actions;
            }
            t.started = true;
            discont = false;
            if let Some(base) = self.reference.seg_start.filter(|_| v != 0) {
                // The grid is known: ask this variant for what lies ahead.
                self.videos[v].max_pts_end = sample.pts_end();
                self.request_key_units_of(v, base, false, &mut actions);
            }
        }
        let t = &mut self.videos[v];
        if discont {
            self.reference.discont_pending = true;
        }
        sample.discont = discont;
        let (pts, keyframe, duration) = (sample.pts, sample.keyframe, sample.duration);
        t.max_pts_end = t.max_pts_end.max(sample.pts_end());
        t.pending.push_back(sample);
        if v == 0 {
            self.decide_cut(pts, keyframe, duration, &mut actions);
        }
        self.drain(false, &mut actions);
        actions
    }

    /// Takes one audio frame of track `a`. `pts` is `None` when the buffer has
    /// no timestamp: it then follows the previous frame.
    pub fn push_audio(
        &mut self,
        a: usize,
        pts: Option<i64>,
        duration: i64,
        data: D,
    ) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        let t = &mut self.audios[a];
        let Some(pts) = pts.or(t.next_pts) else {
            actions.push(Action::Dropped {
                stream: Stream::Audio(a),
                reason: DropReason::NoTimestamp,
            });
            return actions;
        };
        t.next_pts = Some(pts + duration);
        t.max_pts_end = t.max_pts_end.max(pts + duration);
        let needed_from = self.needed_from();
        if needed_from.is_some_and(|n| pts + duration <= n) {
            actions.push(Action::Dropped {
                stream: Stream::Audio(a),
                reason: DropReason::LateAudio,
            });
            return actions;
        }
        let t = &mut self.audios[a];
        t.pending.push_back(Sample {
            pts,
            dts: pts,
            duration,
            keyframe: true,
            discont: false,
            data,
        });
        let limit = AUDIO_BACKLOG_NS.max(4 * self.cfg.target_ns);
        while t
            .pending
            .front()
            .is_some_and(|f| t.max_pts_end - f.pts > limit)
        {
            t.pending.pop_front();
            actions.push(Action::Dropped {
                stream: Stream::Audio(a),
                reason: DropReason::AudioBacklog,
            });
        }
        self.drain(false, &mut actions);
        actions
    }

    /// Marks `stream` as ended. When every stream has ended, everything left
    /// is written as the final segments.
    pub fn end_of_stream(&mut self, stream: Stream) -> Vec<Action<D>> {
        match stream {
            Stream::Video(v) => self.videos[v].eos = true,
            Stream::Audio(a) => self.audios[a].eos = true,
        }
        let mut actions = Vec::new();
        self.drain(self.all_eos(), &mut actions);
        actions
    }

    /// Whether every stream has ended (and there is at least one video).
    pub fn all_eos(&self) -> bool {
        !self.videos.is_empty()
            && self.videos.iter().all(|v| v.eos)
            && self.audios.iter().all(|a| a.eos)
    }

    /// Writes everything that is left, as at the end of all streams.
    pub fn finish(&mut self) -> Vec<Action<D>> {
        let mut actions = Vec::new();
        self.drain(true, &mut actions);
        actions
    }

    /// The earliest PTS any variant still needs audio from, once every
    /// variant has started.
    fn needed_from(&self) -> Option<i64> {
        if !self.videos.iter().all(|v| v.started || v.eos) {
            return None;
        }
        self.videos
            .iter()
            .filter_map(|v| v.pending.front().map(|s| s.pts).or(v.written_end))
            .min()
    }

    /// Cut policy, applied on every sample of the reference variant.
    fn decide_cut(&mut self, pts: i64, keyframe: bool, duration: i64, out: &mut Vec<Action<D>>) {
        let target = self.cfg.target_ns;
        let tol = self.videos[0].tolerance();
        let r = &mut self.reference;
        let Some(start) = r.seg_start else {
            // The first keyframe opens the first segment.
            r.seg_start = Some(pts);
            r.max_end = pts + duration;
            r.discont_pending = false;
            self.request_key_units(pts, true, out);
            return;
        };
        let mut cut = None;
        if keyframe && pts != start {
            if r.discont_pending {
                cut = Some(Cut { pts, discont: true });
            } else if pts > start && pts - start >= target - tol {
                cut = Some(Cut {
                    pts,
                    discont: false,
                });
            } else if pts > start {
                r.candidate = Some(pts);
            }
        }
        if cut.is_none() {
            r.max_end = r.max_end.max(pts + duration);
            if r.max_end - start >= target + ROUNDING_MARGIN_NS {
                if let Some(c) = r.candidate.take() {
                    cut = Some(Cut {
                        pts: c,
                        discont: false,
                    });
                }
            }
        } else {
            r.max_end = pts + duration;
        }
        if let Some(cut) = cut {
            if cut.discont {
                r.discont_pending = false;
            }
            r.seg_start = Some(cut.pts);
            r.candidate = None;
            self.cuts.push_back(cut);
            // A cut on the requested grid keeps it; any other starts a new one.
            let on_grid = !cut.discont && (cut.pts - (start + target)).abs() <= tol;
            self.request_key_units(cut.pts, !on_grid, out);
        }
    }

    /// Requests key units on the grid `from + k * target` up to the lead
    /// time ahead, from every started variant. `regrid`: the grid starts
    /// anew at `from` (earlier requests were for another grid).
    fn request_key_units(&mut self, from: i64, regrid: bool, out: &mut Vec<Action<D>>) {
        for v in 0..self.videos.len() {
            self.request_key_units_of(v, from, regrid, out);
        }
    }

    /// Requests key units from variant `v` on the grid `from + k * target`
    /// up to the lead time ahead, skipping boundaries its encoder may have
    /// passed: not after its latest PTS plus its upstream latency and one
    /// frame. A variant whose first frame has not arrived is not asked at
    /// all: GStreamer 1.22's `GstVideoEncoder` (x264enc with B-frames) takes
    /// the running time of frames before its first output as 1000 h late,
    /// so such a request would key the current frame at once and make the
    /// encoder refuse every later request.
    fn request_key_units_of(
        &mut self,
        v: usize,
        from: i64,
        regrid: bool,
        out: &mut Vec<Action<D>>,
    ) {
        let target = self.cfg.target_ns;
        let horizon = from + self.cfg.lead_ns.max(target);
        let t = &mut self.videos[v];
        if !t.started {
            return;
        }
        if regrid {
            t.requested_until = from;
        }
        let guard = t
            .max_pts_end
            .saturating_add(t.latency)
            .saturating_add(t.frame_duration.unwrap_or(0));
        let mut b = from + target;
        while b <= horizon {
            if b > t.requested_until {
                if b > guard {
                    out.push(Action::RequestKeyUnit {
                        variant: v,
                        running_time: b,
                    });
                }
                t.requested_until = b;
            }
            b += target;
        }
    }

    /// Emits every segment whose end is known and whose audio has arrived.
    /// With `finish`, all input has ended: the rest is written as the last
    /// segments.
    fn drain(&mut self, finish: bool, out: &mut Vec<Action<D>>) {
        let target = self.cfg.target_ns;
        for vi in 0..self.videos.len() {
            loop {
                let v = &self.videos[vi];
                if v.pending.is_empty() {
                    break;
                }
                let tol = v.tolerance();
                let split = match v.next_cut.checked_sub(self.cut_base) {
                    Some(k) if k < self.cuts.len() => {
                        let cut = self.cuts[k];
                        let first = v.pending[0].pts;
                        if !cut.discont && first >= cut.pts - tol {
                            // This variant started after the cut.
                            self.videos[vi].next_cut += 1;
                            continue;
                        }
                        let mut found = None;
                        let mut after_discont = false;
                        for (idx, s) in v.pending.iter().enumerate().skip(1) {
                            after_discont |= s.discont;
                            if !s.keyframe {
                                continue;
                            }
                            if (s.pts - cut.pts).abs() <= tol {
                                found = Some((idx, false));
                                break;
                            }
                            if (!cut.discont && s.pts > cut.pts + tol)
                                || (cut.discont && after_discont)
                            {
                                found = Some((idx, true));
                                break;
                            }
                        }
                        found.map(|(idx, misaligned)| (idx, misaligned, cut))
                    }
                    _ => None,
                };
                // The segment ends at the cut keyframe, or, before a
                // discontinuity and at the end, with its last sample.
                let (idx, misaligned, cut) = match split {
                    Some((idx, misaligned, cut)) => (idx, misaligned, Some(cut)),
                    None if finish => (v.pending.len(), false, None),
                    None => break,
                };
                let cut_end = cut.filter(|c| !c.discont).map(|_| v.pending[idx].pts);
                let end = cut_end.unwrap_or_else(|| {
                    v.pending
                        .iter()
                        .take(idx)
                        .rev()
                        .take_while(|s| !s.discont)
                        .map(|s| s.pts_end())
                        .max()
                        .unwrap_or(v.max_pts_end)
                });
                let video_ahead = v.max_pts_end;
                let audio_ready = self
                    .audios
                    .iter()
                    .all(|a| a.eos || a.max_pts_end >= end || video_ahead - end > 3 * target);
                if !audio_ready && !finish {
                    break;
                }
                if let (true, Some(cut)) = (misaligned, cut) {
                    out.push(Action::Misaligned {
                        variant: vi,
                        cut_pts: cut.pts,
                        keyframe_pts: v.pending[idx].pts,
                    });
                }
                let segment = self.take_segment(vi, idx, cut_end);
                out.push(Action::Write(segment));
                let v = &mut self.videos[vi];
                if let Some(cut) = cut {
                    v.next_cut += 1;
                    v.open_discont = cut.discont;
                }
            }
        }
        self.prune();
    }

    /// Removes the first `count` pending samples of variant `vi` as a
    /// segment ending at `cut_end` (ns; `None`: with its last sample).
    fn take_segment(&mut self, vi: usize, count: usize, cut_end: Option<i64>) -> Segment<D> {
        let v = &mut self.videos[vi];
        let video: Vec<Sample<D>> = v.pending.drain(..count).collect();
        let start = video[0].pts;
        let runs = timestamp_runs(&video, cut_end);
        let end = runs.last().map(|r| r.1).unwrap_or(start);
        let duration: i64 = runs.iter().map(|(a, b)| (b - a).max(0)).sum();
        v.written_end = Some(end);
        let discontinuity = std::mem::take(&mut v.open_discont);
        let audio = self
            .audios
            .iter()
            .map(|a| {
                a.pending
                    .iter()
                    .filter(|s| runs.iter().any(|&(a, b)| s.pts >= a && s.pts < b))
                    .cloned()
                    .collect()
            })
            .collect();
        Segment {
            variant: vi,
            video,
            audio,
            start,
            end,
            duration,
            discontinuity,
        }
    }

    /// Forgets audio every variant has written past, and cuts every variant
    /// has made.
    fn prune(&mut self) {
        if let Some(needed_from) = self.needed_from() {
            for a in &mut self.audios {
                while a
                    .pending
                    .front()
                    .is_some_and(|s| s.pts_end() <= needed_from)
                {
                    a.pending.pop_front();
                }
            }
        }
        let done = self
            .videos
            .iter()
            .map(|v| v.next_cut)
            .min()
            .unwrap_or(self.cut_base);
        while self.cut_base < done && !self.cuts.is_empty() {
            self.cuts.pop_front();
            self.cut_base += 1;
        }
    }
}

/// Splits a segment's samples (decode order) into runs of continuous
/// timestamps, cut where a sample follows a discontinuity; returns each run's
/// (first PTS, end PTS) in ns. The last run ends at `cut_end` when given.
/// A segment's duration is the sum of its runs, so a timestamp jump inside
/// a segment does not count as media time.
pub fn timestamp_runs<D>(samples: &[Sample<D>], cut_end: Option<i64>) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    let mut run = (i64::MAX, i64::MIN);
    for (i, s) in samples.iter().enumerate() {
        if i > 0 && s.discont {
            runs.push(run);
            run = (i64::MAX, i64::MIN);
        }
        run.0 = run.0.min(s.pts);
        run.1 = run.1.max(s.pts_end());
    }
    if let Some(end) = cut_end {
        run.1 = end;
    }
    runs.push(run);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 25 fps: a frame lasts exactly 40 ms.
    const F: i64 = 40_000_000;
    const MS: i64 = 1_000_000;

    fn frame(n: i64, key_every: i64) -> Sample<i64> {
        Sample {
            pts: n * F,
            dts: n * F,
            duration: F,
            keyframe: n % key_every == 0,
            discont: false,
            data: n,
        }
    }

    fn segmenter(target: i64, videos: usize, audios: usize) -> Segmenter<i64> {
        let mut s = Segmenter::new(Config::new(target));
        for _ in 0..videos {
            let v = s.add_video();
            s.set_frame_duration(v, Some(F));
        }
        for _ in 0..audios {
            s.add_audio();
        }
        s
    }

    /// (variant, start ms, end ms, duration ms, discontinuity, video frames)
    type W = (usize, i64, i64, i64, bool, usize);

    fn writes(actions: &[Action<i64>]) -> Vec<W> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Write(s) => Some((
                    s.variant,
                    s.start / MS,
                    s.end / MS,
                    s.duration / MS,
                    s.discontinuity,
                    s.video.len(),
                )),
                _ => None,
            })
            .collect()
    }

    /// (variant, running time ms) of the key-unit requests.
    fn requests(actions: &[Action<i64>]) -> Vec<(usize, i64)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::RequestKeyUnit {
                    variant,
                    running_time,
                } => Some((*variant, running_time / MS)),
                _ => None,
            })
            .collect()
    }

    fn finish_all(s: &mut Segmenter<i64>, out: &mut Vec<Action<i64>>) {
        for v in 0..s.videos.len() {
            out.extend(s.end_of_stream(Stream::Video(v)));
        }
        for a in 0..s.audios.len() {
            out.extend(s.end_of_stream(Stream::Audio(a)));
        }
        assert!(s.all_eos());
    }

    #[test]
    fn aligned_cuts_and_key_units_requested_ahead() {
        let mut s = segmenter(2 * SECOND, 2, 0);
        let mut out = Vec::new();
        for n in 0..150 {
            for v in 0..2 {
                let a = s.push_video(v, frame(n, 25));
                if n == 0 {
                    // v0 opens the grid; v1 is asked as soon as it started.
                    let want: Vec<(usize, i64)> =
                        [2000, 4000, 6000, 8000, 10000].map(|t| (v, t)).to_vec();
                    assert_eq!(requests(&a), want, "variant {v}");
                }
                out.extend(a);
            }
        }
        finish_all(&mut s, &mut out);
        // Each cut on the grid asks for the one boundary newly inside the
        // 10 s lead.
        assert_eq!(
            requests(&out),
            [
                (0, 2000),
                (0, 4000),
                (0, 6000),
                (0, 8000),
                (0, 10000),
                (1, 2000),
                (1, 4000),
                (1, 6000),
                (1, 8000),
                (1, 10000),
                (0, 12000),
                (1, 12000),
                (0, 14000),
                (1, 14000),
            ]
        );
        assert_eq!(
            writes(&out),
            [
                (0, 0, 2000, 2000, false, 50),
                (1, 0, 2000, 2000, false, 50),
                (0, 2000, 4000, 2000, false, 50),
                (1, 2000, 4000, 2000, false, 50),
                (0, 4000, 6000, 2000, false, 50),
                (1, 4000, 6000, 2000, false, 50),
            ]
        );
    }

    #[test]
    fn a_variant_running_ahead_is_never_asked_for_a_time_it_passed() {
        let mut s = segmenter(2 * SECOND, 2, 0);
        let mut out = Vec::new();
        // v1's encoder is 6 s ahead before the reference delivers anything.
        for n in 0..150 {
            out.extend(s.push_video(1, frame(n, 25)));
        }
        assert!(writes(&out).is_empty(), "v1 waits for the reference's cuts");
        assert!(requests(&out).is_empty(), "no grid without the reference");
        s.set_latency(0, 500 * MS);
        let first = s.push_video(0, frame(0, 25));
        assert_eq!(
            requests(&first),
            [
                (0, 2000),
                (0, 4000),
                (0, 6000),
                (0, 8000),
                (0, 10000),
                (1, 8000),
                (1, 10000)
            ]
        );
        out.extend(first);
        for n in 1..150 {
            out.extend(s.push_video(0, frame(n, 25)));
        }
        finish_all(&mut s, &mut out);
        let w = writes(&out);
        let cuts = |v: usize| -> Vec<(i64, i64)> {
            w.iter().filter(|x| x.0 == v).map(|x| (x.1, x.2)).collect()
        };
        assert_eq!(cuts(0), [(0, 2000), (2000, 4000), (4000, 6000)]);
        assert_eq!(cuts(1), cuts(0));
    }

    #[test]
    fn a_variant_lagging_by_several_gops_joins_the_same_cuts() {
        let mut s = segmenter(2 * SECOND, 2, 0);
        let mut out = Vec::new();
        for n in 0..150 {
            out.extend(s.push_video(0, frame(n, 25)));
        }
        // v1 starts after two cuts: it is asked from the current segment's
        // start (4 s) on.
        let first = s.push_video(1, frame(0, 25));
        assert_eq!(
            requests(&first),
            [(1, 6000), (1, 8000), (1, 10000), (1, 12000), (1, 14000)]
        );
        out.extend(first);
        for n in 1..150 {
            out.extend(s.push_video(1, frame(n, 25)));
        }
        finish_all(&mut s, &mut out);
        assert_eq!(
            writes(&out),
            [
                (0, 0, 2000, 2000, false, 50),
                (0, 2000, 4000, 2000, false, 50),
                (1, 0, 2000, 2000, false, 50),
                (1, 2000, 4000, 2000, false, 50),
                (0, 4000, 6000, 2000, false, 50),
                (1, 4000, 6000, 2000, false, 50),
            ]
        );
    }

    #[test]
    fn missing_keyframes_cut_early_at_the_last_keyframe_inside() {
        // GOP 1.6 s, target 2 s: waiting for 3.2 s would give 3.2 s segments.
        let mut s = segmenter(2 * SECOND, 1, 0);
        let mut out = Vec::new();
        for n in 0..200 {
            out.extend(s.push_video(0, frame(n, 40)));
        }
        finish_all(&mut s, &mut out);
        assert_eq!(
            writes(&out),
            [
                (0, 0, 1600, 1600, false, 40),
                (0, 1600, 3200, 1600, false, 40),
                (0, 3200, 4800, 1600, false, 40),
                (0, 4800, 6400, 1600, false, 40),
                (0, 6400, 8000, 1600, false, 40),
            ]
        );
        // The early cuts are off the grid: each asks for a new grid.
        let r = requests(&out);
        assert_eq!(r[5], (0, 3600), "{r:?}");
    }

    #[test]
    fn no_keyframe_at_all_overruns_and_is_reported() {
        // GOP 5 s, target 2 s: never cut without a keyframe.
        let mut s = segmenter(2 * SECOND, 1, 0);
        let mut out = Vec::new();
        for n in 0..250 {
            out.extend(s.push_video(0, frame(n, 125)));
        }
        finish_all(&mut s, &mut out);
        let w = writes(&out);
        assert_eq!(
            w,
            [
                (0, 0, 5000, 5000, false, 125),
                (0, 5000, 10000, 5000, false, 125)
            ]
        );
        assert!(crate::playlist::overruns_target(5000 * MS, 2));
        assert!(!crate::playlist::overruns_target(2499 * MS, 2));
    }

    #[test]
    fn a_misaligned_variant_is_cut_at_its_next_keyframe_and_reported() {
        let mut s = segmenter(2 * SECOND, 2, 0);
        let mut out = Vec::new();
        for n in 0..150 {
            out.extend(s.push_video(0, frame(n, 25)));
            // v1's GOP is 3 frames late.
            let mut f = frame(n, 25);
            f.keyframe = n % 25 == 3;
            out.extend(s.push_video(1, f));
        }
        finish_all(&mut s, &mut out);
        let dropped = out
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Dropped {
                        stream: Stream::Video(1),
                        reason: DropReason::BeforeFirstKeyframe
                    }
                )
            })
            .count();
        assert_eq!(dropped, 3);
        let misaligned: Vec<(usize, i64, i64)> = out
            .iter()
            .filter_map(|a| match a {
                Action::Misaligned {
                    variant,
                    cut_pts,
                    keyframe_pts,
                } => Some((*variant, cut_pts / MS, keyframe_pts / MS)),
                _ => None,
            })
            .collect();
        assert_eq!(misaligned, [(1, 2000, 2120), (1, 4000, 4120)]);
        let w: Vec<W> = writes(&out).into_iter().filter(|w| w.0 == 1).collect();
        assert_eq!(
            w,
            [
                (1, 120, 2120, 2000, false, 50),
                (1, 2120, 4120, 2000, false, 50),
                (1, 4120, 6000, 1880, false, 47)
            ]
        );
    }

    #[test]
    fn b_frames_are_cut_at_the_idr_in_decode_order() {
        // Closed GOPs of 24 frames: I0 P3 B1 B2 P6 B4 B5 ... P21 B19 B20 P23 B22,
        // DTS two frames behind.
        let mut order = Vec::new();
        for g in 0..5 {
            let base = g * 24;
            order.push(base);
            for k in 1..=7 {
                order.extend([base + 3 * k, base + 3 * k - 2, base + 3 * k - 1]);
            }
            order.extend([base + 23, base + 22]);
        }
        let mut s = segmenter(24 * F, 1, 0);
        let mut out = Vec::new();
        for (i, &d) in order.iter().enumerate() {
            out.extend(s.push_video(
                0,
                Sample {
                    pts: d * F,
                    dts: (i as i64 - 2) * F,
                    duration: F,
                    keyframe: d % 24 == 0,
                    discont: false,
                    data: d,
                },
            ));
        }
        finish_all(&mut s, &mut out);
        let segments: Vec<&Segment<i64>> = out
            .iter()
            .filter_map(|a| match a {
                Action::Write(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(segments.len(), 5);
        for (g, seg) in segments.iter().enumerate() {
            let g = g as i64;
            assert_eq!((seg.start, seg.end), (g * 24 * F, (g + 1) * 24 * F));
            assert_eq!(seg.duration, 24 * F);
            assert!(seg.video[0].keyframe);
            let mut pts: Vec<i64> = seg.video.iter().map(|s| s.data).collect();
            pts.sort_unstable();
            assert_eq!(pts, (g * 24..(g + 1) * 24).collect::<Vec<_>>());
        }
    }

    #[test]
    fn audio_is_paired_by_pts_and_its_backlog_is_bounded() {
        let mut s = segmenter(2 * SECOND, 1, 1);
        let mut out = Vec::new();
        let audio_frame = 20 * MS;
        let mut next_audio = 0;
        for n in 0..150 {
            out.extend(s.push_video(0, frame(n, 25)));
            // Audio runs half a second ahead of the video.
            while next_audio * audio_frame < n * F + SECOND / 2 && next_audio < 300 {
                out.extend(s.push_audio(0, Some(next_audio * audio_frame), audio_frame, -1));
                next_audio += 1;
            }
        }
        finish_all(&mut s, &mut out);
        let counts: Vec<(i64, usize)> = out
            .iter()
            .filter_map(|a| match a {
                Action::Write(s) => Some((s.start / MS, s.audio[0].len())),
                _ => None,
            })
            .collect();
        assert_eq!(counts, [(0, 100), (2000, 100), (4000, 100)]);

        // With no video to consume it, audio is kept for 120 s, no more.
        let mut s = segmenter(2 * SECOND, 1, 1);
        assert!(matches!(
            s.push_audio(0, None, audio_frame, 0)[..],
            [Action::Dropped {
                stream: Stream::Audio(0),
                reason: DropReason::NoTimestamp
            }]
        ));
        let mut dropped = 0;
        for k in 0..6050 {
            for a in s.push_audio(0, Some(k * audio_frame), audio_frame, k) {
                assert!(matches!(
                    a,
                    Action::Dropped {
                        stream: Stream::Audio(0),
                        reason: DropReason::AudioBacklog
                    }
                ));
                dropped += 1;
            }
        }
        assert_eq!(dropped, 50);
        // A frame without a timestamp follows the previous one (and pushes
        // the oldest out of the 120 s).
        assert_eq!(s.push_audio(0, None, audio_frame, 0).len(), 1);
        assert_eq!(s.audios[0].pending.back().unwrap().pts, 6050 * audio_frame);
    }

    #[test]
    fn late_audio_is_dropped_and_reported() {
        let mut s = segmenter(2 * SECOND, 1, 1);
        let mut out = Vec::new();
        for n in 0..60 {
            out.extend(s.push_video(0, frame(n, 25)));
            out.extend(s.push_audio(0, Some(n * F), F, n));
        }
        // Video has moved past 2 s and written [0, 2): audio for 1 s is late.
        assert_eq!(writes(&out).len(), 1);
        let a = s.push_audio(0, Some(SECOND), F, -1);
        assert!(matches!(
            a[..],
            [Action::Dropped {
                stream: Stream::Audio(0),
                reason: DropReason::LateAudio
            }]
        ));
    }

    fn jump_run(jump_at: i64) -> Vec<W> {
        let mut s = segmenter(2 * SECOND, 1, 0);
        let mut out = Vec::new();
        for n in 0..150 {
            let mut f = frame(n, 25);
            if n >= jump_at {
                f.pts += 100 * SECOND;
                f.dts += 100 * SECOND;
            }
            out.extend(s.push_video(0, f));
        }
        finish_all(&mut s, &mut out);
        writes(&out)
    }

    #[test]
    fn a_jump_at_a_keyframe_starts_a_discontinuity() {
        assert_eq!(
            jump_run(100),
            [
                (0, 0, 2000, 2000, false, 50),
                (0, 2000, 4000, 2000, false, 50),
                (0, 104000, 106000, 2000, true, 50),
            ]
        );
    }

    #[test]
    fn a_jump_inside_a_gop_counts_only_media_time() {
        assert_eq!(
            jump_run(110),
            [
                (0, 0, 2000, 2000, false, 50),
                (0, 2000, 4000, 2000, false, 50),
                (0, 4000, 105000, 1000, false, 25),
                (0, 105000, 106000, 1000, true, 25),
            ]
        );
    }

    #[test]
    fn a_marked_discontinuity_cuts_at_the_next_keyframe() {
        let mut s = segmenter(2 * SECOND, 1, 0);
        let mut out = Vec::new();
        for n in 0..100 {
            if n == 60 {
                s.mark_discontinuity(0);
            }
            out.extend(s.push_video(0, frame(n, 25)));
        }
        finish_all(&mut s, &mut out);
        assert_eq!(
            writes(&out),
            [
                (0, 0, 2000, 2000, false, 50),
                (0, 2000, 3000, 1000, false, 25),
                (0, 3000, 4000, 1000, true, 25),
            ]
        );
    }

    #[test]
    fn eos_of_one_stream_waits_for_the_others() {
        let mut s = segmenter(2 * SECOND, 2, 0);
        let mut out = Vec::new();
        for n in 0..75 {
            out.extend(s.push_video(0, frame(n, 25)));
            out.extend(s.push_video(1, frame(n, 25)));
        }
        out.extend(s.end_of_stream(Stream::Video(0)));
        assert!(!s.all_eos());
        assert_eq!(writes(&out).len(), 2, "only the complete [0, 2) so far");
        out.extend(s.end_of_stream(Stream::Video(1)));
        assert!(s.all_eos());
        assert_eq!(
            writes(&out)[2..],
            [
                (0, 2000, 3000, 1000, false, 25),
                (1, 2000, 3000, 1000, false, 25)
            ]
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            /// Whatever the order in which the variants' samples arrive, a
            /// reference cut at a PTS where every variant has a keyframe is
            /// a cut of every variant, and variants with the same keyframes
            /// are cut identically.
            #[test]
            fn cuts_do_not_depend_on_arrival_order(
                common in proptest::collection::btree_set(1i64..60, 0..12),
                extra in proptest::collection::vec(
                    proptest::collection::btree_set(1i64..60, 0..6), 3),
                order in proptest::collection::vec(0usize..3, 0..600),
            ) {
                const N: i64 = 60;
                // Keyframes on a 5-frame grid (0.2 s), target 0.6 s.
                let keys: Vec<Vec<bool>> = (0..3)
                    .map(|v| {
                        (0..N)
                            .map(|n| n == 0 || (n % 5 == 0 && (common.contains(&(n / 5)) || extra[v].contains(&(n / 5)))))
                            .collect()
                    })
                    .collect();
                let mut s = segmenter(15 * F, 3, 0);
                let mut next = [0i64; 3];
                let mut out = Vec::new();
                let push = |s: &mut Segmenter<i64>, v: usize, n: i64, out: &mut Vec<Action<i64>>| {
                    let mut f = frame(n, 1);
                    f.keyframe = keys[v][n as usize];
                    out.extend(s.push_video(v, f));
                };
                for &v in &order {
                    if next[v] < N {
                        push(&mut s, v, next[v], &mut out);
                        next[v] += 1;
                    }
                }
                for (v, nv) in next.iter_mut().enumerate() {
                    while *nv < N {
                        push(&mut s, v, *nv, &mut out);
                        *nv += 1;
                    }
                }
                finish_all(&mut s, &mut out);
                let w = writes(&out);
                let starts = |v: usize| -> Vec<i64> {
                    w.iter().filter(|x| x.0 == v).map(|x| x.1).collect()
                };
                let total: Vec<i64> = (0..3)
                    .map(|v| w.iter().filter(|x| x.0 == v).map(|x| x.5 as i64).sum())
                    .collect();
                prop_assert_eq!(total, vec![N, N, N]);
                for t in starts(0) {
                    let frame_no = t * MS / F;
                    if (0..3).all(|v| keys[v][frame_no as usize]) {
                        for v in 1..3 {
                            prop_assert!(starts(v).contains(&t), "v{} not cut at {} ms: {:?}", v, t, w);
                        }
                    }
                }
                if keys[1] == keys[0] {
                    prop_assert_eq!(starts(1), starts(0));
                }
            }
        }
    }
}
