// SPDX-License-Identifier: MPL-2.0

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, MutexGuard, TryLockError};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_exporter as exporter;

use super::caps::{check_caps, h26x_caps};
use super::metrics::{ElementSeries, PadSeries};
use super::output::{OutBuf, OutItem, Output};
use super::pad::PadState;
use super::settings::{param_specs, Settings};
use gstbroadcast_common::SegmentMap;

use super::EstimatorMode;
use crate::nal::{self, AccessUnit, Codec};
use crate::policy::{Config, LinkSample, Policy, Push, PushTiming, Reason, Rendition, SECOND};
use crate::switch::{Effect, Renditions, Switched, Switcher, Unit};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "abrselector",
        gst::DebugColorFlags::empty(),
        Some("Bandwidth-driven rendition selector"),
    )
});

/// Name of the estimate events and of their structure.
pub(crate) const ESTIMATE_EVENT: &str = "abr-bandwidth-estimate";

/// The first selection waits at most this long (running time from the
/// first buffer) for every rendition's caps and bit rate.
const INITIAL_WAIT: i64 = SECOND;
/// A rendition without a keyframe for this long gets a warning.
const KEYFRAME_TIMEOUT: i64 = 10 * SECOND;
/// With `estimator=auto`, push timing is ignored this long after an
/// estimate event.
const EXPLICIT_HOLD: i64 = 10 * SECOND;

/// An access unit and its parse, as the switch state machine carries it.
struct Au {
    buffer: gst::Buffer,
    au: Option<AccessUnit>,
}

/// The renditions as the switch state machine sees them.
struct PadsView<'a>(&'a BTreeMap<u32, PadState>);

impl Renditions for PadsView<'_> {
    fn ended(&self, id: u32) -> bool {
        self.0.get(&id).is_none_or(|p| p.eos)
    }

    fn flushing(&self, id: u32) -> bool {
        self.0.get(&id).is_some_and(|p| p.flushing)
    }

    fn last_rt(&self, id: u32) -> Option<i64> {
        self.0.get(&id).and_then(|p| p.last_rt)
    }

    fn next_keyframe(&self, id: u32, after: i64) -> Option<i64> {
        self.0.get(&id)?.clock.next_keyframe(after)
    }
}

/// A buffer on a sink pad, parsed.
struct Incoming {
    id: u32,
    codec: Codec,
    buffer: gst::Buffer,
    au: Option<AccessUnit>,
    param_sets: Vec<(nal::ParamSet, Vec<Vec<u8>>)>,
}

/// What the chain function under the lock decided: drain (`Some(blocking)`),
/// whether the pad is the selected one, the last push result.
type ChainOutcome = (Option<bool>, bool, Result<gst::FlowSuccess, gst::FlowError>);

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    switches_up: u64,
    switches_down: u64,
}

struct State {
    pads: BTreeMap<u32, PadState>,
    /// Which rendition goes out, and switches.
    sw: Switcher<Au>,
    policy: Policy,
    /// Largest running time seen on any pad: the policy's clock.
    now: Option<i64>,
    /// Running time of the first buffer (for `INITIAL_WAIT`).
    first_now: Option<i64>,
    /// The output stream.
    out: Output,
    src_flushing: bool,
    last_flow: Result<gst::FlowSuccess, gst::FlowError>,
    /// Running time of the last estimate event.
    explicit_at: Option<i64>,
    timing: PushTiming,
    wall_origin: Instant,
    counts: Counts,
    series: Option<ElementSeries>,
}

impl State {
    fn new(cfg: Config) -> Self {
        State {
            pads: BTreeMap::new(),
            sw: Switcher::new(),
            policy: Policy::new(cfg),
            now: None,
            first_now: None,
            out: Output::default(),
            src_flushing: false,
            last_flow: Ok(gst::FlowSuccess::Ok),
            explicit_at: None,
            timing: PushTiming::default(),
            wall_origin: Instant::now(),
            counts: Counts::default(),
            series: None,
        }
    }

    fn name(&self, id: Option<u32>) -> Option<String> {
        id.and_then(|i| self.pads.get(&i)).map(|p| p.name.clone())
    }

    fn update_gauges(&self) {
        if let Some(s) = &self.series {
            s.estimate.set(self.policy.estimate().unwrap_or(0) as f64);
            s.current.set(self.sw.active().map_or(-1, |a| a as i64));
        }
    }
}

/// Things to do once the state lock is released.
#[derive(Default)]
struct Actions {
    messages: Vec<gst::Structure>,
    fku: Option<super::AbrSelectorSinkPad>,
    notify_current: bool,
    warnings: Vec<(gst::StreamError, String)>,
}

pub struct AbrSelector {
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Held while pushing on `src`: one thread drains the output queue at a
    /// time.
    src_lock: Mutex<()>,
}

#[glib::object_subclass]
impl ObjectSubclass for AbrSelector {
    const NAME: &'static str = "GstAbrSelector";
    type Type = super::AbrSelector;
    type ParentType = gst::Element;
    type Interfaces = (gst::ChildProxy,);

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .event_function(|_pad, parent, event| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_event(event),
                )
            })
            .query_function(|_pad, parent, query| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_query(query),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| {
                        let st = this.state();
                        let pads = st
                            .sw
                            .active()
                            .and_then(|a| st.pads.get(&a))
                            .map(|p| vec![p.pad.clone().upcast::<gst::Pad>()])
                            .unwrap_or_default();
                        gst::Iterator::from_vec(pads)
                    },
                )
            })
            .build();
        let settings = Settings::default();
        AbrSelector {
            srcpad,
            state: Mutex::new(State::new(settings.config())),
            settings: Mutex::new(settings),
            src_lock: Mutex::new(()),
        }
    }
}

/// A `bitrate` field of any numeric type, as bits/s.
fn estimate_field(s: &gst::StructureRef) -> Option<u64> {
    if let Ok(v) = s.get::<u64>("bitrate") {
        return Some(v);
    }
    if let Ok(v) = s.get::<u32>("bitrate") {
        return Some(v as u64);
    }
    if let Ok(v) = s.get::<i64>("bitrate") {
        return u64::try_from(v).ok();
    }
    if let Ok(v) = s.get::<i32>("bitrate") {
        return u64::try_from(v).ok();
    }
    if let Ok(v) = s.get::<f64>("bitrate") {
        return (v.is_finite() && v >= 0.0).then_some(v.round() as u64);
    }
    None
}

fn clock_time(t: Option<i64>) -> u64 {
    t.map_or(u64::MAX, |v| v.max(0) as u64)
}

mod events;

impl AbrSelector {
    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pad_labels(&self, pad: &str) -> [String; 3] {
        [
            exporter::pipeline_label(&*self.obj()),
            self.obj().name().to_string(),
            pad.to_string(),
        ]
    }

    /// Posts messages, sends force-key-unit and warnings; no lock held.
    fn run(&self, actions: Actions) {
        for (err, text) in actions.warnings {
            gst::warning!(CAT, imp = self, "{}", text);
            gst::element_imp_warning!(self, err, ("{}", text));
        }
        if let Some(pad) = actions.fku {
            gst::debug!(CAT, obj = pad, "requesting a keyframe");
            let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            if !pad.push_event(ev) {
                gst::debug!(CAT, obj = pad, "force-key-unit not handled upstream");
            }
        }
        for s in actions.messages {
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        if actions.notify_current {
            self.obj().notify("current");
        }
    }

    /// Pushes the output queue. `blocking`: wait for another thread that is
    /// pushing (the selected rendition's thread does, for back-pressure);
    /// otherwise leave the queue to that thread. Returns the result of the
    /// last buffer this thread pushed.
    fn drain(&self, blocking: bool) -> Option<Result<gst::FlowSuccess, gst::FlowError>> {
        let settings = self.settings();
        let mut result = None;
        let mut block = blocking;
        loop {
            let guard = if block {
                self.src_lock.lock().unwrap_or_else(|e| e.into_inner())
            } else {
                match self.src_lock.try_lock() {
                    Ok(g) => g,
                    Err(TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(TryLockError::WouldBlock) => return result,
                }
            };
            loop {
                let (item, origin) = {
                    let mut st = self.state();
                    if st.src_flushing {
                        st.out.queue.clear();
                    }
                    (st.out.queue.pop_front(), st.wall_origin)
                };
                let Some(item) = item else { break };
                match item {
                    OutItem::Event(ev) => {
                        gst::log!(CAT, imp = self, "pushing {:?}", ev.type_());
                        let _ = self.srcpad.push_event(ev);
                    }
                    OutItem::Buffer(b) => {
                        let bytes = b.buffer.size() as u64;
                        let start = Instant::now();
                        let r = self.srcpad.push(b.buffer);
                        let stop = Instant::now();
                        result = Some(r);
                        let mut st = self.state();
                        st.last_flow = r;
                        if r.is_ok() && settings.estimator != EstimatorMode::None {
                            if let Some(rt) = b.rt {
                                let push = Push {
                                    wall_start: start.duration_since(origin).as_nanos() as i64,
                                    wall_end: stop.duration_since(origin).as_nanos() as i64,
                                    bytes,
                                    media_start: rt,
                                    media_end: b.end.unwrap_or(rt).max(rt),
                                };
                                if let Some(sample) = st.timing.record(push) {
                                    self.link_sample(&mut st, &settings, sample);
                                }
                            }
                        }
                    }
                }
            }
            drop(guard);
            // Another thread may have queued something and found the lock
            // taken while this one was finishing.
            if self.state().out.queue.is_empty() {
                return result;
            }
            block = false;
        }
    }

    fn link_sample(&self, st: &mut State, settings: &Settings, sample: LinkSample) {
        let now = st.now.unwrap_or(0);
        // A property value is the estimate in every mode: push timing into
        // a fast sink would pull it up or down.
        if settings.bandwidth_estimate > 0
            || (settings.estimator == EstimatorMode::Auto
                && st.explicit_at.is_some_and(|t| now - t < EXPLICIT_HOLD))
        {
            return;
        }
        gst::log!(CAT, imp = self, "push timing: {:?}", sample);
        match sample {
            LinkSample::Measured(v) => st.policy.sample(now, v),
            LinkSample::AtLeast(v) => {
                // The link carries what goes out without holding it back,
                // so the selected rendition fits: never less than its
                // bit rate divided by the safety factor.
                let current = st
                    .sw
                    .active()
                    .and_then(|a| st.pads.get(&a))
                    .and_then(|p| p.bitrate())
                    .map_or(0, |(b, _)| b);
                let floor = (v.max(current) as f64 / settings.safety_factor).ceil() as u64;
                st.policy.sample_at_least(now, floor);
            }
        }
        st.update_gauges();
    }

    /// An explicit estimate (event or property) at the current running time.
    fn explicit_estimate(&self, bps: u64, from_event: bool) {
        let mut st = self.state();
        let now = st.now.unwrap_or(0);
        gst::debug!(
            CAT,
            imp = self,
            "bandwidth estimate {} bit/s from {}",
            bps,
            if from_event { "event" } else { "property" }
        );
        if from_event {
            st.explicit_at = Some(now);
        }
        if bps > 0 && from_event {
            st.policy.sample(now, bps);
        } else if bps > 0 {
            // The application's value is the estimate, not one more sample.
            st.policy.set(now, bps);
        } else {
            st.policy.release(now);
        }
        st.update_gauges();
    }

    fn estimate_event(&self, s: &gst::StructureRef) -> bool {
        match estimate_field(s) {
            Some(v) => {
                self.explicit_estimate(v, true);
                true
            }
            None => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    (
                        "{} event without a usable bitrate field (guint64 bits/s): {}",
                        ESTIMATE_EVENT,
                        s
                    )
                );
                false
            }
        }
    }

    /// Runs the policy and updates the pending switch.
    fn evaluate(&self, st: &mut State, settings: &Settings, actions: &mut Actions) {
        if st.out.eos || st.pads.is_empty() {
            return;
        }
        if st.sw.armed() {
            return;
        }
        let Some(now) = st.now else { return };
        st.policy.set_config(settings.config());
        let ladder: Vec<Rendition> = st
            .pads
            .iter()
            .filter(|(_, p)| !p.eos && !p.flushing && p.caps.is_some())
            .filter_map(|(id, p)| {
                let b = p.bitrate().map(|(b, _)| b);
                if let Some(s) = &p.series {
                    s.bitrate.set(b.unwrap_or(0) as f64);
                }
                b.map(|bitrate| Rendition { id: *id, bitrate })
            })
            .collect();
        if st.sw.active().is_none()
            && !st.sw.pending()
            && ladder.len() < st.pads.values().filter(|p| !p.eos).count()
            && now - st.first_now.unwrap_or(now) < INITIAL_WAIT
        {
            // Some renditions have no caps or bit rate yet: give them a
            // moment before the first choice.
            st.policy.decide(now, None, &[]);
            st.update_gauges();
            return;
        }
        let decision = st.policy.decide(now, st.sw.active(), &ladder);
        st.update_gauges();
        if let Some(d) = decision.filter(|d| st.sw.target() != Some(d.target)) {
            gst::debug!(
                CAT,
                imp = self,
                "{} switch to {:?} decided at {} (estimate {:?})",
                d.reason.as_str(),
                st.name(Some(d.target)),
                now,
                d.estimate
            );
        }
        let fx = st.sw.want(decision, st.policy.estimate());
        self.apply(st, actions, fx);
    }

    /// Carries out the switch state machine's effects.
    fn apply(&self, st: &mut State, actions: &mut Actions, fx: Vec<Effect<Au>>) {
        for e in fx {
            match e {
                Effect::Output {
                    id,
                    unit,
                    switch_point,
                } => {
                    let Some(ps) = st.pads.get_mut(&id) else {
                        continue;
                    };
                    let Au { buffer, au } = unit.payload;
                    let buffer = self.prepare(ps, buffer, au.as_ref(), switch_point);
                    let (rt, end) = (unit.rt, unit.end);
                    self.output_buffer(st, id, OutBuf { buffer, rt, end });
                }
                Effect::Drop { id, count, late } => {
                    if let Some(ps) = st.pads.get_mut(&id) {
                        ps.stats.dropped += count;
                        if late {
                            ps.stats.late += count;
                            gst::debug!(CAT, obj = ps.pad, "late buffer dropped");
                        }
                        if let Some(s) = &ps.series {
                            s.dropped.inc_by(count);
                        }
                    }
                }
                Effect::Switched(sw) => self.switched(st, actions, sw),
                Effect::RequestKeyframe(id) => {
                    if self.settings().force_key_unit {
                        actions.fku = st.pads.get(&id).map(|p| p.pad.clone());
                    }
                }
            }
        }
    }

    /// Queues a buffer of `id` for output, with the events it needs first.
    fn output_buffer(&self, st: &mut State, id: u32, b: OutBuf) {
        let Some(ps) = st.pads.get_mut(&id) else {
            return;
        };
        ps.stats.forwarded += 1;
        if let Some(s) = &ps.series {
            s.forwarded.inc();
        }
        if let Some(rt) = b.rt {
            st.policy.sent(rt, b.buffer.size() as u64 * 8);
        }
        st.out.buffer(id, ps, b);
    }

    /// A switch took effect (the state machine already selected `to`).
    fn switched(&self, st: &mut State, actions: &mut Actions, sw: Switched) {
        let Switched {
            from,
            to,
            at: t,
            why,
            ..
        } = sw;
        let bitrate = |id: Option<u32>| {
            id.and_then(|i| st.pads.get(&i))
                .and_then(|p| p.bitrate())
                .map_or(0, |(b, _)| b)
        };
        let (from_bitrate, to_bitrate) = (bitrate(from), bitrate(Some(to)));
        let reason = match (from, sw.reason) {
            (Some(_), Reason::Initial) if to_bitrate >= from_bitrate => Reason::Up,
            (Some(_), Reason::Initial) => Reason::Down,
            (_, r) => r,
        };
        gst::info!(
            CAT,
            imp = self,
            "{} switch {:?} -> {:?} at {} ({}, estimate {:?})",
            reason.as_str(),
            st.name(from),
            st.name(Some(to)),
            t,
            why,
            sw.estimate
        );
        st.policy.note_switch(t);
        st.out.discont = true;
        match reason {
            Reason::Up => {
                st.counts.switches_up += 1;
                if let Some(s) = &st.series {
                    s.up.inc();
                }
            }
            Reason::Down => {
                st.counts.switches_down += 1;
                if let Some(s) = &st.series {
                    s.down.inc();
                }
            }
            Reason::Initial => {}
        }
        actions.messages.push(
            gst::Structure::builder("abr-switch")
                .field("from", st.name(from))
                .field("to", st.name(Some(to)).unwrap_or_default())
                .field("from-bitrate", from_bitrate)
                .field("to-bitrate", to_bitrate)
                .field("reason", reason.as_str())
                .field(
                    "estimate",
                    sw.estimate.or(st.policy.estimate()).unwrap_or(0),
                )
                .field("running-time", clock_time(Some(t)))
                .build(),
        );
        actions.notify_current = true;
        st.update_gauges();
    }

    /// Sets DELTA_UNIT from the parse and, at a switch point, inserts the
    /// cached parameter sets the keyframe lacks.
    fn prepare(
        &self,
        ps: &mut PadState,
        buffer: gst::Buffer,
        au: Option<&AccessUnit>,
        switch_point: bool,
    ) -> gst::Buffer {
        let Some(au) = au else { return buffer };
        let mut buffer = buffer;
        if switch_point && au.keyframe {
            if let Some(codec) = ps.codec {
                let inserted = buffer
                    .map_readable()
                    .ok()
                    .and_then(|m| nal::insert_parameter_sets(codec, &m, au, &ps.params));
                if let Some(data) = inserted {
                    let mut nb = gst::Buffer::from_mut_slice(data);
                    {
                        let nbm = nb.get_mut().expect("new buffer");
                        let _ = buffer.copy_into(
                            nbm,
                            gst::BufferCopyFlags::FLAGS
                                | gst::BufferCopyFlags::TIMESTAMPS
                                | gst::BufferCopyFlags::META,
                            ..,
                        );
                    }
                    buffer = nb;
                    ps.stats.inserted += 1;
                    if let Some(s) = &ps.series {
                        s.inserted.inc();
                    }
                    gst::debug!(
                        CAT,
                        obj = ps.pad,
                        "parameter sets inserted at a switch keyframe"
                    );
                }
            }
        }
        let delta = buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        if delta == au.keyframe {
            let b = buffer.make_mut();
            if au.keyframe {
                b.unset_flags(gst::BufferFlags::DELTA_UNIT);
            } else {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        buffer
    }

    fn sink_chain(
        &self,
        pad: &super::AbrSelectorSinkPad,
        id: u32,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings();
        let codec = {
            let st = self.state();
            match st.pads.get(&id) {
                Some(p) => p.codec,
                None => return Err(gst::FlowError::Flushing),
            }
        };
        let Some(codec) = codec else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Buffer on {} before caps", pad.name())
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        // Parse outside the lock.
        let (au, param_sets) = {
            let Ok(map) = buffer.map_readable() else {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Cannot map a buffer of {}", pad.name())
                );
                return Err(gst::FlowError::Error);
            };
            let au = nal::parse(codec, &map);
            let sets = au
                .as_ref()
                .map(|a| nal::extract_parameter_sets(codec, &map, a))
                .unwrap_or_default();
            (au, sets)
        };
        let mut actions = Actions::default();
        let outcome = {
            let mut st = self.state();
            let incoming = Incoming {
                id,
                codec,
                buffer,
                au,
                param_sets,
            };
            self.chain_locked(&mut st, &settings, &mut actions, incoming)
        };
        match outcome {
            Ok((drain, selected, last_flow)) => {
                let result = self.finish(actions, drain);
                if selected {
                    result.unwrap_or(last_flow)
                } else {
                    Ok(gst::FlowSuccess::Ok)
                }
            }
            Err((err, msg)) => {
                self.run(actions);
                if let Some(msg) = msg {
                    gst::element_imp_error!(self, gst::StreamError::Format, ("{}", msg));
                }
                Err(err)
            }
        }
    }

    /// The chain function under the state lock. Returns whether to drain
    /// (and blocking or not), whether `id` is the selected rendition now
    /// and the last push result; or an error with a message to post.
    fn chain_locked(
        &self,
        st: &mut State,
        settings: &Settings,
        actions: &mut Actions,
        incoming: Incoming,
    ) -> Result<ChainOutcome, (gst::FlowError, Option<String>)> {
        let Incoming {
            id,
            codec,
            buffer,
            au,
            param_sets,
        } = incoming;
        if st.out.eos {
            return Err((gst::FlowError::Eos, None));
        }
        let Some(ps) = st.pads.get_mut(&id) else {
            return Err((gst::FlowError::Flushing, None));
        };
        if ps.flushing {
            return Err((gst::FlowError::Flushing, None));
        }
        let Some(seg) = ps.segment.clone() else {
            return Err((
                gst::FlowError::Error,
                Some(format!("Buffer on {} before a TIME segment", ps.name)),
            ));
        };
        let size = buffer.size() as u64;
        ps.stats.buffers += 1;
        ps.stats.bytes += size;
        for (kind, nals) in param_sets {
            ps.params.replace(kind, nals);
        }
        let rt = seg.running_time(buffer.dts().or(buffer.pts()));
        let end = rt.map(|r| r + buffer.duration().map_or(0, |d| d.nseconds() as i64));
        if let Some(p) = seg.running_time(buffer.pts()).or(rt) {
            ps.clock.push(p, size);
        }
        if rt.is_some() {
            ps.last_rt = rt;
        }
        match &au {
            None => {
                ps.stats.unparseable += 1;
                if let Some(s) = &ps.series {
                    s.unparseable.inc();
                }
                if !ps.warned_unparseable {
                    ps.warned_unparseable = true;
                    actions.warnings.push((
                        gst::StreamError::Decode,
                        format!(
                            "{}: buffer is not an Annex B access unit (no start code at its \
                             start); such buffers are never switch points",
                            ps.name
                        ),
                    ));
                }
            }
            Some(a) if a.keyframe => {
                ps.stats.keyframes += 1;
                if let Some(r) = rt {
                    ps.key_ref = rt;
                    ps.clock.keyframe(r);
                }
                ps.warned_keyframe = false;
            }
            Some(_) => {}
        }
        match (rt, ps.key_ref) {
            (Some(r), None) => ps.key_ref = Some(r),
            (Some(r), Some(k)) if r - k > KEYFRAME_TIMEOUT && !ps.warned_keyframe => {
                ps.warned_keyframe = true;
                ps.stats.keyframe_timeouts += 1;
                if let Some(s) = &ps.series {
                    s.keyframe_timeouts.inc();
                }
                actions.warnings.push((
                    gst::StreamError::Demux,
                    format!(
                        "{}: no keyframe for {} s of running time; this rendition cannot be \
                         switched to (check the encoder's key-int-max)",
                        ps.name,
                        KEYFRAME_TIMEOUT / SECOND
                    ),
                ));
            }
            _ => {}
        }
        let switchable = rt.is_some()
            && au
                .as_ref()
                .is_some_and(|a| nal::self_contained_with(codec, a, &ps.params));
        if let Some(r) = rt {
            st.now = Some(st.now.map_or(r, |n| n.max(r)));
            st.first_now.get_or_insert(r);
        }
        self.evaluate(st, settings, actions);
        let unit = Unit {
            payload: Au { buffer, au },
            rt,
            end,
        };
        let fx = st.sw.route(id, unit, switchable, &PadsView(&st.pads));
        self.apply(st, actions, fx);
        Ok(self.chain_done(st, id))
    }

    /// What `chain_locked` returns once done with a buffer of `id`: drain
    /// (blocking for the selected rendition) when output is queued.
    fn chain_done(&self, st: &State, id: u32) -> ChainOutcome {
        let selected = st.sw.active() == Some(id);
        let drain = (!st.out.queue.is_empty()).then_some(selected);
        (drain, selected, st.last_flow)
    }

    /// Runs the actions and drains; the state lock must not be held.
    fn finish(
        &self,
        actions: Actions,
        drain: Option<bool>,
    ) -> Option<Result<gst::FlowSuccess, gst::FlowError>> {
        self.run(actions);
        drain.and_then(|blocking| self.drain(blocking))
    }

    /// The `stats` structure of the sink pad `name`.
    pub(super) fn pad_stats(&self, name: &str) -> Option<gst::Structure> {
        let st = self.state();
        let (id, ps) = st.pads.iter().find(|(_, p)| p.name == name)?;
        Some(ps.structure(st.sw.active() == Some(*id)))
    }

    fn stats(&self) -> gst::Structure {
        let st = self.state();
        let e = st.policy.estimator();
        let pending = st.name(st.sw.target());
        let renditions: Vec<glib::SendValue> = st
            .pads
            .iter()
            .map(|(id, p)| p.structure(st.sw.active() == Some(*id)).to_send_value())
            .collect();
        let (mut fwd, mut dropped, mut inserted) = (0u64, 0u64, 0u64);
        for p in st.pads.values() {
            fwd += p.stats.forwarded;
            dropped += p.stats.dropped;
            inserted += p.stats.inserted;
        }
        gst::Structure::builder("abrselector-stats")
            .field("current", st.name(st.sw.active()))
            .field("pending", pending)
            .field("estimate", st.policy.estimate().unwrap_or(0))
            .field("estimate-fast", e.fast().unwrap_or(0))
            .field("estimate-slow", e.slow().unwrap_or(0))
            .field("queue-delay", st.policy.queue_delay().unwrap_or(0.0))
            .field("switches", st.counts.switches_up + st.counts.switches_down)
            .field("switches-up", st.counts.switches_up)
            .field("switches-down", st.counts.switches_down)
            .field("buffers-forwarded", fwd)
            .field("buffers-dropped", dropped)
            .field("parameter-sets-inserted", inserted)
            .field("renditions", gst::Array::from_values(renditions))
            .build()
    }

    /// Creates the metric series of the element and its pads.
    fn create_series(&self, st: &mut State) {
        let pipeline = exporter::pipeline_label(&*self.obj());
        let element = self.obj().name().to_string();
        // An old handle leaves before the new one takes the labels.
        st.series = None;
        st.series = Some(ElementSeries::new([
            pipeline.clone(),
            element.clone(),
            "src".to_string(),
        ]));
        for p in st.pads.values_mut() {
            p.series = None;
            p.series = Some(PadSeries::new([
                pipeline.clone(),
                element.clone(),
                p.name.clone(),
            ]));
        }
    }

    /// Drops the series of the element and its pads, which removes them
    /// from the registry.
    fn remove_series(st: &mut State) {
        st.series = None;
        for p in st.pads.values_mut() {
            p.series = None;
        }
    }

    /// Back to the initial state, keeping the pads and their settings.
    fn reset(&self, st: &mut State) {
        let settings = self.settings();
        let pads = std::mem::take(&mut st.pads);
        let series = st.series.take();
        *st = State::new(settings.config());
        st.series = series;
        st.pads = pads;
        for p in st.pads.values_mut() {
            let series = p.series.take();
            let stats_pad = p.pad.clone();
            *p = PadState::new(stats_pad);
            p.series = series;
        }
        if settings.bandwidth_estimate > 0 {
            st.policy.set(0, settings.bandwidth_estimate);
        }
    }
}

impl ObjectImpl for AbrSelector {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(param_specs);
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "bandwidth-estimate" => {
                let v: u64 = value.get().expect("type checked");
                let changed = s.bandwidth_estimate != v;
                s.bandwidth_estimate = v;
                drop(s);
                if changed || v > 0 {
                    self.explicit_estimate(v, false);
                }
            }
            name => s.set(name, value),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stats" => return self.stats().to_value(),
            "current" => {
                let st = self.state();
                return st.name(st.sw.active()).to_value();
            }
            _ => {}
        }
        self.settings().value(pspec.name())
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .add_pad(&self.srcpad)
            .expect("adding the src pad");
    }
}

impl GstObjectImpl for AbrSelector {}

impl ElementImpl for AbrSelector {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "ABR rendition selector",
                "Generic/Video/Network",
                "Forwards one of N H.264/H.265 renditions picked by a bandwidth estimate, \
                 switching only on a keyframe that carries its parameter sets",
                "gst-broadcast developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = h26x_caps();
            vec![
                gst::PadTemplate::with_gtype(
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &caps,
                    super::AbrSelectorSinkPad::static_type(),
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        if templ.name_template() != "sink_%u" {
            return None;
        }
        let mut st = self.state();
        let id = match gstbroadcast_common::request_pad_index(name, "sink_", |i| {
            st.pads.contains_key(&i)
        }) {
            Ok(id) => id,
            Err(err) => {
                gst::warning!(CAT, imp = self, "Refusing a sink pad: {}", err);
                return None;
            }
        };
        let pad = gst::PadBuilder::<super::AbrSelectorSinkPad>::from_template(templ)
            .name(format!("sink_{id}"))
            .chain_function(move |pad, parent, buffer| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(pad, id, buffer),
                )
            })
            .event_function(move |pad, parent, event| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, id, event),
                )
            })
            .query_function(|pad, parent, query| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad, query),
                )
            })
            .iterate_internal_links_function(|_pad, parent| {
                AbrSelector::catch_panic_pad_function(
                    parent,
                    || gst::Iterator::from_vec(vec![]),
                    |this| gst::Iterator::from_vec(vec![this.srcpad.clone()]),
                )
            })
            .build();
        let mut ps = PadState::new(pad.clone());
        let obj = self.obj();
        if obj.current_state() > gst::State::Ready {
            ps.series = Some(PadSeries::new(self.pad_labels(&ps.name)));
        }
        st.pads.insert(id, ps);
        drop(st);
        let _ = pad.set_active(obj.current_state() > gst::State::Ready);
        if obj.add_pad(&pad).is_err() {
            // Dropping the pad's state removes its series.
            self.state().pads.remove(&id);
            return None;
        }
        obj.child_added(&pad, &pad.name());
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let mut actions = Actions::default();
        let found = {
            let mut guard = self.state();
            let st = &mut *guard;
            let id = st
                .pads
                .iter()
                .find(|(_, p)| p.pad.upcast_ref::<gst::Pad>() == pad)
                .map(|(i, _)| *i);
            if let Some(id) = id {
                let was_active = st.sw.active() == Some(id);
                let fx = st.sw.release(id);
                self.apply(st, &mut actions, fx);
                if was_active && st.sw.active().is_none() {
                    actions.notify_current = true;
                }
                // Dropping the pad's state removes its series.
                st.pads.remove(&id);
                st.update_gauges();
            }
            id.is_some()
        };
        self.finish(actions, Some(false));
        if found {
            let _ = pad.set_active(false);
            let _ = self.obj().remove_pad(pad);
            self.obj().child_removed(pad, &pad.name());
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let mut st = self.state();
            self.reset(&mut st);
            self.create_series(&mut st);
            st.update_gauges();
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            let mut st = self.state();
            Self::remove_series(&mut st);
            self.reset(&mut st);
        }
        Ok(ret)
    }
}

impl ChildProxyImpl for AbrSelector {
    fn child_by_index(&self, index: u32) -> Option<glib::Object> {
        self.obj()
            .sink_pads()
            .into_iter()
            .nth(index as usize)
            .map(|p| p.upcast())
    }

    fn children_count(&self) -> u32 {
        self.obj().num_sink_pads() as u32
    }

    fn child_by_name(&self, name: &str) -> Option<glib::Object> {
        self.obj().static_pad(name).map(|p| p.upcast())
    }
}
