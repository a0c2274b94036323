// SPDX-License-Identifier: MPL-2.0

//! What `abrselector` learns about one rendition from its buffers, without
//! GStreamer: its measured bit rate and its keyframe cadence.
//!
//! Times are signed nanoseconds of running time; bit rates are bits/s.
//!
//! # Measured rate
//! Bytes over the PTS span of the last [`MEASURE_WINDOW`] (3 s) of running
//! time, known once the span reaches [`MEASURE_MIN_SPAN`] (1 s). The bytes
//! of the newest buffer lie beyond the span and are not counted, so a
//! constant-rate stream of `b` bytes per frame at `f` fps measures exactly
//! `8 b f`. Buffers arriving out of PTS order (B-frames) are kept in PTS
//! order; a PTS more than a window behind the newest starts the
//! measurement over (a new timeline).
//!
//! # Keyframe cadence
//! The last [`KEY_PERIODS`] (3) keyframe intervals; the next keyframe after
//! a time is predicted from the last keyframe and the largest of those
//! intervals (so a scene-cut keyframe does not shorten the prediction).

use std::collections::VecDeque;

use crate::policy::SECOND;

/// Bit rate measurement window: bytes over the PTS span of this much
/// running time, ns (3 s).
pub const MEASURE_WINDOW: i64 = 3 * SECOND;
/// The measured rate is known once the span reaches this, ns (1 s).
pub const MEASURE_MIN_SPAN: i64 = SECOND;
/// Keyframe intervals remembered.
pub const KEY_PERIODS: usize = 3;

/// Measured bit rate and keyframe cadence of one rendition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenditionClock {
    /// (PTS running time ns, bytes) of the last `MEASURE_WINDOW`, in PTS
    /// order.
    measure: VecDeque<(i64, u64)>,
    /// Running time of the last keyframe, ns.
    last_key: Option<i64>,
    /// The last `KEY_PERIODS` keyframe intervals, ns (each > 0).
    key_periods: VecDeque<i64>,
}

impl RenditionClock {
    /// Nothing measured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (a new stream or timeline).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// A buffer of `bytes` with PTS at running time `pts_rt` ns.
    pub fn push(&mut self, pts_rt: i64, bytes: u64) {
        if self
            .measure
            .back()
            .is_some_and(|(t, _)| pts_rt < t.saturating_sub(MEASURE_WINDOW))
        {
            self.measure.clear();
        }
        let pos = self
            .measure
            .iter()
            .rposition(|(t, _)| *t <= pts_rt)
            .map_or(0, |p| p + 1);
        self.measure.insert(pos, (pts_rt, bytes));
        let newest = self.measure.back().map_or(pts_rt, |(t, _)| *t);
        while self
            .measure
            .front()
            .is_some_and(|(t, _)| newest.saturating_sub(*t) > MEASURE_WINDOW)
        {
            self.measure.pop_front();
        }
    }

    /// The measured bit rate, bits/s; `None` until the buffers span
    /// [`MEASURE_MIN_SPAN`].
    pub fn measured(&self) -> Option<u64> {
        let (first, _) = *self.measure.front()?;
        let (last, _) = *self.measure.back()?;
        let span = last.saturating_sub(first);
        if span < MEASURE_MIN_SPAN {
            return None;
        }
        let bytes: u64 = self.measure.iter().rev().skip(1).map(|(_, b)| *b).sum();
        Some((bytes as f64 * 8.0 * SECOND as f64 / span as f64).round() as u64)
    }

    /// A keyframe at running time `rt` ns. An interval is recorded only when
    /// `rt` is after the previous keyframe.
    pub fn keyframe(&mut self, rt: i64) {
        if let Some(k) = self.last_key.filter(|k| rt > *k) {
            if self.key_periods.len() == KEY_PERIODS {
                self.key_periods.pop_front();
            }
            self.key_periods.push_back(rt - k);
        }
        self.last_key = Some(rt);
    }

    /// Running time of the last keyframe, ns.
    pub fn last_keyframe(&self) -> Option<i64> {
        self.last_key
    }

    /// The first keyframe expected after `after` ns: the last keyframe plus
    /// a whole number (at least 1) of the largest recent interval; `None`
    /// before two keyframes.
    pub fn next_keyframe(&self, after: i64) -> Option<i64> {
        let k = self.last_key?;
        let p = *self.key_periods.iter().max()?;
        if p <= 0 {
            return None;
        }
        let m = if after < k { 1 } else { (after - k) / p + 1 };
        k.checked_add(m.max(1).checked_mul(p)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start of frame `i` at 30 fps, ns.
    fn frame(i: i64) -> i64 {
        i * SECOND / 30
    }

    #[test]
    fn measured_rate_is_exact_for_constant_frames() {
        let mut c = RenditionClock::new();
        // 30 fps x 6250 bytes = 1.5 Mb/s; unknown before 1 s of span.
        for i in 0..30 {
            c.push(frame(i), 6250);
            assert_eq!(c.measured(), None, "frame {i}");
        }
        c.push(frame(30), 6250);
        assert_eq!(c.measured(), Some(1_500_000));
        // The window keeps 3 s: a rate change is fully seen 3 s later.
        for i in 31..=121 {
            c.push(frame(i), 2500);
        }
        assert_eq!(c.measured(), Some(600_000));
    }

    #[test]
    fn out_of_order_and_new_timeline() {
        let mut c = RenditionClock::new();
        // B-frame order: 0 3 1 2 6 4 5 ... the span is still PTS order.
        let order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 12, 10, 11];
        for k in 0..4 {
            for o in order {
                c.push(frame(k * 13 + o), 1000);
            }
        }
        // 52 frames over a span of 51 frames, the newest excluded.
        assert_eq!(c.measured(), Some(240_000));
        // More than a window behind the newest: starts over.
        c.push(-3 * SECOND, 1000);
        assert_eq!(c.measured(), None);
    }

    #[test]
    fn keyframe_prediction_uses_the_largest_recent_interval() {
        let mut c = RenditionClock::new();
        assert_eq!(c.next_keyframe(0), None);
        c.keyframe(0);
        assert_eq!(c.next_keyframe(0), None);
        c.keyframe(SECOND);
        assert_eq!(c.next_keyframe(SECOND), Some(2 * SECOND));
        assert_eq!(c.next_keyframe(SECOND / 2), Some(2 * SECOND));
        assert_eq!(c.next_keyframe(3 * SECOND + 1), Some(4 * SECOND));
        // A scene cut after 0.4 s does not shorten the prediction.
        c.keyframe(SECOND + 400 * SECOND / 1000);
        assert_eq!(c.last_keyframe(), Some(1_400_000_000));
        assert_eq!(c.next_keyframe(1_500_000_000), Some(2_400_000_000));
        // Not after the last keyframe: no interval recorded.
        c.keyframe(SECOND);
        assert_eq!(c.next_keyframe(SECOND), Some(2 * SECOND));
        // Extreme times do not overflow.
        c.keyframe(i64::MAX - 1);
        assert_eq!(c.next_keyframe(i64::MAX - 1), None);
    }
}
