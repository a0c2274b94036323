// SPDX-License-Identifier: MPL-2.0

//! The element's settings and the property specifications.

use gst::glib;
use gst::prelude::*;

use super::EstimatorMode;
use crate::policy::{Config, SECOND};

const DEFAULT_SAFETY_FACTOR: f64 = 0.85;
const DEFAULT_UP_FACTOR: f64 = 1.3;
const DEFAULT_MIN_SWITCH_INTERVAL: u64 = 2 * SECOND as u64;
const DEFAULT_FAST_HALF_LIFE: f64 = 2.0;
const DEFAULT_SLOW_HALF_LIFE: f64 = 8.0;
const DEFAULT_MAX_QUEUE_DELAY: u64 = SECOND as u64;

#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) bandwidth_estimate: u64,
    pub(super) estimator: EstimatorMode,
    pub(super) safety_factor: f64,
    pub(super) up_factor: f64,
    pub(super) min_switch_interval: u64,
    pub(super) fast_half_life: f64,
    pub(super) slow_half_life: f64,
    pub(super) max_queue_delay: u64,
    pub(super) force_key_unit: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bandwidth_estimate: 0,
            estimator: EstimatorMode::Auto,
            safety_factor: DEFAULT_SAFETY_FACTOR,
            up_factor: DEFAULT_UP_FACTOR,
            min_switch_interval: DEFAULT_MIN_SWITCH_INTERVAL,
            fast_half_life: DEFAULT_FAST_HALF_LIFE,
            slow_half_life: DEFAULT_SLOW_HALF_LIFE,
            max_queue_delay: DEFAULT_MAX_QUEUE_DELAY,
            force_key_unit: false,
        }
    }
}

impl Settings {
    pub(super) fn config(&self) -> Config {
        Config {
            safety_factor: self.safety_factor,
            up_factor: self.up_factor,
            min_switch_interval: self.min_switch_interval.min(i64::MAX as u64) as i64,
            fast_half_life: self.fast_half_life,
            slow_half_life: self.slow_half_life,
            max_queue_delay: self.max_queue_delay.min(i64::MAX as u64) as i64,
        }
    }
}

impl Settings {
    /// Sets the property `name` (any but `bandwidth-estimate`, which the
    /// element handles); the value was type-checked by GObject.
    pub(super) fn set(&mut self, name: &str, value: &glib::Value) {
        match name {
            "bandwidth-estimate" => self.bandwidth_estimate = value.get().unwrap_or(0),
            "estimator" => self.estimator = value.get().unwrap_or_default(),
            "safety-factor" => self.safety_factor = value.get().unwrap_or(self.safety_factor),
            "up-factor" => self.up_factor = value.get().unwrap_or(self.up_factor),
            "min-switch-interval" => {
                self.min_switch_interval = value.get().unwrap_or(self.min_switch_interval)
            }
            "fast-half-life" => self.fast_half_life = value.get().unwrap_or(self.fast_half_life),
            "slow-half-life" => self.slow_half_life = value.get().unwrap_or(self.slow_half_life),
            "max-queue-delay" => self.max_queue_delay = value.get().unwrap_or(self.max_queue_delay),
            "force-key-unit" => self.force_key_unit = value.get().unwrap_or(self.force_key_unit),
            _ => {}
        }
    }

    /// The value of the settings property `name` (`None` value for others).
    pub(super) fn value(&self, name: &str) -> glib::Value {
        match name {
            "bandwidth-estimate" => self.bandwidth_estimate.to_value(),
            "estimator" => self.estimator.to_value(),
            "safety-factor" => self.safety_factor.to_value(),
            "up-factor" => self.up_factor.to_value(),
            "min-switch-interval" => self.min_switch_interval.to_value(),
            "fast-half-life" => self.fast_half_life.to_value(),
            "slow-half-life" => self.slow_half_life.to_value(),
            "max-queue-delay" => self.max_queue_delay.to_value(),
            "force-key-unit" => self.force_key_unit.to_value(),
            _ => None::<String>.to_value(),
        }
    }
}

/// The element's property specifications.
pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecUInt64::builder("bandwidth-estimate")
            .nick("Bandwidth Estimate")
            .blurb(
                "Estimate of the downstream link set by the application, in bits/s \
                 (0 = none from this property): from each set on it is the estimate \
                 (averages restarted at it, push timing ignored), until an \
                 abr-bandwidth-estimate event; changeable in PLAYING",
            )
            .default_value(0)
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("estimator", EstimatorMode::Auto)
            .nick("Estimator")
            .blurb(
                "Built-in estimate from push timing on src, never while \
                 bandwidth-estimate is non-zero: none, push-timing, auto (also not \
                 within 10 s of an abr-bandwidth-estimate event)",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("safety-factor")
            .nick("Safety Factor")
            .blurb(
                "A rendition is under the estimate when its bit rate <= safety-factor x \
                 estimate; the current one above that is left at the next keyframe unless \
                 the queue budget (max-queue-delay) keeps it (0.1 to 1.0)",
            )
            .minimum(0.1)
            .maximum(1.0)
            .default_value(DEFAULT_SAFETY_FACTOR)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("up-factor")
            .nick("Up Factor")
            .blurb(
                "Headroom for an upswitch at once: a higher rendition with bit rate \
                 x up-factor <= estimate is taken without waiting (1.0 to 10.0; keep \
                 it >= 1 / safety-factor)",
            )
            .minimum(1.0)
            .maximum(10.0)
            .default_value(DEFAULT_UP_FACTOR)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt64::builder("min-switch-interval")
            .nick("Min Switch Interval")
            .blurb(
                "How long an upswitch without headroom (bit rate <= safety-factor x \
                 estimate, or up to the estimate within the queue budget) must hold, \
                 and the least time from any switch to an upswitch, in ns of running \
                 time (0 to 1 hour; downswitches are never held back)",
            )
            .maximum(3_600 * SECOND as u64)
            .default_value(DEFAULT_MIN_SWITCH_INTERVAL)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("fast-half-life")
            .nick("Fast Half-Life")
            .blurb(
                "Half-life of the fast moving average of the estimate samples, in \
                 seconds of running time (0.01 to 600); reported in stats \
                 (estimate-fast), and the estimate after bandwidth-estimate is set \
                 back to 0; switches act on the latest sample",
            )
            .minimum(0.01)
            .maximum(600.0)
            .default_value(DEFAULT_FAST_HALF_LIFE)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("slow-half-life")
            .nick("Slow Half-Life")
            .blurb(
                "Half-life of the slow moving average of the estimate samples, in \
                 seconds of running time (0.01 to 3600); reported in stats \
                 (estimate-slow)",
            )
            .minimum(0.01)
            .maximum(3600.0)
            .default_value(DEFAULT_SLOW_HALF_LIFE)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt64::builder("max-queue-delay")
            .nick("Max Queue Delay")
            .blurb(
                "Queue delay budget of the link model (what was sent against the \
                 estimate), in ns (0 to 60 s; 0 turns it off): a rendition above \
                 safety-factor x estimate (never above the estimate on an upswitch) is \
                 kept or taken while the modelled queue stays within it and estimates \
                 keep coming; a longer \
                 queue makes it go down. Set it below the receiver's buffer",
            )
            .maximum(60 * SECOND as u64)
            .default_value(DEFAULT_MAX_QUEUE_DELAY)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("force-key-unit")
            .nick("Force Key Unit")
            .blurb(
                "On a decided switch, send an upstream force-key-unit event \
                 (all-headers=true) on the target's pad so its encoder makes an IDR \
                 sooner",
            )
            .default_value(false)
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("current")
            .nick("Current Rendition")
            .blurb("Name of the sink pad being forwarded (NULL before the first selection)")
            .read_only()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb(
                "current, pending (pad names), estimate (the latest sample), \
                 estimate-fast, estimate-slow (bits/s), queue-delay (modelled, s), switches, switches-up, switches-down, buffers-forwarded, \
                 buffers-dropped, parameter-sets-inserted, and per pad in \"renditions\"",
            )
            .read_only()
            .build(),
    ]
}
