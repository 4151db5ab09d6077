//! The bucket-format contract: how one SSM change becomes one S3 object version, and how
//! what we add beside the original's layout is encoded. This module is the only place that
//! knows the layout: the Lambda, `seed-all` and the restore CLIs all go through it.
//!
//! The contract in prose, with a glossary of its terms: `docs/format.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

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

pub mod earlier;
pub use earlier::EarlierVersion;

/// The version of the metadata layout above: 2 records tags and labels, 1 does not.
pub const FORMAT_VERSION: &str = "2";
/// Format 1: what a version that records no tags or labels says it is.
const FORMAT_WITHOUT_EXTRAS: &str = "1";

/// A parameter's resource tags, by key.
pub type Tags = BTreeMap<String, String>;

/// The tags and labels of one version, as a sidecar object holds them (see "Tags and labels"
/// above).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extras {
    pub tags: Tags,
    pub labels: Vec<String>,
}

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

/// The object key of the sidecar named `digest` (outside the `/` namespace of parameters).
pub fn extras_key(digest: &str) -> String {
    format!(".ssmbak/extras/{digest}")
}

/// S3's limit on user metadata: the UTF-8 bytes of every key and value together.
const METADATA_LIMIT: usize = 2048;

/// Everything but RFC 3986's unreserved characters is percent-encoded, so a space is `%20`
/// (never `+`), and the result is plain ASCII that is safe in a header.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The three SSM parameter types (serialised by SSM's names).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::SecureString => "SecureString",
        }
    }
}

impl fmt::Display for ParameterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type name that is none of SSM's three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown parameter type {0:?}")]
pub struct UnknownParameterType(pub String);

impl FromStr for ParameterType {
    type Err = UnknownParameterType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "String" => Ok(ParameterType::String),
            "StringList" => Ok(ParameterType::StringList),
            "SecureString" => Ok(ParameterType::SecureString),
            other => Err(UnknownParameterType(other.to_owned())),
        }
    }
}

/// An attribute of a parameter that a stored version may not record: the original's format
/// keeps none of them (and the description only sanitised), and our writer leaves the largest
/// out when S3's metadata limit is hit. Not recorded means unknown, never absent.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    Description,
    KeyId,
    Tier,
    DataType,
    AllowedPattern,
    Policies,
    /// Who made the version: SSM's `LastModifiedUser`.
    ModifiedBy,
}

impl Attribute {
    pub const ALL: [Attribute; 7] = [
        Attribute::Description,
        Attribute::KeyId,
        Attribute::Tier,
        Attribute::DataType,
        Attribute::AllowedPattern,
        Attribute::Policies,
        Attribute::ModifiedBy,
    ];

    /// Its metadata key (also its name in `ssmbak-omitted`).
    fn meta_key(self) -> &'static str {
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

    fn from_meta_key(key: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.meta_key() == key)
    }
}

/// Everything SSM holds for a parameter at one version besides its name, value and type: what
/// `PutParameter` sets, and how SSM numbered and dated the version. The same whether it comes
/// from SSM now ([`crate::current`]), from a stored version ([`StoredFields`]) or goes into a
/// restore ([`crate::plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub version: Option<i64>,
    pub last_modified_ms: Option<i64>,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub tier: Option<String>,
    pub data_type: Option<String>,
    pub allowed_pattern: Option<String>,
    /// The parameter's policies as the JSON array `PutParameter` takes.
    pub policies: Option<String>,
    /// Who made this version: SSM's `LastModifiedUser` (an IAM ARN). Not something a restore
    /// writes: PutParameter records the restorer.
    pub last_modified_user: Option<String>,
    /// The parameter's resource tags when this version was backed up; `None`: not recorded
    /// (unknown, not "no tags").
    pub tags: Option<Tags>,
    /// The labels on this SSM version; `None`: not recorded.
    pub labels: Option<Vec<String>>,
    /// Attributes the stored version does not record: unknown, not absent.
    pub unknown: Vec<Attribute>,
}

impl Attributes {
    /// The tags and labels, when both are recorded.
    pub fn extras(&self) -> Option<Extras> {
        Some(Extras {
            tags: self.tags.clone()?,
            labels: self.labels.clone()?,
        })
    }

    /// Records `extras` as this version's tags and labels.
    pub fn set_extras(&mut self, extras: Extras) {
        self.tags = Some(extras.tags);
        self.labels = Some(extras.labels);
    }

    /// Whether `attribute` is known (recorded, possibly as absent).
    pub fn knows(&self, attribute: Attribute) -> bool {
        !self.unknown.contains(&attribute)
    }

    /// The recorded value of a free-text attribute.
    fn text(&self, attribute: Attribute) -> &Option<String> {
        match attribute {
            Attribute::Description => &self.description,
            Attribute::KeyId => &self.key_id,
            Attribute::Tier => &self.tier,
            Attribute::DataType => &self.data_type,
            Attribute::AllowedPattern => &self.allowed_pattern,
            Attribute::Policies => &self.policies,
            Attribute::ModifiedBy => &self.last_modified_user,
        }
    }

    fn text_mut(&mut self, attribute: Attribute) -> &mut Option<String> {
        match attribute {
            Attribute::Description => &mut self.description,
            Attribute::KeyId => &mut self.key_id,
            Attribute::Tier => &mut self.tier,
            Attribute::DataType => &mut self.data_type,
            Attribute::AllowedPattern => &mut self.allowed_pattern,
            Attribute::Policies => &mut self.policies,
            Attribute::ModifiedBy => &mut self.last_modified_user,
        }
    }
}

/// A parameter at one version: its name, value, type and [`Attributes`]. What SSM holds now,
/// what a backup recorded and what a restore writes are all this one type.
#[derive(Clone, PartialEq, Eq)]
pub struct ParameterSnapshot {
    pub name: String,
    pub value: String,
    pub param_type: ParameterType,
    pub attributes: Attributes,
}

impl ParameterSnapshot {
    /// A parameter with only a name, a value and a type known; every attribute unset.
    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
        param_type: ParameterType,
    ) -> Self {
        ParameterSnapshot {
            name: name.into(),
            value: value.into(),
            param_type,
            attributes: Attributes::default(),
        }
    }

    /// The same parameter with `edit` applied to its attributes, to build one in an expression.
    pub fn with_attributes(mut self, edit: impl FnOnce(&mut Attributes)) -> Self {
        edit(&mut self.attributes);
        self
    }
}

/// Never prints the value: a SecureString must not reach a log by accident.
impl fmt::Debug for ParameterSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParameterSnapshot")
            .field("name", &self.name)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("param_type", &self.param_type)
            .field("attributes", &self.attributes)
            .finish()
    }
}

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

/// A sidecar object: tags and labels too large for a version's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    pub key: String,
    pub body: Vec<u8>,
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

fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

fn decode_component(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Builds an `x-amz-tagging` header value.
pub fn encode_tagging<'a>(tags: impl IntoIterator<Item = (&'a str, String)>) -> String {
    tags.into_iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(&v)))
        .collect::<Vec<_>>()
        .join("&")
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

    /// Where the version this record is stored as, with id `version_id`, stands in time (its
    /// index entry, see [`crate::index`]); `None` for an id not to name.
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
        EarlierVersion::of(version_id, &f)
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

/// The tag name of part `n` (from 1) of a deleter ARN.
fn deleted_by_tag(n: usize) -> String {
    if n == 1 {
        TAG_DELETED_BY.to_owned()
    } else {
        format!("{TAG_DELETED_BY}{n}")
    }
}

/// Whether a byte stands for itself in an escaped tag value: the tag characters S3 allows,
/// ASCII only (a non-ASCII letter is allowed too, but escaping it keeps the rule simple).
fn tag_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" _.:/+@-".contains(&b)
}

/// `s` with every byte outside the tag-safe set written `=XX`: S3 accepts the result as a tag
/// value, and [`unescape_tag`] gives `s` back.
fn escape_tag(s: &str) -> String {
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
fn unescape_tag(s: &str) -> Option<String> {
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
fn deleted_by_part(key: &str) -> Option<usize> {
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
fn deleted_by_from_parts(parts: &BTreeMap<usize, &str>) -> Option<String> {
    if parts.is_empty() || parts.keys().copied().ne(1..=parts.len()) {
        return None;
    }
    unescape_tag(&parts.values().copied().collect::<String>()).filter(|a| !a.is_empty())
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

/// Puts `extras` in `metadata`, or, when they would not fit beside the rest, in a sidecar
/// that `metadata` names (returned, to be written).
fn put_extras(metadata: &mut BTreeMap<String, String>, extras: &Extras) -> Option<Sidecar> {
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

fn metadata_size(metadata: &BTreeMap<String, String>) -> usize {
    // Counted with the `x-amz-meta-` prefix, to stay on the safe side of S3's own count.
    metadata
        .iter()
        .map(|(k, v)| "x-amz-meta-".len() + k.len() + v.len())
        .sum()
}

/// Drops optional fields, in `drop_order`, until the metadata fits; returns what was dropped.
fn fit_metadata(metadata: &mut BTreeMap<String, String>, drop_order: &[&str]) -> Vec<String> {
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
    /// rather than in its metadata: a reader fetches [`extras_key`] and
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

#[cfg(test)]
mod tests;
