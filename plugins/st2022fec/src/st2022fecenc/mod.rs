// SPDX-License-Identifier: MPL-2.0

//! # st2022fecenc
//!
//! SMPTE ST 2022-1 (Pro-MPEG Code of Practice 3) FEC encoder for an RTP
//! media stream, usually MPEG-TS from `rtpmp2tpay`. The media leaves on
//! `src` unchanged (the very same buffers); the FEC packets leave on two
//! more source pads, always present:
//!
//! - `fec_0`: column FEC (the `D` bit 0), one packet per column of the
//!   L x D matrix, protecting D packets L apart. Usually sent to port
//!   P+2 when the media goes to port P.
//! - `fec_1`: row FEC (`D` bit 1), one packet per row of L consecutive
//!   packets. Usually sent to port P+4.
//!
//! These are the pad names of GStreamer's `rtpst2022-1-fecenc`, so the
//! element also fits `rtpbin fec-encoders` recipes. A FEC pad left unlinked
//! is harmless: its packets are dropped and the media flows on.
//!
//! Packets are numbered into L x D matrices in arrival order, row by row.
//! A row FEC packet leaves right after the last media packet of its row.
//! A column FEC packet leaves, with `column-layout=staggered` (the
//! default, what FFmpeg's `prompeg` and GStreamer's `rtpst2022-1-fecenc`
//! do), after packet `c x D` of the *next* matrix for column `c`, so that a
//! loss burst does not take out media and its column FEC together; with
//! `column-layout=block-aligned` it leaves as soon as its column is
//! complete, which lets a receiver recover one matrix sooner. The FEC
//! packets carry the PTS/DTS of the media buffer they follow. The element
//! keeps a reference to the last four FEC buffers sent on each pad and
//! fills one again once downstream has released it, so downstream gets FEC
//! buffers it cannot write in place (an element that must change one
//! copies it, as for any shared buffer). The FEC is
//! computed over each media packet from byte 12 on (CSRCs, extension,
//! payload, padding), so any RTP payload can be protected.
//!
//! ST 2022-1 limits, checked when the element goes from READY to PAUSED
//! (an element error names the values): `columns` (L) 1 to 20, `rows` (D)
//! 4 to 20, L x D at most 100, and L at least 4 when row FEC is enabled.
//! The overhead is (L + D) / (L x D) with both directions, 1 / L for column
//! FEC only ("1D"). The media input must have consecutive sequence numbers
//! and one SSRC; a gap or an SSRC change starts a new matrix (counted). A
//! buffer that is not RTP is passed on untouched, without FEC, with a
//! warning and a counter.
//!
//! Counters in the process-wide metrics registry (labels `pipeline`,
//! `element`, `stream`): `gst_st2022fec_media_packets_total` (stream
//! `media`), `gst_st2022fec_fec_packets_total` (streams `column` and
//! `row`), `gst_st2022fec_malformed_total` (stream `media`: input that is
//! not RTP) and `gst_st2022fec_discontinuities_total` (stream `media`:
//! matrices restarted by a sequence gap or SSRC change). The read-only
//! `stats` property has the same counts.
//!
//! ## Example launch line
//!
//! Sender, MPEG-TS over RTP on port 5000 with column FEC on 5002 and row
//! FEC on 5004:
//!
//! ```sh
//! gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency key-int-max=60 ! \
//!     mpegtsmux ! rtpmp2tpay ! st2022fecenc name=enc columns=10 rows=10 \
//!     enc.src ! udpsink host=127.0.0.1 port=5000 \
//!     enc.fec_0 ! udpsink host=127.0.0.1 port=5002 \
//!     enc.fec_1 ! udpsink host=127.0.0.1 port=5004
//! ```
//!
//! The sinks of the FEC branches get a GAP event at the first media
//! timestamp to preroll on (their first packet comes L or more media
//! packets later, while the media sink holds the streaming thread once it
//! has prerolled), so they need neither `async=false` nor queues. See
//! `st2022fecdec` for the receiver.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `st2022fecenc` element.
    pub struct St2022FecEnc(ObjectSubclass<imp::St2022FecEnc>) @extends gst::Element, gst::Object;
}

/// `column-layout` property values: when column FEC packets are sent.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSt2022FecColumnLayout")]
pub enum ColumnLayout {
    /// Each column packet as soon as its column is complete.
    #[enum_value(
        name = "Block aligned: each column packet when its column is complete (lowest latency)",
        nick = "block-aligned"
    )]
    BlockAligned = 0,
    /// Column `c` after packet `c x D` of the next matrix.
    #[default]
    #[enum_value(
        name = "Staggered: column c after packet c x D of the next matrix (FFmpeg, GStreamer; burst resistant)",
        nick = "staggered"
    )]
    Staggered = 1,
}

impl From<ColumnLayout> for crate::fec::ColumnLayout {
    fn from(l: ColumnLayout) -> Self {
        match l {
            ColumnLayout::BlockAligned => crate::fec::ColumnLayout::BlockAligned,
            ColumnLayout::Staggered => crate::fec::ColumnLayout::Staggered,
        }
    }
}

/// Registers `st2022fecenc` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "st2022fecenc",
        gst::Rank::NONE,
        St2022FecEnc::static_type(),
    )
}
