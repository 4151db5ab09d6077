//! The domain model: a parameter at one version, its type and its attributes, the same whether
//! it comes from SSM, from a backup or goes into a restore.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A parameter's resource tags, by key.
pub type Tags = BTreeMap<String, String>;

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
}

/// Everything SSM holds for a parameter at one version besides its name, value and type: what
/// `PutParameter` sets, and how SSM numbered and dated the version. The same whether it comes
/// from SSM now ([`crate::current`]), from a stored version ([`crate::format::StoredFields`]) or goes into a
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

    /// Whether `self` and `other` name the same SSM version of the same parameter: both record
    /// the version number and its LastModifiedDate, and both are equal. SSM numbers a deleted
    /// and re-created parameter's versions from 1 again, so the number alone is not enough;
    /// with the date, to the millisecond, it is one version of one incarnation.
    pub fn same_version_as(&self, other: &Attributes) -> bool {
        self.version.is_some()
            && self.version == other.version
            && self.last_modified_ms.is_some()
            && self.last_modified_ms == other.last_modified_ms
    }

    /// Whether `attribute` is known (recorded, possibly as absent).
    pub fn knows(&self, attribute: Attribute) -> bool {
        !self.unknown.contains(&attribute)
    }

    /// The recorded value of a free-text attribute.
    pub(crate) fn text(&self, attribute: Attribute) -> &Option<String> {
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

    pub(crate) fn text_mut(&mut self, attribute: Attribute) -> &mut Option<String> {
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

/// The tags and labels of one version, as a sidecar object holds them (see "Tags and labels" in
/// docs/format.md; encoded by [`crate::format`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extras {
    pub tags: Tags,
    pub labels: Vec<String>,
}
