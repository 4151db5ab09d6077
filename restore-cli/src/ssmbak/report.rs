//! `ssmbak`'s reports: plans, diffs and logs as a table (for people) or JSON (for programs).

use std::collections::BTreeMap;

use serde_json::json;
use ssmbak_core::format::ParameterSnapshot;
use ssmbak_core::format::ParameterType;
use ssmbak_core::plan::{Action, Plan, PlannedChange, DIFFERS_TAGS};
use ssmbak_core::reader::HistoryEntry;

use crate::ssmbak::grep::GrepMatch;

use crate::common::checktime;
use crate::common::output::new_table;

/// Shown instead of a SecureString value unless `--show-secrets`.
pub const MASK: &str = "(secret hidden)";

fn value_shown(change: &PlannedChange, show_secrets: bool) -> Option<String> {
    let t = change.target.as_ref()?;
    Some(
        if t.param_type == ParameterType::SecureString && !show_secrets {
            MASK.to_owned()
        } else {
            t.value.clone()
        },
    )
}

/// Who made a version, as a table shows it: SSM's `LastModifiedUser`, or "unknown" (a version
/// backed up by the original or before it was recorded, a delete without the CloudTrail rule):
/// never a guess.
fn made_by(user: Option<&str>) -> String {
    user.unwrap_or("unknown").to_owned()
}

/// Who made the backed-up version a change restores, and who made the one SSM holds now.
fn authors(c: &PlannedChange) -> (String, String) {
    let restored = c
        .target
        .as_ref()
        .map(|t| made_by(t.attributes.last_modified_user.as_deref()))
        .unwrap_or_default();
    let current = match c.action {
        Action::Create => String::new(),
        _ => made_by(c.current_modified_by.as_deref()),
    };
    (restored, current)
}

/// The plan as a table; `None` when there is nothing to change.
pub fn plan_table(plan: &Plan, show_secrets: bool) -> Option<String> {
    if plan.changes.is_empty() {
        return None;
    }
    let mut table = new_table([
        "Name",
        "Action",
        "Type",
        "Value",
        "Description",
        "Backed up at",
        "Made by",
        "Current made by",
        "Differs",
    ]);
    for c in &plan.changes {
        let t = c.target.as_ref();
        let (restored_by, current_by) = authors(c);
        table.add_row([
            c.name.clone(),
            c.action.as_str().to_owned(),
            t.map(|t| t.param_type.as_str().to_owned())
                .unwrap_or_default(),
            value_shown(c, show_secrets).unwrap_or_default(),
            t.and_then(|t| t.attributes.description.clone())
                .unwrap_or_default(),
            c.backup_time
                .map(checktime::format)
                .unwrap_or_else(|| "(not yet created)".to_owned()),
            restored_by,
            current_by,
            differs_and_notes(c),
        ]);
    }
    Some(table.to_string())
}

/// What differs (tags with their edit), the labels a written version gets, then what SSM
/// forces on the write, then why SSM would refuse it.
fn differs_and_notes(c: &PlannedChange) -> String {
    let differs: Vec<String> = c
        .differs
        .iter()
        .map(|d| match *d {
            DIFFERS_TAGS => format!("tags ({})", c.tags),
            other => other.to_owned(),
        })
        .collect();
    let mut parts = vec![differs.join(", ")];
    if !c.differs.contains(&DIFFERS_TAGS) && !c.tags.is_empty() {
        parts.push(format!("tags: {}", c.tags));
    }
    if c.writes_value() {
        if let Some(labels) = labels_written(c) {
            parts.push(format!("labels: {}", labels.join(", ")));
        }
    }
    parts.extend(c.notes.iter().map(|n| (*n).to_owned()));
    parts.extend(c.refused.map(|r| format!("REFUSED: {r}")));
    parts.retain(|p| !p.is_empty());
    parts.join("; ")
}

/// The labels a change attaches to the version it writes.
fn labels_written(c: &PlannedChange) -> Option<&Vec<String>> {
    c.target
        .as_ref()?
        .attributes
        .labels
        .as_ref()
        .filter(|l| !l.is_empty())
}

/// The plan as JSON. Stable: fields are only ever added.
pub fn plan_json(plan: &Plan, bucket: &str, at: i64, show_secrets: bool) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = plan
        .changes
        .iter()
        .map(|c| {
            let t = c.target.as_ref();
            json!({
                "name": c.name,
                "action": c.action.as_str(),
                "type": t.map(|t| t.param_type.as_str()),
                "value": value_shown(c, show_secrets),
                "description": t.and_then(|t| t.attributes.description.clone()),
                "ssm_version": t.and_then(|t| t.attributes.version),
                "modified_by": t.and_then(|t| t.attributes.last_modified_user.clone()),
                "current_modified_by": c.current_modified_by,
                "backup_time": c.backup_time.map(checktime::format),
                "differs": c.differs,
                "notes": c.notes,
                "refused": c.refused,
                "tags": t.and_then(|t| t.attributes.tags.clone()),
                "labels": t.and_then(|t| t.attributes.labels.clone()),
                "tags_added": c.tags.add,
                "tags_removed": c.tags.remove,
            })
        })
        .collect();
    json!({
        "bucket": bucket,
        "time": checktime::format(at),
        "changes": changes,
        "unchanged": plan.unchanged,
    })
}

/// What `diff` calls each planned change: restoring T1 would create what was removed since,
/// update what changed, delete what was added.
fn diff_word(action: Action) -> &'static str {
    match action {
        Action::Create => "removed",
        Action::Update | Action::Replace => "changed",
        Action::Delete => "added",
    }
}

fn shown(value: &str, param_type: ParameterType, show_secrets: bool) -> String {
    if param_type == ParameterType::SecureString && !show_secrets {
        MASK.to_owned()
    } else {
        value.to_owned()
    }
}

fn sides(
    c: &PlannedChange,
    after: &BTreeMap<String, ParameterSnapshot>,
    show_secrets: bool,
) -> (Option<String>, Option<String>) {
    let before = c
        .target
        .as_ref()
        .map(|t| shown(&t.value, t.param_type, show_secrets));
    let later = after
        .get(&c.name)
        .map(|p| shown(&p.value, p.param_type, show_secrets));
    (before, later)
}

/// Who made each side of a diff: the version at T1 and the one at T2 (or now).
fn sides_by(
    c: &PlannedChange,
    after: &BTreeMap<String, ParameterSnapshot>,
) -> (Option<String>, Option<String>) {
    let by = |p: &ParameterSnapshot| p.attributes.last_modified_user.clone();
    (
        c.target.as_ref().and_then(by),
        after.get(&c.name).and_then(by),
    )
}

/// `diff` as a table; `None` when nothing changed.
pub fn diff_table(
    plan: &Plan,
    after: &BTreeMap<String, ParameterSnapshot>,
    show_secrets: bool,
) -> Option<String> {
    if plan.changes.is_empty() {
        return None;
    }
    let mut table = new_table([
        "Name",
        "Change",
        "Fields",
        "Before",
        "After",
        "Before made by",
        "After made by",
    ]);
    for c in &plan.changes {
        let (before, later) = sides(c, after, show_secrets);
        let (before_by, after_by) = sides_by(c, after);
        let side_by = |value: &Option<String>, by: Option<String>| {
            value
                .as_ref()
                .map(|_| made_by(by.as_deref()))
                .unwrap_or_default()
        };
        table.add_row([
            c.name.clone(),
            diff_word(c.action).to_owned(),
            c.differs.join(", "),
            before.clone().unwrap_or_default(),
            later.clone().unwrap_or_default(),
            side_by(&before, before_by),
            side_by(&later, after_by),
        ]);
    }
    Some(table.to_string())
}

pub fn diff_json(
    plan: &Plan,
    after: &BTreeMap<String, ParameterSnapshot>,
    t1: i64,
    t2: Option<i64>,
    show_secrets: bool,
) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = plan
        .changes
        .iter()
        .map(|c| {
            let (before, later) = sides(c, after, show_secrets);
            let (before_by, after_by) = sides_by(c, after);
            json!({
                "name": c.name, "change": diff_word(c.action), "fields": c.differs,
                "before": before, "after": later,
                "before_modified_by": before_by, "after_modified_by": after_by,
            })
        })
        .collect();
    json!({"from": checktime::format(t1), "to": t2.map(checktime::format), "changes": changes})
}

/// `log` as a table, oldest first.
pub fn log_table(history: &[HistoryEntry], show_secrets: bool) -> Option<String> {
    if history.is_empty() {
        return None;
    }
    let mut table = new_table([
        "Time",
        "SSM version",
        "Type",
        "Value",
        "Description",
        "Made by",
    ]);
    for e in history {
        let (version, ty, value, description) = log_fields(e, show_secrets);
        table.add_row([
            checktime::format(e.at),
            version.map(|v| v.to_string()).unwrap_or_default(),
            ty.unwrap_or_default(),
            value,
            description.unwrap_or_default(),
            if e.foreign {
                String::new()
            } else {
                made_by(modified_by(e).as_deref())
            },
        ]);
    }
    Some(table.to_string())
}

fn log_fields(
    e: &HistoryEntry,
    show_secrets: bool,
) -> (Option<i64>, Option<String>, String, Option<String>) {
    match &e.snapshot {
        Some(s) => (
            s.attributes.version,
            Some(s.param_type.as_str().to_owned()),
            shown(&s.value, s.param_type, show_secrets),
            s.attributes.description.clone(),
        ),
        None if e.foreign => (None, None, "(not an ssmbak backup)".to_owned(), None),
        None => (None, None, "(deleted)".to_owned(), None),
    }
}

/// Who made a logged change, when it is known: SSM's `LastModifiedUser` of a version, or the
/// deleter CloudTrail named for a delete (the `RecordDeleters` rule; unknown without it).
fn modified_by(e: &HistoryEntry) -> Option<String> {
    match &e.snapshot {
        Some(s) => s.attributes.last_modified_user.clone(),
        None => e.deleted_by.clone(),
    }
}

pub fn log_json(key: &str, history: &[HistoryEntry], show_secrets: bool) -> serde_json::Value {
    let versions: Vec<serde_json::Value> = history
        .iter()
        .map(|e| {
            let (version, ty, value, description) = log_fields(e, show_secrets);
            let deleted = e.snapshot.is_none() && !e.foreign;
            json!({
                "time": checktime::format(e.at),
                "ssm_version": version,
                "type": ty,
                "value": (!deleted && !e.foreign).then_some(value),
                "description": description,
                "deleted": deleted,
                "modified_by": modified_by(e),
                "s3_version_id": e.version_id,
            })
        })
        .collect();
    json!({"name": key, "versions": versions})
}

/// A match's text as shown: a SecureString value masked unless asked.
fn match_text(m: &GrepMatch, show_secrets: bool) -> String {
    if m.secret && !show_secrets {
        MASK.to_owned()
    } else {
        m.text.clone()
    }
}

/// `grep` as a table, by key then time; `None` when nothing matched.
pub fn grep_table(matches: &[GrepMatch], show_secrets: bool) -> Option<String> {
    if matches.is_empty() {
        return None;
    }
    let mut table = new_table(["Name", "Time", "SSM version", "Made by", "Field", "Text"]);
    for m in matches {
        table.add_row([
            m.name.clone(),
            checktime::format(m.at),
            m.ssm_version.map(|v| v.to_string()).unwrap_or_default(),
            made_by(m.modified_by.as_deref()),
            m.field.as_str().to_owned(),
            match_text(m, show_secrets),
        ]);
    }
    Some(table.to_string())
}

/// `grep` as JSON. Stable: fields are only ever added.
pub fn grep_json(matches: &[GrepMatch], show_secrets: bool) -> serde_json::Value {
    let found: Vec<serde_json::Value> = matches
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "time": checktime::format(m.at),
                "ssm_version": m.ssm_version,
                "modified_by": m.modified_by,
                "field": m.field.as_str(),
                "text": match_text(m, show_secrets),
                "secret": m.secret,
            })
        })
        .collect();
    json!({ "matches": found })
}
