//! Bitstream helpers: Annex B NAL unit scanning (ITU-T H.264 / H.265 Annex B),
//! `avcC` / `hvcC` decoder configuration records (ISO/IEC 14496-15), RFC 6381
//! codec strings and ADTS headers (ISO/IEC 13818-7 / 14496-3).

/// Iterates over the NAL units of an Annex B byte stream, yielding each NAL
/// unit's bytes without its start code.
pub struct AnnexBNals<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> AnnexBNals<'a> {
    /// Starts scanning `data`, which should begin with a start code.
    pub fn new(data: &'a [u8]) -> Self {
        let pos = find_start_code(data, 0)
            .map(|(_, end)| end)
            .unwrap_or(data.len());
        AnnexBNals { data, pos }
    }
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        match find_start_code(self.data, start) {
            Some((sc_start, sc_end)) => {
                self.pos = sc_end;
                // Trailing zero bytes before a 4-byte start code belong to it.
                let mut end = sc_start;
                while end > start && self.data[end - 1] == 0 {
                    end -= 1;
                }
                Some(&self.data[start..end])
            }
            None => {
                self.pos = self.data.len();
                Some(&self.data[start..])
            }
        }
    }
}

/// Finds the next `00 00 01` at or after `from`; returns (its offset, offset after it).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        // Skip quickly: a start code needs data[i + 2] == 1 with zeros before.
        let b = data[i + 2];
        if b > 1 {
            i += 3;
        } else if b == 1 && data[i] == 0 && data[i + 1] == 0 {
            return Some((i, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

/// Video codec of a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    /// ITU-T H.264 / AVC.
    H264,
    /// ITU-T H.265 / HEVC.
    H265,
}

impl VideoCodec {
    /// NAL unit type of a NAL unit's first header byte(s).
    pub fn nal_type(self, nal: &[u8]) -> u8 {
        match (self, nal.first()) {
            (VideoCodec::H264, Some(b)) => b & 0x1f,
            (VideoCodec::H265, Some(b)) => (b >> 1) & 0x3f,
            (_, None) => 0xff,
        }
    }

    /// Whether the NAL type carries slice data (a VCL NAL unit).
    pub fn is_vcl(self, nal_type: u8) -> bool {
        match self {
            VideoCodec::H264 => (1..=5).contains(&nal_type),
            VideoCodec::H265 => nal_type < 32,
        }
    }

    /// Whether the NAL type is a parameter set (SPS, PPS; VPS for H.265).
    pub fn is_parameter_set(self, nal_type: u8) -> bool {
        match self {
            VideoCodec::H264 => nal_type == 7 || nal_type == 8,
            VideoCodec::H265 => (32..=34).contains(&nal_type),
        }
    }

    /// Whether the NAL type is an access unit delimiter.
    pub fn is_aud(self, nal_type: u8) -> bool {
        match self {
            VideoCodec::H264 => nal_type == 9,
            VideoCodec::H265 => nal_type == 35,
        }
    }

    /// An access unit delimiter NAL unit with its 4-byte start code.
    pub fn aud(self) -> &'static [u8] {
        match self {
            // primary_pic_type 7 (any slice type), rbsp stop bit.
            VideoCodec::H264 => &[0, 0, 0, 1, 0x09, 0xf0],
            // nal_unit_type 35, layer 0, tid 1; pic_type 2, stop bit.
            VideoCodec::H265 => &[0, 0, 0, 1, 0x46, 0x01, 0x50],
        }
    }
}

/// Parameter sets and codec string taken from the stream or its caps.
#[derive(Clone, Debug, Default)]
pub struct ParameterSets {
    /// Parameter set NAL units in Annex B form (each with a 4-byte start code),
    /// in the order VPS, SPS, PPS.
    pub annexb: Vec<u8>,
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub codec_string: Option<String>,
}

/// Collects the parameter sets of an access unit (Annex B) until its first
/// slice. Returns `None` when the access unit carries none.
pub fn parameter_sets_in_au(codec: VideoCodec, au: &[u8]) -> Option<ParameterSets> {
    let mut ps = ParameterSets::default();
    for nal in AnnexBNals::new(au) {
        let t = codec.nal_type(nal);
        if codec.is_vcl(t) {
            break;
        }
        if codec.is_parameter_set(t) {
            ps.annexb.extend_from_slice(&[0, 0, 0, 1]);
            ps.annexb.extend_from_slice(nal);
            if ps.codec_string.is_none() {
                ps.codec_string = codec_string_from_sps(codec, t, nal);
            }
        }
    }
    if ps.annexb.is_empty() {
        None
    } else {
        Some(ps)
    }
}

/// What precedes the first slice of an Annex B access unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuPrefix {
    /// The access unit starts with an access unit delimiter.
    pub has_aud: bool,
    /// The access unit carries an SPS (H.264/H.265) before its first slice.
    pub has_sps: bool,
    /// Byte offset where the NAL unit after a leading AUD starts (its start
    /// code included); 0 without an AUD.
    pub aud_end: usize,
}

/// Looks at the NAL units before the first slice of an Annex B access unit.
/// Only the bytes up to the first slice's header are read: the slice data
/// (nearly all of the access unit) is never scanned for start codes.
pub fn au_prefix(codec: VideoCodec, au: &[u8]) -> AuPrefix {
    let mut p = AuPrefix::default();
    let mut next = find_start_code(au, 0);
    let mut first = true;
    while let Some((_, start)) = next {
        let t = codec.nal_type(&au[start..]);
        if start >= au.len() || codec.is_vcl(t) {
            break;
        }
        next = find_start_code(au, start);
        if first && codec.is_aud(t) {
            p.has_aud = true;
            // The AUD ends at the next start code, less the zero byte of a
            // 4-byte one.
            let mut end = next.map_or(au.len(), |(sc, _)| sc);
            while end > start && au[end - 1] == 0 {
                end -= 1;
            }
            p.aud_end = end;
        }
        if (codec == VideoCodec::H264 && t == 7) || (codec == VideoCodec::H265 && t == 33) {
            p.has_sps = true;
        }
        first = false;
    }
    p
}

fn codec_string_from_sps(codec: VideoCodec, nal_type: u8, nal: &[u8]) -> Option<String> {
    match codec {
        // avc1.PPCCLL: profile_idc, constraint flags byte, level_idc (RFC 6381 3.3).
        VideoCodec::H264 if nal_type == 7 && nal.len() >= 4 => {
            Some(format!("avc1.{:02x}{:02x}{:02x}", nal[1], nal[2], nal[3]))
        }
        VideoCodec::H265 if nal_type == 33 => hevc_codec_string_from_sps(nal),
        _ => None,
    }
}

/// Removes emulation prevention bytes (`00 00 03` -> `00 00`).
fn unescape_rbsp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// `hvc1.` codec string (ISO/IEC 14496-15 annex E) from an H.265 SPS's
/// profile_tier_level.
fn hevc_codec_string_from_sps(nal: &[u8]) -> Option<String> {
    // 2 bytes NAL header, then sps_video_parameter_set_id(4) max_sub_layers(3)
    // temporal_id_nesting(1), then profile_tier_level starts.
    let rbsp = unescape_rbsp(nal.get(2..)?);
    let ptl = rbsp.get(1..13)?;
    hevc_codec_string(ptl)
}

/// Builds the `hvc1.` string from the 12 general profile_tier_level bytes.
fn hevc_codec_string(ptl: &[u8]) -> Option<String> {
    let profile_space = ptl[0] >> 6;
    let tier = (ptl[0] >> 5) & 1;
    let profile_idc = ptl[0] & 0x1f;
    let compat = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let level = ptl[11];
    let mut s = String::from("hvc1.");
    if profile_space > 0 {
        s.push((b'A' + profile_space - 1) as char);
    }
    s.push_str(&format!(
        "{profile_idc}.{compat:x}.{}{level}",
        if tier == 1 { 'H' } else { 'L' }
    ));
    // Constraint bytes, trailing zero bytes omitted.
    let constraints = &ptl[5..11];
    let last = constraints.iter().rposition(|&b| b != 0);
    if let Some(last) = last {
        for b in &constraints[..=last] {
            s.push_str(&format!(".{b:X}"));
        }
    }
    Some(s)
}

/// Decoder configuration from caps `codec_data` of `stream-format=avc|hvc1|hev1`.
#[derive(Clone, Debug)]
pub struct LengthPrefixedConfig {
    /// Size of each NAL unit's length prefix in bytes (1, 2 or 4).
    pub nal_length_size: usize,
    /// Parameter sets in Annex B form, and the codec string.
    pub parameter_sets: ParameterSets,
}

/// Big-endian 16-bit value at `pos`.
fn be16(data: &[u8], pos: usize) -> Option<usize> {
    Some(u16::from_be_bytes([*data.get(pos)?, *data.get(pos + 1)?]) as usize)
}

/// Appends `count` NAL units stored with 16-bit length prefixes from `*pos`
/// on (the parameter set arrays of ISO/IEC 14496-15 records) to `out` in
/// Annex B form, advancing `*pos`. `None` when the data is truncated.
fn append_nal_array(data: &[u8], pos: &mut usize, count: usize, out: &mut Vec<u8>) -> Option<()> {
    for _ in 0..count {
        let len = be16(data, *pos)?;
        *pos += 2;
        let nal = data.get(*pos..*pos + len)?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        *pos += len;
    }
    Some(())
}

/// Parses an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1).
pub fn parse_avcc(data: &[u8]) -> Result<LengthPrefixedConfig, String> {
    let err = || format!("truncated avcC codec_data ({} bytes)", data.len());
    if data.len() < 7 || data[0] != 1 {
        return Err(format!(
            "avcC codec_data must start with version 1 and be at least 7 bytes, got {} bytes",
            data.len()
        ));
    }
    let nal_length_size = (data[4] & 0x03) as usize + 1;
    if nal_length_size == 3 {
        return Err("avcC lengthSizeMinusOne of 2 is not allowed".into());
    }
    let mut ps = ParameterSets {
        codec_string: Some(format!(
            "avc1.{:02x}{:02x}{:02x}",
            data[1], data[2], data[3]
        )),
        ..Default::default()
    };
    let mut pos = 5;
    for count_mask in [0x1f_u8, 0xff] {
        let count = (*data.get(pos).ok_or_else(err)? & count_mask) as usize;
        pos += 1;
        append_nal_array(data, &mut pos, count, &mut ps.annexb).ok_or_else(err)?;
    }
    Ok(LengthPrefixedConfig {
        nal_length_size,
        parameter_sets: ps,
    })
}

/// Parses an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 8.3.3.1).
pub fn parse_hvcc(data: &[u8]) -> Result<LengthPrefixedConfig, String> {
    let err = || format!("truncated hvcC codec_data ({} bytes)", data.len());
    if data.len() < 23 || data[0] != 1 {
        return Err(format!(
            "hvcC codec_data must start with version 1 and be at least 23 bytes, got {} bytes",
            data.len()
        ));
    }
    let nal_length_size = (data[21] & 0x03) as usize + 1;
    let mut ps = ParameterSets {
        codec_string: hevc_codec_string(&data[1..13]),
        ..Default::default()
    };
    let arrays = data[22] as usize;
    let mut pos = 23;
    for _ in 0..arrays {
        pos += 1; // array_completeness, NAL_unit_type
        let count = be16(data, pos).ok_or_else(err)?;
        pos += 2;
        append_nal_array(data, &mut pos, count, &mut ps.annexb).ok_or_else(err)?;
    }
    Ok(LengthPrefixedConfig {
        nal_length_size,
        parameter_sets: ps,
    })
}

/// Rewrites a length-prefixed access unit into Annex B, appending to `out`.
/// Fails when a length runs past the end of the buffer.
pub fn length_prefixed_to_annexb(
    data: &[u8],
    nal_length_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut pos = 0;
    while pos < data.len() {
        let len_bytes = data
            .get(pos..pos + nal_length_size)
            .ok_or_else(|| format!("truncated NAL length at byte {pos}"))?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        pos += nal_length_size;
        let nal = data
            .get(pos..pos + len)
            .ok_or_else(|| format!("NAL length {len} at byte {pos} runs past the buffer"))?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        pos += len;
    }
    Ok(())
}

/// AAC configuration needed to write ADTS headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC LC).
    pub object_type: u8,
    /// Sampling frequency index (ISO/IEC 14496-3 table 1.16).
    pub frequency_index: u8,
    /// Channel configuration (1 to 7).
    pub channel_config: u8,
}

impl AacConfig {
    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Parses the first bytes of an `AudioSpecificConfig`.
    pub fn from_audio_specific_config(asc: &[u8]) -> Result<Self, String> {
        if asc.len() < 2 {
            return Err(format!(
                "AudioSpecificConfig too short ({} bytes)",
                asc.len()
            ));
        }
        let object_type = asc[0] >> 3;
        let frequency_index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7);
        let channel_config = (asc[1] >> 3) & 0x0f;
        if object_type == 0 || object_type > 4 || frequency_index > 12 {
            return Err(format!(
                "AudioSpecificConfig with object type {object_type} and frequency index \
                 {frequency_index} cannot be carried in ADTS"
            ));
        }
        Ok(AacConfig {
            object_type,
            frequency_index,
            channel_config,
        })
    }

    /// Reads the configuration from an ADTS header.
    pub fn from_adts(frame: &[u8]) -> Option<Self> {
        if frame.len() < 7 || frame[0] != 0xff || frame[1] & 0xf6 != 0xf0 {
            return None;
        }
        Some(AacConfig {
            object_type: (frame[2] >> 6) + 1,
            frequency_index: (frame[2] >> 2) & 0x0f,
            channel_config: ((frame[2] & 1) << 2) | (frame[3] >> 6),
        })
    }

    /// The 7-byte ADTS header (no CRC) for a raw frame of `payload_len` bytes.
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        let len = payload_len + 7;
        [
            0xff,
            0xf1, // MPEG-4, layer 0, no CRC
            ((self.object_type - 1) << 6)
                | (self.frequency_index << 2)
                | (self.channel_config >> 2),
            ((self.channel_config & 3) << 6) | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            ((len as u8 & 0x07) << 5) | 0x1f,
            0xfc,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_scan_handles_3_and_4_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 0xaa,
        ];
        let nals: Vec<&[u8]> = AnnexBNals::new(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x09, 0xf0][..], &[0x67, 1, 2][..], &[0x65, 0xaa][..]]
        );
        let p = au_prefix(VideoCodec::H264, &data);
        assert!(p.has_aud && p.has_sps);
        assert_eq!(p.aud_end, 6);
        // A slice first: nothing before it; an AUD only counts first.
        let slice = [0, 0, 1, 0x41, 0, 0, 1, 0x09, 0xf0];
        let p = au_prefix(VideoCodec::H264, &slice);
        assert!(!p.has_aud && !p.has_sps);
        let sps_aud = [0, 0, 1, 0x67, 1, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65];
        let p = au_prefix(VideoCodec::H264, &sps_aud);
        assert!(!p.has_aud && p.has_sps);
        // An AUD at the end of the data (no slice) ends with it.
        let p = au_prefix(VideoCodec::H264, &[0, 0, 1, 0x09, 0xf0]);
        assert!(p.has_aud);
        assert_eq!(p.aud_end, 5);
        let ps = parameter_sets_in_au(VideoCodec::H264, &data).unwrap();
        assert_eq!(ps.annexb, vec![0, 0, 0, 1, 0x67, 1, 2]);
    }

    #[test]
    fn avc_codec_string_from_sps() {
        let sps = [0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac];
        let ps = parameter_sets_in_au(VideoCodec::H264, &sps).unwrap();
        assert_eq!(ps.codec_string.as_deref(), Some("avc1.64001f"));
    }

    #[test]
    fn avcc_and_length_prefixed_conversion() {
        let avcc = [
            1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 3, 0x67, 0x42, 0xc0, 1, 0, 2, 0x68, 0xce,
        ];
        let cfg = parse_avcc(&avcc).unwrap();
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(
            cfg.parameter_sets.codec_string.as_deref(),
            Some("avc1.42c01e")
        );
        assert_eq!(
            cfg.parameter_sets.annexb,
            vec![0, 0, 0, 1, 0x67, 0x42, 0xc0, 0, 0, 0, 1, 0x68, 0xce]
        );
        let mut out = Vec::new();
        length_prefixed_to_annexb(&[0, 0, 0, 2, 0x65, 0x88], 4, &mut out).unwrap();
        assert_eq!(out, vec![0, 0, 0, 1, 0x65, 0x88]);
        assert!(length_prefixed_to_annexb(&[0, 0, 0, 9, 0x65], 4, &mut out).is_err());
        assert!(parse_avcc(&avcc[..9]).is_err());
    }

    #[test]
    fn adts_header_round_trips() {
        let cfg = AacConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert_eq!(cfg.codec_string(), "mp4a.40.2");
        assert_eq!(cfg.frequency_index, 4);
        assert_eq!(cfg.channel_config, 2);
        let h = cfg.adts_header(300);
        assert_eq!(AacConfig::from_adts(&h), Some(cfg));
        let len = (((h[3] & 3) as usize) << 11) | ((h[4] as usize) << 3) | (h[5] >> 5) as usize;
        assert_eq!(len, 307);
    }

    #[test]
    fn hevc_codec_string_main_profile() {
        // general_profile_space 0, tier 0, profile 1, compat flags 0x60000000,
        // progressive+frame-only constraint 0x90, level 93 (3.1).
        let ptl = [0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        assert_eq!(hevc_codec_string(&ptl).as_deref(), Some("hvc1.1.6.L93.90"));
    }
}
