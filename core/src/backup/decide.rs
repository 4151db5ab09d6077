//! What the writer decides for one change event, from SSM's history and what it knows the
//! bucket has recorded: pure functions, so that the simulation (`core/src/sim`) runs the very
//! decisions the Lambda makes.
//!
//! # Recorded by event time, not by what S3 holds newest
//!
//! Events are processed in any order, so the key's newest S3 object says nothing of the state
//! at an event's time: a Create processed before the Delete it follows leaves the delete's
//! marker newest while the parameter exists; a label event processed before its version's
//! Update leaves that version recorded only from the label's time. The writer therefore
//! decides from the facts it has about the key's recorded versions ([`EarlierVersion`]: kind,
//! event or delete time, SSM version), and only a record of *this* change counts as a
//! duplicate:
//!
//! * a value is recorded unless a version of the same SSM incarnation is recorded at the
//!   event's time, or before it (then nothing changed since: a later event of the same
//!   version, or the reconcile's);
//! * a delete is recorded unless a tombstone at its time is.
//!
//! SSM numbers a re-created parameter's versions from 1 again, so a version number alone does
//! not name a version: a record names one by its number and LastModifiedDate (in milliseconds).
//! A record without the date (written before issue 28, or read from tags alone) is of the
//! incarnation whose version was modified at `lm` only when its time is at or after `lm`'s
//! second less the clocks' skew: every record of an incarnation is made while it exists, and
//! the one before it was deleted before it was created. Such a record can be taken for a
//! re-created version's when the two incarnations are within [`EVENT_SKEW_SECS`] of each other.
//!
//! A fact the writer does not have (a list cut by the metadata limit, versions behind a delete
//! marker) costs at most a duplicate write, which reads back the same: never a lost change.

use crate::format::EarlierVersion;

/// How many seconds an SSM version's LastModifiedDate may come after its change event's time.
/// No AWS document promises the event's time is never earlier than the LastModifiedDate's second
/// (the two clocks are not the same one); a version not yet in the bucket, modified this little
/// after the event, is taken for that event's.
pub const EVENT_SKEW_SECS: i64 = 2;

/// Which SSM version a change event at `event_time` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Store(i64),
    /// The bucket already records it for this event, or from before it.
    Duplicate(i64),
    /// No version can be this event's: it must not pass as a success.
    Unmatched,
}

/// Whether a delete event must be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteChoice {
    Record,
    /// A tombstone at the delete's time is recorded already.
    Duplicate,
}

/// The version to store for an event at `event_time`, from the parameter's history
/// (`(version, LastModifiedDate ms)`, the incarnation SSM has now) and the facts known about
/// the key's `recorded` versions:
///
/// 1. the newest version modified at or before the event ([`version_at`]) is the event's,
///    unless it is recorded already;
/// 2. recorded at this very time: a duplicate delivery;
/// 3. recorded at an earlier time: this event's version is the next one, modified within
///    [`EVENT_SKEW_SECS`] after the event (the clocks' skew) with no recorded delete in
///    between, unless that one is recorded at this time;
/// 4. failing that: a duplicate when the version is recorded from before, else unmatched.
///
/// A record of the version made *after* the event (a label event processed first, a reconcile)
/// does not make the event a duplicate: the version must be recorded from its own time.
///
/// Step 3 is only for an event that made a version (`makes_version`: Create, Update). A label
/// move or a tag edit stands for the version current at its time whatever is recorded: taken
/// for the next version's, a label event processed late would record that version from the
/// label's time, before it existed.
pub fn version_for_event(
    history: &[(i64, Option<i64>)],
    event_time: i64,
    recorded: &[EarlierVersion],
    makes_version: bool,
) -> Choice {
    let modified_ms = |v: i64| {
        history
            .iter()
            .find(|(h, _)| *h == v)
            .and_then(|(_, ms)| *ms)
    };
    // The records of version `v` of the incarnation in `history`: by its LastModifiedDate
    // where the record has it, else by time.
    let records_of = |v: i64| {
        let ms = modified_ms(v);
        let since = ms.map(|ms| ms.div_euclid(1000) - EVENT_SKEW_SECS);
        recorded.iter().filter(move |r| {
            !r.deleted
                && r.ssm_version == Some(v)
                && match r.modified_ms {
                    Some(recorded_ms) => Some(recorded_ms) == ms,
                    None => since.is_some_and(|s| r.time >= s),
                }
        })
    };
    let recorded_at = |v: i64, t: i64| records_of(v).any(|r| r.time == t);
    let base = version_at(history.iter().copied(), event_time);
    if let Some(v) = base {
        if recorded_at(v, event_time) {
            return Choice::Duplicate(v);
        }
        if !records_of(v).any(|r| r.time < event_time) {
            return Choice::Store(v);
        }
        if !makes_version {
            return Choice::Duplicate(v);
        }
    }
    // A delete recorded between the event and the version: the version is a re-created
    // parameter's, not this event's (an event of the incarnation before, processed late).
    let deleted_between = |second: i64| {
        recorded
            .iter()
            .any(|r| r.deleted && r.time >= event_time && r.time <= second)
    };
    let skewed = history
        .iter()
        .filter(|(v, ms)| {
            let second = ms.map(|ms| ms.div_euclid(1000));
            // Only past a version of this incarnation as old as the event: with none, the
            // event may be of an incarnation deleted since (its delete not recorded yet, or
            // never), processed late, and a version recorded at its time would claim the
            // re-created parameter existed before it did (found by the simulation).
            base.is_some_and(|b| *v > b)
                && second.is_some_and(|s| s <= event_time + EVENT_SKEW_SECS && !deleted_between(s))
        })
        .map(|(v, _)| *v)
        .min();
    match (skewed, base) {
        (Some(v), _) if recorded_at(v, event_time) => Choice::Duplicate(v),
        (Some(v), _) => Choice::Store(v),
        (None, Some(v)) => Choice::Duplicate(v),
        (None, None) => Choice::Unmatched,
    }
}

/// Whether a delete at `event_time` must be recorded, given the facts known about the key's
/// `recorded` versions. Whatever S3 holds newest (a delete marker of an earlier delete
/// processed after a re-creation, say), a delete not yet recorded is recorded.
pub fn delete_for_event(event_time: i64, recorded: &[EarlierVersion]) -> DeleteChoice {
    if recorded.iter().any(|r| r.deleted && r.time == event_time) {
        DeleteChoice::Duplicate
    } else {
        DeleteChoice::Record
    }
}

/// What the bucket records of a parameter's current version ([`holds_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Recorded from its time on: nothing to do.
    Recorded,
    /// Not recorded: back it up as of its LastModifiedDate.
    Missing,
    /// Recorded, but a delete marker no tombstone of ours explains came after it (a delete by
    /// hand, the original's Lambda, a completed delete that raced a value): the backup says
    /// deleted from that marker on. Recording it again at its own time would change nothing
    /// (the marker stays later); it must be recorded at the time it is found.
    HiddenByMarker,
}

/// Whether the bucket records SSM version `version` (last modified at `last_modified_ms`) as
/// the parameter's state now: recorded from its time on ([`version_for_event`] finds the
/// reconcile's event for it a duplicate), and not behind a delete marker no tombstone of ours
/// explains (`marker_newest` with a value the newest version behind it). The reconcile's and
/// seed-all's question.
pub fn holds_version(
    marker_newest: bool,
    recorded: &[EarlierVersion],
    version: i64,
    last_modified_ms: i64,
) -> Held {
    let history = [(version, Some(last_modified_ms))];
    let since = last_modified_ms.div_euclid(1000);
    if version_for_event(&history, since, recorded, true) != Choice::Duplicate(version) {
        return Held::Missing;
    }
    match marker_newest && recorded.first().is_some_and(|r| !r.deleted) {
        true => Held::HiddenByMarker,
        false => Held::Recorded,
    }
}

/// The newest SSM version whose LastModifiedDate (epoch ms), truncated to the second, is at or
/// before `event_time` (epoch seconds). Versions without a date are never chosen.
pub fn version_at(
    versions: impl IntoIterator<Item = (i64, Option<i64>)>,
    event_time: i64,
) -> Option<i64> {
    versions
        .into_iter()
        .filter(|(_, ms)| ms.is_some_and(|ms| ms.div_euclid(1000) <= event_time))
        .map(|(v, _)| v)
        .max()
}

/// At most this many lost versions are recorded with one change.
pub const BACKFILL_MAX: usize = 10;

/// The versions of `history` before `chosen` that the bucket cannot have recorded, oldest
/// first (at most [`BACKFILL_MAX`], the newest of them): modified after every time it
/// records for the key (so no record of them was written, nor named and then left out), in
/// the seconds between that and `chosen`. A Create or Update whose event was lost leaves its
/// version in SSM's history only; the next version recorded brings it back, at its own
/// LastModifiedDate, while SSM keeps it (100 versions). Nothing recorded at all (a key seen
/// for the first time, `seed-all`): nothing before `chosen` is claimed.
pub fn unrecorded_before(
    history: &[(i64, Option<i64>)],
    chosen: i64,
    recorded: &[EarlierVersion],
) -> Vec<(i64, i64)> {
    let Some(newest_recorded) = recorded.iter().map(|r| r.time).max() else {
        return Vec::new();
    };
    let mut lost: Vec<(i64, i64)> = history
        .iter()
        .filter_map(|&(v, ms)| Some((v, ms?)))
        .filter(|&(v, ms)| v < chosen && ms.div_euclid(1000) > newest_recorded)
        .collect();
    lost.sort_unstable();
    let skip = lost.len().saturating_sub(BACKFILL_MAX);
    lost.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_lost_between_the_recorded_ones_are_found_in_the_history() {
        let ms = |s: i64| Some(s * 1000 + 250);
        let history = [(1, ms(100)), (2, ms(110)), (3, ms(120)), (4, ms(130))];
        // v1 recorded at 100; v2 and v3 lost; v4's event: v2 and v3 come back.
        assert_eq!(
            unrecorded_before(&history, 4, &[value(1, 100)]),
            [(2, 110_250), (3, 120_250)]
        );
        // Recorded up to v3 (a record made at 120): nothing.
        assert!(unrecorded_before(&history, 4, &[value(3, 120), value(1, 100)]).is_empty());
        // A delete recorded at 125 (its event late): v2, v3 are older than it, claimed by
        // nothing here (they may be a deleted incarnation's).
        assert!(unrecorded_before(&history, 4, &[tombstone(125), value(1, 100)]).is_empty());
        // Nothing recorded: seed-all's first backup claims no history.
        assert!(unrecorded_before(&history, 4, &[]).is_empty());
        // Many lost: the newest BACKFILL_MAX.
        let long: Vec<(i64, Option<i64>)> = (1..=30).map(|v| (v, ms(100 + v))).collect();
        let lost = unrecorded_before(&long, 30, &[value(1, 101)]);
        assert_eq!(lost.len(), BACKFILL_MAX);
        assert_eq!(lost.first().map(|l| l.0), Some(20));
        assert_eq!(lost.last().map(|l| l.0), Some(29));
    }

    fn value(ssm_version: i64, time: i64) -> EarlierVersion {
        EarlierVersion {
            version_id: format!("v{ssm_version}@{time}"),
            deleted: false,
            time,
            ssm_version: Some(ssm_version),
            modified_ms: None,
            tags_digest: None,
        }
    }

    fn tombstone(time: i64) -> EarlierVersion {
        EarlierVersion {
            version_id: format!("d@{time}"),
            deleted: true,
            time,
            ssm_version: None,
            modified_ms: None,
            tags_digest: None,
        }
    }

    #[test]
    fn the_version_an_event_stands_for() {
        let s = 1_700_000_000_i64;
        let ms = |sec: i64| Some(sec * 1000 + 400);
        let history = [(1, ms(s - 10)), (2, ms(s + 1)), (3, ms(s + 60))];
        // (what, event time, recorded, expected)
        let cases = [
            (
                "prompt: the version of the event's second",
                s + 1,
                vec![value(1, s - 10)],
                Choice::Store(2),
            ),
            (
                "the same event delivered again",
                s + 1,
                vec![value(2, s + 1), value(1, s - 10)],
                Choice::Duplicate(2),
            ),
            (
                "LastModifiedDate a second after the event: not v1 again",
                s,
                vec![value(1, s - 10)],
                Choice::Store(2),
            ),
            (
                "v1's own event again",
                s - 10,
                vec![value(1, s - 10)],
                Choice::Duplicate(1),
            ),
            (
                "v1's own event again, v2 recorded since",
                s - 10,
                vec![value(2, s + 1), value(1, s - 10)],
                Choice::Duplicate(1),
            ),
            (
                "before any version, within the skew: maybe a deleted incarnation's",
                s - 12,
                vec![],
                Choice::Unmatched,
            ),
            (
                "before any version, beyond the skew",
                s - 20,
                vec![],
                Choice::Unmatched,
            ),
            (
                "recorded from before (the reconcile's, another event), nothing newer near",
                s + 30,
                vec![value(2, s + 1)],
                Choice::Duplicate(2),
            ),
            (
                "never skips to a version far after the event",
                s + 57,
                vec![value(2, s + 1)],
                Choice::Duplicate(2),
            ),
            (
                "skew reaches the next version",
                s + 58,
                vec![value(2, s + 1)],
                Choice::Store(3),
            ),
            (
                "skew reaches the next version, recorded for this event already",
                s + 58,
                vec![value(3, s + 58), value(2, s + 1)],
                Choice::Duplicate(3),
            ),
        ];
        for (what, event_time, recorded, expected) in cases {
            assert_eq!(
                version_for_event(&history, event_time, &recorded, true),
                expected,
                "{what}"
            );
        }
    }

    /// Issue 28, scenario 1: `/p` backed up at version 1, deleted and re-created (SSM starts
    /// again at version 1), the Create processed before the held Delete. The old check
    /// compared version numbers only and dropped the Create as a duplicate: a restore to now
    /// then deleted the live parameter (or, with the Delete lost, wrote the old value back).
    #[test]
    fn a_re_created_parameters_create_is_not_a_duplicate_of_the_old_version_1() {
        let s = 1_700_000_000_i64;
        let history = [(1, Some((s + 40) * 1000 + 250))];
        assert_eq!(
            version_for_event(&history, s + 40, &[value(1, s)], true),
            Choice::Store(1)
        );
        // Its own redelivery is one.
        assert_eq!(
            version_for_event(&history, s + 40, &[value(1, s + 40), value(1, s)], true),
            Choice::Duplicate(1)
        );
    }

    /// Issue 28, scenario 3: v5 written, labelled 3 s later, the label's event processed
    /// first (v5 recorded from the label's time). The Update must still record v5 from its own
    /// time, or a restore in between writes v4 back.
    #[test]
    fn a_version_recorded_first_at_its_labels_time_is_recorded_at_its_own() {
        let s = 1_700_000_000_i64;
        let history = [(4, Some((s - 100) * 1000)), (5, Some(s * 1000 + 10))];
        let after_label = [value(5, s + 3), value(4, s - 100)];
        assert_eq!(
            version_for_event(&history, s, &after_label, true),
            Choice::Store(5)
        );
        // The label event redelivered is a duplicate; a later label event is the same version.
        assert_eq!(
            version_for_event(&history, s + 3, &after_label, false),
            Choice::Duplicate(5)
        );
        assert_eq!(
            version_for_event(&history, s + 9, &after_label, false),
            Choice::Duplicate(5)
        );
    }

    /// Found by the simulation (seed 54): a label event processed after a later version was
    /// written stands for the version labelled, never the next one within the skew.
    #[test]
    fn a_late_label_event_stands_for_the_version_of_its_time() {
        let s = 1_700_000_000_i64;
        let history = [
            (2, Some((s - 1) * 1000 + 561)),
            (3, Some((s + 1) * 1000 + 93)),
        ];
        let recorded = [value(3, s + 1), value(2, s - 1)];
        assert_eq!(
            version_for_event(&history, s, &recorded, false),
            Choice::Duplicate(2)
        );
        // An update's event at the same time is the next version's, its date skewed.
        assert_eq!(
            version_for_event(&history, s, &recorded[1..], true),
            Choice::Store(3)
        );
    }

    /// Issue 28, scenario 2: `/q` deleted, re-created, the Create processed before the Delete
    /// (S3's newest entry is then a delete marker while `/q` exists), then deleted again. The
    /// old writer saw "already absent" and wrote nothing: a restore to now brought `/q` back.
    #[test]
    fn a_delete_is_recorded_whatever_s3_holds_newest() {
        let s = 1_700_000_000_i64;
        let recorded = [tombstone(s + 10), value(1, s + 20), value(3, s)];
        assert_eq!(delete_for_event(s + 30, &recorded), DeleteChoice::Record);
        assert_eq!(delete_for_event(s + 10, &recorded), DeleteChoice::Duplicate);
        assert_eq!(delete_for_event(s + 30, &[]), DeleteChoice::Record);
    }

    /// Found by the simulation (seed 166): a Create's event delivered again after the
    /// parameter was deleted and re-created within the skew is not the new version's.
    #[test]
    fn the_skew_never_reaches_across_a_recorded_delete() {
        let s = 1_700_000_000_i64;
        let history = [(1, Some((s + 2) * 1000 + 733))];
        let recorded = [tombstone(s + 1), value(1, s)];
        assert_eq!(
            version_for_event(&history, s, &recorded, true),
            Choice::Unmatched
        );
        // Seeds 628, 2700: the delete not recorded yet (or nothing at all): the event may
        // be the old incarnation's, so it is not taken for the new one's.
        for recorded in [&[value(1, s - 4)][..], &[]] {
            assert_eq!(
                version_for_event(&history, s, recorded, true),
                Choice::Unmatched
            );
        }
    }

    #[test]
    fn the_reconcile_finds_the_current_version_recorded_only_where_a_restore_would_read_it() {
        let s = 1_700_000_000_i64;
        let lm = s * 1000 + 250;
        let own = EarlierVersion {
            modified_ms: Some(lm),
            ..value(1, s)
        };
        let own = std::slice::from_ref(&own);
        assert_eq!(holds_version(false, own, 1, lm), Held::Recorded);
        // A re-created version 1 is another version.
        assert_eq!(holds_version(false, own, 1, lm + 60_000), Held::Missing);
        // A marker no tombstone explains after it: the backup says deleted.
        assert_eq!(holds_version(true, own, 1, lm), Held::HiddenByMarker);
        // Our tombstone behind the marker (an earlier delete processed after the Create):
        // the writer sees the tombstone alone there and backs the version up once more.
        assert_eq!(
            holds_version(true, &[tombstone(s - 5)], 1, lm),
            Held::Missing
        );
    }

    #[test]
    fn version_at_event_time() {
        let s = 1_700_000_000_i64;
        let ms = |sec: i64, frac: i64| sec * 1000 + frac;
        // (what, history as (version, LastModifiedDate ms), event time, expected)
        let cases: Vec<(&str, Vec<(i64, Option<i64>)>, i64, Option<i64>)> = vec![
            (
                "current version is the event's",
                vec![(1, Some(ms(s, 10)))],
                s,
                Some(1),
            ),
            (
                "same second, sub-second date",
                vec![(1, Some(ms(s - 5, 0))), (2, Some(ms(s, 999)))],
                s,
                Some(2),
            ),
            (
                "v1 -> v2 -> v3 processed late: each event gets its own",
                vec![
                    (1, Some(ms(s, 1))),
                    (2, Some(ms(s + 1, 1))),
                    (3, Some(ms(s + 2, 1))),
                ],
                s + 1,
                Some(2),
            ),
            (
                "changed only after the event",
                vec![(4, Some(ms(s + 3, 0)))],
                s,
                None,
            ),
            ("no dates", vec![(1, None)], s, None),
            ("empty", vec![], s, None),
        ];
        for (what, history, at, expected) in cases {
            assert_eq!(version_at(history, at), expected, "{what}");
        }
    }
}
