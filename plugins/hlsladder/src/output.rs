//! The output of one variant: names its segments, serialises them with its
//! [`SegmentWriter`], stores them and its media playlist through a
//! [`Storage`], deletes what expired, and keeps its measured bit rates and
//! `EXT-X-PROGRAM-DATE-TIME` clock. No GStreamer glue: the element turns the
//! returned reports into metrics, messages and errors.

use std::io;

use crate::playlist::{self, Entry, Kind, MediaPlaylist};
use crate::segment::{Sample, SegmentError, SegmentWriter};
use crate::segmenter::{Segment, SECOND};
use crate::storage::Storage;

/// Name of every variant's media playlist inside its directory.
pub const MEDIA_PLAYLIST_NAME: &str = "index.m3u8";

/// Playlist settings shared by every variant of a run.
#[derive(Clone, Debug)]
pub struct PlaylistConfig {
    /// EXT-X-TARGETDURATION, whole seconds.
    pub target_s: u64,
    /// Playlist type.
    pub kind: Kind,
    /// Segments listed in a live playlist.
    pub window: usize,
    /// Segment files kept per variant in live mode (0: hold-back only).
    pub max_files: usize,
}

/// What one segment write did.
#[derive(Debug)]
pub struct Written {
    /// Storage name of the segment (`v0/segment00042.ts`).
    pub name: String,
    /// Media sequence number of the segment.
    pub sequence: u64,
    /// Size in bytes.
    pub size: u64,
    /// The media playlist was rewritten (live and event playlists).
    pub playlist_written: bool,
    /// Expired segments that could not be deleted: name and OS error.
    pub delete_errors: Vec<(String, io::Error)>,
    /// Segments deleted before their hold-back because of `max-files`.
    pub early_deletions: u64,
}

/// Why a write failed.
#[derive(Debug)]
pub enum WriteError {
    /// A sample is malformed; nothing was written.
    Format(String),
    /// The storage refused `name` (the segment or the playlist).
    Io {
        /// Storage name of the file.
        name: String,
        /// The OS error.
        err: io::Error,
    },
}

/// One variant's output state.
pub struct VariantOutput {
    /// Variant name, which is also its directory.
    pub name: String,
    writer: Box<dyn SegmentWriter>,
    /// The variant's media playlist.
    pub playlist: MediaPlaylist,
    next_seq: u64,
    /// Peak bit rate over segments of at least half the target duration,
    /// bits/s (a short final segment says little).
    pub peak_bps: u64,
    total_bits: u64,
    total_ns: i64,
    next_pdt_ms: Option<i64>,
}

impl VariantOutput {
    /// A variant named `name` writing with `writer`.
    pub fn new(name: String, writer: Box<dyn SegmentWriter>) -> Self {
        VariantOutput {
            name,
            writer,
            playlist: MediaPlaylist::new(),
            next_seq: 0,
            peak_bps: 0,
            total_bits: 0,
            total_ns: 0,
            next_pdt_ms: None,
        }
    }

    /// The segment writer, to update its formats.
    pub fn writer(&mut self) -> &mut dyn SegmentWriter {
        self.writer.as_mut()
    }

    /// Segments written so far.
    pub fn segments_written(&self) -> u64 {
        self.next_seq
    }

    /// Average bit rate over everything written, bits/s.
    pub fn average_bps(&self) -> Option<u64> {
        (self.total_ns > 0)
            .then(|| (self.total_bits as u128 * SECOND as u128 / self.total_ns as u128) as u64)
    }

    /// Storage name of a file of this variant.
    pub fn file_name(&self, file: &str) -> String {
        format!("{}/{}", self.name, file)
    }

    /// Writes `segment` (video plus its audio tracks), lists it, rewrites
    /// the media playlist (not for vod, which is written at the end), and
    /// deletes what expired. `pdt_anchor` is the element's wall-clock anchor:
    /// (running time in ns, ms since the Unix epoch) of the same instant.
    /// A failed segment write leaves the playlist unchanged.
    pub fn write(
        &mut self,
        segment: &Segment<gst::Buffer>,
        pdt_anchor: Option<(i64, i64)>,
        cfg: &PlaylistConfig,
        target_ns: i64,
        storage: &dyn Storage,
    ) -> Result<Written, WriteError> {
        let mut tracks: Vec<&[Sample]> = vec![&segment.video];
        tracks.extend(segment.audio.iter().map(|a| a.as_slice()));
        let uri = format!("segment{:05}.{}", self.next_seq, self.writer.extension());
        let name = self.file_name(&uri);
        let io_error = |err| WriteError::Io {
            name: name.clone(),
            err,
        };
        // Muxed straight into a staged file: a failure leaves nothing behind.
        let mut file = storage.create(&name).map_err(io_error)?;
        let size = self
            .writer
            .write_segment(&tracks, &mut file)
            .map_err(|e| match e {
                SegmentError::Format(s) => WriteError::Format(s),
                SegmentError::Io(err) => io_error(err),
            })?;
        file.commit().map_err(io_error)?;
        let sequence = self.next_seq;
        self.next_seq += 1;

        // The wall clock of the first segment comes from the anchor; later
        // ones advance exactly by the listed durations.
        let pdt = pdt_anchor.map(|(rt, ms)| {
            self.next_pdt_ms
                .unwrap_or_else(|| ms + playlist::duration_ms(segment.start - rt))
        });
        self.next_pdt_ms = pdt.map(|p| p + playlist::duration_ms(segment.duration));
        self.playlist.push(
            Entry {
                uri,
                duration_ns: segment.duration,
                discontinuity: segment.discontinuity,
                program_date_time_ms: pdt,
            },
            cfg.kind,
            cfg.window,
            segment.end,
        );

        let bits = size * 8;
        if segment.duration > 0 {
            let bps = (bits as u128 * SECOND as u128 / segment.duration as u128) as u64;
            if segment.duration >= target_ns / 2 || self.peak_bps == 0 {
                self.peak_bps = self.peak_bps.max(bps);
            }
        }
        self.total_bits += bits;
        self.total_ns += segment.duration;

        let mut written = Written {
            name,
            sequence,
            size,
            playlist_written: false,
            delete_errors: Vec::new(),
            early_deletions: 0,
        };
        if cfg.kind != Kind::Vod {
            self.write_playlist(cfg, false, storage)?;
            written.playlist_written = true;
            let expired = self.playlist.take_expired(segment.end, cfg.max_files);
            written.early_deletions = expired.early;
            for uri in expired.uris {
                let name = self.file_name(&uri);
                if let Err(err) = storage.delete(&name) {
                    written.delete_errors.push((name, err));
                }
            }
        }
        Ok(written)
    }

    /// Writes the media playlist; `end_list` adds `EXT-X-ENDLIST`.
    pub fn write_playlist(
        &self,
        cfg: &PlaylistConfig,
        end_list: bool,
        storage: &dyn Storage,
    ) -> Result<(), WriteError> {
        let text = self.playlist.render(cfg.target_s, cfg.kind, end_list);
        let name = self.file_name(MEDIA_PLAYLIST_NAME);
        storage
            .put(&name, text.as_bytes())
            .map_err(|err| WriteError::Io { name, err })
    }
}
