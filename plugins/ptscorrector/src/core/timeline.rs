// SPDX-License-Identifier: MPL-2.0

//! The timeline shared by all streams of one element: where the input
//! timeline jumped (*epochs*) and the drift *slew*. Both move every stream
//! by the same amount, which is what keeps the A/V offset.
//!
//! # Epochs
//!
//! A jump belongs to the program, not to a stream: at a splice, every
//! stream steps by the same amount of source time. Each stream sees it
//! differently though, because the streams of a spliced file neither end
//! nor restart at the same instant: audio may resume a few hundred ms
//! before or after video, or seconds later when a stream's first frames are
//! missing. Each stream's own step (first timestamp after minus its
//! expected one) is therefore the program's jump plus a stream-local gap or
//! overlap, and only one stream's step can be taken as the jump.
//!
//! The first stream to meet a step beyond the jump threshold records an
//! [`Epoch`]: its step, negated, is the shift of every stream. Each other
//! stream, when its own step comes, follows the oldest epoch it has not
//! followed yet if its timestamps land close to the epoch's on both sides
//! of the step (within [`EPOCH_MATCH_WINDOW`] plus the threshold), or if
//! the epoch's shift puts it within the threshold of where another stream
//! is now (it resumed late, whatever how late). It then takes the epoch's
//! shift whatever its own step: what differs stays in that stream, a gap
//! (found and counted, or filled, by the stream repair) or an overlap
//! (dropped for audio). A shift is never computed from the follower's own
//! step, so which stream meets the jump first changes where the new
//! timeline starts by at most the streams' distance at the splice, never
//! their offset.
//!
//! A forward step no epoch explains, landing within the threshold of where
//! another stream is now, is a hole in that stream alone (the program's
//! timeline did not jump): it is not shifted, and stays a gap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use super::{Config, SECOND};

/// A jump of the input timeline, recorded by the first stream to meet it,
/// for the other streams to follow. Times are continuous ns (input,
/// unwrapped, plus the stream's jump offsets so far) of the detecting
/// stream, before the shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Epoch {
    /// Order of recording, from 1.
    pub(super) id: u64,
    /// Shift every stream applies from its own step on, ns: minus the
    /// detecting stream's step (actual minus expected timestamp).
    pub(super) shift: i64,
    /// The detecting stream's last timestamp before the step.
    pub(super) before: i64,
    /// Its first timestamp after the step.
    pub(super) after: i64,
}

/// How far (continuous ns), beyond the jump threshold, the timestamps of a
/// stream around its step may be from those of the epoch's detecting
/// stream and still be the same jump.
pub const EPOCH_MATCH_WINDOW: i64 = 5 * SECOND;

/// What a step beyond the jump threshold is, for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// A jump of the program's timeline: apply `shift` (ns), the shift of
    /// epoch `epoch`. `new` when this stream is the first to meet it.
    Jump {
        /// ns to add to this stream's timestamps from now on.
        shift: i64,
        /// The epoch's id.
        epoch: u64,
        /// This stream recorded the epoch.
        new: bool,
    },
    /// A hole in this stream alone: other streams are already where it
    /// resumes. Not shifted.
    Gap,
}

/// Streams whose position is tracked for [`Timeline::step`] (by id; a
/// stream of a higher id still follows epochs, but is not looked at to
/// tell a stream-local gap).
const TRACKED: usize = 16;
/// Position of a stream not seen yet.
const UNKNOWN: i64 = i64::MIN;

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

/// The timeline shared by all streams of one element: pending jumps
/// (epochs), the latest position of each stream, and the drift slew. All
/// times are signed ns of continuous running time.
#[derive(Debug)]
pub struct Timeline {
    shared: Mutex<Shared>,
    /// Fast path: no slew offset to apply yet.
    slewing: AtomicBool,
    /// Latest continuous reference timestamp (DTS, else PTS) of each
    /// stream by id, [`UNKNOWN`] before its first buffer.
    positions: [AtomicI64; TRACKED],
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            shared: Mutex::default(),
            slewing: AtomicBool::new(false),
            positions: std::array::from_fn(|_| AtomicI64::new(UNKNOWN)),
        }
    }
}

impl Timeline {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets pending jumps and the slew (on flush or stop).
    pub fn reset(&self) {
        *self.lock() = Shared::default();
        self.slewing.store(false, Ordering::Relaxed);
        for p in &self.positions {
            p.store(UNKNOWN, Ordering::Relaxed);
        }
    }

    /// Stream `stream` is at continuous time `t` (ns): its latest
    /// reference timestamp, after the jump offset. One relaxed store.
    #[inline]
    pub(super) fn set_position(&self, stream: u32, t: i64) {
        if let Some(p) = self.positions.get(stream as usize) {
            p.store(t, Ordering::Relaxed);
        }
    }

    /// Stream `stream` (by id) starts afresh, ended or left the element
    /// (flush, EOS, pad released): its position is unknown, so that a step
    /// of another stream is never taken for a hole because it lands where
    /// this stream stopped.
    pub fn forget_position(&self, stream: u32) {
        self.set_position(stream, UNKNOWN);
    }

    /// Whether a stream other than `stream` is within `threshold` ns of
    /// continuous time `t` now.
    fn other_stream_near(&self, stream: u32, t: i64, threshold: i64) -> bool {
        self.positions.iter().enumerate().any(|(i, p)| {
            let p = p.load(Ordering::Relaxed);
            i != stream as usize && p != UNKNOWN && t.abs_diff(p) <= threshold.max(0) as u64
        })
    }

    /// The newest jump id (streams created now ignore older jumps).
    pub(super) fn latest_epoch(&self) -> u64 {
        self.lock().next_epoch
    }

    /// Stream `stream`, whose last followed epoch is `after_id`, stepped
    /// from continuous time `before` to `after` (ns), `deviation` ns away
    /// from the `after` it expected (more than `threshold`). Tells what the
    /// step is (see the module doc): a jump to follow (the oldest epoch
    /// newer than `after_id` it matches), a hole in this stream alone (a
    /// forward step landing where another stream is), or a new jump,
    /// recorded as an epoch with shift `-deviation`.
    pub(super) fn step(
        &self,
        stream: u32,
        after_id: u64,
        before: i64,
        after: i64,
        deviation: i64,
        threshold: i64,
    ) -> Step {
        let window = threshold.saturating_add(EPOCH_MATCH_WINDOW);
        let near = |a: i64, b: i64, tol: i64| a.abs_diff(b) <= tol.max(0) as u64;
        let mut s = self.lock();
        if let Some(e) = s.epochs.iter().find(|e| {
            e.id > after_id
                && ((near(e.before, before, window) && near(e.after, after, window))
                    || self.other_stream_near(stream, after.saturating_add(e.shift), threshold))
        }) {
            return Step::Jump {
                shift: e.shift,
                epoch: e.id,
                new: false,
            };
        }
        if deviation > 0 && self.other_stream_near(stream, after, threshold) {
            return Step::Gap;
        }
        s.next_epoch += 1;
        let id = s.next_epoch;
        let shift = deviation.saturating_neg();
        s.epochs.push_back(Epoch {
            id,
            shift,
            before,
            after,
        });
        if s.epochs.len() > 32 {
            s.epochs.pop_front();
        }
        Step::Jump {
            shift,
            epoch: id,
            new: true,
        }
    }

    /// The epochs recorded and still kept, oldest first.
    #[cfg(test)]
    pub(super) fn epochs(&self) -> Vec<Epoch> {
        self.lock().epochs.iter().copied().collect()
    }

    /// Slew offset (ns) at continuous time `t`, and `duration` (ns)
    /// stretched to end where the slew puts `t + duration` (1 ns short, so
    /// the buffer ends before the next one starts despite rounding).
    pub(super) fn slew_at(&self, t: i64, duration: Option<i64>) -> (i64, Option<i64>) {
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
    pub(super) fn drift(&self, stream: u32, drift: i64, t: i64, cfg: &Config) -> Option<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Jump threshold of the tests (the element's default), ns.
    const T: i64 = SECOND;
    const VIDEO: u32 = 0;
    const AUDIO: u32 = 1;

    /// Video steps from 10 s to 30 s (expected 10.033 333 333 s): the first
    /// stream to meet the jump records epoch 1, shift -19 966 666 667 ns.
    fn video_jumps(tl: &Timeline) {
        tl.set_position(VIDEO, 10_000_000_000);
        tl.set_position(AUDIO, 10_010_000_000);
        assert_eq!(
            tl.step(VIDEO, 0, 10_000_000_000, 30_000_000_000, 19_966_666_667, T),
            Step::Jump {
                shift: -19_966_666_667,
                epoch: 1,
                new: true
            }
        );
        tl.set_position(VIDEO, 10_033_333_333);
    }

    /// Audio lands 200 ms before video (its own step is 19 768 666 667
    /// ns): it takes video's shift, not its own.
    #[test]
    fn follower_takes_the_epoch_shift() {
        let tl = Timeline::default();
        video_jumps(&tl);
        assert_eq!(
            tl.step(AUDIO, 0, 10_010_000_000, 29_800_000_000, 19_768_666_667, T),
            Step::Jump {
                shift: -19_966_666_667,
                epoch: 1,
                new: false
            }
        );
        assert_eq!(tl.epochs().len(), 1);
    }

    /// Audio resumes 7 s after video (beyond the 6 s window around the
    /// epoch), while video has gone on to 17.033 333 333 s: shifted by the
    /// epoch, audio lands where video is, so it follows.
    #[test]
    fn late_follower_joins_where_the_others_are() {
        let tl = Timeline::default();
        video_jumps(&tl);
        tl.set_position(VIDEO, 17_033_333_333);
        assert_eq!(
            tl.step(AUDIO, 0, 10_010_000_000, 37_000_000_000, 26_968_666_667, T),
            Step::Jump {
                shift: -19_966_666_667,
                epoch: 1,
                new: false
            }
        );
    }

    /// The same late audio while video has not moved on (stalled at
    /// 10.033 s): nothing ties it to the epoch, so it is a jump of its own.
    #[test]
    fn unrelated_step_is_a_new_epoch() {
        let tl = Timeline::default();
        video_jumps(&tl);
        assert_eq!(
            tl.step(AUDIO, 0, 10_010_000_000, 37_000_000_000, 26_968_666_667, T),
            Step::Jump {
                shift: -26_968_666_667,
                epoch: 2,
                new: true
            }
        );
    }

    /// A stream follows an epoch once: a second step of the same stream
    /// (after_id 1) is a new jump.
    #[test]
    fn epoch_followed_once() {
        let tl = Timeline::default();
        video_jumps(&tl);
        assert_eq!(
            tl.step(VIDEO, 1, 12_000_000_000, 32_000_000_000, 19_966_666_667, T),
            Step::Jump {
                shift: -19_966_666_667,
                epoch: 2,
                new: true
            }
        );
    }

    /// Audio steps 3 s forward (from 17 s to 20.021 333 333 s) to where
    /// video is (20 s): a hole in audio alone, not shifted, no epoch.
    /// Backward to where video is, it would be a jump.
    #[test]
    fn forward_step_to_another_stream_is_a_gap() {
        let tl = Timeline::default();
        tl.set_position(VIDEO, 20_000_000_000);
        tl.set_position(AUDIO, 17_000_000_000);
        assert_eq!(
            tl.step(AUDIO, 0, 17_000_000_000, 20_021_333_333, 3_000_000_000, T),
            Step::Gap
        );
        assert!(tl.epochs().is_empty());
        tl.set_position(VIDEO, 14_000_000_000);
        assert_eq!(
            tl.step(AUDIO, 0, 17_000_000_000, 14_000_000_000, -3_021_333_333, T),
            Step::Jump {
                shift: 3_021_333_333,
                epoch: 1,
                new: true
            }
        );
    }

    /// A single stream: every step beyond the threshold is a jump.
    #[test]
    fn single_stream_always_jumps() {
        let tl = Timeline::default();
        tl.set_position(VIDEO, 17_000_000_000);
        assert_eq!(
            tl.step(VIDEO, 0, 17_000_000_000, 20_033_333_333, 3_000_000_000, T),
            Step::Jump {
                shift: -3_000_000_000,
                epoch: 1,
                new: true
            }
        );
    }

    /// reset() forgets epochs and positions; a stream id beyond the
    /// tracked ones is ignored without a panic.
    #[test]
    fn reset_forgets() {
        let tl = Timeline::default();
        video_jumps(&tl);
        tl.set_position(1000, 5);
        tl.reset();
        assert!(tl.epochs().is_empty());
        assert!(!tl.other_stream_near(AUDIO, 10_033_333_333, T));
        tl.set_position(VIDEO, i64::MAX);
        assert!(!tl.other_stream_near(AUDIO, i64::MIN + 1, T));
        // Extreme timestamps: no overflow (video is where audio lands).
        assert_eq!(
            tl.step(AUDIO, 0, i64::MIN + 1, i64::MAX, i64::MAX, T),
            Step::Gap
        );
    }
}
