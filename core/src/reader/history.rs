//! A key's recorded changes in event order, for `ssmbak log`.

use std::collections::HashMap;

use futures::future::try_join_all;

use super::fetch::{Depth, Metadata};
use super::lazy::{entries, fields_of};
use super::{BucketReader, ListedVersion, ReadError};
use crate::format::ParameterSnapshot;
use crate::pit;

/// One recorded change of a key, for `ssmbak log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub version_id: String,
    /// Effective (event) time, epoch seconds.
    pub at: i64,
    pub last_modified_ms: i64,
    /// `None` for a delete.
    pub snapshot: Option<ParameterSnapshot>,
    /// For a version not written by ssmbak: recorded, but not a parameter state.
    pub foreign: bool,
    /// For a delete: who made it, when the tombstone records it (see "Who deleted it" in
    /// docs/format.md). Read only by [`BucketReader::history`].
    pub deleted_by: Option<String>,
}

impl BucketReader {
    /// Every recorded change of `key`, oldest first. A delete written as tombstone and marker
    /// is one entry, with its deleter when the tombstone records one.
    ///
    /// A deleter tagged on the tombstone after it was written is in its tags only, which a
    /// `GetObject` does not return: that costs one `GetObjectTagging` per tombstone whose
    /// metadata does not name its deleter. Only this (`ssmbak log`) reads them.
    pub async fn history(
        &self,
        key: &str,
        listed: &[ListedVersion],
    ) -> Result<Vec<HistoryEntry>, ReadError> {
        let mut history = self.history_since(key, listed, None).await?;
        let unknown = history
            .iter_mut()
            .filter(|e| e.snapshot.is_none() && !e.foreign && e.deleted_by.is_none())
            // Delete markers no tombstone explains have no tags.
            .filter(|e| {
                listed
                    .iter()
                    .any(|l| l.version_id == e.version_id && !l.is_delete_marker)
            });
        let reads = unknown.map(|e| async move {
            let tags = self.tags(key, &e.version_id).await?;
            let fields = self.fetched(
                key,
                &e.version_id,
                (&tags, &Metadata::new()),
                None,
                Depth::Placed,
            )?;
            e.deleted_by = fields.fields.deleted_by;
            Ok::<(), ReadError>(())
        });
        try_join_all(reads).await?;
        Ok(history)
    }

    /// [`Self::history`] from `since` (epoch seconds, inclusive) on: only versions written
    /// then or later are read, since a change is never recorded before it happens.
    pub async fn history_since(
        &self,
        key: &str,
        listed: &[ListedVersion],
        since: Option<i64>,
    ) -> Result<Vec<HistoryEntry>, ReadError> {
        let mut fetched = HashMap::new();
        let in_window =
            |l: &ListedVersion| since.is_none_or(|s| l.last_modified_ms.div_euclid(1000) >= s);
        let window: Vec<usize> = (0..listed.len())
            .filter(|&i| in_window(&listed[i]))
            .collect();
        self.fetch_into(key, listed, &window, &mut fetched, Depth::Full)
            .await?;
        let entries = entries(listed, &fields_of(&fetched));
        let pairs = pit::pair_markers(&entries);
        let times = pit::effective_times(&entries, &pairs);
        let mut write_order: Vec<usize> = (0..entries.len()).collect();
        write_order.sort_by_key(|&i| times[i].1);
        let mut out = Vec::new();
        for i in write_order {
            let l = &listed[i];
            let (at, _) = times[i];
            if entries[i].unread || since.is_some_and(|s| at < s) {
                continue;
            }
            if l.is_delete_marker {
                // A marker that follows its tombstone is part of that delete's entry.
                if pairs[i].is_none() {
                    out.push(HistoryEntry {
                        version_id: l.version_id.clone(),
                        at,
                        last_modified_ms: l.last_modified_ms,
                        snapshot: None,
                        foreign: false,
                        deleted_by: None,
                    });
                }
                continue;
            }
            let f = fetched.get(&i);
            let tombstone = f.is_some_and(|f| f.fields.is_tombstone());
            let mut snapshot = f.and_then(|f| f.fields.snapshot(key, f.body.clone()?));
            if let (Some(f), Some(s)) = (f, snapshot.as_mut()) {
                self.read_extras(key, &f.fields, s).await?;
            }
            out.push(HistoryEntry {
                version_id: l.version_id.clone(),
                at,
                last_modified_ms: l.last_modified_ms,
                foreign: !tombstone && snapshot.is_none(),
                deleted_by: f.and_then(|f| f.fields.deleted_by.clone()),
                snapshot,
            });
        }
        // Event order, not write order: late-processed changes take their place.
        out.sort_by_key(|e| (e.at, e.snapshot.as_ref().and_then(|s| s.attributes.version)));
        Ok(out)
    }
}
