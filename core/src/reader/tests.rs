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
fn history(
    writes: &[(i64, Write)],
    coarse: bool,
) -> (Vec<ListedVersion>, Vec<Option<StoredFields>>) {
    let mut clock_ms = 1_700_000_000_000_i64;
    let mut written: Vec<(ListedVersion, Option<StoredFields>)> = Vec::new();
    for (n, (gap_ms, w)) in writes.iter().enumerate() {
        clock_ms += gap_ms;
        let lm = if coarse {
            clock_ms.div_euclid(1000) * 1000
        } else {
            clock_ms
        };
        let lm_secs = lm.div_euclid(1000);
        let listed = |marker: bool, suffix: &str| ListedVersion {
            version_id: format!("w{n}{suffix}"),
            last_modified_ms: lm,
            is_delete_marker: marker,
            ..ListedVersion::default()
        };
        match w {
            Write::Value {
                lag,
                version,
                tagged,
            } => {
                let mut fields = StoredFields {
                    event_time: tagged.then_some(lm_secs - lag),
                    ..StoredFields::default()
                };
                fields.attributes.version = *version;
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
    if let Some((last, _)) = written.last_mut() {
        last.is_latest = true;
    }
    let (mut markers, mut versions): (Vec<_>, Vec<_>) =
        written.into_iter().partition(|(l, _)| l.is_delete_marker);
    versions.reverse();
    markers.reverse();
    versions.extend(markers);
    versions.into_iter().unzip()
}

fn full_answer(listed: &[ListedVersion], fields: &[Option<StoredFields>], at: i64) -> StateAt {
    let known: HashMap<usize, &StoredFields> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
        .collect();
    pit::state_at(&entries(listed, &known), at)
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

fn lazy_answer(
    listed: &[ListedVersion],
    fields: &[Option<StoredFields>],
    at: i64,
) -> (Option<StateAt>, usize) {
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
            // The two rounds always settle the answer (no third round), and it is exact.
            prop_assert_eq!(lazy, Some(full_answer(&listed, &fields, at)), "at {}", at);
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
    assert!(matches!(decision, Some(StateAt::Present { .. })));
    assert_eq!(fetched, 1);
    // Between the 4th and the 5th: the 4th, and the six written after T (any of them could be a
    // late-processed change from before T); never the three older ones.
    let (decision, fetched) = lazy_answer(&listed, &fields, first + 3 * 60 + 30);
    assert!(matches!(decision, Some(StateAt::Present { .. })));
    assert_eq!(fetched, 7);
}

#[test]
fn an_unread_version_that_could_be_the_answer_leaves_it_unsettled() {
    let version = |id: &str, second: i64| ListedVersion {
        version_id: id.to_owned(),
        last_modified_ms: second * 1000,
        ..ListedVersion::default()
    };
    let listed = [version("v2", 100), version("v1", 90)];
    let fields = |event_time| StoredFields {
        event_time: Some(event_time),
        ..StoredFields::default()
    };
    let (v1, v2) = (fields(90), fields(100));
    let lazy = LazyRead::new(&listed, 200);
    // Only the older version read: the newer one, unread, may be the answer.
    assert_eq!(lazy.decide(&HashMap::from([(1, &v1)])), None);
    assert_eq!(lazy.decide(&HashMap::new()), None);
    // The newer one read: the older one, written before its time, cannot win.
    assert_eq!(
        lazy.decide(&HashMap::from([(0, &v2)])),
        Some(StateAt::Present { at: 100, index: 0 })
    );
}

/// A listing of several keys as S3 returns it in one piece: keys in order, each key's versions
/// newest first, then (in the XML, interleaved; in the SDK, separately) its delete markers.
fn multi_key_listing() -> impl Strategy<Value = Vec<(String, ListedVersion)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["a", "a/b", "ab", "b"]),
            any::<bool>(),
            0..50_i64,
        ),
        0..30,
    )
    .prop_map(|entries| {
        let mut out: Vec<(String, ListedVersion)> = entries
            .into_iter()
            .enumerate()
            .map(|(n, (key, marker, t))| {
                let listed = ListedVersion {
                    version_id: format!("v{n}"),
                    last_modified_ms: t * 1000,
                    is_delete_marker: marker,
                    ..ListedVersion::default()
                };
                (key.to_owned(), listed)
            })
            .collect();
        // S3's order: by key, then newest first; the first of each key is its latest.
        out.sort_by(|(k1, l1), (k2, l2)| {
            k1.cmp(k2)
                .then(l2.last_modified_ms.cmp(&l1.last_modified_ms))
        });
        for i in 0..out.len() {
            out[i].1.is_latest = i == 0 || out[i - 1].0 != out[i].0;
        }
        out
    })
}

proptest! {
    /// However the listing is cut into pages (versions and markers cut at different places, a
    /// key's entries on several pages, pages of markers only), the merged listing, and so every
    /// point-in-time answer, is the same as from one page.
    #[test]
    fn pages_split_anywhere_merge_to_the_same_answer(
        entries in multi_key_listing(),
        cuts in prop::collection::vec(0..30_usize, 0..6),
        at in 0..50_i64,
    ) {
        let whole = merge_pages([entries.clone()]);
        // Versions and markers are cut independently, as S3 fills a page with both.
        let (markers, versions): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, l)| l.is_delete_marker);
        let split = |list: Vec<(String, ListedVersion)>, cuts: &[usize]| {
            let mut pages = vec![Vec::new()];
            for (i, e) in list.into_iter().enumerate() {
                if cuts.contains(&i) {
                    pages.push(Vec::new());
                }
                if let Some(p) = pages.last_mut() {
                    p.push(e);
                }
            }
            pages
        };
        let vpages = split(versions, &cuts);
        let mpages = split(markers, &cuts.iter().map(|c| c / 2).collect::<Vec<_>>());
        let n = vpages.len().max(mpages.len());
        let pages: Vec<Vec<(String, ListedVersion)>> = (0..n)
            .map(|i| vpages.get(i).cloned().unwrap_or_default().into_iter().chain(mpages.get(i).cloned().unwrap_or_default()).collect())
            .collect();
        let merged = merge_pages(pages);
        prop_assert_eq!(&merged, &whole);
        for (key, listed) in &whole {
            // The newest second at or before T; in it, the latest entry if it is there, else a
            // version before a marker (the order of those two is unknown: never a delete).
            let eligible: Vec<&ListedVersion> = listed.iter().filter(|l| l.last_modified_ms.div_euclid(1000) <= at).collect();
            let newest = eligible.iter().map(|l| l.last_modified_ms).max();
            let group: Vec<&&ListedVersion> = eligible.iter().filter(|l| Some(l.last_modified_ms) == newest).collect();
            let brute = group
                .iter()
                .find(|l| l.is_latest)
                .or_else(|| group.iter().find(|l| !l.is_delete_marker))
                .or_else(|| group.first())
                .map(|l| l.version_id.clone());
            let got = by_last_modified(&merged[key], at).map(|i| merged[key][i].version_id.clone());
            prop_assert_eq!(got, brute, "key {}", key);
        }
    }
}
