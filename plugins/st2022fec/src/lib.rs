// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! gst-broadcast SMPTE ST 2022-1 FEC plugin: `st2022fecenc` and
//! `st2022fecdec` (to come) on top of [`fec`], the GStreamer-free core:
//! FEC header parsing, the XOR kernel, encoder and iterative
//! two-dimensional decoder.

use gst::glib;

pub mod fec;

fn plugin_init(_plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // GST_METRICS_ADDR / GST_METRICS_TEXTFILE_DIR start the process's metrics
    // endpoint or textfile writer (see the exporter crate).
    gstbroadcast_exporter::start_from_env();
    Ok(())
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
