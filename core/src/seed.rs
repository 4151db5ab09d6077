//! Back up what already exists: every parameter (or those under some paths) whose current
//! version the bucket does not hold yet (or whose tags changed since). `cargo xtask seed-all` and the Lambda's scheduled
//! reconcile both run this, through the same [`Backup`] as every change event.

use crate::backup::{Backup, BackupError, ChangeEvent, Held, Operation, Outcome};
pub use crate::store::ListedParameter;
use crate::store::ParameterStore;

/// Every parameter, or those under `paths` (each a path: `/app` covers `/app/x`, never
/// `/application`).
pub async fn list(
    ssm: &dyn ParameterStore,
    paths: &[String],
) -> Result<Vec<ListedParameter>, BackupError> {
    Ok(list_within(ssm, paths, None).await?.unwrap_or_default())
}

/// [`list`], giving up (`None`) when `stop_by` passes before the last page.
pub async fn list_within(
    ssm: &dyn ParameterStore,
    paths: &[String],
    stop_by: Option<std::time::Instant>,
) -> Result<Option<Vec<ListedParameter>>, BackupError> {
    let mut out = Vec::new();
    let mut next_token = None;
    loop {
        let page = ssm.describe(paths, next_token).await?;
        if stop_by.is_some_and(|t| std::time::Instant::now() >= t) {
            return Ok(None);
        }
        out.extend(page.parameters);
        next_token = page.next_token;
        if next_token.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(out))
}

/// Backs up `p` unless the bucket records its current version already (`None` then: by version
/// number *and* LastModifiedDate, since a re-created parameter counts from 1 again); with
/// `dry_run`, only says what it would store. The step seed-all and the scheduled reconcile
/// share.
pub async fn ensure(
    backup: &Backup,
    p: &ListedParameter,
    dry_run: bool,
) -> Result<Option<Outcome>, BackupError> {
    let drifted = match backup.holds(&p.name, p.version, p.last_modified_ms).await? {
        (Held::Recorded, Some(latest)) => {
            if !backup.tags_drifted(&p.name, &latest).await? {
                return Ok(None);
            }
            true
        }
        // Recorded, but not the newest backup: its tags are compared once it is again.
        (Held::Recorded, None) => return Ok(None),
        // Recorded, then hidden by a marker: recorded again below, when it was found.
        (Held::HiddenByMarker, _) => true,
        (Held::Missing, _) => false,
    };
    if dry_run {
        return Ok(Some(Outcome::Stored { version: p.version }));
    }
    if !drifted {
        return back_up(backup, p).await.map(Some);
    }
    backup
        .apply(&ChangeEvent {
            name: p.name.clone(),
            operation: Operation::Retag,
            // When the drift (or the hiding marker) was found: the tags changed after the
            // newest backup and before now, and SSM does not say when; a marker hiding the
            // version was written before now, so only a backup from now on is later than it.
            // Retag records the same SSM version anew, as its operation does.
            event_time: backup.now_secs(),
            param_type: None,
        })
        .await
        .map(Some)
}

/// Backs up `p` as of its last modification (its current version).
pub async fn back_up(backup: &Backup, p: &ListedParameter) -> Result<Outcome, BackupError> {
    backup
        .apply(&ChangeEvent {
            name: p.name.clone(),
            operation: Operation::Update,
            event_time: p.last_modified_ms.div_euclid(1000),
            param_type: None,
        })
        .await
}
