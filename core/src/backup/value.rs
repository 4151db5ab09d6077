//! Recording a value: the SSM version a change event stands for, its tags and labels, and any
//! version before it whose event was lost.

use super::decide::{unrecorded_before, version_for_event, Choice};
use super::{Backup, BackupError, ChangeEvent, Operation, Outcome};
use crate::format::{BackupRecord, Extras};
use crate::store::HistoryVersion;

impl Backup {
    pub(super) async fn record_value(
        &self,
        change: &ChangeEvent,
        key: String,
    ) -> Result<Outcome, BackupError> {
        let Some(history) = self.history(&change.name, &key).await? else {
            return Ok(Outcome::DeletedBeforeBackup);
        };
        let mut current = self.current(&key).await?;
        let dates: Vec<(i64, Option<i64>)> = history
            .iter()
            .map(|h| (h.version(), h.last_modified_ms()))
            .collect();
        let versions: Vec<i64> = dates.iter().map(|(v, _)| *v).collect();
        self.date_records(&key, &mut current.recorded, &versions)
            .await?;
        let latest = current.latest_value();
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
