use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// One write in a generated history.
#[derive(Debug, Clone)]
enum Write {
    /// A value version: event time `lag` seconds before it was written, an SSM version or not
    /// (the original's objects), `tagged` false for a version without `ssmbakTime`.
    Value {
        lag: i64,
        version: Option<i64>,
        tagged: bool,
    },
    /// Our delete: a tombstone `lag` seconds late, then its marker.
    Delete { lag: i64 },
    /// A plain delete marker (the original's delete).
    Marker,
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        4 => (0..30_i64, proptest::option::of(1..5_i64), prop_oneof![9 => Just(true), 1 => Just(false)])
            .prop_map(|(lag, version, tagged)| Write::Value { lag, version, tagged }),
        1 => (0..30_i64).prop_map(|lag| Write::Delete { lag }),
        1 => Just(Write::Marker),
    ]
}

/// The listing (as the SDK returns it) and every version's fields.
fn history(writes: &[(i64, Write)], coarse: bool) -> (Vec<Listed>, Vec<Option<StoredFields>>) {
    let mut clock_ms = 1_700_000_000_000_i64;
    let mut written: Vec<(Listed, Option<StoredFields>)> = Vec::new();
    for (n, (gap_ms, w)) in writes.iter().enumerate() {
        clock_ms += gap_ms;
        let lm = if coarse {
            clock_ms.div_euclid(1000) * 1000
        } else {
            clock_ms
        };
        let lm_secs = lm.div_euclid(1000);
        let listed = |marker: bool, suffix: &str| Listed {
            version_id: format!("w{n}{suffix}"),
            last_modified_ms: lm,
            is_delete_marker: marker,
        };
        match w {
            Write::Value {
                lag,
                version,
                tagged,
            } => {
                let fields = StoredFields {
                    event_time: tagged.then_some(lm_secs - lag),
                    version: *version,
                    ..StoredFields::default()
                };
                written.push((listed(false, ""), Some(fields)));
            }
            Write::Delete { lag } => {
                let fields = StoredFields {
                    deleted_at: Some(lm_secs - lag),
                    ..StoredFields::default()
                };
                written.push((listed(false, ""), Some(fields)));
                written.push((listed(true, "m"), None));
            }
            Write::Marker => written.push((listed(true, ""), None)),
        }
    }
    let (mut markers, mut versions): (Vec<_>, Vec<_>) =
        written.into_iter().partition(|(l, _)| l.is_delete_marker);
    versions.reverse();
    markers.reverse();
    versions.extend(markers);
    versions.into_iter().unzip()
}

fn full_answer(listed: &[Listed], fields: &[Option<StoredFields>], at: i64) -> Decision {
    let known: HashMap<usize, &StoredFields> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
        .collect();
    let entries = entries(listed, &known);
    match pit::state_at(&entries, at) {
        StateAt::NoVersion => Decision::NoVersion,
        StateAt::Deleted { at, .. } => Decision::Deleted { at },
        StateAt::Present { at, entry } => Decision::Present {
            at,
            index: entries
                .iter()
                .position(|e| e.version_id == entry.version_id)
                .unwrap_or_default(),
        },
    }
}

fn fetch<'f>(
    fields: &'f [Option<StoredFields>],
    which: Vec<usize>,
    known: &mut HashMap<usize, &'f StoredFields>,
) {
    for i in which {
        if let Some(f) = fields.get(i).and_then(Option::as_ref) {
            known.insert(i, f);
        }
    }
}

fn lazy_answer(listed: &[Listed], fields: &[Option<StoredFields>], at: i64) -> (Decision, usize) {
    let lazy = LazyRead::new(listed, at);
    let mut known: HashMap<usize, &StoredFields> = HashMap::new();
    fetch(fields, lazy.first_round(), &mut known);
    let second = lazy.second_round(&known);
    fetch(fields, second, &mut known);
    (lazy.decide(&known), known.len())
}

proptest! {
    /// Fetching only what can matter gives the same answer as reading every version, for
    /// histories with out-of-order and late writes, duplicates, tombstones, plain markers and
    /// whole-second timestamps.
    #[test]
    fn lazy_reading_matches_reading_everything(
        writes in prop::collection::vec((0..2500_i64, write()), 0..14),
        coarse in any::<bool>(),
        offset in -5..60_i64,
    ) {
        let (listed, fields) = history(&writes, coarse);
        let start = 1_700_000_000_i64;
        let end = listed.iter().map(|l| l.last_modified_ms.div_euclid(1000)).max().unwrap_or(start);
        for at in [start - 31, start + offset, end - offset.abs(), end, end + 1] {
            let (lazy, _) = lazy_answer(&listed, &fields, at);
            prop_assert_eq!(lazy, full_answer(&listed, &fields, at), "at {}", at);
        }
    }
}

#[test]
fn fetches_the_candidate_and_only_what_was_written_after_it() {
    // Ten prompt updates a minute apart.
    let writes: Vec<(i64, Write)> = (0..10)
        .map(|i| {
            (
                60_000,
                Write::Value {
                    lag: 0,
                    version: Some(i + 1),
                    tagged: true,
                },
            )
        })
        .collect();
    let (listed, fields) = history(&writes, true);
    let first = listed
        .iter()
        .map(|l| l.last_modified_ms.div_euclid(1000))
        .min()
        .unwrap_or(0);
    // After the last write: the newest version alone.
    let (decision, fetched) = lazy_answer(&listed, &fields, first + 10 * 60);
    assert!(matches!(decision, Decision::Present { .. }));
    assert_eq!(fetched, 1);
    // Between the 4th and the 5th: the 4th, and the six written after T (any of them could be a
    // late-processed change from before T); never the three older ones.
    let (decision, fetched) = lazy_answer(&listed, &fields, first + 3 * 60 + 30);
    assert!(matches!(decision, Decision::Present { .. }));
    assert_eq!(fetched, 7);
}
