// SPDX-License-Identifier: MPL-2.0

use std::collections::VecDeque;
use std::fs;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_exporter as exporter;
use m3u8_rs::{MasterPlaylist, Resolution, VariantStream};

use super::PlaylistType;
use crate::codec::{self, AacConfig, ParameterSets, VideoCodec};
use crate::playlist::{self, Entry, Kind, MediaPlaylistState};
use crate::segment::{Sample, SegmentError, SegmentWriter, TrackFormat, TsSegmentWriter};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "hlsladdersink",
        gst::DebugColorFlags::empty(),
        Some("Keyframe-aligned multi-variant HLS sink"),
    )
});

const DEFAULT_OUTPUT_DIRECTORY: &str = ".";
const DEFAULT_TARGET_DURATION: u32 = 6;
const DEFAULT_PLAYLIST_LENGTH: u32 = 6;
const DEFAULT_MAX_FILES: u32 = 20;
const DEFAULT_MULTIVARIANT_NAME: &str = "index.m3u8";
/// Name of every variant's media playlist inside its directory.
const MEDIA_PLAYLIST_NAME: &str = "index.m3u8";
/// Name of the bus element message posted per segment.
pub const SEGMENT_MESSAGE_NAME: &str = "hlsladdersink-segment";

const SECOND: i64 = 1_000_000_000;
/// A segment rounds above the target duration from target + 0.5 s on.
const ROUNDING_MARGIN_NS: i64 = SECOND / 2;
/// Tolerance for matching keyframe PTS across variants when the frame rate is
/// unknown, in ns.
const DEFAULT_TOLERANCE_NS: i64 = 20_000_000;
/// Audio held ahead of the video that will consume it, in ns. Audio from a
/// separate non-live source can run far ahead of a slow video encoder; it is
/// small (128 kbit/s is about 1 MB a minute), so much of it is kept. Only a
/// backlog beyond this (video stalled or absent) is dropped, with a warning.
const AUDIO_BACKLOG_NS: i64 = 120 * SECOND;
/// A DTS step larger than this (or backwards by more than half of it) is a
/// timestamp discontinuity, in ns.
const JUMP_THRESHOLD_NS: i64 = SECOND;

#[derive(Debug, Clone)]
struct Settings {
    output_directory: String,
    target_duration: u32,
    playlist_type: PlaylistType,
    playlist_length: u32,
    max_files: u32,
    multivariant_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            output_directory: DEFAULT_OUTPUT_DIRECTORY.into(),
            target_duration: DEFAULT_TARGET_DURATION,
            playlist_type: PlaylistType::default(),
            playlist_length: DEFAULT_PLAYLIST_LENGTH,
            max_files: DEFAULT_MAX_FILES,
            multivariant_name: DEFAULT_MULTIVARIANT_NAME.into(),
        }
    }
}

/// Settings frozen when streaming starts (READY to PAUSED).
#[derive(Debug, Clone)]
struct Config {
    dir: PathBuf,
    target_ns: i64,
    target_s: u64,
    kind: Kind,
    window: usize,
    max_files: usize,
    multivariant_name: String,
}

impl Config {
    fn from_settings(s: &Settings) -> Self {
        Config {
            dir: PathBuf::from(&s.output_directory),
            target_ns: s.target_duration as i64 * SECOND,
            target_s: s.target_duration as u64,
            kind: match s.playlist_type {
                PlaylistType::Live => Kind::Live,
                PlaylistType::Event => Kind::Event,
                PlaylistType::Vod => Kind::Vod,
            },
            window: s.playlist_length as usize,
            max_files: if s.max_files == 0 {
                0
            } else {
                (s.max_files as usize).max(s.playlist_length as usize)
            },
            multivariant_name: s.multivariant_name.clone(),
        }
    }
}

/// Prometheus families of this element (see the exporter crate).
struct Metrics {
    segments: prometheus::IntCounterVec,
    bytes: prometheus::IntCounterVec,
    durations: prometheus::HistogramVec,
    overruns: prometheus::IntCounterVec,
    misaligned: prometheus::IntCounterVec,
    write_errors: prometheus::IntCounterVec,
    dropped: prometheus::IntCounterVec,
    media_sequence: prometheus::IntGaugeVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    segments: exporter::counter_vec(
        "gst_hls_segments_written_total",
        "HLS media segments written, per variant.",
    ),
    bytes: exporter::counter_vec(
        "gst_hls_segment_bytes_total",
        "Bytes of HLS media segments written, per variant.",
    ),
    durations: exporter::histogram_vec(
        "gst_hls_segment_duration_seconds",
        "Durations of the HLS media segments written.",
        vec![
            0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 20.0,
        ],
    ),
    overruns: exporter::counter_vec(
        "gst_hls_target_duration_overruns_total",
        "Segments whose rounded duration exceeds EXT-X-TARGETDURATION for want of a keyframe.",
    ),
    misaligned: exporter::counter_vec(
        "gst_hls_keyframe_misalignments_total",
        "Cuts where a variant had no keyframe at the reference variant's cut PTS.",
    ),
    write_errors: exporter::counter_vec(
        "gst_hls_write_errors_total",
        "Failed writes or deletions of segments and playlists.",
    ),
    dropped: exporter::counter_vec(
        "gst_hls_dropped_buffers_total",
        "Input buffers dropped: no timestamp, before the first keyframe, or too late.",
    ),
    media_sequence: exporter::gauge_vec(
        "gst_hls_media_sequence",
        "EXT-X-MEDIA-SEQUENCE of the variant's media playlist.",
    ),
});

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    segments_written: u64,
    overruns: u64,
    misaligned: u64,
    write_errors: u64,
    dropped: u64,
    early_deletions: u64,
}

/// A cut point decided on the reference variant.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// PTS of the keyframe that starts the next segment, running time in ns.
    pts: i64,
    /// The next segment follows a discontinuity.
    discont: bool,
}

struct VideoStream {
    pad: super::HlsLadderSinkPad,
    variant: String,
    dir: PathBuf,
    segment: gst::FormattedSegment<gst::ClockTime>,
    seen_segment: bool,
    codec: Option<VideoCodec>,
    nal_length_size: Option<usize>,
    parameter_sets: ParameterSets,
    width: Option<u64>,
    height: Option<u64>,
    framerate: Option<f64>,
    frame_duration: Option<i64>,
    writer: Option<TsSegmentWriter>,
    pending: VecDeque<Sample>,
    started: bool,
    discont_seen: bool,
    last_dts: Option<i64>,
    max_pts_end: i64,
    next_cut: usize,
    open_discont: bool,
    eos: bool,
    playlist: MediaPlaylistState,
    next_seq: u64,
    written_end: Option<i64>,
    peak_bps: u64,
    total_bits: u64,
    total_ns: i64,
}

impl VideoStream {
    fn new(pad: super::HlsLadderSinkPad, variant: String) -> Self {
        VideoStream {
            pad,
            variant,
            dir: PathBuf::new(),
            segment: gst::FormattedSegment::new(),
            seen_segment: false,
            codec: None,
            nal_length_size: None,
            parameter_sets: ParameterSets::default(),
            width: None,
            height: None,
            framerate: None,
            frame_duration: None,
            writer: None,
            pending: VecDeque::new(),
            started: false,
            discont_seen: false,
            last_dts: None,
            max_pts_end: i64::MIN,
            next_cut: 0,
            open_discont: false,
            eos: false,
            playlist: MediaPlaylistState::new(),
            next_seq: 0,
            written_end: None,
            peak_bps: 0,
            total_bits: 0,
            total_ns: 0,
        }
    }

    fn tolerance(&self) -> i64 {
        self.frame_duration
            .map(|d| d / 2)
            .unwrap_or(DEFAULT_TOLERANCE_NS)
    }
}

struct AudioStream {
    pad: super::HlsLadderSinkPad,
    segment: gst::FormattedSegment<gst::ClockTime>,
    config: Option<AacConfig>,
    adts: bool,
    pending: VecDeque<Sample>,
    max_pts_end: i64,
    next_pts: Option<i64>,
    eos: bool,
}

impl AudioStream {
    fn new(pad: super::HlsLadderSinkPad) -> Self {
        AudioStream {
            pad,
            segment: gst::FormattedSegment::new(),
            config: None,
            adts: true,
            pending: VecDeque::new(),
            max_pts_end: i64::MIN,
            next_pts: None,
            eos: false,
        }
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Video(usize),
    Audio(usize),
}

#[derive(Default)]
struct State {
    cfg: Option<Config>,
    pipeline: String,
    videos: Vec<VideoStream>,
    audios: Vec<AudioStream>,
    cuts: Vec<Cut>,
    ref_seg_start: Option<i64>,
    ref_candidate: Option<i64>,
    ref_max_end: i64,
    discont_pending: bool,
    last_master: Option<Vec<u8>>,
    finished: bool,
    warned_early_delete: bool,
    warned_audio_backlog: bool,
    /// All pads reached EOS; the EOS message is posted once PLAYING.
    eos_reached: bool,
    /// Set in the PAUSED to PLAYING transition, under the same lock as
    /// `eos_reached`, so that exactly one side posts EOS.
    playing: bool,
    stats: Stats,
}

impl State {
    fn slot(&self, pad: &super::HlsLadderSinkPad) -> Option<Slot> {
        if let Some(i) = self.videos.iter().position(|v| &v.pad == pad) {
            return Some(Slot::Video(i));
        }
        self.audios
            .iter()
            .position(|a| &a.pad == pad)
            .map(Slot::Audio)
    }

    fn all_eos(&self) -> bool {
        !self.videos.is_empty()
            && self.videos.iter().all(|v| v.eos)
            && self.audios.iter().all(|a| a.eos)
    }
}

/// Upstream requests collected under the state lock and sent after it.
type KeyUnitRequests = Vec<(super::HlsLadderSinkPad, i64)>;

#[derive(Default)]
pub struct HlsLadderSinkPad {
    variant_name: Mutex<Option<String>>,
}

#[glib::object_subclass]
impl ObjectSubclass for HlsLadderSinkPad {
    const NAME: &'static str = "GstHlsLadderSinkPad";
    type Type = super::HlsLadderSinkPad;
    type ParentType = gst::Pad;
}

impl ObjectImpl for HlsLadderSinkPad {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![glib::ParamSpecString::builder("variant-name")
                .nick("Variant Name")
                .blurb(
                    "Name of the variant and of its subdirectory of output-directory \
                     (video pads only; default v0, v1, ... from the pad number). \
                     Letters, digits, '-' and '_' only",
                )
                .mutable_ready()
                .build()]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "variant-name" {
            let name: Option<String> = value.get().expect("type checked upstream");
            let valid = name.as_deref().is_none_or(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
            if valid {
                *self.variant_name.lock().unwrap() = name;
            } else {
                gst::warning!(
                    CAT,
                    imp = self,
                    "Ignoring variant-name {:?}: use letters, digits, '-' and '_'",
                    name
                );
            }
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "variant-name" => self.variant_name.lock().unwrap().to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for HlsLadderSinkPad {}
impl PadImpl for HlsLadderSinkPad {}

impl HlsLadderSinkPad {
    fn variant_name(&self) -> Option<String> {
        self.variant_name.lock().unwrap().clone()
    }
}

#[derive(Default)]
pub struct HlsLadderSink {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for HlsLadderSink {
    const NAME: &'static str = "GstHlsLadderSink";
    type Type = super::HlsLadderSink;
    type ParentType = gst::Element;
}

fn running_time(seg: &gst::FormattedSegment<gst::ClockTime>, t: gst::ClockTime) -> Option<i64> {
    seg.to_running_time_full(t).map(|s| match s {
        gst::Signed::Positive(v) => v.nseconds() as i64,
        gst::Signed::Negative(v) => -(v.nseconds() as i64),
    })
}

impl HlsLadderSink {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn labels<'a>(&'a self, pipeline: &'a str, stream: &'a str) -> [String; 3] {
        [
            pipeline.to_string(),
            self.obj().name().to_string(),
            stream.to_string(),
        ]
    }

    fn count(&self, state: &mut State, family: &prometheus::IntCounterVec, stream: &str) {
        let l = self.labels(&state.pipeline, stream);
        family
            .with_label_values(&[l[0].as_str(), l[1].as_str(), l[2].as_str()])
            .inc();
    }

    fn drop_buffer(&self, state: &mut State, stream: &str, why: &str) {
        state.stats.dropped += 1;
        self.count(state, &METRICS.dropped, stream);
        gst::debug!(CAT, imp = self, "Dropping buffer on {}: {}", stream, why);
    }

    fn sink_chain(
        &self,
        pad: &super::HlsLadderSinkPad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut requests = KeyUnitRequests::new();
        let res = {
            let mut state = self.lock_state();
            if state.cfg.is_none() || state.finished {
                return Err(gst::FlowError::Flushing);
            }
            match state.slot(pad) {
                Some(Slot::Video(i)) => self.handle_video(&mut state, i, buffer, &mut requests),
                Some(Slot::Audio(i)) => self.handle_audio(&mut state, i, buffer),
                None => Err(gst::FlowError::NotLinked),
            }
            .and_then(|_| self.drain(&mut state, false))
        };
        for (pad, running_time) in requests {
            let event = gst_video::UpstreamForceKeyUnitEvent::builder()
                .running_time(gst::ClockTime::from_nseconds(running_time.max(0) as u64))
                .all_headers(true)
                .build();
            gst::log!(CAT, obj = pad, "Requesting a keyframe at {}", running_time);
            let _ = pad.push_event(event);
        }
        res
    }

    fn handle_video(
        &self,
        state: &mut State,
        i: usize,
        buffer: gst::Buffer,
        requests: &mut KeyUnitRequests,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let target_ns = state.cfg.as_ref().expect("started").target_ns;
        let v = &mut state.videos[i];
        let Some(codec) = v.codec else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Buffer on {} before caps", v.pad.name())
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let Some(pts) = buffer.pts().or(buffer.dts()) else {
            let variant = v.variant.clone();
            self.drop_buffer(state, &variant, "no timestamp");
            return Ok(gst::FlowSuccess::Ok);
        };
        let Some(pts) = running_time(&v.segment, pts) else {
            let variant = v.variant.clone();
            self.drop_buffer(state, &variant, "outside the segment");
            return Ok(gst::FlowSuccess::Ok);
        };
        let dts = buffer
            .dts()
            .and_then(|d| running_time(&v.segment, d))
            .unwrap_or(pts);
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let duration = buffer
            .duration()
            .map(|d| d.nseconds() as i64)
            .or(v.frame_duration)
            .unwrap_or(0);

        let mut discont = false;
        if let Some(last) = v.last_dts {
            if dts < last - JUMP_THRESHOLD_NS / 2 || dts > last + JUMP_THRESHOLD_NS + duration {
                gst::info!(
                    CAT,
                    imp = self,
                    "Timestamp discontinuity on {}: DTS {} after {}",
                    v.pad.name(),
                    dts,
                    last
                );
                discont = true;
            }
        }
        v.last_dts = Some(dts);
        if !v.started {
            if !keyframe {
                let variant = v.variant.clone();
                self.drop_buffer(state, &variant, "before the first keyframe");
                return Ok(gst::FlowSuccess::Ok);
            }
            v.started = true;
            discont = false;
        }
        if discont {
            v.discont_seen = true;
            state.discont_pending = true;
        }
        let v = &mut state.videos[i];
        if keyframe && v.nal_length_size.is_none() {
            if let Ok(map) = buffer.map_readable() {
                if let Some(ps) = codec::parameter_sets_in_au(codec, &map) {
                    if ps.annexb != v.parameter_sets.annexb {
                        v.parameter_sets = ps;
                    }
                }
            }
        }
        let sample = Sample {
            pts,
            dts,
            duration,
            keyframe,
            discont,
            buffer,
        };
        v.max_pts_end = v.max_pts_end.max(sample.pts_end());
        v.pending.push_back(sample);

        if i == 0 {
            self.decide_cut(state, pts, keyframe, duration, target_ns, requests);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Cut policy, applied on every buffer of the reference variant; see the
    /// element documentation.
    fn decide_cut(
        &self,
        state: &mut State,
        pts: i64,
        keyframe: bool,
        duration: i64,
        target_ns: i64,
        requests: &mut KeyUnitRequests,
    ) {
        let tol = state.videos[0].tolerance();
        let Some(start) = state.ref_seg_start else {
            // The first keyframe opens the first segment.
            state.ref_seg_start = Some(pts);
            state.ref_max_end = pts + duration;
            state.discont_pending = false;
            self.request_key_units(state, pts + target_ns, requests);
            return;
        };
        let mut cut = None;
        if keyframe && pts != start {
            if state.discont_pending {
                cut = Some(Cut { pts, discont: true });
            } else if pts > start && pts - start >= target_ns - tol {
                cut = Some(Cut {
                    pts,
                    discont: false,
                });
            } else if pts > start {
                state.ref_candidate = Some(pts);
            }
        }
        if cut.is_none() {
            state.ref_max_end = state.ref_max_end.max(pts + duration);
            if state.ref_max_end - start >= target_ns + ROUNDING_MARGIN_NS {
                if let Some(c) = state.ref_candidate.take() {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "No keyframe at the target duration, cutting early at {}",
                        c
                    );
                    cut = Some(Cut {
                        pts: c,
                        discont: false,
                    });
                }
            }
        } else {
            state.ref_max_end = pts + duration;
        }
        if let Some(cut) = cut {
            if cut.discont {
                state.discont_pending = false;
            }
            state.cuts.push(cut);
            state.ref_seg_start = Some(cut.pts);
            state.ref_candidate = None;
            self.request_key_units(state, cut.pts + target_ns, requests);
        }
    }

    /// Asks every video encoder for a keyframe at running time `at` (ns).
    /// A variant whose stream is already past `at` is not asked: an encoder
    /// that gets a request for a time it has passed forces a keyframe at its
    /// current frame, which would shift its GOPs off the other variants'.
    fn request_key_units(&self, state: &State, at: i64, requests: &mut KeyUnitRequests) {
        for v in &state.videos {
            if v.max_pts_end < at {
                requests.push((v.pad.clone(), at));
            }
        }
    }

    fn handle_audio(
        &self,
        state: &mut State,
        i: usize,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let target_ns = state.cfg.as_ref().expect("started").target_ns;
        let a = &mut state.audios[i];
        if a.config.is_none() && a.adts {
            if let Ok(map) = buffer.map_readable() {
                a.config = AacConfig::from_adts(&map);
            }
        }
        let pts = buffer
            .pts()
            .and_then(|t| running_time(&a.segment, t))
            .or(a.next_pts);
        let Some(pts) = pts else {
            let stream = a.pad.name().to_string();
            self.drop_buffer(state, &stream, "no timestamp");
            return Ok(gst::FlowSuccess::Ok);
        };
        let duration = buffer.duration().map(|d| d.nseconds() as i64).unwrap_or(0);
        a.next_pts = Some(pts + duration);
        let sample = Sample {
            pts,
            dts: pts,
            duration,
            keyframe: true,
            discont: false,
            buffer,
        };
        a.max_pts_end = a.max_pts_end.max(sample.pts_end());
        // Audio older than every variant's open segment can no longer be used.
        let needed_from = state
            .videos
            .iter()
            .filter(|v| v.started)
            .filter_map(|v| v.pending.front().map(|s| s.pts).or(v.written_end))
            .min();
        let all_started = state.videos.iter().all(|v| v.started || v.eos);
        let a = &mut state.audios[i];
        if all_started && needed_from.is_some_and(|n| pts + duration <= n) {
            let stream = a.pad.name().to_string();
            self.drop_buffer(state, &stream, "audio later than the segment it belongs to");
            return Ok(gst::FlowSuccess::Ok);
        }
        a.pending.push_back(sample);
        // Bound the backlog when no video consumes it.
        let mut dropped = 0;
        while a
            .pending
            .front()
            .is_some_and(|f| a.max_pts_end - f.pts > AUDIO_BACKLOG_NS.max(4 * target_ns))
        {
            a.pending.pop_front();
            dropped += 1;
        }
        if dropped > 0 {
            let stream = a.pad.name().to_string();
            for _ in 0..dropped {
                self.drop_buffer(state, &stream, "audio backlog over 120 s");
            }
            if !state_warned(&mut state.warned_audio_backlog) {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Demux,
                    (
                        "Audio on {} runs over 120 s ahead of the video; dropping the oldest audio",
                        stream
                    )
                );
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Writes every segment whose end is known and whose audio has arrived.
    /// With `finish`, all input has ended: the rest is written as the final
    /// segments and playlists get EXT-X-ENDLIST.
    fn drain(&self, state: &mut State, finish: bool) -> Result<gst::FlowSuccess, gst::FlowError> {
        let target_ns = state.cfg.as_ref().expect("started").target_ns;
        for vi in 0..state.videos.len() {
            loop {
                let v = &state.videos[vi];
                if v.pending.is_empty() {
                    break;
                }
                let tol = v.tolerance();
                let split = if let Some(cut) = state.cuts.get(v.next_cut).copied() {
                    let first = v.pending[0].pts;
                    if !cut.discont && first >= cut.pts - tol {
                        // This variant started after the cut.
                        state.videos[vi].next_cut += 1;
                        continue;
                    }
                    let mut found = None;
                    let mut after_discont = false;
                    for (idx, s) in v.pending.iter().enumerate().skip(1) {
                        after_discont |= s.discont;
                        if !s.keyframe {
                            continue;
                        }
                        if (s.pts - cut.pts).abs() <= tol {
                            found = Some((idx, false));
                            break;
                        }
                        if (!cut.discont && s.pts > cut.pts + tol) || (cut.discont && after_discont)
                        {
                            found = Some((idx, true));
                            break;
                        }
                    }
                    found.map(|(idx, misaligned)| (idx, misaligned, cut.discont))
                } else {
                    None
                };
                // The segment ends at the cut keyframe, or, before a
                // discontinuity and at the end, with its last sample.
                let (idx, misaligned, discont_next, cut_end) = match split {
                    Some((idx, misaligned, discont)) => {
                        let end = (!discont).then(|| v.pending[idx].pts);
                        (idx, misaligned, discont, end)
                    }
                    None if finish => (v.pending.len(), false, false, None),
                    None => break,
                };
                let end = cut_end.unwrap_or_else(|| {
                    v.pending
                        .iter()
                        .take(idx)
                        .rev()
                        .take_while(|s| !s.discont)
                        .map(|s| s.pts_end())
                        .max()
                        .unwrap_or(v.max_pts_end)
                });
                let video_ahead = v.max_pts_end;
                let audio_ready = state
                    .audios
                    .iter()
                    .all(|a| a.eos || a.max_pts_end >= end || video_ahead - end > 3 * target_ns);
                if !audio_ready && !finish {
                    break;
                }
                if misaligned {
                    let v = &state.videos[vi];
                    let (name, at) = (v.variant.clone(), v.pending[idx].pts);
                    state.stats.misaligned += 1;
                    self.count(state, &METRICS.misaligned, &name);
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        (
                            "Variant {} has no keyframe at the cut at {} ns; cutting at its next keyframe at {} ns. Align the encoders' keyframes (same key-int-max, no scene-cut keyframes).",
                            name,
                            state.cuts[state.videos[vi].next_cut].pts,
                            at
                        )
                    );
                }
                self.write_segment(state, vi, idx, cut_end, discont_next)?;
                if idx < state.videos[vi].pending.len() || split.is_some() {
                    state.videos[vi].next_cut += 1;
                }
            }
        }
        self.prune_audio(state);
        Ok(gst::FlowSuccess::Ok)
    }

    fn prune_audio(&self, state: &mut State) {
        if !state.videos.iter().all(|v| v.started || v.eos) {
            return;
        }
        let Some(needed_from) = state
            .videos
            .iter()
            .filter_map(|v| v.pending.front().map(|s| s.pts).or(v.written_end))
            .min()
        else {
            return;
        };
        for a in &mut state.audios {
            while a
                .pending
                .front()
                .is_some_and(|s| s.pts_end() <= needed_from)
            {
                a.pending.pop_front();
            }
        }
    }

    fn track_formats(state: &State, vi: usize) -> Vec<TrackFormat> {
        let v = &state.videos[vi];
        let mut formats = vec![TrackFormat::Video {
            codec: v.codec.unwrap_or(VideoCodec::H264),
            nal_length_size: v.nal_length_size,
            parameter_sets: v.parameter_sets.clone(),
        }];
        for a in &state.audios {
            formats.push(TrackFormat::Aac {
                config: a.config.unwrap_or(AacConfig {
                    object_type: 2,
                    frequency_index: 4,
                    channel_config: 2,
                }),
                adts: a.adts,
            });
        }
        formats
    }

    /// Writes the first `count` pending samples of variant `vi` as a segment
    /// ending at `cut_end` (running time, ns; `None`: with its last sample),
    /// then its playlist.
    fn write_segment(
        &self,
        state: &mut State,
        vi: usize,
        count: usize,
        cut_end: Option<i64>,
        discont_next: bool,
    ) -> Result<(), gst::FlowError> {
        let cfg = state.cfg.clone().expect("started");
        let formats = Self::track_formats(state, vi);
        let State {
            videos,
            audios,
            stats,
            pipeline,
            warned_early_delete,
            ..
        } = state;
        let v = &mut videos[vi];
        let samples: Vec<Sample> = v.pending.drain(..count).collect();
        let start = samples[0].pts;
        let runs = timestamp_runs(&samples, cut_end);
        let end = runs.last().map(|r| r.1).unwrap_or(start);
        let duration: i64 = runs.iter().map(|(a, b)| (b - a).max(0)).sum();
        let audio: Vec<Vec<Sample>> = audios
            .iter()
            .map(|a| {
                a.pending
                    .iter()
                    .filter(|s| runs.iter().any(|&(a, b)| s.pts >= a && s.pts < b))
                    .cloned()
                    .collect()
            })
            .collect();
        let mut tracks: Vec<&[Sample]> = vec![&samples];
        tracks.extend(audio.iter().map(|a| a.as_slice()));

        let writer = v
            .writer
            .get_or_insert_with(|| TsSegmentWriter::new(formats.clone()));
        writer.update_formats(formats);
        let name = format!("segment{:05}.{}", v.next_seq, writer.extension());
        let path = v.dir.join(&name);
        let labels = [
            pipeline.clone(),
            self.obj().name().to_string(),
            v.variant.clone(),
        ];
        let l = [labels[0].as_str(), labels[1].as_str(), labels[2].as_str()];
        let size = match playlist::write_atomic_with(&path, |f| writer.write_segment(&tracks, f)) {
            Ok(size) => size,
            Err(SegmentError::Format(err)) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("Malformed input on variant {}: {}", v.variant, err)
                );
                return Err(gst::FlowError::Error);
            }
            Err(SegmentError::Io(err)) => {
                count_write_error(stats, &l);
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ("Could not write segment {}: {}", path.display(), err)
                );
                return Err(gst::FlowError::Error);
            }
        };
        v.next_seq += 1;
        v.written_end = Some(end);
        let entry_discont = v.open_discont;
        let entry = Entry {
            uri: name,
            path: path.clone(),
            duration_ns: duration,
            discontinuity: v.open_discont,
        };
        v.open_discont = discont_next;
        v.playlist.push(entry, cfg.kind, cfg.window, end);
        if cfg.kind != Kind::Vod {
            let text = v.playlist.render(cfg.target_s, cfg.kind, false);
            let ppath = v.dir.join(MEDIA_PLAYLIST_NAME);
            if let Err(err) = playlist::write_atomic(&ppath, &text) {
                count_write_error(stats, &l);
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ("Could not write playlist {}: {}", ppath.display(), err)
                );
                return Err(gst::FlowError::Error);
            }
            let before = v.playlist.early_deletions;
            for (p, err) in v.playlist.delete_expired(end, cfg.max_files) {
                count_write_error(stats, &l);
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ("Could not delete old segment {}: {}", p.display(), err)
                );
            }
            if v.playlist.early_deletions > before {
                stats.early_deletions += v.playlist.early_deletions - before;
                if !state_warned(warned_early_delete) {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Settings,
                        (
                            "max-files={} deletes segments before the RFC 8216 6.2.2 hold-back (segment duration + playlist duration) has passed; raise max-files",
                            cfg.max_files
                        )
                    );
                }
            }
        }

        // Bit rates: peak over segments of at least half the target duration
        // (a short final segment says little), average over all.
        let v = &mut state.videos[vi];
        let bits = size * 8;
        if duration > 0 {
            let bps = (bits as u128 * SECOND as u128 / duration as u128) as u64;
            if duration >= cfg.target_ns / 2 || v.peak_bps == 0 {
                v.peak_bps = v.peak_bps.max(bps);
            }
        }
        v.total_bits += bits;
        v.total_ns += duration;

        let secs = duration as f64 / 1e9;
        state.stats.segments_written += 1;
        METRICS.segments.with_label_values(&l).inc();
        METRICS.bytes.with_label_values(&l).inc_by(size);
        METRICS.durations.with_label_values(&l).observe(secs);
        METRICS
            .media_sequence
            .with_label_values(&l)
            .set(v.playlist.media_sequence as i64);
        if (playlist::extinf_seconds(duration) as f64).round() as u64 > cfg.target_s {
            state.stats.overruns += 1;
            METRICS.overruns.with_label_values(&l).inc();
            gst::element_imp_warning!(
                self,
                gst::StreamError::Encode,
                (
                    "Segment {} lasts {:.3} s, above target-duration {} s: no keyframe came in time. Set the encoder's keyframe interval to at most the target duration.",
                    path.display(),
                    secs,
                    cfg.target_s
                )
            );
        }
        let v = &state.videos[vi];
        let msg = gst::message::Element::builder(
            gst::Structure::builder(SEGMENT_MESSAGE_NAME)
                .field("variant", &v.variant)
                .field("location", path.to_string_lossy().as_ref())
                .field("sequence", v.next_seq - 1)
                .field(
                    "running-time",
                    gst::ClockTime::from_nseconds(start.max(0) as u64),
                )
                .field("duration", gst::ClockTime::from_nseconds(duration as u64))
                .field("size", size)
                .field("discontinuity", entry_discont)
                .build(),
        )
        .src(&*self.obj())
        .build();
        let _ = self.obj().post_message(msg);
        gst::debug!(
            CAT,
            imp = self,
            "Wrote {} ({} bytes, {:.3} s)",
            path.display(),
            size,
            secs
        );
        if cfg.kind != Kind::Vod {
            self.write_multivariant(state, false)?;
        }
        Ok(())
    }

    /// Writes the multivariant playlist (RFC 8216 4.3.4.2) once every variant
    /// has a segment, and again whenever its text changes.
    fn write_multivariant(&self, state: &mut State, force: bool) -> Result<(), gst::FlowError> {
        let cfg = state.cfg.clone().expect("started");
        if !force && state.videos.iter().any(|v| v.next_seq == 0 && !v.eos) {
            return Ok(());
        }
        let audio_codecs: Vec<String> = state
            .audios
            .iter()
            .map(|a| {
                a.config
                    .map(|c| c.codec_string())
                    .unwrap_or_else(|| "mp4a.40.2".into())
            })
            .collect();
        let variants = state
            .videos
            .iter()
            .filter(|v| v.next_seq > 0)
            .map(|v| {
                let mut codecs: Vec<String> =
                    v.parameter_sets.codec_string.iter().cloned().collect();
                codecs.extend(audio_codecs.iter().cloned());
                let average = if v.total_ns > 0 {
                    Some((v.total_bits as u128 * SECOND as u128 / v.total_ns as u128) as u64)
                } else {
                    None
                };
                VariantStream {
                    uri: format!("{}/{}", v.variant, MEDIA_PLAYLIST_NAME),
                    bandwidth: v.peak_bps.max(1),
                    average_bandwidth: average,
                    codecs: (!codecs.is_empty() && v.parameter_sets.codec_string.is_some())
                        .then(|| codecs.join(",")),
                    resolution: v
                        .width
                        .zip(v.height)
                        .map(|(width, height)| Resolution { width, height }),
                    frame_rate: v.framerate.map(|f| (f * 1000.0).round() / 1000.0),
                    ..Default::default()
                }
            })
            .collect();
        let master = MasterPlaylist {
            version: Some(playlist::HLS_VERSION),
            independent_segments: true,
            variants,
            ..Default::default()
        };
        let mut text = Vec::new();
        master
            .write_to(&mut text)
            .expect("writing into a Vec cannot fail");
        if state.last_master.as_ref() == Some(&text) {
            return Ok(());
        }
        let path = cfg.dir.join(&cfg.multivariant_name);
        if let Err(err) = playlist::write_atomic(&path, &text) {
            state.stats.write_errors += 1;
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                (
                    "Could not write multivariant playlist {}: {}",
                    path.display(),
                    err
                )
            );
            return Err(gst::FlowError::Error);
        }
        state.last_master = Some(text);
        Ok(())
    }

    /// All pads reached EOS: write what is left and close the playlists.
    fn finish(&self, state: &mut State) -> Result<(), gst::FlowError> {
        if state.finished || state.cfg.is_none() {
            return Ok(());
        }
        self.drain(state, true)?;
        let cfg = state.cfg.clone().expect("started");
        for v in &state.videos {
            if v.next_seq == 0 {
                continue;
            }
            let text = v.playlist.render(cfg.target_s, cfg.kind, true);
            let path = v.dir.join(MEDIA_PLAYLIST_NAME);
            if let Err(err) = playlist::write_atomic(&path, &text) {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ("Could not write playlist {}: {}", path.display(), err)
                );
                return Err(gst::FlowError::Error);
            }
        }
        if state.videos.iter().any(|v| v.next_seq > 0) {
            self.write_multivariant(state, true)?;
        } else {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Failed,
                ("EOS before any segment was written: no playlist written")
            );
        }
        state.finished = true;
        Ok(())
    }

    fn sink_event(&self, pad: &super::HlsLadderSinkPad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "Handling event {:?}", event);
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                let mut state = self.lock_state();
                match state.slot(pad) {
                    Some(Slot::Video(i)) => self.set_video_caps(&mut state, i, &caps),
                    Some(Slot::Audio(i)) => self.set_audio_caps(&mut state, i, &caps),
                    None => false,
                }
            }
            EventView::Segment(s) => {
                let segment = s.segment();
                let Ok(segment) = segment.clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        (
                            "{} needs a TIME segment, got {:?}",
                            pad.name(),
                            segment.format()
                        )
                    );
                    return false;
                };
                let mut state = self.lock_state();
                let changed = match state.slot(pad) {
                    Some(Slot::Video(i)) => {
                        let v = &mut state.videos[i];
                        let changed = v.seen_segment && v.started && v.segment != segment;
                        v.segment = segment;
                        v.seen_segment = true;
                        changed
                    }
                    Some(Slot::Audio(i)) => {
                        let a = &mut state.audios[i];
                        a.segment = segment;
                        false
                    }
                    None => false,
                };
                if changed {
                    gst::info!(
                        CAT,
                        obj = pad,
                        "New segment: next segment is a discontinuity"
                    );
                    state.discont_pending = true;
                }
                true
            }
            EventView::FlushStop(_) => {
                let mut state = self.lock_state();
                if let Some(Slot::Video(i)) = state.slot(pad) {
                    let v = &mut state.videos[i];
                    if v.started {
                        v.last_dts = None;
                        state.discont_pending = true;
                    }
                }
                true
            }
            EventView::FlushStart(_) => true,
            EventView::Eos(_) => {
                let mut post_eos = false;
                {
                    let mut state = self.lock_state();
                    match state.slot(pad) {
                        Some(Slot::Video(i)) => state.videos[i].eos = true,
                        Some(Slot::Audio(i)) => state.audios[i].eos = true,
                        None => (),
                    }
                    if state.cfg.is_some() && !state.finished {
                        let res = if state.all_eos() {
                            state.eos_reached = true;
                            // Like GstBaseSink, post EOS only in PLAYING: a
                            // bin can drop an EOS posted while it is still
                            // on its way there. change_state posts it then.
                            post_eos = state.playing;
                            self.finish(&mut state)
                        } else {
                            self.drain(&mut state, false).map(|_| ())
                        };
                        if res.is_err() {
                            return false;
                        }
                    }
                }
                if post_eos {
                    self.post_eos();
                }
                true
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    /// Posts the EOS message; called once all pads are at EOS and the
    /// element is PLAYING, as GstBaseSink does.
    fn post_eos(&self) {
        gst::info!(CAT, imp = self, "All pads at EOS, playlists complete");
        let _ = self
            .obj()
            .post_message(gst::message::Eos::builder().src(&*self.obj()).build());
    }

    fn set_video_caps(&self, state: &mut State, i: usize, caps: &gst::Caps) -> bool {
        let v = &mut state.videos[i];
        let parsed = parse_video_caps(caps);
        match parsed {
            Ok(info) => {
                if v.codec.is_some_and(|c| c != info.codec) {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        (
                            "{}: the codec cannot change mid-stream (new caps {})",
                            v.pad.name(),
                            caps
                        )
                    );
                    return false;
                }
                v.codec = Some(info.codec);
                v.nal_length_size = info.nal_length_size;
                if let Some(ps) = info.parameter_sets {
                    v.parameter_sets = ps;
                }
                v.width = info.width;
                v.height = info.height;
                v.framerate = info.framerate;
                v.frame_duration = info.framerate.map(|f| (1e9 / f).round() as i64);
                gst::debug!(CAT, obj = v.pad, "Caps {}", caps);
                true
            }
            Err(err) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("{} cannot take caps {}: {}", v.pad.name(), caps, err)
                );
                false
            }
        }
    }

    fn set_audio_caps(&self, state: &mut State, i: usize, caps: &gst::Caps) -> bool {
        let a = &mut state.audios[i];
        let s = caps.structure(0).expect("fixed caps have a structure");
        let format = s.get::<&str>("stream-format").unwrap_or("adts");
        match format {
            "adts" => {
                a.adts = true;
                true
            }
            "raw" => {
                let config = s
                    .get::<gst::Buffer>("codec_data")
                    .map_err(|_| "stream-format=raw needs codec_data".to_string())
                    .and_then(|b| {
                        let map = b
                            .map_readable()
                            .map_err(|_| "unreadable codec_data".to_string())?;
                        AacConfig::from_audio_specific_config(&map)
                    });
                match config {
                    Ok(c) => {
                        a.adts = false;
                        a.config = Some(c);
                        true
                    }
                    Err(err) => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Format,
                            ("{} cannot take caps {}: {}", a.pad.name(), caps, err)
                        );
                        false
                    }
                }
            }
            other => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "{} cannot take caps {}: stream-format {} is not supported",
                        a.pad.name(),
                        caps,
                        other
                    )
                );
                false
            }
        }
    }

    fn sink_query(&self, pad: &super::HlsLadderSinkPad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::AcceptCaps(q) = query.view_mut() {
            let caps = q.caps_owned();
            let ok = caps.can_intersect(&pad.pad_template_caps())
                && caps.is_subset(&pad.pad_template_caps());
            if !ok {
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::Negotiation,
                    (
                        "{} refuses caps {}: expected {}",
                        pad.name(),
                        caps,
                        pad.pad_template_caps()
                    )
                );
            }
            q.set_result(ok);
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    /// Checks the output directory and prepares every variant directory.
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let cfg = Config::from_settings(&settings);
        let dir = &cfg.dir;
        let meta = fs::metadata(dir).map_err(|err| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("Output directory {} is not usable: {}", dir.display(), err)
            )
        })?;
        if !meta.is_dir() {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ("Output directory {} is not a directory", dir.display())
            ));
        }
        // Writability: create and remove a probe file.
        let probe = dir.join(".hlsladdersink-probe.tmp");
        fs::write(&probe, b"")
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|err| {
                gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    (
                        "Output directory {} is not writable: {}",
                        dir.display(),
                        err
                    )
                )
            })?;
        if settings.max_files != 0 && settings.max_files < settings.playlist_length {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                (
                    "max-files={} is below playlist-length={}; keeping {} segments",
                    settings.max_files,
                    settings.playlist_length,
                    settings.playlist_length
                )
            );
        }
        playlist::remove_stale_temporaries(dir);

        let pipeline = exporter::pipeline_label(&*self.obj());
        let mut state = self.lock_state();
        state.pipeline = pipeline;
        if state.videos.is_empty() {
            return Err(gst::error_msg!(
                gst::CoreError::Pad,
                ("No video_%u pad requested: every variant needs a video stream")
            ));
        }
        let pipeline = state.pipeline.clone();
        for v in &mut state.videos {
            self.prepare_variant(&pipeline, dir, v)?;
        }
        let mut names: Vec<&str> = state.videos.iter().map(|v| v.variant.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("Two video pads have the same variant-name: {:?}", names)
            ));
        }
        state.cfg = Some(cfg);
        Ok(())
    }

    /// Creates a variant's directory under `dir`, removes temporaries a
    /// killed run left there, and creates its series at 0 so that rate() and
    /// increase() see the first event.
    fn prepare_variant(
        &self,
        pipeline: &str,
        dir: &std::path::Path,
        v: &mut VideoStream,
    ) -> Result<(), gst::ErrorMessage> {
        v.dir = dir.join(&v.variant);
        fs::create_dir_all(&v.dir).map_err(|err| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                (
                    "Could not create variant directory {}: {}",
                    v.dir.display(),
                    err
                )
            )
        })?;
        playlist::remove_stale_temporaries(&v.dir);
        let element = self.obj().name();
        let l = [pipeline, element.as_str(), v.variant.as_str()];
        let m = &*METRICS;
        for c in [
            &m.segments,
            &m.bytes,
            &m.overruns,
            &m.misaligned,
            &m.write_errors,
            &m.dropped,
        ] {
            c.with_label_values(&l);
        }
        m.durations.with_label_values(&l);
        m.media_sequence.with_label_values(&l);
        Ok(())
    }

    /// Drops all streaming state, keeping the pads.
    fn reset(&self) {
        let mut state = self.lock_state();
        let pipeline = state.pipeline.clone();
        let element = self.obj().name().to_string();
        for v in &state.videos {
            remove_series(&pipeline, &element, &v.variant);
        }
        let videos = state
            .videos
            .drain(..)
            .map(|v| VideoStream::new(v.pad, v.variant))
            .collect();
        let audios = state
            .audios
            .drain(..)
            .map(|a| AudioStream::new(a.pad))
            .collect();
        *state = State {
            videos,
            audios,
            ..Default::default()
        };
    }

    fn stats(&self) -> gst::Structure {
        let state = self.lock_state();
        let s = state.stats;
        gst::Structure::builder("hlsladdersink-stats")
            .field("segments-written", s.segments_written)
            .field("target-duration-overruns", s.overruns)
            .field("keyframe-misalignments", s.misaligned)
            .field("write-errors", s.write_errors)
            .field("dropped-buffers", s.dropped)
            .field("early-deletions", s.early_deletions)
            .build()
    }
}

/// Splits a segment's samples (decode order) into runs of continuous
/// timestamps, cut where a sample follows a discontinuity; returns each run's
/// (first PTS, end PTS) in ns. The last run ends at `cut_end` when given.
/// The segment's duration is the sum of the runs, so a timestamp jump inside
/// a segment does not count as media time.
fn timestamp_runs(samples: &[Sample], cut_end: Option<i64>) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    let mut run = (i64::MAX, i64::MIN);
    for (i, s) in samples.iter().enumerate() {
        if i > 0 && s.discont {
            runs.push(run);
            run = (i64::MAX, i64::MIN);
        }
        run.0 = run.0.min(s.pts);
        run.1 = run.1.max(s.pts_end());
    }
    if let Some(end) = cut_end {
        run.1 = end;
    }
    runs.push(run);
    runs
}

/// Counts a failed write or deletion of a variant's file in the stats and
/// in `gst_hls_write_errors_total` for the variant's labels.
fn count_write_error(stats: &mut Stats, labels: &[&str; 3]) {
    stats.write_errors += 1;
    METRICS.write_errors.with_label_values(labels).inc();
}

fn state_warned(flag: &mut bool) -> bool {
    std::mem::replace(flag, true)
}

fn remove_series(pipeline: &str, element: &str, stream: &str) {
    let l = [pipeline, element, stream];
    let m = &*METRICS;
    for c in [
        &m.segments,
        &m.bytes,
        &m.overruns,
        &m.misaligned,
        &m.write_errors,
        &m.dropped,
    ] {
        let _ = c.remove_label_values(&l);
    }
    let _ = m.durations.remove_label_values(&l);
    let _ = m.media_sequence.remove_label_values(&l);
}

struct VideoCapsInfo {
    codec: VideoCodec,
    nal_length_size: Option<usize>,
    parameter_sets: Option<ParameterSets>,
    width: Option<u64>,
    height: Option<u64>,
    framerate: Option<f64>,
}

fn parse_video_caps(caps: &gst::Caps) -> Result<VideoCapsInfo, String> {
    let s = caps.structure(0).ok_or("empty caps")?;
    let codec = match s.name().as_str() {
        "video/x-h264" => VideoCodec::H264,
        "video/x-h265" => VideoCodec::H265,
        other => return Err(format!("{other} is not H.264 or H.265")),
    };
    if let Ok(alignment) = s.get::<&str>("alignment") {
        if alignment != "au" {
            return Err(format!(
                "alignment={alignment}, need alignment=au (use h264parse/h265parse)"
            ));
        }
    }
    let format = s.get::<&str>("stream-format").unwrap_or("byte-stream");
    let codec_data = s.get::<gst::Buffer>("codec_data").ok();
    let (nal_length_size, parameter_sets) = match (format, codec_data) {
        ("byte-stream", _) => (None, None),
        ("avc" | "avc3", Some(cd)) if codec == VideoCodec::H264 => {
            let map = cd.map_readable().map_err(|_| "unreadable codec_data")?;
            let cfg = codec::parse_avcc(&map)?;
            (Some(cfg.nal_length_size), Some(cfg.parameter_sets))
        }
        ("hvc1" | "hev1", Some(cd)) if codec == VideoCodec::H265 => {
            let map = cd.map_readable().map_err(|_| "unreadable codec_data")?;
            let cfg = codec::parse_hvcc(&map)?;
            (Some(cfg.nal_length_size), Some(cfg.parameter_sets))
        }
        (f, None) if f != "byte-stream" => {
            return Err(format!("stream-format={f} needs codec_data"));
        }
        (f, _) => return Err(format!("stream-format={f} is not supported")),
    };
    let framerate = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| f.numer() as f64 / f.denom() as f64);
    Ok(VideoCapsInfo {
        codec,
        nal_length_size,
        parameter_sets,
        width: s.get::<i32>("width").ok().map(|w| w as u64),
        height: s.get::<i32>("height").ok().map(|h| h as u64),
        framerate,
    })
}

impl ObjectImpl for HlsLadderSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("output-directory")
                    .nick("Output Directory")
                    .blurb(
                        "Existing, writable directory for the multivariant playlist; each \
                         variant writes index.m3u8 and its segments into a subdirectory \
                         named after the variant",
                    )
                    .default_value(Some(DEFAULT_OUTPUT_DIRECTORY))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("target-duration")
                    .nick("Target Duration")
                    .blurb(
                        "EXT-X-TARGETDURATION in whole seconds (1 to 3600), fixed for the \
                         life of the playlist; segments are cut at the first keyframe at or \
                         after it",
                    )
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_TARGET_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("playlist-type", PlaylistType::Live)
                    .nick("Playlist Type")
                    .blurb(
                        "live: sliding window; event: EXT-X-PLAYLIST-TYPE:EVENT, only \
                         appended; vod: EXT-X-PLAYLIST-TYPE:VOD, playlists written once at EOS",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("playlist-length")
                    .nick("Playlist Length")
                    .blurb("Segments listed in a live playlist (1 to 65535); ignored for event and vod")
                    .minimum(1)
                    .maximum(65535)
                    .default_value(DEFAULT_PLAYLIST_LENGTH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-files")
                    .nick("Max Files")
                    .blurb(
                        "Upper bound of segment files kept on disk per variant in live mode, \
                         including those held back for RFC 8216 6.2.2 after leaving the \
                         playlist (0 = bounded by the hold-back only; values below \
                         playlist-length count as playlist-length)",
                    )
                    .maximum(u32::MAX)
                    .default_value(DEFAULT_MAX_FILES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("multivariant-playlist-name")
                    .nick("Multivariant Playlist Name")
                    .blurb("File name of the multivariant playlist in output-directory")
                    .default_value(Some(DEFAULT_MULTIVARIANT_NAME))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Counters since start: segments-written, target-duration-overruns, \
                         keyframe-misalignments, write-errors, dropped-buffers, \
                         early-deletions (all guint64)",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "output-directory" => {
                settings.output_directory = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_OUTPUT_DIRECTORY.into());
            }
            "target-duration" => settings.target_duration = value.get().expect("type checked"),
            "playlist-type" => settings.playlist_type = value.get().expect("type checked"),
            "playlist-length" => settings.playlist_length = value.get().expect("type checked"),
            "max-files" => settings.max_files = value.get().expect("type checked"),
            "multivariant-playlist-name" => {
                let name: Option<String> = value.get().expect("type checked");
                match name {
                    Some(n) if !n.is_empty() && !n.contains('/') => settings.multivariant_name = n,
                    other => gst::warning!(
                        CAT,
                        imp = self,
                        "Ignoring multivariant-playlist-name {:?}: a plain file name is needed",
                        other
                    ),
                }
            }
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "output-directory" => settings.output_directory.to_value(),
            "target-duration" => settings.target_duration.to_value(),
            "playlist-type" => settings.playlist_type.to_value(),
            "playlist-length" => settings.playlist_length.to_value(),
            "max-files" => settings.max_files.to_value(),
            "multivariant-playlist-name" => settings.multivariant_name.to_value(),
            "stats" => {
                drop(settings);
                self.stats().to_value()
            }
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_element_flags(gst::ElementFlags::SINK);
    }
}

impl GstObjectImpl for HlsLadderSink {}

impl ElementImpl for HlsLadderSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "HLS Ladder Sink",
                "Sink/Muxer/Network/HLS",
                "Keyframe-aligned HLS (RFC 8216) for one or more renditions: MPEG-TS \
                 segments, media and multivariant playlists with measured BANDWIDTH, \
                 atomic writes. Each video_%u pad is a variant; audio_%u pads are muxed \
                 into every variant. Example: gst-launch-1.0 -e videotestsrc ! x264enc \
                 key-int-max=60 ! h264parse ! s.video_0 audiotestsrc ! avenc_aac ! aacparse \
                 ! s.audio_0 hlsladdersink name=s output-directory=/tmp/hls",
                "gst-broadcast developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video_caps = gst::Caps::builder_full()
                .structure(
                    gst::Structure::builder("video/x-h264")
                        .field(
                            "stream-format",
                            gst::List::new(["byte-stream", "avc", "avc3"]),
                        )
                        .field("alignment", "au")
                        .build(),
                )
                .structure(
                    gst::Structure::builder("video/x-h265")
                        .field(
                            "stream-format",
                            gst::List::new(["byte-stream", "hvc1", "hev1"]),
                        )
                        .field("alignment", "au")
                        .build(),
                )
                .build();
            let audio_caps = gst::Caps::builder_full()
                .structure(
                    gst::Structure::builder("audio/mpeg")
                        .field("mpegversion", 4i32)
                        .field("stream-format", gst::List::new(["adts", "raw"]))
                        .build(),
                )
                .structure(
                    gst::Structure::builder("audio/mpeg")
                        .field("mpegversion", 2i32)
                        .field("stream-format", "adts")
                        .build(),
                )
                .build();
            vec![
                gst::PadTemplate::with_gtype(
                    "video_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &video_caps,
                    super::HlsLadderSinkPad::static_type(),
                )
                .expect("valid template"),
                gst::PadTemplate::with_gtype(
                    "audio_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio_caps,
                    super::HlsLadderSinkPad::static_type(),
                )
                .expect("valid template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let is_video = templ.name_template() == "video_%u";
        let prefix = if is_video { "video_" } else { "audio_" };
        let mut state = self.lock_state();
        if state.cfg.is_some() && !is_video {
            gst::element_imp_warning!(
                self,
                gst::CoreError::Pad,
                ("Audio pads can only be requested before streaming starts")
            );
            return None;
        }
        let used: Vec<u32> = self
            .obj()
            .sink_pads()
            .iter()
            .filter_map(|p| p.name().strip_prefix(prefix).and_then(|n| n.parse().ok()))
            .collect();
        let index = match name.and_then(|n| n.strip_prefix(prefix)) {
            Some(n) => match n.parse::<u32>() {
                Ok(i) if !used.contains(&i) => i,
                _ => {
                    gst::warning!(CAT, imp = self, "Pad name {:?} is taken or invalid", name);
                    return None;
                }
            },
            None => (0..).find(|i| !used.contains(i)).expect("free index"),
        };
        let pad_name = format!("{prefix}{index}");
        let pad = gst::PadBuilder::<super::HlsLadderSinkPad>::from_template(templ)
            .name(pad_name.as_str())
            .chain_function(|pad, parent, buffer| {
                HlsLadderSink::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                HlsLadderSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                HlsLadderSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad, query),
                )
            })
            .build();
        if is_video {
            let variant = pad
                .imp()
                .variant_name()
                .unwrap_or_else(|| format!("v{index}"));
            let mut v = VideoStream::new(pad.clone(), variant);
            if let Some(dir) = state.cfg.as_ref().map(|c| c.dir.clone()) {
                if let Err(err) = self.prepare_variant(&state.pipeline, &dir, &mut v) {
                    self.post_error_message(err);
                    return None;
                }
            }
            state.videos.push(v);
        } else {
            state.audios.push(AudioStream::new(pad.clone()));
        }
        drop(state);
        if let Err(err) = self.obj().add_pad(&pad) {
            gst::warning!(CAT, imp = self, "Could not add pad {}: {}", pad_name, err);
            let mut state = self.lock_state();
            state.videos.retain(|v| v.pad != pad);
            state.audios.retain(|a| a.pad != pad);
            return None;
        }
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        {
            let mut state = self.lock_state();
            state
                .videos
                .retain(|v| v.pad.upcast_ref::<gst::Pad>() != pad);
            state
                .audios
                .retain(|a| a.pad.upcast_ref::<gst::Pad>() != pad);
        }
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            // Variant names may have been set on the pads after request.
            {
                let mut state = self.lock_state();
                for v in &mut state.videos {
                    if let Some(name) = v.pad.imp().variant_name() {
                        v.variant = name;
                    }
                }
            }
            if let Err(err) = self.start() {
                self.post_error_message(err);
                return Err(gst::StateChangeError);
            }
        }
        if transition == gst::StateChange::PlayingToPaused {
            self.lock_state().playing = false;
        }
        let res = self.parent_change_state(transition)?;
        match transition {
            gst::StateChange::PausedToReady => self.reset(),
            gst::StateChange::PausedToPlaying => {
                let post = {
                    let mut state = self.lock_state();
                    state.playing = true;
                    state.eos_reached
                };
                if post {
                    self.post_eos();
                }
            }
            _ => (),
        }
        Ok(res)
    }
}
