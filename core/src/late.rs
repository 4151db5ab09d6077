//! Late writes, marked: what lets a reader trust LastModified for most versions (#15 part 2).
//!
//! # Why
//!
//! A version's effective time is its event time E, which only its own tags or metadata hold;
//! the listing gives its LastModified L. E is never after L, but a version written late (a
//! reconcile, `seed-all`, a redriven batch, a queue that backed up) can have an E long before
//! its L. So a reader at a restore point T had to read the versions written after T (the newest
//! of them, in our layout) in case one was a late-recorded change from before T.
//!
//! # The contract
//!
//! Our writer knows when it writes late. Every version it writes is either
//!
//! * **prompt**: put within [`PROMPT_SECS`] of E by the writer's clock, so its L is less than
//!   the bucket's *window* after E (the window leaves room for a slow put and clock skew); or
//! * **marked**: before the version, the writer puts an empty object
//!   `.ssmbak/late/<key>/<E>` ([`marker_key`]; the key keeps its leading `/`), so a listing
//!   of `.ssmbak/late<prefix>` tells a reader which keys have versions that are late, with
//!   their event times, and (by the marker's own LastModified) about when each was written.
//!
//! The writer announces the contract once per bucket: `.ssmbak/late-writes-marked`
//! ([`MARKED_SINCE_KEY`]) holds `{"since": <epoch s>, "window_secs": <s>}` and is written, if
//! absent, before the first version the writer puts. Versions written before it (by the
//! original, or by an older release of ours) are not covered: the reader trusts only versions
//! written after the object's own LastModified.
//!
//! # What a reader may conclude ([`LateWrites::horizon`])
//!
//! For key K at T, let h be the latest of T + window, the announcement's second, and, for each
//! marker of K with E <= T, its LastModified + window. Every version of K written after h has
//! an effective time after T: a prompt one because E > L - window > T, a marked one because its
//! E > T (a marked version with E <= T was put right after its marker, within the window of
//! it, so at or before h). Those versions need not be read: only the versions written in
//! (T, h] can hold a late change from before T.
//!
//! # What breaks it, and how a reader notices
//!
//! * A bucket copied or moved (new LastModified on every version): the announcement's own
//!   LastModified is then far from the time it holds, and it is ignored (the exact path).
//! * A writer that does not mark (the original's Lambda, an older release of ours, `s3bak
//!   restore` copying old versions in place) writing to the bucket after the announcement:
//!   none may. `s3bak restore` deletes the announcement before it writes to a bucket that has
//!   one (our writer announces again later, from a later time); the original's Lambda and older
//!   releases must not run beside this one (docs/guarantees.md).
//! * A marker removed while its version exists: markers are never deleted or expired (the
//!   template's lifecycle rule expires noncurrent versions only, and a marker is re-put, never
//!   replaced by a delete).

use std::collections::HashMap;

/// The announcement (see the module documentation).
pub const MARKED_SINCE_KEY: &str = ".ssmbak/late-writes-marked";
/// Where markers live: a marker's key is this, then the object key (which starts with `/`),
/// then `/` and the event time.
pub const LATE_PREFIX: &str = ".ssmbak/late";
/// The window our writer announces: a version put within [`PROMPT_SECS`] of its event time,
/// however slowly S3 answers the put, is written within this of it.
pub const WINDOW_SECS: i64 = 600;
/// A version put later than this after its event time (by the writer's clock) is marked. A
/// quarter of the window: the rest covers a put that takes minutes and clocks that differ.
pub const PROMPT_SECS: i64 = WINDOW_SECS / 4;

/// The key of the marker for a late version of `key` (an object key, `/` first) with event
/// time `event_time`.
pub fn marker_key(key: &str, event_time: i64) -> String {
    format!("{LATE_PREFIX}{key}/{event_time}")
}

/// Where to list the markers of every key under `prefix` (an object key prefix).
pub fn markers_prefix(prefix: &str) -> String {
    format!("{LATE_PREFIX}{prefix}")
}

/// The object key and event time a marker's key names; `None` for anything else.
pub fn parse_marker_key(marker: &str) -> Option<(&str, i64)> {
    let rest = marker.strip_prefix(LATE_PREFIX)?;
    let (key, time) = rest.rsplit_once('/')?;
    (key.starts_with('/') && !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit()))
        .then_some(())?;
    Some((key, time.parse().ok()?))
}

/// Whether a version with event time `event_time` is late if put at `now` (epoch seconds, the
/// writer's clock): it must then be marked first.
pub fn is_late(event_time: i64, now: i64) -> bool {
    now - event_time > PROMPT_SECS
}

/// The body of the announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Announcement {
    /// When the writer started marking (its clock, epoch seconds).
    pub since: i64,
    pub window_secs: i64,
}

impl Announcement {
    pub fn new(since: i64) -> Self {
        Announcement {
            since,
            window_secs: WINDOW_SECS,
        }
    }

    pub fn to_json(self) -> Vec<u8> {
        serde_json::to_vec(&self).unwrap_or_default()
    }

    /// The announcement in `body`, stored at `last_modified` (epoch seconds, from S3), if it
    /// can be trusted: it parses, its window is sane, and S3 stored it within that window of
    /// the time it holds (a copied bucket's is stored later).
    pub fn read(body: &[u8], last_modified: i64) -> Option<Self> {
        let a: Announcement = serde_json::from_slice(body).ok()?;
        let sane = (1..=86_400).contains(&a.window_secs);
        (sane && (last_modified - a.since).abs() <= a.window_secs).then_some(a)
    }
}

/// What a reader knows of a scope's late writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LateWrites {
    /// The announcement's LastModified second, and its window; `None`: no announcement to
    /// trust, so nothing is trusted.
    announced: Option<(i64, i64)>,
    /// Each key's markers: (event time, the latest LastModified second of the marker).
    marks: HashMap<String, Vec<(i64, i64)>>,
}

impl LateWrites {
    /// Nothing trusted: every reader takes the exact path.
    pub fn none() -> Self {
        LateWrites::default()
    }

    /// From the announcement (stored at `announced_at`, S3's LastModified second) and the
    /// markers listed (marker key, LastModified second; every version of a marker key may be
    /// given).
    pub fn new<'a>(
        announcement: Option<(Announcement, i64)>,
        markers: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Self {
        let mut marks: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for (marker, at) in markers {
            if let Some((key, event_time)) = parse_marker_key(marker) {
                marks
                    .entry(key.to_owned())
                    .or_default()
                    .push((event_time, at));
            }
        }
        LateWrites {
            announced: announcement.map(|(a, at)| (at, a.window_secs)),
            marks,
        }
    }

    /// The second after which every version of `key` has an effective time after `at` (see
    /// the module documentation); `None` when nothing can be trusted.
    pub fn horizon(&self, key: &str, at: i64) -> Option<i64> {
        let (announced_at, window) = self.announced?;
        let marked = self
            .marks
            .get(key)
            .into_iter()
            .flatten()
            .filter(|(event_time, _)| *event_time <= at)
            .map(|(_, written)| written.saturating_add(window));
        [at.saturating_add(window), announced_at]
            .into_iter()
            .chain(marked)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_keys_name_one_key_and_time() {
        let m = marker_key("/app/db/password", 1_700_000_000);
        assert_eq!(m, ".ssmbak/late/app/db/password/1700000000");
        assert_eq!(
            parse_marker_key(&m),
            Some(("/app/db/password", 1_700_000_000))
        );
        // A parameter whose last segment is all digits is still told apart by the last `/`.
        let m = marker_key("/app/1700000000", 5);
        assert_eq!(parse_marker_key(&m), Some(("/app/1700000000", 5)));
        for other in [
            ".ssmbak/late-writes-marked",
            ".ssmbak/late/app/x/",
            ".ssmbak/late/app/x/12a",
            ".ssmbak/late/12",
            ".ssmbak/extras/ab",
            "/app/x",
        ] {
            assert_eq!(parse_marker_key(other), None, "{other}");
        }
    }

    #[test]
    fn a_write_is_late_past_a_quarter_of_the_window() {
        assert!(!is_late(1000, 1000));
        assert!(!is_late(1000, 1000 + PROMPT_SECS));
        assert!(is_late(1000, 1001 + PROMPT_SECS));
    }

    #[test]
    fn an_announcement_is_trusted_where_it_was_made() {
        let a = Announcement::new(1_700_000_000);
        let body = a.to_json();
        assert_eq!(Announcement::read(&body, 1_700_000_001), Some(a));
        // Copied into another bucket a day later.
        assert_eq!(Announcement::read(&body, 1_700_086_400), None);
        assert_eq!(Announcement::read(b"{}", 1_700_000_000), None);
        let silly = Announcement {
            window_secs: 0,
            ..a
        };
        assert_eq!(Announcement::read(&silly.to_json(), 1_700_000_000), None);
    }

    #[test]
    fn the_horizon_covers_the_window_and_the_late_writes_before_the_point() {
        let t = 1_700_000_000;
        let a = Some((Announcement::new(t - 100_000), t - 100_000));
        let none = LateWrites::new(a, []);
        assert_eq!(none.horizon("/k", t), Some(t + WINDOW_SECS));
        // Asked about a time before the announcement: versions before it are not covered.
        assert_eq!(none.horizon("/k", t - 200_000), Some(t - 100_000));
        let seeded = marker_key("/k", t - 50_000);
        let after = marker_key("/k", t + 10);
        let late = LateWrites::new(a, [(seeded.as_str(), t + 3600), (after.as_str(), t + 7200)]);
        // The seed (event before t, written an hour after) keeps versions to its window read.
        assert_eq!(late.horizon("/k", t), Some(t + 3600 + WINDOW_SECS));
        // Before the seed's event time it is after the point anyway.
        assert_eq!(
            late.horizon("/k", t - 60_000),
            Some(t - 60_000 + WINDOW_SECS)
        );
        // Other keys are not affected; no announcement trusts nothing.
        assert_eq!(late.horizon("/k2", t), Some(t + WINDOW_SECS));
        assert_eq!(LateWrites::none().horizon("/k", t), None);
    }
}
