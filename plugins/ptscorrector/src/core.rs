// SPDX-License-Identifier: MPL-2.0

//! The timestamp repair engine of `ptscorrector`, free of GStreamer types so
//! that it is cheap per buffer and testable with exact numbers.
//!
//! All times are signed nanoseconds of running time. Two concepts, one
//! module each:
//! - [`timeline`]: the [`Timeline`] all streams of one element share. It
//!   holds the program's jumps (*epochs*: a jump found by the first stream
//!   to meet it is the shift of every stream, whichever stream that is and
//!   however far apart the streams resume) and the drift *slew* (one
//!   piecewise-linear offset for every stream). Everything that moves one
//!   stream against the others lives there, so that nothing else can.
//! - [`repair`]: the [`StreamCore`] each stream owns: unwrapping, jump
//!   detection (handed to the timeline), missing and non-monotonic
//!   timestamps, DTS rebuilt through a reorder window, gaps, overlaps and
//!   duplicates, all within the stream.
//!
//! Domains a timestamp goes through, per stream:
//! 1. *input*: running time of the buffer as it arrived;
//! 2. *unwrapped*: input plus whole 2^33 and 2^32 wraps of the 90 kHz clock
//!    (MPEG-TS PES and RTP timestamps, ISO/IEC 13818-1 2.4.3.7, RFC 3550 5.1);
//! 3. *continuous*: unwrapped plus the stream's jump offset (the sum of the
//!    shifts of the timeline's epochs it followed);
//! 4. *output*: continuous plus the shared drift slew (and DTS rebuilt where
//!    the input's DTS could not be used).

pub mod repair;
pub mod timeline;

pub use repair::{StreamCore, TICK};
pub use timeline::{Timeline, EPOCH_MATCH_WINDOW};

/// One second in ns.
pub const SECOND: i64 = 1_000_000_000;

/// 2^33 ticks of 90 kHz (the MPEG-TS PTS/DTS wrap), in ns, rounded:
/// 95 443.717 688 889 s, about 26.5 hours.
pub const WRAP_33_NS: i64 = 95_443_717_688_889;
/// 2^32 ticks of 90 kHz (the RTP timestamp wrap of video), in ns, rounded:
/// 47 721.858 844 444 s, about 13.3 hours.
pub const WRAP_32_NS: i64 = 47_721_858_844_444;

/// Streams are told apart by what the repair may assume of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Video (raw or encoded): DTS must increase strictly; PTS may be
    /// reordered.
    Video,
    /// Encoded video whose frames depend on each other: gaps cannot be filled
    /// by repeating a buffer.
    InterVideo,
    /// Audio or anything else: PTS must increase strictly, DTS = PTS.
    Audio,
}

/// What was repaired, as named in the element message and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repair {
    /// PTS missing, interpolated.
    MissingPts,
    /// DTS missing (video), rebuilt from the reordered PTS.
    MissingDts,
    /// DTS later than PTS (video), rebuilt.
    DtsAfterPts,
    /// DTS not increasing (video), rebuilt.
    NonMonotonicDts,
    /// Audio PTS behind the previous buffer's end but not a duplicate:
    /// moved to the expected time.
    Overlap,
    /// Timestamp ahead of the expected one by more than the jump threshold.
    JumpForward,
    /// Timestamp behind the expected one by more than the jump threshold.
    JumpBackward,
    /// 2^33 or 2^32 wrap of the 90 kHz clock, unwrapped.
    Wrap,
    /// Missing frames (a step of more than 1.5 frame durations, below the
    /// jump threshold).
    Gap,
    /// A buffer with the timestamp of one already sent.
    Duplicate,
    /// Drift against the pipeline clock beyond the tolerance: slewing
    /// started or stopped.
    Drift,
}

impl Repair {
    /// Every kind, in the order of [`Repair::index`].
    pub const ALL: [Repair; 11] = [
        Repair::MissingPts,
        Repair::MissingDts,
        Repair::DtsAfterPts,
        Repair::NonMonotonicDts,
        Repair::Overlap,
        Repair::JumpForward,
        Repair::JumpBackward,
        Repair::Wrap,
        Repair::Gap,
        Repair::Duplicate,
        Repair::Drift,
    ];

    /// Position in [`Repair::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in messages (`kind` field) and the `stats` structure.
    pub fn name(self) -> &'static str {
        match self {
            Repair::MissingPts => "missing-pts",
            Repair::MissingDts => "missing-dts",
            Repair::DtsAfterPts => "dts-after-pts",
            Repair::NonMonotonicDts => "non-monotonic-dts",
            Repair::Overlap => "overlap",
            Repair::JumpForward => "jump-forward",
            Repair::JumpBackward => "jump-backward",
            Repair::Wrap => "wrap",
            Repair::Gap => "gap",
            Repair::Duplicate => "duplicate",
            Repair::Drift => "drift",
        }
    }
}

/// One repair as reported to the element: `before` is the input timestamp
/// (running time, ns; `None` when missing), `after` the repaired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// What was repaired.
    pub kind: Repair,
    /// Input running time, ns.
    pub before: Option<i64>,
    /// Output running time, ns.
    pub after: Option<i64>,
}

/// Settings of the repair, shared by every stream of an element.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// A step from the expected timestamp larger than this (ns) is a jump.
    pub jump_threshold: i64,
    /// Frames of lookahead used to rebuild DTS of reordered video.
    pub max_reorder: u32,
    /// Repeat the previous buffer (or send a gap, for inter-coded video)
    /// into a gap instead of only counting it.
    pub fill_gaps: bool,
    /// Drop duplicates instead of passing them on with repaired timestamps.
    pub drop_duplicates: bool,
    /// Drift beyond this (ns) starts a slew.
    pub drift_tolerance: i64,
    /// Largest slew rate, parts per million of stream time.
    pub max_slew_ppm: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            jump_threshold: SECOND,
            max_reorder: 4,
            fill_gaps: false,
            drop_duplicates: true,
            drift_tolerance: 20_000_000,
            max_slew_ppm: 1000,
        }
    }
}

/// A buffer as the engine sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input {
    /// PTS as running time, ns.
    pub pts: Option<i64>,
    /// DTS as running time, ns.
    pub dts: Option<i64>,
    /// Duration, ns.
    pub duration: Option<i64>,
    /// Arrival as running time of the pipeline clock, ns (drift only).
    pub arrival: Option<i64>,
}

/// What the engine asks the element to send, in order.
#[derive(Debug)]
pub enum Output<T> {
    /// A buffer with its repaired timestamps (running time, ns).
    Buffer {
        /// The buffer.
        payload: T,
        /// Repaired PTS.
        pts: i64,
        /// Repaired DTS (= PTS for audio).
        dts: i64,
        /// Set DISCONT: the buffer follows a jump.
        discont: bool,
        /// Duration scaled by the slew rate (ns), when slewing; else the
        /// buffer's own.
        duration: Option<i64>,
        /// A copy of an earlier buffer sent to fill a gap.
        filler: bool,
    },
    /// A gap of `duration` ns at `pts` (inter-coded video cannot be filled).
    Gap {
        /// Start of the gap, running time ns.
        pts: i64,
        /// Length, ns.
        duration: i64,
    },
}

/// Counts of one stream.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Buffers received.
    pub buffers: u64,
    /// Repairs per kind, indexed by [`Repair::index`].
    pub repairs: [u64; Repair::ALL.len()],
    /// Buffers sent to fill gaps.
    pub filled: u64,
}
