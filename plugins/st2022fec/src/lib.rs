// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! gst-broadcast SMPTE ST 2022-1 FEC plugin: `st2022fecenc` (media in,
//! media plus column and row FEC out) and `st2022fecdec` (media and FEC in,
//! media with lost packets rebuilt out, in order, within a bounded
//! latency), on top of [`fec`], the GStreamer-free core: FEC header
//! parsing, the XOR kernel, encoder and iterative two-dimensional decoder.

use gst::glib;

pub mod fec;
mod st2022fecdec;
mod st2022fecenc;

pub use st2022fecdec::St2022FecDec;
pub use st2022fecenc::{ColumnLayout, St2022FecEnc};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // GST_METRICS_ADDR / GST_METRICS_TEXTFILE_DIR start the process's metrics
    // endpoint or textfile writer (see the exporter crate).
    gstbroadcast_exporter::start_from_env();
    st2022fecenc::register(plugin)?;
    st2022fecdec::register(plugin)
}

gst::plugin_define!(
    st2022fec,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
