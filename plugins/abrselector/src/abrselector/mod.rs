// SPDX-License-Identifier: MPL-2.0

//! # abrselector
//!
//! Forwards one of N encoded renditions of the same content (an ABR
//! ladder) and changes rendition as a bandwidth estimate changes, for
//! constrained egress: contribution links, SRT/RIST/TCP outputs,
//! per-client forwarding. Unlike `input-selector`, which switches anywhere
//! and leaves the decoder broken until the next IDR, `abrselector` switches
//! only on a keyframe of the target rendition that carries its parameter
//! sets, so the output decodes without error across switches.
//!
//! ## Pads
//! - `sink_%u` (request, [`AbrSelectorSinkPad`]): one rendition each,
//!   `video/x-h264` or `video/x-h265`, `stream-format=byte-stream`,
//!   `alignment=au`. The usual recipe upstream is `h264parse
//!   config-interval=-1` (`h265parse config-interval=-1`), which gives
//!   Annex B access units and repeats SPS/PPS (VPS) at every IDR. All
//!   renditions must share running time (for example a `tee` before the
//!   encoders). Without B-frames (or with closed GOPs) the output
//!   timestamps strictly increase; the switch instant compares DTS (PTS
//!   when there is no DTS).
//! - `src`: the selected rendition, one continuous stream.
//!
//! A rendition's nominal bit rate is, in this order: the pad's `bitrate`
//! property; its `nominal-bitrate`, `bitrate` or `maximum-bitrate` tag;
//! else measured from its bytes over the PTS span of the last 3 s (known
//! after 1 s). A rendition whose bit rate is not known yet is not chosen
//! by the policy.
//!
//! ## Switching
//! Keyframes are found by parsing the Annex B start codes: H.264 IDR (NAL
//! type 5), SPS 7, PPS 8; H.265 IRAP (16..=21), VPS 32, SPS 33, PPS 34.
//! Each rendition's latest parameter sets are cached. A switch lands on an
//! IDR/IRAP of the target; when that access unit lacks parameter sets, the
//! cached ones are inserted after its access unit delimiter (counted as
//! `parameter-sets-inserted`); with none cached, the switch waits for the
//! next keyframe. The output `DELTA_UNIT` flag follows the parse (clear on
//! keyframes, set on other access units) and the first buffer after a
//! switch has `DISCONT`.
//!
//! Renditions arrive on their own streaming threads, so a switch happens at
//! one instant `T`, the running time of the target's keyframe: the old
//! rendition forwards its buffers before `T` and drops the rest; the
//! target's buffers from `T` on wait in a queue until the old rendition
//! reaches `T` (or ends, or is released, or falls 2 s of running time
//! behind), then go out. If the output has already passed `T`, the switch
//! waits for the target's next keyframe. So that this does not repeat when
//! the target's buffers always come a little later than the selected
//! one's (a slower encoder, another thread, or the same thread pushing it
//! second), the selected rendition holds its buffers from the target's
//! predicted next keyframe (its last keyframe plus the largest of its last
//! three keyframe intervals) until the target shows that running time: a
//! keyframe there takes over and the held buffers at or after it are
//! dropped; anything else sends them on (a few frames of delay, no loss;
//! after 1 s of running time held, that switch stops predicting).
//! No chain function ever waits for another rendition: the selected one
//! blocks only on downstream, the others return at once.
//!
//! The output is one stream: one stream-start, one TIME segment (the first
//! selected rendition's; every buffer's running time is converted into it),
//! new caps when the selected rendition's caps differ (for example another
//! resolution) together with that rendition's stream tags. Global tags of
//! the selected rendition are forwarded. EOS goes out when the selected
//! rendition ends (a switch already under way completes first); the other
//! renditions' EOS is absorbed. A flush on the selected rendition is
//! forwarded and starts a new output segment; seeks go to every rendition.
//!
//! ## Bandwidth estimate
//! Estimate samples come from:
//! - the `bandwidth-estimate` property (bits/s, changeable in PLAYING;
//!   0 stops this source), for applications that know the link: an
//!   estimate that arrives as a bus message (srtsink or ristsink
//!   statistics, a client report) is set here from the bus handler, as an
//!   element cannot read the bus. A value set is *the* estimate from then
//!   on: the averages start over at it (they do not keep an older value
//!   that would allow an upswitch above it), push timing is ignored while
//!   the property is non-zero (in every `estimator` mode), and the queue
//!   model stays off until an event brings a measurement;
//! - a custom event `abr-bandwidth-estimate` with a `bitrate` field
//!   (`guint64` bits/s; other integer types and doubles accepted), either
//!   upstream on `src` (`gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM,
//!   ...)`, for example from a sink or a pad probe that measures the link)
//!   or downstream on any `sink_%u` (serialized, out-of-band or both);
//! - the built-in push-timing estimator (`estimator=push-timing` or
//!   `auto`): the time `gst_pad_push` on `src` takes is measured over a
//!   sliding 1 s window of wall time. When the pushes block (at least half
//!   of the window inside push: the sink applies back-pressure, as a
//!   tcpserversink or srtsink with a full send buffer does) and the output
//!   falls behind media time (or runs ahead of it, for a source faster than
//!   real time), throughput = bytes / wall time of the window is a sample.
//!   When the pushes do not block, or block at media pace (a sink
//!   synchronising to the clock), the link carries the selected rendition:
//!   the estimate is raised to at least its rate (measured, or nominal if
//!   higher) divided by `safety-factor`, so that it stays, but never pulled
//!   down. Push timing therefore sees capacity above the selected
//!   rendition only while the sink blocks while running ahead of media
//!   time; to climb back after congestion on a live link, give explicit
//!   estimates too.
//!
//! All sources feed one estimator; the latest sample holds until the next.
//! Push timing is ignored while `bandwidth-estimate` is non-zero and, with
//! `estimator=auto`, within 10 s of running time of an event.
//!
//! ## Policy
//! Switches act on the estimate `E`: the latest sample (a receiver report
//! describes what the link carried since the previous one; a property
//! value is the application's statement of the link). Fast and slow
//! exponentially weighted moving averages of the samples, weighted by the
//! running time each held (half-lives `fast-half-life`, default 2 s, and
//! `slow-half-life`, default 8 s), are reported in `stats`; after the
//! property is set back to 0 (no source left) the fast average, frozen, is
//! `E`.
//!
//! A queue model follows the link: what the element sends (bits at their
//! running time) against the estimate, each new sample re-draining the
//! interval since the previous one at its own rate. A rendition *fits the
//! queue* over `h` s when the modelled queue delay after sending it for
//! `h` s at `E` stays within `max-queue-delay` (default 1 s, 0 turns it
//! off; set it below the receiver's buffer). The queue rules apply only
//! while estimate samples keep coming (the latest at most max(2 s, 2 x
//! `min-switch-interval`) old) and never on a property value: nothing
//! would correct the model. With renditions sorted by bit rate:
//! - downswitch, at the target's next keyframe, when the current
//!   rendition's bit rate > `safety-factor` x `E` and it does not fit the
//!   queue over the next second, to the highest lower rendition that is
//!   under `safety-factor` x `E` or fits the queue over a second (the
//!   lowest if none);
//! - upswitch, never within `min-switch-interval` (default 2 s) of the last
//!   switch and never to a rendition above `E` (under a constant estimate
//!   it would fill the queue and come down again), to the highest
//!   rendition that qualifies: at once when bit rate x `up-factor` <= `E`
//!   (headroom); otherwise when the next higher rendition has been under
//!   `safety-factor` x `E`, or fitted the queue over 2 x
//!   `min-switch-interval`, continuously for `min-switch-interval`
//!   (counted from the start of the interval the latest sample covers);
//! - the first selection: the highest rendition under `safety-factor` x
//!   `E`, or the highest of all without an estimate (until bit rates are
//!   known, the first rendition with a usable keyframe).
//!
//! So a constant estimate gives at most one upswitch after the first
//! selection and never a downswitch. The queue budget lets a rendition
//! above a lower estimate run on the receiver's buffer for a while and
//! forces a downswitch when the backlog grows too long. On the 22 traces
//! of `tests/tests/abr_traces.rs` mean QoE is 160.5 against 147.8 for a
//! plain 0.9 x throughput rule, no trace below the rule's, with 0.82 s of
//! stall per 90 s trace (0.79 for the rule).
//!
//! With `force-key-unit=true`, a decided switch sends an upstream
//! `GstForceKeyUnit` event (`all-headers=true`) on the target's pad, so its
//! encoder makes an IDR sooner than its GOP would.
//!
//! ## Messages and metrics
//! Every switch (including the first selection) posts an element message
//! `abr-switch` with `from` (pad name, NULL for the first), `to`,
//! `from-bitrate` and `to-bitrate` (guint64 bits/s, 0 unknown), `reason`
//! ("initial", "down", "up"), `estimate` (guint64 bits/s, the estimate `E`
//! the switch was decided on; 0 none) and `running-time` (guint64 ns, the
//! switch instant `T`), and notifies `current`.
//!
//! Metrics in the process-wide registry (labels `pipeline`, `element`,
//! `stream`): `gst_abrselector_switches_total` (extra label `direction`,
//! `up` or `down`, stream `src`), `gst_abrselector_current_rendition`
//! (sink pad number, -1 none, stream `src`),
//! `gst_abrselector_bandwidth_estimate_bits_per_second` (stream `src`),
//! and per sink pad `gst_abrselector_buffers_forwarded_total`,
//! `gst_abrselector_buffers_dropped_total`,
//! `gst_abrselector_parameter_sets_inserted_total`,
//! `gst_abrselector_rendition_bitrate_bits_per_second`,
//! `gst_abrselector_unparseable_buffers_total` (not Annex B),
//! `gst_abrselector_keyframe_timeouts_total` (no keyframe for 10 s of
//! running time) and `gst_abrselector_rejected_caps_total`. Bad input gets
//! a warning message (once per pad and kind) and a counter, never a panic.
//!
//! ## Example launch line
//! ```sh
//! gst-launch-1.0 -e videotestsrc is-live=true num-buffers=900 ! \
//!     video/x-raw,width=1280,height=720,framerate=30/1 ! tee name=t \
//!   t. ! queue ! videoscale ! video/x-raw,width=640,height=360 ! \
//!     x264enc bitrate=800 key-int-max=30 tune=zerolatency ! \
//!     h264parse config-interval=-1 ! abr.sink_0 \
//!   t. ! queue ! videoscale ! video/x-raw,width=960,height=540 ! \
//!     x264enc bitrate=2000 key-int-max=30 tune=zerolatency ! \
//!     h264parse config-interval=-1 ! abr.sink_1 \
//!   t. ! queue ! x264enc bitrate=4000 key-int-max=30 tune=zerolatency ! \
//!     h264parse config-interval=-1 ! abr.sink_2 \
//!   abrselector name=abr bandwidth-estimate=2500000 force-key-unit=true \
//!     sink_0::bitrate=800000 sink_1::bitrate=2000000 sink_2::bitrate=4000000 ! \
//!     h264parse ! mpegtsmux ! filesink location=abr.ts
//! ```
//! Change `bandwidth-estimate` from the application (or send
//! `abr-bandwidth-estimate` events) to watch `abr-switch` messages; over a
//! blocking network sink (`... ! mpegtsmux ! srtsink uri=srt://host:port`)
//! the default `estimator=auto` measures the link by itself.

use gst::glib;
use gst::prelude::*;

mod caps;
mod imp;
mod metrics;
mod output;
mod pad;
mod settings;

glib::wrapper! {
    /// The `abrselector` element.
    pub struct AbrSelector(ObjectSubclass<imp::AbrSelector>) @extends gst::Element, gst::Object, @implements gst::ChildProxy;
}

glib::wrapper! {
    /// A `sink_%u` pad of `abrselector`: one rendition, with its `bitrate`
    /// property (bits/s, 0 = from tags or measured) and read-only `stats`.
    pub struct AbrSelectorSinkPad(ObjectSubclass<pad::AbrSelectorSinkPad>) @extends gst::Pad, gst::Object;
}

/// `estimator` property values: where estimates come from besides the
/// property and events.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstAbrSelectorEstimator")]
pub enum EstimatorMode {
    /// Only the `bandwidth-estimate` property and `abr-bandwidth-estimate`
    /// events.
    #[enum_value(name = "None: only the property and events", nick = "none")]
    None = 0,
    /// Push timing feeds the estimator next to events, while the property
    /// is 0.
    #[enum_value(
        name = "Push timing: measure the link from blocking pushes, with events, unless the property is set",
        nick = "push-timing"
    )]
    PushTiming = 1,
    /// Push timing while no explicit estimate is given (property 0 and no
    /// event for 10 s).
    #[default]
    #[enum_value(
        name = "Auto: push timing unless the property or an event gives estimates",
        nick = "auto"
    )]
    Auto = 2,
}

/// Registers `abrselector` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "abrselector",
        gst::Rank::NONE,
        AbrSelector::static_type(),
    )
}
