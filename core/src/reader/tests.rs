use std::collections::HashMap;

use proptest::prelude::*;

use super::lazy::{entries, Round};
use super::*;
use crate::format::StoredFields;
use crate::pit;

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

/// Which earlier versions one of our writes names (see [`format::earlier`]).
#[derive(Debug, Clone, Copy)]
enum Naming {
    /// Those the key's current version placed, as the writer does.
    Whole,
    /// Only the first `n` of them (the metadata limit).
    Cut(usize),
    /// Those of the version before the current one: another writer wrote in between.
    Stale,
    /// None (an older release of ours).
    Nothing,
}

fn naming() -> impl Strategy<Value = Naming> {
    prop_oneof![
        6 => Just(Naming::Whole),
        1 => (0..3_usize).prop_map(Naming::Cut),
        1 => Just(Naming::Stale),
        1 => Just(Naming::Nothing),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        4 => (0..30_i64, proptest::option::of(1..5_i64), prop_oneof![9 => Just(true), 1 => Just(false)])
            .prop_map(|(lag, version, tagged)| Write::Value { lag, version, tagged }),
        1 => (0..30_i64).prop_map(|lag| Write::Delete { lag }),
        1 => Just(Write::Marker),
    ]
}

/// The listing (as the SDK returns it) and every version's fields; our versions name no
/// earlier ones.
fn history(
    writes: &[(i64, Write)],
    coarse: bool,
) -> (Vec<ListedVersion>, Vec<Option<StoredFields>>) {
    let writes: Vec<(i64, Write, Naming)> = writes
        .iter()
        .map(|(gap, w)| (*gap, w.clone(), Naming::Nothing))
        .collect();
    named_history(&writes, coarse)
}

/// The earlier versions a write named `naming` names, after `written` (in write order, with
/// whether our writer's `HeadObject` would read each as ours).
fn earlier_for(
    naming: Naming,
    written: &[(ListedVersion, Option<StoredFields>, bool)],
) -> Vec<format::EarlierVersion> {
    let seen = match naming {
        Naming::Nothing => return Vec::new(),
        Naming::Stale => written.len().checked_sub(2),
        Naming::Whole | Naming::Cut(_) => written.len().checked_sub(1),
    };
    let named = match seen.map(|i| &written[i]) {
        // A marker is current: the writer's HeadObject finds nothing (404).
        Some((l, Some(f), true)) if !l.is_delete_marker => format::earlier::after(&l.version_id, f),
        _ => Vec::new(),
    };
    match naming {
        Naming::Cut(n) => named.into_iter().take(n).collect(),
        _ => named,
    }
}

/// [`history`] with our versions naming earlier ones as each write says.
fn named_history(
    writes: &[(i64, Write, Naming)],
    coarse: bool,
) -> (Vec<ListedVersion>, Vec<Option<StoredFields>>) {
    let mut clock_ms = 1_700_000_000_000_i64;
    // Each with whether it is ours (the writer reads its metadata).
    let mut written: Vec<(ListedVersion, Option<StoredFields>, bool)> = Vec::new();
    for (n, (gap_ms, w, naming)) in writes.iter().enumerate() {
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
                // The original's versions (no SSM version) and foreign ones name nothing.
                let ours = version.is_some() && *tagged;
                let mut fields = StoredFields {
                    event_time: tagged.then_some(lm_secs - lag),
                    earlier: match ours {
                        true => earlier_for(*naming, &written),
                        false => Vec::new(),
                    },
                    ..StoredFields::default()
                };
                fields.attributes.version = *version;
                written.push((listed(false, ""), Some(fields), ours));
            }
            Write::Delete { lag } => {
                let fields = StoredFields {
                    deleted_at: Some(lm_secs - lag),
                    earlier: earlier_for(*naming, &written),
                    ..StoredFields::default()
                };
                written.push((listed(false, ""), Some(fields), true));
                written.push((listed(true, "m"), None, false));
            }
            Write::Marker => written.push((listed(true, ""), None, false)),
        }
    }
    if let Some((last, _, _)) = written.last_mut() {
        last.is_latest = true;
    }
    let (mut markers, mut versions): (Vec<_>, Vec<_>) = written
        .into_iter()
        .partition(|(l, _, _)| l.is_delete_marker);
    versions.reverse();
    markers.reverse();
    versions.extend(markers);
    versions.into_iter().map(|(l, f, _)| (l, f)).unzip()
}

fn full_answer(listed: &[ListedVersion], fields: &[Option<StoredFields>], at: i64) -> StateAt {
    let known: HashMap<usize, &StoredFields> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
        .collect();
    pit::state_at(&entries(listed, &known), at)
}

/// What a lazy read knows: each version it read or had placed, and how many it read.
#[derive(Default)]
struct Known {
    fetched: HashMap<usize, Fetched>,
    reads: usize,
}

impl Known {
    fn view(&self) -> HashMap<usize, &StoredFields> {
        fields_of(&self.fetched)
    }

    fn fetch(&mut self, fields: &[Option<StoredFields>], which: Vec<usize>) {
        for i in which {
            if let Some(f) = fields.get(i).and_then(Option::as_ref) {
                if !self.fetched.contains_key(&i) {
                    self.reads += 1;
                    let read = Fetched {
                        fields: f.clone(),
                        body: None,
                        depth: Depth::Full,
                    };
                    self.fetched.insert(i, read);
                }
            }
        }
    }
}

/// [`BucketReader::state_at`]'s reading, on generated fields: the answer (`None` when the lazy
/// rounds left it unsettled and everything had to be read), and the number of versions read.
fn lazy_answer(
    listed: &[ListedVersion],
    fields: &[Option<StoredFields>],
    at: i64,
) -> (Option<StateAt>, usize) {
    lazy_answer_indexed(listed, fields, at, &[])
}

/// [`lazy_answer`] with the versions `indexed` says placed by the bucket's index (see
/// [`crate::index`]) before anything is read, as [`BucketReader::state_at`] does.
fn lazy_answer_indexed(
    listed: &[ListedVersion],
    fields: &[Option<StoredFields>],
    at: i64,
    indexed: &[bool],
) -> (Option<StateAt>, usize) {
    let lazy = LazyRead::new(listed, at);
    let entries: Vec<format::EarlierVersion> = (0..listed.len())
        .filter(|&i| indexed.get(i).copied().unwrap_or(false))
        .filter_map(|i| {
            let f = fields.get(i)?.as_ref()?;
            format::EarlierVersion::of(&listed[i].version_id, f)
        })
        // An entry whose version is not listed (written after the listing, expired, a copy's
        // old id) places nothing.
        .chain([format::EarlierVersion {
            version_id: "not-listed".to_owned(),
            deleted: false,
            time: at,
            ssm_version: Some(1),
            modified_ms: None,
            tags_digest: None,
        }])
        .collect();
    let mut known = Known {
        fetched: placed_by_index(listed, &entries),
        reads: 0,
    };
    if lazy.decide(&known.view()).is_none() {
        known.fetch(fields, lazy.first_round());
    }
    // The rounds the reader runs, on the same decisions (both formats' order tried).
    let mut settling = lazy.settling(true);
    while let Some(reads) = settling.next_reads(&mut known.fetched) {
        if reads.round == Round::Everything {
            return (None, known.reads);
        }
        known.fetch(fields, reads.versions);
    }
    (Some(settling.answer(&known.fetched)), known.reads)
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

/// Our value writes only, each `lag` seconds late, naming earlier versions as our writer does.
fn ours_named(lags: &[(i64, i64)]) -> Vec<(i64, Write, Naming)> {
    lags.iter()
        .enumerate()
        .map(|(n, &(gap_ms, lag))| {
            let version = Some(i64::try_from(n).unwrap_or_default() + 1);
            let w = Write::Value {
                lag,
                version,
                tagged: true,
            };
            (gap_ms, w, Naming::Whole)
        })
        .collect()
}

proptest! {
    /// Versions placed by a later version's list of earlier ones instead of being read give the
    /// same answer as reading every version: whatever the lists leave out (cut short, written by
    /// a writer that missed the newest version, absent, broken by a delete marker) is read.
    #[test]
    fn versions_placed_by_the_newest_give_the_same_answer(
        writes in prop::collection::vec((0..2500_i64, write(), naming()), 0..14),
        coarse in any::<bool>(),
        offset in -5..60_i64,
    ) {
        let (listed, fields) = named_history(&writes, coarse);
        let start = 1_700_000_000_i64;
        let end = listed.iter().map(|l| l.last_modified_ms.div_euclid(1000)).max().unwrap_or(start);
        for at in [start - 31, start + offset, end - offset.abs(), end, end + 1] {
            let (lazy, _) = lazy_answer(&listed, &fields, at);
            prop_assert_eq!(lazy, Some(full_answer(&listed, &fields, at)), "at {}", at);
        }
    }

    /// #15's budget: for our values, however late each was written, a restore point anywhere
    /// (before the first, between any two, after the last) reads at most two versions: the
    /// candidate, and the newest, which places the rest.
    #[test]
    fn a_restore_point_in_the_past_reads_at_most_two_versions(
        lags in prop::collection::vec((0..120_000_i64, 0..600_i64), 1..14),
        coarse in any::<bool>(),
        back in 0..14_usize,
    ) {
        let (listed, fields) = named_history(&ours_named(&lags), coarse);
        let seconds: Vec<i64> = listed.iter().map(|l| l.last_modified_ms.div_euclid(1000)).collect();
        let at = seconds.get(back).copied().unwrap_or(seconds[seconds.len() - 1] - 1);
        for at in [at, at - 1, at + 1] {
            let (lazy, reads) = lazy_answer(&listed, &fields, at);
            prop_assert_eq!(lazy, Some(full_answer(&listed, &fields, at)), "at {}", at);
            prop_assert!(reads <= 2, "{} reads at {}", reads, at);
        }
    }
}

/// A key of the original's deleted and re-created twice: the version the first delete's marker
/// may follow is not read to pair it (that marker cannot be the answer, and a version written
/// in a later second cuts it off from any newer marker).
#[test]
fn old_deletes_are_not_read_to_pair_their_markers() {
    let value = || Write::Value {
        lag: 0,
        version: None,
        tagged: true,
    };
    let writes = [
        (0, value()),
        (10_000, Write::Marker),
        (10_000, value()),
        (10_000, Write::Marker),
        (10_000, value()),
    ];
    let (listed, fields) = history(&writes, true);
    let last = listed
        .iter()
        .map(|l| l.last_modified_ms.div_euclid(1000))
        .max()
        .unwrap_or(0);
    // After the last re-creation, and between the second delete and it (that delete the
    // answer): the newest version at or before the point, the one after it, the version the
    // second delete's marker may follow; never the first value.
    for (at, deleted) in [(last + 60, false), (last - 5, true)] {
        let (decision, fetched) = lazy_answer(&listed, &fields, at);
        assert_eq!(decision, Some(full_answer(&listed, &fields, at)));
        assert_eq!(matches!(decision, Some(StateAt::Deleted { .. })), deleted);
        assert_eq!(fetched, 2, "at {at}");
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
    /// A listing read in parts as its pages come (`BucketReader::list_in_parts`): after each
    /// page, the keys before its last entry's key (S3's `NextKeyMarker`), whose versions may go
    /// on in the next page. However S3 cuts the pages, each key comes once, whole, in key
    /// order, and the parts make the listing read in one piece.
    #[test]
    fn keys_taken_as_the_pages_come_are_whole(
        entries in multi_key_listing(),
        cuts in prop::collection::vec(1..30_usize, 0..6),
    ) {
        let whole = merge_pages([entries.clone()]);
        let n = entries.len();
        let (mut merger, mut parts, mut page) = (PageMerger::default(), Vec::new(), Vec::new());
        for (i, entry) in entries.into_iter().enumerate() {
            page.push(entry);
            if cuts.contains(&(i + 1)) && i + 1 < n {
                let next_key_marker = page.last().map(|(k, _): &(String, ListedVersion)| k.clone()).unwrap_or_default();
                merger.add(std::mem::take(&mut page));
                parts.push(merger.take_before(&next_key_marker));
            }
        }
        merger.add(page);
        parts.push(merger.finish());
        let mut joined = Listing::new();
        for (key, listed) in parts.into_iter().flatten() {
            prop_assert!(joined.keys().next_back().is_none_or(|last| *last < key), "{} out of order", key);
            prop_assert_eq!(Some(&listed), whole.get(&key), "key {}", key);
            joined.insert(key, listed);
        }
        prop_assert_eq!(joined, whole);
    }
}

fn lag_write() -> impl Strategy<Value = Write> {
    let lag = prop_oneof![3 => 0..4_i64, 1 => 0..200_i64];
    prop_oneof![
        4 => (lag.clone(), proptest::option::of(1..5_i64), prop_oneof![9 => Just(true), 1 => Just(false)])
            .prop_map(|(lag, version, tagged)| Write::Value { lag, version, tagged }),
        1 => lag.prop_map(|lag| Write::Delete { lag }),
        1 => Just(Write::Marker),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Issue 28, item 4: whatever the index places (every version, some, none: a crash between
    /// a put and its entry, releases before the index, the original's versions, a reader not
    /// allowed to list it; and entries naming versions the listing does not hold), the answer
    /// is the one reading everything gives. The index only spares reads. Late writes anywhere,
    /// tombstones, plain markers, same-second writes, restore points anywhere.
    #[test]
    fn the_index_gives_the_answer_of_reading_everything(
        writes in prop::collection::vec((0..40_000_i64, lag_write(), naming()), 0..14),
        indexed in prop::collection::vec(prop_oneof![4 => Just(true), 1 => Just(false)], 28),
        coarse in any::<bool>(),
        offset in -30..300_i64,
    ) {
        let (listed, fields) = named_history(&writes, coarse);
        let mut seconds: Vec<i64> = listed.iter().map(|l| l.last_modified_ms.div_euclid(1000)).collect();
        seconds.sort_unstable();
        let start = 1_700_000_000_i64;
        let end = seconds.last().copied().unwrap_or(start);
        let mut points = vec![start - 31, start + offset, end - offset.abs(), end, end + 1];
        points.extend(seconds.iter().flat_map(|s| [s - 1, *s, s + 1]));
        for at in points {
            let full = full_answer(&listed, &fields, at);
            let (lazy, _) = lazy_answer_indexed(&listed, &fields, at, &indexed);
            prop_assert_eq!(lazy, Some(full), "at {}", at);
        }
    }

    /// Item 5's budget: with every version indexed, a restore point anywhere (the end, versions
    /// back, within minutes of later writes, late writes) reads nothing but the answer.
    #[test]
    fn an_indexed_restore_point_reads_only_the_answer(
        writes in prop::collection::vec((0..40_000_i64, lag_write(), naming()), 1..14),
        coarse in any::<bool>(),
        back in 0..14_usize,
    ) {
        let (listed, fields) = named_history(&writes, coarse);
        let seconds: Vec<i64> = listed.iter().map(|l| l.last_modified_ms.div_euclid(1000)).collect();
        let at = seconds.get(back).copied().unwrap_or(1_700_000_000);
        let ours = |i: usize| fields[i].as_ref().is_some_and(|f| f.deleted_at.or(f.event_time).is_some());
        let all: Vec<bool> = (0..listed.len()).map(ours).collect();
        let (lazy, reads) = lazy_answer_indexed(&listed, &fields, at, &all);
        prop_assert_eq!(lazy, Some(full_answer(&listed, &fields, at)));
        // Only versions the index cannot place (the original's, untagged ones) are read.
        let unplaced = (0..listed.len()).filter(|&i| !listed[i].is_delete_marker && !ours(i)).count();
        prop_assert!(reads <= unplaced, "{} reads at {}, {} unplaced", reads, at, unplaced);
    }
}
