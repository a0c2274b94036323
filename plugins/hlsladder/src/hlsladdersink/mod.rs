// SPDX-License-Identifier: MPL-2.0

//! # hlsladdersink
//!
//! Keyframe-aligned HLS (RFC 8216) sink for one or more renditions.
//!
//! Every `video_%u` request pad is one variant; every `audio_%u` pad is muxed
//! into each variant's segments. Segments start at a keyframe carrying its
//! parameter sets, all variants are cut at the same PTS, and every segment and
//! playlist is written under a temporary name and renamed into place.
//!
//! ## Example launch line
//! ```sh
//! gst-launch-1.0 -e videotestsrc is-live=true ! video/x-raw,width=1280,height=720,framerate=30/1 ! \
//!     tee name=t \
//!   t. ! queue ! x264enc bitrate=3000 key-int-max=60 tune=zerolatency ! h264parse ! s.video_0 \
//!   t. ! queue ! videoscale ! video/x-raw,width=640,height=360 ! \
//!     x264enc bitrate=800 key-int-max=60 tune=zerolatency ! h264parse ! s.video_1 \
//!   audiotestsrc is-live=true ! avenc_aac ! aacparse ! s.audio_0 \
//!   hlsladdersink name=s output-directory=/tmp/hls target-duration=6
//! ```
//! This writes `/tmp/hls/index.m3u8` (multivariant), and `v0/index.m3u8`,
//! `v0/segment00000.ts`, … per variant.
//!
//! ## Segmenting policy
//! A segment is cut at the first keyframe of the reference variant (the first
//! video pad) at or after `target-duration` from the segment start. As soon as
//! a segment start is known, every encoder upstream is asked for keyframes on
//! the grid `start + k * target-duration` up to max(3 x target, 10 s) ahead
//! (force-key-unit events with all headers), never at a time the encoder may
//! already have passed and never before it delivered its first frame, so the
//! cuts do not depend on the encoders' relative speed. When the reference
//! stream has run past `target-duration` + 0.5 s with no keyframe since, the
//! segment is instead cut at the last keyframe inside it, if there is one, so
//! that the rounded EXTINF stays at most EXT-X-TARGETDURATION (RFC 8216
//! 4.3.3.1). With no keyframe at all the element never cuts without one: the
//! segment overruns, a warning message is posted and
//! `gst_hls_target_duration_overruns_total` counts it. Other variants cut at
//! their keyframe with the same PTS (within half a frame); a variant without
//! one cuts at its next keyframe, with one warning per variant and
//! `gst_hls_keyframe_misalignments_total` for each such cut.
//!
//! Playlists carry `EXT-X-DISCONTINUITY-SEQUENCE` (also at 0) and, with
//! `program-date-time`, `EXT-X-PROGRAM-DATE-TIME` on the first segment and
//! after each discontinuity. A missing `output-directory` is created.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `hlsladdersink` element.
    pub struct HlsLadderSink(ObjectSubclass<imp::HlsLadderSink>) @extends gst::Element, gst::Object;
}

glib::wrapper! {
    /// Request sink pad of `hlsladdersink`, with the `variant-name` property.
    pub struct HlsLadderSinkPad(ObjectSubclass<imp::HlsLadderSinkPad>) @extends gst::Pad, gst::Object;
}

/// `playlist-type` property values (RFC 8216 section 4.3.3.5).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstHlsLadderPlaylistType")]
pub enum PlaylistType {
    /// Sliding window of `playlist-length` segments, no EXT-X-PLAYLIST-TYPE.
    #[default]
    #[enum_value(
        name = "Live: sliding window of playlist-length segments",
        nick = "live"
    )]
    Live = 0,
    /// EXT-X-PLAYLIST-TYPE:EVENT, segments are only appended.
    #[enum_value(name = "Event: segments are only appended", nick = "event")]
    Event = 1,
    /// EXT-X-PLAYLIST-TYPE:VOD, playlists written once, complete, at EOS.
    #[enum_value(name = "VOD: playlists written once at EOS", nick = "vod")]
    Vod = 2,
}

/// Registers `hlsladdersink` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    PlaylistType::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    HlsLadderSinkPad::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "hlsladdersink",
        gst::Rank::NONE,
        HlsLadderSink::static_type(),
    )
}
