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
//! The parameter's resource tags (`ListTagsForResource`) and the labels on the chosen version
//! (from the same history) are recorded with it. Tags are read when the change is processed,
//! not at the event time: SSM keeps no history of tags.
//!
//! # Idempotency, in any delivery order
//!
//! SQS delivers at least once, late and out of order. Before writing we look at the key
//! (`HeadObject`; behind a delete marker, the newest version's tags) for the facts the bucket
//! records of it: each version of ours names where the key's earlier ones stand in time
//! ([`crate::format::earlier`]). Only a record of *this* change (the same SSM version and LastModifiedDate
//! at the same time, or a tombstone at the same delete time) makes a delivery a duplicate;
//! what S3 holds newest says nothing of the state at an event's time (`decide`).
//!
//! A delete writes its tombstone, then its delete marker only while that tombstone is the
//! key's current version (`DeleteObject` with `If-Match` on the tombstone's ETag): two
//! deliveries of one delete at once, or a completion racing a re-creation, never leave a
//! marker after a marker or after a value, which readers would take for a delete of its own.
//!
//! Every call goes through the storage seam ([`crate::store`]): S3 and SSM on AWS, or the
//! in-memory models the simulation ([`crate::sim`]) drives this same code against.

//! # Same version, new tags or labels
//!
//! A label move is a `LabelParameterVersion` change event ([`Operation::Relabel`]); a tag edit
//! makes no event at all, so the scheduled reconcile looks for tag drift
//! ([`Operation::Retag`], [`Backup::tags_drifted`]). Both compare the tags and labels the
//! newest backup recorded with SSM's and, when they differ, write a new object version of the
//! same SSM version, at the label event's time or at the time the drift was found: the honest
//! bound, since the tags surely changed after the last backup and before that.
//!
//! # Indexed
//!
//! Every version is put through [`Backup`]'s one `put`, which then writes the version's index
//! entry (see [`crate::index`]), naming the version id S3 gave it: what lets a reader place it
//! in time without reading it.
//!
//! # Who deleted it
//!
//! With the template's `RecordDeleters` on, CloudTrail's record of each `DeleteParameter`/
//! `DeleteParameters` call reaches the Lambda too ([`Backup::record_deleter`]), and the delete's
//! tombstone gets the caller's ARN (see "Who deleted it" in docs/format.md). Either record may
//! come first, or alone: EventBridge documents no delivery latency for CloudTrail events, and
//! they need a trail at all ("AWS service events delivered via AWS CloudTrail", EventBridge User
//! Guide).

mod decide;
mod delete;
mod deleter;
mod known;
mod marker_second;
#[cfg(test)]
pub(crate) mod races;
mod reconcile_state;
mod value;

pub use deleter::{pick_tombstone, DeleterEvent, DeleterOutcome, Pick, DELETER_WINDOW_SECS};
pub use marker_second::value_not_before;

pub use decide::{
    delete_for_event, holds_version, unrecorded_before, version_at, version_for_event, Choice,
    DeleteChoice, Held, BACKFILL_MAX, EVENT_SKEW_SECS,
};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::aws_error::AwsError;
use crate::format::{self, BackupRecord, EarlierVersion, ParameterType, Tags};
use crate::index;
use crate::rate::RateLimit;
use crate::store::sdk::{SdkParameters, SdkStore};
use crate::store::{HistoryVersion, NewObject, ObjectStore, ParameterStore, Written};

/// The operations of a "Parameter Store Change" event that change data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    /// The parameter went away without a Delete change event: a parameter policy expired it
    /// ("Parameter Store Policy Action"), or the reconcile found it missing. Recorded as a
    /// delete only once SSM confirms the parameter no longer exists.
    Removed,
    /// A label was attached to or moved from a version (`LabelParameterVersion`,
    /// `UnlabelParameterVersion`): the value is the same, the labels may differ.
    Relabel,
    /// The reconcile found the tags differ from the newest backup's (tag edits make no event).
    Retag,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "Create",
            Operation::Update => "Update",
            Operation::Delete => "Delete",
            Operation::Removed => "Removed",
            Operation::Relabel => "Relabel",
            Operation::Retag => "Retag",
        }
    }
}

/// One change to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
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
    /// A removal SSM does not confirm: the parameter exists (re-created, or the expiry did not
    /// happen). Nothing written.
    StillExists,
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
            Outcome::StillExists => "still-exists",
        }
    }
}

/// A failed backup: an AWS call, or a stored object that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Aws(#[from] AwsError),
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
            BackupError::Aws(e) => e.code(),
            BackupError::Unreadable { .. } => None,
        }
    }
}

/// Backs up changes into one bucket.
#[derive(Debug, Clone)]
pub struct Backup {
    objects: Arc<dyn ObjectStore>,
    parameters: Arc<dyn ParameterStore>,
    /// When this process last wrote a delete marker, by key: a value written after it waits
    /// for the next S3 second (see "A value never shares a second with the marker before it"
    /// in docs/format.md).
    markers: Arc<Mutex<HashMap<String, SystemTime>>>,
    /// This process's share of SSM's read rate, if it must keep to one.
    ssm_rate: Option<Arc<RateLimit>>,
}

impl Backup {
    /// Backs up into `bucket` on AWS.
    pub fn new(
        ssm: aws_sdk_ssm::Client,
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
    ) -> Self {
        Backup::on(
            Arc::new(SdkStore::new(s3, bucket)),
            Arc::new(SdkParameters::new(ssm)),
        )
    }

    /// Backs up from `parameters` into `objects` (AWS, or the in-memory models).
    pub fn on(objects: Arc<dyn ObjectStore>, parameters: Arc<dyn ParameterStore>) -> Self {
        Backup {
            objects,
            parameters,
            markers: Arc::default(),
            ssm_rate: None,
        }
    }

    /// Keeps this process's SSM reads (`GetParameterHistory`) to `per_second`.
    pub fn with_ssm_rate(mut self, per_second: f64) -> Self {
        self.ssm_rate = Some(Arc::new(RateLimit::per_second(per_second)));
        self
    }

    pub fn bucket(&self) -> &str {
        self.objects.bucket()
    }

    pub fn parameters(&self) -> &dyn ParameterStore {
        self.parameters.as_ref()
    }

    /// Now, in epoch seconds, by the bucket's clock.
    pub fn now_secs(&self) -> i64 {
        self.objects
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    /// The parameter's resource tags; `None` when it does not exist. Not held to
    /// [`Self::with_ssm_rate`]: `ListTagsForResource` is not one of the reads that share SSM's
    /// 40 TPS (SSM User Guide, "Increasing or resetting Parameter Store throughput"), and the
    /// SDK's retries absorb its own throttling.
    async fn tags(&self, name: &str) -> Result<Option<Tags>, BackupError> {
        Ok(self.parameters.tags(name).await?)
    }

    /// Records one change in the bucket.
    pub async fn apply(&self, change: &ChangeEvent) -> Result<Outcome, BackupError> {
        let key = format::object_key(&change.name);
        match change.operation {
            Operation::Delete => self.record_delete(change, key).await,
            Operation::Removed => {
                if self.history(&change.name, &key).await?.is_some() {
                    return Ok(Outcome::StillExists);
                }
                self.record_delete(change, key).await
            }
            Operation::Create | Operation::Update | Operation::Relabel | Operation::Retag => {
                self.record_value(change, key).await
            }
        }
    }

    /// The parameter's full history, oldest first; `None` when the parameter does not exist.
    async fn history(
        &self,
        event_name: &str,
        key: &str,
    ) -> Result<Option<Vec<HistoryVersion>>, BackupError> {
        // The key is the name with a leading slash. A parameter really named without one
        // is only found under its own name.
        let mut names = vec![key];
        if event_name != key {
            names.push(event_name);
        }
        for name in names {
            if let Some(rate) = &self.ssm_rate {
                rate.acquire().await;
            }
            if let Some(history) = self.parameters.history(name).await? {
                return Ok(Some(history));
            }
        }
        Ok(None)
    }

    fn unreadable(&self, key: &str, source: format::BadField) -> BackupError {
        BackupError::Unreadable {
            bucket: self.bucket().to_owned(),
            key: key.to_owned(),
            source,
        }
    }

    /// Writes `record`, naming the key's `earlier` versions, then its index entry.
    async fn put(
        &self,
        record: &BackupRecord,
        earlier: &[EarlierVersion],
    ) -> Result<Written, BackupError> {
        let mut obj = record.encode();
        obj.name_earlier(earlier);
        if let Some(sidecar) = &obj.sidecar {
            self.put_sidecar(sidecar).await?;
        }
        let key = obj.key.clone();
        let written = self
            .objects
            .put(NewObject {
                key: obj.key,
                body: obj.body,
                tagging: obj.tagging,
                metadata: obj.metadata.into_iter().collect(),
                content_type: None,
            })
            .await?;
        // A bucket without versioning gives no id (`null` when suspended): nothing to index,
        // and readers read such a version.
        // Nor for a key too long for S3 to hold its entry.
        let entry = written.version_id.as_ref().and_then(|id| record.place(id));
        if let Some(entry_key) = entry.and_then(|entry| index::entry_key(&key, &entry)) {
            self.objects
                .put(NewObject {
                    key: entry_key,
                    ..NewObject::default()
                })
                .await?;
        }
        Ok(written)
    }

    /// Writes a sidecar unless it is there already: it is named by its content, so one that
    /// exists holds exactly these bytes.
    async fn put_sidecar(&self, sidecar: &format::Sidecar) -> Result<(), BackupError> {
        if self.objects.head(&sidecar.key, None).await?.is_some() {
            return Ok(());
        }
        self.objects
            .put(NewObject {
                key: sidecar.key.clone(),
                body: sidecar.body.clone(),
                content_type: Some("application/json".to_owned()),
                ..NewObject::default()
            })
            .await?;
        Ok(())
    }
}
