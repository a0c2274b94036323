// SPDX-License-Identifier: MPL-2.0

//! The switch state machine of `abrselector`, without GStreamer: which
//! rendition's access units go out, and when a switch takes effect.
//!
//! Times are signed nanoseconds of running time. Each access unit ([`Unit`])
//! carries a payload chosen by the caller (the element uses the buffer and
//! its parse), its running time (DTS, or PTS when there is none) and end.
//! The machine never touches payloads: it returns [`Effect`]s that the
//! caller carries out in order (queue a unit for output, count dropped
//! units, announce a switch, ask the target's encoder for a keyframe).
//!
//! # Phases of a switch
//! - **Waiting**: a target is chosen ([`Switcher::want`]); the selected
//!   rendition keeps going out; the target's units are dropped until one
//!   is a *switch point* (a keyframe with parameter sets, after everything
//!   already output).
//! - **Armed** at `T`, the running time of that switch point: the target's
//!   units from `T` on are held; the selected rendition still goes out
//!   before `T`. The switch completes when the selected rendition reaches
//!   `T` (its unit at or after `T` is dropped), ends, is released, or when
//!   the target's held units span more than [`HOLD_MAX`] (2 s) while the
//!   selected rendition has not reached `T`. The held units then go out,
//!   the first one marked as the switch point.
//!
//! # Prediction
//! When the target's units come later than the selected one's (another
//! thread, a slower encoder), its keyframe at `T` would arrive after the
//! selected rendition passed `T`. So while Waiting, the selected
//! rendition's units at or after the target's predicted next keyframe are
//! held until the target shows that time: a switch point there takes over
//! (held units at or after `T` are dropped, the others go out), anything
//! else sends them on. Held for more than [`OLD_HOLD_MAX`] (1 s), they go
//! out and the switch stops predicting.
//!
//! # Start-up
//! Before anything went out, each rendition keeps its units since its last
//! switch point (at most [`STARTUP_MAX`]), so the first selection starts at
//! once on the chosen rendition's latest switch point. The first selection
//! may have no target yet (bit rates unknown): then the first rendition
//! with a switch point is taken.

use std::collections::{BTreeMap, VecDeque};

use crate::policy::{Decision, Reason, SECOND};

/// The target's held units may span this much running time (ns) while the
/// selected rendition has not reached the switch instant; then the switch
/// happens anyway (2 s).
pub const HOLD_MAX: i64 = 2 * SECOND;
/// The selected rendition's units held at a predicted keyframe of the
/// target may span this much running time (ns, 1 s).
pub const OLD_HOLD_MAX: i64 = SECOND;
/// Units kept per rendition before the first output.
pub const STARTUP_MAX: usize = 300;

/// One access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit<P> {
    /// The caller's data.
    pub payload: P,
    /// Running time of its DTS (PTS when there is none), ns.
    pub rt: Option<i64>,
    /// Running time of its end, ns.
    pub end: Option<i64>,
}

/// What the machine asks about the renditions.
pub trait Renditions {
    /// The rendition ended (EOS) or does not exist.
    fn ended(&self, id: u32) -> bool;
    /// The rendition is flushing.
    fn flushing(&self, id: u32) -> bool;
    /// Running time of its latest unit, ns.
    fn last_rt(&self, id: u32) -> Option<i64>;
    /// Its first keyframe expected after `after` ns.
    fn next_keyframe(&self, id: u32, after: i64) -> Option<i64>;
}

/// A switch that took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switched {
    /// The rendition selected before (`None` for the first selection).
    pub from: Option<u32>,
    /// The rendition selected now.
    pub to: u32,
    /// The switch instant: running time of the target's switch point, ns.
    pub at: i64,
    /// Why the switch was wanted (the first selection is `Initial`).
    pub reason: Reason,
    /// The estimate it was decided on, bits/s.
    pub estimate: Option<u64>,
    /// How it completed, for the log.
    pub why: &'static str,
}

/// Something for the caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<P> {
    /// Queue `unit` of rendition `id` for output; `switch_point`: the first
    /// unit after a switch (insert parameter sets it lacks).
    Output {
        /// Rendition.
        id: u32,
        /// The unit.
        unit: Unit<P>,
        /// First unit of a switch.
        switch_point: bool,
    },
    /// `count` units of rendition `id` consumed without output; `late`:
    /// behind what already went out.
    Drop {
        /// Rendition.
        id: u32,
        /// Units.
        count: u64,
        /// Behind the output.
        late: bool,
    },
    /// A switch took effect; the units that follow are the new rendition's.
    Switched(Switched),
    /// A new switch target: ask its encoder for a keyframe (once per
    /// target until the switch completes or is given up).
    RequestKeyframe(u32),
}

enum Phase<P> {
    Waiting,
    Armed { t: i64, held: VecDeque<Unit<P>> },
}

struct Pending<P> {
    /// `None`: the first rendition with a switch point.
    to: Option<u32>,
    reason: Reason,
    estimate: Option<u64>,
    phase: Phase<P>,
    /// Where the target's next keyframe is expected, ns.
    predicted: Option<i64>,
    /// Prediction allowed (off after the held units overflowed).
    predict: bool,
    /// The selected rendition's units held at `predicted`.
    old_held: VecDeque<Unit<P>>,
}

impl<P> Pending<P> {
    fn new(to: Option<u32>, reason: Reason, estimate: Option<u64>) -> Self {
        Pending {
            to,
            reason,
            estimate,
            phase: Phase::Waiting,
            predicted: None,
            predict: true,
            old_held: VecDeque::new(),
        }
    }
}

/// The switch state machine (see the module documentation).
pub struct Switcher<P> {
    active: Option<u32>,
    pending: Option<Pending<P>>,
    /// Running time of the last unit output, ns.
    last_out: Option<i64>,
    /// Anything output yet.
    started: bool,
    /// Before the first output: units since each rendition's last switch
    /// point.
    startup: BTreeMap<u32, Vec<Unit<P>>>,
    /// Target a keyframe was requested for.
    requested: Option<u32>,
}

impl<P> Default for Switcher<P> {
    fn default() -> Self {
        Self::new()
    }
}

type Fx<P> = Vec<Effect<P>>;

impl<P> Switcher<P> {
    /// Nothing selected, nothing output.
    pub fn new() -> Self {
        Switcher {
            active: None,
            pending: None,
            last_out: None,
            started: false,
            startup: BTreeMap::new(),
            requested: None,
        }
    }

    /// The selected rendition.
    pub fn active(&self) -> Option<u32> {
        self.active
    }

    /// The target of the switch under way, if known.
    pub fn target(&self) -> Option<u32> {
        self.pending.as_ref().and_then(|p| p.to)
    }

    /// A switch (or the first selection) is under way.
    pub fn pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The switch under way found its switch point and waits for the
    /// selected rendition to reach it.
    pub fn armed(&self) -> bool {
        matches!(
            self.pending,
            Some(Pending {
                phase: Phase::Armed { .. },
                ..
            })
        )
    }

    /// Anything went out.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Running time of the last unit output, ns.
    pub fn last_out(&self) -> Option<i64> {
        self.last_out
    }

    /// Units kept for start-up by rendition `id`.
    pub fn startup_len(&self, id: u32) -> usize {
        self.startup.get(&id).map_or(0, Vec::len)
    }

    /// The policy's verdict at this moment: `decision` (`None`: stay, or
    /// nothing to decide yet). With nothing selected and no decision, the
    /// first selection waits for any switch point.
    pub fn want(&mut self, decision: Option<Decision>, estimate: Option<u64>) -> Fx<P> {
        let mut fx = Vec::new();
        if self.armed() {
            return fx;
        }
        match (self.active, decision) {
            (None, None) => {
                if self.pending.is_none() {
                    self.pending = Some(Pending::new(None, Reason::Initial, estimate));
                }
            }
            (_, Some(d)) => {
                if self.target() == Some(d.target) {
                    return fx;
                }
                self.release_old_held(&mut fx);
                self.pending = Some(Pending::new(Some(d.target), d.reason, d.estimate));
                if self.requested != Some(d.target) {
                    self.requested = Some(d.target);
                    fx.push(Effect::RequestKeyframe(d.target));
                }
            }
            (Some(_), None) => {
                if self.pending.is_some() {
                    self.cancel_into(&mut fx);
                }
            }
        }
        fx
    }

    /// A unit of rendition `id`; `switch_point`: a keyframe with its
    /// parameter sets (and a running time).
    pub fn route(
        &mut self,
        id: u32,
        unit: Unit<P>,
        switch_point: bool,
        pads: &impl Renditions,
    ) -> Fx<P> {
        let mut fx = Vec::new();
        let switch_point = switch_point && unit.rt.is_some();
        if self.active.is_none() && !self.started {
            self.startup(id, unit, switch_point, &mut fx);
            return fx;
        }
        let is_target = self
            .pending
            .as_ref()
            .is_some_and(|s| s.to == Some(id) || (s.to.is_none() && self.active.is_none()));
        let armed_at = match &self.pending {
            Some(Pending {
                phase: Phase::Armed { t, .. },
                ..
            }) => Some(*t),
            _ => None,
        };
        if self.active == Some(id) {
            if let (Some(t), Some(r)) = (armed_at, unit.rt) {
                if r >= t {
                    self.complete_into("old rendition reached it", &mut fx);
                    fx.push(Effect::Drop {
                        id,
                        count: 1,
                        late: false,
                    });
                    return fx;
                }
            }
            if let Some(u) = self.hold_old(unit, pads, &mut fx) {
                self.output(id, u, false, &mut fx);
            }
        } else if is_target && armed_at.is_none() {
            let r = unit.rt.unwrap_or(i64::MIN);
            if switch_point && self.last_out.is_none_or(|l| l < r) {
                self.arm(id, unit, r, pads, &mut fx);
            } else {
                let missed = self
                    .pending
                    .as_ref()
                    .and_then(|s| s.predicted)
                    .is_some_and(|p| r >= p);
                if missed {
                    // No switch point where one was expected.
                    self.release_old_held(&mut fx);
                }
                fx.push(Effect::Drop {
                    id,
                    count: 1,
                    late: false,
                });
            }
        } else if let (true, Some(t)) = (is_target, armed_at) {
            let rt = unit.rt;
            if let Some(Pending {
                phase: Phase::Armed { held, .. },
                ..
            }) = &mut self.pending
            {
                held.push_back(unit);
            }
            if rt.is_some_and(|r| r - t > HOLD_MAX) {
                self.complete_into("old rendition stalled, cut at the switch instant", &mut fx);
            }
        } else {
            fx.push(Effect::Drop {
                id,
                count: 1,
                late: false,
            });
        }
        fx
    }

    /// The target's switch point at `r`: armed; the selected rendition's
    /// units held at the prediction go out before `r`, the others are
    /// dropped, and the switch completes at once when the selected
    /// rendition is already there (or gone).
    fn arm(&mut self, id: u32, unit: Unit<P>, r: i64, pads: &impl Renditions, fx: &mut Fx<P>) {
        let old_gone = self.active.is_none_or(|a| pads.ended(a));
        let Some(sw) = self.pending.as_mut() else {
            return;
        };
        sw.to = Some(id);
        let old_held = std::mem::take(&mut sw.old_held);
        sw.predicted = None;
        sw.phase = Phase::Armed {
            t: r,
            held: VecDeque::from([unit]),
        };
        let mut reached = old_gone;
        if let Some(a) = self.active {
            for u in old_held {
                if u.rt.is_some_and(|x| x >= r) {
                    reached = true;
                    fx.push(Effect::Drop {
                        id: a,
                        count: 1,
                        late: false,
                    });
                } else {
                    self.output(a, u, false, fx);
                }
            }
        }
        if reached {
            self.complete_into("old rendition reached it", fx);
        }
    }

    /// Before the first output.
    fn startup(&mut self, id: u32, unit: Unit<P>, switch_point: bool, fx: &mut Fx<P>) {
        let gop = self.startup.entry(id).or_default();
        let mut discarded = 0u64;
        if switch_point {
            discarded += gop.len() as u64;
            gop.clear();
            gop.push(unit);
        } else if !gop.is_empty() && gop.len() < STARTUP_MAX {
            gop.push(unit);
        } else {
            discarded += gop.len() as u64 + 1;
            gop.clear();
        }
        if discarded > 0 {
            fx.push(Effect::Drop {
                id,
                count: discarded,
                late: false,
            });
        }
        let target = match &self.pending {
            Some(Pending {
                to,
                phase: Phase::Waiting,
                ..
            }) => to.unwrap_or(id),
            _ => return,
        };
        let Some(gop) = self.startup.remove(&target).filter(|g| !g.is_empty()) else {
            return;
        };
        let t = gop.first().and_then(|u| u.rt).unwrap_or(0);
        if let Some(sw) = self.pending.as_mut() {
            sw.to = Some(target);
            sw.phase = Phase::Armed {
                t,
                held: gop.into(),
            };
        }
        self.complete_into("first selection", fx);
    }

    /// Queues a unit for output unless it is behind the output.
    fn output(&mut self, id: u32, unit: Unit<P>, switch_point: bool, fx: &mut Fx<P>) {
        if let (Some(r), Some(l)) = (unit.rt, self.last_out) {
            if r <= l {
                fx.push(Effect::Drop {
                    id,
                    count: 1,
                    late: true,
                });
                return;
            }
        }
        if unit.rt.is_some() {
            self.last_out = unit.rt;
        }
        self.started = true;
        fx.push(Effect::Output {
            id,
            unit,
            switch_point,
        });
    }

    /// A unit of the selected rendition while a switch waits for the
    /// target's switch point: held (`None`) at or after the target's
    /// predicted next keyframe until the target shows that time (see the
    /// module documentation).
    fn hold_old(&mut self, u: Unit<P>, pads: &impl Renditions, fx: &mut Fx<P>) -> Option<Unit<P>> {
        let last_out = self.last_out;
        let Some(sw) = self.pending.as_mut() else {
            return Some(u);
        };
        if !matches!(sw.phase, Phase::Waiting) || !sw.predict {
            return Some(u);
        }
        let Some(target) = sw.to else { return Some(u) };
        if pads.ended(target) || pads.flushing(target) {
            return Some(u);
        }
        if !sw.old_held.is_empty() {
            let first = sw.old_held.front().and_then(|h| h.rt);
            let span = u.rt.zip(first).map_or(0, |(r, f)| r - f);
            sw.old_held.push_back(u);
            if span > OLD_HOLD_MAX {
                sw.predict = false;
                self.release_old_held(fx);
            }
            return None;
        }
        let Some(r) = u.rt else { return Some(u) };
        let target_rt = pads.last_rt(target);
        let base = last_out
            .unwrap_or(i64::MIN)
            .max(target_rt.unwrap_or(i64::MIN));
        let predicted = match sw.predicted.filter(|p| *p > base) {
            Some(p) => p,
            None => match pads.next_keyframe(target, base) {
                Some(p) => p,
                None => return Some(u),
            },
        };
        sw.predicted = Some(predicted);
        if r >= predicted && target_rt.is_none_or(|t| t < predicted) {
            sw.old_held.push_back(u);
            return None;
        }
        Some(u)
    }

    /// The selected rendition's units held at a prediction go out.
    fn release_old_held(&mut self, fx: &mut Fx<P>) {
        let Some(sw) = self.pending.as_mut() else {
            return;
        };
        let held = std::mem::take(&mut sw.old_held);
        sw.predicted = None;
        if let Some(a) = self.active {
            for u in held {
                self.output(a, u, false, fx);
            }
        }
    }

    fn cancel_into(&mut self, fx: &mut Fx<P>) {
        self.release_old_held(fx);
        self.pending = None;
        self.requested = None;
    }

    /// Gives up the switch under way (units held at a prediction go out).
    pub fn cancel(&mut self) -> Fx<P> {
        let mut fx = Vec::new();
        self.cancel_into(&mut fx);
        fx
    }

    fn complete_into(&mut self, why: &'static str, fx: &mut Fx<P>) {
        let Some(sw) = self.pending.take() else {
            return;
        };
        let Phase::Armed { t, held } = sw.phase else {
            self.pending = Some(sw);
            return;
        };
        let Some(to) = sw.to else { return };
        let from = self.active.replace(to);
        for (id, gop) in std::mem::take(&mut self.startup) {
            if !gop.is_empty() {
                fx.push(Effect::Drop {
                    id,
                    count: gop.len() as u64,
                    late: false,
                });
            }
        }
        self.requested = None;
        fx.push(Effect::Switched(Switched {
            from,
            to,
            at: t,
            reason: sw.reason,
            estimate: sw.estimate,
            why,
        }));
        for (i, u) in held.into_iter().enumerate() {
            self.output(to, u, i == 0, fx);
        }
    }

    /// Completes an armed switch now (the selected rendition ended);
    /// nothing when not armed.
    pub fn complete(&mut self, why: &'static str) -> Fx<P> {
        let mut fx = Vec::new();
        self.complete_into(why, &mut fx);
        fx
    }

    /// Rendition `id` is released: an armed switch away from it completes,
    /// a switch to it is given up; when it was selected and nothing is
    /// armed, nothing is selected any more.
    pub fn release(&mut self, id: u32) -> Fx<P> {
        let mut fx = Vec::new();
        self.startup.remove(&id);
        if self.active == Some(id) {
            if self.armed() {
                self.complete_into("old rendition released", &mut fx);
            } else {
                self.active = None;
                self.pending = None;
                self.requested = None;
            }
        } else if self.target() == Some(id) {
            self.cancel_into(&mut fx);
        }
        fx
    }

    /// Rendition `id` starts a new stream: its start-up units are
    /// forgotten (not counted as dropped).
    pub fn forget(&mut self, id: u32) {
        self.startup.remove(&id);
    }

    /// The output starts a new timeline (flush of the selected rendition):
    /// the switch under way is forgotten, the rendition stays selected.
    pub fn flush(&mut self) {
        self.pending = None;
        self.requested = None;
        self.last_out = None;
    }

    /// No switch under way any more (output ended).
    pub fn stop(&mut self) {
        self.pending = None;
        self.requested = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: i64 = SECOND / 30;

    #[derive(Default)]
    struct Pads {
        ended: Vec<u32>,
        last: BTreeMap<u32, i64>,
        /// Keyframe period per rendition, ns.
        period: BTreeMap<u32, i64>,
    }

    impl Renditions for Pads {
        fn ended(&self, id: u32) -> bool {
            self.ended.contains(&id)
        }
        fn flushing(&self, _: u32) -> bool {
            false
        }
        fn last_rt(&self, id: u32) -> Option<i64> {
            self.last.get(&id).copied()
        }
        fn next_keyframe(&self, id: u32, after: i64) -> Option<i64> {
            let p = *self.period.get(&id)?;
            Some((after.div_euclid(p) + 1) * p)
        }
    }

    /// Unit `n` (frame number) of rendition `id`: payload (id, n).
    fn unit(id: u32, n: i64) -> Unit<(u32, i64)> {
        Unit {
            payload: (id, n),
            rt: Some(n * F),
            end: Some((n + 1) * F),
        }
    }

    /// Short form of the effects: ('o', id, frame) output (upper case 'O'
    /// for a switch point), ('d', id, count), ('l', id, 1) late,
    /// ('s', to, at frame), ('k', id, 0) keyframe request.
    fn short(fx: &[Effect<(u32, i64)>]) -> Vec<(char, u32, i64)> {
        fx.iter()
            .map(|e| match e {
                Effect::Output {
                    unit,
                    switch_point,
                    id,
                } => (if *switch_point { 'O' } else { 'o' }, *id, unit.payload.1),
                Effect::Drop { id, count, late } => {
                    (if *late { 'l' } else { 'd' }, *id, *count as i64)
                }
                Effect::Switched(s) => ('s', s.to, s.at / F),
                Effect::RequestKeyframe(id) => ('k', *id, 0),
            })
            .collect()
    }

    fn decision(target: u32, reason: Reason) -> Option<Decision> {
        Some(Decision {
            target,
            reason,
            estimate: Some(1_000_000),
        })
    }

    /// Two renditions, keyframes every 30 frames, rendition 0 selected at
    /// frame 0; pushes frames `from..to` of both (0 first), with `key`
    /// deciding switch points. Returns the effects.
    fn run(
        s: &mut Switcher<(u32, i64)>,
        pads: &mut Pads,
        order: &[u32],
        from: i64,
        to: i64,
    ) -> Vec<(char, u32, i64)> {
        let mut out = Vec::new();
        for n in from..to {
            for &id in order {
                pads.last.insert(id, n * F);
                out.extend(short(&s.route(id, unit(id, n), n % 30 == 0, pads)));
                if let Some(l) = pads.last.get_mut(&id) {
                    *l = n * F;
                }
            }
        }
        out
    }

    fn started() -> (Switcher<(u32, i64)>, Pads) {
        let mut s = Switcher::new();
        let pads = Pads {
            period: BTreeMap::from([(0, 30 * F), (1, 30 * F)]),
            ..Pads::default()
        };
        assert!(s.want(decision(0, Reason::Initial), None).len() == 1);
        (s, pads)
    }

    #[test]
    fn first_selection_starts_on_the_kept_switch_point() {
        let mut s = Switcher::new();
        let pads = Pads::default();
        // Rendition 1 has units 0..4 kept; nothing chosen yet.
        for n in 0..4 {
            assert_eq!(short(&s.route(1, unit(1, n), n == 0, &pads)), vec![]);
        }
        // Rendition 0: a delta unit is dropped at once.
        assert_eq!(
            short(&s.route(0, unit(0, 0), false, &pads)),
            vec![('d', 0, 1)]
        );
        assert_eq!(s.startup_len(1), 4);
        // No target known: the first rendition with a switch point.
        assert!(s.want(None, Some(5)).is_empty());
        assert!(s.pending());
        assert_eq!(
            short(&s.route(1, unit(1, 4), false, &pads)),
            vec![
                ('s', 1, 0),
                ('O', 1, 0),
                ('o', 1, 1),
                ('o', 1, 2),
                ('o', 1, 3),
                ('o', 1, 4)
            ]
        );
        assert_eq!(
            (s.active(), s.pending(), s.last_out()),
            (Some(1), false, Some(4 * F))
        );
        // Rendition 0 is now dropped.
        assert_eq!(
            short(&s.route(0, unit(0, 5), false, &pads)),
            vec![('d', 0, 1)]
        );
    }

    #[test]
    fn first_selection_of_a_target_drops_the_other_kept_units() {
        let mut s = Switcher::new();
        let pads = Pads::default();
        for n in 0..3 {
            s.route(0, unit(0, n), n == 0, &pads);
        }
        assert_eq!(
            short(&s.want(decision(1, Reason::Initial), None)),
            vec![('k', 1, 0)]
        );
        // The target's first switch point starts the output; rendition 0's
        // three kept units are dropped.
        assert_eq!(
            short(&s.route(1, unit(1, 0), true, &pads)),
            vec![('d', 0, 3), ('s', 1, 0), ('O', 1, 0)]
        );
    }

    #[test]
    fn switch_at_the_next_keyframe_when_the_target_comes_second() {
        let (mut s, mut pads) = started();
        let fx = run(&mut s, &mut pads, &[0, 1], 0, 40);
        assert_eq!(fx[..2], [('s', 0, 0), ('O', 0, 0)]);
        assert_eq!(s.active(), Some(0));
        // Up to 1 decided at frame 40: the target's keyframe at 60 comes
        // after rendition 0's unit 60, which is held at the prediction.
        assert_eq!(
            short(&s.want(decision(1, Reason::Up), None)),
            vec![('k', 1, 0)]
        );
        let fx = run(&mut s, &mut pads, &[0, 1], 40, 62);
        let from = fx.iter().position(|e| *e == ('o', 0, 59)).unwrap();
        assert_eq!(
            fx[from..],
            [
                ('o', 0, 59),
                ('d', 1, 1),
                // Rendition 0's 60 is held at the prediction, then 1's 60
                // arms at 60: the held 60 is dropped and the switch done.
                ('d', 0, 1),
                ('s', 1, 60),
                ('O', 1, 60),
                ('d', 0, 1),
                ('o', 1, 61),
            ]
        );
        assert_eq!((s.active(), s.pending()), (Some(1), false));
    }

    #[test]
    fn armed_target_waits_for_the_old_rendition() {
        let (mut s, mut pads) = started();
        run(&mut s, &mut pads, &[0, 1], 0, 40);
        s.want(decision(1, Reason::Down), None);
        // Rendition 1 runs ahead: its 60..=63 come before 0's 60.
        pads.period.clear();
        let mut fx = Vec::new();
        for n in 40..60 {
            fx.extend(short(&s.route(0, unit(0, n), false, &pads)));
        }
        for n in 40..64 {
            fx.extend(short(&s.route(1, unit(1, n), n % 30 == 0, &pads)));
        }
        assert!(s.armed());
        assert_eq!(fx.iter().filter(|e| e.0 == 'o').count(), 20);
        assert_eq!(fx.iter().filter(|e| e.0 == 'd').count(), 20);
        // 0 reaches 60: switch; held 60..=63 go out.
        assert_eq!(
            short(&s.route(0, unit(0, 60), false, &pads)),
            vec![
                ('s', 1, 60),
                ('O', 1, 60),
                ('o', 1, 61),
                ('o', 1, 62),
                ('o', 1, 63),
                ('d', 0, 1)
            ]
        );
    }

    #[test]
    fn a_stalled_old_rendition_is_cut_after_hold_max() {
        let (mut s, mut pads) = started();
        run(&mut s, &mut pads, &[0, 1], 0, 40);
        s.want(decision(1, Reason::Down), None);
        pads.period.clear();
        let mut fx = Vec::new();
        // Rendition 0 stops at 45; rendition 1 goes on to 60 + 61 frames.
        for n in 40..45 {
            fx.extend(short(&s.route(0, unit(0, n), false, &pads)));
        }
        for n in 40..=120 {
            fx.extend(short(&s.route(1, unit(1, n), n % 30 == 0, &pads)));
        }
        // 60..=120 held (2 s); the switch happens with 121 past HOLD_MAX.
        assert!(s.armed());
        let fx = short(&s.route(1, unit(1, 121), false, &pads));
        assert_eq!(fx[0], ('s', 1, 60));
        assert_eq!(fx[1], ('O', 1, 60));
        assert_eq!(fx.len(), 2 + 61);
    }

    #[test]
    fn a_prediction_that_fails_for_old_hold_max_stops_predicting() {
        let (mut s, mut pads) = started();
        run(&mut s, &mut pads, &[0, 1], 0, 40);
        s.want(decision(1, Reason::Up), None);
        // The target stops at 40: rendition 0's units from its predicted
        // keyframe (60) are held until they span more than 1 s.
        let fx = run(&mut s, &mut pads, &[0], 40, 91);
        assert_eq!(fx.last(), Some(&('o', 0, 59)));
        assert_eq!(fx.len(), 20);
        // 91 is 31 frames (1.03 s) after 60: everything held goes out, and
        // from then on units go out at once.
        let fx = short(&s.route(0, unit(0, 91), false, &pads));
        assert_eq!(fx.len(), 32);
        assert_eq!((fx[0], fx[31]), (('o', 0, 60), ('o', 0, 91)));
        assert_eq!(
            short(&s.route(0, unit(0, 92), false, &pads)),
            vec![('o', 0, 92)]
        );
        assert_eq!(s.target(), Some(1));
    }

    #[test]
    fn cancel_and_release() {
        let (mut s, mut pads) = started();
        run(&mut s, &mut pads, &[0, 1], 0, 40);
        s.want(decision(1, Reason::Up), None);
        // Held at the prediction (60), then given up: the held unit goes out.
        let fx = run(&mut s, &mut pads, &[0], 40, 61);
        assert_eq!(fx.last(), Some(&('o', 0, 59)));
        assert_eq!(short(&s.want(None, None)), vec![('o', 0, 60)]);
        assert!(!s.pending());
        // The same target again asks for a keyframe again.
        assert_eq!(
            short(&s.want(decision(1, Reason::Up), None)),
            vec![('k', 1, 0)]
        );
        // Releasing the target gives up; releasing the selected rendition
        // unselects it.
        assert!(s.release(1).is_empty());
        assert!(!s.pending());
        assert!(s.release(0).is_empty());
        assert_eq!(s.active(), None);
        // Late units are dropped as such.
        let (mut s, mut pads) = started();
        run(&mut s, &mut pads, &[0], 0, 10);
        assert_eq!(
            short(&s.route(0, unit(0, 5), false, &pads)),
            vec![('l', 0, 1)]
        );
    }

    #[test]
    fn an_ended_old_rendition_completes_at_the_switch_point() {
        let (mut s, mut pads) = started();
        run(&mut s, &mut pads, &[0, 1], 0, 40);
        s.want(decision(1, Reason::Down), None);
        pads.ended.push(0);
        let fx = run(&mut s, &mut pads, &[1], 40, 62);
        assert_eq!(
            fx[fx.len() - 3..],
            [('s', 1, 60), ('O', 1, 60), ('o', 1, 61)][..]
        );
        // An armed switch completes when asked (EOS of the selected one).
        let (mut s, mut pads) = started();
        run(&mut s, &mut pads, &[0, 1], 0, 40);
        s.want(decision(1, Reason::Down), None);
        pads.period.clear();
        run(&mut s, &mut pads, &[1], 40, 62);
        assert!(s.armed());
        assert!(
            s.want(decision(0, Reason::Up), None).is_empty(),
            "armed: kept"
        );
        assert_eq!(
            short(&s.complete("old rendition ended")),
            vec![('s', 1, 60), ('O', 1, 60), ('o', 1, 61)]
        );
    }
}
