//! The bucket-format contract: how one SSM change becomes one S3 object version, and how
//! what we add beside the original's layout is encoded. This module is the only place that
//! knows the layout: the Lambda, `seed-all` and the restore CLIs all go through it.
//!
//! The contract in prose, with a glossary of its terms: `docs/format.md`.

mod deleter_tags;
pub mod earlier;
mod encode;
mod extras;
mod stored;

/// The domain model, which the format encodes; its home is [`crate::parameter`].
pub use crate::parameter::{
    Attribute, Attributes, Extras, ParameterSnapshot, ParameterType, Tags, UnknownParameterType,
};
pub use deleter_tags::{deleted_by_tags, is_deleted_by_tag};
pub use earlier::EarlierVersion;
pub use encode::{
    decode_tagging, encode_tagging, object_key, plain_etag, sanitize_description, BackupRecord,
    EncodedObject,
};
pub use extras::{extras_key, tags_digest, Sidecar, TAGS_DIGEST_HEX};
pub use stored::{tagged_by_us, BadField, StoredFields};

/// Event time, integer epoch seconds (the original's format).
pub const TAG_TIME: &str = "ssmbakTime";
/// Parameter type.
pub const TAG_TYPE: &str = "ssmbakType";
/// Sanitised description, at most [`DESCRIPTION_TAG_MAX`] characters.
pub const TAG_DESCRIPTION: &str = "ssmbakDescription";
/// Ours: the SSM version number this object holds.
pub const TAG_VERSION: &str = "ssmbakVersion";
/// Ours, tombstones only: the delete's event time, integer epoch seconds.
pub const TAG_DELETED: &str = "ssmbakDeleted";
/// Ours, tombstones only: who deleted the parameter (an IAM ARN from CloudTrail), escaped and
/// split as the module documentation says; later parts are `ssmbakDeletedBy2`, `...3`.
pub const TAG_DELETED_BY: &str = "ssmbakDeletedBy";
/// At most this many `ssmbakDeletedBy` tags hold one ARN: 1,024 escaped characters, room for
/// the longest IAM user ARN (a 512-character path and a 64-character name) with a hundred
/// characters to escape.
pub const DELETED_BY_TAG_PARTS: usize = 4;
/// S3's limits on one object's tags (S3 User Guide, "Categorizing your storage using tags").
pub const TAG_VALUE_MAX: usize = 256;
pub const TAGS_PER_OBJECT_MAX: usize = 10;

/// Where the scheduled reconcile keeps the name of the last parameter it checked, so the next
/// run goes on from there. Outside the `/` namespace of parameter keys ([`object_key`]), so no
/// backup and no restore ever sees it.
pub const RECONCILE_CURSOR_KEY: &str = ".ssmbak/reconcile-cursor";

/// An empty object the reconcile writes to read the time by S3's clock (its LastModified):
/// the time it dates the deletes it finds by. Outside the `/` namespace like the cursor.
pub const CLOCK_PROBE_KEY: &str = ".ssmbak/clock-probe";

/// Where the writer flags a key whose newest entry is a delete marker while, by event time,
/// the parameter exists: an earlier delete processed after the re-creation that followed it.
/// `ListObjectsV2` lists only keys whose newest entry is not a marker, so without the flag the
/// reconcile would never look for a later delete of such a key whose event was lost. The flag
/// key is this, then the object key (which starts with `/`); an empty object.
pub const LIVE_BEHIND_MARKER_PREFIX: &str = ".ssmbak/live-behind-marker";

/// The longest description tag the original writes.
pub const DESCRIPTION_TAG_MAX: usize = 256;

/// Metadata key names, without the `x-amz-meta-` prefix S3 adds (S3 lowercases them). Only
/// this module knows them: the rest of the workspace speaks of [`Attribute`]s.
mod meta {
    pub(super) const FORMAT: &str = "ssmbak-format";
    pub(super) const TIME: &str = "ssmbak-time";
    pub(super) const TYPE: &str = "ssmbak-type";
    pub(super) const VERSION: &str = "ssmbak-version";
    pub(super) const MODIFIED_MS: &str = "ssmbak-modified-ms";
    pub(super) const DESCRIPTION: &str = "ssmbak-description";
    pub(super) const KEY_ID: &str = "ssmbak-key-id";
    pub(super) const TIER: &str = "ssmbak-tier";
    pub(super) const DATA_TYPE: &str = "ssmbak-data-type";
    pub(super) const ALLOWED_PATTERN: &str = "ssmbak-allowed-pattern";
    pub(super) const POLICIES: &str = "ssmbak-policies";
    pub(super) const MODIFIED_BY: &str = "ssmbak-modified-by";
    pub(super) const DELETED: &str = "ssmbak-deleted";
    pub(super) const DELETED_BY: &str = "ssmbak-deleted-by";
    pub(super) const OMITTED: &str = "ssmbak-omitted";
    pub(super) const TAGS: &str = "ssmbak-tags";
    pub(super) const LABELS: &str = "ssmbak-labels";
    pub(super) const EXTRAS: &str = "ssmbak-extras";
    pub(super) const EARLIER: &str = "ssmbak-earlier";
}

/// The version of the metadata layout above: 2 records tags and labels, 1 does not.
pub const FORMAT_VERSION: &str = "2";
/// Format 1: what a version that records no tags or labels says it is.
const FORMAT_WITHOUT_EXTRAS: &str = "1";

#[cfg(test)]
mod tests;
