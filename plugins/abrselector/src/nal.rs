// SPDX-License-Identifier: MPL-2.0

//! Annex B access-unit inspection for H.264 and H.265, without GStreamer.
//!
//! An access unit (one buffer with `alignment=au`) is a sequence of NAL units,
//! each preceded by a start code `00 00 01` or `00 00 00 01` (ITU-T H.264
//! Annex B, H.265 Annex B). [`parse`] finds the NAL units and classifies the
//! access unit:
//!
//! | codec | keyframe (switch point) | parameter sets | access unit delimiter |
//! |---|---|---|---|
//! | H.264 | IDR slice, `nal_unit_type` 5 | SPS 7, PPS 8 | 9 |
//! | H.265 | IRAP, `nal_unit_type` 16..=21 (BLA, IDR, CRA) | VPS 32, SPS 33, PPS 34 | 35 |
//!
//! [`ParamSetCache`] keeps the latest parameter sets of a stream, and
//! [`insert_parameter_sets`] makes a keyframe access unit that lacks some of
//! them self-contained by inserting the cached ones right after the access
//! unit delimiter (or at the start when there is none), as both standards
//! require parameter sets to precede the first slice of the access unit.

/// The video codec of a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC (`video/x-h264`).
    H264,
    /// H.265 / HEVC (`video/x-h265`).
    H265,
}

/// A kind of parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamSet {
    /// Video parameter set (H.265 only).
    Vps = 0,
    /// Sequence parameter set.
    Sps = 1,
    /// Picture parameter set.
    Pps = 2,
}

impl ParamSet {
    /// All kinds, in the order they are inserted.
    pub const ALL: [ParamSet; 3] = [ParamSet::Vps, ParamSet::Sps, ParamSet::Pps];

    /// Short lower-case name ("vps", "sps", "pps").
    pub fn name(self) -> &'static str {
        match self {
            ParamSet::Vps => "vps",
            ParamSet::Sps => "sps",
            ParamSet::Pps => "pps",
        }
    }
}

impl Codec {
    /// `nal_unit_type` from the first byte(s) of a NAL unit header.
    pub fn nal_type(self, header: u8) -> u8 {
        match self {
            Codec::H264 => header & 0x1f,
            Codec::H265 => (header >> 1) & 0x3f,
        }
    }

    /// A NAL unit type that starts a decodable picture without earlier
    /// references: H.264 IDR (5), H.265 IRAP (16..=21).
    pub fn is_keyframe(self, nal_type: u8) -> bool {
        match self {
            Codec::H264 => nal_type == 5,
            Codec::H265 => (16..=21).contains(&nal_type),
        }
    }

    /// The parameter set a NAL unit type carries, if any.
    pub fn param_set(self, nal_type: u8) -> Option<ParamSet> {
        match (self, nal_type) {
            (Codec::H264, 7) | (Codec::H265, 33) => Some(ParamSet::Sps),
            (Codec::H264, 8) | (Codec::H265, 34) => Some(ParamSet::Pps),
            (Codec::H265, 32) => Some(ParamSet::Vps),
            _ => None,
        }
    }

    /// Access unit delimiter NAL unit type.
    pub fn is_aud(self, nal_type: u8) -> bool {
        match self {
            Codec::H264 => nal_type == 9,
            Codec::H265 => nal_type == 35,
        }
    }

    /// The parameter sets a keyframe needs to be decodable on its own.
    pub fn required(self) -> &'static [ParamSet] {
        match self {
            Codec::H264 => &[ParamSet::Sps, ParamSet::Pps],
            Codec::H265 => &[ParamSet::Vps, ParamSet::Sps, ParamSet::Pps],
        }
    }

    /// Codec of a caps structure name (`video/x-h264`, `video/x-h265`).
    pub fn from_caps_name(name: &str) -> Option<Codec> {
        match name {
            "video/x-h264" => Some(Codec::H264),
            "video/x-h265" => Some(Codec::H265),
            _ => None,
        }
    }
}

/// One NAL unit inside an access unit: `data[start..end]` is the unit from
/// its header byte on, without start code and trailing zero bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nal {
    /// `nal_unit_type`.
    pub kind: u8,
    /// Offset of the NAL header byte.
    pub start: usize,
    /// End offset (exclusive).
    pub end: usize,
}

/// What [`parse`] found in one access unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessUnit {
    /// The NAL units, in order.
    pub nals: Vec<Nal>,
    /// Contains an IDR (H.264) or IRAP (H.265) slice.
    pub keyframe: bool,
    /// Which parameter sets ([`ParamSet`] as index) the unit carries.
    pub present: [bool; 3],
    /// Where parameter sets may be inserted: the end of a leading access
    /// unit delimiter, else 0.
    pub insert_at: usize,
}

impl AccessUnit {
    /// The parameter sets `codec` requires that this unit does not carry.
    pub fn missing(&self, codec: Codec) -> Vec<ParamSet> {
        codec
            .required()
            .iter()
            .copied()
            .filter(|p| !self.present[*p as usize])
            .collect()
    }
}

/// Offset of the next `00 00 01` at or after `from`, as (offset of its
/// first zero, offset after the `01`).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from + 2;
    while i < data.len() {
        let b = data[i];
        if b > 1 {
            i += 3;
        } else if b == 1 && data[i - 1] == 0 && data[i - 2] == 0 {
            return Some((i - 2, i + 1));
        } else {
            i += 1;
        }
    }
    None
}

/// Finds the NAL units of an Annex B access unit. Returns `None` when
/// `data` is not Annex B: it must begin with a start code (zero bytes
/// before it are allowed) and its first NAL header must have the
/// forbidden_zero_bit clear.
pub fn parse(codec: Codec, data: &[u8]) -> Option<AccessUnit> {
    let (first_sc, first) = find_start_code(data, 0)?;
    if data[..first_sc].iter().any(|&b| b != 0) {
        return None;
    }
    let mut au = AccessUnit::default();
    let mut pos = Some((first_sc, first));
    while let Some((_, start)) = pos {
        let next = find_start_code(data, start);
        let mut end = next.map_or(data.len(), |(sc, _)| sc);
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            let header = data[start];
            if header & 0x80 != 0 {
                if au.nals.is_empty() {
                    return None;
                }
            } else {
                let kind = codec.nal_type(header);
                if au.nals.is_empty() && codec.is_aud(kind) {
                    au.insert_at = end;
                }
                if codec.is_keyframe(kind) {
                    au.keyframe = true;
                }
                if let Some(p) = codec.param_set(kind) {
                    au.present[p as usize] = true;
                }
                au.nals.push(Nal { kind, start, end });
            }
        }
        pos = next;
    }
    if au.nals.is_empty() {
        return None;
    }
    Some(au)
}

/// The latest parameter sets of one stream, per kind. When an access unit
/// carries parameter sets of a kind, they replace the cached ones of that
/// kind (all of them, so a stream with several SPS or PPS ids keeps the set
/// it last sent together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamSetCache {
    sets: [Vec<Vec<u8>>; 3],
}

impl ParamSetCache {
    /// Takes the parameter sets `au` (parsed from `data`) carries.
    pub fn update(&mut self, data: &[u8], au: &AccessUnit, codec: Codec) {
        for p in ParamSet::ALL {
            if !au.present[p as usize] {
                continue;
            }
            self.sets[p as usize] = au
                .nals
                .iter()
                .filter(|n| codec.param_set(n.kind) == Some(p))
                .map(|n| data[n.start..n.end].to_vec())
                .collect();
        }
    }

    /// Takes already extracted parameter sets.
    pub fn replace(&mut self, kind: ParamSet, nals: Vec<Vec<u8>>) {
        if !nals.is_empty() {
            self.sets[kind as usize] = nals;
        }
    }

    /// The cached NAL units of `kind` (without start codes).
    pub fn get(&self, kind: ParamSet) -> &[Vec<u8>] {
        &self.sets[kind as usize]
    }

    /// Whether at least one parameter set of `kind` is cached.
    pub fn has(&self, kind: ParamSet) -> bool {
        !self.sets[kind as usize].is_empty()
    }

    /// Whether every parameter set `codec` requires is cached.
    pub fn complete(&self, codec: Codec) -> bool {
        codec.required().iter().all(|p| self.has(*p))
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Extracts the parameter sets `au` carries, per kind (for
/// [`ParamSetCache::replace`]).
pub fn extract_parameter_sets(
    codec: Codec,
    data: &[u8],
    au: &AccessUnit,
) -> Vec<(ParamSet, Vec<Vec<u8>>)> {
    ParamSet::ALL
        .iter()
        .filter(|p| au.present[**p as usize])
        .map(|p| {
            (
                *p,
                au.nals
                    .iter()
                    .filter(|n| codec.param_set(n.kind) == Some(*p))
                    .map(|n| data[n.start..n.end].to_vec())
                    .collect(),
            )
        })
        .collect()
}

/// Whether the keyframe access unit `au` can be a switch point: it carries
/// every required parameter set, or the cache has the missing ones.
pub fn self_contained_with(codec: Codec, au: &AccessUnit, cache: &ParamSetCache) -> bool {
    au.keyframe && au.missing(codec).iter().all(|p| cache.has(*p))
}

/// Returns `data` with the cached parameter sets inserted (each with a
/// 4-byte start code) after a leading access unit delimiter, or at the
/// start, when `au` lacks some of those `codec` requires. `None` when
/// nothing is missing or the cache lacks a missing kind.
///
/// Every required kind is inserted, in VPS, SPS, PPS order, not only the
/// missing ones: a PPS must follow the SPS it refers to, and an SPS its
/// VPS. Update the cache from `au` first, so that parameter sets the unit
/// carries itself win; repeating them later in the unit is allowed.
pub fn insert_parameter_sets(
    codec: Codec,
    data: &[u8],
    au: &AccessUnit,
    cache: &ParamSetCache,
) -> Option<Vec<u8>> {
    let missing = au.missing(codec);
    if missing.is_empty() || !cache.complete(codec) {
        return None;
    }
    let kinds = codec.required();
    let extra: usize = kinds
        .iter()
        .flat_map(|p| cache.get(*p))
        .map(|n| n.len() + 4)
        .sum();
    let mut out = Vec::with_capacity(data.len() + extra);
    out.extend_from_slice(&data[..au.insert_at]);
    for p in kinds {
        for nal in cache.get(*p) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    out.extend_from_slice(&data[au.insert_at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn h264_idr_with_parameter_sets() {
        let data = au(&[&[0x67, 1, 2], &[0x68, 3], &[0x65, 9, 9, 0, 0, 3]]);
        let a = parse(Codec::H264, &data).unwrap();
        assert!(a.keyframe);
        assert_eq!(a.present, [false, true, true]);
        assert!(a.missing(Codec::H264).is_empty());
        assert_eq!(a.nals.iter().map(|n| n.kind).collect::<Vec<_>>(), [7, 8, 5]);
        assert_eq!(&data[a.nals[0].start..a.nals[0].end], &[0x67, 1, 2]);
        // Trailing zero bytes before a 4-byte start code are not part of the NAL.
        let data = [0, 0, 1, 0x41, 7, 0, 0, 0, 1, 0x41, 8];
        let a = parse(Codec::H264, &data).unwrap();
        assert!(!a.keyframe);
        assert_eq!(a.nals[0].end, 5);
    }

    #[test]
    fn not_annex_b() {
        assert!(parse(Codec::H264, &[0, 0, 0, 12, 0x65, 1, 2]).is_none());
        assert!(parse(Codec::H264, &[1, 2, 3]).is_none());
        assert!(parse(Codec::H264, &[]).is_none());
        assert!(parse(Codec::H264, &[0, 0, 1, 0x85]).is_none());
    }

    #[test]
    fn h265_irap_needs_vps() {
        // IDR_W_RADL (19) header 0x26 0x01; VPS 0x40 0x01, SPS 0x42 0x01, PPS 0x44 0x01.
        let data = au(&[&[0x42, 1, 5], &[0x44, 1, 6], &[0x26, 1, 7]]);
        let a = parse(Codec::H265, &data).unwrap();
        assert!(a.keyframe);
        assert_eq!(a.missing(Codec::H265), vec![ParamSet::Vps]);
        let cra = au(&[&[0x2a, 1, 7]]); // CRA 21
        assert!(parse(Codec::H265, &cra).unwrap().keyframe);
        let trail = au(&[&[0x02, 1, 7]]); // TRAIL_R 1
        assert!(!parse(Codec::H265, &trail).unwrap().keyframe);
    }

    #[test]
    fn inserts_after_aud() {
        let with = au(&[&[0x09, 0xf0], &[0x67, 1], &[0x68, 2], &[0x65, 3]]);
        let mut cache = ParamSetCache::default();
        cache.update(&with, &parse(Codec::H264, &with).unwrap(), Codec::H264);
        assert!(cache.complete(Codec::H264));
        let without = au(&[&[0x09, 0xf0], &[0x65, 4]]);
        let a = parse(Codec::H264, &without).unwrap();
        assert!(self_contained_with(Codec::H264, &a, &cache));
        let out = insert_parameter_sets(Codec::H264, &without, &a, &cache).unwrap();
        assert_eq!(
            out,
            au(&[&[0x09, 0xf0], &[0x67, 1], &[0x68, 2], &[0x65, 4]])
        );
        // A unit with an SPS but no PPS: its own SPS goes into the cache
        // first, then SPS and PPS are inserted at the start, in order.
        let only_sps = au(&[&[0x67, 9], &[0x65, 4]]);
        let a = parse(Codec::H264, &only_sps).unwrap();
        cache.update(&only_sps, &a, Codec::H264);
        let out = insert_parameter_sets(Codec::H264, &only_sps, &a, &cache).unwrap();
        assert_eq!(out, au(&[&[0x67, 9], &[0x68, 2], &[0x67, 9], &[0x65, 4]]));
        // Nothing cached: not a switch point.
        let empty = ParamSetCache::default();
        assert!(!self_contained_with(Codec::H264, &a, &empty));
        assert!(insert_parameter_sets(Codec::H264, &only_sps, &a, &empty).is_none());
    }
}
