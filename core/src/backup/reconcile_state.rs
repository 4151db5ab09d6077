//! What the scheduled reconcile ([`crate::reconcile`]) asks of the bucket and keeps in it:
//! S3's clock, the current and flagged keys, where the last run stopped, whether a version is
//! held and whether its tags drifted.

use super::decide::{holds_version, Held};
use super::{Backup, BackupError};
use crate::format::{self, StoredFields};
use crate::store::NewObject;

impl Backup {
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
        let key = format::object_key(name);
        let mut current = self.current(&key).await?;
        self.date_records(&key, &mut current.recorded, &[version])
            .await?;
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
}
