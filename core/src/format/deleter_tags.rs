//! Who deleted a parameter, on its tombstone's tags: an IAM ARN escaped and split over up to
//! [`super::DELETED_BY_TAG_PARTS`] tags (see "Who deleted it" in docs/format.md).

use std::collections::BTreeMap;

use super::{DELETED_BY_TAG_PARTS, TAGS_PER_OBJECT_MAX, TAG_DELETED_BY, TAG_VALUE_MAX};

/// The tag name of part `n` (from 1) of a deleter ARN.
pub(super) fn deleted_by_tag(n: usize) -> String {
    if n == 1 {
        TAG_DELETED_BY.to_owned()
    } else {
        format!("{TAG_DELETED_BY}{n}")
    }
}

/// Whether a byte stands for itself in an escaped tag value: the tag characters S3 allows,
/// ASCII only (a non-ASCII letter is allowed too, but escaping it keeps the rule simple).
pub(super) fn tag_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" _.:/+@-".contains(&b)
}

/// `s` with every byte outside the tag-safe set written `=XX`: S3 accepts the result as a tag
/// value, and [`unescape_tag`] gives `s` back.
pub(super) fn escape_tag(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if tag_safe(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The text [`escape_tag`] escaped; `None` for anything it cannot have written.
pub(super) fn unescape_tag(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'=' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if tag_safe(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The tags that record `arn` as a tombstone's deleter, for an object that already has
/// `other_tags` tags; `None` when they cannot fit (see the module documentation).
pub fn deleted_by_tags(arn: &str, other_tags: usize) -> Option<Vec<(String, String)>> {
    if arn.is_empty() {
        return None;
    }
    let escaped = escape_tag(arn);
    // Split only between escapes: the escape alphabet is ASCII, so byte indices are chars.
    let mut parts = Vec::new();
    let mut rest = escaped.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(TAG_VALUE_MAX);
        if cut < rest.len() {
            // Never inside a `=XX`.
            if let Some(eq) = rest[..cut].rfind('=').filter(|&eq| eq + 3 > cut) {
                cut = eq;
            }
        }
        parts.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    if parts.len() > DELETED_BY_TAG_PARTS || other_tags + parts.len() > TAGS_PER_OBJECT_MAX {
        return None;
    }
    Some(
        parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| (deleted_by_tag(i + 1), part))
            .collect(),
    )
}

/// Whether `key` is one of the `ssmbakDeletedBy` tags.
pub fn is_deleted_by_tag(key: &str) -> bool {
    deleted_by_part(key).is_some()
}

/// Which part (from 1) of a deleter ARN the tag `key` holds.
pub(super) fn deleted_by_part(key: &str) -> Option<usize> {
    let rest = key.strip_prefix(TAG_DELETED_BY)?;
    if rest.is_empty() {
        return Some(1);
    }
    let n: usize = rest.parse().ok()?;
    (2..=DELETED_BY_TAG_PARTS)
        .contains(&n)
        .then_some(n)
        .filter(|_| !rest.starts_with('0'))
}

/// The deleter ARN from its tag parts; `None` unless they are exactly parts 1..=n and unescape.
pub(super) fn deleted_by_from_parts(parts: &BTreeMap<usize, &str>) -> Option<String> {
    if parts.is_empty() || parts.keys().copied().ne(1..=parts.len()) {
        return None;
    }
    unescape_tag(&parts.values().copied().collect::<String>()).filter(|a| !a.is_empty())
}
