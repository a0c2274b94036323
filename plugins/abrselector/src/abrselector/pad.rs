// SPDX-License-Identifier: MPL-2.0

//! The `sink_%u` pad subclass (its `bitrate` and `stats` properties) and
//! the element's state of each rendition.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::metrics::PadSeries;
use crate::nal::{Codec, ParamSetCache};
use crate::rendition::RenditionClock;
use gstbroadcast_common::SegmentMap;

/// The `sink_%u` pad.
#[derive(Default)]
pub struct AbrSelectorSinkPad {
    /// `bitrate` property, bits/s (0 = from tags or measured).
    pub(super) bitrate: AtomicU64,
}

#[glib::object_subclass]
impl ObjectSubclass for AbrSelectorSinkPad {
    const NAME: &'static str = "GstAbrSelectorSinkPad";
    type Type = super::AbrSelectorSinkPad;
    type ParentType = gst::Pad;
}

impl ObjectImpl for AbrSelectorSinkPad {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt64::builder("bitrate")
                    .nick("Bitrate")
                    .blurb(
                        "Nominal bit rate of this rendition, in bits/s (0 = from its \
                         nominal-bitrate, bitrate or maximum-bitrate tag, else measured over \
                         the last 3 s of PTS)",
                    )
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "selected, bitrate (bits/s, as used), bitrate-source (property, tag, \
                         measured, unknown), measured-bitrate, tag-bitrate, buffers, bytes, \
                         forwarded, dropped, late, keyframes, parameter-sets-inserted, \
                         parameter-sets-cached, unparseable, keyframe-timeouts, \
                         rejected-caps, eos",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "bitrate" => self
                .bitrate
                .store(value.get().expect("type checked"), Ordering::Relaxed),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "bitrate" => self.bitrate.load(Ordering::Relaxed).to_value(),
            "stats" => {
                let obj = self.obj();
                let name = obj.name();
                obj.parent()
                    .and_downcast::<super::AbrSelector>()
                    .and_then(|e| e.imp().pad_stats(&name))
                    .unwrap_or_else(|| gst::Structure::new_empty(name.as_str()))
                    .to_value()
            }
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for AbrSelectorSinkPad {}

impl PadImpl for AbrSelectorSinkPad {}

/// Per-pad counters (the `stats` property of the pad).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PadStats {
    pub(super) buffers: u64,
    pub(super) bytes: u64,
    pub(super) forwarded: u64,
    pub(super) dropped: u64,
    pub(super) keyframes: u64,
    pub(super) inserted: u64,
    pub(super) unparseable: u64,
    pub(super) late: u64,
    pub(super) keyframe_timeouts: u64,
    pub(super) rejected_caps: u64,
}

/// One rendition.
pub(super) struct PadState {
    pub(super) pad: super::AbrSelectorSinkPad,
    pub(super) name: String,
    pub(super) codec: Option<Codec>,
    pub(super) caps: Option<gst::Caps>,
    pub(super) segment: Option<SegmentMap>,
    pub(super) stream_start: Option<gst::Event>,
    pub(super) stream_tags: Option<gst::Event>,
    pub(super) tag_bitrate: Option<u64>,
    pub(super) params: ParamSetCache,
    /// Measured bit rate and keyframe cadence.
    pub(super) clock: RenditionClock,
    pub(super) last_rt: Option<i64>,
    /// Running time of the last keyframe, or of the first buffer.
    pub(super) key_ref: Option<i64>,
    pub(super) eos: bool,
    pub(super) flushing: bool,
    pub(super) warned_unparseable: bool,
    pub(super) warned_keyframe: bool,
    /// Caps already warned about.
    pub(super) warned_caps: Vec<String>,
    pub(super) stats: PadStats,
    pub(super) series: Option<PadSeries>,
}

impl PadState {
    pub(super) fn new(pad: super::AbrSelectorSinkPad) -> Self {
        PadState {
            name: pad.name().to_string(),
            pad,
            codec: None,
            caps: None,
            segment: None,
            stream_start: None,
            stream_tags: None,
            tag_bitrate: None,
            params: ParamSetCache::default(),
            clock: RenditionClock::new(),
            last_rt: None,
            key_ref: None,
            eos: false,
            flushing: false,
            warned_unparseable: false,
            warned_keyframe: false,
            warned_caps: Vec::new(),
            stats: PadStats::default(),
            series: None,
        }
    }

    /// Forgets the stream (not the settings, caps or parameter sets).
    pub(super) fn reset_stream(&mut self) {
        self.segment = None;
        self.clock.reset();
        self.last_rt = None;
        self.key_ref = None;
        self.eos = false;
        self.warned_keyframe = false;
    }

    pub(super) fn measured(&self) -> Option<u64> {
        self.clock.measured()
    }

    /// Effective nominal bit rate and where it comes from.
    pub(super) fn bitrate(&self) -> Option<(u64, &'static str)> {
        let prop = self.pad.imp().bitrate.load(Ordering::Relaxed);
        if prop > 0 {
            return Some((prop, "property"));
        }
        if let Some(t) = self.tag_bitrate.filter(|b| *b > 0) {
            return Some((t, "tag"));
        }
        self.measured().map(|m| (m, "measured"))
    }

    /// The `stats` structure of this pad; `selected`: it is the one
    /// going out.
    pub(super) fn structure(&self, selected: bool) -> gst::Structure {
        let (bitrate, source) = self.bitrate().unwrap_or((0, "unknown"));
        let c = &self.stats;
        gst::Structure::builder(self.name.as_str())
            .field("selected", selected)
            .field("bitrate", bitrate)
            .field("bitrate-source", source)
            .field("measured-bitrate", self.measured().unwrap_or(0))
            .field("tag-bitrate", self.tag_bitrate.unwrap_or(0))
            .field("buffers", c.buffers)
            .field("bytes", c.bytes)
            .field("forwarded", c.forwarded)
            .field("dropped", c.dropped)
            .field("late", c.late)
            .field("keyframes", c.keyframes)
            .field("parameter-sets-inserted", c.inserted)
            .field(
                "parameter-sets-cached",
                self.codec.is_some_and(|k| self.params.complete(k)),
            )
            .field("unparseable", c.unparseable)
            .field("keyframe-timeouts", c.keyframe_timeouts)
            .field("rejected-caps", c.rejected_caps)
            .field("eos", self.eos)
            .build()
    }
}
