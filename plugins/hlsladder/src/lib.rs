// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! gst-broadcast HLS plugin: `hlsladdersink`, a keyframe-aligned HLS sink for
//! one or more renditions (RFC 8216), with a purpose-built MPEG-TS packetizer.

use gst::glib;

pub mod codec;
mod hlsladdersink;
pub mod metrics;
pub mod output;
pub mod playlist;
pub mod segment;
pub mod segmenter;
pub mod storage;
pub mod ts;

pub use hlsladdersink::{HlsLadderSink, HlsLadderSinkPad, PlaylistType};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // GST_METRICS_ADDR / GST_METRICS_TEXTFILE_DIR start the process's metrics
    // endpoint or textfile writer (see the exporter crate).
    gstbroadcast_exporter::start_from_env();
    hlsladdersink::register(plugin)
}

gst::plugin_define!(
    hlsladder,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
