//! Point in time: which stored version of one key describes the parameter at time T.
//!
//! A pure function over the versions of one key, so it can be tested exhaustively. It reads
//! both the original's objects and ours.
//!
//! # What a listing says about write order
//!
//! S3 listings give LastModified in whole seconds, and the SDK returns a key's versions and its
//! delete markers as two lists, each newest first. So the order of two versions is always known
//! (list order), and so is the order of two markers; a version and a marker are ordered by
//! their LastModified seconds when those differ, and the entry with `IsLatest` is the newest
//! of all. A version and a marker of the same second, neither of them the newest, are in an
//! order the listing does not tell.
//!
//! # Our deletes: the tombstone and its marker
//!
//! Our writer records a delete as a tombstone version (with the delete's event time) and,
//! immediately after it, a delete marker (see docs/format.md), only while that tombstone is
//! the key's current version (a conditional `DeleteObject`, see [`crate::backup`]): so none of
//! its markers follows a marker or a value. A marker *explained* by a
//! tombstone carries no information of its own: it takes the tombstone's time and stands
//! right after it in write order. [`pair_markers`] gives each tombstone, oldest first, the
//! oldest marker that can follow it without any version known to lie between them; that needs
//! no same-second order at all. A marker no tombstone explains (the original's deletes, one
//! made by hand, or a second delete of a key already deleted) takes its LastModified, as the
//! original does.
//!
//! # The state at T
//!
//! * Effective time of a value version: its `ssmbakTime` (event time), else its LastModified.
//! * Effective time of one of our tombstones: the delete's event time; of its marker, the same.
//! * Comparison is inclusive at whole seconds: a version counts at T when its effective time,
//!   truncated to the second, is `<=` T truncated to the second.
//! * The greatest effective time wins. Ties go to the later recorded SSM LastModifiedDate
//!   (milliseconds: within one incarnation of a parameter it orders as the version does, and
//!   across a delete and re-creation in one second, where the version starts again at 1, it
//!   still orders: simulation seed 60980), then to the higher recorded SSM version, then to
//!   the later write. A version with a recorded SSM version beats a delete of the same second,
//!   because deleting and re-creating a parameter within a second is the usual way to change
//!   its type (the events have whole-second times, so the reverse order cannot be told apart).
//! * Where the later write is not known (a value version and an unexplained marker of the same
//!   second, neither the newest: only in the original's format or after a delete by hand), the
//!   value wins: a restore must never delete a parameter that may exist. The original decides
//!   such ties the other way (its sort puts the marker first).

/// One entry of a `ListObjectVersions` listing for one key, plus what its tags or metadata said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub version_id: String,
    /// LastModified, epoch milliseconds. S3 listings give whole seconds.
    pub last_modified_ms: i64,
    pub is_delete_marker: bool,
    /// The listing's `IsLatest`: the key's newest write.
    pub is_latest: bool,
    /// `ssmbakTime` of a value version, if it has one.
    pub event_time: Option<i64>,
    /// The delete's event time, on our tombstones.
    pub deleted_at: Option<i64>,
    /// The SSM version a value version holds, if recorded.
    pub ssm_version: Option<i64>,
    /// That version's LastModifiedDate (epoch ms), if recorded: orders two versions of one
    /// second across a delete and re-creation, where the version number starts again at 1.
    pub ssm_modified_ms: Option<i64>,
    /// A version whose tags and metadata were not read: it keeps its place in write order but
    /// is never the answer. A reader leaves unread only versions that cannot win (see
    /// [`crate::reader::LazyRead`]).
    pub unread: bool,
}

impl VersionEntry {
    fn is_deleted_state(&self) -> bool {
        self.is_delete_marker || self.deleted_at.is_some()
    }

    /// Its LastModified, in whole seconds (what listings give).
    pub fn second(&self) -> i64 {
        self.last_modified_ms.div_euclid(1000)
    }

    /// The effective time the entry has on its own: a tombstone's delete time, a value's event
    /// time, else its LastModified second. (A marker paired with a tombstone takes the
    /// tombstone's instead, see [`effective_times`].)
    pub fn own_time(&self) -> i64 {
        self.deleted_at
            .or(self.event_time)
            .unwrap_or_else(|| self.second())
    }

    /// True when the listing proves `self` was written before `other`.
    fn known_before(&self, other: &VersionEntry) -> bool {
        !self.is_latest && (other.is_latest || self.second() < other.second())
    }
}

/// The state of a parameter at a point in time; `index` is the entry in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateAt {
    /// Nothing was recorded at or before that time.
    NoVersion,
    /// It was deleted; `at` is the effective time of the delete (epoch seconds).
    Deleted { at: i64, index: usize },
    /// It existed with the value of this version; `at` is its effective time.
    Present { at: i64, index: usize },
}

impl StateAt {
    /// The entry in force, if any.
    pub fn index(self) -> Option<usize> {
        match self {
            StateAt::NoVersion => None,
            StateAt::Deleted { index, .. } | StateAt::Present { index, .. } => Some(index),
        }
    }

    /// The same state with its entry renumbered by `index` (from a list of some entries to
    /// the list they were taken from).
    pub fn map_index(self, index: impl Fn(usize) -> usize) -> Self {
        match self {
            StateAt::NoVersion => StateAt::NoVersion,
            StateAt::Deleted { at, index: i } => StateAt::Deleted {
                at,
                index: index(i),
            },
            StateAt::Present { at, index: i } => StateAt::Present {
                at,
                index: index(i),
            },
        }
    }
}

/// For every delete marker, the tombstone it follows (`None` for a marker no tombstone
/// explains, and for versions). `entries` are listed as the SDK gives them: versions newest
/// first, markers newest first (in any interleaving of the two).
///
/// A marker may follow a tombstone when it is not provably written before it and no version
/// is provably written between the two (the tombstone is in its [`marker_window`]). Tombstones
/// are paired oldest first, each with the oldest marker that may follow it and that no older
/// tombstone took. That pairs as many markers as can be paired, and of the markers that may
/// follow one tombstone it leaves the newest unexplained: ours is written right after its
/// tombstone, and a later marker with nothing written in between is a second delete (the
/// original's Lambda during a migration, a delete by hand), a delete when S3 stored it. Paired
/// the other way, the later marker would take the tombstone's time and ours its own
/// LastModified: a delete written late would seem to happen when it was written (hiding a
/// value set before that), and the later delete would be lost.
///
/// The pairing depends on the listing and on which versions in the markers' windows are
/// tombstones, and on nothing else: a reader that knows those ([`crate::reader::LazyRead`])
/// pairs exactly.
pub fn pair_markers(entries: &[VersionEntry]) -> Vec<Option<usize>> {
    let Windows {
        versions,
        markers,
        windows,
        ..
    } = Windows::of(entries);
    let mut paired = vec![None; entries.len()];
    // Markers at `taken` and older (positions in `markers`) went to older tombstones.
    let mut taken = markers.len();
    // The oldest marker not provably written before the tombstone at hand: a newer tombstone
    // has no older one.
    let mut oldest = markers.len();
    for p in (0..versions.len()).rev() {
        let tombstone = &entries[versions[p]];
        if tombstone.deleted_at.is_none() {
            continue;
        }
        while oldest > 0 && entries[markers[oldest - 1]].known_before(tombstone) {
            oldest -= 1;
        }
        // The oldest marker left that may follow it: windows shrink towards newer markers, so
        // if this one's window does not reach the tombstone, no newer one's does.
        let Some(k) = oldest.min(taken).checked_sub(1) else {
            break;
        };
        if p < windows[k] {
            paired[markers[k]] = Some(versions[p]);
            taken = k;
        }
    }
    paired
}

/// Where each delete marker's window lies among the versions: a marker may follow the versions
/// at positions `starts[k]..windows[k]` of `versions` (see [`marker_window`]).
struct Windows {
    /// The versions' entry indices, newest first.
    versions: Vec<usize>,
    /// The markers' entry indices, newest first.
    markers: Vec<usize>,
    /// Per marker, the first version position not provably written after it.
    starts: Vec<usize>,
    /// Per marker, the position after its window's last version.
    windows: Vec<usize>,
}

impl Windows {
    fn of(entries: &[VersionEntry]) -> Self {
        let versions: Vec<usize> = (0..entries.len())
            .filter(|&i| !entries[i].is_delete_marker)
            .collect();
        let markers: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].is_delete_marker)
            .collect();
        // Every version newer than a marker's tombstone must be written after the marker, so
        // the marker's window ends at the first version provably written before it
        // (inclusive); it starts at the first not provably written after it. Older markers
        // have windows that start and end no earlier, so one cursor each serves them all.
        let (mut start, mut end) = (0, 0);
        let (mut starts, mut windows) = (Vec::new(), Vec::new());
        for &m in &markers {
            let marker = &entries[m];
            while start < versions.len() && marker.known_before(&entries[versions[start]]) {
                start += 1;
            }
            while end < versions.len() && !entries[versions[end]].known_before(marker) {
                end += 1;
            }
            starts.push(start);
            windows.push((end + 1).min(versions.len()));
        }
        Windows {
            versions,
            markers,
            starts,
            windows,
        }
    }
}

/// The versions (entry indices, newest first) whose fields decide how marker `m` and every
/// newer one pair ([`pair_markers`]): those in the windows of these markers, and of the older
/// ones down to the first whose window shares no version with the window of the marker after
/// it. A tombstone older than that cut may follow only markers older than it, so whichever it
/// takes leaves the newer markers' pairing as it is.
pub fn pairing_versions(entries: &[VersionEntry], m: usize) -> Vec<usize> {
    let w = Windows::of(entries);
    let Some(mut last) = w.markers.iter().position(|&i| i == m) else {
        return Vec::new();
    };
    while last + 1 < w.markers.len() && w.starts[last + 1] < w.windows[last] {
        last += 1;
    }
    // Windows start and end no earlier for older markers: one pass collects their union.
    let mut out = Vec::new();
    let mut next = 0;
    for k in 0..=last {
        next = next.max(w.starts[k]);
        while next < w.windows[k] {
            out.push(w.versions[next]);
            next += 1;
        }
    }
    out
}

/// The versions that could be the tombstone marker `m` follows, newest first: every version
/// not provably written after it, up to the first one provably written before it. A reader
/// that knows which of these are tombstones can pair the marker exactly.
pub fn marker_window(entries: &[VersionEntry], m: usize) -> Vec<usize> {
    let marker = &entries[m];
    let mut out = Vec::new();
    for (v, e) in entries.iter().enumerate() {
        if e.is_delete_marker || marker.known_before(e) {
            continue;
        }
        out.push(v);
        if e.known_before(marker) {
            break;
        }
    }
    out
}

/// The entries' indices in write order, oldest first, given their [`pair_markers`]: by
/// LastModified second; within a second, markers no tombstone explains before versions (the
/// answer that never deletes, see the module documentation), the newest entry last; each
/// explained marker right after its tombstone.
pub fn write_order(entries: &[VersionEntry], pairs: &[Option<usize>]) -> Vec<usize> {
    let mut base: Vec<usize> = (0..entries.len()).filter(|&i| pairs[i].is_none()).collect();
    base.sort_by_key(|&i| {
        let e = &entries[i];
        (
            e.second(),
            e.is_latest,
            !e.is_delete_marker,
            std::cmp::Reverse(i),
        )
    });
    let mut follower = vec![None; entries.len()];
    for (m, tombstone) in pairs.iter().enumerate() {
        if let Some(t) = tombstone {
            follower[*t] = Some(m);
        }
    }
    let mut order = Vec::with_capacity(entries.len());
    for i in base {
        order.push(i);
        order.extend(follower[i]);
    }
    order
}

/// The effective time (epoch seconds) and write rank of every entry, in the order given, given
/// their [`pair_markers`].
pub fn effective_times(entries: &[VersionEntry], pairs: &[Option<usize>]) -> Vec<(i64, usize)> {
    let mut out = vec![(0, 0); entries.len()];
    for (rank, i) in write_order(entries, pairs).into_iter().enumerate() {
        let own = &entries[pairs[i].unwrap_or(i)];
        out[i] = (own.own_time(), rank);
    }
    out
}

/// The values that tie for the answer at `at` (two or more read values whose effective time is
/// the answer's second) and have no SSM date: [`state_at`] orders such a tie by SSM's dates only
/// when every value of the second has one, so a reader that placed them from tags or another
/// version's list (which may leave the date out) reads these for it (simulation seed 108664).
pub fn undated_rivals(entries: &[VersionEntry], at: i64) -> Vec<usize> {
    let times = effective_times(entries, &pair_markers(entries));
    let read = |i: &usize| !entries[*i].unread && times[*i].0 <= at;
    let Some(latest) = (0..entries.len()).filter(read).map(|i| times[i].0).max() else {
        return Vec::new();
    };
    let rivals: Vec<usize> = (0..entries.len())
        .filter(read)
        .filter(|&i| times[i].0 == latest && !entries[i].is_deleted_state())
        .collect();
    if rivals.len() < 2 {
        return Vec::new();
    }
    rivals
        .into_iter()
        .filter(|&i| entries[i].ssm_modified_ms.is_none())
        .collect()
}

/// The state at `at` (epoch seconds, inclusive) of the key whose versions are `entries`,
/// listed as [`pair_markers`] describes.
pub fn state_at(entries: &[VersionEntry], at: i64) -> StateAt {
    let candidates: Vec<_> = entries
        .iter()
        .zip(effective_times(entries, &pair_markers(entries)))
        .enumerate()
        .filter(|(_, (e, (t, _)))| !e.unread && *t <= at)
        .collect();
    let latest = candidates.iter().map(|(_, (_, (t, _)))| *t).max();
    // SSM's dates break the tie only when every value of that second has one (the original's
    // format and a version known only from another record's list may have none): a missing
    // date must not decide it (simulation seed 1090 of `cargo test`'s 2,000).
    let dated = candidates
        .iter()
        .filter(|(_, (e, (t, _)))| Some(*t) == latest && !e.is_deleted_state())
        .all(|(_, (e, _))| e.ssm_modified_ms.is_some());
    let best = candidates
        .into_iter()
        // Option's order puts an unknown SSM date or version below every known one.
        .max_by_key(|(_, (e, (t, rank)))| {
            let date = e.ssm_modified_ms.filter(|_| dated);
            (*t, date, e.ssm_version, *rank)
        });
    match best {
        None => StateAt::NoVersion,
        Some((index, (entry, (t, _)))) if entry.is_deleted_state() => {
            StateAt::Deleted { at: t, index }
        }
        Some((index, (_, (t, _)))) => StateAt::Present { at: t, index },
    }
}

#[cfg(test)]
mod tests;
