//! `ssmbak export` and `ssmbak import`: a tree as it was at a point in time, as a file that can
//! be reviewed, kept, and applied elsewhere through the same planner and executor as `restore`.
//!
//! JSON and YAML hold everything a restore writes (type, value, description, KeyId, tier, data
//! type, allowed pattern, policies, tags, labels) and who made each version; dotenv holds names and values
//! only, for programs that read their configuration from the environment. SecureString values
//! are masked (`"value": null, "masked": true`) unless asked for; a dotenv export, which has no
//! way to say "masked", refuses them instead of writing placeholders, and an import refuses a
//! file with masked values rather than write something that is not the backup.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ssmbak_core::format::{Attribute, Attributes, ParameterSnapshot, ParameterType, Tags};
use ssmbak_core::reader::BackupState;

use crate::common::checktime;

/// The file's format version: what a reader of the file can rely on.
pub const EXPORT_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Yaml,
    Dotenv,
}

/// An export: the parameters of one scope at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub ssmbak_export: u32,
    /// The backup bucket it was read from.
    pub bucket: String,
    /// The point in time, RFC 3339 UTC.
    pub time: String,
    /// The PATH exported.
    pub path: String,
    pub parameters: Vec<ExportedParameter>,
}

/// One parameter as it was. Optional fields are left out when the backup did not record them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub param_type: ParameterType,
    /// `None` when masked.
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_by: Option<String>,
    /// The resource tags; left out when the backup did not record them (an import then leaves
    /// the parameter's tags alone), `{}` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// The labels on the version; left out when not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Attributes the backup did not record (the original's versions, fields left out for
    /// S3's metadata limit): an import leaves them as SSM has them, as a restore does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrecorded: Vec<Attribute>,
}

/// Never prints the value.
impl std::fmt::Debug for ExportedParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedParameter")
            .field("name", &self.name)
            .field("param_type", &self.param_type)
            .field("masked", &self.masked)
            .finish_non_exhaustive()
    }
}

/// Why an export or an import cannot be made as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("a dotenv export cannot say \"masked\": {0} is a SecureString (add --show-secrets, or export json or yaml)")]
    MaskedInDotenv(String),
    #[error("{0} and {1} are both {2} in dotenv: export json or yaml")]
    DotenvCollision(String, String, String),
    #[error("{0} has no value in the file (exported without --show-secrets): nothing imported")]
    MaskedInImport(String),
    #[error("not an ssmbak export (JSON or YAML with ssmbak_export: {EXPORT_FORMAT}): {0}")]
    Unreadable(String),
    #[error("ssmbak_export {0} is newer than this ssmbak reads ({EXPORT_FORMAT})")]
    NewerFormat(u32),
    #[error("the export's time {0:?} is not a point in the past")]
    BadTime(String),
    #[error("cannot write the export: {0}")]
    Encode(String),
}

impl ExportedParameter {
    fn of(s: &ParameterSnapshot, show_secrets: bool) -> Self {
        let masked = s.param_type == ParameterType::SecureString && !show_secrets;
        let a = &s.attributes;
        ExportedParameter {
            name: s.name.clone(),
            param_type: s.param_type,
            value: (!masked).then(|| s.value.clone()),
            masked,
            description: a.description.clone(),
            key_id: a.key_id.clone(),
            tier: a.tier.clone(),
            data_type: a.data_type.clone(),
            allowed_pattern: a.allowed_pattern.clone(),
            policies: a.policies.clone(),
            ssm_version: a.version,
            modified_by: a.last_modified_user.clone(),
            tags: a.tags.clone(),
            labels: a.labels.clone(),
            unrecorded: a.unknown.clone(),
        }
    }

    /// The parameter to write, named `name`.
    fn snapshot(&self, name: String) -> Result<ParameterSnapshot, ExportError> {
        let value = self
            .value
            .clone()
            .ok_or_else(|| ExportError::MaskedInImport(self.name.clone()))?;
        Ok(ParameterSnapshot {
            name,
            value,
            param_type: self.param_type,
            attributes: Attributes {
                version: self.ssm_version,
                description: self.description.clone(),
                key_id: self.key_id.clone(),
                tier: self.tier.clone(),
                data_type: self.data_type.clone(),
                allowed_pattern: self.allowed_pattern.clone(),
                policies: self.policies.clone(),
                last_modified_user: self.modified_by.clone(),
                tags: self.tags.clone(),
                labels: self.labels.clone(),
                unknown: self.unrecorded.clone(),
                ..Attributes::default()
            },
        })
    }
}

impl Export {
    /// The parameters present at `at` among `states` (deleted and untracked ones are not in an
    /// export: there is nothing to write for them).
    pub fn of(
        bucket: &str,
        path: &str,
        at: i64,
        states: &BTreeMap<String, BackupState>,
        show_secrets: bool,
    ) -> Self {
        let parameters = states
            .values()
            .filter_map(|state| match state {
                BackupState::Present { snapshot, .. } => {
                    Some(ExportedParameter::of(snapshot, show_secrets))
                }
                _ => None,
            })
            .collect();
        Export {
            ssmbak_export: EXPORT_FORMAT,
            bucket: bucket.to_owned(),
            time: checktime::format(at),
            path: path.to_owned(),
            parameters,
        }
    }

    /// The file's text in `format`.
    pub fn render(&self, format: ExportFormat) -> Result<String, ExportError> {
        let encode = |e: &dyn std::fmt::Display| ExportError::Encode(e.to_string());
        match format {
            ExportFormat::Json => serde_json::to_string_pretty(self)
                .map(|text| text + "\n")
                .map_err(|e| encode(&e)),
            ExportFormat::Yaml => serde_yaml::to_string(self).map_err(|e| encode(&e)),
            ExportFormat::Dotenv => self.dotenv(),
        }
    }

    /// `NAME=value` lines: the name below PATH, upper-cased, every character that is not a
    /// letter or digit an `_`; values single-quoted (dotenv's literal form, `'` escaped).
    fn dotenv(&self) -> Result<String, ExportError> {
        let mut out = String::new();
        let mut variables: BTreeMap<String, &str> = BTreeMap::new();
        for p in &self.parameters {
            let Some(value) = &p.value else {
                return Err(ExportError::MaskedInDotenv(p.name.clone()));
            };
            let below = p
                .name
                .strip_prefix(self.path.as_str())
                .filter(|rest| !rest.is_empty())
                .unwrap_or(&p.name);
            let variable: String = below
                .trim_start_matches('/')
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            if let Some(other) = variables.insert(variable.clone(), &p.name) {
                return Err(ExportError::DotenvCollision(
                    other.to_owned(),
                    p.name.clone(),
                    variable,
                ));
            }
            out.push_str(&format!("{variable}='{}'\n", value.replace('\'', "'\\''")));
        }
        Ok(out)
    }

    /// Reads a JSON or YAML export (YAML is a superset of JSON, so one parser reads both).
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        // JSON with its own parser: libyaml (YAML 1.1) is not a JSON superset, and would read
        // some characters JSON writes unescaped (NEL, U+2028) as line breaks.
        let unreadable = |e: &dyn std::fmt::Display| {
            ExportError::Unreadable(without_quoted_text(&e.to_string()))
        };
        let export: Export = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| unreadable(&e))?
        } else {
            serde_yaml::from_str(text).map_err(|e| unreadable(&e))?
        };
        if export.ssmbak_export > EXPORT_FORMAT {
            return Err(ExportError::NewerFormat(export.ssmbak_export));
        }
        // A hand-edited file must still say what it covers: a name outside its path would be
        // planned against nothing and overwrite blindly; a name twice, one silently.
        let mut seen = std::collections::BTreeSet::new();
        for p in &export.parameters {
            let inside = if export.path.ends_with('/') {
                p.name.starts_with(&export.path) && p.name.len() > export.path.len()
            } else {
                p.name == export.path
            };
            if !inside || !seen.insert(p.name.as_str()) {
                return Err(ExportError::Unreadable(format!(
                    "{} is {} (path {})",
                    p.name,
                    if inside {
                        "named twice"
                    } else {
                        "outside the export's path"
                    },
                    export.path
                )));
            }
        }
        Ok(export)
    }

    /// The export's time and the backup states an import plans from: every parameter present,
    /// renamed under `to` (replacing the export's PATH) when given.
    pub fn states(
        &self,
        to: Option<&str>,
    ) -> Result<(i64, BTreeMap<String, BackupState>), ExportError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let at = checktime::parse(&self.time, now)
            .map_err(|_| ExportError::BadTime(self.time.clone()))?;
        let states = self
            .parameters
            .iter()
            .map(|p| {
                let name = match to {
                    None => p.name.clone(),
                    // One key exported: `to` is its new name.
                    Some(to) if !self.path.ends_with('/') => to.to_owned(),
                    Some(to) => format!(
                        "{to}{}",
                        p.name
                            .strip_prefix(self.path.as_str())
                            .unwrap_or(&p.name)
                            .trim_start_matches('/')
                    ),
                };
                let snapshot = p.snapshot(name.clone())?;
                Ok((name, BackupState::Present { at, snapshot }))
            })
            .collect::<Result<_, ExportError>>()?;
        Ok((at, states))
    }
}

/// A parser's message without the text it quotes (`invalid type: string "…", expected …`): the
/// file may hold secrets, and a message must not print one.
fn without_quoted_text(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') => {
                out.push_str("\"…");
                quoted = true;
            }
            (true, '"') => {
                out.push('"');
                quoted = false;
            }
            (true, '\\') => {
                chars.next();
            }
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> BTreeMap<String, BackupState> {
        let present = |name: &str, value: &str, ty| BackupState::Present {
            at: 1_700_000_000,
            snapshot: ParameterSnapshot::new(name, value, ty).with_attributes(|a| {
                a.description = Some("d".to_owned());
                a.version = Some(3);
                a.tier = Some("Standard".to_owned());
            }),
        };
        BTreeMap::from([
            (
                "/app/db-url".to_owned(),
                present("/app/db-url", "postgres://x", ParameterType::String),
            ),
            ("/app/gone".to_owned(), BackupState::Deleted { at: 5 }),
            (
                "/app/it's".to_owned(),
                present("/app/it's", "a 'quoted' value", ParameterType::StringList),
            ),
            (
                "/app/token".to_owned(),
                present("/app/token", "s3cret", ParameterType::SecureString),
            ),
        ])
    }

    #[test]
    fn json_and_yaml_round_trip_and_mask_secrets() {
        let shown = Export::of("b", "/app/", 1_700_000_000, &states(), true);
        assert_eq!(shown.parameters.len(), 3, "the deleted one is not exported");
        for format in [ExportFormat::Json, ExportFormat::Yaml] {
            let text = shown.render(format).expect("render");
            assert_eq!(Export::parse(&text).expect("parse"), shown, "{format:?}");
        }
        let masked = Export::of("b", "/app/", 1_700_000_000, &states(), false);
        let text = masked.render(ExportFormat::Json).expect("render");
        assert!(
            !text.contains("s3cret") && text.contains("\"masked\": true"),
            "{text}"
        );
        assert_eq!(
            masked.render(ExportFormat::Dotenv).err(),
            Some(ExportError::MaskedInDotenv("/app/token".to_owned()))
        );
        assert_eq!(
            masked.states(None).err(),
            Some(ExportError::MaskedInImport("/app/token".to_owned()))
        );
    }

    #[test]
    fn dotenv_names_and_quoting() {
        let shown = Export::of("b", "/app/", 1, &states(), true);
        assert_eq!(
            shown.render(ExportFormat::Dotenv).expect("dotenv"),
            "DB_URL='postgres://x'\nIT_S='a '\\''quoted'\\'' value'\nTOKEN='s3cret'\n"
        );
        // Two names, one variable: refused, never the later one silently.
        let mut clash = shown.clone();
        let mut twin = clash.parameters[0].clone();
        twin.name = "/app/db_url".to_owned();
        clash.parameters.push(twin);
        assert!(matches!(
            clash.render(ExportFormat::Dotenv),
            Err(ExportError::DotenvCollision(..))
        ));
    }

    #[test]
    fn a_file_that_does_not_say_what_it_covers_is_refused() {
        let text = |names: &[&str]| {
            let params: Vec<String> = names
                .iter()
                .map(|n| format!("{{\"name\": \"{n}\", \"type\": \"String\", \"value\": \"v\"}}"))
                .collect();
            format!(
                "{{\"ssmbak_export\": 1, \"bucket\": \"b\", \"time\": \"2024-01-01T00:00:00Z\", \"path\": \"/app/\", \"parameters\": [{}]}}",
                params.join(",")
            )
        };
        assert!(Export::parse(&text(&["/app/a", "/app/b/c"])).is_ok());
        for bad in [&["/other/a"][..], &["/app/a", "/app/a"], &["/app/"]] {
            assert!(
                matches!(Export::parse(&text(bad)), Err(ExportError::Unreadable(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_keeps_every_character_and_what_the_backup_did_not_record() {
        let value = "a\u{85}b\u{2028}c\u{7f}d";
        let mut states = states();
        states.insert(
            "/app/odd".to_owned(),
            BackupState::Present {
                at: 1,
                snapshot: ParameterSnapshot::new("/app/odd", value, ParameterType::String)
                    .with_attributes(|a| a.unknown = vec![Attribute::Description]),
            },
        );
        let export = Export::of("b", "/app/", 1_700_000_000, &states, true);
        let text = export.render(ExportFormat::Json).expect("json");
        let (_, back) = Export::parse(&text)
            .expect("parse")
            .states(None)
            .expect("states");
        match &back["/app/odd"] {
            BackupState::Present { snapshot, .. } => {
                assert_eq!(snapshot.value, value);
                assert!(!snapshot.attributes.knows(Attribute::Description));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_import_keeps_everything_and_can_move_the_tree() {
        let export = Export::of("b", "/app/", 1_700_000_000, &states(), true);
        let (at, moved) = export.states(Some("/staging/")).expect("states");
        assert_eq!(at, 1_700_000_000);
        let names: Vec<&str> = moved.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["/staging/db-url", "/staging/it's", "/staging/token"]
        );
        match &moved["/staging/db-url"] {
            BackupState::Present { at, snapshot } => {
                assert_eq!(*at, 1_700_000_000);
                assert_eq!(snapshot.name, "/staging/db-url");
                assert_eq!(snapshot.attributes.tier.as_deref(), Some("Standard"));
                assert_eq!(snapshot.attributes.description.as_deref(), Some("d"));
            }
            other => panic!("{other:?}"),
        }
        let db: BTreeMap<String, BackupState> = states()
            .into_iter()
            .filter(|(name, _)| name == "/app/db-url")
            .collect();
        let one_key = Export::of("b", "/app/db-url", 1_700_000_000, &db, true);
        let (_, renamed) = one_key.states(Some("/staging/db")).expect("states");
        assert_eq!(renamed.keys().collect::<Vec<_>>(), ["/staging/db"]);
        assert!(matches!(
            Export::parse("ssmbak_export: 99\nbucket: b\ntime: x\npath: /\nparameters: []\n"),
            Err(ExportError::NewerFormat(99))
        ));
        assert!(matches!(
            Export::parse("{}"),
            Err(ExportError::Unreadable(_))
        ));
        // A malformed file's error never quotes its values.
        let bad = "ssmbak_export: 1\nbucket: b\ntime: t\npath: /\nparameters:\n- name: a\n  type: String\n  value: v\n  ssm_version: \"s3\\\"cret\"\n";
        let message = Export::parse(bad).expect_err("malformed").to_string();
        assert!(
            !message.contains("s3") && !message.contains("cret") && message.contains("ssm_version"),
            "{message}"
        );
    }
}
