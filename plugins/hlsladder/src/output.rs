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
            let half_target_ns = cfg.target_s as i64 * SECOND / 2;
            if segment.duration >= half_target_ns || self.peak_bps == 0 {
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::segment::TrackFormat;
    use crate::storage::FsStorage;

    const MS: i64 = 1_000_000;
    /// 2026-12-06T04:00:00Z in ms since the Unix epoch.
    const WALL0: i64 = 1_796_529_600_000;

    /// Writes 1000 bytes per video sample.
    struct FakeWriter;

    impl SegmentWriter for FakeWriter {
        fn extension(&self) -> &'static str {
            "bin"
        }

        fn update_formats(&mut self, _: Vec<TrackFormat>) {}

        fn write_segment(
            &mut self,
            tracks: &[&[Sample]],
            out: &mut dyn Write,
        ) -> Result<u64, SegmentError> {
            let n = tracks[0].len() * 1000;
            out.write_all(&vec![0x47; n])?;
            Ok(n as u64)
        }
    }

    fn segment(
        start_ms: i64,
        dur_ms: i64,
        frames: i64,
        discontinuity: bool,
    ) -> Segment<gst::Buffer> {
        let frame = dur_ms * MS / frames;
        let video = (0..frames)
            .map(|i| Sample {
                pts: start_ms * MS + i * frame,
                dts: start_ms * MS + i * frame,
                duration: frame,
                keyframe: i == 0,
                discont: false,
                data: gst::Buffer::new(),
            })
            .collect();
        Segment {
            variant: 0,
            video,
            audio: Vec::new(),
            start: start_ms * MS,
            end: (start_ms + dur_ms) * MS,
            duration: dur_ms * MS,
            discontinuity,
        }
    }

    fn live() -> PlaylistConfig {
        PlaylistConfig {
            target_s: 2,
            kind: Kind::Live,
            window: 2,
            max_files: 0,
        }
    }

    #[test]
    fn segments_playlist_pdt_and_bit_rates() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        storage.prepare_dir("v0").unwrap();
        let mut v = VariantOutput::new("v0".into(), Box::new(FakeWriter));
        // The anchor: running time 1 s was WALL0.
        let anchor = Some((1000 * MS, WALL0));
        let mut sizes = Vec::new();
        for (start, dur, frames, disc) in [
            (1000, 2000, 60, false),
            (3000, 2000, 60, false),
            (5000, 1500, 45, true),
            (6500, 2000, 60, false),
        ] {
            let w = v
                .write(
                    &segment(start, dur, frames, disc),
                    anchor,
                    &live(),
                    &storage,
                )
                .unwrap();
            assert!(w.playlist_written && w.delete_errors.is_empty());
            sizes.push((w.name, w.sequence, w.size));
        }
        assert_eq!(
            sizes,
            [
                ("v0/segment00000.bin".to_string(), 0, 60_000),
                ("v0/segment00001.bin".to_string(), 1, 60_000),
                ("v0/segment00002.bin".to_string(), 2, 45_000),
                ("v0/segment00003.bin".to_string(), 3, 60_000),
            ]
        );
        // Window 2: segments 2 and 3 are listed; the PDT of segment 2 is
        // the anchor plus the 4 s listed before it, written because it is
        // the first listed (and after its discontinuity).
        assert_eq!(
            std::fs::read_to_string(dir.path().join("v0/index.m3u8")).unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-12-06T04:00:04.000Z\n\
             #EXTINF:1.500,\nsegment00002.bin\n#EXTINF:2.000,\nsegment00003.bin\n"
        );
        let pdts: Vec<Option<i64>> = v
            .playlist
            .entries()
            .map(|e| e.program_date_time_ms.map(|t| t - WALL0))
            .collect();
        assert_eq!(pdts, [Some(4000), Some(5500)]);
        // The removed segments wait out their hold-back (the earliest may
        // go at 6.5 + 2 + 4 = 12.5 s): all four are still on disk.
        for i in 0..4 {
            assert!(dir.path().join(format!("v0/segment0000{i}.bin")).exists());
        }
        // 60 000 B in 2 s and 45 000 B in 1.5 s are both 240 000 bit/s.
        assert_eq!(v.peak_bps, 240_000);
        assert_eq!(v.average_bps(), Some(240_000));
        assert_eq!(v.segments_written(), 4);
    }

    #[test]
    fn a_failed_segment_write_changes_nothing() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        // No v0 directory: the segment cannot be created.
        let mut v = VariantOutput::new("v0".into(), Box::new(FakeWriter));
        let err = v
            .write(&segment(0, 2000, 60, false), None, &live(), &storage)
            .unwrap_err();
        assert!(
            matches!(&err, WriteError::Io { name, .. } if name == "v0/segment00000.bin"),
            "{err:?}"
        );
        assert_eq!(v.segments_written(), 0);
        assert!(v.playlist.is_empty());
        assert_eq!(v.average_bps(), None);
    }
}
