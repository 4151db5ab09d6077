//! `ssmbak grep`: every backed-up version in scope (deleted parameters included) whose value,
//! description or tags match a regular expression, as restic's `find` searches snapshots. A
//! tag is searched as `key=value`, and each matching tag is a match of its own.
//!
//! The listing comes first; only versions written at or after `--since` are read (a change is
//! never recorded before it happens), one key's versions after another, keys concurrently.

use regex::Regex;
use ssmbak_core::format::ParameterType;
use ssmbak_core::reader::{HistoryEntry, ListedVersion};

use crate::common::execute::{Attempt, Executor};
use crate::ssmbak::scope::Scope;
use crate::ssmbak::session::{Session, READ_CONCURRENCY};

/// A field of a version `grep` searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Field {
    Value,
    Description,
    Tags,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Value => "value",
            Field::Description => "description",
            Field::Tags => "tags",
        }
    }
}

/// What to search for, where and when.
#[derive(Debug, Clone)]
pub struct GrepRequest {
    pub pattern: Regex,
    /// Versions whose event time is at or after this (epoch seconds).
    pub since: Option<i64>,
    /// Versions whose event time is at or before this.
    pub until: Option<i64>,
    /// Searched in this order; a version matching in several fields is reported once per field.
    pub fields: Vec<Field>,
}

/// One version in which the pattern matched.
#[derive(Clone, PartialEq, Eq)]
pub struct GrepMatch {
    pub name: String,
    /// The version's event time, epoch seconds.
    pub at: i64,
    pub ssm_version: Option<i64>,
    pub modified_by: Option<String>,
    pub field: Field,
    /// The field's text. A SecureString value is here; whoever prints it masks it unless asked.
    pub text: String,
    pub secret: bool,
}

/// Never prints the text: it may be a SecureString value.
impl std::fmt::Debug for GrepMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrepMatch")
            .field("name", &self.name)
            .field("at", &self.at)
            .field("ssm_version", &self.ssm_version)
            .field("field", &self.field)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// The matches among one key's recorded versions, oldest first.
pub fn matches_in(key: &str, history: &[HistoryEntry], request: &GrepRequest) -> Vec<GrepMatch> {
    let in_window =
        |at: i64| request.since.is_none_or(|s| at >= s) && request.until.is_none_or(|u| at <= u);
    let mut out = Vec::new();
    for entry in history.iter().filter(|e| in_window(e.at)) {
        let Some(s) = &entry.snapshot else {
            continue;
        };
        for &field in &request.fields {
            let texts: Vec<String> = match field {
                Field::Value => vec![s.value.clone()],
                Field::Description => s.attributes.description.iter().cloned().collect(),
                Field::Tags => s
                    .attributes
                    .tags
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            };
            for text in texts.into_iter().filter(|t| request.pattern.is_match(t)) {
                out.push(GrepMatch {
                    name: key.to_owned(),
                    at: entry.at,
                    ssm_version: s.attributes.version,
                    modified_by: s.attributes.last_modified_user.clone(),
                    field,
                    text,
                    secret: field == Field::Value && s.param_type == ParameterType::SecureString,
                });
            }
        }
    }
    out
}

/// Searches every key in `scope`; the matches by key, then time.
pub async fn grep(
    session: &Session,
    scope: &Scope,
    request: &GrepRequest,
) -> anyhow::Result<Vec<GrepMatch>> {
    let listing = session.reader.list(scope.prefix()).await?;
    let keys: Vec<(String, Vec<ListedVersion>)> = listing
        .into_iter()
        .filter(|(k, _)| scope.contains(k))
        .collect();
    let executor = Executor::<anyhow::Error>::new(false).with_progress();
    let attempts = executor
        .run(keys, READ_CONCURRENCY, |(key, listed)| async move {
            let history = session
                .reader
                .history_since(&key, &listed, request.since)
                .await?;
            anyhow::Ok(matches_in(&key, &history, request))
        })
        .await;
    let mut out = Vec::new();
    for attempt in attempts {
        match attempt {
            Attempt::Succeeded(found) => out.extend(found),
            Attempt::Failed(e) => return Err(e),
            // Only after a failure, which is returned above.
            Attempt::NotAttempted => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssmbak_core::format::ParameterSnapshot;

    fn version(at: i64, value: &str, ty: ParameterType, description: Option<&str>) -> HistoryEntry {
        let snapshot = ParameterSnapshot::new("/k", value, ty).with_attributes(|a| {
            a.version = Some(at);
            a.description = description.map(str::to_owned);
            a.last_modified_user = Some(format!("arn:aws:iam::1:user/u{at}"));
        });
        HistoryEntry {
            version_id: format!("v{at}"),
            at,
            last_modified_ms: at * 1000,
            snapshot: Some(snapshot),
            foreign: false,
            deleted_by: None,
        }
    }

    fn request(pattern: &str, fields: &[Field]) -> GrepRequest {
        GrepRequest {
            pattern: Regex::new(pattern).expect("regex"),
            since: None,
            until: None,
            fields: fields.to_vec(),
        }
    }

    fn found(matches: &[GrepMatch]) -> Vec<(i64, &'static str, bool)> {
        matches
            .iter()
            .map(|m| (m.at, m.field.as_str(), m.secret))
            .collect()
    }

    #[test]
    fn matches_by_field_window_and_kind() {
        let deleted = HistoryEntry {
            version_id: "d".into(),
            at: 40,
            last_modified_ms: 40_000,
            snapshot: None,
            foreign: false,
            deleted_by: None,
        };
        let history = [
            version(10, "db.old.internal", ParameterType::String, Some("old db")),
            version(20, "db.new.internal", ParameterType::SecureString, None),
            version(30, "cache", ParameterType::String, Some("db cache")),
            deleted,
        ];
        let both = [Field::Value, Field::Description];
        // (what, pattern, fields, since, until, expected (time, field, secret))
        let cases: Vec<(
            &str,
            &str,
            &[Field],
            Option<i64>,
            Option<i64>,
            Vec<(i64, &str, bool)>,
        )> = vec![
            (
                "values only",
                "^db\\.",
                &[Field::Value],
                None,
                None,
                vec![(10, "value", false), (20, "value", true)],
            ),
            (
                "descriptions only",
                "db",
                &[Field::Description],
                None,
                None,
                vec![(10, "description", false), (30, "description", false)],
            ),
            (
                "both, once per field",
                "db",
                &both,
                None,
                None,
                vec![
                    (10, "value", false),
                    (10, "description", false),
                    (20, "value", true),
                    (30, "description", false),
                ],
            ),
            (
                "since is inclusive",
                "db",
                &[Field::Value],
                Some(20),
                None,
                vec![(20, "value", true)],
            ),
            (
                "until is inclusive",
                "db",
                &[Field::Value],
                None,
                Some(10),
                vec![(10, "value", false)],
            ),
            (
                "a delete has no value",
                "",
                &[Field::Value],
                Some(40),
                None,
                vec![],
            ),
            ("no match", "^nothing$", &both, None, None, vec![]),
        ];
        for (what, pattern, fields, since, until, expected) in cases {
            let mut r = request(pattern, fields);
            r.since = since;
            r.until = until;
            assert_eq!(found(&matches_in("/k", &history, &r)), expected, "{what}");
        }
        let m = &matches_in("/k", &history, &request("new", &[Field::Value]))[0];
        assert_eq!(
            (m.ssm_version, m.modified_by.as_deref()),
            (Some(20), Some("arn:aws:iam::1:user/u20"))
        );
        assert!(!format!("{m:?}").contains("db.new"), "Debug hides the text");
    }
}
