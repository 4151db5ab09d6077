//! The scheduled reconcile: SSM delivers change events best-effort, so on a schedule the
//! Lambda backs up every parameter whose current version the bucket does not hold, with the
//! same code as `cargo xtask seed-all`.

use std::time::Instant;

use serde::Serialize;
use ssmbak_core::backup::{Backup, Outcome};
use ssmbak_core::bounded::map_in_order;
use ssmbak_core::seed;
use tracing::{error, info, warn};

/// Parameters checked at once.
const CONCURRENCY: usize = 8;

/// What one reconcile run did; also the invocation's response.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub checked: usize,
    pub repaired: usize,
    pub failed: usize,
    /// Parameters left for the next run because the invocation was running out of time.
    pub deferred: usize,
}

/// Backs up what is missing under `paths` (all parameters when empty); starts nothing new
/// after `stop_by`.
pub async fn reconcile(
    backup: &Backup,
    paths: &[String],
    stop_by: Option<Instant>,
) -> Result<Summary, String> {
    let params = seed::list(backup.ssm(), paths)
        .await
        .map_err(|e| e.to_string())?;
    let outcomes: Vec<Option<Result<Option<Outcome>, String>>> = map_in_order(&params, CONCURRENCY, |p| async move {
            if stop_by.is_some_and(|t| Instant::now() >= t) {
                return None;
            }
            let result = async {
                if seed::is_backed_up(backup, p).await? {
                    return Ok(None);
                }
                seed::back_up(backup, p).await.map(Some)
            }
            .await;
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
    let mut summary = Summary::default();
    for o in outcomes {
        match o {
            None => summary.deferred += 1,
            Some(Ok(Some(Outcome::Stored { .. }))) => {
                summary.checked += 1;
                summary.repaired += 1;
            }
            Some(Ok(_)) => summary.checked += 1,
            Some(Err(_)) => {
                summary.checked += 1;
                summary.failed += 1;
            }
        }
    }
    info!(
        checked = summary.checked,
        repaired = summary.repaired,
        failed = summary.failed,
        deferred = summary.deferred,
        outcome = "reconciled",
        "reconcile done"
    );
    Ok(summary)
}
