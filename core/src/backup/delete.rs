//! Recording a delete: its tombstone, the live-behind-marker flag when a later change of the
//! key is recorded already, then its delete marker, only over its own tombstone.

use super::decide::{delete_for_event, DeleteChoice, EVENT_SKEW_SECS};
use super::{Backup, BackupError, ChangeEvent, Outcome};
use crate::format::{self, BackupRecord, EarlierVersion};
use crate::store::{Deleted, NewObject, Written};

impl Backup {
    pub(super) async fn record_delete(
        &self,
        change: &ChangeEvent,
        key: String,
    ) -> Result<Outcome, BackupError> {
        // Boxed: one more level of futures takes the Lambda's past the compiler's recursion
        // limit.
        Box::pin(self.record_delete_by(change, key, None)).await
    }

    /// [`Self::record_delete`], naming the deleter on a tombstone it writes.
    pub(super) async fn record_delete_by(
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
    pub(super) async fn live_behind_tombstone(
        &self,
        key: &str,
        change: &ChangeEvent,
        tombstone: &Written,
        mut known: Vec<EarlierVersion>,
    ) -> Result<bool, BackupError> {
        let written_since_ms = (change.event_time - EVENT_SKEW_SECS) * 1000;
        let written_since = self
            .versions_while(key, |v| v.last_modified_ms >= written_since_ms)
            .await?;
        let unplaced: Vec<String> = written_since
            .into_iter()
            .map(|v| v.version_id)
            .filter(|id| {
                Some(id) != tombstone.version_id.as_ref()
                    && !known.iter().any(|e| &e.version_id == id)
            })
            .collect();
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

    pub(super) async fn put_tombstone(
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
}
