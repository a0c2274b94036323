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
    // The switch counter carries a `direction` label besides the usual
    // ones, so it is registered here rather than through `counter_vec`.
    let labels = [
        exporter::STREAM_LABELS[0],
        exporter::STREAM_LABELS[1],
        exporter::STREAM_LABELS[2],
        "direction",
    ];
    let switches = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "gst_abrselector_switches_total",
            "Rendition switches made, by direction (up or down); the first selection is not counted.",
        ),
        &labels,
    )
    .expect("valid metric name");
    let _ = exporter::registry().register(Box::new(switches.clone()));
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

fn label_refs(labels: &[String; 3]) -> [&str; 3] {
    [labels[0].as_str(), labels[1].as_str(), labels[2].as_str()]
}

/// Element-level metric handles (stream label `src`).
pub(super) struct ElementSeries {
    pub(super) labels: [String; 3],
    pub(super) up: prometheus::IntCounter,
    pub(super) down: prometheus::IntCounter,
    pub(super) current: prometheus::IntGauge,
    pub(super) estimate: prometheus::Gauge,
}

impl ElementSeries {
    pub(super) fn new(labels: [String; 3]) -> Self {
        let l = label_refs(&labels);
        let f = &*FAMILIES;
        let s = ElementSeries {
            up: f.switches.with_label_values(&[l[0], l[1], l[2], "up"]),
            down: f.switches.with_label_values(&[l[0], l[1], l[2], "down"]),
            current: f.current.with_label_values(&l),
            estimate: f.estimate.with_label_values(&l),
            labels,
        };
        s.current.set(-1);
        s
    }

    pub(super) fn remove(&self) {
        let l = label_refs(&self.labels);
        let f = &*FAMILIES;
        for d in ["up", "down"] {
            let _ = f.switches.remove_label_values(&[l[0], l[1], l[2], d]);
        }
        let _ = f.current.remove_label_values(&l);
        let _ = f.estimate.remove_label_values(&l);
    }
}

/// Metric handles of one sink pad.
pub(super) struct PadSeries {
    pub(super) labels: [String; 3],
    pub(super) forwarded: prometheus::IntCounter,
    pub(super) dropped: prometheus::IntCounter,
    pub(super) inserted: prometheus::IntCounter,
    pub(super) unparseable: prometheus::IntCounter,
    pub(super) keyframe_timeouts: prometheus::IntCounter,
    pub(super) rejected_caps: prometheus::IntCounter,
    pub(super) bitrate: prometheus::Gauge,
}

impl PadSeries {
    pub(super) fn new(labels: [String; 3]) -> Self {
        let l = label_refs(&labels);
        let f = &*FAMILIES;
        PadSeries {
            forwarded: f.forwarded.with_label_values(&l),
            dropped: f.dropped.with_label_values(&l),
            inserted: f.inserted.with_label_values(&l),
            unparseable: f.unparseable.with_label_values(&l),
            keyframe_timeouts: f.keyframe_timeouts.with_label_values(&l),
            rejected_caps: f.rejected_caps.with_label_values(&l),
            bitrate: f.bitrate.with_label_values(&l),
            labels,
        }
    }

    pub(super) fn remove(&self) {
        let l = label_refs(&self.labels);
        let f = &*FAMILIES;
        for c in [
            &f.forwarded,
            &f.dropped,
            &f.inserted,
            &f.unparseable,
            &f.keyframe_timeouts,
            &f.rejected_caps,
        ] {
            let _ = c.remove_label_values(&l);
        }
        let _ = f.bitrate.remove_label_values(&l);
    }
}
