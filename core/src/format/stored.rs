//! Reading a stored version back: the fields its tags and metadata record, in either format.

use std::collections::BTreeMap;

use super::deleter_tags::{deleted_by_from_parts, deleted_by_part};
use super::earlier::{self, EarlierVersion};
use super::encode::{decode_component, decode_tagging};
use super::meta;
use super::{TAG_DELETED, TAG_DESCRIPTION, TAG_TIME, TAG_TYPE, TAG_VERSION};
use crate::parameter::{Attribute, Attributes, ParameterSnapshot, ParameterType};

/// What one stored object version says, read back from its tags and/or metadata.
///
/// Both sources are accepted: versions written by the original carry only the three tags,
/// ours carry tags and metadata. Metadata wins where both are present (it is not sanitised).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFields {
    /// `ssmbakTime`: the event time of a value version.
    pub event_time: Option<i64>,
    /// A tombstone's delete event time.
    pub deleted_at: Option<i64>,
    /// Who deleted the parameter, on a tombstone that records it (`ssmbak-deleted-by`, else
    /// the `ssmbakDeletedBy` tags). `None`: unknown.
    pub deleted_by: Option<String>,
    pub param_type: Option<ParameterType>,
    pub attributes: Attributes,
    /// The digest of the sidecar holding this version's tags and labels, when they are there
    /// rather than in its metadata: a reader fetches [`super::extras_key`] and
    /// [`Attributes::set_extras`].
    pub extras: Option<String>,
    /// Where the key's earlier versions stand in time, as this version's writer knew them
    /// (see [`earlier`]); empty when it names none.
    pub earlier: Vec<EarlierVersion>,
}

/// A stored tag or metadata value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("object field {field} has an unreadable value {value:?}")]
pub struct BadField {
    pub field: &'static str,
    pub value: String,
}

fn parse_int(field: &'static str, value: &str) -> Result<i64, BadField> {
    value.trim().parse().map_err(|_| BadField {
        field,
        value: value.to_owned(),
    })
}

impl StoredFields {
    /// Reads the fields of a version from its tag set (as `GetObjectTagging` returns it,
    /// already decoded) and its user metadata (as `HeadObject`/`GetObject` return it).
    /// Either may be empty.
    pub fn read<'a>(
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
        metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, BadField> {
        let mut f = StoredFields::default();
        let mut deleted_by_parts = BTreeMap::new();
        for (k, v) in tags {
            if let Some(n) = deleted_by_part(k) {
                deleted_by_parts.insert(n, v);
                continue;
            }
            match k {
                TAG_TIME => f.event_time = Some(parse_int(TAG_TIME, v)?),
                TAG_DELETED => f.deleted_at = Some(parse_int(TAG_DELETED, v)?),
                TAG_TYPE => f.param_type = Some(parse_type(TAG_TYPE, v)?),
                TAG_DESCRIPTION => f.attributes.description = Some(v.to_owned()),
                TAG_VERSION => f.attributes.version = Some(parse_int(TAG_VERSION, v)?),
                _ => {}
            }
        }
        let mut metadata_seen = false;
        let mut records_extras = false;
        for (k, v) in metadata {
            let k = k.to_ascii_lowercase();
            if let Some(attribute) = Attribute::from_meta_key(&k) {
                *f.attributes.text_mut(attribute) = Some(decode_component(v));
                continue;
            }
            match k.as_str() {
                meta::FORMAT => {
                    metadata_seen = true;
                    records_extras = v.trim().parse::<u32>().is_ok_and(|f| f >= 2);
                }
                meta::TAGS => {
                    f.attributes.tags = Some(decode_tagging(v).into_iter().collect());
                }
                meta::LABELS => {
                    f.attributes.labels = Some(
                        v.split(',')
                            .filter(|l| !l.is_empty())
                            .map(decode_component)
                            .collect(),
                    );
                }
                meta::EXTRAS => f.extras = Some(v.trim().to_owned()),
                meta::EARLIER => f.earlier = earlier::decode(v.trim()),
                meta::TIME => f.event_time = Some(parse_int(meta::TIME, v)?),
                meta::DELETED => f.deleted_at = Some(parse_int(meta::DELETED, v)?),
                // Written in full when it fits, so it wins over the tags.
                meta::DELETED_BY => {
                    f.deleted_by = Some(decode_component(v)).filter(|a| !a.is_empty())
                }
                meta::TYPE => f.param_type = Some(parse_type(meta::TYPE, v)?),
                meta::VERSION => f.attributes.version = Some(parse_int(meta::VERSION, v)?),
                meta::MODIFIED_MS => {
                    f.attributes.last_modified_ms = Some(parse_int(meta::MODIFIED_MS, v)?)
                }
                // A name this version of the format does not know is left out of the list.
                meta::OMITTED => {
                    f.attributes.unknown =
                        v.split(',').filter_map(Attribute::from_meta_key).collect()
                }
                _ => {}
            }
        }
        if records_extras && f.extras.is_none() {
            // Format 2 leaves out an empty tag set or label list.
            f.attributes.tags.get_or_insert_default();
            f.attributes.labels.get_or_insert_default();
        } else if !records_extras {
            // Recorded only by format 2: anything else is unknown.
            f.attributes.tags = None;
            f.attributes.labels = None;
        }
        if f.deleted_by.is_none() {
            // A display-only field: parts that do not make a whole ARN leave it unknown.
            f.deleted_by = deleted_by_from_parts(&deleted_by_parts);
        }
        if f.attributes.unknown.is_empty() && !metadata_seen {
            // The original's objects (or metadata not fetched): only the tags are known, and
            // the description only in sanitised form.
            f.attributes.unknown = Attribute::ALL.to_vec();
        }
        Ok(f)
    }

    /// True for our tombstone versions.
    pub fn is_tombstone(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The parameter this value version holds, given its name and body.
    ///
    /// `None` for a tombstone, or for a version that lacks a type (not written by ssmbak).
    pub fn snapshot(&self, name: &str, body: Vec<u8>) -> Option<ParameterSnapshot> {
        if self.is_tombstone() {
            return None;
        }
        Some(ParameterSnapshot {
            name: name.to_owned(),
            value: String::from_utf8_lossy(&body).into_owned(),
            param_type: self.param_type?,
            attributes: self.attributes.clone(),
        })
    }

    /// Whether this version was written by this tool, so its metadata holds more than the tags.
    pub fn is_ours(metadata: &std::collections::HashMap<String, String>) -> bool {
        metadata.contains_key(meta::FORMAT)
    }
}

fn parse_type(field: &'static str, v: &str) -> Result<ParameterType, BadField> {
    v.parse().map_err(|_| BadField {
        field,
        value: v.to_owned(),
    })
}

/// True when a version's tags show that this tool wrote it, so that its metadata (`ssmbak-*`)
/// holds more than the tags: our value versions always tag `ssmbakVersion` (every backup comes
/// from the parameter's history, which numbers it) and our tombstones `ssmbakDeleted`. The
/// original tags neither. Lets a reader that fetched the tags skip a `HeadObject` for the
/// original's objects.
pub fn tagged_by_us<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    tags.into_iter()
        .any(|(k, _)| k == TAG_VERSION || k == TAG_DELETED)
}

impl Attribute {
    /// Its metadata key (also its name in `ssmbak-omitted`).
    pub(super) fn meta_key(self) -> &'static str {
        match self {
            Attribute::Description => meta::DESCRIPTION,
            Attribute::KeyId => meta::KEY_ID,
            Attribute::Tier => meta::TIER,
            Attribute::DataType => meta::DATA_TYPE,
            Attribute::AllowedPattern => meta::ALLOWED_PATTERN,
            Attribute::Policies => meta::POLICIES,
            Attribute::ModifiedBy => meta::MODIFIED_BY,
        }
    }

    pub(super) fn from_meta_key(key: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.meta_key() == key)
    }
}
