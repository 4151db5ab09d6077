//! The lazy read's decisions, without I/O: which versions to fetch next, what the fetched
//! ones and the index already place, and the answer once it is settled.

use std::collections::{BTreeMap, HashMap};

use super::fetch::{Depth, Fetched};
use super::ListedVersion;
use crate::format::{self, StoredFields};
use crate::pit::{self, StateAt, VersionEntry};

pub(super) fn placeholder(l: &ListedVersion) -> VersionEntry {
    VersionEntry {
        version_id: l.version_id.clone(),
        last_modified_ms: l.last_modified_ms,
        is_delete_marker: l.is_delete_marker,
        is_latest: l.is_latest,
        event_time: None,
        deleted_at: None,
        ssm_version: None,
        ssm_modified_ms: None,
        unread: false,
    }
}

/// Entries for [`pit`]: fetched versions with their fields; the others marked unread (they keep
/// their place in write order and never win).
pub(super) fn entries(
    listed: &[ListedVersion],
    known: &HashMap<usize, &StoredFields>,
) -> Vec<VersionEntry> {
    listed
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut e = placeholder(l);
            match known.get(&i) {
                Some(f) => {
                    e.event_time = f.event_time;
                    e.deleted_at = f.deleted_at;
                    e.ssm_version = f.attributes.version;
                    e.ssm_modified_ms = f.attributes.last_modified_ms;
                }
                None => e.unread = !l.is_delete_marker,
            }
            e
        })
        .collect()
}

pub(super) fn fields_of(fetched: &HashMap<usize, Fetched>) -> HashMap<usize, &StoredFields> {
    fetched.iter().map(|(i, f)| (*i, &f.fields)).collect()
}

/// Adds to `fetched` the versions that the fetched ones place in time ([`placed_by_earlier`]).
pub(super) fn learn_earlier(listed: &[ListedVersion], fetched: &mut HashMap<usize, Fetched>) {
    for (i, fields) in placed_by_earlier(listed, &fields_of(fetched)) {
        let placed = Fetched {
            fields,
            body: None,
            depth: Depth::Placed,
        };
        fetched.insert(i, placed);
    }
}

/// What the index entries of a key (see [`crate::index`]) place of its listed versions: only entries
/// whose version id is listed count.
pub(super) fn placed_by_index(
    listed: &[ListedVersion],
    entries: &[format::EarlierVersion],
) -> HashMap<usize, Fetched> {
    if entries.is_empty() {
        return HashMap::new();
    }
    let by_id: HashMap<&str, &format::EarlierVersion> =
        entries.iter().map(|e| (e.version_id.as_str(), e)).collect();
    (0..listed.len())
        .filter(|&i| !listed[i].is_delete_marker)
        .filter_map(|i| {
            let entry = by_id.get(listed[i].version_id.as_str())?;
            let placed = Fetched {
                fields: entry.fields(),
                body: None,
                depth: Depth::Placed,
            };
            Some((i, placed))
        })
        .collect()
}

/// The versions of `listed` not in `known` that the earlier-version lists of those in `known`
/// name ([`format::earlier`]), with the fields those lists give them: their place in time.
/// An entry naming no listed version (a copy's, an expired version's) places nothing.
pub fn placed_by_earlier(
    listed: &[ListedVersion],
    known: &HashMap<usize, &StoredFields>,
) -> Vec<(usize, StoredFields)> {
    if known.values().all(|f| f.earlier.is_empty()) {
        return Vec::new();
    }
    let unknown: HashMap<&str, usize> = (0..listed.len())
        .filter(|i| !listed[*i].is_delete_marker && !known.contains_key(i))
        .map(|i| (listed[i].version_id.as_str(), i))
        .collect();
    let mut placed: BTreeMap<usize, StoredFields> = BTreeMap::new();
    for e in known.values().flat_map(|f| &f.earlier) {
        if let Some(&i) = unknown.get(e.version_id.as_str()) {
            placed.entry(i).or_insert_with(|| e.fields());
        }
    }
    placed.into_iter().collect()
}

/// The pure part of [`super::BucketReader::state_at`]: which versions to fetch, in two rounds, and the
/// answer from what was fetched (see the module documentation).
#[derive(Debug, Clone)]
pub struct LazyRead<'a> {
    listed: &'a [ListedVersion],
    at: i64,
    /// The listing alone, as [`pit`] entries.
    bare: Vec<VersionEntry>,
    /// The newest version and the newest delete marker written at or before `at`.
    newest_version: Option<usize>,
    newest_marker: Option<usize>,
}

impl<'a> LazyRead<'a> {
    pub fn new(listed: &'a [ListedVersion], at: i64) -> Self {
        let before = |marker: bool| {
            // Each list is newest first.
            (0..listed.len()).find(|&i| {
                listed[i].is_delete_marker == marker
                    && listed[i].last_modified_ms.div_euclid(1000) <= at
            })
        };
        LazyRead {
            listed,
            at,
            bare: listed.iter().map(placeholder).collect(),
            newest_version: before(false),
            newest_marker: before(true),
        }
    }

    /// The newest version at or before `at`, and every version the newest marker may pair with;
    /// nothing, when nothing was written by then (only late-processed versions can count, and
    /// the second round, with no bound, covers them all).
    pub fn first_round(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.newest_version.into_iter().collect();
        if let Some(m) = self.newest_marker {
            out.extend(pit::marker_window(&self.bare, m));
        }
        out
    }

    /// Whatever could beat the first round's candidates, given what the first round fetched:
    /// every entry written at or after the best effective time known so far (a change is never
    /// recorded before it happens), and the versions each such marker may pair with.
    pub fn second_round(&self, known: &HashMap<usize, &StoredFields>) -> Vec<usize> {
        let bound = self.lower_bound(known);
        let mut out = Vec::new();
        for i in 0..self.listed.len() {
            let before_bound =
                bound.is_some_and(|b| self.listed[i].last_modified_ms.div_euclid(1000) < b);
            if before_bound {
                continue;
            }
            out.push(i);
            if self.listed[i].is_delete_marker {
                out.extend(pit::marker_window(&self.bare, i));
            }
        }
        out
    }

    /// The versions not in `known` that decide how the delete markers that could be the answer
    /// pair: those written at or after the bound the fields known give, whose pairing depends
    /// on older markers' windows too ([`pit::pairing_versions`]). They are read before deciding.
    /// In our layout the versions read before name them ([`format::earlier`]), so this is
    /// rarely a request.
    pub fn pairing_round(&self, known: &HashMap<usize, &StoredFields>) -> Vec<usize> {
        let bare = &self.bare;
        let bound = self.lower_bound(known);
        // Markers come newest first: the last one written at or after the bound is the oldest.
        let oldest_in_play = (0..bare.len())
            .rev()
            .find(|&m| bare[m].is_delete_marker && bound.is_none_or(|b| bare[m].second() >= b));
        let deciding = oldest_in_play.map_or_else(Vec::new, |m| pit::pairing_versions(bare, m));
        deciding
            .into_iter()
            .filter(|i| !known.contains_key(i))
            .collect()
    }

    /// The newest version in `round` not in `known`: ours names where the earlier versions
    /// stand, so reading it first can spare reading them.
    pub fn newest_unread(
        &self,
        round: &[usize],
        known: &HashMap<usize, &StoredFields>,
    ) -> Option<usize> {
        // Versions come first in a listing, newest first.
        round
            .iter()
            .copied()
            .filter(|i| !self.listed[*i].is_delete_marker && !known.contains_key(i))
            .min()
    }

    /// An effective time at or before `at` that some entry surely has, so the answer's is no
    /// earlier: that of a fetched version, or the newest marker's LastModified when no version
    /// it may pair with is a tombstone.
    fn lower_bound(&self, known: &HashMap<usize, &StoredFields>) -> Option<i64> {
        let entries = entries(self.listed, known);
        let versions = known.keys().map(|&i| entries[i].own_time());
        let unpaired_marker = self.newest_marker.filter(|&m| {
            pit::marker_window(&self.bare, m)
                .iter()
                .all(|v| known.get(v).is_some_and(|f| f.deleted_at.is_none()))
        });
        let marker = unpaired_marker.map(|m| self.listed[m].last_modified_ms.div_euclid(1000));
        versions.chain(marker).filter(|&t| t <= self.at).max()
    }

    /// The answer, from the fields of the fetched versions; `None` when a version left unread
    /// could still be it, or could be a tombstone a marker pairs with. The rounds above leave
    /// unread only versions written before the answer's effective time (and a version's
    /// effective time is never after its LastModified) and in no marker's window, so `None`
    /// means that reasoning failed: the caller then reads everything rather than answer from
    /// a guess.
    ///
    pub fn decide(&self, known: &HashMap<usize, &StoredFields>) -> Option<StateAt> {
        if !self.pairing_round(known).is_empty() {
            return None;
        }
        let entries = entries(self.listed, known);
        let state = pit::state_at(&entries, self.at);
        let answer_time = match state {
            StateAt::NoVersion => None,
            StateAt::Deleted { at, .. } | StateAt::Present { at, .. } => Some(at),
        };
        let could_win = |e: &VersionEntry| answer_time.is_none_or(|t| e.second() >= t);
        let settled = !entries.iter().any(|e| e.unread && could_win(e));
        settled.then_some(state)
    }
}

/// The rounds of a lazy read after the first, in order ([`Settling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Round {
    /// In our layout, the newest version the next round would read, alone: it names where the
    /// earlier ones stand, which can spare reading them.
    Newest,
    /// Whatever could beat the first round's candidates ([`LazyRead::second_round`]).
    Second,
    /// The versions that decide how the markers in play pair ([`LazyRead::pairing_round`]).
    Pairing,
    /// Every version, when the rounds above left the answer unsettled ([`LazyRead::decide`]):
    /// no answer from a guess. The reasoning above says this never happens.
    Everything,
    /// Values tied in the answer's second, ordered by SSM's dates, which tags and other
    /// versions' lists may leave out: read from the versions themselves.
    UndatedRivals,
}

/// [`LazyRead`]'s rounds after the first, one at a time: what to read next, decided from what
/// is known. It reads nothing itself; the caller reads each round and asks for the next:
/// `while let Some(reads) = settling.next_reads(&mut fetched) { read them into fetched }`.
#[derive(Debug)]
pub(super) struct Settling<'p, 'a> {
    plan: &'p LazyRead<'a>,
    next: Option<Round>,
}

/// One round's reads: which entries of the listing, and how much of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reads {
    pub(super) round: Round,
    pub(super) versions: Vec<usize>,
    pub(super) depth: Depth,
}

impl<'a> LazyRead<'a> {
    /// The rounds after the first; `ours` when the bucket seems to hold our layout.
    pub(super) fn settling(&self, ours: bool) -> Settling<'_, 'a> {
        let first = if ours { Round::Newest } else { Round::Second };
        Settling {
            plan: self,
            next: Some(first),
        }
    }
}

impl Settling<'_, '_> {
    /// The next round with something to read, after adding to `fetched` what the versions
    /// read so far place of the others ([`learn_earlier`]); `None` once every round is done.
    pub(super) fn next_reads(&mut self, fetched: &mut HashMap<usize, Fetched>) -> Option<Reads> {
        let plan = self.plan;
        loop {
            let round = self.next?;
            if matches!(round, Round::Newest | Round::Second | Round::Pairing) {
                learn_earlier(plan.listed, fetched);
            }
            let known = fields_of(fetched);
            let (versions, depth, next) = match round {
                Round::Newest => {
                    let second = plan.second_round(&known);
                    let newest = plan.newest_unread(&second, &known);
                    (newest.into_iter().collect(), Depth::Fields, Round::Second)
                }
                Round::Second => (plan.second_round(&known), Depth::Placed, Round::Pairing),
                Round::Pairing => (plan.pairing_round(&known), Depth::Placed, Round::Everything),
                Round::Everything => {
                    let all = match plan.decide(&known) {
                        Some(_) => Vec::new(),
                        None => (0..plan.listed.len()).collect(),
                    };
                    (all, Depth::Placed, Round::UndatedRivals)
                }
                Round::UndatedRivals => {
                    let entries = entries(plan.listed, &known);
                    let undated = pit::undated_rivals(&entries, plan.at);
                    self.next = None;
                    return (!undated.is_empty()).then_some(Reads {
                        round,
                        versions: undated,
                        depth: Depth::Fields,
                    });
                }
            };
            self.next = Some(next);
            if !versions.is_empty() {
                return Some(Reads {
                    round,
                    versions,
                    depth,
                });
            }
        }
    }

    /// The answer, from everything read.
    pub(super) fn answer(&self, fetched: &HashMap<usize, Fetched>) -> StateAt {
        pit::state_at(
            &entries(self.plan.listed, &fields_of(fetched)),
            self.plan.at,
        )
    }
}
