//! The earlier versions a version names (`ssmbak-earlier`), so that a reader who has the
//! newest version knows where every earlier one stands in time without reading it.
//!
//! # Why
//!
//! A version's effective time is its event time, which only its own tags or metadata hold.
//! The listing gives LastModified, and a version written late (a reconcile, `seed-all`, a
//! redriven batch, a queue that backed up) can have an event time long before it. So a restore
//! point in the past had to read every version written after it, one request each, in case
//! one of them was a late-recorded change from before. Our writer reads the key's current
//! version before every write anyway (a `HeadObject`, for duplicates), so each version we
//! write also records the place in time of the version it follows and of those that one
//! named: one `HeadObject` of the newest version then places most of the key's history.
//!
//! # What it says, and why it can be trusted
//!
//! Each entry is a fact about one version of the same key: its id, whether it is a tombstone,
//! its event (or delete) time and its SSM version. S3 versions never change, so the fact stays
//! true; and a version id belongs to one version of one key, so a copy of the bucket (new ids)
//! or an entry naming a version since expired simply matches nothing in the listing, and that
//! version is read as before. An index may leave versions out (two writers of one key at once,
//! a delete marker between two writes, the metadata limit): those are read as before too. The
//! `null` version id is never named, since a bucket with versioning suspended overwrites it.
//!
//! # Encoding
//!
//! `id,kind,time,ssm_version[,modified_ms]` per version, newest first, joined by `;`: `id`
//! percent-encoded, `kind` `v` (value) or `d` (tombstone), `ssm_version` empty when unknown,
//! `modified_ms` the value's SSM LastModifiedDate (epoch ms) when known. SSM numbers a
//! re-created parameter's versions from 1 again, so the version number alone does not tell the
//! writer whether a version is recorded (see [`crate::backup`]'s decisions); the date does.
//! Releases before it ignore lists with the fifth field, and read those versions instead. An
//! index entry may add a sixth, `t<hex>`, the digest of the version's recorded tags
//! (`tags_digest`); lists never carry it, and releases before it ignore such entries. As many entries as
//! fit in the metadata left after everything else ([`super::EncodedObject::name_earlier`]).
//! A reader that cannot parse every entry ignores the whole list, never a part of it.

use super::encode::{decode_component, encode_component};
use super::StoredFields;

/// Where one earlier version of the same key stands in time: what a reader would learn from
/// its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierVersion {
    pub version_id: String,
    /// A tombstone (`true`: `time` is the delete's) or a value version.
    pub deleted: bool,
    /// Epoch seconds.
    pub time: i64,
    /// The SSM version a value version holds.
    pub ssm_version: Option<i64>,
    /// That SSM version's LastModifiedDate, epoch ms, when recorded: with the version number,
    /// it names one version of one incarnation of the parameter.
    pub modified_ms: Option<i64>,
    /// The digest of the resource tags the version recorded ([`super::tags_digest`]), in
    /// index entries only (see [`crate::index`]): a reader whose SSM parameter is this very
    /// version and has tags of this digest knows the version without reading it. Never in an
    /// `ssmbak-earlier` list, which releases before it must keep reading.
    pub tags_digest: Option<String>,
}

/// The most entries a version names: the metadata limit stops it sooner (an entry takes about
/// 45 bytes).
pub const EARLIER_MAX: usize = 64;

impl EarlierVersion {
    /// The entry for version `version_id` with `fields`; `None` when its fields do not place it
    /// in time (not ours), or its id is not one to name.
    pub fn of(version_id: &str, fields: &StoredFields) -> Option<Self> {
        if version_id.is_empty() || version_id == "null" {
            return None;
        }
        let (deleted, time) = match (fields.deleted_at, fields.event_time) {
            (Some(t), _) => (true, t),
            (None, Some(t)) => (false, t),
            (None, None) => return None,
        };
        Some(EarlierVersion {
            version_id: version_id.to_owned(),
            deleted,
            time,
            ssm_version: fields.attributes.version.filter(|_| !deleted),
            modified_ms: fields.attributes.last_modified_ms.filter(|_| !deleted),
            tags_digest: None,
        })
    }

    /// What a reader knows of that version from this entry: its place in time only.
    pub fn fields(&self) -> StoredFields {
        let mut f = StoredFields::default();
        if self.deleted {
            f.deleted_at = Some(self.time);
        } else {
            f.event_time = Some(self.time);
            f.attributes.version = self.ssm_version;
            f.attributes.last_modified_ms = self.modified_ms;
        }
        f
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = format!(
            "{},{},{},{}",
            encode_component(&self.version_id),
            if self.deleted { "d" } else { "v" },
            self.time,
            self.ssm_version.map(|v| v.to_string()).unwrap_or_default()
        );
        if self.modified_ms.is_some() || self.tags_digest.is_some() {
            out += &format!(
                ",{}",
                self.modified_ms
                    .map(|ms| ms.to_string())
                    .unwrap_or_default()
            );
        }
        if let Some(digest) = &self.tags_digest {
            out += &format!(",{TAGS_DIGEST_MARK}{digest}");
        }
        out
    }

    pub(crate) fn decode(entry: &str) -> Option<Self> {
        let mut parts = entry.split(',');
        let (id, kind, time, version) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let modified_ms = match parts.next() {
            None | Some("") => None,
            Some(ms) => Some(ms.parse().ok()?),
        };
        let tags_digest = match parts.next() {
            None => None,
            Some(field) => Some(tags_digest_field(field)?),
        };
        if parts.next().is_some() {
            return None;
        }
        let version_id = decode_component(id);
        let deleted = match kind {
            "v" => false,
            "d" => true,
            _ => return None,
        };
        let ssm_version = match version {
            "" => None,
            v => Some(v.parse().ok()?),
        };
        let value_only = ssm_version.is_some() || modified_ms.is_some() || tags_digest.is_some();
        (!version_id.is_empty() && version_id != "null" && !(deleted && value_only))
            .then_some(())?;
        Some(EarlierVersion {
            version_id,
            deleted,
            time: time.parse().ok()?,
            ssm_version,
            modified_ms,
            tags_digest,
        })
    }
}

/// What starts the tags-digest field: `t` for the SHA-256 form of [`super::tags_digest`], so
/// that another form could follow without being mistaken for this one.
const TAGS_DIGEST_MARK: char = 't';

/// The digest a tags field names; `None` for a field in no form this release knows.
fn tags_digest_field(field: &str) -> Option<String> {
    let digest = field.strip_prefix(TAGS_DIGEST_MARK)?;
    (digest.len() == super::TAGS_DIGEST_HEX && digest.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| digest.to_owned())
}

/// The entries a version written after `latest` (the key's current version, id and fields)
/// names: `latest` itself, then those it named, newest first, each version once.
pub fn after(latest_id: &str, latest: &StoredFields) -> Vec<EarlierVersion> {
    let Some(first) = EarlierVersion::of(latest_id, latest) else {
        return Vec::new();
    };
    let mut out = vec![first];
    for e in &latest.earlier {
        if out.len() == EARLIER_MAX {
            break;
        }
        if !out.iter().any(|o| o.version_id == e.version_id) {
            out.push(e.clone());
        }
    }
    out
}

/// The metadata value naming the first entries of `earlier` that fit in `room` bytes; `None`
/// when not even one does.
pub(super) fn encode(earlier: &[EarlierVersion], room: usize) -> Option<String> {
    let mut out = String::new();
    for e in earlier.iter().take(EARLIER_MAX) {
        let entry = e.encode();
        let needed = entry.len() + usize::from(!out.is_empty());
        if out.len() + needed > room {
            break;
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(&entry);
    }
    (!out.is_empty()).then_some(out)
}

/// The entries a metadata value names; none unless every entry parses.
pub(super) fn decode(value: &str) -> Vec<EarlierVersion> {
    value
        .split(';')
        .map(EarlierVersion::decode)
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}
