// SPDX-License-Identifier: MPL-2.0

//! Prometheus series of `abrselector` (see the element documentation for
//! the families and labels).

use std::sync::LazyLock;

use gstbroadcast_exporter as exporter;

/// Prometheus families shared by every `abrselector` instance.
pub(super) struct Families {
    switches: prometheus::IntCounterVec,
    current: prometheus::IntGaugeVec,
    estimate: prometheus::GaugeVec,
    forwarded: prometheus::IntCounterVec,
    dropped: prometheus::IntCounterVec,
    inserted: prometheus::IntCounterVec,
    unparseable: prometheus::IntCounterVec,
    keyframe_timeouts: prometheus::IntCounterVec,
    rejected_caps: prometheus::IntCounterVec,
    bitrate: prometheus::GaugeVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let switches = exporter::labelled_counter_vec(
        "gst_abrselector_switches_total",
        "Rendition switches made, by direction (up or down); the first selection is not counted.",
        &["direction"],
    );
    Families {
        switches,
        current: exporter::gauge_vec(
            "gst_abrselector_current_rendition",
            "Sink pad number of the rendition being forwarded (sink_N gives N), -1 when none.",
        ),
        estimate: exporter::float_gauge_vec(
            "gst_abrselector_bandwidth_estimate_bits_per_second",
            "Bandwidth estimate the switches act on (the latest sample, or the value set by property), bits per second.",
        ),
        forwarded: exporter::counter_vec(
            "gst_abrselector_buffers_forwarded_total",
            "Buffers of this rendition sent downstream.",
        ),
        dropped: exporter::counter_vec(
            "gst_abrselector_buffers_dropped_total",
            "Buffers of this rendition consumed without being sent (not selected, before a switch point, or late).",
        ),
        inserted: exporter::counter_vec(
            "gst_abrselector_parameter_sets_inserted_total",
            "Switch keyframes of this rendition that lacked parameter sets and got the cached ones.",
        ),
        unparseable: exporter::counter_vec(
            "gst_abrselector_unparseable_buffers_total",
            "Buffers that are not Annex B access units (never used as a switch point).",
        ),
        keyframe_timeouts: exporter::counter_vec(
            "gst_abrselector_keyframe_timeouts_total",
            "Times this rendition went 10 s of running time without a keyframe.",
        ),
        rejected_caps: exporter::counter_vec(
            "gst_abrselector_rejected_caps_total",
            "Caps refused on this pad (not H.264/H.265 byte-stream with alignment au).",
        ),
        bitrate: exporter::float_gauge_vec(
            "gst_abrselector_rendition_bitrate_bits_per_second",
            "Nominal bit rate of this rendition as the policy sees it (property, tag or measured), 0 unknown.",
        ),
    }
});

/// Element-level metric handles (stream label `src`); its series leave the
/// registry when this is dropped.
pub(super) struct ElementSeries {
    pub(super) up: prometheus::IntCounter,
    pub(super) down: prometheus::IntCounter,
    pub(super) current: prometheus::IntGauge,
    pub(super) estimate: prometheus::Gauge,
    _handle: exporter::Series,
}

impl ElementSeries {
    pub(super) fn new(labels: [String; 3]) -> Self {
        let mut h = exporter::Series::new(&labels[0], &labels[1], &labels[2]);
        let f = &*FAMILIES;
        let s = ElementSeries {
            up: h.child_with(&f.switches, &["up"]),
            down: h.child_with(&f.switches, &["down"]),
            current: h.child(&f.current),
            estimate: h.child(&f.estimate),
            _handle: h,
        };
        s.current.set(-1);
        s
    }
}

/// Metric handles of one sink pad; its series leave the registry when this
/// is dropped.
pub(super) struct PadSeries {
    pub(super) forwarded: prometheus::IntCounter,
    pub(super) dropped: prometheus::IntCounter,
    pub(super) inserted: prometheus::IntCounter,
    pub(super) unparseable: prometheus::IntCounter,
    pub(super) keyframe_timeouts: prometheus::IntCounter,
    pub(super) rejected_caps: prometheus::IntCounter,
    pub(super) bitrate: prometheus::Gauge,
    _handle: exporter::Series,
}

impl PadSeries {
    pub(super) fn new(labels: [String; 3]) -> Self {
        let mut h = exporter::Series::new(&labels[0], &labels[1], &labels[2]);
        let f = &*FAMILIES;
        PadSeries {
            forwarded: h.child(&f.forwarded),
            dropped: h.child(&f.dropped),
            inserted: h.child(&f.inserted),
            unparseable: h.child(&f.unparseable),
            keyframe_timeouts: h.child(&f.keyframe_timeouts),
            rejected_caps: h.child(&f.rejected_caps),
            bitrate: h.child(&f.bitrate),
            _handle: h,
        }
    }
}
