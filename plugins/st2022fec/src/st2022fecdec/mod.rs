// SPDX-License-Identifier: MPL-2.0

//! # st2022fecdec
//!
//! SMPTE ST 2022-1 (Pro-MPEG Code of Practice 3) FEC decoder: the RTP media
//! stream on `sink`, its FEC streams on request pads `fec_%u`, the media in
//! sequence-number order on `src`, with the packets FEC could rebuild put
//! back in their place, byte-identical to what was sent.
//!
//! - `sink`: the media (port P), any RTP payload, as sent by
//!   `st2022fecenc`, FFmpeg's `prompeg` or GStreamer's `rtpst2022-1-fecenc`.
//! - `fec_%u`: one pad per FEC stream, usually `fec_0` for the column FEC
//!   (port P+2) and `fec_1` for the row FEC (port P+4). Each packet is
//!   routed by the `D` bit of its FEC header, not by the pad it came in
//!   on, so the pad numbering does not matter and one pad may carry both.
//! - `src`: the media with the caps of `sink`.
//!
//! The decoder needs no matrix settings: it learns L (columns) and D (rows)
//! from the FEC headers and follows any change. Recovery is iterative in
//! both dimensions (a packet rebuilt from its row can complete a column
//! and the other way round) and recovers everything the code allows.
//!
//! Output is in sequence order within a bounded latency. A packet that is
//! present leaves as soon as everything before it has left. A missing
//! packet holds the ones after it until FEC rebuilds it or it is given up,
//! whichever comes first of `latency` (ms after the decoder learned that
//! the packet was missing, on the pipeline clock; also released when the
//! input stops) and `latency-matrices` L x D matrices of newer media
//! having arrived. A packet given up is counted as unrecoverable and
//! nothing is sent in its place: the gap stays visible in the sequence
//! numbers for a jitterbuffer or depayloader downstream. The latency query
//! adds `latency`. Output starts one latency period after the first packet,
//! so that packets reordered before it are not lost.
//!
//! Media buffers leave as they came (no copy, same timestamps). A rebuilt
//! packet is a new buffer with the PTS and DTS of the buffer sent before
//! it (the next one's at the very start). Duplicates are dropped, packets
//! that arrive after their place in the output are counted as late and
//! used only to help recover their neighbours. Malformed packets (media
//! that is not RTP, FEC packets that fail the ST 2022-1 checks) are
//! counted and ignored, with one warning message per pad kind. EOS,
//! stream-start, caps and segment events send what is held (missing
//! packets given up) before them; other serialized events (tags, custom
//! events) wait while packets received before them are held, and follow
//! them out, also after packets earlier in sequence that arrive after them
//! during the first latency period. A flush forgets what is held, except
//! sticky events.
//!
//! Counters in the process-wide metrics registry (labels `pipeline`,
//! `element`, `stream`; stream `media` unless noted):
//! `gst_st2022fec_media_received_total` (sent on as received),
//! `gst_st2022fec_recovered_total`, `gst_st2022fec_unrecoverable_total`,
//! `gst_st2022fec_late_total`, `gst_st2022fec_duplicates_total`,
//! `gst_st2022fec_malformed_total` (streams `media` and `fec`) and
//! `gst_st2022fec_fec_packets_total` (FEC packets accepted, streams
//! `column` and `row`). The read-only `stats` property has the same counts
//! and a few more.
//!
//! ## Example launch line
//!
//! Receiver for the `st2022fecenc` sender example (media on 5000, column
//! FEC on 5002, row FEC on 5004):
//!
//! ```sh
//! gst-launch-1.0 \
//!     udpsrc port=5000 caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=MP2T,payload=33" ! dec.sink \
//!     udpsrc port=5002 caps="application/x-rtp,payload=96" ! dec.fec_0 \
//!     udpsrc port=5004 caps="application/x-rtp,payload=96" ! dec.fec_1 \
//!     st2022fecdec name=dec latency=500 ! rtpmp2tdepay ! tsdemux ! h264parse ! avdec_h264 ! \
//!     videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `st2022fecdec` element.
    pub struct St2022FecDec(ObjectSubclass<imp::St2022FecDec>) @extends gst::Element, gst::Object;
}

/// Registers `st2022fecdec` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "st2022fecdec",
        gst::Rank::NONE,
        St2022FecDec::static_type(),
    )
}
