//! The scheduled reconcile: SSM delivers change events best-effort ("Events are emitted on a
//! best effort basis", SSM User Guide, Parameter Store events), so on a schedule the Lambda
//! repairs what the events missed.
//!
//! # What it repairs
//!
//! * A parameter whose current version the bucket does not hold (a lost Create or Update):
//!   backed up as of its LastModifiedDate, with the same code as `cargo xtask seed-all`.
//! * A key whose newest backup is a value while the parameter no longer exists (a lost Delete,
//!   or an expiry whose Policy Action event was lost): recorded as deleted once SSM confirms it
//!   is gone ([`Operation::Removed`]), at the time the reconcile found it gone, by S3's clock
//!   ([`Backup::s3_now_secs`]: after SSM listed it gone, before SSM confirms it). The delete's
//!   own time is unknown; the detection time is the honest bound: the parameter surely
//!   existed when its last backup was made and was surely gone by then, so a restore to a time
//!   in between may bring back a value that had already been deleted, never lose one.
//!   The keys looked at are those whose newest S3 entry is not a delete marker
//!   (`ListObjectsV2`), and those the writer flagged as live behind one (an earlier delete
//!   processed after a re-creation, see [`crate::format::LIVE_BEHIND_MARKER_PREFIX`]); a
//!   flag comes down once the delete it waited for is recorded.
//!
//! # Every parameter, eventually
//!
//! Parameters are checked in name order starting just after the last one the previous run
//! checked (remembered in the bucket, [`crate::format::RECONCILE_CURSOR_KEY`]), wrapping around, so each parameter is
//! checked at least once every `ceil(parameters / checked per run)` runs however many there
//! are. Listing SSM and the bucket also stops at the deadline: a run that cannot list
//! everything checks nothing and says so (`incomplete`).
//!
//! # Visibly
//!
//! Each run returns a [`ReconcileSummary`]; the Lambda logs it as one CloudWatch
//! embedded-metric line, and the template alarms when a run fails to check something, cannot
//! list everything, or defers work every run.

use std::collections::BTreeSet;
use std::time::Instant;

use tracing::{error, warn};

use crate::backup::{Backup, ChangeEvent, Operation, Outcome};
use crate::bounded::map_in_order;
use crate::format::object_key;
use crate::seed::{self, ListedParameter};

/// Parameters checked at once.
const CONCURRENCY: usize = 8;

/// What one reconcile run did; also the invocation's response.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileSummary {
    pub checked: usize,
    pub repaired: usize,
    /// Deletes the events missed, now recorded.
    pub removed: usize,
    pub failed: usize,
    /// Parameters left for the next run because the invocation was running out of time.
    pub deferred: usize,
    /// The listing of SSM or of the bucket did not finish in time: nothing was checked.
    pub incomplete: bool,
}

/// Repairs what is missing under `paths` (all parameters when empty); starts nothing new
/// after `stop_by`.
pub async fn run(
    backup: &Backup,
    paths: &[String],
    stop_by: Option<Instant>,
) -> Result<ReconcileSummary, String> {
    let past = || stop_by.is_some_and(|t| Instant::now() >= t);
    let Some(params) = seed::list_within(backup.parameters(), paths, stop_by)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(incomplete());
    };
    let Some((keys, flagged)) = current_keys(backup, paths, stop_by).await? else {
        return Ok(incomplete());
    };
    let mut summary = ReconcileSummary::default();

    let vanished = vanished(&keys, &params);
    // S3's clock, read after SSM listed them gone and before each is confirmed gone.
    let now = match vanished.is_empty() {
        true => 0,
        false => backup.s3_now_secs().await.map_err(|e| e.to_string())?,
    };
    for key in vanished {
        if past() {
            summary.deferred += 1;
            continue;
        }
        let change = ChangeEvent {
            name: name_of_key(&key),
            operation: Operation::Removed,
            event_time: now,
            param_type: None,
        };
        let outcome = backup.apply(&change).await;
        if matches!(&outcome, Ok(o) if *o != Outcome::StillExists) && flagged.contains(&key) {
            if let Err(e) = backup.unflag_live_behind_marker(&key).await {
                // Flagged still: the next run looks again, and finds the delete recorded.
                error!(name = %key, error = %e, outcome = "failed", "could not take down a live-behind-marker flag");
                summary.failed += 1;
            }
        }
        match outcome {
            Ok(Outcome::Deleted | Outcome::DeleteCompleted) => {
                warn!(name = %key, deleted_at = now, outcome = "removed", "a delete the events missed, recorded at the time it was found");
                summary.removed += 1;
            }
            Ok(_) => {}
            Err(e) => {
                error!(name = %key, error = %e, outcome = "failed", "reconcile could not record a delete");
                summary.failed += 1;
            }
        }
    }

    let cursor = backup.reconcile_cursor().await;
    let order = rotate(&params, cursor.as_deref());
    let outcomes: Vec<Option<Result<Option<Outcome>, String>>> = map_in_order(&order, CONCURRENCY, |p| async move {
            if past() {
                return None;
            }
            let result = seed::ensure(backup, p, false).await;
            match &result {
                Ok(Some(Outcome::Stored { version })) => {
                    warn!(name = %p.name, ssm_version = version, outcome = "repaired", "a change the events missed, backed up")
                }
                Err(e) => error!(name = %p.name, error = %e, outcome = "failed", "reconcile could not back up"),
                _ => {}
            }
            Some(result.map_err(|e| e.to_string()))
        })
        .await;
    let mut last_checked = None;
    for (p, o) in order.iter().zip(&outcomes) {
        match o {
            None => summary.deferred += 1,
            Some(result) => {
                summary.checked += 1;
                last_checked = Some(p.name.as_str());
                match result {
                    Ok(Some(Outcome::Stored { .. })) => summary.repaired += 1,
                    Ok(_) => {}
                    Err(_) => summary.failed += 1,
                }
            }
        }
    }
    // A full lap starts the next run from the beginning; a partial one where it stopped.
    let next = if summary.deferred == 0 {
        ""
    } else {
        last_checked.unwrap_or(cursor.as_deref().unwrap_or_default())
    };
    let unchanged = next == cursor.as_deref().unwrap_or_default();
    if unchanged {
        return Ok(summary);
    }
    if let Err(e) = backup.set_reconcile_cursor(next).await {
        // The next run then starts from the previous cursor: it checks again, never skips.
        error!(error = %e, outcome = "failed", "could not save where the reconcile stopped");
        summary.failed += 1;
    }
    Ok(summary)
}

fn incomplete() -> ReconcileSummary {
    error!(
        outcome = "incomplete",
        "the reconcile could not list everything before its deadline; raise the function's timeout"
    );
    ReconcileSummary {
        incomplete: true,
        ..ReconcileSummary::default()
    }
}

/// The parameters in the order this run checks them: by name, starting just after `cursor`
/// (the last one the previous run checked), wrapping around.
pub fn rotate<'a>(params: &'a [ListedParameter], cursor: Option<&str>) -> Vec<&'a ListedParameter> {
    let start = cursor
        .filter(|c| !c.is_empty())
        .map_or(0, |c| params.partition_point(|p| p.name.as_str() <= c));
    params[start..].iter().chain(&params[..start]).collect()
}

/// Keys whose newest backup is a value (the bucket's current objects) while SSM lists no such
/// parameter.
pub fn vanished(keys: &[String], params: &[ListedParameter]) -> Vec<String> {
    let present: BTreeSet<String> = params.iter().map(|p| object_key(&p.name)).collect();
    keys.iter()
        .filter(|k| !present.contains(*k))
        .cloned()
        .collect()
}

/// The parameter name a key was written for: the key itself, or for a root-level key, also the
/// name without its slash (events name those without it; see `format::object_key`).
fn name_of_key(key: &str) -> String {
    let bare = key.trim_start_matches('/');
    if bare.contains('/') {
        key.to_owned()
    } else {
        bare.to_owned()
    }
}

/// The keys under `paths` whose newest backup may be a value: the bucket's current objects
/// (keys whose newest write is not a delete marker) and the keys flagged as live behind a
/// marker (the second list); `None` when `stop_by` passed first.
async fn current_keys(
    backup: &Backup,
    paths: &[String],
    stop_by: Option<Instant>,
) -> Result<Option<(Vec<String>, BTreeSet<String>)>, String> {
    let prefixes: Vec<String> = if paths.is_empty() {
        vec!["/".to_owned()]
    } else {
        paths
            .iter()
            .map(|p| format!("{}/", object_key(p.trim_end_matches('/'))))
            .collect()
    };
    let mut keys = Vec::new();
    let mut flagged = BTreeSet::new();
    for prefix in prefixes {
        let current = backup.current_keys(&prefix, stop_by);
        let flags = backup.live_behind_marker(&prefix, stop_by);
        match (
            current.await.map_err(|e| e.to_string())?,
            flags.await.map_err(|e| e.to_string())?,
        ) {
            (Some(found), Some(flags)) => {
                keys.extend(found);
                flagged.extend(flags);
            }
            _ => return Ok(None),
        }
    }
    keys.extend(flagged.iter().cloned());
    keys.sort();
    keys.dedup();
    Ok(Some((keys, flagged)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[&str]) -> Vec<ListedParameter> {
        names
            .iter()
            .map(|n| ListedParameter {
                name: (*n).to_owned(),
                version: 1,
                last_modified_ms: 0,
            })
            .collect()
    }

    fn names(order: Vec<&ListedParameter>) -> Vec<&str> {
        order.into_iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn each_run_starts_after_the_last_one_checked() {
        let params = listed(&["/a", "/b", "/c", "/d"]);
        assert_eq!(names(rotate(&params, None)), ["/a", "/b", "/c", "/d"]);
        assert_eq!(names(rotate(&params, Some(""))), ["/a", "/b", "/c", "/d"]);
        assert_eq!(names(rotate(&params, Some("/b"))), ["/c", "/d", "/a", "/b"]);
        // The cursor's parameter was deleted since: start at the next name.
        assert_eq!(
            names(rotate(&params, Some("/bb"))),
            ["/c", "/d", "/a", "/b"]
        );
        assert_eq!(names(rotate(&params, Some("/d"))), ["/a", "/b", "/c", "/d"]);
    }

    #[test]
    fn every_parameter_is_checked_within_a_bounded_number_of_runs() {
        // Whatever the number of parameters and however many a run gets through, a lap of
        // ceil(n / per_run) runs checks every one of them.
        for n in 1..30_usize {
            let all: Vec<String> = (0..n).map(|i| format!("/p{i:03}")).collect();
            let params = listed(&all.iter().map(String::as_str).collect::<Vec<_>>());
            for per_run in 1..=n {
                let mut cursor = String::new();
                let mut seen = BTreeSet::new();
                for _ in 0..n.div_ceil(per_run) {
                    let order = rotate(&params, Some(&cursor));
                    let checked = &order[..per_run.min(order.len())];
                    seen.extend(checked.iter().map(|p| p.name.clone()));
                    cursor = checked.last().map(|p| p.name.clone()).unwrap_or_default();
                }
                assert_eq!(seen.len(), n, "n {n}, {per_run} per run");
            }
        }
    }

    #[test]
    fn keys_without_a_parameter_have_vanished() {
        let keys = ["/app/a", "/app/gone", "/root", "/rootgone"].map(str::to_owned);
        // A root-level parameter may be listed without its slash.
        let params = listed(&["/app/a", "root", "/app/new"]);
        assert_eq!(vanished(&keys, &params), ["/app/gone", "/rootgone"]);
        assert_eq!(name_of_key("/rootgone"), "rootgone");
        assert_eq!(name_of_key("/app/gone"), "/app/gone");
    }
}
