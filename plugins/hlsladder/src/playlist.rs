//! Media and multivariant playlists (RFC 8216) as a pure model: state in,
//! text and expired URIs out. No I/O happens here; `storage.rs` writes what
//! this renders.
//!
//! Rendered by our own writer rather than m3u8-rs, which leaves out
//! `EXT-X-DISCONTINUITY-SEQUENCE` while it is 0 and has no LL-HLS tags
//! (m3u8-rs stays the parser of the tests).

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Protocol version of every playlist: 3 for decimal EXTINF durations
/// (RFC 8216 section 7).
pub const HLS_VERSION: u32 = 3;

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
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// URI relative to the media playlist.
    pub uri: String,
    /// Duration in ns.
    pub duration_ns: i64,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// Wall-clock time of the segment's first sample, in ms since the Unix
    /// epoch (`EXT-X-PROGRAM-DATE-TIME`); `None` when not written.
    pub program_date_time_ms: Option<i64>,
}

/// A segment removed from a live playlist, waiting out its hold-back.
#[derive(Clone, Debug)]
struct Removed {
    uri: String,
    /// Running time in ns after which the file may be deleted.
    delete_after_ns: i64,
}

/// Segments whose hold-back has passed, to be deleted by the caller.
#[derive(Debug, Default, PartialEq)]
pub struct Expired {
    /// URIs (relative to the media playlist) to delete.
    pub uris: Vec<String>,
    /// How many of them leave before their hold-back, for `max-files`.
    pub early: u64,
}

/// One variant's media playlist (RFC 8216 section 4.3.3).
#[derive(Debug, Default)]
pub struct MediaPlaylist {
    entries: VecDeque<Entry>,
    removed: VecDeque<Removed>,
    /// Media sequence number of the first listed segment (4.3.3.2).
    pub media_sequence: u64,
    /// Discontinuity sequence number (4.3.3.3).
    pub discontinuity_sequence: u64,
}

impl MediaPlaylist {
    /// An empty playlist starting at media sequence 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of listed segments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no segment is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The listed segments, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Appends a segment. For live playlists, segments beyond `window` leave
    /// the playlist (media and discontinuity sequence numbers follow) and wait
    /// for the RFC 8216 6.2.2 hold-back: the segment's duration plus the
    /// duration of the longest playlist that listed it. `now_ns` is the
    /// running time at the end of the new segment.
    pub fn push(&mut self, entry: Entry, kind: Kind, window: usize, now_ns: i64) {
        self.entries.push_back(entry);
        if kind != Kind::Live {
            return;
        }
        let window = window.max(1);
        while self.entries.len() > window {
            // The longest playlist that listed the leaving segment: the
            // window it was part of before the new segment came.
            let playlist_ns: i64 = self
                .entries
                .iter()
                .take(window)
                .map(|e| e.duration_ns)
                .sum();
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.media_sequence += 1;
            // RFC 8216 6.2.1: count the EXT-X-DISCONTINUITY tags removed.
            if e.discontinuity {
                self.discontinuity_sequence += 1;
            }
            self.removed.push_back(Removed {
                delete_after_ns: now_ns + e.duration_ns + playlist_ns,
                uri: e.uri,
            });
        }
    }

    /// Segments whose hold-back has passed at `now_ns`, and the oldest ones
    /// beyond `max_files` segments kept (listed plus held back; 0: no bound).
    pub fn take_expired(&mut self, now_ns: i64, max_files: usize) -> Expired {
        let mut out = Expired::default();
        while let Some(r) = self.removed.front() {
            let over = max_files > 0 && self.entries.len() + self.removed.len() > max_files;
            if r.delete_after_ns > now_ns && !over {
                break;
            }
            if r.delete_after_ns > now_ns {
                out.early += 1;
            }
            if let Some(r) = self.removed.pop_front() {
                out.uris.push(r.uri);
            }
        }
        out
    }

    /// Renders the playlist. `EXT-X-DISCONTINUITY-SEQUENCE` is always
    /// written (also at 0), `EXT-X-PROGRAM-DATE-TIME` on the first listed
    /// segment and after each discontinuity when the entries carry one.
    pub fn render(&self, target_duration_s: u64, kind: Kind, end_list: bool) -> String {
        let mut out = String::with_capacity(256 + 64 * self.entries.len());
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:{HLS_VERSION}\n#EXT-X-TARGETDURATION:{target_duration_s}\n\
             #EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            self.media_sequence, self.discontinuity_sequence
        );
        match kind {
            Kind::Live => {}
            Kind::Event => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
            Kind::Vod => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        for (i, e) in self.entries.iter().enumerate() {
            if e.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(ms) = e.program_date_time_ms.filter(|_| i == 0 || e.discontinuity) {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", format_date_time(ms));
            }
            let _ = writeln!(out, "#EXTINF:{},\n{}", format_seconds(e.duration_ns), e.uri);
        }
        if end_list {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// One `EXT-X-STREAM-INF` of a multivariant playlist (RFC 8216 4.3.4.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variant {
    /// URI of the media playlist, relative to the multivariant playlist.
    pub uri: String,
    /// Peak segment bit rate, bits/s.
    pub bandwidth: u64,
    /// Average bit rate, bits/s.
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codec list (`avc1.64001f,mp4a.40.2`).
    pub codecs: Option<String>,
    /// Picture size, width x height in pixels.
    pub resolution: Option<(u64, u64)>,
    /// Frames per second, written with three decimals.
    pub frame_rate: Option<f64>,
}

/// Renders a multivariant playlist of `variants`.
pub fn render_multivariant(variants: &[Variant]) -> String {
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:{HLS_VERSION}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth);
        if let Some(a) = v.average_bandwidth {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={a}");
        }
        if let Some(c) = &v.codecs {
            let _ = write!(out, ",CODECS=\"{c}\"");
        }
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(f) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={f:.3}");
        }
        let _ = writeln!(out, "\n{}", v.uri);
    }
    out
}

/// Rounds a duration in ns to whole milliseconds.
pub fn duration_ms(duration_ns: i64) -> i64 {
    (duration_ns + 500_000).div_euclid(1_000_000)
}

/// A duration in ns as decimal seconds with millisecond precision
/// (`6.006`), the EXTINF form of RFC 8216 4.3.2.1.
pub fn format_seconds(duration_ns: i64) -> String {
    let ms = duration_ms(duration_ns).max(0);
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Whether a segment of `duration_ns` rounds above a target duration of
/// `target_s` seconds (RFC 8216 4.3.3.1 rounds EXTINF to the nearest integer).
pub fn overruns_target(duration_ns: i64, target_s: u64) -> bool {
    let ms = duration_ms(duration_ns);
    ms >= 0 && ((ms + 500) / 1000) as u64 > target_s
}

/// ms since the Unix epoch as an ISO 8601 date-time with milliseconds and a
/// `Z` offset (RFC 8216 4.3.2.6), e.g. `2026-12-06T04:05:06.123Z`.
pub fn format_date_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize, discontinuity: bool) -> Entry {
        Entry {
            uri: format!("s{i}.ts"),
            duration_ns: 2_000_000_000,
            discontinuity,
            program_date_time_ms: Some(1_796_529_600_000 + 2000 * i as i64),
        }
    }

    #[test]
    fn live_window_slides_and_holds_back() {
        let mut p = MediaPlaylist::new();
        let mut deleted = Vec::new();
        for i in 0..10 {
            let now = (i as i64 + 1) * 2_000_000_000;
            p.push(entry(i, i == 1), Kind::Live, 3, now);
            let e = p.take_expired(now, 0);
            assert_eq!(e.early, 0);
            deleted.extend(e.uris);
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.media_sequence, 7);
        assert_eq!(p.discontinuity_sequence, 1);
        // Hold-back: 2 s + 6 s (3 segments) after removal, so the four most
        // recently removed segments (s3..s6) are kept.
        assert_eq!(deleted, ["s0.ts", "s1.ts", "s2.ts"]);
        let text = p.render(2, Kind::Live, false);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-06T04:00:14.000Z\n#EXTINF:2.000,\ns7.ts\n\
             #EXTINF:2.000,\ns8.ts\n#EXTINF:2.000,\ns9.ts\n"
        );
        // A bound on files deletes early.
        let e = p.take_expired(20_000_000_000, 4);
        assert_eq!(e.uris, ["s3.ts", "s4.ts", "s5.ts"]);
        assert_eq!(e.early, 3);
    }

    #[test]
    fn discontinuity_sequence_is_written_at_zero_and_pdt_follows_discontinuities() {
        let mut p = MediaPlaylist::new();
        for i in 0..3 {
            p.push(entry(i, i == 2), Kind::Event, 3, 0);
        }
        let text = p.render(2, Kind::Event, true);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-06T04:00:00.000Z\n#EXTINF:2.000,\ns0.ts\n\
             #EXTINF:2.000,\ns1.ts\n#EXT-X-DISCONTINUITY\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-06T04:00:04.000Z\n#EXTINF:2.000,\ns2.ts\n\
             #EXT-X-ENDLIST\n"
        );
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 3);
        assert!(parsed.segments[2].discontinuity);
    }

    #[test]
    fn multivariant_lists_every_attribute() {
        let text = render_multivariant(&[Variant {
            uri: "v0/index.m3u8".into(),
            bandwidth: 3_100_000,
            average_bandwidth: Some(2_900_000),
            codecs: Some("avc1.64001f,mp4a.40.2".into()),
            resolution: Some((1280, 720)),
            frame_rate: Some(29.97002997),
        }]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2900000,\
             CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970\n\
             v0/index.m3u8\n"
        );
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.variants[0].average_bandwidth, Some(2_900_000));
    }

    #[test]
    fn durations_round_to_milliseconds() {
        assert_eq!(format_seconds(6_006_666_666), "6.007");
        assert_eq!(format_seconds(5_999_999), "0.006");
        assert_eq!(format_seconds(2_000_000_000), "2.000");
        assert!(!overruns_target(6_499_000_000, 6));
        assert!(overruns_target(6_500_000_000, 6));
        assert_eq!(format_date_time(0), "1970-01-01T00:00:00.000Z");
    }
}
