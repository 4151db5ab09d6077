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
//! The writer announces the contract per bucket, as a lease: `.ssmbak/late-writes-marked`
//! ([`MARKED_SINCE_KEY`]) holds `{"since", "renewed", "window_secs", "lease_secs"}` (epoch
//! seconds and seconds, [`Announcement`]). Before it writes, a writer makes sure the
//! announcement exists and was renewed within a quarter of the lease (checking again every
//! eighth of it), and the scheduled reconcile renews it even when nothing changes. A lease
//! found expired starts over from a new `since`: nobody vouches for what was written while it
//! had lapsed.
//!
//! So every version written after `since` and no later than the announcement's LastModified
//! plus the lease was written by a writer that marks. Versions written before (by the
//! original, or by an older release of ours), and after the lease (an older writer brought
//! back by a rollback, which renews nothing), are not covered: they are read as before.
//!
//! # What a reader may conclude ([`LateWrites::horizon`])
//!
//! For key K at T, let h be the latest of T + window, `since` + 1 s, and, for each marker of K
//! with E <= T, its LastModified + window. Every version of K written after h and within the
//! lease has an effective time after T: a prompt one because E > L - window > T, a marked one
//! because its E > T (a marked version with E <= T was put right after its marker, within the
//! window of it, so at or before h). Those versions need not be read: only the versions
//! written in (T, h], or after the lease, can hold a change in force at T.
//!
//! # What breaks it, and how a reader notices
//!
//! * A bucket copied or moved (new LastModified on every version): the announcement's own
//!   LastModified is then far from the time it was renewed, and it is ignored (the exact
//!   path).
//! * A writer that does not mark writing within a lease: the original's Lambda running beside
//!   ours, an older release of ours within 12 hours of the last renewal, or a tool copying old
//!   versions in. `s3bak restore` deletes the announcement before and after it copies into a
//!   bucket that has one (our writer announces again, from a later time); the original's
//!   Lambda must not run beside this one, and a rollback should delete the announcement
//!   (docs/guarantees.md).
//!
//!   Only a writer that knows it is the one deployed starts a lease ([`LeaseUpdate::Start`]):
//!   the Lambda, while its CloudFormation stack is in a stable state (`CREATE_COMPLETE`,
//!   `UPDATE_COMPLETE`) and names its code. So a release of ours that runs only during a
//!   stack update that then fails and rolls back to an older release never starts one; nor
//!   do `seed-all` and other tools, which cannot tell what the stack runs. Any writer of ours
//!   renews a lease that runs. A started lease vouches only from [`START_DELAY_SECS`] on:
//!   calls of the release before the update may still be writing when it starts.
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
/// How long an announcement vouches for the writes after its renewal: twice the reconcile's
/// default schedule (6 h), so a healthy stack renews it before it lapses even when idle.
pub const LEASE_SECS: i64 = 12 * 3600;
/// A writer renews an announcement older than this...
pub const RENEW_AFTER_SECS: i64 = LEASE_SECS / 4;
/// ...and looks at it again after this long (per process).
pub const RECHECK_SECS: i64 = LEASE_SECS / 8;
/// A new lease vouches for writes from this long after it is started: a function's calls of
/// the release before may still be running when the new code starts one (a Lambda call lasts
/// 900 s at most: Lambda Developer Guide, "Lambda quotas", function timeout), and a minute
/// more for their last puts.
pub const START_DELAY_SECS: i64 = 900 + 60;

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
    /// From when this lease vouches for every writer (the writer's clock, epoch seconds): a
    /// started lease's is [`START_DELAY_SECS`] after its start.
    pub since: i64,
    /// When it was last renewed (the writer's clock, epoch seconds).
    pub renewed: i64,
    pub window_secs: i64,
    pub lease_secs: i64,
}

impl Announcement {
    /// A new announcement, made at `now`.
    pub fn new(now: i64) -> Self {
        Announcement {
            since: now,
            renewed: now,
            window_secs: WINDOW_SECS,
            lease_secs: LEASE_SECS,
        }
    }

    /// A lease started at `now`: it vouches from [`START_DELAY_SECS`] later.
    pub fn starting(now: i64) -> Self {
        Announcement {
            since: now + START_DELAY_SECS,
            ..Announcement::new(now)
        }
    }

    pub fn to_json(self) -> Vec<u8> {
        serde_json::to_vec(&self).unwrap_or_default()
    }

    /// The announcement in `body`, stored at `last_modified` (epoch seconds, from S3), if it
    /// can be trusted: it parses, its window and lease are sane, and S3 stored it within that
    /// window of its renewal (a copied bucket's is stored later).
    pub fn read(body: &[u8], last_modified: i64) -> Option<Self> {
        let a: Announcement = serde_json::from_slice(body).ok()?;
        let sane = (1..=86_400).contains(&a.window_secs)
            && (a.window_secs..=7 * 86_400).contains(&a.lease_secs)
            && a.since <= a.renewed + START_DELAY_SECS;
        (sane && (last_modified - a.renewed).abs() <= a.window_secs).then_some(a)
    }

    /// What a writer must put at `now`, given the announcement stored (with its LastModified
    /// second), if anything: a new one where there is none to trust or its lease lapsed, the
    /// same one renewed where it is older than [`RENEW_AFTER_SECS`].
    pub fn to_put(stored: Option<(Announcement, i64)>, now: i64) -> Option<LeaseUpdate> {
        match stored {
            Some((_, at)) if now - at < RENEW_AFTER_SECS => None,
            Some((a, at)) if now - at < a.lease_secs => Some(LeaseUpdate::Renew(Announcement {
                renewed: now,
                window_secs: WINDOW_SECS,
                lease_secs: LEASE_SECS,
                ..a
            })),
            _ => Some(LeaseUpdate::Start(Announcement::starting(now))),
        }
    }
}

/// A change to the announcement (see [`Announcement::to_put`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseUpdate {
    /// The lease that runs, renewed: any writer of ours may put it.
    Renew(Announcement),
    /// A new lease: only a writer that knows it is the one deployed may start it, since the
    /// lease vouches for every writer of the bucket until it lapses (see "What breaks it").
    Start(Announcement),
}

impl LeaseUpdate {
    pub fn announcement(self) -> Announcement {
        match self {
            LeaseUpdate::Renew(a) | LeaseUpdate::Start(a) => a,
        }
    }
}

/// Which of a key's versions a reader may take as after its restore point unread: those
/// written after `after` and no later than `until` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub after: i64,
    pub until: i64,
}

impl Horizon {
    pub fn covers(self, second: i64) -> bool {
        self.after < second && second <= self.until
    }
}

/// What a reader knows of a scope's late writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LateWrites {
    /// The announcement and its LastModified second; `None`: none to trust, so nothing is
    /// trusted.
    announced: Option<(Announcement, i64)>,
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
            announced: announcement,
            marks,
        }
    }

    /// The versions of `key` that take effect after `at` by when they were written (see the
    /// module documentation); `None` when nothing can be trusted.
    pub fn horizon(&self, key: &str, at: i64) -> Option<Horizon> {
        let (a, announced_at) = self.announced?;
        let window = a.window_secs;
        let marked = self
            .marks
            .get(key)
            .into_iter()
            .flatten()
            .filter(|(event_time, _)| *event_time <= at)
            .map(|(_, written)| written.saturating_add(window));
        let after = [at.saturating_add(window), a.since.saturating_add(1)]
            .into_iter()
            .chain(marked)
            .max()?;
        let until = announced_at.saturating_add(a.lease_secs);
        Some(Horizon { after, until })
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
    fn an_announcement_is_trusted_where_it_was_renewed() {
        let a = Announcement {
            renewed: 1_700_000_000,
            ..Announcement::new(1_600_000_000)
        };
        let body = a.to_json();
        assert_eq!(Announcement::read(&body, 1_700_000_001), Some(a));
        // Copied into another bucket a day later.
        assert_eq!(Announcement::read(&body, 1_700_086_400), None);
        assert_eq!(Announcement::read(b"{}", 1_700_000_000), None);
        for silly in [
            Announcement {
                window_secs: 0,
                ..a
            },
            Announcement { lease_secs: 1, ..a },
            Announcement {
                since: a.renewed + START_DELAY_SECS + 1,
                ..a
            },
        ] {
            assert_eq!(
                Announcement::read(&silly.to_json(), 1_700_000_000),
                None,
                "{silly:?}"
            );
        }
    }

    #[test]
    fn a_writer_renews_the_lease_and_starts_over_once_it_lapsed() {
        let now = 1_700_000_000;
        let old = Announcement::new(now - 30 * 86_400);
        let start = Some(LeaseUpdate::Start(Announcement::starting(now)));
        assert_eq!(Announcement::to_put(None, now), start);
        assert_eq!(Announcement::to_put(Some((old, now - 60)), now), None);
        let renewed = Announcement::to_put(Some((old, now - RENEW_AFTER_SECS)), now);
        assert_eq!(
            renewed,
            Some(LeaseUpdate::Renew(Announcement {
                renewed: now,
                ..old
            }))
        );
        let lapsed = Announcement::to_put(Some((old, now - LEASE_SECS)), now);
        assert_eq!(lapsed, start);
        // A lease just started vouches for nothing written before the release it replaced
        // has surely stopped: an hour back, a version written now is still read.
        let started = LateWrites::new(Some((Announcement::starting(now), now)), []);
        let horizon = started.horizon("/k", now - 3600);
        assert_eq!(horizon.map(|h| h.after), Some(now + START_DELAY_SECS + 1));
        assert!(horizon.is_some_and(|h| !h.covers(now + 60)));
        let body = Announcement::starting(now).to_json();
        assert!(
            Announcement::read(&body, now).is_some(),
            "trusted as stored"
        );
    }

    #[test]
    fn the_horizon_covers_the_window_and_the_late_writes_before_the_point() {
        let t = 1_700_000_000;
        let horizon = |after: i64, until: i64| Some(Horizon { after, until });
        let announced = Announcement::new(t - 100_000);
        let until = t + LEASE_SECS;
        let a = Some((announced, t));
        let none = LateWrites::new(a, []);
        assert_eq!(none.horizon("/k", t), horizon(t + WINDOW_SECS, until));
        // Asked about a time before the announcement: versions before it are not covered.
        assert_eq!(none.horizon("/k", t - 200_000), horizon(t - 99_999, until));
        let seeded = marker_key("/k", t - 50_000);
        let after = marker_key("/k", t + 10);
        let late = LateWrites::new(a, [(seeded.as_str(), t + 3600), (after.as_str(), t + 7200)]);
        // The seed (event before t, written an hour after) keeps versions to its window read.
        assert_eq!(
            late.horizon("/k", t),
            horizon(t + 3600 + WINDOW_SECS, until)
        );
        // Before the seed's event time it is after the point anyway.
        let before_seed = late.horizon("/k", t - 60_000);
        assert_eq!(before_seed, horizon(t - 60_000 + WINDOW_SECS, until));
        // Other keys are not affected; no announcement trusts nothing.
        assert_eq!(late.horizon("/k2", t), horizon(t + WINDOW_SECS, until));
        assert_eq!(LateWrites::none().horizon("/k", t), None);
        let h = Horizon {
            after: 10,
            until: 20,
        };
        assert!(!h.covers(10) && h.covers(11) && h.covers(20) && !h.covers(21));
    }
}
