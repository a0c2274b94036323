// SPDX-License-Identifier: MPL-2.0

//! Event and query handlers of the sink and src pads.

use super::*;

impl AbrSelector {
    pub(super) fn sink_event(
        &self,
        pad: &super::super::AbrSelectorSinkPad,
        id: u32,
        event: gst::Event,
    ) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "event {:?}", event.type_());
        let mut actions = Actions::default();
        let mut drain = None;
        let ret = {
            let mut guard = self.state();
            let st = &mut *guard;
            let selected = st.sw.active() == Some(id);
            let Some(ps) = st.pads.get_mut(&id) else {
                return false;
            };
            match event.view() {
                EventView::StreamStart(_) => {
                    ps.stream_start = Some(event.clone());
                    ps.eos = false;
                    true
                }
                EventView::Caps(c) => match check_caps(c.caps()) {
                    Ok(codec) => {
                        let caps = c.caps_owned();
                        if ps.codec.is_some_and(|old| old != codec) {
                            ps.params.clear();
                        }
                        ps.codec = Some(codec);
                        ps.caps = Some(caps.clone());
                        if selected
                            && st.out.started
                            && st.out.caps.as_ref().is_none_or(|o| *o != caps)
                        {
                            st.out
                                .queue
                                .push_back(OutItem::Event(gst::event::Caps::new(&caps)));
                            st.out.caps = Some(caps);
                            drain = Some(true);
                        }
                        true
                    }
                    Err(why) => {
                        drop(guard);
                        self.reject_caps(pad, c.caps(), &why);
                        return false;
                    }
                },
                EventView::Segment(seg) => match seg.segment().downcast_ref::<gst::ClockTime>() {
                    Some(seg) => {
                        ps.segment = Some(SegmentMap::new(seg.clone()));
                        true
                    }
                    None => {
                        actions.warnings.push((
                            gst::StreamError::Format,
                            format!(
                                "{}: {:?} segment refused, only TIME segments are supported",
                                ps.name,
                                seg.segment().format()
                            ),
                        ));
                        false
                    }
                },
                EventView::Tag(t) => {
                    let tags = t.tag();
                    let pick = tags
                        .get::<gst::tags::NominalBitrate>()
                        .or_else(|| tags.get::<gst::tags::Bitrate>())
                        .or_else(|| tags.get::<gst::tags::MaximumBitrate>())
                        .map(|v| v.get() as u64)
                        .filter(|v| *v > 0);
                    if let Some(b) = pick {
                        if ps.tag_bitrate != Some(b) {
                            gst::debug!(CAT, obj = pad, "bit rate from tags: {}", b);
                        }
                        ps.tag_bitrate = Some(b);
                    }
                    if tags.scope() == gst::TagScope::Stream {
                        ps.stream_tags = Some(event.clone());
                    }
                    if selected && st.out.started {
                        st.out.queue.push_back(OutItem::Event(event.clone()));
                        drain = Some(true);
                    }
                    true
                }
                EventView::Gap(g) => {
                    if selected && st.out.started {
                        let (ts, dur) = g.get();
                        let seg = ps.segment.clone();
                        let mapped = match (&seg, &st.out.segment) {
                            (Some(i), Some(o)) => i.convert(o, Some(ts)),
                            _ => Some(ts),
                        };
                        if let Some(ts) = mapped {
                            let mut b = gst::event::Gap::builder(ts);
                            if let Some(d) = dur {
                                b = b.duration(d);
                            }
                            st.out.queue.push_back(OutItem::Event(b.build()));
                            drain = Some(true);
                        }
                    }
                    true
                }
                EventView::Eos(_) => {
                    ps.eos = true;
                    gst::debug!(CAT, obj = pad, "EOS");
                    if selected {
                        if st.sw.armed() {
                            let fx = st.sw.complete("old rendition ended");
                            self.apply(st, &mut actions, fx);
                            drain = Some(false);
                        } else {
                            let fx = st.sw.cancel();
                            self.apply(st, &mut actions, fx);
                            st.out
                                .queue
                                .push_back(OutItem::Event(gst::event::Eos::new()));
                            st.out.eos = true;
                            drain = Some(true);
                        }
                    } else if st.sw.target() == Some(id) {
                        gst::debug!(CAT, obj = pad, "switch target ended, switch cancelled");
                        let fx = st.sw.cancel();
                        self.apply(st, &mut actions, fx);
                    }
                    if st.sw.active().is_none() && !st.out.eos && st.pads.values().all(|p| p.eos) {
                        actions.warnings.push((
                            gst::StreamError::Demux,
                            "Every rendition ended without a keyframe with parameter sets: \
                             nothing was output"
                                .to_string(),
                        ));
                        self.queue_eos_without_data(st, id);
                        drain = Some(true);
                    }
                    true
                }
                EventView::FlushStart(_) => {
                    ps.flushing = true;
                    if st.sw.target() == Some(id) {
                        let fx = st.sw.cancel();
                        self.apply(st, &mut actions, fx);
                    }
                    if selected {
                        st.src_flushing = true;
                        st.out.queue.clear();
                        drop(guard);
                        return self.srcpad.push_event(event);
                    }
                    true
                }
                EventView::FlushStop(_) => {
                    ps.flushing = false;
                    ps.reset_stream();
                    st.sw.forget(id);
                    if st.sw.target() == Some(id) {
                        let fx = st.sw.cancel();
                        self.apply(st, &mut actions, fx);
                    }
                    if selected {
                        st.sw.flush();
                        st.src_flushing = false;
                        st.out.queue.clear();
                        st.out.eos = false;
                        st.out.segment = None;
                        st.last_flow = Ok(gst::FlowSuccess::Ok);
                        st.now = None;
                        st.first_now = None;
                        st.timing.reset();
                        st.policy.retime();
                        drop(guard);
                        let _lock = self.src_lock.lock().unwrap_or_else(|e| e.into_inner());
                        return self.srcpad.push_event(event);
                    }
                    true
                }
                EventView::CustomDownstream(_)
                | EventView::CustomDownstreamOob(_)
                | EventView::CustomBoth(_)
                    if event
                        .structure()
                        .is_some_and(|s| s.name() == ESTIMATE_EVENT) =>
                {
                    drop(guard);
                    return self.estimate_event(event.structure().expect("checked"));
                }
                _ => {
                    if !selected {
                        true
                    } else if event.is_serialized() {
                        st.out.queue.push_back(OutItem::Event(event.clone()));
                        drain = Some(true);
                        true
                    } else {
                        drop(guard);
                        return self.srcpad.push_event(event);
                    }
                }
            }
        };
        let drain = drain.or_else(|| (!self.state().out.queue.is_empty()).then_some(false));
        self.finish(actions, drain);
        ret
    }

    /// EOS when nothing was ever selected: stream-start and segment first,
    /// as downstream expects them before EOS.
    fn queue_eos_without_data(&self, st: &mut State, id: u32) {
        let seg = st.pads.get(&id).and_then(|p| p.segment.clone());
        st.out.eos_without_data(seg);
        st.sw.stop();
    }

    /// Counts refused caps (accept-caps query or caps event) and warns once
    /// per pad and caps.
    pub(super) fn reject_caps(
        &self,
        pad: &super::super::AbrSelectorSinkPad,
        caps: &gst::CapsRef,
        why: &str,
    ) {
        let text = {
            let mut st = self.state();
            let Some(ps) = st.pads.values_mut().find(|p| &p.pad == pad) else {
                return;
            };
            ps.stats.rejected_caps += 1;
            if let Some(s) = &ps.series {
                s.rejected_caps.inc();
            }
            let key = caps.to_string();
            if ps.warned_caps.contains(&key) {
                None
            } else {
                ps.warned_caps.push(key);
                Some(format!("{}: caps refused: {} ({})", ps.name, why, caps))
            }
        };
        if let Some(text) = text {
            gst::warning!(CAT, obj = pad, "{}", text);
            gst::element_imp_warning!(self, gst::StreamError::WrongType, ("{}", text));
        }
    }

    pub(super) fn sink_query(
        &self,
        pad: &super::super::AbrSelectorSinkPad,
        query: &mut gst::QueryRef,
    ) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Caps(q) => {
                let templ = pad.pad_template_caps();
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&templ, gst::CapsIntersectMode::First),
                    None => templ,
                };
                q.set_result(&caps);
                true
            }
            QueryViewMut::AcceptCaps(q) => {
                let verdict = check_caps(q.caps()).and_then(|_| {
                    if q.caps().can_intersect(&pad.pad_template_caps()) {
                        Ok(())
                    } else {
                        Err("not within the pad template".to_string())
                    }
                });
                q.set_result(verdict.is_ok());
                if let Err(why) = verdict {
                    self.reject_caps(pad, q.caps(), &why);
                }
                true
            }
            // Not proxied: the selected rendition changes, and the others
            // are consumed here.
            QueryViewMut::Allocation(_) => false,
            QueryViewMut::Drain(_) => true,
            _ => self.srcpad.peer_query(query),
        }
    }

    pub(super) fn src_event(&self, event: gst::Event) -> bool {
        use gst::EventView;
        let pads: Vec<super::super::AbrSelectorSinkPad>;
        let active;
        {
            let st = self.state();
            pads = st.pads.values().map(|p| p.pad.clone()).collect();
            active = st
                .sw
                .active()
                .and_then(|a| st.pads.get(&a))
                .map(|p| p.pad.clone());
        }
        match event.view() {
            EventView::CustomUpstream(_) | EventView::CustomBoth(_)
                if event
                    .structure()
                    .is_some_and(|s| s.name() == ESTIMATE_EVENT) =>
            {
                self.estimate_event(event.structure().expect("checked"))
            }
            EventView::Seek(_) | EventView::Reconfigure(_) | EventView::Latency(_) => {
                let mut any = false;
                for p in pads {
                    any |= p.push_event(event.clone());
                }
                any
            }
            _ => match active {
                Some(p) => p.push_event(event),
                None => {
                    let mut any = false;
                    for p in pads {
                        any |= p.push_event(event.clone());
                    }
                    any
                }
            },
        }
    }

    pub(super) fn src_query(&self, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        let (pads, active) = {
            let st = self.state();
            (
                st.pads.values().map(|p| p.pad.clone()).collect::<Vec<_>>(),
                st.sw
                    .active()
                    .and_then(|a| st.pads.get(&a))
                    .map(|p| p.pad.clone()),
            )
        };
        match query.view_mut() {
            QueryViewMut::Caps(q) => {
                let templ = self.srcpad.pad_template_caps();
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&templ, gst::CapsIntersectMode::First),
                    None => templ,
                };
                q.set_result(&caps);
                true
            }
            QueryViewMut::Latency(q) => {
                // Every rendition is live or not alike; the output can be
                // as late as the latest one.
                let mut answered = false;
                let mut live = false;
                let mut min = gst::ClockTime::ZERO;
                // None: unbounded.
                let mut max: Option<gst::ClockTime> = None;
                for p in pads {
                    let mut uq = gst::query::Latency::new();
                    if p.peer_query(&mut uq) {
                        let (l, mn, mx) = uq.result();
                        answered = true;
                        live |= l;
                        min = min.max(mn);
                        if let Some(mx) = mx {
                            max = Some(max.map_or(mx, |m| m.min(mx)));
                        }
                    }
                }
                if answered {
                    q.set(live, min, max);
                }
                answered
            }
            QueryViewMut::Scheduling(_) => false,
            _ => match active.or_else(|| pads.into_iter().next()) {
                Some(p) => p.peer_query(query),
                None => false,
            },
        }
    }
}
