//! A purpose-built MPEG-TS packetizer (ISO/IEC 13818-1) for HLS segments.
//!
//! It writes one program (program number 1) with a PAT on PID 0, a PMT on
//! PID 0x1000 and elementary streams from PID 0x100 on. The PCR rides on the
//! first video stream's PID, in the adaptation field of the first TS packet of
//! every video PES. Continuity counters are kept per PID for the life of the
//! muxer, so consecutive segments of one variant form one continuous stream.
//!
//! Timestamps handed to it are in 90 kHz ticks and are wrapped to 33 bits here.

/// Size of one transport stream packet in bytes.
pub const TS_PACKET_SIZE: usize = 188;
/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the first elementary stream; later streams count up from it.
pub const FIRST_ES_PID: u16 = 0x100;
/// MPEG-TS program number of the single program.
const PROGRAM_NUMBER: u16 = 1;
/// Mask of a 33-bit PTS/DTS/PCR base.
const TS_33BIT_MASK: u64 = (1 << 33) - 1;
/// Distance between PCR and the DTS of the frame that carries it, in 90 kHz
/// ticks (100 ms): the decoder gets that much time to buffer the access unit.
pub const PCR_DELAY_90K: u64 = 9000;

const CRC_MPEG2: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2);

/// Elementary stream types this packetizer can carry (ISO/IEC 13818-1 table 2-34).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamType {
    /// H.264 / AVC in Annex B byte-stream form (stream_type 0x1B).
    H264,
    /// H.265 / HEVC in Annex B byte-stream form (stream_type 0x24).
    H265,
    /// AAC with ADTS headers (stream_type 0x0F).
    AacAdts,
}

impl StreamType {
    fn stream_type(self) -> u8 {
        match self {
            StreamType::H264 => 0x1b,
            StreamType::H265 => 0x24,
            StreamType::AacAdts => 0x0f,
        }
    }

    fn stream_id(self) -> u8 {
        match self {
            StreamType::H264 | StreamType::H265 => 0xe0,
            StreamType::AacAdts => 0xc0,
        }
    }

    /// Whether this is a video stream type.
    pub fn is_video(self) -> bool {
        matches!(self, StreamType::H264 | StreamType::H265)
    }
}

struct EsStream {
    pid: u16,
    stream_type: StreamType,
    cc: u8,
}

/// Timing and flags of one PES packet.
#[derive(Clone, Copy, Debug, Default)]
pub struct PesTiming {
    /// Presentation time stamp in 90 kHz ticks (wrapped to 33 bits on output).
    pub pts: u64,
    /// Decoding time stamp in 90 kHz ticks; omitted from the header when it
    /// equals `pts` or is `None`.
    pub dts: Option<u64>,
    /// Sets random_access_indicator: the PES starts with a keyframe.
    pub random_access: bool,
    /// Write a PCR (27 MHz, derived from the DTS) in this PES's first packet.
    pub with_pcr: bool,
}

/// One-program MPEG-TS muxer writing into a caller-provided byte vector.
pub struct TsMuxer {
    streams: Vec<EsStream>,
    pcr_pid: u16,
    pat_cc: u8,
    pmt_cc: u8,
    pat_section: Vec<u8>,
    pmt_section: Vec<u8>,
}

impl TsMuxer {
    /// Creates a muxer for the given streams, in PID order from [`FIRST_ES_PID`].
    /// The PCR is carried on the first video stream, or on the first stream
    /// when there is no video.
    pub fn new(stream_types: &[StreamType]) -> Self {
        let streams: Vec<EsStream> = stream_types
            .iter()
            .enumerate()
            .map(|(i, &stream_type)| EsStream {
                pid: FIRST_ES_PID + i as u16,
                stream_type,
                cc: 0,
            })
            .collect();
        let pcr_pid = streams
            .iter()
            .find(|s| s.stream_type.is_video())
            .or(streams.first())
            .map(|s| s.pid)
            .unwrap_or(0x1fff);

        let pat_section = psi_section(0x00, 1, &{
            let mut body = Vec::with_capacity(4);
            body.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
            body.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
            body
        });
        let pmt_section = psi_section(0x02, PROGRAM_NUMBER, &{
            let mut body = Vec::with_capacity(4 + 5 * streams.len());
            body.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
            body.extend_from_slice(&0xf000u16.to_be_bytes()); // program_info_length 0
            for s in &streams {
                body.push(s.stream_type.stream_type());
                body.extend_from_slice(&(0xe000 | s.pid).to_be_bytes());
                body.extend_from_slice(&0xf000u16.to_be_bytes()); // ES_info_length 0
            }
            body
        });

        TsMuxer {
            streams,
            pcr_pid,
            pat_cc: 0,
            pmt_cc: 0,
            pat_section,
            pmt_section,
        }
    }

    /// PID of elementary stream `index`.
    pub fn pid(&self, index: usize) -> u16 {
        self.streams[index].pid
    }

    /// PID that carries the PCR.
    pub fn pcr_pid(&self) -> u16 {
        self.pcr_pid
    }

    /// Appends one PAT and one PMT packet.
    pub fn write_psi(&mut self, out: &mut Vec<u8>) {
        let cc = next_cc(&mut self.pat_cc);
        write_section_packet(out, 0, cc, &self.pat_section);
        let cc = next_cc(&mut self.pmt_cc);
        write_section_packet(out, PMT_PID, cc, &self.pmt_section);
    }

    /// Appends one PES packet for stream `index` whose payload is the
    /// concatenation of `chunks`, split into TS packets.
    pub fn write_pes(
        &mut self,
        out: &mut Vec<u8>,
        index: usize,
        timing: &PesTiming,
        chunks: &[&[u8]],
    ) {
        let stream = &mut self.streams[index];
        let payload_len: usize = chunks.iter().map(|c| c.len()).sum();

        // PES header (ISO/IEC 13818-1 2.4.3.6).
        let pts = timing.pts & TS_33BIT_MASK;
        let dts = timing.dts.map(|d| d & TS_33BIT_MASK).filter(|&d| d != pts);
        let mut header = [0u8; 19];
        header[0..3].copy_from_slice(&[0, 0, 1]);
        header[3] = stream.stream_type.stream_id();
        let header_data_len = if dts.is_some() { 10 } else { 5 };
        let pes_len = 3 + header_data_len + payload_len;
        // Video may use 0 (unbounded); audio PES always fits 16 bits.
        let pes_len_field = if stream.stream_type.is_video() || pes_len > 0xffff {
            0
        } else {
            pes_len as u16
        };
        header[4..6].copy_from_slice(&pes_len_field.to_be_bytes());
        header[6] = 0x84; // '10', data_alignment_indicator
        header[7] = if dts.is_some() { 0xc0 } else { 0x80 };
        header[8] = header_data_len as u8;
        write_timestamp(
            &mut header[9..14],
            if dts.is_some() { 0x3 } else { 0x2 },
            pts,
        );
        if let Some(dts) = dts {
            write_timestamp(&mut header[14..19], 0x1, dts);
        }
        let header = &header[..9 + header_data_len];

        let pcr = if timing.with_pcr && stream.pid == self.pcr_pid {
            let base = timing.dts.unwrap_or(timing.pts);
            Some(base.wrapping_sub(PCR_DELAY_90K) & TS_33BIT_MASK)
        } else {
            None
        };

        let mut reader = ChunkReader::new(header, chunks);
        let mut remaining = header.len() + payload_len;
        let mut first = true;
        out.reserve((remaining / 184 + 2) * TS_PACKET_SIZE);
        while remaining > 0 {
            let pcr_here = if first { pcr } else { None };
            let rai = first && timing.random_access;
            // Adaptation field body after its length byte: flags + optional PCR.
            let mut af_body = if pcr_here.is_some() || rai {
                1 + if pcr_here.is_some() { 6 } else { 0 }
            } else {
                0
            };
            let mut has_af = af_body > 0;
            let mut space = 184 - if has_af { 1 + af_body } else { 0 };
            let mut stuffing = 0;
            if remaining < space {
                // Fill the packet with adaptation field stuffing.
                let af_total = 184 - remaining; // includes the length byte
                if has_af {
                    stuffing = af_total - 1 - af_body;
                } else {
                    has_af = true;
                    af_body = af_total - 1; // 0 means the single length byte
                    stuffing = af_body.saturating_sub(1);
                    if af_body == 0 {
                        stuffing = 0;
                    }
                }
                space = remaining;
            }

            let start = out.len();
            out.push(0x47);
            let pusi = if first { 0x40 } else { 0 };
            out.push(pusi | ((stream.pid >> 8) as u8 & 0x1f));
            out.push(stream.pid as u8);
            let afc = if has_af { 0x30 } else { 0x10 };
            out.push(afc | next_cc(&mut stream.cc));
            if has_af {
                let af_len = if pcr_here.is_some() || rai {
                    af_body + stuffing
                } else {
                    af_body
                };
                out.push(af_len as u8);
                if af_len > 0 {
                    let mut flags = 0u8;
                    if rai {
                        flags |= 0x40;
                    }
                    if pcr_here.is_some() {
                        flags |= 0x10;
                    }
                    out.push(flags);
                    if let Some(pcr) = pcr_here {
                        write_pcr(out, pcr);
                    }
                    out.resize(start + TS_PACKET_SIZE - space, 0xff);
                }
            }
            debug_assert_eq!(out.len(), start + TS_PACKET_SIZE - space);
            reader.copy_into(out, space);
            remaining -= space;
            first = false;
        }
    }
}

fn next_cc(cc: &mut u8) -> u8 {
    let v = *cc;
    *cc = (*cc + 1) & 0x0f;
    v
}

fn write_timestamp(dst: &mut [u8], prefix: u8, ts: u64) {
    dst[0] = (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1;
    dst[1] = (ts >> 22) as u8;
    dst[2] = (((ts >> 15) as u8 & 0x7f) << 1) | 1;
    dst[3] = (ts >> 7) as u8;
    dst[4] = ((ts as u8 & 0x7f) << 1) | 1;
}

fn write_pcr(out: &mut Vec<u8>, base: u64) {
    // program_clock_reference_base (33 bits), 6 reserved bits, extension (9 bits, 0).
    out.extend_from_slice(&[
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base as u8 & 1) << 7) | 0x7e,
        0,
    ]);
}

/// Builds a long-form PSI section with CRC_32 (ISO/IEC 13818-1 2.4.4).
fn psi_section(table_id: u8, table_id_extension: u16, body: &[u8]) -> Vec<u8> {
    let section_length = 5 + body.len() + 4;
    let mut s = Vec::with_capacity(3 + section_length);
    s.push(table_id);
    s.extend_from_slice(&(0xb000 | section_length as u16).to_be_bytes());
    s.extend_from_slice(&table_id_extension.to_be_bytes());
    s.push(0xc1); // version 0, current_next_indicator 1
    s.push(0); // section_number
    s.push(0); // last_section_number
    s.extend_from_slice(body);
    let crc = CRC_MPEG2.checksum(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

fn write_section_packet(out: &mut Vec<u8>, pid: u16, cc: u8, section: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0]);
    out.extend_from_slice(section);
    out.resize(start + TS_PACKET_SIZE, 0xff);
}

/// Reads sequentially across a header and a list of payload chunks.
struct ChunkReader<'a> {
    header: &'a [u8],
    chunks: &'a [&'a [u8]],
    chunk: usize,
    offset: usize,
}

impl<'a> ChunkReader<'a> {
    fn new(header: &'a [u8], chunks: &'a [&'a [u8]]) -> Self {
        ChunkReader {
            header,
            chunks,
            chunk: 0,
            offset: 0,
        }
    }

    fn copy_into(&mut self, out: &mut Vec<u8>, mut n: usize) {
        if !self.header.is_empty() {
            let take = n.min(self.header.len());
            out.extend_from_slice(&self.header[..take]);
            self.header = &self.header[take..];
            n -= take;
        }
        while n > 0 {
            let c = self.chunks[self.chunk];
            let take = n.min(c.len() - self.offset);
            out.extend_from_slice(&c[self.offset..self.offset + take]);
            self.offset += take;
            n -= take;
            if self.offset == c.len() {
                self.chunk += 1;
                self.offset = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(data: &[u8]) -> Vec<&[u8]> {
        assert_eq!(data.len() % TS_PACKET_SIZE, 0);
        data.chunks(TS_PACKET_SIZE).collect()
    }

    fn payload(p: &[u8]) -> &[u8] {
        let afc = (p[3] >> 4) & 3;
        let start = if afc & 2 != 0 { 5 + p[4] as usize } else { 4 };
        if afc & 1 != 0 {
            &p[start..]
        } else {
            &[]
        }
    }

    #[test]
    fn psi_crc_is_valid() {
        let mut mux = TsMuxer::new(&[StreamType::H264, StreamType::AacAdts]);
        let mut out = Vec::new();
        mux.write_psi(&mut out);
        for p in packets(&out) {
            assert_eq!(p[0], 0x47);
            let section = &p[5..];
            let len = (((section[1] & 0x0f) as usize) << 8) | section[2] as usize;
            // CRC over the whole section including its CRC gives 0.
            assert_eq!(CRC_MPEG2.checksum(&section[..3 + len]), 0);
        }
    }

    #[test]
    fn pes_round_trips_for_every_length() {
        for len in 0..800usize {
            for &(pcr, rai) in &[(false, false), (true, true), (false, true)] {
                let mut mux = TsMuxer::new(&[StreamType::H264]);
                let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let mut out = Vec::new();
                let timing = PesTiming {
                    pts: 123_456,
                    dts: Some(120_000),
                    random_access: rai,
                    with_pcr: pcr,
                };
                mux.write_pes(&mut out, 0, &timing, &[&data[..len / 3], &data[len / 3..]]);
                let mut pes = Vec::new();
                for (i, p) in packets(&out).iter().enumerate() {
                    assert_eq!(p[0], 0x47);
                    assert_eq!(p[3] & 0x0f, i as u8 & 0x0f, "continuity counter");
                    assert_eq!(p[1] & 0x40 != 0, i == 0, "payload_unit_start");
                    if i == 0 && pcr {
                        assert_eq!(p[5] & 0x10, 0x10);
                    }
                    pes.extend_from_slice(payload(p));
                }
                assert_eq!(&pes[..4], &[0, 0, 1, 0xe0]);
                let hdr = 9 + pes[8] as usize;
                assert_eq!(&pes[hdr..], &data[..], "len {len}");
            }
        }
    }

    #[test]
    fn timestamps_are_encoded_as_33_bits() {
        let mut b = [0u8; 5];
        let ts = (1u64 << 33) - 2;
        write_timestamp(&mut b, 2, ts);
        let back = (((b[0] >> 1) & 7) as u64) << 30
            | (b[1] as u64) << 22
            | ((b[2] >> 1) as u64) << 15
            | (b[3] as u64) << 7
            | (b[4] >> 1) as u64;
        assert_eq!(back, ts);
        assert_eq!(b[0] >> 4, 2);
    }
}
