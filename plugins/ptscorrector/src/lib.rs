// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! gst-broadcast timestamp repair plugin: `ptscorrector`, which repairs the
//! PTS/DTS of all streams of a program together (missing timestamps,
//! non-monotonic DTS, jumps, 33- and 32-bit wraps, drift against the
//! pipeline clock, gaps and duplicates) and keeps their A/V offset.

use gst::glib;

pub mod core;
mod ptscorrector;

pub use ptscorrector::PtsCorrector;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // GST_METRICS_ADDR / GST_METRICS_TEXTFILE_DIR start the process's metrics
    // endpoint or textfile writer (see the exporter crate).
    gstbroadcast_exporter::start_from_env();
    ptscorrector::register(plugin)
}

gst::plugin_define!(
    ptscorrector,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
