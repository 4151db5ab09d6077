//! Point in time: which stored version of one key describes the parameter at time T.
//!
//! A pure function over the versions of one key, so it can be tested exhaustively. It reads
//! both the original's objects and ours:
//!
//! * Effective time of a value version: its `ssmbakTime` (event time), else its LastModified.
//! * Effective time of one of our tombstones: the delete's event time.
//! * Effective time of a delete marker: the tombstone written just before it (no value version
//!   between them in write order) gives the delete's event time; a marker without one (written
//!   by the original, or by hand) takes its LastModified, as the original does.
//! * Comparison is inclusive at whole seconds: a version counts at T when its effective time,
//!   truncated to the second, is `<=` T truncated to the second.
//! * The greatest effective time wins. Ties go to the higher recorded SSM version, then to the
//!   newer write, then to the delete. S3 write order alone never decides between two of our
//!   versions of one second: records can be processed out of order. A version with a recorded
//!   SSM version beats a delete of the same second, because deleting and re-creating a
//!   parameter within a second is the usual way to change its type; the reverse order within
//!   one second cannot be told apart from the events, which have whole-second times.

/// One entry of a `ListObjectVersions` listing for one key, plus what its tags or metadata said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub version_id: String,
    /// LastModified, epoch milliseconds. S3 listings give whole seconds.
    pub last_modified_ms: i64,
    pub is_delete_marker: bool,
    /// `ssmbakTime` of a value version, if it has one.
    pub event_time: Option<i64>,
    /// The delete's event time, on our tombstones.
    pub deleted_at: Option<i64>,
    /// The SSM version a value version holds, if recorded.
    pub ssm_version: Option<i64>,
}

impl VersionEntry {
    fn is_deleted_state(&self) -> bool {
        self.is_delete_marker || self.deleted_at.is_some()
    }
}

/// The state of a parameter at a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateAt<'a> {
    /// Nothing was recorded at or before that time.
    NoVersion,
    /// It was deleted; `at` is the effective time of the delete (epoch seconds).
    Deleted { at: i64, entry: &'a VersionEntry },
    /// It existed with the value of this version; `at` is its effective time.
    Present { at: i64, entry: &'a VersionEntry },
}

/// The entries' indices in write order, oldest first.
///
/// S3 timestamps have whole seconds, so order within a second comes from the listing: S3 lists
/// the versions of a key newest first, and so must `entries` (delete markers likewise, before or
/// after the versions). A delete marker and a version of the same second cannot be told apart
/// (the SDK returns them in two lists); the marker counts as the later write, as in the
/// original, and as it is for a tombstone and its own marker.
pub fn write_order(entries: &[VersionEntry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| {
        let e = &entries[i];
        (e.last_modified_ms, e.is_delete_marker, std::cmp::Reverse(i))
    });
    order
}

/// The effective time (epoch seconds) and write rank of every entry, in the order given.
pub fn effective_times(entries: &[VersionEntry]) -> Vec<(i64, usize)> {
    let mut out = vec![(0, 0); entries.len()];
    // Walk in write order, pairing each delete marker with a tombstone right before it.
    let mut pending_tombstone: Option<i64> = None;
    for (rank, i) in write_order(entries).into_iter().enumerate() {
        let e = &entries[i];
        let lm_secs = e.last_modified_ms.div_euclid(1000);
        let t = if e.is_delete_marker {
            pending_tombstone.take().unwrap_or(lm_secs)
        } else if let Some(at) = e.deleted_at {
            pending_tombstone = Some(at);
            at
        } else {
            pending_tombstone = None;
            e.event_time.unwrap_or(lm_secs)
        };
        out[i] = (t, rank);
    }
    out
}

/// The state at `at` (epoch seconds, inclusive) of the key whose versions are `entries`,
/// listed as [`write_order`] describes.
pub fn state_at(entries: &[VersionEntry], at: i64) -> StateAt<'_> {
    let best = entries
        .iter()
        .zip(effective_times(entries))
        .filter(|(_, (t, _))| *t <= at)
        .max_by_key(|(e, (t, rank))| (*t, e.ssm_version.unwrap_or(i64::MIN), *rank));
    match best {
        None => StateAt::NoVersion,
        Some((entry, (t, _))) if entry.is_deleted_state() => StateAt::Deleted { at: t, entry },
        Some((entry, (t, _))) => StateAt::Present { at: t, entry },
    }
}

#[cfg(test)]
mod tests;
