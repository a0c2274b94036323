// SPDX-License-Identifier: MPL-2.0

//! Running time of a TIME segment, signed (a B-frame stream's DTS starts
//! before the segment start), with a fast path for the common rate-1 case.

/// Signed ns of a signed clock time (`gst_segment_to_running_time_full()`
/// results).
#[inline]
pub fn signed_ns(t: gst::Signed<gst::ClockTime>) -> i64 {
    match t {
        gst::Signed::Positive(v) => v.nseconds() as i64,
        gst::Signed::Negative(v) => -(v.nseconds() as i64),
    }
}

/// A TIME segment reduced to its running-time conversions. At rate and
/// applied rate 1 (almost every stream), running time is the timestamp
/// plus a constant shift (`base - start - offset`, as in
/// `gst_segment_to_running_time_full()`), computed once; other segments go
/// through GStreamer's functions.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMap {
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// running time = timestamp + shift, in ns, at rate 1.
    shift: Option<i64>,
}

impl SegmentMap {
    /// The conversions of `segment`.
    pub fn new(segment: gst::FormattedSegment<gst::ClockTime>) -> Self {
        let ns = |t: Option<gst::ClockTime>| t.and_then(|t| i64::try_from(t.nseconds()).ok());
        let shift = if segment.rate() == 1.0 && segment.applied_rate() == 1.0 {
            ns(segment.base()).and_then(|base| {
                base.checked_sub(ns(segment.start())?)?
                    .checked_sub(ns(segment.offset())?)
            })
        } else {
            None
        };
        SegmentMap { segment, shift }
    }

    /// The segment.
    #[inline]
    pub fn segment(&self) -> &gst::FormattedSegment<gst::ClockTime> {
        &self.segment
    }

    /// Signed running time of `ts` in ns; `None` without a timestamp or
    /// outside a segment with a stop.
    #[inline]
    pub fn running_time(&self, ts: Option<gst::ClockTime>) -> Option<i64> {
        let ts = ts?;
        if let Some(shift) = self.shift {
            if let Some(rt) = i64::try_from(ts.nseconds())
                .ok()
                .and_then(|t| t.checked_add(shift))
            {
                return Some(rt);
            }
        }
        self.segment.to_running_time_full(ts).map(signed_ns)
    }

    /// The timestamp in this segment of running time `rt` (ns); `None` when
    /// it would be negative (or, at other rates, for negative running time).
    #[inline]
    pub fn position(&self, rt: i64) -> Option<gst::ClockTime> {
        if let Some(shift) = self.shift {
            let ts = rt.checked_sub(shift)?;
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

    /// [`SegmentMap::position`], clamped at 0.
    #[inline]
    pub fn stream_time(&self, rt: i64) -> gst::ClockTime {
        self.position(rt).unwrap_or(gst::ClockTime::ZERO)
    }

    /// `ts` of this segment as a timestamp of `out` with the same running
    /// time.
    #[inline]
    pub fn convert(&self, out: &SegmentMap, ts: Option<gst::ClockTime>) -> Option<gst::ClockTime> {
        if self.segment == out.segment {
            return ts;
        }
        out.position(self.running_time(ts)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(
        rate: f64,
        start: u64,
        base: u64,
        offset: u64,
    ) -> gst::FormattedSegment<gst::ClockTime> {
        let mut s = gst::FormattedSegment::<gst::ClockTime>::new();
        s.set_rate(rate);
        s.set_start(gst::ClockTime::from_nseconds(start));
        s.set_base(gst::ClockTime::from_nseconds(base));
        s.set_offset(gst::ClockTime::from_nseconds(offset));
        s
    }

    #[test]
    fn the_fast_path_matches_gstreamer() {
        gst::init().unwrap();
        for (rate, start, base, offset) in [
            (1.0, 0, 0, 0),
            (1.0, 3_600_000_000_000, 0, 0),
            (1.0, 10_000_000_000, 2_000_000_000, 500_000_000),
            (2.0, 10_000_000_000, 2_000_000_000, 0),
        ] {
            let seg = segment(rate, start, base, offset);
            let map = SegmentMap::new(seg.clone());
            assert_eq!(map.shift.is_some(), rate == 1.0);
            for ts in [
                0u64,
                1,
                9_999_999_999,
                10_000_000_000,
                10_500_000_000,
                3_600_000_000_001,
            ] {
                let ts = gst::ClockTime::from_nseconds(ts);
                let expected = seg.to_running_time_full(ts).map(signed_ns);
                assert_eq!(
                    map.running_time(Some(ts)),
                    expected,
                    "{rate} {start} {base} {offset} {ts}"
                );
                if let Some(rt) = expected {
                    let back = map.position(rt);
                    if rate == 1.0 {
                        assert_eq!(back, Some(ts), "round trip of {ts}");
                    }
                }
            }
        }
    }

    #[test]
    fn dts_before_the_start_is_negative_and_clamps_to_zero() {
        gst::init().unwrap();
        let map = SegmentMap::new(segment(1.0, 1_000_000_000, 0, 0));
        let ts = gst::ClockTime::from_nseconds(900_000_000);
        assert_eq!(map.running_time(Some(ts)), Some(-100_000_000));
        assert_eq!(map.running_time(None), None);
        assert_eq!(map.position(-100_000_000), Some(ts));
        assert_eq!(map.position(-1_000_000_001), None);
        assert_eq!(map.stream_time(-2_000_000_000), gst::ClockTime::ZERO);
        let out = SegmentMap::new(segment(1.0, 0, 0, 0));
        assert_eq!(
            map.convert(&out, Some(gst::ClockTime::from_seconds(3))),
            Some(gst::ClockTime::from_seconds(2))
        );
    }
}
