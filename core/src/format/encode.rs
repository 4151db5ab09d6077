//! Encoding: one change as one object version (key, body, tags, metadata), and the object
//! key of a parameter name.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::deleter_tags::deleted_by_tags;
use super::earlier::{self, EarlierVersion};
use super::extras::{fit_metadata, metadata_size, put_extras, Sidecar, METADATA_LIMIT};
use super::meta;
use super::stored::StoredFields;
use super::{
    DESCRIPTION_TAG_MAX, FORMAT_VERSION, FORMAT_WITHOUT_EXTRAS, TAG_DELETED, TAG_DESCRIPTION,
    TAG_TIME, TAG_TYPE, TAG_VERSION,
};
use crate::parameter::{Attribute, ParameterSnapshot, ParameterType};

/// Everything but RFC 3986's unreserved characters is percent-encoded, so a space is `%20`
/// (never `+`), and the result is plain ASCII that is safe in a header.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What one backup write records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupRecord {
    /// A Create or Update: the parameter as it was at `event_time`.
    Value {
        event_time: i64,
        snapshot: ParameterSnapshot,
    },
    /// A Delete at `event_time` (epoch seconds).
    Tombstone {
        name: String,
        event_time: i64,
        param_type: Option<ParameterType>,
        /// Who deleted it (CloudTrail's `userIdentity.arn`), when known as it is written.
        deleted_by: Option<String>,
    },
}

/// An object version ready for `PutObject`.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedObject {
    pub key: String,
    pub body: Vec<u8>,
    /// The `x-amz-tagging` header: `k=v&k=v`, percent-encoded.
    pub tagging: String,
    pub metadata: BTreeMap<String, String>,
    /// The sidecar this version names, to be written before it (see "Tags and labels").
    pub sidecar: Option<Sidecar>,
}

impl EncodedObject {
    /// Names the key's earlier versions (newest first, see [`earlier`]): as many as fit in
    /// the metadata left, after everything else.
    pub fn name_earlier(&mut self, earlier: &[EarlierVersion]) {
        let taken = metadata_size(&self.metadata) + "x-amz-meta-".len() + meta::EARLIER.len();
        if let Some(value) = earlier::encode(earlier, METADATA_LIMIT.saturating_sub(taken)) {
            self.metadata.insert(meta::EARLIER.to_owned(), value);
        }
    }
}

impl fmt::Debug for EncodedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedObject")
            .field("key", &self.key)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("tagging", &self.tagging)
            .field("metadata", &self.metadata)
            .field("sidecar", &self.sidecar.as_ref().map(|s| &s.key))
            .finish()
    }
}

/// The object key of a parameter: its name with exactly one leading `/`.
///
/// SSM change events name root-level parameters without the slash (`testyssmbak` for
/// `/testyssmbak`); the original prepends it, and so do we.
pub fn object_key(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// The description as the original stores it in `ssmbakDescription`: characters outside
/// `[a-zA-Z0-9 +\-=._:/@]` removed, then cut to 256 characters.
pub fn sanitize_description(description: &str) -> String {
    description
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " +-=._:/@".contains(*c))
        .take(DESCRIPTION_TAG_MAX)
        .collect()
}

pub(super) fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

pub(super) fn decode_component(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Builds an `x-amz-tagging` header value.
pub fn encode_tagging<'a>(tags: impl IntoIterator<Item = (&'a str, String)>) -> String {
    tags.into_iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Splits an `x-amz-tagging` header back into decoded pairs (used by tests and fakes).
pub fn decode_tagging(header: &str) -> Vec<(String, String)> {
    header
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

impl BackupRecord {
    /// When the change it records happened (epoch seconds): a value's event time, a delete's.
    pub fn event_time(&self) -> i64 {
        match self {
            BackupRecord::Value { event_time, .. } | BackupRecord::Tombstone { event_time, .. } => {
                *event_time
            }
        }
    }

    /// Where the version this record is stored as, with id `version_id`, stands in time, and
    /// the digest of the tags it records (its index entry, see [`crate::index`]); `None` for
    /// an id not to name.
    pub fn place(&self, version_id: &str) -> Option<EarlierVersion> {
        let mut f = StoredFields::default();
        match self {
            BackupRecord::Value {
                event_time,
                snapshot,
            } => {
                f.event_time = Some(*event_time);
                f.attributes.version = snapshot.attributes.version;
                f.attributes.last_modified_ms = snapshot.attributes.last_modified_ms;
            }
            BackupRecord::Tombstone { event_time, .. } => f.deleted_at = Some(*event_time),
        }
        let tags = match self {
            BackupRecord::Value { snapshot, .. } => snapshot.attributes.tags.as_ref(),
            BackupRecord::Tombstone { .. } => None,
        };
        EarlierVersion::of(version_id, &f).map(|entry| EarlierVersion {
            tags_digest: tags.map(super::tags_digest),
            ..entry
        })
    }

    pub fn key(&self) -> String {
        match self {
            BackupRecord::Value { snapshot, .. } => object_key(&snapshot.name),
            BackupRecord::Tombstone { name, .. } => object_key(name),
        }
    }

    /// The object version this record is stored as.
    pub fn encode(&self) -> EncodedObject {
        match self {
            BackupRecord::Value {
                event_time,
                snapshot,
            } => encode_value(*event_time, snapshot),
            BackupRecord::Tombstone {
                name,
                event_time,
                param_type,
                deleted_by,
            } => {
                let mut metadata = BTreeMap::new();
                metadata.insert(meta::FORMAT.to_owned(), FORMAT_VERSION.to_owned());
                metadata.insert(meta::DELETED.to_owned(), event_time.to_string());
                if let Some(t) = param_type {
                    metadata.insert(meta::TYPE.to_owned(), t.as_str().to_owned());
                }
                let mut tags = vec![(TAG_DELETED.to_owned(), event_time.to_string())];
                if let Some(arn) = deleted_by {
                    // An ARN is at most 2,048 bytes; encoded it may be three times that, more
                    // than the metadata limit allows: then only the tags (if it fits them) say.
                    let encoded = encode_component(arn);
                    if metadata_size(&metadata) + meta::DELETED_BY.len() + encoded.len() + 11
                        <= METADATA_LIMIT
                    {
                        metadata.insert(meta::DELETED_BY.to_owned(), encoded);
                    }
                    tags.extend(deleted_by_tags(arn, tags.len()).unwrap_or_default());
                }
                EncodedObject {
                    key: object_key(name),
                    body: Vec::new(),
                    tagging: encode_tagging(tags.iter().map(|(k, v)| (k.as_str(), v.clone()))),
                    metadata,
                    sidecar: None,
                }
            }
        }
    }
}

fn encode_value(event_time: i64, s: &ParameterSnapshot) -> EncodedObject {
    let a = &s.attributes;
    let mut tags = vec![
        (TAG_TIME, event_time.to_string()),
        (TAG_TYPE, s.param_type.as_str().to_owned()),
    ];
    if let Some(d) = &a.description {
        tags.push((TAG_DESCRIPTION, sanitize_description(d)));
    }
    if let Some(v) = a.version {
        tags.push((TAG_VERSION, v.to_string()));
    }

    let mut metadata = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        metadata.insert(k.to_owned(), v);
    };
    let extras = a.extras();
    let format = match extras {
        Some(_) => FORMAT_VERSION,
        None => FORMAT_WITHOUT_EXTRAS,
    };
    put(meta::FORMAT, format.to_owned());
    put(meta::TIME, event_time.to_string());
    put(meta::TYPE, s.param_type.as_str().to_owned());
    if let Some(v) = a.version {
        put(meta::VERSION, v.to_string());
    }
    if let Some(ms) = a.last_modified_ms {
        put(meta::MODIFIED_MS, ms.to_string());
    }
    // Optional free-text fields, in the order they are given up if the metadata limit is hit:
    // who made the version first (a restore does not need it).
    let optional = [
        Attribute::ModifiedBy,
        Attribute::Policies,
        Attribute::AllowedPattern,
        Attribute::Description,
        Attribute::KeyId,
        Attribute::Tier,
        Attribute::DataType,
    ]
    .map(Attribute::meta_key);
    for attribute in Attribute::ALL {
        if let Some(v) = a.text(attribute) {
            put(attribute.meta_key(), encode_component(v));
        }
    }
    let sidecar = extras.and_then(|e| put_extras(&mut metadata, &e));
    let omitted = fit_metadata(&mut metadata, &optional);
    if !omitted.is_empty() {
        metadata.insert(meta::OMITTED.to_owned(), omitted.join(","));
    }

    EncodedObject {
        key: object_key(&s.name),
        body: s.value.as_bytes().to_vec(),
        tagging: encode_tagging(tags),
        metadata,
        sidecar,
    }
}

/// The ETag S3 gives `body` stored in one part, unencrypted or under SSE-S3: its MD5 in hex,
/// quoted. A listed version with this ETag holds exactly `body`, so a reader that already has
/// the value (from SSM) need not download it. (SSE-KMS and multipart ETags are not MD5s: they
/// never match, and the body is read as usual.)
pub fn plain_etag(body: &[u8]) -> String {
    use md5::Digest;
    let digest = md5::Md5::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
