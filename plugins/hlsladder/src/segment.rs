//! The segment writer seam: a segment is a list of samples per track, and a
//! [`SegmentWriter`] turns it into the bytes of one media segment file.
//!
//! MPEG-TS ([`TsSegmentWriter`]) is the only format today; CMAF slots in as a
//! second implementation of the same trait.

use std::io::{self, Write};

use crate::codec::{self, AacConfig, ParameterSets, VideoCodec};
use crate::ts::{PesTiming, StreamType, TsMuxer};

/// Offset added to running time before conversion to MPEG-TS timestamps, in
/// ns, so that DTS earlier than the first PTS (B-frames) stays positive.
pub const TS_TIME_OFFSET_NS: i64 = 10_000_000_000;
/// PAT/PMT are repeated at least this often within a segment, in 90 kHz ticks
/// (400 ms, inside the 500 ms of ETSI TR 101 290 1.3.a).
const PSI_INTERVAL_90K: u64 = 36_000;

/// How a track's samples are framed on input.
#[derive(Clone, Debug)]
pub enum TrackFormat {
    /// H.264/H.265 video. `nal_length_size` is set for length-prefixed input
    /// (`avc`, `hvc1`); `None` means Annex B byte-stream.
    Video {
        /// The video codec.
        codec: VideoCodec,
        /// NAL length prefix size in bytes for length-prefixed input.
        nal_length_size: Option<usize>,
        /// Latest parameter sets, inserted before keyframes that lack them.
        parameter_sets: ParameterSets,
    },
    /// AAC audio. `adts` is true when every sample already carries an ADTS header.
    Aac {
        /// Decoder configuration, used to write ADTS headers for raw input.
        config: AacConfig,
        /// Input frames carry ADTS headers.
        adts: bool,
    },
}

/// One access unit (video) or frame (audio) of a segment, with its buffer.
pub type Sample = crate::segmenter::Sample<gst::Buffer>;

/// Why a segment could not be written.
#[derive(Debug)]
pub enum SegmentError {
    /// A sample is malformed (for example a NAL length past its buffer).
    Format(String),
    /// The output could not be written.
    Io(io::Error),
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentError::Format(s) => f.write_str(s),
            SegmentError::Io(e) => e.fmt(f),
        }
    }
}

impl From<io::Error> for SegmentError {
    fn from(e: io::Error) -> Self {
        SegmentError::Io(e)
    }
}

/// Serialises segments of one variant. Implementations keep state across
/// segments (continuity counters, sequence numbers).
///
/// MPEG-TS has no init segment and no parts; CMAF (ISO/IEC 23000-19) writers
/// return their `ftyp`/`moov` from [`SegmentWriter::init_segment`] and LL-HLS
/// parts from [`SegmentWriter::write_part`].
pub trait SegmentWriter: Send {
    /// File name extension of the segments, without the dot.
    fn extension(&self) -> &'static str;

    /// Replaces the track formats (caps changed); the kinds of tracks stay.
    fn update_formats(&mut self, formats: Vec<TrackFormat>);

    /// The init segment of the current formats (`EXT-X-MAP`), if the format
    /// has one. MPEG-TS has none.
    fn init_segment(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Writes one segment to `out` and returns its size in bytes.
    /// `tracks[i]` holds the samples of track `i` in decode order; track 0 is
    /// the video and starts with a keyframe.
    fn write_segment(
        &mut self,
        tracks: &[&[Sample]],
        out: &mut dyn Write,
    ) -> Result<u64, SegmentError>;

    /// Writes one part (LL-HLS partial segment, a CMAF chunk) to `out` and
    /// returns its size in bytes. Formats without parts refuse.
    fn write_part(
        &mut self,
        tracks: &[&[Sample]],
        out: &mut dyn Write,
    ) -> Result<u64, SegmentError> {
        let _ = (tracks, out);
        Err(SegmentError::Format(format!(
            "{} segments have no parts",
            self.extension()
        )))
    }
}

/// The MPEG-TS stream type of each track.
fn stream_types(formats: &[TrackFormat]) -> Vec<StreamType> {
    formats
        .iter()
        .map(|f| match f {
            TrackFormat::Video {
                codec: VideoCodec::H264,
                ..
            } => StreamType::H264,
            TrackFormat::Video {
                codec: VideoCodec::H265,
                ..
            } => StreamType::H265,
            TrackFormat::Aac { .. } => StreamType::AacAdts,
        })
        .collect()
}

/// Converts running time in ns to 90 kHz ticks, with [`TS_TIME_OFFSET_NS`],
/// rounded to the nearest tick.
///
/// Rounding matters: frame times such as n x 33 333 333 ns (30 fps, already
/// truncated to ns upstream) are a fraction of a tick short of the exact
/// 90 kHz value, and truncation would end every segment one tick early, which
/// makes players such as hls.js see a gap and fetch the segment again.
pub fn ns_to_90k(ns: i64) -> u64 {
    let t = (ns as i128 + TS_TIME_OFFSET_NS as i128).max(0);
    ((t * 9 + 50_000) / 100_000) as u64
}

/// MPEG-TS segments (ISO/IEC 13818-1): every segment starts with PAT, PMT and
/// a video keyframe carrying its parameter sets and an access unit delimiter.
pub struct TsSegmentWriter {
    formats: Vec<TrackFormat>,
    types: Vec<StreamType>,
    mux: TsMuxer,
    scratch: Vec<u8>,
    chunk: Vec<u8>,
}

/// Bytes muxed before they are handed to the output: small enough to stay in
/// the CPU cache between muxing and the `write` system call (writing a whole
/// 3 MB segment at once costs the kernel's copy about 2.5 times as much).
const FLUSH_BYTES: usize = 128 * 1024;

impl TsSegmentWriter {
    /// Creates a writer for the given tracks (video first, then audio); an
    /// empty list is filled in by [`SegmentWriter::update_formats`].
    pub fn new(formats: Vec<TrackFormat>) -> Self {
        let types = stream_types(&formats);
        TsSegmentWriter {
            formats,
            mux: TsMuxer::new(&types),
            types,
            scratch: Vec::new(),
            chunk: Vec::with_capacity(FLUSH_BYTES + 64 * 1024),
        }
    }

    fn write_sample(
        &mut self,
        track: usize,
        sample: &Sample,
        last_psi: &mut Option<u64>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let map = sample
            .data
            .map_readable()
            .map_err(|_| "cannot map buffer".to_string())?;
        let data = map.as_slice();
        let pts = ns_to_90k(sample.pts);
        let dts = ns_to_90k(sample.dts);
        match &self.formats[track] {
            TrackFormat::Video {
                codec,
                nal_length_size,
                parameter_sets,
            } => {
                let codec = *codec;
                let annexb: &[u8] = match nal_length_size {
                    Some(n) => {
                        self.scratch.clear();
                        codec::length_prefixed_to_annexb(data, *n, &mut self.scratch)?;
                        &self.scratch
                    }
                    None => data,
                };
                let prefix = codec::au_prefix(codec, annexb);
                let aud: &[u8] = if prefix.has_aud { &[] } else { codec.aud() };
                let ps: &[u8] = if sample.keyframe && !prefix.has_sps {
                    &parameter_sets.annexb
                } else {
                    &[]
                };
                // An AUD already in the data must stay first: put inserted
                // parameter sets after it.
                let (head, body) = if prefix.has_aud && !ps.is_empty() {
                    annexb.split_at(prefix.aud_end)
                } else {
                    (&[][..], annexb)
                };
                if sample.keyframe
                    || last_psi.is_none_or(|t| dts.wrapping_sub(t) >= PSI_INTERVAL_90K)
                {
                    self.mux.write_psi(out);
                    *last_psi = Some(dts);
                }
                let timing = PesTiming {
                    pts,
                    dts: Some(dts),
                    random_access: sample.keyframe,
                    with_pcr: true,
                };
                self.mux
                    .write_pes(out, track, &timing, &[aud, head, ps, body]);
            }
            TrackFormat::Aac { config, adts } => {
                let header;
                let chunks: [&[u8]; 2] = if *adts {
                    [&[], data]
                } else {
                    header = config.adts_header(data.len());
                    [&header, data]
                };
                let timing = PesTiming {
                    pts,
                    dts: None,
                    random_access: false,
                    with_pcr: false,
                };
                self.mux.write_pes(out, track, &timing, &chunks);
            }
        }
        Ok(())
    }
}

impl SegmentWriter for TsSegmentWriter {
    fn extension(&self) -> &'static str {
        "ts"
    }

    fn update_formats(&mut self, formats: Vec<TrackFormat>) {
        let types = stream_types(&formats);
        if types != self.types {
            // New PIDs and program map; continuity counters start anew.
            self.mux = TsMuxer::new(&types);
            self.types = types;
        }
        self.formats = formats;
    }

    fn write_segment(
        &mut self,
        tracks: &[&[Sample]],
        out: &mut dyn Write,
    ) -> Result<u64, SegmentError> {
        // Interleave the tracks by DTS.
        let mut pos = vec![0usize; tracks.len()];
        let mut last_psi = None;
        let mut written = 0u64;
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.clear();
        if tracks.first().is_none_or(|t| t.is_empty()) {
            self.mux.write_psi(&mut chunk);
        }
        let result = (|| {
            loop {
                let mut best: Option<(usize, i64)> = None;
                for (i, t) in tracks.iter().enumerate() {
                    if let Some(s) = t.get(pos[i]) {
                        if best.is_none_or(|(_, d)| s.dts < d) {
                            best = Some((i, s.dts));
                        }
                    }
                }
                let Some((i, _)) = best else { break };
                let sample = &tracks[i][pos[i]];
                pos[i] += 1;
                self.write_sample(i, sample, &mut last_psi, &mut chunk)
                    .map_err(SegmentError::Format)?;
                if chunk.len() >= FLUSH_BYTES {
                    out.write_all(&chunk)?;
                    written += chunk.len() as u64;
                    chunk.clear();
                }
            }
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
            Ok(written)
        })();
        self.chunk = chunk;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_to_90k_rounds_to_the_nearest_tick() {
        let base = ns_to_90k(0);
        assert_eq!(base, 900_000);
        // 30 fps frame times as GStreamer computes them (truncated to ns).
        for n in [1i64, 29, 539, 540, 1_000_000] {
            let ns = n * 1_000_000_000 / 30;
            assert_eq!(ns_to_90k(ns) - base, n as u64 * 3000, "frame {n}");
        }
        // 48 kHz AAC frames: 1024 samples = 1920 ticks.
        for n in [1i64, 7, 1000] {
            let ns = n * 1024 * 1_000_000_000 / 48_000;
            assert_eq!(ns_to_90k(ns) - base, n as u64 * 1920, "aac frame {n}");
        }
        assert_eq!(ns_to_90k(5_555) - base, 0);
        assert_eq!(ns_to_90k(5_556) - base, 1);
        assert_eq!(ns_to_90k(-TS_TIME_OFFSET_NS - 1), 0);
    }
}
