//! The process-wide Prometheus registry of gst-broadcast.
//!
//! Every element of the project registers its metric families here, so one
//! scrape shows the whole graph. Names follow `../shared/DESIGN.md`: prefix
//! `gst_`, base units as suffix, counters ending in `_total`, and the labels
//! `pipeline`, `element` and `stream`.
//!
//! The HTTP endpoint and the textfile sidecar build on this registry.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The labels every per-stream series carries.
pub const STREAM_LABELS: [&str; 3] = ["pipeline", "element", "stream"];

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

#[derive(Default)]
struct Families {
    counters: HashMap<&'static str, IntCounterVec>,
    gauges: HashMap<&'static str, IntGaugeVec>,
    histograms: HashMap<&'static str, HistogramVec>,
}

static FAMILIES: LazyLock<Mutex<Families>> = LazyLock::new(Default::default);

/// The registry shared by every element in this process.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// Returns the counter family `name` with [`STREAM_LABELS`], registering it on
/// first use. Later calls with the same name return the same family.
pub fn counter_vec(name: &'static str, help: &str) -> IntCounterVec {
    let mut f = FAMILIES.lock().unwrap_or_else(|e| e.into_inner());
    f.counters
        .entry(name)
        .or_insert_with(|| {
            let v = IntCounterVec::new(Opts::new(name, help), &STREAM_LABELS)
                .expect("valid metric name");
            let _ = REGISTRY.register(Box::new(v.clone()));
            v
        })
        .clone()
}

/// Returns the gauge family `name` with [`STREAM_LABELS`], registering it on first use.
pub fn gauge_vec(name: &'static str, help: &str) -> IntGaugeVec {
    let mut f = FAMILIES.lock().unwrap_or_else(|e| e.into_inner());
    f.gauges
        .entry(name)
        .or_insert_with(|| {
            let v =
                IntGaugeVec::new(Opts::new(name, help), &STREAM_LABELS).expect("valid metric name");
            let _ = REGISTRY.register(Box::new(v.clone()));
            v
        })
        .clone()
}

/// Returns the histogram family `name` (bucket bounds in the metric's base
/// unit) with [`STREAM_LABELS`], registering it on first use.
pub fn histogram_vec(name: &'static str, help: &str, buckets: Vec<f64>) -> HistogramVec {
    let mut f = FAMILIES.lock().unwrap_or_else(|e| e.into_inner());
    f.histograms
        .entry(name)
        .or_insert_with(|| {
            let v = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets),
                &STREAM_LABELS,
            )
            .expect("valid metric name");
            let _ = REGISTRY.register(Box::new(v.clone()));
            v
        })
        .clone()
}

/// Renders the registry in the Prometheus text exposition format 0.0.4.
pub fn render_text() -> String {
    let mut out = String::new();
    let encoder = prometheus::TextEncoder::new();
    encoder
        .encode_utf8(&REGISTRY.gather(), &mut out)
        .expect("text encoding into a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_shared_and_rendered() {
        let a = counter_vec("gst_test_things_total", "Things.");
        let b = counter_vec("gst_test_things_total", "Things.");
        a.with_label_values(&["p", "e", "s"]).inc();
        b.with_label_values(&["p", "e", "s"]).inc();
        let text = render_text();
        assert!(
            text.contains(r#"gst_test_things_total{element="e",pipeline="p",stream="s"} 2"#),
            "{text}"
        );
    }
}
