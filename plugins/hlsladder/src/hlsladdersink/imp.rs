// SPDX-License-Identifier: MPL-2.0

//! GStreamer glue of `hlsladdersink`: properties, pads, events and state.
//! The cut policy lives in `segmenter.rs`, a variant's files and playlist in
//! `output.rs`, playlist text in `playlist.rs`, file I/O in `storage.rs` and
//! the Prometheus series in `metrics.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use gstbroadcast_common::SegmentMap;
use gstbroadcast_exporter as exporter;

use super::PlaylistType;
use crate::codec::{self, AacConfig, ParameterSets, VideoCodec};
use crate::metrics::{Counter, CounterSeries, VariantSeries};
use crate::output::{PlaylistConfig, VariantOutput, WriteError, Written};
use crate::playlist::{self, Kind, Variant};
use crate::segment::{SegmentWriter, TrackFormat, TsSegmentWriter};
use crate::segmenter::{self, Action, Segment, Segmenter, Stream, SECOND};
use crate::storage::{FsStorage, Storage};

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
const DEFAULT_PROGRAM_DATE_TIME: bool = true;
/// Name of the bus element message posted per segment.
pub const SEGMENT_MESSAGE_NAME: &str = "hlsladdersink-segment";

#[derive(Debug, Clone)]
struct Settings {
    output_directory: String,
    target_duration: u32,
    playlist_type: PlaylistType,
    playlist_length: u32,
    max_files: u32,
    multivariant_name: String,
    program_date_time: bool,
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
            program_date_time: DEFAULT_PROGRAM_DATE_TIME,
        }
    }
}

/// Settings frozen when streaming starts (READY to PAUSED).
#[derive(Debug, Clone)]
struct Config {
    dir: PathBuf,
    target_ns: i64,
    playlist: PlaylistConfig,
    multivariant_name: String,
    program_date_time: bool,
}

impl Config {
    fn from_settings(s: &Settings) -> Self {
        Config {
            dir: PathBuf::from(&s.output_directory),
            target_ns: s.target_duration as i64 * SECOND,
            playlist: PlaylistConfig {
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
            },
            multivariant_name: s.multivariant_name.clone(),
            program_date_time: s.program_date_time,
        }
    }
}

/// Counters of the `stats` property; each moves with its Prometheus series.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    segments_written: u64,
    overruns: u64,
    misaligned: u64,
    write_errors: u64,
    dropped: u64,
    early_deletions: u64,
}

/// One video pad: its caps, its output and its series.
struct VideoStream {
    pad: super::HlsLadderSinkPad,
    segment: SegmentMap,
    seen_segment: bool,
    codec: Option<VideoCodec>,
    nal_length_size: Option<usize>,
    parameter_sets: ParameterSets,
    width: Option<u64>,
    height: Option<u64>,
    framerate: Option<f64>,
    frame_duration: Option<i64>,
    output: VariantOutput,
    series: VariantSeries,
    warned_misaligned: bool,
}

/// One audio pad, muxed into every variant.
struct AudioStream {
    pad: super::HlsLadderSinkPad,
    segment: SegmentMap,
    config: Option<AacConfig>,
    adts: bool,
    dropped: CounterSeries,
}

/// Everything that exists while streaming (PAUSED and PLAYING).
struct Running {
    cfg: Config,
    pipeline: String,
    storage: FsStorage,
    segmenter: Segmenter<gst::Buffer>,
    videos: Vec<VideoStream>,
    audios: Vec<AudioStream>,
    multivariant_errors: CounterSeries,
    last_master: Option<String>,
    /// (running time in ns, ms since the Unix epoch) of the same instant:
    /// the wall-clock anchor of EXT-X-PROGRAM-DATE-TIME for every variant.
    pdt_anchor: Option<(i64, i64)>,
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

impl Running {
    fn slot(&self, pad: &super::HlsLadderSinkPad) -> Option<Stream> {
        if let Some(i) = self.videos.iter().position(|v| &v.pad == pad) {
            return Some(Stream::Video(i));
        }
        self.audios
            .iter()
            .position(|a| &a.pad == pad)
            .map(Stream::Audio)
    }

    fn track_formats(&self, vi: usize) -> Vec<TrackFormat> {
        let v = &self.videos[vi];
        let mut formats = vec![TrackFormat::Video {
            codec: v.codec.unwrap_or(VideoCodec::H264),
            nal_length_size: v.nal_length_size,
            parameter_sets: v.parameter_sets.clone(),
        }];
        for a in &self.audios {
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

    fn count_drop(&mut self, stream: Stream) {
        self.stats.dropped += 1;
        match stream {
            Stream::Video(i) => self.videos[i].series.dropped.inc(),
            Stream::Audio(i) => self.audios[i].dropped.counter.inc(),
        }
    }

    fn stream_name(&self, stream: Stream) -> String {
        match stream {
            Stream::Video(i) => self.videos[i].output.name.clone(),
            Stream::Audio(i) => self.audios[i].pad.name().to_string(),
        }
    }
}

/// The element's streaming state.
enum State {
    /// NULL and READY: only the pads exist.
    Stopped,
    /// PAUSED and PLAYING.
    Started(Box<Running>),
}

/// Upstream key-unit requests collected under the state lock and sent after it.
type KeyUnitRequests = Vec<(super::HlsLadderSinkPad, i64)>;

#[derive(Default)]
pub struct HlsLadderSinkPad {
    variant_name: Mutex<Option<String>>,
    /// The upstream latency was queried (at the pad's first buffer).
    latency_queried: AtomicBool,
    /// Upstream minimum latency in ns (encoder lookahead and queues).
    latency_ns: AtomicI64,
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

    /// Queries the upstream latency once, at the first buffer: how far an
    /// encoder's input may be ahead of what reaches the sink.
    fn query_latency_once(&self) {
        if self.latency_queried.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut q = gst::query::Latency::new();
        if self.obj().peer_query(&mut q) {
            let (_live, min, _max) = q.result();
            self.latency_ns
                .store(min.nseconds() as i64, Ordering::Relaxed);
        }
    }
}

pub struct HlsLadderSink {
    settings: Mutex<Settings>,
    /// Request pads in the order they were requested.
    pads: Mutex<Vec<super::HlsLadderSinkPad>>,
    state: Mutex<State>,
}

impl Default for HlsLadderSink {
    fn default() -> Self {
        HlsLadderSink {
            settings: Mutex::default(),
            pads: Mutex::default(),
            state: Mutex::new(State::Stopped),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for HlsLadderSink {
    const NAME: &'static str = "GstHlsLadderSink";
    type Type = super::HlsLadderSink;
    type ParentType = gst::Element;
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl HlsLadderSink {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sink_chain(
        &self,
        pad: &super::HlsLadderSinkPad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        pad.imp().query_latency_once();
        let mut requests = KeyUnitRequests::new();
        let res = {
            let mut state = self.lock_state();
            let State::Started(run) = &mut *state else {
                return Err(gst::FlowError::Flushing);
            };
            if run.finished {
                return Err(gst::FlowError::Flushing);
            }
            match run.slot(pad) {
                Some(Stream::Video(i)) => self.handle_video(run, i, buffer, &mut requests),
                Some(Stream::Audio(i)) => self.handle_audio(run, i, buffer, &mut requests),
                None => Err(gst::FlowError::NotLinked),
            }
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
        run: &mut Running,
        i: usize,
        buffer: gst::Buffer,
        requests: &mut KeyUnitRequests,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let v = &mut run.videos[i];
        let Some(codec) = v.codec else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Buffer on {} before caps", v.pad.name())
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let Some(pts) = v.segment.running_time(buffer.pts().or(buffer.dts())) else {
            gst::debug!(
                CAT,
                obj = v.pad,
                "Dropping a buffer without a usable timestamp"
            );
            run.count_drop(Stream::Video(i));
            return Ok(gst::FlowSuccess::Ok);
        };
        let dts = v.segment.running_time(buffer.dts()).unwrap_or(pts);
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let duration = buffer
            .duration()
            .map(|d| d.nseconds() as i64)
            .or(v.frame_duration)
            .unwrap_or(0);
        if keyframe && v.nal_length_size.is_none() {
            if let Ok(map) = buffer.map_readable() {
                if let Some(ps) = codec::parameter_sets_in_au(codec, &map) {
                    if ps.annexb != v.parameter_sets.annexb {
                        v.parameter_sets = ps;
                    }
                }
            }
        }
        if !run.segmenter.started(i) {
            run.segmenter
                .set_latency(i, v.pad.imp().latency_ns.load(Ordering::Relaxed));
            if keyframe && run.pdt_anchor.is_none() {
                run.pdt_anchor = Some((pts, now_ms()));
            }
        }
        let actions = run.segmenter.push_video(
            i,
            segmenter::Sample {
                pts,
                dts,
                duration,
                keyframe,
                discont: false,
                data: buffer,
            },
        );
        self.apply(run, actions, requests)
    }

    fn handle_audio(
        &self,
        run: &mut Running,
        i: usize,
        buffer: gst::Buffer,
        requests: &mut KeyUnitRequests,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let a = &mut run.audios[i];
        if a.config.is_none() && a.adts {
            if let Ok(map) = buffer.map_readable() {
                a.config = AacConfig::from_adts(&map);
            }
        }
        let pts = a.segment.running_time(buffer.pts());
        let duration = buffer.duration().map(|d| d.nseconds() as i64).unwrap_or(0);
        let actions = run.segmenter.push_audio(i, pts, duration, buffer);
        self.apply(run, actions, requests)
    }

    /// Carries out the segmenter's actions.
    fn apply(
        &self,
        run: &mut Running,
        actions: Vec<Action<gst::Buffer>>,
        requests: &mut KeyUnitRequests,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        for action in actions {
            match action {
                Action::RequestKeyUnit {
                    variant,
                    running_time,
                } => requests.push((run.videos[variant].pad.clone(), running_time)),
                Action::Write(segment) => self.write_segment(run, segment)?,
                Action::Misaligned {
                    variant,
                    cut_pts,
                    keyframe_pts,
                } => {
                    run.stats.misaligned += 1;
                    let v = &mut run.videos[variant];
                    v.series.misaligned.inc();
                    gst::info!(
                        CAT,
                        obj = v.pad,
                        "No keyframe at the cut at {} ns; cut at {} ns",
                        cut_pts,
                        keyframe_pts
                    );
                    if !std::mem::replace(&mut v.warned_misaligned, true) {
                        gst::element_imp_warning!(
                            self,
                            gst::StreamError::Format,
                            (
                                "Variant {} has no keyframe at the cut at {} ns; cutting at its next keyframe at {} ns. Its encoder must honour force-key-unit events or use the same fixed GOP as the first variant (same key-int-max, no scene-cut keyframes). Further misalignments are only counted in gst_hls_keyframe_misalignments_total.",
                                v.output.name,
                                cut_pts,
                                keyframe_pts
                            )
                        );
                    }
                }
                Action::Dropped { stream, reason } => {
                    run.count_drop(stream);
                    let name = run.stream_name(stream);
                    gst::debug!(
                        CAT,
                        imp = self,
                        "Dropping buffer on {}: {}",
                        name,
                        reason.as_str()
                    );
                    if reason == segmenter::DropReason::AudioBacklog
                        && !std::mem::replace(&mut run.warned_audio_backlog, true)
                    {
                        gst::element_imp_warning!(
                            self,
                            gst::StreamError::Demux,
                            (
                                "Audio on {} runs over 120 s ahead of the video; dropping the oldest audio",
                                name
                            )
                        );
                    }
                }
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Writes one segment of a variant, then its playlist and (live, event)
    /// the multivariant playlist; posts the segment message.
    fn write_segment(
        &self,
        run: &mut Running,
        segment: Segment<gst::Buffer>,
    ) -> Result<(), gst::FlowError> {
        let vi = segment.variant;
        let formats = run.track_formats(vi);
        let anchor = run.pdt_anchor.filter(|_| run.cfg.program_date_time);
        let Running {
            cfg,
            storage,
            videos,
            stats,
            warned_early_delete,
            ..
        } = run;
        let v = &mut videos[vi];
        v.output.writer().update_formats(formats);
        let written = match v.output.write(&segment, anchor, &cfg.playlist, storage) {
            Ok(w) => w,
            Err(WriteError::Format(err)) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("Malformed input on variant {}: {}", v.output.name, err)
                );
                return Err(gst::FlowError::Error);
            }
            Err(WriteError::Io { name, err }) => {
                stats.write_errors += 1;
                v.series.write_errors.inc();
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    ("Could not write {}: {}", storage.location(&name), err)
                );
                return Err(gst::FlowError::Error);
            }
        };
        let Written {
            name,
            sequence,
            size,
            delete_errors,
            early_deletions,
            ..
        } = written;
        for (name, err) in delete_errors {
            stats.write_errors += 1;
            v.series.write_errors.inc();
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "Could not delete old segment {}: {}",
                    storage.location(&name),
                    err
                )
            );
        }
        if early_deletions > 0 {
            stats.early_deletions += early_deletions;
            if !std::mem::replace(warned_early_delete, true) {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Settings,
                    (
                        "max-files={} deletes segments before the RFC 8216 6.2.2 hold-back (segment duration + playlist duration) has passed; raise max-files",
                        cfg.playlist.max_files
                    )
                );
            }
        }
        let secs = segment.duration as f64 / 1e9;
        let location = storage.location(&name);
        stats.segments_written += 1;
        v.series.segments.inc();
        v.series.bytes.inc_by(size);
        v.series.durations.observe(secs);
        v.series
            .media_sequence
            .set(v.output.playlist.media_sequence as i64);
        if playlist::overruns_target(segment.duration, cfg.playlist.target_s) {
            stats.overruns += 1;
            v.series.overruns.inc();
            gst::element_imp_warning!(
                self,
                gst::StreamError::Encode,
                (
                    "Segment {} lasts {:.3} s, above target-duration {} s: no keyframe came in time. Set the encoder's keyframe interval to at most the target duration.",
                    location,
                    secs,
                    cfg.playlist.target_s
                )
            );
        }
        let msg = gst::message::Element::builder(
            gst::Structure::builder(SEGMENT_MESSAGE_NAME)
                .field("variant", &v.output.name)
                .field("location", &location)
                .field("sequence", sequence)
                .field(
                    "running-time",
                    gst::ClockTime::from_nseconds(segment.start.max(0) as u64),
                )
                .field(
                    "duration",
                    gst::ClockTime::from_nseconds(segment.duration.max(0) as u64),
                )
                .field("size", size)
                .field("discontinuity", segment.discontinuity)
                .build(),
        )
        .src(&*self.obj())
        .build();
        let _ = self.obj().post_message(msg);
        gst::debug!(
            CAT,
            imp = self,
            "Wrote {} ({} bytes, {:.3} s)",
            location,
            size,
            secs
        );
        if cfg.playlist.kind != Kind::Vod {
            self.write_multivariant(run, false)?;
        }
        Ok(())
    }

    /// Writes the multivariant playlist (RFC 8216 4.3.4.2) once every variant
    /// has a segment, and again whenever its text changes.
    fn write_multivariant(&self, run: &mut Running, force: bool) -> Result<(), gst::FlowError> {
        let open = |v: &VideoStream| v.output.segments_written() == 0;
        if !force && run.videos.iter().any(open) {
            return Ok(());
        }
        let audio_codecs: Vec<String> = run
            .audios
            .iter()
            .map(|a| {
                a.config
                    .map(|c| c.codec_string())
                    .unwrap_or_else(|| "mp4a.40.2".into())
            })
            .collect();
        let variants: Vec<Variant> = run
            .videos
            .iter()
            .filter(|v| !open(v))
            .map(|v| Variant {
                uri: v.output.file_name(crate::output::MEDIA_PLAYLIST_NAME),
                bandwidth: v.output.peak_bps.max(1),
                average_bandwidth: v.output.average_bps(),
                codecs: v.parameter_sets.codec_string.as_ref().map(|c| {
                    std::iter::once(c.clone())
                        .chain(audio_codecs.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(",")
                }),
                resolution: v.width.zip(v.height),
                frame_rate: v.framerate,
            })
            .collect();
        let text = playlist::render_multivariant(&variants);
        if run.last_master.as_ref() == Some(&text) {
            return Ok(());
        }
        let name = run.cfg.multivariant_name.clone();
        if let Err(err) = run.storage.put(&name, text.as_bytes()) {
            run.stats.write_errors += 1;
            run.multivariant_errors.counter.inc();
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                (
                    "Could not write multivariant playlist {}: {}",
                    run.storage.location(&name),
                    err
                )
            );
            return Err(gst::FlowError::Error);
        }
        run.last_master = Some(text);
        Ok(())
    }

    /// All pads reached EOS: write what is left and close the playlists.
    fn finish(&self, run: &mut Running) -> Result<(), gst::FlowError> {
        if run.finished {
            return Ok(());
        }
        let mut requests = KeyUnitRequests::new();
        let actions = run.segmenter.finish();
        self.apply(run, actions, &mut requests)?;
        for v in &mut run.videos {
            if v.output.segments_written() == 0 {
                continue;
            }
            if let Err(WriteError::Io { name, err }) =
                v.output
                    .write_playlist(&run.cfg.playlist, true, &run.storage)
            {
                run.stats.write_errors += 1;
                v.series.write_errors.inc();
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "Could not write playlist {}: {}",
                        run.storage.location(&name),
                        err
                    )
                );
                return Err(gst::FlowError::Error);
            }
        }
        if run.videos.iter().any(|v| v.output.segments_written() > 0) {
            self.write_multivariant(run, true)?;
        } else {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Failed,
                ("EOS before any segment was written: no playlist written")
            );
        }
        run.finished = true;
        Ok(())
    }

    fn sink_event(&self, pad: &super::HlsLadderSinkPad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "Handling event {:?}", event);
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                let mut state = self.lock_state();
                let State::Started(run) = &mut *state else {
                    return false;
                };
                match run.slot(pad) {
                    Some(Stream::Video(i)) => self.set_video_caps(run, i, &caps),
                    Some(Stream::Audio(i)) => self.set_audio_caps(run, i, &caps),
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
                let State::Started(run) = &mut *state else {
                    return false;
                };
                match run.slot(pad) {
                    Some(Stream::Video(i)) => {
                        let v = &mut run.videos[i];
                        let changed = v.seen_segment && v.segment.segment() != &segment;
                        v.segment = SegmentMap::new(segment);
                        v.seen_segment = true;
                        if changed && run.segmenter.started(i) {
                            gst::info!(
                                CAT,
                                obj = pad,
                                "New segment: next segment is a discontinuity"
                            );
                            run.segmenter.mark_discontinuity(i);
                        }
                    }
                    Some(Stream::Audio(i)) => run.audios[i].segment = SegmentMap::new(segment),
                    None => (),
                }
                true
            }
            EventView::FlushStop(_) => {
                let mut state = self.lock_state();
                if let State::Started(run) = &mut *state {
                    if let Some(Stream::Video(i)) = run.slot(pad) {
                        run.segmenter.mark_discontinuity(i);
                    }
                }
                true
            }
            EventView::FlushStart(_) => true,
            EventView::Eos(_) => self.handle_eos(pad),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn handle_eos(&self, pad: &super::HlsLadderSinkPad) -> bool {
        let mut post_eos = false;
        {
            let mut state = self.lock_state();
            let State::Started(run) = &mut *state else {
                return true;
            };
            let Some(stream) = run.slot(pad) else {
                return true;
            };
            if run.finished {
                return true;
            }
            let mut requests = KeyUnitRequests::new();
            let actions = run.segmenter.end_of_stream(stream);
            let mut res = self.apply(run, actions, &mut requests).map(|_| ());
            if res.is_ok() && run.segmenter.all_eos() {
                run.eos_reached = true;
                // Like GstBaseSink, post EOS only in PLAYING: a bin can drop
                // an EOS posted while it is still on its way there.
                // change_state posts it then.
                post_eos = run.playing;
                res = self.finish(run);
            }
            if res.is_err() {
                return false;
            }
        }
        if post_eos {
            self.post_eos();
        }
        true
    }

    /// Posts the EOS message; called once all pads are at EOS and the
    /// element is PLAYING, as GstBaseSink does.
    fn post_eos(&self) {
        gst::info!(CAT, imp = self, "All pads at EOS, playlists complete");
        let _ = self
            .obj()
            .post_message(gst::message::Eos::builder().src(&*self.obj()).build());
    }

    fn set_video_caps(&self, run: &mut Running, i: usize, caps: &gst::Caps) -> bool {
        let v = &mut run.videos[i];
        let info = match parse_video_caps(caps) {
            Ok(info) => info,
            Err(err) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("{} cannot take caps {}: {}", v.pad.name(), caps, err)
                );
                return false;
            }
        };
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
        if v.codec.is_none() && info.codec == VideoCodec::H265 {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "Variant {} is H.265 in MPEG-TS segments: Apple's HLS Authoring Specification requires fragmented MP4 (CMAF) for HEVC, so Apple players will refuse it; other players play it",
                    v.output.name
                )
            );
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
        run.segmenter.set_frame_duration(i, v.frame_duration);
        gst::debug!(CAT, obj = v.pad, "Caps {}", caps);
        true
    }

    fn set_audio_caps(&self, run: &mut Running, i: usize, caps: &gst::Caps) -> bool {
        let a = &mut run.audios[i];
        let Some(s) = caps.structure(0) else {
            return false;
        };
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

    /// A variant's stream: its directory prepared and its series at 0.
    fn new_video(
        &self,
        pad: super::HlsLadderSinkPad,
        variant: String,
        pipeline: &str,
        storage: &FsStorage,
    ) -> Result<VideoStream, gst::ErrorMessage> {
        storage.prepare_dir(&variant).map_err(|err| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                (
                    "Could not create variant directory {}: {}",
                    storage.location(&variant),
                    err
                )
            )
        })?;
        let series = VariantSeries::new(pipeline, &self.obj().name(), &variant);
        let writer: Box<dyn SegmentWriter> = Box::new(TsSegmentWriter::new(Vec::new()));
        Ok(VideoStream {
            pad,
            segment: SegmentMap::new(gst::FormattedSegment::new()),
            seen_segment: false,
            codec: None,
            nal_length_size: None,
            parameter_sets: ParameterSets::default(),
            width: None,
            height: None,
            framerate: None,
            frame_duration: None,
            output: VariantOutput::new(variant, writer),
            series,
            warned_misaligned: false,
        })
    }

    fn new_audio(&self, pad: super::HlsLadderSinkPad, pipeline: &str) -> AudioStream {
        AudioStream {
            dropped: CounterSeries::new(
                Counter::Dropped,
                pipeline,
                &self.obj().name(),
                &pad.name(),
            ),
            pad,
            segment: SegmentMap::new(gst::FormattedSegment::new()),
            config: None,
            adts: true,
        }
    }

    /// Opens the output directory (created when missing) and builds the
    /// streaming state from the pads.
    fn start(&self) -> Result<Box<Running>, gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let cfg = Config::from_settings(&settings);
        let storage = FsStorage::open(&cfg.dir).map_err(|err| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                ("Output directory {} {}", cfg.dir.display(), err)
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
        let pads = self.pads.lock().unwrap().clone();
        let is_video = |p: &super::HlsLadderSinkPad| p.name().starts_with("video_");
        if !pads.iter().any(is_video) {
            return Err(gst::error_msg!(
                gst::CoreError::Pad,
                ("No video_%u pad requested: every variant needs a video stream")
            ));
        }
        let mut names: Vec<String> = pads
            .iter()
            .filter(|p| is_video(p))
            .map(variant_name_of)
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("Two video pads have the same variant-name: {:?}", names)
            ));
        }
        let pipeline = exporter::pipeline_label(&*self.obj());
        let mut segmenter = Segmenter::new(segmenter::Config::new(cfg.target_ns));
        let mut videos = Vec::new();
        let mut audios = Vec::new();
        for pad in pads {
            if is_video(&pad) {
                let name = variant_name_of(&pad);
                videos.push(self.new_video(pad, name, &pipeline, &storage)?);
                segmenter.add_video();
            } else {
                audios.push(self.new_audio(pad, &pipeline));
                segmenter.add_audio();
            }
        }
        Ok(Box::new(Running {
            multivariant_errors: CounterSeries::new(
                Counter::WriteErrors,
                &pipeline,
                &self.obj().name(),
                crate::metrics::MULTIVARIANT_STREAM,
            ),
            cfg,
            pipeline,
            storage,
            segmenter,
            videos,
            audios,
            last_master: None,
            pdt_anchor: None,
            finished: false,
            warned_early_delete: false,
            warned_audio_backlog: false,
            eos_reached: false,
            playing: false,
            stats: Stats::default(),
        }))
    }

    fn stats(&self) -> gst::Structure {
        let s = match &*self.lock_state() {
            State::Started(run) => run.stats,
            State::Stopped => Stats::default(),
        };
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

/// The variant name of a video pad: its `variant-name`, or `v<N>` from the
/// pad name `video_<N>`.
fn variant_name_of(pad: &super::HlsLadderSinkPad) -> String {
    pad.imp().variant_name().unwrap_or_else(|| {
        let index = gstbroadcast_common::pad_index(&pad.name(), "video_").unwrap_or(0);
        format!("v{index}")
    })
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
                        "Writable directory for the multivariant playlist, created with its \
                         parents when missing; each variant writes index.m3u8 and its \
                         segments into a subdirectory named after the variant",
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
                glib::ParamSpecBoolean::builder("program-date-time")
                    .nick("Program Date Time")
                    .blurb(
                        "Write EXT-X-PROGRAM-DATE-TIME (UTC, ms) on the first segment of every \
                         media playlist and after each discontinuity, from one wall-clock \
                         anchor taken at the first keyframe: the same instant in every \
                         variant at the same media sequence number",
                    )
                    .default_value(DEFAULT_PROGRAM_DATE_TIME)
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
            "program-date-time" => settings.program_date_time = value.get().expect("type checked"),
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
            "program-date-time" => settings.program_date_time.to_value(),
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
        let mut pads = self.pads.lock().unwrap();
        let mut state = self.lock_state();
        if matches!(*state, State::Started(_)) && !is_video {
            gst::element_imp_warning!(
                self,
                gst::CoreError::Pad,
                ("Audio pads can only be requested before streaming starts")
            );
            return None;
        }
        let used: Vec<u32> = pads
            .iter()
            .filter_map(|p| gstbroadcast_common::pad_index(&p.name(), prefix))
            .collect();
        let index =
            match gstbroadcast_common::request_pad_index(name, prefix, |i| used.contains(&i)) {
                Ok(i) => i,
                Err(err) => {
                    gst::warning!(CAT, imp = self, "Refusing a pad: {}", err);
                    return None;
                }
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
        if let State::Started(run) = &mut *state {
            // A variant added while streaming joins at the next cut.
            let variant = variant_name_of(&pad);
            if run.videos.iter().any(|v| v.output.name == variant) {
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::Pad,
                    ("Variant name {} is taken", variant)
                );
                return None;
            }
            match self.new_video(pad.clone(), variant, &run.pipeline, &run.storage) {
                Ok(v) => {
                    run.videos.push(v);
                    run.segmenter.add_video();
                }
                Err(err) => {
                    self.post_error_message(err);
                    return None;
                }
            }
        }
        pads.push(pad.clone());
        drop(state);
        drop(pads);
        if let Err(err) = self.obj().add_pad(&pad) {
            gst::warning!(CAT, imp = self, "Could not add pad {}: {}", pad_name, err);
            self.pads.lock().unwrap().retain(|p| p != &pad);
            return None;
        }
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        {
            let mut pads = self.pads.lock().unwrap();
            pads.retain(|p| p.upcast_ref::<gst::Pad>() != pad);
            let mut state = self.lock_state();
            if let (State::Started(run), Some(pad)) =
                (&mut *state, pad.downcast_ref::<super::HlsLadderSinkPad>())
            {
                // Its stream ends here: what it had is written.
                if let Some(stream) = run.slot(pad).filter(|_| !run.finished) {
                    let mut requests = KeyUnitRequests::new();
                    let actions = run.segmenter.end_of_stream(stream);
                    let _ = self.apply(run, actions, &mut requests);
                }
            }
        }
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            match self.start() {
                Ok(run) => *self.lock_state() = State::Started(run),
                Err(err) => {
                    self.post_error_message(err);
                    return Err(gst::StateChangeError);
                }
            }
        }
        if transition == gst::StateChange::PlayingToPaused {
            if let State::Started(run) = &mut *self.lock_state() {
                run.playing = false;
            }
        }
        let res = match self.parent_change_state(transition) {
            Ok(res) => res,
            Err(err) => {
                if transition == gst::StateChange::ReadyToPaused {
                    *self.lock_state() = State::Stopped;
                }
                return Err(err);
            }
        };
        match transition {
            gst::StateChange::PausedToReady => *self.lock_state() = State::Stopped,
            gst::StateChange::PausedToPlaying => {
                let post = match &mut *self.lock_state() {
                    State::Started(run) => {
                        run.playing = true;
                        run.eos_reached
                    }
                    State::Stopped => false,
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
