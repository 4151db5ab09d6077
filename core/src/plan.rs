//! Restore planning: what must change in SSM to bring parameters back to their backed-up state.
//!
//! The original's rules (its §3.6), with its bugs fixed:
//!
//! | backup at T | SSM now | action |
//! |---|---|---|
//! | a value | absent | create |
//! | a value | differs (value, type, description, and KeyId, tier, data type, allowed pattern, policies where recorded) | update |
//! | a value | the same | nothing |
//! | deleted | present | delete |
//! | deleted | absent | nothing |
//! | tracked, no version at T yet | present | delete |
//! | never backed up (untracked) | present | left alone |
//!
//! Versions written by the original carry only a sanitised description: it is compared in
//! sanitised form, so a description with characters the tag cannot hold is not a false change.

use std::collections::BTreeMap;

use crate::format::{meta, sanitize_description, ParameterSnapshot, ParameterType};
use crate::reader::BackupState;

/// A parameter as SSM holds it now.
#[derive(Clone, PartialEq, Eq)]
pub struct CurrentParam {
    pub name: String,
    pub value: String,
    pub param_type: ParameterType,
    pub version: i64,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub tier: Option<String>,
    pub data_type: Option<String>,
    pub allowed_pattern: Option<String>,
    pub policies: Option<String>,
}

impl std::fmt::Debug for CurrentParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentParam")
            .field("name", &self.name)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("param_type", &self.param_type)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One change the restore would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub action: Action,
    /// The backed-up state to write (create and update).
    pub target: Option<ParameterSnapshot>,
    /// The effective time of the backup state (epoch seconds), if there is one.
    pub backup_time: Option<i64>,
    /// The fields that differ, for an update.
    pub differs: Vec<&'static str>,
}

/// The plan for one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by name.
    pub changes: Vec<Change>,
    /// Tracked parameters already as they were.
    pub unchanged: usize,
}

fn known(snapshot: &ParameterSnapshot, field: &str) -> bool {
    !snapshot.omitted.iter().any(|o| o == field)
}

/// The fields in which `current` differs from `backup`.
pub fn differences(backup: &ParameterSnapshot, current: &CurrentParam) -> Vec<&'static str> {
    let mut out = Vec::new();
    if backup.value != current.value {
        out.push("value");
    }
    if backup.param_type != current.param_type {
        out.push("type");
    }
    let current_description = current.description.clone().unwrap_or_default();
    let backup_description = backup.description.clone().unwrap_or_default();
    let description_differs = if known(backup, meta::DESCRIPTION) {
        backup_description != current_description
    } else {
        backup_description != sanitize_description(&current_description)
    };
    if description_differs {
        out.push("description");
    }
    let optional = [
        ("key id", meta::KEY_ID, &backup.key_id, &current.key_id),
        ("tier", meta::TIER, &backup.tier, &current.tier),
        (
            "data type",
            meta::DATA_TYPE,
            &backup.data_type,
            &current.data_type,
        ),
        (
            "allowed pattern",
            meta::ALLOWED_PATTERN,
            &backup.allowed_pattern,
            &current.allowed_pattern,
        ),
        (
            "policies",
            meta::POLICIES,
            &backup.policies,
            &current.policies,
        ),
    ];
    for (label, field, b, c) in optional {
        // Compared only where the backup recorded the field: an original-format version, or
        // a field left out for size, says nothing about it.
        if known(backup, field) && b.is_some() && b != c {
            out.push(label);
        }
    }
    out
}

/// Plans the restore of every tracked key in `backups` against `current`.
pub fn plan(
    backups: &BTreeMap<String, BackupState>,
    current: &BTreeMap<String, CurrentParam>,
) -> Plan {
    let mut plan = Plan::default();
    for (name, state) in backups {
        let now = current.get(name);
        let change = match (state, now) {
            (BackupState::Present { at, snapshot }, None) => Some(Change {
                name: name.clone(),
                action: Action::Create,
                target: Some(snapshot.clone()),
                backup_time: Some(*at),
                differs: Vec::new(),
            }),
            (BackupState::Present { at, snapshot }, Some(c)) => {
                let differs = differences(snapshot, c);
                (!differs.is_empty()).then(|| Change {
                    name: name.clone(),
                    action: Action::Update,
                    target: Some(snapshot.clone()),
                    backup_time: Some(*at),
                    differs,
                })
            }
            (BackupState::Deleted { at }, Some(_)) => Some(Change {
                name: name.clone(),
                action: Action::Delete,
                target: None,
                backup_time: Some(*at),
                differs: Vec::new(),
            }),
            (BackupState::NoVersion, Some(_)) => Some(Change {
                name: name.clone(),
                action: Action::Delete,
                target: None,
                backup_time: None,
                differs: Vec::new(),
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

impl CurrentParam {
    /// A backed-up state seen as "current", to compare two points in time.
    pub fn from_snapshot(s: &ParameterSnapshot) -> Self {
        CurrentParam {
            name: s.name.clone(),
            value: s.value.clone(),
            param_type: s.param_type,
            version: s.version.unwrap_or_default(),
            description: s.description.clone(),
            key_id: s.key_id.clone(),
            tier: s.tier.clone(),
            data_type: s.data_type.clone(),
            allowed_pattern: s.allowed_pattern.clone(),
            policies: s.policies.clone(),
        }
    }
}
