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
//! It is a plain element with one always `sink` and one always `src` pad,
//! not a `GstBaseTransform`: each buffer is accounted and pushed on
//! unchanged in the streaming thread; events pass through in both
//! directions and queries go to the peer of the other pad, so caps and
//! allocation are negotiated as if the element were not there. It works in
//! push mode only (the scheduling query is not forwarded, so downstream
//! does not pull through it). A buffer before caps is refused with
//! `not-negotiated`.
//!
//! The counters and gauges are exported as `gst_stream_*` families of the
//! process-wide Prometheus registry, with the labels `pipeline` (top-level
//! bin), `element` (this element's name) and `stream` (`stream-name`, by
//! default `video`, `audio`, `rtp` or `data` from the caps). The series of
//! a stream appear at its first caps and leave the registry at EOS and when
//! the element goes from PAUSED to READY, which also resets the `stats`
//! property.
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
    pub struct StreamMetrics(ObjectSubclass<imp::StreamMetrics>) @extends gst::Element, gst::Object;
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
