//! Media and multivariant playlists (RFC 8216), rendered with `m3u8-rs`, and
//! atomic file replacement.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use m3u8_rs::{MediaPlaylist, MediaPlaylistType, MediaSegment};

/// Protocol version written in every playlist: 3 for decimal EXTINF
/// durations (RFC 8216 section 7).
pub const HLS_VERSION: usize = 3;

/// Writes `data` to `path` atomically: a temporary file in the same directory
/// is written and renamed over `path`, so readers see the old or the new file,
/// never a partial one. Errors carry the OS error; the temporary is removed.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic`], with the content produced by `fill` writing into
/// the temporary file. On any error the temporary is removed and `path` is
/// left as it was.
pub fn write_atomic_with<T, E: From<io::Error>>(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        let value = fill(&mut f)?;
        drop(f);
        fs::rename(&tmp, path)?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The temporary name used by [`write_atomic`]: `.NAME.tmp` beside `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Removes temporaries a killed process left behind in `dir`.
pub fn remove_stale_temporaries(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Playlist type (RFC 8216 section 4.3.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sliding window; segments leave the playlist and, after the hold-back
    /// of section 6.2.2, the disk.
    Live,
    /// Segments are only appended (`EXT-X-PLAYLIST-TYPE:EVENT`).
    Event,
    /// Written once, complete, at EOS (`EXT-X-PLAYLIST-TYPE:VOD`).
    Vod,
}

/// One segment listed in a media playlist.
#[derive(Clone, Debug)]
pub struct Entry {
    /// URI relative to the media playlist.
    pub uri: String,
    /// Path of the segment file.
    pub path: PathBuf,
    /// Duration in ns.
    pub duration_ns: i64,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
}

/// A segment removed from a live playlist, waiting out its hold-back.
#[derive(Clone, Debug)]
struct Removed {
    path: PathBuf,
    /// Running time in ns after which the file may be deleted.
    delete_after_ns: i64,
}

/// State of one variant's media playlist.
#[derive(Debug)]
pub struct MediaPlaylistState {
    entries: VecDeque<Entry>,
    removed: VecDeque<Removed>,
    /// Media sequence number of the first listed segment.
    pub media_sequence: u64,
    /// Discontinuity sequence number (RFC 8216 4.3.3.3).
    pub discontinuity_sequence: u64,
    /// Whether a segment had to be deleted before its hold-back ran out.
    pub early_deletions: u64,
}

impl Default for MediaPlaylistState {
    fn default() -> Self {
        Self::new()
    }
}

impl MediaPlaylistState {
    /// An empty playlist starting at media sequence 0.
    pub fn new() -> Self {
        MediaPlaylistState {
            entries: VecDeque::new(),
            removed: VecDeque::new(),
            media_sequence: 0,
            discontinuity_sequence: 0,
            early_deletions: 0,
        }
    }

    /// Number of listed segments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no segment is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a segment. For live playlists, segments beyond `window` leave
    /// the playlist (media and discontinuity sequence numbers follow) and are
    /// queued for deletion after the RFC 8216 6.2.2 hold-back: the segment's
    /// duration plus the duration of the longest playlist that listed it.
    /// `now_ns` is the running time at the end of the new segment.
    pub fn push(&mut self, entry: Entry, kind: Kind, window: usize, now_ns: i64) {
        self.entries.push_back(entry);
        if kind != Kind::Live {
            return;
        }
        while self.entries.len() > window.max(1) {
            // The longest playlist that listed the leaving segment: the
            // window it was part of before the new segment came.
            let playlist_ns: i64 = self
                .entries
                .iter()
                .take(window.max(1))
                .map(|e| e.duration_ns)
                .sum();
            let e = self.entries.pop_front().expect("non-empty");
            self.media_sequence += 1;
            if e.discontinuity {
                self.discontinuity_sequence += 1;
            }
            self.removed.push_back(Removed {
                path: e.path,
                delete_after_ns: now_ns + e.duration_ns + playlist_ns,
            });
        }
    }

    /// Deletes removed segments whose hold-back has passed at `now_ns`, and
    /// the oldest ones beyond `max_files` segments on disk (0: no bound).
    /// Returns the paths that could not be deleted with their errors.
    pub fn delete_expired(&mut self, now_ns: i64, max_files: usize) -> Vec<(PathBuf, io::Error)> {
        let mut errors = Vec::new();
        while let Some(r) = self.removed.front() {
            let over = max_files > 0 && self.entries.len() + self.removed.len() > max_files;
            if r.delete_after_ns > now_ns && !over {
                break;
            }
            if r.delete_after_ns > now_ns {
                self.early_deletions += 1;
            }
            let r = self.removed.pop_front().expect("non-empty");
            if let Err(err) = fs::remove_file(&r.path) {
                if err.kind() != io::ErrorKind::NotFound {
                    errors.push((r.path, err));
                }
            }
        }
        errors
    }

    /// Renders the media playlist. `target_duration_s` is EXT-X-TARGETDURATION.
    pub fn render(&self, target_duration_s: u64, kind: Kind, end_list: bool) -> Vec<u8> {
        let playlist = MediaPlaylist {
            version: Some(HLS_VERSION),
            target_duration: target_duration_s,
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            end_list,
            playlist_type: match kind {
                Kind::Live => None,
                Kind::Event => Some(MediaPlaylistType::Event),
                Kind::Vod => Some(MediaPlaylistType::Vod),
            },
            independent_segments: true,
            segments: self
                .entries
                .iter()
                .map(|e| MediaSegment {
                    uri: e.uri.clone(),
                    duration: extinf_seconds(e.duration_ns),
                    discontinuity: e.discontinuity,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut out = Vec::with_capacity(256 + 48 * self.entries.len());
        playlist
            .write_to(&mut out)
            .expect("writing into a Vec cannot fail");
        out
    }
}

/// EXTINF value in seconds, rounded to milliseconds so that its decimal form
/// stays short (`6.006`).
pub fn extinf_seconds(duration_ns: i64) -> f32 {
    ((duration_ns as f64 / 1e6).round() / 1e3) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: &Path, i: usize, discontinuity: bool) -> Entry {
        let path = dir.join(format!("s{i}.ts"));
        fs::write(&path, b"x").unwrap();
        Entry {
            uri: format!("s{i}.ts"),
            path,
            duration_ns: 2_000_000_000,
            discontinuity,
        }
    }

    #[test]
    fn live_window_slides_and_holds_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = MediaPlaylistState::new();
        for i in 0..10 {
            p.push(
                entry(dir.path(), i, i == 1),
                Kind::Live,
                3,
                (i as i64 + 1) * 2_000_000_000,
            );
            p.delete_expired((i as i64 + 1) * 2_000_000_000, 0);
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.media_sequence, 7);
        assert_eq!(p.discontinuity_sequence, 1);
        // Hold-back: 2 s + 6 s (3 segments) after removal, so the four most
        // recently removed segments (s3..s6) are still on disk.
        for i in 0..10 {
            assert_eq!(dir.path().join(format!("s{i}.ts")).exists(), i >= 3, "s{i}");
        }
        let text = String::from_utf8(p.render(2, Kind::Live, false)).unwrap();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:7"));
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1"));
        assert!(text.contains("#EXTINF:2,"));
        // A bound on files deletes early.
        p.delete_expired(20_000_000_000, 4);
        assert!(!dir.path().join("s5.ts").exists());
        assert!(p.early_deletions > 0);
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.m3u8");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!temp_path(&path).exists());
        assert!(write_atomic(&dir.path().join("missing/x"), b"x").is_err());
    }
}
