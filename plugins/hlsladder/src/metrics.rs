//! Prometheus families of `hlsladdersink` and the series of one variant.
//!
//! Families live in the process-wide registry of the exporter crate with the
//! labels `pipeline`, `element`, `stream` (the variant name, or
//! `multivariant` for the multivariant playlist). A [`VariantSeries`] holds
//! the resolved children of one variant, created at 0 so that `rate()` and
//! `increase()` see the first event, and removes them from the registry when
//! dropped (the stream ended).

use std::sync::LazyLock;

use gstbroadcast_exporter as exporter;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

/// The element's metric families.
struct Families {
    segments: IntCounterVec,
    bytes: IntCounterVec,
    durations: HistogramVec,
    overruns: IntCounterVec,
    misaligned: IntCounterVec,
    write_errors: IntCounterVec,
    dropped: IntCounterVec,
    media_sequence: IntGaugeVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    Families {
    segments: exporter::counter_vec(
        "gst_hls_segments_written_total",
        "HLS media segments written, per variant.",
    ),
    bytes: exporter::counter_vec(
        "gst_hls_segment_bytes_total",
        "Bytes of HLS media segments written, per variant.",
    ),
    durations: exporter::histogram_vec(
        "gst_hls_segment_duration_seconds",
        "Durations of the HLS media segments written.",
        vec![
            0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 20.0,
        ],
    ),
    overruns: exporter::counter_vec(
        "gst_hls_target_duration_overruns_total",
        "Segments whose rounded duration exceeds EXT-X-TARGETDURATION for want of a keyframe.",
    ),
    misaligned: exporter::counter_vec(
        "gst_hls_keyframe_misalignments_total",
        "Cuts where a variant had no keyframe at the reference variant's cut PTS.",
    ),
    write_errors: exporter::counter_vec(
        "gst_hls_write_errors_total",
        "Failed writes or deletions of segments and playlists (stream=\"multivariant\": the multivariant playlist).",
    ),
    dropped: exporter::counter_vec(
        "gst_hls_dropped_buffers_total",
        "Input buffers dropped: no timestamp, before the first keyframe, or too late.",
    ),
    media_sequence: exporter::gauge_vec(
        "gst_hls_media_sequence",
        "EXT-X-MEDIA-SEQUENCE of the variant's media playlist.",
    ),
}
});

/// The `stream` label of the multivariant playlist's series.
pub const MULTIVARIANT_STREAM: &str = "multivariant";

/// The series of one variant; they leave the registry when this is dropped.
pub struct VariantSeries {
    /// `gst_hls_segments_written_total`.
    pub segments: IntCounter,
    /// `gst_hls_segment_bytes_total`, bytes.
    pub bytes: IntCounter,
    /// `gst_hls_segment_duration_seconds`, seconds.
    pub durations: Histogram,
    /// `gst_hls_target_duration_overruns_total`.
    pub overruns: IntCounter,
    /// `gst_hls_keyframe_misalignments_total`.
    pub misaligned: IntCounter,
    /// `gst_hls_write_errors_total`.
    pub write_errors: IntCounter,
    /// `gst_hls_dropped_buffers_total`.
    pub dropped: IntCounter,
    /// `gst_hls_media_sequence`.
    pub media_sequence: IntGauge,
    _handle: exporter::Series,
}

impl VariantSeries {
    /// Creates (at 0) the series labelled `pipeline`, `element`, `stream`.
    pub fn new(pipeline: &str, element: &str, stream: &str) -> Self {
        let f = &*FAMILIES;
        let mut h = exporter::Series::new(pipeline, element, stream);
        VariantSeries {
            segments: h.child(&f.segments),
            bytes: h.child(&f.bytes),
            durations: h.child(&f.durations),
            overruns: h.child(&f.overruns),
            misaligned: h.child(&f.misaligned),
            write_errors: h.child(&f.write_errors),
            dropped: h.child(&f.dropped),
            media_sequence: h.child(&f.media_sequence),
            _handle: h,
        }
    }
}

/// A counter family for a [`CounterSeries`].
#[derive(Clone, Copy, Debug)]
pub enum Counter {
    /// `gst_hls_write_errors_total` (the multivariant playlist's).
    WriteErrors,
    /// `gst_hls_dropped_buffers_total` (an audio pad's).
    Dropped,
}

/// One counter series of a stream that is not a variant (the multivariant
/// playlist, an audio pad), created at 0; it leaves the registry when this
/// is dropped.
pub struct CounterSeries {
    /// The counter.
    pub counter: IntCounter,
    _handle: exporter::Series,
}

impl CounterSeries {
    /// Creates (at 0) the series of `which` labelled `pipeline`, `element`, `stream`.
    pub fn new(which: Counter, pipeline: &str, element: &str, stream: &str) -> Self {
        let f = &*FAMILIES;
        let mut h = exporter::Series::new(pipeline, element, stream);
        let counter = match which {
            Counter::WriteErrors => h.child(&f.write_errors),
            Counter::Dropped => h.child(&f.dropped),
        };
        CounterSeries {
            counter,
            _handle: h,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_start_at_zero_and_leave_on_drop() {
        let s = VariantSeries::new("p-metrics-test", "s", "v0");
        let m = CounterSeries::new(
            Counter::WriteErrors,
            "p-metrics-test",
            "s",
            MULTIVARIANT_STREAM,
        );
        s.segments.inc();
        m.counter.inc();
        let text = exporter::render_local_text();
        assert!(text.contains(
            r#"gst_hls_segments_written_total{element="s",pipeline="p-metrics-test",stream="v0"} 1"#
        ));
        assert!(text.contains(
            r#"gst_hls_dropped_buffers_total{element="s",pipeline="p-metrics-test",stream="v0"} 0"#
        ));
        assert!(text.contains(
            r#"gst_hls_write_errors_total{element="s",pipeline="p-metrics-test",stream="multivariant"} 1"#
        ));
        drop(s);
        drop(m);
        let text = exporter::render_local_text();
        assert!(!text.contains("p-metrics-test"), "{text}");
    }
}
