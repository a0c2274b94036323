// SPDX-License-Identifier: MPL-2.0

//! Names of request pads (`sink_%u`, `video_%u`, `fec_%u`).

/// The index of a pad named `<prefix><N>`, or `None` for any other name.
pub fn pad_index(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.parse().ok()
}

/// The index of a new request pad of the template `<prefix>%u`: the one in
/// the requested name (`sink_3` gives 3), or the smallest free one when no
/// name, the template's own name or a name of another template is asked for.
/// Errors name the pad when its index is taken or is not a number.
pub fn request_pad_index(
    requested: Option<&str>,
    prefix: &str,
    is_used: impl Fn(u32) -> bool,
) -> Result<u32, String> {
    let template = format!("{prefix}%u");
    match requested
        .filter(|n| *n != template)
        .and_then(|n| n.strip_prefix(prefix).map(|i| (n, i)))
    {
        Some((name, index)) => match index.parse::<u32>() {
            Ok(i) if !is_used(i) => Ok(i),
            Ok(_) => Err(format!("pad name {name} is taken")),
            Err(_) => Err(format!("pad name {name} is invalid: need {prefix}<number>")),
        },
        None => (0..=u32::MAX)
            .find(|&i| !is_used(i))
            .ok_or_else(|| format!("no free {template} index")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_names_and_free_indices() {
        let used = [0u32, 1, 3];
        let is_used = |i| used.contains(&i);
        assert_eq!(request_pad_index(None, "sink_", is_used), Ok(2));
        assert_eq!(request_pad_index(Some("sink_%u"), "sink_", is_used), Ok(2));
        assert_eq!(request_pad_index(Some("src_0"), "sink_", is_used), Ok(2));
        assert_eq!(request_pad_index(Some("sink_7"), "sink_", is_used), Ok(7));
        assert_eq!(
            request_pad_index(Some("sink_3"), "sink_", is_used),
            Err("pad name sink_3 is taken".into())
        );
        assert!(request_pad_index(Some("sink_x"), "sink_", is_used)
            .unwrap_err()
            .contains("invalid"));
        assert_eq!(pad_index("video_12", "video_"), Some(12));
        assert_eq!(pad_index("audio_1", "video_"), None);
        assert_eq!(pad_index("video_", "video_"), None);
    }
}
