// SPDX-License-Identifier: MPL-2.0

//! The output stream of `abrselector`: what is queued for `src`, and the
//! sticky events already queued, so that a buffer goes out with the events
//! it needs first (one stream-start, one segment, caps and stream tags when
//! the rendition changes).

use std::collections::VecDeque;

use gst::glib;

use super::pad::PadState;
use gstbroadcast_common::SegmentMap;

/// A buffer waiting to go out.
pub(super) struct OutBuf {
    /// The buffer.
    pub(super) buffer: gst::Buffer,
    /// Running time of DTS (PTS when there is none), ns.
    pub(super) rt: Option<i64>,
    /// Running time of its end, ns.
    pub(super) end: Option<i64>,
}

/// An item of the output queue.
pub(super) enum OutItem {
    Event(gst::Event),
    Buffer(OutBuf),
}

/// The output stream.
#[derive(Default)]
pub(super) struct Output {
    /// Waiting to be pushed on `src`.
    pub(super) queue: VecDeque<OutItem>,
    /// The output segment (the first selected rendition's).
    pub(super) segment: Option<SegmentMap>,
    /// Caps last queued.
    pub(super) caps: Option<gst::Caps>,
    /// The pad the last buffer went out from (tags follow a change).
    pub(super) pad: Option<u32>,
    /// Stream-start queued.
    pub(super) started: bool,
    /// The next buffer gets DISCONT (a switch).
    pub(super) discont: bool,
    /// EOS queued.
    pub(super) eos: bool,
}

impl Output {
    /// Queues buffer `b` of rendition `id` (pad state `ps`), after the
    /// events it needs; its timestamps are converted into the output
    /// segment.
    pub(super) fn buffer(&mut self, id: u32, ps: &PadState, mut b: OutBuf) {
        if !self.started {
            self.started = true;
            let start = ps.stream_start.as_ref().and_then(|e| match e.view() {
                gst::EventView::StreamStart(s) => Some((s.stream_id().to_string(), s.group_id())),
                _ => None,
            });
            let stream_id = start
                .as_ref()
                .map(|(s, _)| format!("{s}/abrselector"))
                .unwrap_or_else(|| format!("abrselector-{:08x}", glib::random_int()));
            let mut ev = gst::event::StreamStart::builder(&stream_id);
            if let Some(g) = start.and_then(|(_, g)| g) {
                ev = ev.group_id(g);
            }
            self.queue.push_back(OutItem::Event(ev.build()));
        }
        if let Some(c) = &ps.caps {
            if self.caps.as_ref().is_none_or(|o| o != c) {
                self.queue
                    .push_back(OutItem::Event(gst::event::Caps::new(c)));
                self.caps = Some(c.clone());
            }
        }
        if self.segment.is_none() {
            if let Some(seg) = &ps.segment {
                self.queue
                    .push_back(OutItem::Event(gst::event::Segment::new(seg.segment())));
                self.segment = Some(seg.clone());
            }
        }
        if self.pad != Some(id) {
            if let Some(t) = &ps.stream_tags {
                self.queue.push_back(OutItem::Event(t.clone()));
            }
            self.pad = Some(id);
        }
        if let (Some(inp), Some(out)) = (&ps.segment, &self.segment) {
            if inp.segment() != out.segment() {
                let buf = b.buffer.make_mut();
                let pts = inp.convert(out, buf.pts());
                let dts = inp.convert(out, buf.dts());
                buf.set_pts(pts);
                buf.set_dts(dts);
            }
        }
        if std::mem::take(&mut self.discont) {
            b.buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
        }
        self.queue.push_back(OutItem::Buffer(b));
    }

    /// EOS when nothing was ever selected: stream-start and segment first
    /// (`segment`, else an empty TIME one), as downstream expects them.
    pub(super) fn eos_without_data(&mut self, segment: Option<SegmentMap>) {
        if !self.started {
            self.started = true;
            self.queue
                .push_back(OutItem::Event(gst::event::StreamStart::new(&format!(
                    "abrselector-{:08x}",
                    glib::random_int()
                ))));
        }
        if self.segment.is_none() {
            let seg = segment.unwrap_or_else(|| SegmentMap::new(gst::FormattedSegment::new()));
            self.queue
                .push_back(OutItem::Event(gst::event::Segment::new(seg.segment())));
            self.segment = Some(seg);
        }
        self.queue.push_back(OutItem::Event(gst::event::Eos::new()));
        self.eos = true;
    }
}
