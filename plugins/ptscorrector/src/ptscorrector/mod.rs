// SPDX-License-Identifier: MPL-2.0

//! # ptscorrector
//!
//! Repairs the timestamps of all the streams of one program together, so
//! that muxers, segmenters and players downstream see clean time. Each
//! `sink_%u` request pad gets a `src_%u` pad with the same number; buffers
//! keep their order and content, only PTS, DTS and the DISCONT flag change
//! (plus optional fill buffers and dropped duplicates).
//!
//! Repairs, in the order they apply to a buffer:
//! - **Wraps**: a step back of 2^33 ticks of 90 kHz (MPEG-TS PES, ISO/IEC
//!   13818-1 2.4.3.7: 95 443.7 s) or 2^32 ticks (RTP, RFC 3550 5.1:
//!   47 721.9 s), within `jump-threshold`, is unwrapped; any number of wraps
//!   per stream. PTS and DTS that wrap at different buffers are matched.
//! - **Jumps**: a reference timestamp (DTS for video when usable, else PTS)
//!   more than `jump-threshold` away from the expected one (previous plus
//!   its duration) is re-based to continue from the expected one, and the
//!   buffer gets DISCONT. The other streams follow the same shift when they
//!   meet the same jump (a jump of about the same size, within
//!   `jump-threshold`, within 5 s), so the A/V offset of the source is kept.
//! - **Missing PTS**: DTS plus the last PTS-DTS distance, or the previous PTS
//!   plus the frame duration (buffer duration, caps framerate, audio
//!   samples per frame, or the measured step).
//! - **Video DTS** that is missing, not increasing, or later than PTS: from
//!   that buffer on, the stream's DTS are rebuilt from its PTS through a
//!   lookahead of `max-reorder` frames: DTS = the smallest PTS still
//!   waiting minus `max-reorder` frame durations, never before the output
//!   segment's stream time 0, strictly increasing. Every video buffer waits
//!   in this lookahead, so the buffers before the first broken one that are
//!   still waiting are rebuilt too (a demuxer that sets DTS = PTS on a
//!   B-frame stream shows it only at the first B-frame). This is
//!   `max-reorder` frame durations of latency, reported in the latency
//!   query; `max-reorder=0` adds none and falls back to DTS = PTS.
//!   Timestamps the element has to make up are at least one 90 kHz tick
//!   (11 112 ns) apart, so they stay distinct in MPEG-TS.
//! - **Audio** (and any non-video stream) PTS must increase: a buffer behind
//!   the previous buffer's end is a duplicate (same PTS as a recent buffer)
//!   or an overlap, moved to the expected time.
//! - **Duplicates** (a PTS already sent): dropped, or with
//!   `duplicate-mode=pass` sent on with repaired timestamps.
//! - **Gaps** below `jump-threshold` (a step of more than 1.5 frames): sent
//!   on and counted, or with `gap-mode=fill` filled by repeating the
//!   previous buffer (audio, raw video, intra-only video) or by a GAP event
//!   (inter-coded video, which cannot be repeated).
//! - **Drift** (live input): the offset between PTS and arrival running time
//!   on the pipeline clock is tracked (the least delayed arrival per second,
//!   against the first second). When it moves more than `drift-tolerance`
//!   from the start, all streams are slewed together at most `max-slew` ppm
//!   until the offset is back within a quarter of the tolerance: never a
//!   jump.
//!
//! Every repair increments a `gst_ptscorrector_*_total` counter of the
//! process-wide metrics registry (labels pipeline, element, stream) and is
//! announced by an element message `ptscorrector-repair` with the fields
//! `kind` (string), `stream` (pad name), `before` and `after` (guint64 ns,
//! stream time of the input and the output, GST_CLOCK_TIME_NONE when
//! missing), `count` (this kind on this stream so far) and `suppressed`
//! (repairs of this kind not announced since the last message: after the
//! first, at most one message per kind and stream per second). Drift
//! messages carry `drift` (gint64 ns) and `slew-ppm` (gdouble) instead of
//! `before`/`after`.
//!
//! The element works in running time: the first TIME segment of each stream
//! is sent downstream, and later non-flushing segments (for example from
//! `concat`) are absorbed by converting timestamps to running time.
//!
//! ## Example launch line
//! ```sh
//! mkdir -p out && gst-launch-1.0 filesrc location=broken.ts ! tsdemux name=d \
//!     d. ! queue ! h264parse ! pc.sink_0 \
//!     d. ! queue ! aacparse ! pc.sink_1 \
//!     ptscorrector name=pc jump-threshold=500000000 \
//!     pc.src_0 ! queue ! s.video_0 \
//!     pc.src_1 ! queue ! s.audio_0 \
//!     hlsladdersink name=s output-directory=out
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `ptscorrector` element.
    pub struct PtsCorrector(ObjectSubclass<imp::PtsCorrector>) @extends gst::Element, gst::Object;
}

/// `drift-correction` property values.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstPtsCorrectorDriftCorrection")]
pub enum DriftCorrection {
    /// On when upstream answers the latency query as live.
    #[default]
    #[enum_value(name = "Auto: on when upstream is live", nick = "auto")]
    Auto = 0,
    /// Never slew.
    #[enum_value(name = "Off: never slew", nick = "off")]
    Off = 1,
    /// Always measure against the pipeline clock and slew.
    #[enum_value(name = "On: always measure and slew", nick = "on")]
    On = 2,
}

/// `gap-mode` property values.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstPtsCorrectorGapMode")]
pub enum GapMode {
    /// Send on and count.
    #[default]
    #[enum_value(name = "Pass: count gaps, send on", nick = "pass")]
    Pass = 0,
    /// Repeat the previous buffer into the gap (a GAP event for
    /// inter-coded video).
    #[enum_value(
        name = "Fill: repeat the previous buffer (GAP event for inter-coded video)",
        nick = "fill"
    )]
    Fill = 1,
}

/// `duplicate-mode` property values.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstPtsCorrectorDuplicateMode")]
pub enum DuplicateMode {
    /// Drop a buffer whose PTS was already sent.
    #[default]
    #[enum_value(name = "Drop: drop duplicates", nick = "drop")]
    Drop = 0,
    /// Send it on with repaired (increasing) timestamps.
    #[enum_value(name = "Pass: send on with repaired timestamps", nick = "pass")]
    Pass = 1,
}

/// Registers `ptscorrector` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "ptscorrector",
        gst::Rank::NONE,
        PtsCorrector::static_type(),
    )
}
