// SPDX-License-Identifier: MPL-2.0

//! # streammetrics
//!
//! A transparent, in-place probe for any stream (encoded or raw video,
//! audio, RTP). It never copies or holds a buffer and adds no latency.
//!
//! Per stream it counts frames, keyframes (buffers without `DELTA_UNIT`) and
//! bytes; measures the GOP interval (keyframe to keyframe, by PTS, in
//! seconds) and GOP length (frames) of encoded video; the RFC 3550 section
//! 6.4.1 interarrival jitter of buffer arrival (running time of the pipeline
//! clock) against the PTS, or against the RTP timestamp and clock-rate for
//! RTP, smoothed by 1/16; dropped frames (gaps in DTS/PTS against the frame
//! duration from caps or as measured, RTP sequence number gaps, and late QoS
//! events from downstream); and the bit rate over one-second windows.
//!
//! ## Example launch line
//! ```sh
//! gst-launch-1.0 videotestsrc is-live=true ! x264enc key-int-max=30 ! \
//!     streammetrics stream-name=video listen-address=127.0.0.1:9464 ! fakesink
//! ```
//! then `curl http://127.0.0.1:9464/metrics`.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `streammetrics` element.
    pub struct StreamMetrics(ObjectSubclass<imp::StreamMetrics>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `streammetrics` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "streammetrics",
        gst::Rank::NONE,
        StreamMetrics::static_type(),
    )
}
