//! The index: where each version our writer puts stands in time, readable from a listing.
//!
//! # Why
//!
//! A version's effective time is its event time, which only its own tags or metadata hold; a
//! listing gives LastModified, and a version written late (a reconcile, `seed-all`, a redriven
//! or backed-up queue) has an event time long before it. So a reader of a restore point had to
//! read the versions written after it, in case one was a late-recorded change from before.
//!
//! # What it is
//!
//! After S3 answers a `PutObject` of a value or tombstone with its version id, the writer puts
//! an empty object `.ssmbak/index<key>/<entry>` ([`entry_key`]; the key keeps its leading
//! `/`), `<entry>` being that version's place in time in the `ssmbak-earlier` form
//! ([`EarlierVersion`]: version id, kind, event or delete time, SSM version and its
//! LastModifiedDate). A listing of `.ssmbak/index<prefix>` then places every indexed version
//! of every key under the prefix without reading one.
//!
//! # Why a reader may trust it, and what it does without it
//!
//! A value version's entry also names a digest of the resource tags it recorded (a sixth
//! field, see [`crate::format::tags_digest`]), when the version recorded them. With it, a
//! reader that holds SSM's parameter now proves, from the listing alone, that the version in
//! force is SSM's very version (the same number and LastModifiedDate, to the millisecond: one
//! version of one incarnation, whose value, type and every attribute `PutParameter` sets are
//! SSM's now) with the tags SSM has now; it then reads nothing for that key
//! ([`crate::reader::BucketReader::state_or_now`]). Tags change without a new version, so the
//! digest is what lets the proof cover them. An entry without it (a version that recorded no
//! tags, a key too long for it, releases before it) proves nothing of the kind.
//!
//! An entry is a fact about the one version its id names: S3 version ids are unique per key
//! and never reused, and the entry is written only after S3 stored that version. A reader takes
//! an entry only for a version id it listed, and reads every version no entry names, so:
//!
//! * no entry (the original's versions, releases before the index, a crash between a put and
//!   its entry, a reader not allowed to list `.ssmbak/index/`): that version is read;
//! * an entry whose version is not in the listing (listed before the version was written,
//!   expired, a copied bucket's new ids): it places nothing;
//! * listings of the versions and of the index in either order, at any distance in time:
//!   the same answer, only more reads.
//!
//! No rule depends on which release writes, on an operator, or on the order of two listings.
//! A replica keeps version ids (S3 replication), so its index stays good; a copy does not, and
//! is then read exactly. Entries are never deleted: versions are never rewritten, and an entry
//! of an expired version names nothing a listing holds. Delete markers are not indexed yet:
//! they are paired with their tombstones from the listing ([`crate::pit`]).

use std::collections::HashMap;

use crate::format::EarlierVersion;

/// Where the index lives: an entry's key is this, then the object key (which starts with `/`),
/// then `/` and the entry.
pub const INDEX_PREFIX: &str = ".ssmbak/index";

/// The most bytes an S3 key holds: "The name for a key is a sequence of Unicode characters
/// whose UTF-8 encoding is at most 1,024 bytes long" (Amazon S3 User Guide, "Naming Amazon S3
/// objects"). A parameter name may take up to 1,011 characters with its ARN (SSM API
/// Reference, PutParameter, "Name"), so a long one leaves no room for an entry.
pub const KEY_MAX_BYTES: usize = 1024;

/// The key of the index entry for a version of `key` (an object key, `/` first); without its
/// tags digest when only that makes it too long for S3, and `None` when even that is: such a
/// version is simply read, as every version no entry names.
pub fn entry_key(key: &str, entry: &EarlierVersion) -> Option<String> {
    let key_of = |e: &EarlierVersion| format!("{INDEX_PREFIX}{key}/{}", e.encode());
    let full = key_of(entry);
    if full.len() <= KEY_MAX_BYTES {
        return Some(full);
    }
    let without_digest = key_of(&EarlierVersion {
        tags_digest: None,
        ..entry.clone()
    });
    (without_digest.len() <= KEY_MAX_BYTES).then_some(without_digest)
}

/// Where to list the entries of every key under `prefix` (an object key prefix).
pub fn scope_prefix(prefix: &str) -> String {
    format!("{INDEX_PREFIX}{prefix}")
}

/// The object key and entry an index key names; `None` for anything else.
pub fn parse_entry_key(index_key: &str) -> Option<(&str, EarlierVersion)> {
    let rest = index_key.strip_prefix(INDEX_PREFIX)?;
    let (key, entry) = rest.rsplit_once('/')?;
    key.starts_with('/').then_some(())?;
    Some((key, EarlierVersion::decode(entry)?))
}

/// The entries listed under a prefix, by object key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    by_key: HashMap<String, Vec<EarlierVersion>>,
}

impl Index {
    /// No entries: every version is read.
    pub fn none() -> Self {
        Index::default()
    }

    /// The index of the listed index keys (anything else among them is ignored).
    pub fn from_keys<'a>(index_keys: impl IntoIterator<Item = &'a str>) -> Self {
        let mut by_key: HashMap<String, Vec<EarlierVersion>> = HashMap::new();
        for (key, entry) in index_keys.into_iter().filter_map(parse_entry_key) {
            by_key.entry(key.to_owned()).or_default().push(entry);
        }
        Index { by_key }
    }

    /// The entries of `key`.
    pub fn of(&self, key: &str) -> &[EarlierVersion] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, deleted: bool) -> EarlierVersion {
        EarlierVersion {
            version_id: id.to_owned(),
            deleted,
            time: 1_700_000_000,
            ssm_version: (!deleted).then_some(3),
            modified_ms: (!deleted).then_some(1_699_999_999_123),
            tags_digest: None,
        }
    }

    #[test]
    fn entry_keys_name_one_key_and_one_version() {
        for (key, e) in [
            ("/app/x", entry("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", false)),
            ("/a/b/c", entry("id/with,odd;chars", true)),
            ("/x", entry("null-ish", false)),
        ] {
            let k = entry_key(key, &e).expect("short enough");
            assert!(k.starts_with(&scope_prefix(key)), "{k}");
            assert_eq!(parse_entry_key(&k), Some((key, e)), "{k}");
        }
        for other in [
            ".ssmbak/extras/abc",
            ".ssmbak/index",
            ".ssmbak/indexed/a/b",
            ".ssmbak/index/a/not-an-entry",
            "/app/x",
        ] {
            assert_eq!(parse_entry_key(other), None, "{other}");
        }
    }

    #[test]
    fn a_tags_digest_travels_in_the_entry_and_releases_before_it_skip_such_entries() {
        let digest = crate::format::tags_digest(&[("team".to_owned(), "a b".to_owned())].into());
        assert_eq!(digest.len(), crate::format::TAGS_DIGEST_HEX);
        let e = EarlierVersion {
            tags_digest: Some(digest.clone()),
            ..entry("v1", false)
        };
        let k = entry_key("/a", &e).expect("short");
        assert_eq!(parse_entry_key(&k), Some(("/a", e)));
        // The sixth field: releases before it decode five at most and ignore the entry,
        // reading that version instead (see `format::earlier`).
        let encoded = k
            .rsplit_once('/')
            .map(|(_, entry)| entry)
            .unwrap_or_default();
        assert_eq!(encoded.split(',').count(), 6, "{encoded}");
        assert!(encoded.ends_with(&format!(",t{digest}")), "{encoded}");
        // Any other digest form is no entry at all: never a wrong digest.
        for other in [
            format!(",{digest}"),
            format!(",x{digest}"),
            format!(",t{}", &digest[1..]),
        ] {
            let bad = format!(
                "{}{other}",
                k.strip_suffix(&format!(",t{digest}")).unwrap_or(&k)
            );
            assert_eq!(parse_entry_key(&bad), None, "{bad}");
        }
        // Tags differing in any way differ in digest; their order does not matter.
        let tags = |pairs: &[(&str, &str)]| -> crate::format::Tags {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let d = |pairs: &[(&str, &str)]| crate::format::tags_digest(&tags(pairs));
        assert_eq!(d(&[("a", "1"), ("b", "2")]), d(&[("b", "2"), ("a", "1")]));
        assert_ne!(d(&[("a", "1&b=2")]), d(&[("a", "1"), ("b", "2")]));
        assert_ne!(d(&[]), d(&[("a", "")]));
    }

    #[test]
    fn a_key_too_long_for_its_entry_is_left_unindexed() {
        let e = EarlierVersion {
            tags_digest: Some("0".repeat(crate::format::TAGS_DIGEST_HEX)),
            ..entry("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", false)
        };
        let name = |len: usize| format!("/{}", "n".repeat(len - 1));
        // The longest name whose entry fits with its digest: the rest of the key is fixed.
        let full = KEY_MAX_BYTES - format!("{INDEX_PREFIX}/{}", e.encode()).len();
        let k = entry_key(&name(full), &e).expect("fits");
        assert_eq!(k.len(), KEY_MAX_BYTES);
        assert_eq!(parse_entry_key(&k).map(|(_, p)| p), Some(e.clone()));
        let bare = entry_key(&name(full + 1), &e).expect("fits without its digest");
        assert!(bare.len() <= KEY_MAX_BYTES);
        assert_eq!(
            parse_entry_key(&bare).and_then(|(_, p)| p.tags_digest),
            None
        );
        assert_eq!(entry_key(&name(KEY_MAX_BYTES), &e), None);
    }

    #[test]
    fn an_index_groups_entries_by_key_and_ignores_the_rest() {
        let a = entry("v1", false);
        let b = entry("v2", true);
        let keys = [
            entry_key("/a", &a).expect("short"),
            entry_key("/a/b", &b).expect("short"),
            entry_key("/a", &b).expect("short"),
            ".ssmbak/index/a/junk".to_owned(),
        ];
        let index = Index::from_keys(keys.iter().map(String::as_str));
        assert_eq!(index.of("/a"), [a, b.clone()]);
        assert_eq!(index.of("/a/b"), [b]);
        assert!(index.of("/c").is_empty());
    }
}
