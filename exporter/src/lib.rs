//! The process-wide Prometheus registry of gst-broadcast.
//!
//! Every element of the project registers its metric families here, so one
//! scrape shows the whole graph. Names follow `../shared/DESIGN.md`: prefix
//! `gst_`, base units as suffix, counters ending in `_total`, and the labels
//! `pipeline`, `element` and `stream`.
//!
//! Ways out of the process, all built on this registry:
//!
//! * [`start_http`]: an HTTP endpoint inside the pipeline process serving
//!   `GET /metrics` and `GET /healthz` (see [`http`] for the limits);
//! * [`start_textfile`]: a background writer that atomically rewrites
//!   `<dir>/gst-broadcast-<pid>.prom` (the node_exporter textfile
//!   convention), read by the `gst-stream-exporter` sidecar ([`sidecar`]) or by
//!   node_exporter's textfile collector;
//! * [`start_from_env`]: starts either or both from `GST_METRICS_ADDR`,
//!   `GST_METRICS_TEXTFILE_DIR` and `GST_METRICS_INTERVAL_MS`.
//!
//! Callers default to the loopback address `127.0.0.1`; other interfaces are
//! used only when an address is passed explicitly.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

pub mod expfmt;
pub mod http;
mod hub;
pub mod sidecar;
mod start;

pub use start::{
    start_from_env, start_http, start_textfile, textfile_name, write_textfile_now, EnvStart,
    DEFAULT_HTTP_ADDR, DEFAULT_TEXTFILE_INTERVAL, ENV_ADDR, ENV_INTERVAL_MS, ENV_TEXTFILE_DIR,
    MIN_TEXTFILE_INTERVAL,
};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The labels every per-stream series carries.
pub const STREAM_LABELS: [&str; 3] = ["pipeline", "element", "stream"];

/// The `pipeline` label of `obj`'s series: the name of its top-level bin
/// (its own name when it has no parent).
pub fn pipeline_label(obj: &impl gst::prelude::IsA<gst::Object>) -> String {
    use gst::prelude::*;
    let mut top = obj.upcast_ref::<gst::Object>().clone();
    while let Some(parent) = top.parent() {
        top = parent;
    }
    top.name().to_string()
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

#[derive(Default)]
struct Families {
    counters: HashMap<&'static str, IntCounterVec>,
    gauges: HashMap<&'static str, IntGaugeVec>,
    float_gauges: HashMap<&'static str, prometheus::GaugeVec>,
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

/// Returns the floating-point gauge family `name` with [`STREAM_LABELS`]
/// (for values such as seconds or bytes per second), registering it on first
/// use.
pub fn float_gauge_vec(name: &'static str, help: &str) -> prometheus::GaugeVec {
    let mut f = FAMILIES.lock().unwrap_or_else(|e| e.into_inner());
    f.float_gauges
        .entry(name)
        .or_insert_with(|| {
            let v = prometheus::GaugeVec::new(Opts::new(name, help), &STREAM_LABELS)
                .expect("valid metric name");
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

/// Returns the counter family `name` with [`STREAM_LABELS`] followed by the
/// `extra` label names (e.g. `direction`), registering it on first use.
/// Later calls with the same name return the same family.
pub fn labelled_counter_vec(name: &'static str, help: &str, extra: &[&str]) -> IntCounterVec {
    let mut f = FAMILIES.lock().unwrap_or_else(|e| e.into_inner());
    f.counters
        .entry(name)
        .or_insert_with(|| {
            let labels: Vec<&str> = STREAM_LABELS.iter().chain(extra).copied().collect();
            let v = IntCounterVec::new(Opts::new(name, help), &labels).expect("valid metric name");
            let _ = REGISTRY.register(Box::new(v.clone()));
            v
        })
        .clone()
}

/// The series of one stream (one set of `pipeline`, `element`, `stream`
/// label values) across any number of families. Children are resolved
/// once through [`Series::child`], so the per-buffer path only does atomic
/// updates, and every child made through it leaves its family when the
/// handle is dropped: a stream that ends is removed from the registry
/// (DESIGN.md, Metrics).
pub struct Series {
    labels: [String; 3],
    removers: Vec<Box<dyn Fn() + Send + Sync>>,
}

impl Series {
    /// A handle for the series labelled `pipeline`, `element`, `stream`.
    pub fn new(pipeline: &str, element: &str, stream: &str) -> Self {
        Series {
            labels: [pipeline.into(), element.into(), stream.into()],
            removers: Vec::new(),
        }
    }

    /// The label values, in [`STREAM_LABELS`] order.
    pub fn labels(&self) -> [&str; 3] {
        [&self.labels[0], &self.labels[1], &self.labels[2]]
    }

    /// The child of `family` (created at 0 when new) with this stream's
    /// labels.
    pub fn child<P>(&mut self, family: &prometheus::core::MetricVec<P>) -> P::M
    where
        P: prometheus::core::MetricVecBuilder + 'static,
    {
        self.child_with(family, &[])
    }

    /// The child of a labelled family (see [`labelled_counter_vec`]) with
    /// this stream's labels followed by `extra` values.
    pub fn child_with<P>(&mut self, family: &prometheus::core::MetricVec<P>, extra: &[&str]) -> P::M
    where
        P: prometheus::core::MetricVecBuilder + 'static,
    {
        let values: Vec<String> = self
            .labels
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect();
        let child = family.with_label_values(&values);
        let family = family.clone();
        self.removers.push(Box::new(move || {
            let _ = family.remove_label_values(&values);
        }));
        child
    }
}

impl Drop for Series {
    fn drop(&mut self) {
        for remove in &self.removers {
            remove();
        }
    }
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("labels", &self.labels)
            .field("children", &self.removers.len())
            .finish()
    }
}

/// Renders every gst-broadcast registry of the process (each plugin `.so`
/// has its own, see [`hub`]), merged per family, in the Prometheus text
/// exposition format 0.0.4: the body served on `/metrics` and written to the
/// textfile.
pub fn render_text() -> String {
    hub::render_all().unwrap_or_else(render_local_text)
}

/// Renders only this copy's registry (text exposition format 0.0.4).
pub fn render_local_text() -> String {
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
    fn a_series_leaves_every_family_on_drop() {
        let c = counter_vec("gst_test_series_things_total", "Things.");
        let d = labelled_counter_vec("gst_test_series_moves_total", "Moves.", &["direction"]);
        let h = histogram_vec("gst_test_series_seconds", "Seconds.", vec![1.0]);
        let mut s = Series::new("p", "e", "s1");
        assert_eq!(s.labels(), ["p", "e", "s1"]);
        s.child(&c).inc_by(3);
        s.child_with(&d, &["up"]).inc();
        s.child(&h).observe(0.5);
        let text = render_local_text();
        assert!(text
            .contains(r#"gst_test_series_things_total{element="e",pipeline="p",stream="s1"} 3"#));
        assert!(text.contains(
            r#"gst_test_series_moves_total{direction="up",element="e",pipeline="p",stream="s1"} 1"#
        ));
        assert!(text
            .contains(r#"gst_test_series_seconds_count{element="e",pipeline="p",stream="s1"} 1"#));
        drop(s);
        let text = render_local_text();
        assert!(!text.contains(r#"stream="s1""#), "{text}");
    }

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
