//! The scheduled reconcile ([`ssmbak_core::reconcile`]), logged and measured: one summary
//! line and one CloudWatch embedded-metric line per run ([`crate::metrics`]).

use std::time::Instant;

use ssmbak_core::backup::Backup;
pub use ssmbak_core::reconcile::ReconcileSummary;
use tracing::info;

use crate::metrics;

/// Repairs what is missing under `paths` (all parameters when empty); starts nothing new
/// after `stop_by`.
pub async fn reconcile(
    backup: &Backup,
    paths: &[String],
    stop_by: Option<Instant>,
) -> Result<ReconcileSummary, String> {
    let summary = ssmbak_core::reconcile::run(backup, paths, stop_by).await?;
    info!(
        checked = summary.checked,
        repaired = summary.repaired,
        removed = summary.removed,
        failed = summary.failed,
        deferred = summary.deferred,
        incomplete = summary.incomplete,
        outcome = "reconciled",
        "reconcile done"
    );
    metrics::emit(&[
        ("ReconcileChecked", summary.checked),
        ("ReconcileRepaired", summary.repaired),
        ("ReconcileRemoved", summary.removed),
        ("ReconcileFailed", summary.failed),
        ("ReconcileDeferred", summary.deferred),
        ("ReconcileIncomplete", usize::from(summary.incomplete)),
    ]);
    Ok(summary)
}
