// SPDX-License-Identifier: MPL-2.0

//! Plumbing every gst-broadcast element shares, so that each idea has one
//! implementation: the running-time conversion of a TIME segment
//! ([`SegmentMap`]) and the index of a request pad's name
//! ([`request_pad_index`]). Metrics plumbing lives in the exporter crate.

#![warn(missing_docs)]

mod pads;
mod segment;

pub use pads::{pad_index, request_pad_index};
pub use segment::{signed_ns, SegmentMap};
