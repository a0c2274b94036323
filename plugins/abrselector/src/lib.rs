// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! gst-broadcast rendition selector plugin: `abrselector`, which forwards one
//! of N encoded H.264/H.265 renditions of the same content, picked by a
//! bandwidth estimate, and switches only on a keyframe of the target that
//! carries its parameter sets.
//!
//! The policy (bandwidth estimator and switching decisions, [`policy`]),
//! the switch state machine ([`switch`]), a rendition's measured rate and
//! keyframe cadence ([`rendition`]) and the Annex B access-unit inspection
//! ([`nal`]) do not depend on GStreamer, so they can be unit-tested and
//! driven by a trace-driven simulation.

use gst::glib;

mod abrselector;
pub mod nal;
pub mod policy;
pub mod rendition;
pub mod switch;

pub use abrselector::{AbrSelector, AbrSelectorSinkPad, EstimatorMode};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // GST_METRICS_ADDR / GST_METRICS_TEXTFILE_DIR start the process's metrics
    // endpoint or textfile writer (see the exporter crate).
    gstbroadcast_exporter::start_from_env();
    abrselector::register(plugin)
}

gst::plugin_define!(
    abrselector,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
