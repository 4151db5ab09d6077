//! Tags and labels: in a version's metadata when they fit, else in a sidecar object named by
//! its content (see "Tags and labels" in docs/format.md).

use std::collections::BTreeMap;

use super::encode::{encode_component, encode_tagging};
use super::meta;
use super::stored::BadField;
use crate::parameter::Extras;

impl Extras {
    /// The sidecar's bytes: canonical JSON (tags sorted by key, labels sorted), so equal
    /// extras always make the same object.
    pub fn to_json(&self) -> Vec<u8> {
        let mut canonical = self.clone();
        canonical.labels.sort();
        canonical.labels.dedup();
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    /// Reads a sidecar's bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BadField> {
        serde_json::from_slice(bytes).map_err(|_| BadField {
            field: meta::EXTRAS,
            value: format!("<{} bytes of sidecar>", bytes.len()),
        })
    }

    /// The name of the sidecar holding these bytes: their SHA-256, hex.
    pub fn digest(json: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Hex digits in a [`tags_digest`]: 128 bits, so that two different tag sets share one only
/// by a collision no reader will meet (one in 2^64 even among 2^32 versions).
pub const TAGS_DIGEST_HEX: usize = 32;

/// A digest of a parameter's resource tags: the SHA-256 of their `x-amz-tagging` form (sorted
/// by key, each part percent-encoded), hex, cut to [`TAGS_DIGEST_HEX`] digits. The writer puts
/// it in a version's index entry; a reader computes it from SSM's tags now, and equal digests
/// say the version recorded the tags SSM holds (see [`crate::index`]).
pub fn tags_digest(tags: &crate::parameter::Tags) -> String {
    let form = encode_tagging(tags.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let mut hex = Extras::digest(form.as_bytes());
    hex.truncate(TAGS_DIGEST_HEX);
    hex
}

/// The object key of the sidecar named `digest` (outside the `/` namespace of parameters).
pub fn extras_key(digest: &str) -> String {
    format!(".ssmbak/extras/{digest}")
}

/// A sidecar object: tags and labels too large for a version's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    pub key: String,
    pub body: Vec<u8>,
}

/// S3's limit on user metadata: the UTF-8 bytes of every key and value together.
pub(super) const METADATA_LIMIT: usize = 2048;

/// Puts `extras` in `metadata`, or, when they would not fit beside the rest, in a sidecar
/// that `metadata` names (returned, to be written).
pub(super) fn put_extras(
    metadata: &mut BTreeMap<String, String>,
    extras: &Extras,
) -> Option<Sidecar> {
    let mut labels = extras.labels.clone();
    labels.sort();
    labels.dedup();
    let inline = [
        (
            meta::TAGS,
            encode_tagging(extras.tags.iter().map(|(k, v)| (k.as_str(), v.clone()))),
        ),
        (
            meta::LABELS,
            labels
                .iter()
                .map(|l| encode_component(l))
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    let inline_size: usize = inline
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| "x-amz-meta-".len() + k.len() + v.len())
        .sum();
    let reserve = "x-amz-meta-".len() + meta::OMITTED.len() + 80;
    if metadata_size(metadata) + inline_size + reserve <= METADATA_LIMIT {
        for (k, v) in inline.into_iter().filter(|(_, v)| !v.is_empty()) {
            metadata.insert(k.to_owned(), v);
        }
        return None;
    }
    let body = extras.to_json();
    let digest = Extras::digest(&body);
    metadata.insert(meta::EXTRAS.to_owned(), digest.clone());
    Some(Sidecar {
        key: extras_key(&digest),
        body,
    })
}

pub(super) fn metadata_size(metadata: &BTreeMap<String, String>) -> usize {
    // Counted with the `x-amz-meta-` prefix, to stay on the safe side of S3's own count.
    metadata
        .iter()
        .map(|(k, v)| "x-amz-meta-".len() + k.len() + v.len())
        .sum()
}

/// Drops optional fields, in `drop_order`, until the metadata fits; returns what was dropped.
pub(super) fn fit_metadata(
    metadata: &mut BTreeMap<String, String>,
    drop_order: &[&str],
) -> Vec<String> {
    // Room for the `ssmbak-omitted` entry itself.
    let reserve = "x-amz-meta-".len() + meta::OMITTED.len() + 80;
    let mut omitted = Vec::new();
    for key in drop_order {
        if metadata_size(metadata) + reserve <= METADATA_LIMIT {
            break;
        }
        if metadata.remove(*key).is_some() {
            omitted.push((*key).to_owned());
        }
    }
    omitted
}
