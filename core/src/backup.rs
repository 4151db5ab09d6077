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
//! ([`earlier`]). Only a record of *this* change (the same SSM version and LastModifiedDate
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
#[cfg(test)]
mod races;

pub use decide::{
    delete_for_event, holds_version, unrecorded_before, version_at, version_for_event, Choice,
    DeleteChoice, Held, BACKFILL_MAX, EVENT_SKEW_SECS,
};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::aws_error::AwsError;
use crate::format::{
    self, earlier, BackupRecord, EarlierVersion, Extras, ParameterType, StoredFields, Tags,
};
use crate::index;
use crate::rate::RateLimit;
use crate::store::sdk::{SdkParameters, SdkStore};
use crate::store::{Deleted, HistoryVersion, NewObject, ObjectStore, ParameterStore, Written};

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

/// One parameter a CloudTrail `DeleteParameter`/`DeleteParameters` record says was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleterEvent {
    /// The name as the caller gave it (a root-level name may lack its `/`).
    pub name: String,
    /// CloudTrail's `eventTime`: when the call was made, epoch seconds.
    pub event_time: i64,
    /// CloudTrail's `userIdentity.arn`: who made the call.
    pub deleted_by: String,
}

/// What recording a deleter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleterOutcome {
    /// The delete's tombstone (written by its change event) now names the deleter.
    Tagged,
    /// No tombstone yet (the CloudTrail record came first): the delete was recorded, tombstone
    /// with the deleter and marker, as its change event would have; that event then finds it.
    Deleted,
    /// The tombstone already names this deleter (a duplicate delivery).
    Duplicate,
    /// The tombstone names someone else: left as it is, never overwritten.
    Conflict,
    /// More than one tombstone is as near the call's time: which is this delete's is not known,
    /// so none is tagged.
    Ambiguous,
    /// No tombstone for this delete, and SSM has the parameter: it was re-created since, or the
    /// delete did not happen. Nothing written; the deleter stays unknown.
    StillExists,
    /// No tombstone for this delete and the bucket already says "deleted" (its latest delete
    /// was recorded long before this call): nothing to put the deleter on.
    NoTombstone,
    /// The ARN does not fit the tombstone's tags (see [`format::deleted_by_tags`]).
    TooLong,
}

impl DeleterOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DeleterOutcome::Tagged => "deleter-tagged",
            DeleterOutcome::Deleted => "deleted",
            DeleterOutcome::Duplicate => "duplicate",
            DeleterOutcome::Conflict => "deleter-conflict",
            DeleterOutcome::Ambiguous => "deleter-ambiguous",
            DeleterOutcome::StillExists => "still-exists",
            DeleterOutcome::NoTombstone => "no-tombstone",
            DeleterOutcome::TooLong => "deleter-too-long",
        }
    }
}

/// How far apart (seconds) a delete's change-event time and CloudTrail's `eventTime` may be.
/// Both stamp the same call, but no AWS document says how closely; a tombstone farther from
/// the call than this is another delete's.
pub const DELETER_WINDOW_SECS: i64 = 5;

/// A tombstone found for a CloudTrail delete record.
#[derive(Debug, Clone)]
struct FoundTombstone {
    version_id: String,
    fields: StoredFields,
    tags: Vec<(String, String)>,
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

/// What the writer knows of a key before it writes: its current object, as `HeadObject` sees
/// it, and the facts it has about the key's recorded versions (see [`decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Current {
    /// The newest entry, when it is a version (`None`: no object, or a delete marker: S3
    /// answers 404 to both).
    newest: Option<StoredFields>,
    /// The newest version's ETag, what a conditional delete names it by.
    newest_etag: Option<String>,
    /// The newest version's place in time and those it names, newest first ([`earlier::after`]);
    /// behind a delete marker, the newest version that is not one. What a version written
    /// next names.
    recorded: Vec<EarlierVersion>,
}

impl Current {
    /// The newest entry, when it is a value version.
    fn latest_value(&self) -> Option<&StoredFields> {
        self.newest.as_ref().filter(|f| !f.is_tombstone())
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

    /// Now, in epoch seconds, by S3's own clock: the LastModified of an empty probe object
    /// written now (listings give it in whole seconds). The reconcile dates the deletes it
    /// finds by it: written after SSM listed the parameters gone and before it confirms each
    /// one, it falls between the two on AWS's clock, whatever this machine's clock says (a
    /// clock 100 ms behind dated a delete found within a second of being made in the second
    /// before it, while the parameter still existed: simulation seed 16172).
    pub async fn s3_now_secs(&self) -> Result<i64, BackupError> {
        let key = format::CLOCK_PROBE_KEY;
        self.objects
            .put(NewObject {
                key: key.to_owned(),
                ..NewObject::default()
            })
            .await?;
        let page = self.objects.list_versions(key, None, Some(1)).await?;
        let written = page
            .versions
            .iter()
            .find(|(k, v)| k == key && v.is_latest)
            .map(|(_, v)| v.last_modified_ms.div_euclid(1000));
        // S3 lists what it has acknowledged (strong read-after-write consistency): a probe
        // not listed is not expected; this machine's clock is the fallback.
        Ok(written.unwrap_or_else(|| self.now_secs()))
    }

    /// The bucket's current objects under `prefix` (keys whose newest write is not a delete
    /// marker), or `None` when `stop_by` passes before the last page.
    pub async fn current_keys(
        &self,
        prefix: &str,
        stop_by: Option<std::time::Instant>,
    ) -> Result<Option<Vec<String>>, BackupError> {
        let mut keys = Vec::new();
        let mut continuation = None;
        loop {
            let page = self.objects.list_keys(prefix, continuation).await?;
            if stop_by.is_some_and(|t| std::time::Instant::now() >= t) {
                return Ok(None);
            }
            keys.extend(page.keys);
            continuation = page.next;
            if continuation.is_none() {
                return Ok(Some(keys));
            }
        }
    }

    /// The keys under `prefix` flagged as live behind a delete marker (see
    /// [`format::LIVE_BEHIND_MARKER_PREFIX`]), or `None` when `stop_by` passes first.
    pub async fn live_behind_marker(
        &self,
        prefix: &str,
        stop_by: Option<std::time::Instant>,
    ) -> Result<Option<Vec<String>>, BackupError> {
        let flags = format!("{}{prefix}", format::LIVE_BEHIND_MARKER_PREFIX);
        Ok(self.current_keys(&flags, stop_by).await?.map(|keys| {
            keys.iter()
                .filter_map(|k| k.strip_prefix(format::LIVE_BEHIND_MARKER_PREFIX))
                .map(str::to_owned)
                .collect()
        }))
    }

    /// Takes down the flag of `key`: its delete, found by the reconcile, is recorded.
    pub async fn unflag_live_behind_marker(&self, key: &str) -> Result<(), BackupError> {
        let flag = format!("{}{key}", format::LIVE_BEHIND_MARKER_PREFIX);
        self.objects.delete(&flag, None).await?;
        Ok(())
    }

    /// The last parameter name the previous reconcile run checked (`None`: none recorded, or
    /// unreadable: the run then starts from the beginning).
    pub async fn reconcile_cursor(&self) -> Option<String> {
        let (_, bytes) = self
            .objects
            .get(format::RECONCILE_CURSOR_KEY, None)
            .await
            .ok()??;
        String::from_utf8(bytes).ok()
    }

    /// Records where this reconcile run stopped (`""`: at the end of a full lap).
    pub async fn set_reconcile_cursor(&self, last_checked: &str) -> Result<(), BackupError> {
        self.objects
            .put(NewObject {
                key: format::RECONCILE_CURSOR_KEY.to_owned(),
                body: last_checked.as_bytes().to_vec(),
                ..NewObject::default()
            })
            .await?;
        Ok(())
    }

    /// Whether the bucket records SSM version `version` of `name`, last modified at
    /// `last_modified_ms` (the incarnation: a re-created parameter counts from 1 again), as the
    /// parameter's state now ([`holds_version`]); when recorded, also the key's newest backup
    /// if that is this version (its tags can be compared).
    pub async fn holds(
        &self,
        name: &str,
        version: i64,
        last_modified_ms: i64,
    ) -> Result<(Held, Option<StoredFields>), BackupError> {
        let current = self.current(&format::object_key(name)).await?;
        let marker_newest = current.newest.is_none();
        let held = holds_version(marker_newest, &current.recorded, version, last_modified_ms);
        let latest = current.latest_value().filter(|f| {
            held == Held::Recorded
                && f.attributes.version == Some(version)
                && f.attributes
                    .last_modified_ms
                    .is_none_or(|ms| ms == last_modified_ms)
        });
        Ok((held, latest.cloned()))
    }

    /// Whether the parameter's tags differ from those `latest` (its newest backup) recorded.
    /// A backup that recorded none (the original's, or format 1) says nothing: `false`.
    pub async fn tags_drifted(
        &self,
        name: &str,
        latest: &StoredFields,
    ) -> Result<bool, BackupError> {
        let Some(recorded) = self
            .stored_extras(&format::object_key(name), latest)
            .await?
        else {
            return Ok(false);
        };
        Ok(match self.tags(name).await? {
            Some(now) => now != recorded.tags,
            None => false,
        })
    }

    /// The tags and labels a stored version recorded, from its metadata or its sidecar.
    async fn stored_extras(
        &self,
        key: &str,
        fields: &StoredFields,
    ) -> Result<Option<Extras>, BackupError> {
        if let Some(extras) = fields.attributes.extras() {
            return Ok(Some(extras));
        }
        let Some(digest) = &fields.extras else {
            return Ok(None);
        };
        let bytes = crate::reader::read_sidecar(self.objects.as_ref(), digest).await?;
        Extras::from_json(&bytes)
            .map(Some)
            .map_err(|source| self.unreadable(key, source))
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

    async fn record_value(
        &self,
        change: &ChangeEvent,
        key: String,
    ) -> Result<Outcome, BackupError> {
        let Some(history) = self.history(&change.name, &key).await? else {
            return Ok(Outcome::DeletedBeforeBackup);
        };
        let current = self.current(&key).await?;
        let latest = current.latest_value();
        let dates: Vec<(i64, Option<i64>)> = history
            .iter()
            .map(|h| (h.version(), h.last_modified_ms()))
            .collect();
        let same_version_may_change =
            matches!(change.operation, Operation::Relabel | Operation::Retag);
        let choice = version_for_event(
            &dates,
            change.event_time,
            &current.recorded,
            !same_version_may_change,
        );
        let (version, same_version) = match choice {
            Choice::Store(v) => (v, false),
            Choice::Duplicate(v) if same_version_may_change => (v, true),
            Choice::Duplicate(v) => return Ok(Outcome::Duplicate { version: Some(v) }),
            Choice::Unmatched => return Ok(Outcome::NoVersionAtEventTime),
        };
        let Some(entry) = history.iter().find(|h| h.version() == version) else {
            return Ok(Outcome::NoVersionAtEventTime);
        };
        let tags_of = if entry.name.is_empty() {
            &key
        } else {
            &entry.name
        };
        let Some(tags) = self.tags(tags_of).await? else {
            return Ok(Outcome::DeletedBeforeBackup);
        };
        let extras = Extras {
            tags,
            labels: entry.labels.clone(),
        };
        if same_version {
            let recorded = match latest {
                Some(f) => self.stored_extras(&key, f).await?,
                None => None,
            };
            if recorded.as_ref().map(Extras::to_json) == Some(extras.to_json()) {
                return Ok(Outcome::Duplicate {
                    version: Some(version),
                });
            }
        }
        self.wait_for_marker_second(&key).await;
        let mut earlier = current.recorded.clone();
        if !same_version_may_change {
            // Versions whose events were lost, while SSM still has them.
            for (lost, ms) in unrecorded_before(&dates, version, &current.recorded) {
                let Some(h) = history.iter().find(|h| h.version() == lost) else {
                    continue;
                };
                let extras = Extras {
                    tags: extras.tags.clone(),
                    labels: h.labels.clone(),
                };
                let record = value_record(&key, h, extras, ms.div_euclid(1000));
                let written = self.put(&record, &earlier).await?;
                tracing::warn!(name = %key, ssm_version = lost, outcome = "backfilled", "a version whose event was lost, recorded from the parameter's history");
                if let Some(placed) = written.version_id.as_ref().and_then(|id| record.place(id)) {
                    earlier.insert(0, placed);
                }
            }
        }
        let record = value_record(&key, entry, extras, change.event_time);
        self.put(&record, &earlier).await?;
        Ok(Outcome::Stored { version })
    }

    async fn record_delete(
        &self,
        change: &ChangeEvent,
        key: String,
    ) -> Result<Outcome, BackupError> {
        // Boxed: one more level of futures takes the Lambda's past the compiler's recursion
        // limit.
        Box::pin(self.record_delete_by(change, key, None)).await
    }

    /// [`Self::record_delete`], naming the deleter on a tombstone it writes.
    async fn record_delete_by(
        &self,
        change: &ChangeEvent,
        key: String,
        deleted_by: Option<&str>,
    ) -> Result<Outcome, BackupError> {
        let current = self.current(&key).await?;
        let (outcome, tombstone, known) =
            match delete_for_event(change.event_time, &current.recorded) {
                // Recorded, its marker too unless its tombstone is still the newest entry (an
                // earlier attempt stopped between the two writes).
                DeleteChoice::Duplicate => {
                    match (&current.newest, current.recorded.split_first()) {
                        (Some(f), Some((own, known)))
                            if f.deleted_at == Some(change.event_time) =>
                        {
                            (
                                Outcome::DeleteCompleted,
                                Written {
                                    version_id: Some(own.version_id.clone()),
                                    etag: current.newest_etag.clone(),
                                },
                                known.to_vec(),
                            )
                        }
                        _ => return Ok(Outcome::Duplicate { version: None }),
                    }
                }
                // Whatever S3 holds newest: a delete marker there may be an earlier delete's,
                // processed after a re-creation (see [`decide`]).
                DeleteChoice::Record => {
                    let written = self
                        .put_tombstone(change, &key, deleted_by, &current.recorded)
                        .await?;
                    (Outcome::Deleted, written, current.recorded)
                }
            };
        // A delete processed after a later change of the key was recorded (a re-creation):
        // its marker will be the newest entry while the parameter exists, so the reconcile
        // must be told to look at the key. Before the marker, so that a crash between the two
        // leaves the flag (a flag with no marker only costs the reconcile a look).
        if self
            .live_behind_tombstone(&key, change, &tombstone, known)
            .await?
        {
            self.objects
                .put(NewObject {
                    key: format!("{}{key}", format::LIVE_BEHIND_MARKER_PREFIX),
                    ..NewObject::default()
                })
                .await?;
        }
        let tombstone_etag = tombstone.etag;
        // The marker goes right after its tombstone, or not at all: only while the tombstone
        // is the key's current version. Another writer of the same delete (a duplicate
        // delivery running at once, a completion) may have put its marker first, or a value
        // may have been written since (a re-creation processed meanwhile); a marker then
        // would follow a marker or a value, and readers would take it for a delete of its
        // own, made when it was written.
        match self.objects.delete(&key, tombstone_etag.as_deref()).await? {
            Deleted::Marker(_) => {
                self.marker_written(&key);
                Ok(outcome)
            }
            Deleted::NotCurrent if outcome == Outcome::Deleted => Ok(outcome),
            Deleted::NotCurrent => Ok(Outcome::Duplicate { version: None }),
        }
    }

    /// Whether the key stays live, by event time, after the delete whose tombstone is
    /// `tombstone`: a value at or after the delete's time (readers let a value win its
    /// second) among the key's versions.
    ///
    /// Which versions: every one S3 stored since the delete was made (no version is placed
    /// before its own write, but for the clocks' skew), each placed from `known` (what this
    /// delivery read, newest first) or else from its tags. Not only those below the newest
    /// version `known` names: that version's list of earlier ones misses any version another
    /// invocation wrote between its writer's read and its write (a re-creation's delivery
    /// running at once; seeds 13612, 75995), and when that writer failed before flagging the
    /// key, nothing else would (seed 768845). Page by page: a page may end anywhere.
    async fn live_behind_tombstone(
        &self,
        key: &str,
        change: &ChangeEvent,
        tombstone: &Written,
        mut known: Vec<EarlierVersion>,
    ) -> Result<bool, BackupError> {
        let written_since_ms = (change.event_time - EVENT_SKEW_SECS) * 1000;
        let mut unplaced = Vec::new();
        let mut from = None;
        'pages: loop {
            let page = self
                .objects
                .list_versions(key, from, Some(BEHIND_MARKER_LISTED))
                .await?;
            // The key's versions come first (it sorts before every longer key it prefixes),
            // newest first.
            for (k, v) in &page.versions {
                if k != key || v.last_modified_ms < written_since_ms {
                    break 'pages;
                }
                let id = &v.version_id;
                let placed = Some(id) == tombstone.version_id.as_ref()
                    || known.iter().any(|e| &e.version_id == id);
                if !placed {
                    unplaced.push(id.clone());
                }
            }
            match page.next {
                Some(next) => from = Some(next),
                None => break,
            }
        }
        for id in unplaced {
            let (_, fields) = self.tagged_fields(key, &id).await?;
            known.extend(EarlierVersion::of(&id, &fields));
        }
        // The state after the delete by event time, as readers decide: the latest time
        // wins, and in one second a value beats a delete.
        let later = known
            .iter()
            .filter(|e| e.time >= change.event_time)
            .max_by_key(|e| (e.time, !e.deleted));
        Ok(later.is_some_and(|e| !e.deleted))
    }

    fn marker_written(&self, key: &str) {
        let now = self.objects.now();
        let mut markers = self.markers.lock().unwrap_or_else(|e| e.into_inner());
        // Only the last few seconds matter.
        markers.retain(|_, at| now.duration_since(*at).unwrap_or_default() < MARKER_MEMORY);
        markers.insert(key.to_owned(), now);
    }

    /// Sleeps until a value written now cannot share S3's LastModified second with the delete
    /// marker this process last wrote for `key`.
    async fn wait_for_marker_second(&self, key: &str) {
        let marker = self
            .markers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied();
        if let Some(marker) = marker {
            let until = value_not_before(marker);
            if until > self.objects.now() {
                self.objects.sleep_until(until).await;
            }
        }
    }

    async fn put_tombstone(
        &self,
        change: &ChangeEvent,
        key: &str,
        deleted_by: Option<&str>,
        earlier: &[EarlierVersion],
    ) -> Result<Written, BackupError> {
        let tombstone = BackupRecord::Tombstone {
            name: key.to_owned(),
            event_time: change.event_time,
            param_type: change.param_type,
            deleted_by: deleted_by.map(str::to_owned),
        };
        self.put(&tombstone, earlier).await
    }

    /// Records who deleted a parameter, from CloudTrail's record of the call.
    ///
    /// 1. The delete's tombstone is the one whose delete time is nearest the call's
    ///    (within [`DELETER_WINDOW_SECS`]); only versions written since the call can be it,
    ///    and only empty ones (SSM values are never empty), so few are read, by their tags.
    ///    Found: it gets the deleter's tags, its other tags kept.
    /// 2. None yet (the change event is late, or lost): when SSM confirms the parameter is gone,
    ///    the delete is recorded now, exactly as its change event would record it, with the
    ///    deleter on the tombstone; that event then finds the delete recorded.
    ///
    /// Idempotent: a second delivery finds its own tombstone naming the same deleter.
    pub async fn record_deleter(
        &self,
        deleter: &DeleterEvent,
    ) -> Result<DeleterOutcome, BackupError> {
        let key = format::object_key(&deleter.name);
        if let Some(outcome) = self.tag_tombstone(&key, deleter).await? {
            return Ok(outcome);
        }
        // The parameter exists: re-created since the call (its Create already recorded, or
        // on the way), or the call deleted nothing. A tombstone now would say otherwise.
        if self.history(&deleter.name, &key).await?.is_some() {
            return Ok(DeleterOutcome::StillExists);
        }
        let change = ChangeEvent {
            name: deleter.name.clone(),
            operation: Operation::Delete,
            event_time: deleter.event_time,
            param_type: None,
        };
        match self
            .record_delete_by(&change, key.clone(), Some(&deleter.deleted_by))
            .await?
        {
            Outcome::Deleted => Ok(DeleterOutcome::Deleted),
            // The bucket already said "deleted": the change event may have written this
            // delete's tombstone meanwhile (another invocation), so look once more.
            _ => Ok(self
                .tag_tombstone(&key, deleter)
                .await?
                .unwrap_or(DeleterOutcome::NoTombstone)),
        }
    }

    /// Tags the tombstone of `deleter`'s delete; `None` when there is none.
    async fn tag_tombstone(
        &self,
        key: &str,
        deleter: &DeleterEvent,
    ) -> Result<Option<DeleterOutcome>, BackupError> {
        let found = self.tombstones_near(key, deleter.event_time).await?;
        let times: Vec<Option<i64>> = found.iter().map(|t| t.fields.deleted_at).collect();
        let tombstone = match pick_tombstone(&times, deleter.event_time) {
            Pick::None => return Ok(None),
            Pick::Ambiguous => return Ok(Some(DeleterOutcome::Ambiguous)),
            Pick::One(i) => &found[i],
        };
        match tombstone.fields.deleted_by.as_deref() {
            Some(by) if by == deleter.deleted_by => return Ok(Some(DeleterOutcome::Duplicate)),
            Some(_) => return Ok(Some(DeleterOutcome::Conflict)),
            None => {}
        }
        // Its other tags are kept: PutObjectTagging replaces the whole set. Stray parts of a
        // deleter (none is whole, or it would have been read) are replaced.
        let kept: Vec<(String, String)> = tombstone
            .tags
            .iter()
            .filter(|(k, _)| !format::is_deleted_by_tag(k))
            .cloned()
            .collect();
        let Some(by) = format::deleted_by_tags(&deleter.deleted_by, kept.len()) else {
            return Ok(Some(DeleterOutcome::TooLong));
        };
        let tags = kept.into_iter().chain(by).collect();
        self.objects
            .put_tags(key, &tombstone.version_id, tags)
            .await?;
        Ok(Some(DeleterOutcome::Tagged))
    }

    /// The tombstones of `key` that can record a delete made at `event_time`: written since
    /// then (allowing for the clocks), with a delete time within [`DELETER_WINDOW_SECS`].
    async fn tombstones_near(
        &self,
        key: &str,
        event_time: i64,
    ) -> Result<Vec<FoundTombstone>, BackupError> {
        let since = event_time - DELETER_WINDOW_SECS;
        let mut candidates = Vec::new();
        let mut from = None;
        // Keys sort before their extensions (`/a` < `/a/b`), so this key's versions come
        // first, newest first; the listing stops at the first older one or another key.
        'pages: loop {
            let page = self.objects.list_versions(key, from, None).await?;
            for (listed_key, v) in &page.versions {
                if listed_key != key {
                    break 'pages;
                }
                if v.last_modified_ms.div_euclid(1000) < since {
                    break 'pages;
                }
                if v.size == 0 {
                    candidates.push(v.version_id.clone());
                }
            }
            from = page.next;
            if from.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for version_id in candidates {
            let (tags, fields) = self.tagged_fields(key, &version_id).await?;
            if fields
                .deleted_at
                .is_some_and(|at| (at - event_time).abs() <= DELETER_WINDOW_SECS)
            {
                found.push(FoundTombstone {
                    version_id,
                    fields,
                    tags,
                });
            }
        }
        Ok(found)
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

    /// The key's current object (the newest version, unless a delete marker is newer) and the
    /// facts known about its recorded versions.
    async fn current(&self, key: &str) -> Result<Current, BackupError> {
        let Some(head) = self.objects.head(key, None).await? else {
            return Ok(Current {
                newest: None,
                newest_etag: None,
                recorded: self.recorded_behind_marker(key).await?,
            });
        };
        let fields = StoredFields::read(
            [],
            head.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|source| self.unreadable(key, source))?;
        let recorded = earlier::after(head.version_id.as_deref().unwrap_or_default(), &fields);
        Ok(Current {
            newest: Some(fields),
            newest_etag: head.etag,
            recorded,
        })
    }

    /// The place in time of the newest version of `key` that is not a delete marker (none, or
    /// not found on the listing's first page: nothing known). Read from its tags: whether the
    /// newest marker hides a recorded delete or a re-creation processed before it, only the
    /// event times can say.
    async fn recorded_behind_marker(&self, key: &str) -> Result<Vec<EarlierVersion>, BackupError> {
        // Keys sort before their extensions (`/a` < `/a/b` < `/ab`), so the first entries of a
        // prefix listing are this key's own, newest first; versions and markers come in two
        // lists, so the first version of the key is its newest that is not a marker.
        let page = self
            .objects
            .list_versions(key, None, Some(BEHIND_MARKER_LISTED))
            .await?;
        let newest = page.versions.iter().find(|(k, _)| k == key);
        let Some((_, newest)) = newest else {
            return Ok(Vec::new());
        };
        let version_id = &newest.version_id;
        let (_, fields) = self.tagged_fields(key, version_id).await?;
        Ok(EarlierVersion::of(version_id, &fields)
            .into_iter()
            .collect())
    }

    /// The tags of one version of `key`, and the fields they give.
    async fn tagged_fields(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<(Vec<(String, String)>, StoredFields), BackupError> {
        let tags = self.objects.tags(key, version_id).await?;
        let fields = StoredFields::read(crate::reader::pairs(&tags), [])
            .map_err(|source| self.unreadable(key, source))?;
        Ok((tags, fields))
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
        let entry = written.version_id.as_ref().and_then(|id| record.place(id));
        if let Some(entry) = entry {
            self.objects
                .put(NewObject {
                    key: index::entry_key(&key, &entry),
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

/// The record of history entry `h` of `key`, with `extras`, at `event_time`.
fn value_record(key: &str, h: &HistoryVersion, extras: Extras, event_time: i64) -> BackupRecord {
    let mut snapshot = h.snapshot.clone();
    snapshot.name = key.to_owned();
    snapshot.attributes.set_extras(extras);
    BackupRecord::Value {
        event_time,
        snapshot,
    }
}

/// How far S3's clock may be from ours: Lambda and S3 both keep time with the Amazon Time Sync
/// Service, within milliseconds of each other; a quarter second leaves a wide margin.
const CLOCK_MARGIN: Duration = Duration::from_millis(250);

/// Which of a key's tombstones records a delete made at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    None,
    /// The index of the one nearest in time.
    One(usize),
    /// Several are equally near: none is picked.
    Ambiguous,
}

/// The tombstone (by delete time; `None`: not a tombstone) that records a delete made at
/// `event_time`: the nearest within [`DELETER_WINDOW_SECS`], when only one is that near.
pub fn pick_tombstone(deleted_at: &[Option<i64>], event_time: i64) -> Pick {
    let distance = |at: &Option<i64>| {
        at.map(|at| (at - event_time).abs())
            .filter(|d| *d <= DELETER_WINDOW_SECS)
    };
    let Some(nearest) = deleted_at.iter().filter_map(distance).min() else {
        return Pick::None;
    };
    let mut nearest_ones =
        (0..deleted_at.len()).filter(|&i| distance(&deleted_at[i]) == Some(nearest));
    match (nearest_ones.next(), nearest_ones.next()) {
        (Some(i), None) => Pick::One(i),
        _ => Pick::Ambiguous,
    }
}

/// How many entries the listing behind a delete marker looks at: a key's entries alternate
/// tombstone and marker, so its newest version is among the first few.
const BEHIND_MARKER_LISTED: i32 = 20;

/// How long a written delete marker is remembered: longer than any wait it can cause.
const MARKER_MEMORY: Duration = Duration::from_secs(5);

/// The earliest time at which a value version can be written after a delete marker written
/// (by our clock) at `marker`, so that its LastModified second is later than the marker's even
/// with either clock off by `CLOCK_MARGIN`.
pub fn value_not_before(marker: SystemTime) -> SystemTime {
    let latest_marker_second = (marker + CLOCK_MARGIN)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(latest_marker_second + 1) + CLOCK_MARGIN
}

#[cfg(test)]
mod tests {
    use super::{pick_tombstone, value_not_before, Pick, CLOCK_MARGIN};

    #[test]
    fn the_tombstone_a_cloudtrail_delete_record_names() {
        let t = 1_700_000_000_i64;
        // (what, tombstones' delete times, expected)
        let cases: [(&str, Vec<Option<i64>>, Pick); 7] = [
            ("none", vec![], Pick::None),
            ("not a tombstone", vec![None], Pick::None),
            ("the same second", vec![Some(t)], Pick::One(0)),
            ("a second apart", vec![Some(t + 1)], Pick::One(0)),
            ("too far: another delete's", vec![Some(t - 6)], Pick::None),
            (
                "deleted, re-created, deleted: the nearer",
                vec![Some(t + 4), Some(t)],
                Pick::One(1),
            ),
            (
                "two as near: never a guess",
                vec![Some(t - 1), Some(t + 1)],
                Pick::Ambiguous,
            ),
        ];
        for (what, times, expected) in cases {
            assert_eq!(pick_tombstone(&times, t), expected, "{what}");
        }
    }

    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_value_after_a_marker_waits_for_a_later_second_on_any_clock() {
        // Marker written at every point of a second, S3's clock ahead or behind by up to the
        // margin: the value's S3 second is always later than the marker's.
        let skews = [-250_i64, -100, 0, 100, 250];
        for marker_ms in (1_700_000_000_000_i64..1_700_000_002_000).step_by(7) {
            let marker = UNIX_EPOCH + Duration::from_millis(marker_ms as u64);
            let value = value_not_before(marker);
            let value_ms = value
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default();
            assert!(value_ms - marker_ms <= 1000 + 2 * CLOCK_MARGIN.as_millis() as i64);
            for a in skews {
                for b in skews {
                    assert!(
                        (value_ms + b).div_euclid(1000) > (marker_ms + a).div_euclid(1000),
                        "marker {marker_ms} skew {a}, value {value_ms} skew {b}"
                    );
                }
            }
        }
    }
}
