// SPDX-License-Identifier: MPL-2.0

//! Running-time conversions of the sink pads' TIME segments.

/// A TIME segment reduced to the running-time conversions.
#[derive(Debug, Clone)]
pub(super) struct SegmentMap {
    /// The segment.
    pub(super) segment: gst::FormattedSegment<gst::ClockTime>,
    /// running time = timestamp + shift, when the rate is 1.
    shift: Option<i64>,
}

impl SegmentMap {
    pub(super) fn new(segment: gst::FormattedSegment<gst::ClockTime>) -> Self {
        let shift = (segment.rate() == 1.0).then(|| {
            segment.base().map_or(0, |b| b.nseconds() as i64)
                - segment.start().map_or(0, |s| s.nseconds() as i64)
        });
        SegmentMap { segment, shift }
    }

    pub(super) fn to_running(&self, ts: Option<gst::ClockTime>) -> Option<i64> {
        let ts = ts?;
        if let Some(shift) = self.shift {
            return Some(ts.nseconds() as i64 + shift);
        }
        Some(match self.segment.to_running_time_full(ts)? {
            gst::Signed::Positive(v) => v.nseconds() as i64,
            gst::Signed::Negative(v) => -(v.nseconds() as i64),
        })
    }

    /// The timestamp in this segment of running time `rt`, `None` before
    /// its start.
    pub(super) fn position(&self, rt: i64) -> Option<gst::ClockTime> {
        if let Some(shift) = self.shift {
            let ts = rt - shift;
            return (ts >= 0).then(|| gst::ClockTime::from_nseconds(ts as u64));
        }
        if rt < 0 {
            return None;
        }
        match self
            .segment
            .position_from_running_time_full(gst::ClockTime::from_nseconds(rt as u64))?
        {
            gst::Signed::Positive(v) => Some(v),
            gst::Signed::Negative(_) => None,
        }
    }

    /// `ts` of this segment as a timestamp in `out`.
    pub(super) fn convert(
        &self,
        out: &SegmentMap,
        ts: Option<gst::ClockTime>,
    ) -> Option<gst::ClockTime> {
        if self.segment == out.segment {
            return ts;
        }
        out.position(self.to_running(ts)?)
    }
}
