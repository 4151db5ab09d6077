//! One SQS batch: parse every record, back up the changes, report the failures.
//!
//! Records are independent: a bad or failing record is reported in `batchItemFailures`, so
//! SQS redelivers it (and, after the queue's redrive count, moves it to the dead-letter queue)
//! while every other record of the batch is deleted as done. Changes to different parameters
//! run concurrently; changes to one parameter run one after another in event order, so the
//! duplicate check sees the previous write. CloudTrail's delete records (who deleted it) join
//! their parameters' queues the same way, after a change event of the same second, so a
//! delete's change event, when both are in one batch, writes the tombstone the record then
//! tags. A `DeleteParameters` record names up to ten parameters: it is done when all of them
//! are, and retried whole otherwise (each part is idempotent).

use std::collections::BTreeMap;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt};
use ssmbak_core::backup::{Backup, ChangeEvent, DeleterEvent, DeleterOutcome, Outcome};
use ssmbak_core::format::object_key;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::event::{self, Parsed};
use crate::metrics;

/// At most this many parameters are backed up at once (a batch holds at most 10 records
/// unless a batching window is configured).
const CONCURRENCY: usize = 10;

/// A batch whose failures cannot be reported record by record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a record of the batch has no messageId, so the batch fails as a whole")]
pub struct NoMessageId;

/// One thing to do for one parameter.
#[derive(Debug, Clone)]
enum Work {
    Change(ChangeEvent),
    Deleter(DeleterEvent),
}

impl Work {
    /// The order of one parameter's work: by event time, a change before a deleter record.
    fn order(&self) -> (i64, bool) {
        match self {
            Work::Change(c) => (c.event_time, false),
            Work::Deleter(d) => (d.event_time, true),
        }
    }

    fn name(&self) -> &str {
        match self {
            Work::Change(c) => &c.name,
            Work::Deleter(d) => &d.name,
        }
    }
}

/// Backs up every record of `batch`; returns the ids of the records to retry.
///
/// Nothing runs past `stop_by` (a little before the invocation's deadline): a record still
/// in flight then, retries and all, is given up and reported failed with the ones not started,
/// so the invocation answers in time. A timed-out invocation would count a receive against
/// every record of the batch, done ones included, and push good records toward the
/// dead-letter queue.
pub async fn handle_batch(
    backup: &Backup,
    batch: SqsEvent,
    stop_by: Instant,
) -> Result<SqsBatchResponse, NoMessageId> {
    let mut failed: Vec<String> = Vec::new();
    // Key -> [(message id, work)], so one parameter's changes stay in order.
    let mut by_key: BTreeMap<String, Vec<(String, Work)>> = BTreeMap::new();
    for record in batch.records {
        let SqsMessage {
            message_id, body, ..
        } = record;
        let id = message_id.filter(|id| !id.is_empty()).ok_or(NoMessageId)?;
        match event::parse(body.as_deref()) {
            Ok(Parsed::ChangeEvent(change)) => by_key
                .entry(object_key(&change.name))
                .or_default()
                .push((id, Work::Change(change))),
            Ok(Parsed::Deleters(deleters)) => {
                for deleter in deleters {
                    by_key
                        .entry(object_key(&deleter.name))
                        .or_default()
                        .push((id.clone(), Work::Deleter(deleter)));
                }
            }
            Ok(Parsed::Skip { name, operation }) => {
                info!(message_id = %id, name = %name, operation = %operation, outcome = "skipped", "not a value change");
            }
            Err(e) => {
                error!(message_id = %id, body_bytes = body.as_ref().map_or(0, String::len), error = %e, outcome = "failed", "malformed record");
                failed.push(id);
            }
        }
    }

    let groups = by_key.into_values().map(|mut changes| {
        changes.sort_by_key(|(_, w)| w.order());
        async move {
            let (mut failed, mut unmatched) = (Vec::new(), 0);
            let mut out_of_time = false;
            for (id, work) in changes {
                if !out_of_time {
                    // Some(unmatched) when done, None when failed.
                    let attempt = async {
                        match &work {
                            Work::Change(change) => back_up(backup, &id, change)
                                .await
                                .map(|o| o == Outcome::NoVersionAtEventTime),
                            Work::Deleter(deleter) => {
                                record_deleter(backup, &id, deleter).await.map(|()| false)
                            }
                        }
                    };
                    match tokio::time::timeout_at(stop_by, attempt).await.ok() {
                        // One parameter's changes go in event order: the rest wait for SQS.
                        None => out_of_time = true,
                        Some(None) => failed.push(id.clone()),
                        Some(Some(true)) => unmatched += 1,
                        Some(Some(false)) => {}
                    }
                }
                if out_of_time {
                    warn!(message_id = %id, name = %work.name(), outcome = "failed", "out of time for this invocation; SQS will redeliver");
                    failed.push(id);
                }
            }
            (failed, unmatched)
        }
    });
    let group_results: Vec<(Vec<String>, usize)> = stream::iter(groups)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut unmatched = 0;
    for (group_failed, group_unmatched) in group_results {
        failed.extend(group_failed);
        unmatched += group_unmatched;
    }
    if unmatched > 0 {
        // A change the bucket does not hold, with nothing left to retry: an alarm's business.
        metrics::emit(&[("UnmatchedRecords", unmatched)]);
    }

    // A DeleteParameters record may have failed for several parameters.
    failed.sort();
    failed.dedup();
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    Ok(response)
}

/// Records one deleter and logs one line about it; `None` when it failed.
async fn record_deleter(backup: &Backup, id: &str, deleter: &DeleterEvent) -> Option<()> {
    let name = object_key(&deleter.name);
    // The ARN names a person or role, not a secret: it is what the log is for.
    match backup.record_deleter(deleter).await {
        Ok(outcome) => {
            match outcome {
                // Recorded nowhere: worth a look, never a retry (it would find the same).
                DeleterOutcome::Conflict | DeleterOutcome::Ambiguous | DeleterOutcome::TooLong => {
                    warn!(
                        message_id = %id, name = %name, operation = "DeletedBy", event_time = deleter.event_time,
                        deleted_by = %deleter.deleted_by, outcome = outcome.as_str(), "deleter not recorded: it stays unknown"
                    )
                }
                _ => info!(
                    message_id = %id, name = %name, operation = "DeletedBy", event_time = deleter.event_time,
                    deleted_by = %deleter.deleted_by, outcome = outcome.as_str(), "deleter recorded or checked"
                ),
            }
            Some(())
        }
        Err(e) => {
            error!(
                message_id = %id, name = %name, operation = "DeletedBy", event_time = deleter.event_time,
                code = e.code(), error = %e, outcome = "failed", "recording the deleter failed; SQS will redeliver"
            );
            None
        }
    }
}

/// Backs up one change and logs one line about it; `None` when it failed.
async fn back_up(backup: &Backup, id: &str, change: &ChangeEvent) -> Option<Outcome> {
    let name = object_key(&change.name);
    let operation = change.operation.as_str();
    match backup.apply(change).await {
        Ok(outcome) => {
            let version = match &outcome {
                Outcome::Stored { version } => Some(*version),
                Outcome::Duplicate { version } => *version,
                _ => None,
            };
            match &outcome {
                Outcome::StillExists => info!(
                    message_id = %id, name = %name, operation, event_time = change.event_time,
                    outcome = outcome.as_str(), "nothing to record: SSM still has the parameter"
                ),
                Outcome::NoVersionAtEventTime => error!(
                    message_id = %id, name = %name, operation, event_time = change.event_time,
                    outcome = outcome.as_str(), "no SSM version matches the event's time: this change is not in the bucket"
                ),
                Outcome::DeletedBeforeBackup => warn!(
                    message_id = %id, name = %name, operation, event_time = change.event_time,
                    outcome = outcome.as_str(), "nothing to back up: the parameter changed or went away before this record was processed"
                ),
                _ => info!(
                    message_id = %id, name = %name, operation, event_time = change.event_time,
                    ssm_version = version, outcome = outcome.as_str(), "backed up"
                ),
            }
            Some(outcome)
        }
        Err(e) => {
            error!(
                message_id = %id, name = %name, operation, event_time = change.event_time,
                code = e.code(), error = %e, outcome = "failed", "backup failed; SQS will redeliver"
            );
            None
        }
    }
}
