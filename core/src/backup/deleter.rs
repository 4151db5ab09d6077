//! Who deleted a parameter: CloudTrail's record of the call, put on the delete's tombstone.

use super::{Backup, BackupError, ChangeEvent, Operation, Outcome};
use crate::format::{self, StoredFields};

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
pub(super) struct FoundTombstone {
    version_id: String,
    fields: StoredFields,
    tags: Vec<(String, String)>,
}

impl Backup {
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
    pub(super) async fn tag_tombstone(
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
    pub(super) async fn tombstones_near(
        &self,
        key: &str,
        event_time: i64,
    ) -> Result<Vec<FoundTombstone>, BackupError> {
        let since = event_time - DELETER_WINDOW_SECS;
        let written_since = self
            .versions_while(key, |v| v.last_modified_ms.div_euclid(1000) >= since)
            .await?;
        let candidates = written_since
            .into_iter()
            .filter(|v| v.size == 0)
            .map(|v| v.version_id);
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
}

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

#[cfg(test)]
mod tests {
    use super::{pick_tombstone, Pick};

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
}
