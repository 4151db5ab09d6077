//! Restore planning: what must change in SSM to bring parameters back to their backed-up state.
//!
//! The original's rules (its §3.6), with its bugs fixed:
//!
//! | backup at T | SSM now | action |
//! |---|---|---|
//! | a value | absent | create |
//! | a value | differs (value, type, description, and KeyId, tier, data type, allowed pattern, policies where recorded) | update |
//! | a value | its data type is or was `aws:ec2:image`/`aws:ssm:integration` and differs | replace (delete, then create) |
//! | a value | the same | nothing |
//! | deleted | present | delete |
//! | deleted | absent | nothing |
//! | tracked, no version at T yet | present | delete |
//! | never backed up (untracked) | present | left alone |
//!
//! Versions written by the original carry only a sanitised description: it is compared in
//! sanitised form, so a description with characters the tag cannot hold is not a false change.
//!
//! Where the backup recorded tags (format 2), they are restored too: missing tags added, extra
//! ones removed ([`TagEdit`]); tags differing alone make an update that writes no new version.
//! AWS's own tags (`aws:` prefix) are never touched. A version written again carries the labels
//! its backup recorded.

use std::collections::BTreeMap;

use crate::format::{sanitize_description, Attribute, ParameterSnapshot, ParameterType, Tags};
use crate::reader::BackupState;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    #[default]
    Create,
    Update,
    Delete,
    /// Delete, then create: a change SSM does not make in place.
    Replace,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
        }
    }
}

/// One change the restore would make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedChange {
    pub name: String,
    pub action: Action,
    /// The backed-up state to write (create and update), as SSM will take it (see
    /// [`fit_to_ssm`]).
    pub target: Option<ParameterSnapshot>,
    /// The effective time of the backup state (epoch seconds), if there is one.
    pub backup_time: Option<i64>,
    /// The fields that differ, for an update.
    pub differs: Vec<&'static str>,
    /// Where the write differs from the backup because SSM allows no other.
    pub notes: Vec<&'static str>,
    /// Why SSM would refuse this write: it is reported, never sent.
    pub refused: Option<&'static str>,
    /// Who made the version SSM holds now (its `LastModifiedUser`), when it holds one.
    pub current_modified_by: Option<String>,
    /// The tags to add and remove (nothing when the backup recorded none).
    pub tags: TagEdit,
}

/// What `differs` says for tags and for labels: restored without writing a new version.
pub const DIFFERS_TAGS: &str = "tags";
pub const DIFFERS_LABELS: &str = "labels";

impl PlannedChange {
    /// Whether the change writes the parameter (a new SSM version), not only its tags.
    pub fn writes_value(&self) -> bool {
        self.target.is_some()
            && (self.action != Action::Update
                || self
                    .differs
                    .iter()
                    .any(|d| *d != DIFFERS_TAGS && *d != DIFFERS_LABELS))
    }
}

/// Whether users may set or remove a tag: "The aws: prefix is reserved for AWS use" (AWS
/// General Reference, "Tagging AWS resources"); CloudFormation's `aws:cloudformation:*` tags
/// on a stack's parameters are such.
pub fn user_tag(key: &str) -> bool {
    !key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// The tag changes that make a parameter's tags what a backup recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagEdit {
    /// Tags to set (missing, or with another value).
    pub add: Tags,
    /// Tag keys to remove.
    pub remove: Vec<String>,
}

impl TagEdit {
    /// From the tags SSM holds `now` to `wanted`, users' tags only.
    pub fn between(wanted: &Tags, now: &Tags) -> Self {
        TagEdit {
            add: wanted
                .iter()
                .filter(|(k, v)| user_tag(k) && now.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            remove: now
                .keys()
                .filter(|k| user_tag(k) && !wanted.contains_key(*k))
                .cloned()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

impl std::fmt::Display for TagEdit {
    /// `+key=value, -key`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let added = self.add.iter().map(|(k, v)| format!("+{k}={v}"));
        let removed = self.remove.iter().map(|k| format!("-{k}"));
        f.write_str(&added.chain(removed).collect::<Vec<_>>().join(", "))
    }
}

/// The most a Standard-tier value holds; Advanced holds [`ADVANCED_VALUE_MAX`] (PutParameter,
/// "Value": "Standard parameters have a value limit of 4 KB. Advanced parameters have a value
/// limit of 8 KB.").
pub const STANDARD_VALUE_MAX: usize = 4096;
pub const ADVANCED_VALUE_MAX: usize = 8192;

pub const NOTE_STAYS_ADVANCED: &str =
    "stays Advanced: SSM cannot move a parameter back to Standard";
pub const NOTE_LARGE_VALUE: &str = "Advanced: the value is over Standard's 4 KB";
pub const NOTE_POLICIES: &str = "Advanced: parameter policies need the Advanced tier";
pub const NOTE_KEY_ID: &str = "no KMS key: only a SecureString takes one";
pub const REFUSED_TOO_LARGE: &str = "the value is over SSM's 8 KB limit";
pub const NOTE_REPLACED: &str =
    "deleted, then created: SSM cannot change a parameter to or from data type aws:ec2:image or aws:ssm:integration";

/// Data types a parameter cannot be changed to or from ("You can't change a parameter to or
/// from either of these data types", SSM User Guide, "Parameter data types in Parameter
/// Store").
const FIXED_DATA_TYPES: [&str; 2] = ["aws:ec2:image", "aws:ssm:integration"];

/// Whether writing `target` over `current` changes a data type SSM will not change in place.
/// A backup that recorded no data type says nothing about it.
pub fn needs_replacement(target: &ParameterSnapshot, current: &ParameterSnapshot) -> bool {
    let Some(wanted) = target
        .attributes
        .data_type
        .as_deref()
        .filter(|_| target.attributes.knows(Attribute::DataType))
    else {
        return false;
    };
    let now = current.attributes.data_type.as_deref().unwrap_or("text");
    wanted != now && (FIXED_DATA_TYPES.contains(&wanted) || FIXED_DATA_TYPES.contains(&now))
}

/// Makes `target` a write PutParameter accepts over `current` (what SSM holds now, if
/// anything), from SSM's documented rules; returns the notes on what changed and, for a write
/// SSM cannot take at all, why.
///
/// * A parameter cannot go from Advanced back to Standard ("Changing a standard parameter to
///   an advanced parameter", SSM User Guide: "you can't revert an advanced parameter to a
///   standard parameter"): it stays Advanced.
/// * Parameter policies and values over 4 KB need the Advanced tier.
/// * A KMS key id goes with a SecureString only.
/// * No tier holds a value over 8 KB.
pub fn fit_to_ssm(
    target: &mut ParameterSnapshot,
    current: Option<&ParameterSnapshot>,
) -> (Vec<&'static str>, Option<&'static str>) {
    let mut notes = Vec::new();
    let wanted = &mut target.attributes;
    if wanted.key_id.is_some() && target.param_type != ParameterType::SecureString {
        wanted.key_id = None;
        notes.push(NOTE_KEY_ID);
    }
    let advanced = |tier: Option<&str>| tier == Some("Advanced");
    if !advanced(wanted.tier.as_deref()) {
        let has_policies = wanted.policies.as_deref().is_some_and(|p| {
            serde_json::from_str::<Vec<serde_json::Value>>(p).is_ok_and(|v| !v.is_empty())
        });
        let reason = if current.is_some_and(|c| advanced(c.attributes.tier.as_deref())) {
            Some(NOTE_STAYS_ADVANCED)
        } else if target.value.len() > STANDARD_VALUE_MAX {
            Some(NOTE_LARGE_VALUE)
        } else if has_policies {
            Some(NOTE_POLICIES)
        } else {
            None
        };
        if let Some(reason) = reason {
            // A backup that recorded no tier says nothing to keep: only a recorded Standard
            // is worth a note.
            if wanted.tier.is_some() || reason != NOTE_STAYS_ADVANCED {
                notes.push(reason);
            }
            wanted.tier = Some("Advanced".to_owned());
        }
    }
    let refused = (target.value.len() > ADVANCED_VALUE_MAX).then_some(REFUSED_TOO_LARGE);
    (notes, refused)
}

/// The plan for one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by name.
    pub changes: Vec<PlannedChange>,
    /// Tracked parameters already as they were.
    pub unchanged: usize,
}

impl Plan {
    /// Adds the plan of keys after this one's (a restore plans in parts, see
    /// `ssmbak restore`): the changes stay sorted by name.
    pub fn extend(&mut self, part: Plan) {
        self.changes.extend(part.changes);
        self.unchanged += part.unchanged;
    }
}

/// The fields in which `current` differs from `backup`.
pub fn differences(backup: &ParameterSnapshot, current: &ParameterSnapshot) -> Vec<&'static str> {
    let mut out = Vec::new();
    if backup.value != current.value {
        out.push("value");
    }
    if backup.param_type != current.param_type {
        out.push("type");
    }
    let (b, c) = (&backup.attributes, &current.attributes);
    let current_description = c.description.clone().unwrap_or_default();
    let backup_description = b.description.clone().unwrap_or_default();
    let description_differs = if b.knows(Attribute::Description) {
        backup_description != current_description
    } else {
        backup_description != sanitize_description(&current_description)
    };
    if description_differs {
        out.push("description");
    }
    let optional = [
        ("key id", Attribute::KeyId, &b.key_id, &c.key_id),
        ("tier", Attribute::Tier, &b.tier, &c.tier),
        ("data type", Attribute::DataType, &b.data_type, &c.data_type),
        (
            "allowed pattern",
            Attribute::AllowedPattern,
            &b.allowed_pattern,
            &c.allowed_pattern,
        ),
        ("policies", Attribute::Policies, &b.policies, &c.policies),
    ];
    for (label, attribute, wanted, now) in optional {
        // Compared only where the backup recorded the field: an original-format version, or
        // a field left out for size, says nothing about it.
        if b.knows(attribute) && wanted.is_some() && wanted != now {
            out.push(label);
        }
    }
    // Labels are compared only where both sides recorded them (SSM's current labels are not
    // read: a written version gets the backup's labels anyway).
    if let (Some(wanted), Some(now)) = (&b.labels, &c.labels) {
        if wanted != now {
            out.push(DIFFERS_LABELS);
        }
    }
    out
}

/// The tag edit a write of `target` needs over `now` (what SSM holds; `None` when creating).
fn tag_edit(
    target: &ParameterSnapshot,
    now: Option<&ParameterSnapshot>,
    action: Action,
) -> TagEdit {
    let Some(wanted) = &target.attributes.tags else {
        return TagEdit::default();
    };
    let none = Tags::new();
    let now_tags = match (action, now) {
        // A replacement deletes the parameter, and its tags with it.
        (Action::Replace, _) | (_, None) => Some(&none),
        (_, Some(c)) => c.attributes.tags.as_ref(),
    };
    now_tags.map_or_else(TagEdit::default, |n| TagEdit::between(wanted, n))
}

/// Whether SSM's parameter `now` (as `GetParametersByPath` gives it: value, type, version,
/// data type, modification time) is, in every field `PutParameter` sets, the version `state`
/// holds, so that reading its other metadata (`DescribeParameters`) could show no difference.
///
/// Every `PutParameter` makes a new version ("Each time you edit the value of a parameter,
/// Parameter Store creates a new version", SSM User Guide, "Working with parameter versions"),
/// so the same version number is the same value, description, KeyId, tier, data type, allowed
/// pattern and policies, provided it is the same parameter: a deleted and re-created one counts
/// from 1 again, so the version's LastModifiedDate (to the millisecond) must match too. The
/// original's versions record no number: a parameter last modified
/// in a second before the backup's event time was backed up as it is (whatever it read then,
/// nothing had changed since). Only for the very parameter that was backed up: the caller
/// says `same_parameters` false for `--to`, `--key-id`, another region or account.
pub fn unchanged_since(
    state: &BackupState,
    now: &ParameterSnapshot,
    same_parameters: bool,
) -> bool {
    let BackupState::Present { at, snapshot } = state else {
        return false;
    };
    if !same_parameters {
        return false;
    }
    let (b, n) = (&snapshot.attributes, &now.attributes);
    match (b.version, n.version) {
        (Some(_), Some(_)) => b.same_version_as(n),
        (None, _) => now
            .attributes
            .last_modified_ms
            .is_some_and(|ms| ms.div_euclid(1000) < *at),
        (Some(_), None) => false,
    }
}

/// Gives `now`, proven [`unchanged_since`] the backup, the attributes the backup recorded for
/// the fields `DescribeParameters` would have told (the same, by that proof).
pub fn adopt_recorded(now: &mut ParameterSnapshot, backup: &ParameterSnapshot) {
    let (n, b) = (&mut now.attributes, &backup.attributes);
    n.description = b.description.clone();
    n.key_id = b.key_id.clone();
    n.tier = b.tier.clone();
    n.allowed_pattern = b.allowed_pattern.clone();
    n.policies = b.policies.clone();
    n.last_modified_user = b.last_modified_user.clone();
    if n.data_type.is_none() {
        n.data_type = b.data_type.clone();
    }
}

fn modified_by(now: Option<&ParameterSnapshot>) -> Option<String> {
    now?.attributes.last_modified_user.clone()
}

/// Plans the restore of every tracked key in `backups` against `current`.
pub fn plan(
    backups: &BTreeMap<String, BackupState>,
    current: &BTreeMap<String, ParameterSnapshot>,
) -> Plan {
    let mut plan = Plan::default();
    for (name, state) in backups {
        let now = current.get(name);
        let change = match (state, now) {
            (BackupState::Present { at, snapshot }, now) => {
                let mut target = snapshot.clone();
                let (mut notes, refused) = fit_to_ssm(&mut target, now);
                let action = match now {
                    Some(c) if needs_replacement(&target, c) => {
                        notes.push(NOTE_REPLACED);
                        Action::Replace
                    }
                    Some(_) => Action::Update,
                    None => Action::Create,
                };
                let tags = tag_edit(&target, now, action);
                let differs = now.map(|c| {
                    let mut d = differences(&target, c);
                    if !tags.is_empty() {
                        d.push(DIFFERS_TAGS);
                    }
                    d
                });
                differs
                    .as_ref()
                    .is_none_or(|d| !d.is_empty())
                    .then(|| PlannedChange {
                        name: name.clone(),
                        action,
                        target: Some(target),
                        backup_time: Some(*at),
                        differs: differs.unwrap_or_default(),
                        notes,
                        refused,
                        current_modified_by: modified_by(now),
                        tags,
                    })
            }
            (BackupState::Deleted { at }, Some(_)) => Some(PlannedChange {
                name: name.clone(),
                action: Action::Delete,
                backup_time: Some(*at),
                current_modified_by: modified_by(now),
                ..PlannedChange::default()
            }),
            (BackupState::NoVersion, Some(_)) => Some(PlannedChange {
                name: name.clone(),
                action: Action::Delete,
                current_modified_by: modified_by(now),
                ..PlannedChange::default()
            }),
            (BackupState::Deleted { .. } | BackupState::NoVersion, None) => None,
            // Not an ssmbak backup: neither restored from nor deleted for.
            (BackupState::Foreign { .. }, _) => None,
        };
        match change {
            Some(c) => plan.changes.push(c),
            None => plan.unchanged += 1,
        }
    }
    plan
}

#[cfg(test)]
mod tests;
