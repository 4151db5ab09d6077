use proptest::prelude::*;

use super::*;

fn value(id: &str, lm_ms: i64, event_time: Option<i64>, ssm_version: Option<i64>) -> VersionEntry {
    VersionEntry {
        version_id: id.to_owned(),
        last_modified_ms: lm_ms,
        is_delete_marker: false,
        event_time,
        deleted_at: None,
        ssm_version,
    }
}

fn marker(id: &str, lm_ms: i64) -> VersionEntry {
    VersionEntry {
        version_id: id.to_owned(),
        last_modified_ms: lm_ms,
        is_delete_marker: true,
        event_time: None,
        deleted_at: None,
        ssm_version: None,
    }
}

fn tombstone(id: &str, lm_ms: i64, deleted_at: i64) -> VersionEntry {
    VersionEntry {
        deleted_at: Some(deleted_at),
        ..value(id, lm_ms, None, None)
    }
}

/// `"v1"`, `"deleted"` or `"-"`: the state in one word, for table tests.
fn word(entries: &[VersionEntry], at: i64) -> String {
    match state_at(entries, at) {
        StateAt::NoVersion => "-".to_owned(),
        StateAt::Deleted { .. } => "deleted".to_owned(),
        StateAt::Present { entry, .. } => entry.version_id.clone(),
    }
}

#[test]
fn original_format_table() {
    let s = 1_000_000_i64; // a base time in seconds
    let ms = |sec: i64| sec * 1000;
    // (what, entries, query time, expected)
    let cases: Vec<(&str, Vec<VersionEntry>, i64, &str)> = vec![
        ("nothing stored", vec![], s, "-"),
        (
            "before the first version",
            vec![value("a", ms(s + 5), Some(s), None)],
            s - 1,
            "-",
        ),
        (
            "inclusive at the event second",
            vec![value("a", ms(s + 5), Some(s), None)],
            s,
            "a",
        ),
        (
            "event time, not LastModified, decides",
            vec![value("a", ms(s + 100), Some(s), None)],
            s + 50,
            "a",
        ),
        (
            "no ssmbakTime: LastModified",
            vec![value("a", ms(s) + 999, None, None)],
            s,
            "a",
        ),
        (
            "stale delete marker never beats a newer backup",
            vec![
                value("new", ms(s), Some(s + 20), None),
                marker("m", ms(s + 10)),
            ],
            s + 30,
            "new",
        ),
        (
            "delete marker after the value",
            vec![value("a", ms(s), Some(s), None), marker("m", ms(s + 10))],
            s + 10,
            "deleted",
        ),
        (
            "recreated after a delete",
            vec![
                value("a", ms(s), Some(s), None),
                marker("m", ms(s + 10)),
                value("b", ms(s + 20), Some(s + 20), None),
            ],
            s + 20,
            "b",
        ),
        (
            "equal event time: the newer write",
            vec![
                value("a", ms(s + 1), Some(s), None),
                value("b", ms(s + 2), Some(s), None),
            ],
            s,
            "b",
        ),
        (
            "equal time: the delete marker",
            vec![value("a", ms(s), None, None), marker("m", ms(s))],
            s,
            "deleted",
        ),
        (
            "sub-second LastModified is truncated",
            vec![marker("m", ms(s) + 900)],
            s,
            "deleted",
        ),
    ];
    for (what, entries, at, expected) in cases {
        assert_eq!(word(&entries, at), expected, "{what}");
    }
}

#[test]
fn tombstone_table() {
    let s = 2_000_000_i64;
    let ms = |sec: i64| sec * 1000;
    // Deleted at s+10, processed at s+500 (an outage): tombstone then marker.
    let late_delete = vec![
        value("a", ms(s + 1), Some(s), Some(1)),
        tombstone("t", ms(s + 500), s + 10),
        marker("m", ms(s + 500) + 3),
    ];
    assert_eq!(word(&late_delete, s + 9), "a");
    assert_eq!(
        word(&late_delete, s + 10),
        "deleted",
        "the delete's own time, not processing"
    );
    assert_eq!(word(&late_delete, s + 600), "deleted");

    // Re-created at s+20, processed before the delete was: the paired marker must not hide it.
    let mut recreated = late_delete.clone();
    recreated.push(value("b", ms(s + 21), Some(s + 20), Some(1)));
    assert_eq!(word(&recreated, s + 15), "deleted");
    assert_eq!(word(&recreated, s + 20), "b");
    assert_eq!(
        word(&recreated, s + 600),
        "b",
        "marker takes the tombstone's time"
    );

    // A tombstone whose marker write has not happened yet still reads as deleted.
    let half = vec![
        value("a", ms(s), Some(s), Some(1)),
        tombstone("t", ms(s + 9), s + 5),
    ];
    assert_eq!(word(&half, s + 5), "deleted");

    // A marker not right after a tombstone (a value version between) takes its LastModified.
    let unpaired = vec![
        tombstone("t", ms(s + 5), s + 5),
        value("b", ms(s + 6), Some(s + 6), Some(1)),
        marker("m", ms(s + 50)),
    ];
    assert_eq!(word(&unpaired, s + 49), "b");
    assert_eq!(word(&unpaired, s + 50), "deleted");
}

#[test]
fn write_order_within_a_second_comes_from_the_listing() {
    let s = 4_000_000_i64;
    let ms = |sec: i64| sec * 1000;
    // v1 (event s-10) and a delete (event s-5) both processed within second s, then a
    // re-creation (event s-3) at s+1. S3 lists versions newest first: tombstone before v1.
    let listing = vec![
        value("v2", ms(s + 1), Some(s - 3), Some(1)),
        tombstone("t", ms(s), s - 5),
        value("v1", ms(s), Some(s - 10), Some(1)),
        marker("m", ms(s)),
    ];
    assert_eq!(word(&listing, s - 5), "deleted");
    assert_eq!(
        word(&listing, s + 1),
        "v2",
        "the marker is the tombstone's, not a later delete"
    );
}

#[test]
fn same_second_versions_order_by_ssm_version() {
    let s = 3_000_000_i64;
    // v3 processed before v2: S3 order must not matter.
    let entries = vec![
        value("v3", s * 1000 + 10, Some(s), Some(3)),
        value("v2", s * 1000 + 20, Some(s), Some(2)),
    ];
    assert_eq!(word(&entries, s), "v3");
}

/// One change in SSM: a value with its SSM version, or a delete.
#[derive(Debug, Clone)]
enum Change {
    Value(i64),
    Delete,
}

fn changes() -> impl Strategy<Value = Vec<(i64, Change)>> {
    // Strictly increasing event times (the events have whole-second resolution; ties are the
    // table tests' business).
    prop::collection::vec(
        (1..5_i64, prop_oneof![3 => Just(false), 1 => Just(true)]),
        0..12,
    )
    .prop_map(|steps| {
        let mut t = 1_700_000_000;
        let mut version = 0;
        steps
            .into_iter()
            .map(|(gap, delete)| {
                t += gap;
                if delete {
                    version = 0;
                    (t, Change::Delete)
                } else {
                    version += 1;
                    (t, Change::Value(version))
                }
            })
            .collect()
    })
}

/// The stored versions when the changes are processed in `order` (a permutation), the writes
/// `lag` ms apart, listed as the SDK returns them: versions newest first, then delete markers
/// newest first. With `coarse`, LastModified has whole seconds, as S3 listings do, and
/// processing steps are at least a second apart (a tombstone and its marker still share one).
fn store(
    changes: &[(i64, Change)],
    order: &[usize],
    lag: &[i64],
    coarse: bool,
) -> Vec<VersionEntry> {
    let last_event = changes.iter().map(|(t, _)| *t).max().unwrap_or(0);
    let mut clock_ms = (last_event + 1) * 1000;
    let stamp = |ms: i64| {
        if coarse {
            ms.div_euclid(1000) * 1000
        } else {
            ms
        }
    };
    let mut written = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        clock_ms += lag[n % lag.len()] + if coarse { 1000 } else { 0 };
        let (t, change) = &changes[i];
        match change {
            Change::Value(v) => {
                written.push(value(&format!("c{i}"), stamp(clock_ms), Some(*t), Some(*v)))
            }
            Change::Delete => {
                written.push(tombstone(&format!("c{i}"), stamp(clock_ms), *t));
                clock_ms += 1;
                written.push(marker(&format!("m{i}"), stamp(clock_ms)));
            }
        }
    }
    let (mut markers, mut versions): (Vec<_>, Vec<_>) =
        written.into_iter().partition(|e| e.is_delete_marker);
    versions.reverse();
    markers.reverse();
    versions.extend(markers);
    versions
}

fn truth(changes: &[(i64, Change)], at: i64) -> String {
    match changes
        .iter()
        .enumerate()
        .rev()
        .find(|(_, (t, _))| *t <= at)
    {
        None => "-".to_owned(),
        Some((_, (_, Change::Delete))) => "deleted".to_owned(),
        Some((i, (_, Change::Value(_)))) => format!("c{i}"),
    }
}

proptest! {
    /// Whatever order the Lambda processes the changes in, and however late, every point in
    /// time reads back as it really was.
    #[test]
    fn any_processing_order_reads_back_the_truth(
        (changes, order) in changes().prop_flat_map(|c| {
            let n = c.len();
            (Just(c), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        }),
        lag in prop::collection::vec(0..3000_i64, 1..5),
        coarse in any::<bool>(),
    ) {
        let entries = store(&changes, &order, &lag, coarse);
        let first = changes.first().map_or(1_700_000_000, |(t, _)| *t);
        let last = changes.last().map_or(1_700_000_000, |(t, _)| *t);
        for at in (first - 2)..=(last + 2) {
            prop_assert_eq!(word(&entries, at), truth(&changes, at), "at {}", at);
        }
    }

    /// The original's objects (no tags): the last write whose LastModified second is at or
    /// before T, whatever the interleaving of versions and markers in the listing.
    #[test]
    fn untagged_versions_follow_last_modified(
        writes in prop::collection::vec((1..1500_i64, any::<bool>()), 1..15),
        at in 0..25_i64,
    ) {
        let mut lm = 0;
        let written: Vec<VersionEntry> = writes
            .iter()
            .enumerate()
            .map(|(i, (gap, is_marker))| {
                lm += gap;
                if *is_marker { marker(&format!("x{i}"), lm) } else { value(&format!("x{i}"), lm, None, None) }
            })
            .collect();
        let expected = written.iter().rev().find(|e| e.last_modified_ms.div_euclid(1000) <= at).cloned();
        let (mut markers, mut listing): (Vec<_>, Vec<_>) = written.into_iter().partition(|e| e.is_delete_marker);
        listing.reverse();
        markers.reverse();
        listing.extend(markers);
        match (expected, state_at(&listing, at)) {
            (None, StateAt::NoVersion) => {}
            (Some(e), StateAt::Deleted { entry, .. }) => prop_assert_eq!(&e, entry),
            (Some(e), StateAt::Present { entry, .. }) => prop_assert_eq!(&e, entry),
            (e, g) => prop_assert!(false, "expected {:?}, got {:?}", e, g),
        }
    }
}
