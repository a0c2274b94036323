// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! gst-broadcast stream metrics plugin: `streammetrics`, a transparent probe
//! that measures frames, keyframes, bytes, GOP interval and length, RFC 3550
//! interarrival jitter, dropped frames and bit rate of one stream, and
//! exports them through the process-wide Prometheus registry.

use gst::glib;

mod streammetrics;

pub use streammetrics::StreamMetrics;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // GST_METRICS_ADDR / GST_METRICS_TEXTFILE_DIR start the process's metrics
    // endpoint or textfile writer (see the exporter crate).
    gstbroadcast_exporter::start_from_env();
    streammetrics::register(plugin)
}

gst::plugin_define!(
    streammetrics,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
