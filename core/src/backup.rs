//! Back up one parameter change: the operation the Lambda (and later `seed-all` and the
//! scheduled reconcile) performs for each SSM change.
//!
//! # Exact capture
//!
//! A change event carries the time, not the value. Reading the parameter when the record is
//! processed gives whatever it holds *then*: after a burst of updates or an outage that is a
//! later value. So we read `GetParameterHistory` (with decryption) and store the newest SSM
//! version whose LastModifiedDate, at whole seconds, is at or before the event time. The history
//! also gives each version's description, KeyId, tier, data type, allowed pattern and policies.
//!
//! # Idempotency
//!
//! SQS delivers at least once. Before writing we look at the key's current object
//! (`HeadObject`): a value version holding the same SSM version, or a tombstone for the same
//! delete, means this record was already applied, and nothing is written again.

use std::collections::HashMap;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ssm::types::ParameterHistory;

use crate::format::{self, BackupRecord, ParameterSnapshot, ParameterType, StoredFields};

/// The operations of a "Parameter Store Change" event that change data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "Create",
            Operation::Update => "Update",
            Operation::Delete => "Delete",
        }
    }
}

/// One change to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The parameter name as the event gives it (a root-level name may lack its `/`).
    pub name: String,
    pub operation: Operation,
    /// Event time, epoch seconds.
    pub event_time: i64,
    /// The type the event names, if it names one.
    pub param_type: Option<ParameterType>,
}

/// What backing up a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new value version was written.
    Stored { version: i64 },
    /// The delete was recorded: tombstone and delete marker.
    Deleted,
    /// A tombstone for this delete was already there (an earlier attempt stopped half-way):
    /// only the delete marker was written.
    DeleteCompleted,
    /// The bucket already holds this change; nothing written.
    Duplicate { version: Option<i64> },
    /// The parameter no longer exists, so its value cannot be read.
    DeletedBeforeBackup,
    /// The parameter exists but has no version at or before the event time: it was deleted and
    /// re-created since, or its history no longer reaches back that far.
    NoVersionAtEventTime,
}

impl Outcome {
    /// A short name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Stored { .. } => "stored",
            Outcome::Deleted => "deleted",
            Outcome::DeleteCompleted => "delete-completed",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::DeletedBeforeBackup => "deleted-before-backup",
            Outcome::NoVersionAtEventTime => "no-version-at-event-time",
        }
    }
}

/// A failed AWS call. The message carries the service's error code and text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("SSM {operation} {name} failed: {message}")]
    Ssm {
        operation: &'static str,
        name: String,
        code: Option<String>,
        message: String,
    },
    #[error("S3 {operation} s3://{bucket}{key} failed: {message}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        code: Option<String>,
        message: String,
    },
    #[error("stored object s3://{bucket}{key} is unreadable: {source}")]
    Unreadable {
        bucket: String,
        key: String,
        source: format::BadField,
    },
}

impl BackupError {
    /// The AWS error code (`ThrottlingException`, `SlowDown`, `AccessDenied`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            BackupError::Ssm { code, .. } | BackupError::S3 { code, .. } => code.as_deref(),
            BackupError::Unreadable { .. } => None,
        }
    }
}

/// The key's current object, as `HeadObject` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Current {
    /// No object, or a delete marker (S3 answers 404 to both).
    Absent,
    Version(StoredFields),
}

/// Backs up changes into one bucket.
#[derive(Debug, Clone)]
pub struct Backup {
    ssm: aws_sdk_ssm::Client,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Backup {
    pub fn new(
        ssm: aws_sdk_ssm::Client,
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
    ) -> Self {
        Backup {
            ssm,
            s3,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn ssm(&self) -> &aws_sdk_ssm::Client {
        &self.ssm
    }

    /// The SSM version the key's newest backup holds (`None`: none, deleted, or not ours).
    pub async fn latest_version(&self, name: &str) -> Result<Option<i64>, BackupError> {
        Ok(match self.current(&format::object_key(name)).await? {
            Current::Version(f) if !f.is_tombstone() => f.version,
            _ => None,
        })
    }

    /// Records one change in the bucket.
    pub async fn apply(&self, change: &Change) -> Result<Outcome, BackupError> {
        let key = format::object_key(&change.name);
        match change.operation {
            Operation::Delete => self.record_delete(change, key).await,
            Operation::Create | Operation::Update => self.record_value(change, key).await,
        }
    }

    async fn record_value(&self, change: &Change, key: String) -> Result<Outcome, BackupError> {
        let Some(history) = self.history(&change.name, &key).await? else {
            return Ok(Outcome::DeletedBeforeBackup);
        };
        let Some(version) = version_at(
            history.iter().map(|h| (h.version(), millis(h))),
            change.event_time,
        ) else {
            return Ok(Outcome::NoVersionAtEventTime);
        };
        let Some(entry) = history.iter().find(|h| h.version() == version) else {
            return Ok(Outcome::NoVersionAtEventTime);
        };
        if let Current::Version(current) = self.current(&key).await? {
            if !current.is_tombstone() && current.version == Some(version) {
                return Ok(Outcome::Duplicate {
                    version: Some(version),
                });
            }
        }
        let record = BackupRecord::Value {
            event_time: change.event_time,
            snapshot: snapshot_of(&key, entry),
        };
        self.put(&record).await?;
        Ok(Outcome::Stored { version })
    }

    async fn record_delete(&self, change: &Change, key: String) -> Result<Outcome, BackupError> {
        let outcome = match self.current(&key).await? {
            // Already deleted in the bucket: a duplicate delivery, or a delete we missed the
            // re-creation before. Either way the backup already says "deleted".
            Current::Absent => {
                if self.has_history(&key).await? {
                    return Ok(Outcome::Duplicate { version: None });
                }
                // Never backed up: still record the delete's time, so a restore knows the
                // parameter existed and is gone.
                self.put_tombstone(change, &key).await?;
                Outcome::Deleted
            }
            Current::Version(f) if f.deleted_at == Some(change.event_time) => {
                Outcome::DeleteCompleted
            }
            Current::Version(_) => {
                self.put_tombstone(change, &key).await?;
                Outcome::Deleted
            }
        };
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| self.s3_error("DeleteObject", &key, &e))?;
        Ok(outcome)
    }

    async fn put_tombstone(&self, change: &Change, key: &str) -> Result<(), BackupError> {
        self.put(&BackupRecord::Tombstone {
            name: key.to_owned(),
            event_time: change.event_time,
            param_type: change.param_type,
        })
        .await
    }

    /// The parameter's full history, newest last; `None` when the parameter does not exist.
    async fn history(
        &self,
        event_name: &str,
        key: &str,
    ) -> Result<Option<Vec<ParameterHistory>>, BackupError> {
        // The key is the name with a leading slash. A parameter really named without one
        // is only found under its own name.
        let mut names = vec![key];
        if event_name != key {
            names.push(event_name);
        }
        for name in names {
            let result = self
                .ssm
                .get_parameter_history()
                .name(name)
                .with_decryption(true)
                .max_results(50)
                .into_paginator()
                .send()
                .try_collect()
                .await;
            match result {
                Ok(pages) => {
                    let history = pages
                        .into_iter()
                        .flat_map(|p| p.parameters.unwrap_or_default())
                        .collect();
                    return Ok(Some(history));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_parameter_not_found()) => {}
                Err(e) => {
                    return Err(BackupError::Ssm {
                        operation: "GetParameterHistory",
                        name: name.to_owned(),
                        code: e.code().map(str::to_owned),
                        message: DisplayErrorContext(&e).to_string(),
                    })
                }
            }
        }
        Ok(None)
    }

    /// The key's current object (the newest version, unless a delete marker is newer).
    async fn current(&self, key: &str) -> Result<Current, BackupError> {
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => {
                let metadata: HashMap<String, String> =
                    head.metadata().cloned().unwrap_or_default();
                let fields =
                    StoredFields::read([], metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .map_err(|source| BackupError::Unreadable {
                            bucket: self.bucket.clone(),
                            key: key.to_owned(),
                            source,
                        })?;
                Ok(Current::Version(fields))
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                Ok(Current::Absent)
            }
            Err(e) => Err(self.s3_error("HeadObject", key, &e)),
        }
    }

    /// Whether the bucket holds any version or delete marker of exactly this key.
    async fn has_history(&self, key: &str) -> Result<bool, BackupError> {
        // Keys sort before their extensions (`/a` < `/a/b` < `/ab`), so the first entries of a
        // prefix listing are this key's own, if it has any.
        let page = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.s3_error("ListObjectVersions", key, &e))?;
        Ok(page.versions().iter().any(|v| v.key() == Some(key))
            || page.delete_markers().iter().any(|m| m.key() == Some(key)))
    }

    async fn put(&self, record: &BackupRecord) -> Result<(), BackupError> {
        let obj = record.encode();
        let mut request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&obj.key)
            .tagging(&obj.tagging)
            .body(obj.body.into());
        for (k, v) in &obj.metadata {
            request = request.metadata(k, v);
        }
        request
            .send()
            .await
            .map_err(|e| self.s3_error("PutObject", &obj.key, &e))?;
        Ok(())
    }

    fn s3_error<E, R>(
        &self,
        operation: &'static str,
        key: &str,
        e: &aws_sdk_s3::error::SdkError<E, R>,
    ) -> BackupError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        BackupError::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            code: e.code().map(str::to_owned),
            message: DisplayErrorContext(e).to_string(),
        }
    }
}

/// The newest SSM version whose LastModifiedDate (epoch ms), truncated to the second, is at or
/// before `event_time` (epoch seconds). Versions without a date are never chosen.
pub fn version_at(
    versions: impl IntoIterator<Item = (i64, Option<i64>)>,
    event_time: i64,
) -> Option<i64> {
    versions
        .into_iter()
        .filter(|(_, ms)| ms.is_some_and(|ms| ms.div_euclid(1000) <= event_time))
        .map(|(v, _)| v)
        .max()
}

fn millis(h: &ParameterHistory) -> Option<i64> {
    h.last_modified_date().and_then(|d| d.to_millis().ok())
}

fn snapshot_of(key: &str, h: &ParameterHistory) -> ParameterSnapshot {
    let policies = h.policies();
    ParameterSnapshot {
        name: key.to_owned(),
        value: h.value().unwrap_or_default().to_owned(),
        param_type: match h.r#type() {
            Some(aws_sdk_ssm::types::ParameterType::StringList) => ParameterType::StringList,
            Some(aws_sdk_ssm::types::ParameterType::SecureString) => ParameterType::SecureString,
            _ => ParameterType::String,
        },
        description: h.description().map(str::to_owned),
        version: Some(h.version()),
        last_modified_ms: millis(h),
        key_id: h.key_id().map(str::to_owned),
        tier: h.tier().map(|t| t.as_str().to_owned()),
        data_type: h.data_type().map(str::to_owned),
        allowed_pattern: h.allowed_pattern().map(str::to_owned),
        policies: (!policies.is_empty()).then(|| {
            let texts: Vec<&str> = policies.iter().filter_map(|p| p.policy_text()).collect();
            format!("[{}]", texts.join(","))
        }),
        omitted: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::version_at;

    #[test]
    fn version_at_event_time() {
        let s = 1_700_000_000_i64;
        let ms = |sec: i64, frac: i64| sec * 1000 + frac;
        // (what, history as (version, LastModifiedDate ms), event time, expected)
        let cases: Vec<(&str, Vec<(i64, Option<i64>)>, i64, Option<i64>)> = vec![
            (
                "current version is the event's",
                vec![(1, Some(ms(s, 10)))],
                s,
                Some(1),
            ),
            (
                "same second, sub-second date",
                vec![(1, Some(ms(s - 5, 0))), (2, Some(ms(s, 999)))],
                s,
                Some(2),
            ),
            (
                "v1 -> v2 -> v3 processed late: each event gets its own",
                vec![
                    (1, Some(ms(s, 1))),
                    (2, Some(ms(s + 1, 1))),
                    (3, Some(ms(s + 2, 1))),
                ],
                s + 1,
                Some(2),
            ),
            (
                "changed only after the event",
                vec![(4, Some(ms(s + 3, 0)))],
                s,
                None,
            ),
            ("no dates", vec![(1, None)], s, None),
            ("empty", vec![], s, None),
        ];
        for (what, history, at, expected) in cases {
            assert_eq!(version_at(history, at), expected, "{what}");
        }
    }
}
