// SPDX-License-Identifier: MPL-2.0

//! The caps `abrselector` accepts.

use crate::nal::Codec;

/// The pad template caps: H.264 or H.265, byte-stream, access units.
pub(super) fn h26x_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().expect("new caps");
        for name in ["video/x-h264", "video/x-h265"] {
            caps.append_structure(
                gst::Structure::builder(name)
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
        }
    }
    caps
}

/// The codec of acceptable caps, or why they are refused.
pub(super) fn check_caps(caps: &gst::CapsRef) -> Result<Codec, String> {
    let Some(s) = caps.structure(0) else {
        return Err("empty caps".into());
    };
    let Some(codec) = Codec::from_caps_name(s.name()) else {
        return Err(format!(
            "{} is not H.264 or H.265 (video/x-h264, video/x-h265)",
            s.name()
        ));
    };
    if let Ok(f) = s.get::<&str>("stream-format") {
        if f != "byte-stream" {
            return Err(format!(
                "stream-format {f} is not byte-stream (put h264parse/h265parse upstream)"
            ));
        }
    }
    if let Ok(a) = s.get::<&str>("alignment") {
        if a != "au" {
            return Err(format!(
                "alignment {a} is not au (put h264parse/h265parse upstream)"
            ));
        }
    }
    Ok(codec)
}
