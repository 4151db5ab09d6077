//! A deterministic simulation of the backup pipeline for one parameter: one seed gives one
//! schedule, replayable (`cargo xtask sim --seeds N`, and a fixed budget in `cargo test`).
//!
//! It runs the writer's real decisions ([`backup::version_for_event`],
//! [`backup::delete_for_event`], the reconcile's [`backup::Choice`] on the current version) and
//! the reader's real point-in-time choice ([`pit::state_at`]) against in-memory models of SSM
//! and of a versioned S3 bucket as AWS documents them:
//!
//! * SSM: versions numbered from 1 again after a delete, LastModifiedDate in milliseconds,
//!   history only of the incarnation that exists, label events that make no version;
//! * S3: `HeadObject` answers 404 for a delete marker, listings give LastModified in whole
//!   seconds, versions and markers in two lists, `IsLatest` on the newest.
//!
//! Each change's event is delivered late (milliseconds to an hour), reordered, duplicated or
//! lost; two deliveries may interleave (both read the key before either writes); a delete may
//! crash between its tombstone and its marker (SQS then delivers it again). A final reconcile
//! lap runs as the Lambda's does.
//!
//! The invariant ([`check`]): at every whole second T, what a restore reads for T is SSM's
//! truth at T, except where the truth could not be recorded, each named in
//! `docs/guarantees.md`:
//! * a second holding two changes (their order inside the second is not in any event);
//! * a change whose every delivery was lost, or came when SSM no longer had its version (a
//!   value can only be read while it exists), up to the next change;
//! * after a delete whose event was lost, up to the reconcile that found it gone.
//!
//! What it does not cover yet: the I/O around the decisions (the writer's requests, the lazy
//! reader's rounds), which the end-to-end tests run on the emulator.

use crate::backup::{self, Choice, DeleteChoice, Held, Operation};
use crate::format::{earlier, EarlierVersion, StoredFields};
use crate::pit::{self, StateAt, VersionEntry};

/// A small, fast, seedable generator (SplitMix64): the schedule is a function of the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One change SSM made, with its event's time (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// PutParameter: a new version (version 1 of a new incarnation when absent).
    Put {
        at: i64,
        ms: i64,
    },
    Delete {
        at: i64,
    },
    /// LabelParameterVersion on the current version: an event, no new version.
    Label {
        at: i64,
    },
}

impl Change {
    fn at(self) -> i64 {
        match self {
            Change::Put { at, .. } | Change::Delete { at } | Change::Label { at } => at,
        }
    }
}

/// SSM's state after a prefix of the changes: the incarnation's versions, `(version, ms)`.
fn ssm_at(changes: &[Change], upto_ms: i64) -> Option<Vec<(i64, i64)>> {
    let mut state: Option<Vec<(i64, i64)>> = None;
    for c in changes {
        match *c {
            Change::Put { at, ms } if at * 1000 + ms <= upto_ms => {
                let versions = state.get_or_insert_with(Vec::new);
                let v = versions.len() as i64 + 1;
                versions.push((v, at * 1000 + ms));
            }
            Change::Delete { at } if at * 1000 <= upto_ms => state = None,
            _ => {}
        }
    }
    state
}

/// The truth at second `t`: the current version `(version, LastModifiedDate ms)`, or absent.
fn truth_at(changes: &[Change], t: i64) -> Option<(i64, i64)> {
    ssm_at(changes, t * 1000 + 999).and_then(|v| v.last().copied())
}

/// One object version in the simulated bucket.
#[derive(Debug, Clone)]
struct Object {
    id: String,
    /// S3's LastModified, epoch ms (listings give whole seconds).
    written_ms: i64,
    kind: Kind,
    /// The earlier versions it names (`ssmbak-earlier`).
    earlier: Vec<EarlierVersion>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Value {
        event_time: i64,
        version: i64,
        ms: i64,
    },
    Tombstone {
        deleted_at: i64,
    },
    Marker,
}

/// A versioned bucket holding one key.
#[derive(Debug, Default)]
struct Bucket {
    objects: Vec<Object>,
}

impl Bucket {
    fn fields(o: &Object) -> StoredFields {
        let mut f = StoredFields::default();
        match o.kind {
            Kind::Value {
                event_time,
                version,
                ms,
            } => {
                f.event_time = Some(event_time);
                f.attributes.version = Some(version);
                f.attributes.last_modified_ms = Some(ms);
            }
            Kind::Tombstone { deleted_at } => f.deleted_at = Some(deleted_at),
            Kind::Marker => {}
        }
        f.earlier = o.earlier.clone();
        f
    }

    /// What the writer's `current` learns: `HeadObject` (404 for a marker), then, behind a
    /// marker, the tags of the newest version that is not one.
    fn current(&self) -> (Option<StoredFields>, Vec<EarlierVersion>) {
        match self.objects.last() {
            Some(o) if !matches!(o.kind, Kind::Marker) => {
                let f = Self::fields(o);
                let recorded = earlier::after(&o.id, &f);
                (Some(f), recorded)
            }
            _ => {
                let behind = self
                    .objects
                    .iter()
                    .rev()
                    .find(|o| !matches!(o.kind, Kind::Marker));
                // Tags only: no earlier list.
                let recorded = behind
                    .and_then(|o| {
                        let mut f = Self::fields(o);
                        f.earlier.clear();
                        EarlierVersion::of(&o.id, &f)
                    })
                    .into_iter()
                    .collect();
                (None, recorded)
            }
        }
    }

    fn write(&mut self, written_ms: i64, kind: Kind, earlier: &[EarlierVersion]) {
        let id = format!("o{}", self.objects.len());
        let earlier = match kind {
            Kind::Marker => Vec::new(),
            _ => earlier.to_vec(),
        };
        self.objects.push(Object {
            id,
            written_ms,
            kind,
            earlier,
        });
    }

    /// The listing as the SDK gives it: versions newest first, then markers newest first,
    /// LastModified in whole seconds, `IsLatest` on the newest; with what each version's tags
    /// say.
    fn listing(&self) -> Vec<(VersionEntry, Option<(i64, i64)>)> {
        let n = self.objects.len();
        let entry = |(i, o): (usize, &Object)| {
            let (event_time, deleted_at, ssm_version, ident) = match o.kind {
                Kind::Value {
                    event_time,
                    version,
                    ms,
                } => (Some(event_time), None, Some(version), Some((version, ms))),
                Kind::Tombstone { deleted_at } => (None, Some(deleted_at), None, None),
                Kind::Marker => (None, None, None, None),
            };
            let e = VersionEntry {
                version_id: o.id.clone(),
                last_modified_ms: o.written_ms.div_euclid(1000) * 1000,
                is_delete_marker: matches!(o.kind, Kind::Marker),
                is_latest: i + 1 == n,
                event_time,
                deleted_at,
                ssm_version,
                unread: false,
            };
            (e, ident)
        };
        let all: Vec<_> = self.objects.iter().enumerate().map(entry).collect();
        let (markers, versions): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|(e, _)| e.is_delete_marker);
        versions
            .into_iter()
            .rev()
            .chain(markers.into_iter().rev())
            .collect()
    }
}

/// One delivery of one change's event.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    change: usize,
    /// When it is processed, epoch ms.
    at_ms: i64,
}

/// A schedule: the changes, and the deliveries in processing order.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub changes: Vec<Change>,
    deliveries: Vec<Delivery>,
    /// Pairs of consecutive deliveries that interleave: both read, then both write.
    interleaved: Vec<bool>,
    /// Deliveries of deletes that crash between the tombstone and the marker.
    crashes: Vec<bool>,
}

const START: i64 = 1_700_000_000;

impl Schedule {
    /// The schedule of `seed`.
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Rng::new(seed);
        let mut changes = Vec::new();
        let mut t = START;
        let mut exists = false;
        let n = 2 + rng.below(10);
        for _ in 0..n {
            // Same second sometimes, mostly a few seconds apart, sometimes minutes.
            t += match rng.below(10) {
                0 => 0,
                1 => 60 + rng.below(600) as i64,
                _ => 1 + rng.below(4) as i64,
            };
            let c = match (exists, rng.below(10)) {
                (false, _) | (true, 0..=4) => {
                    exists = true;
                    // SSM's dates only grow: a second put in one second is modified later.
                    let after = match changes.last() {
                        Some(Change::Put { at, ms }) if *at == t => *ms + 1,
                        _ => 0,
                    };
                    Change::Put {
                        at: t,
                        ms: (after + rng.below(1000) as i64).min(999),
                    }
                }
                (true, 5..=7) => {
                    exists = false;
                    Change::Delete { at: t }
                }
                (true, _) => Change::Label { at: t },
            };
            changes.push(c);
        }
        let mut deliveries = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let copies = match rng.below(10) {
                0 => 0, // lost
                1 | 2 => 2,
                _ => 1,
            };
            for _ in 0..copies {
                let lag_ms = match rng.below(10) {
                    0..=5 => rng.below(3_000),
                    6..=8 => rng.below(60_000),
                    _ => rng.below(3_600_000),
                } as i64;
                // An event is processed after SSM made the change.
                let made = match *c {
                    Change::Put { at, ms } => at * 1000 + ms,
                    other => other.at() * 1000,
                };
                deliveries.push(Delivery {
                    change: i,
                    at_ms: made + lag_ms,
                });
            }
        }
        deliveries.sort_by_key(|d| d.at_ms);
        let interleaved = deliveries.iter().map(|_| rng.chance(15)).collect();
        let crashes = deliveries.iter().map(|_| rng.chance(10)).collect();
        Schedule {
            changes,
            deliveries,
            interleaved,
            crashes,
        }
    }
}

/// What one delivery decided, before it writes.
#[derive(Debug)]
enum Decision {
    Nothing,
    Value {
        event_time: i64,
        version: i64,
        ms: i64,
    },
    Delete {
        at: i64,
        tombstone: bool,
    },
}

/// What went wrong at one second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seed: u64,
    pub at: i64,
    pub truth: Option<(i64, i64)>,
    pub read: Option<(i64, i64)>,
    pub schedule: String,
}

/// The simulated writer: one process's decisions and writes.
struct Writer<'a> {
    changes: &'a [Change],
    bucket: Bucket,
    /// The S3 second of the last delete marker written (values wait for a later one).
    last_marker_ms: Option<i64>,
    /// Changes recorded by a delivery made while SSM still had what they need.
    recordable: Vec<bool>,
    /// Whether completing a crashed delete looks at the key again when it writes.
    completion_rechecks: bool,
}

impl Writer<'_> {
    /// What the writer decides for an event of `operation` at `event_time`, processed at
    /// `at_ms`: `Backup::record_delete_by` and `Backup::record_value`'s choices.
    fn decide(&self, operation: Operation, event_time: i64, at_ms: i64) -> Decision {
        let (newest, recorded) = self.bucket.current();
        if operation == Operation::Delete {
            return match backup::delete_for_event(event_time, &recorded) {
                DeleteChoice::Record => Decision::Delete {
                    at: event_time,
                    tombstone: true,
                },
                DeleteChoice::Duplicate
                    if newest.as_ref().and_then(|f| f.deleted_at) == Some(event_time) =>
                {
                    Decision::Delete {
                        at: event_time,
                        tombstone: false,
                    }
                }
                DeleteChoice::Duplicate => Decision::Nothing,
            };
        }
        let Some(history) = ssm_at(self.changes, at_ms) else {
            return Decision::Nothing;
        };
        let dates: Vec<(i64, Option<i64>)> =
            history.iter().map(|(v, ms)| (*v, Some(*ms))).collect();
        let same_version_may_change = matches!(operation, Operation::Relabel | Operation::Retag);
        let choice =
            backup::version_for_event(&dates, event_time, &recorded, !same_version_may_change);
        let version = match choice {
            Choice::Store(v) => v,
            // A label move or a tag edit is written again where the newest backup is not a
            // value (its tags and labels then read as none); the model has no tags or labels,
            // so a newest value always holds the same.
            Choice::Duplicate(v)
                if same_version_may_change && newest.is_none_or(|f| f.is_tombstone()) =>
            {
                v
            }
            Choice::Duplicate(_) | Choice::Unmatched => return Decision::Nothing,
        };
        let ms = history
            .iter()
            .find(|(v, _)| *v == version)
            .map_or(0, |(_, ms)| *ms);
        Decision::Value {
            event_time,
            version,
            ms,
        }
    }

    /// Writes what `decision` says at `at_ms`; returns the time after the writes.
    fn apply(&mut self, decision: &Decision, mut at_ms: i64, crash: bool) -> i64 {
        let (_, recorded) = self.bucket.current();
        match *decision {
            Decision::Nothing => {}
            Decision::Value {
                event_time,
                version,
                ms,
            } => {
                // `Backup::wait_for_marker_second`: never in the second of our last marker.
                if let Some(m) = self.last_marker_ms {
                    if at_ms.div_euclid(1000) <= m.div_euclid(1000) {
                        at_ms = (m.div_euclid(1000) + 1) * 1000;
                    }
                }
                let kind = Kind::Value {
                    event_time,
                    version,
                    ms,
                };
                self.bucket.write(at_ms, kind, &recorded);
                at_ms += 50;
            }
            Decision::Delete { at, tombstone } => {
                // Completing a delete whose marker an earlier attempt did not write: the real
                // writer's look (`HeadObject`) and its marker are milliseconds apart, as a
                // tombstone and its marker are, so the look is taken at write time here.
                // With a concurrent value between the two, the marker is left unexplained (a
                // delete at its own LastModified): the open case of
                // `a_value_written_between_a_late_marker_and_its_tombstone`.
                let (newest, _) = self.bucket.current();
                if !tombstone
                    && self.completion_rechecks
                    && newest.and_then(|f| f.deleted_at) != Some(at)
                {
                    return at_ms;
                }
                if tombstone {
                    self.bucket
                        .write(at_ms, Kind::Tombstone { deleted_at: at }, &recorded);
                    at_ms += 50;
                }
                if crash {
                    return at_ms;
                }
                self.bucket.write(at_ms, Kind::Marker, &[]);
                self.last_marker_ms = Some(at_ms);
                at_ms += 50;
            }
        }
        at_ms
    }
}

/// Runs the schedule of `seed` and checks the invariant; the first failure, if any.
pub fn run(seed: u64) -> Result<(), Failure> {
    run_with(seed, true)
}

fn run_with(seed: u64, completion_rechecks: bool) -> Result<(), Failure> {
    let schedule = Schedule::generate(seed);
    let changes = &schedule.changes;
    let mut w = Writer {
        changes,
        bucket: Bucket::default(),
        last_marker_ms: None,
        recordable: vec![false; changes.len()],
        completion_rechecks,
    };
    let mut queue: Vec<(Delivery, bool)> = schedule
        .deliveries
        .iter()
        .zip(&schedule.crashes)
        .map(|(d, c)| (*d, *c))
        .collect();
    let mut clock = 0_i64;
    let mut i = 0;
    while i < queue.len() {
        let pair = schedule.interleaved.get(i).copied().unwrap_or(false) && i + 1 < queue.len();
        let batch: Vec<(Delivery, bool)> = queue[i..i + if pair { 2 } else { 1 }].to_vec();
        let mut decided = Vec::new();
        for (d, _) in &batch {
            clock = clock.max(d.at_ms);
            let is_delete = matches!(changes[d.change], Change::Delete { .. });
            if !is_delete && ssm_holds_changes_version(changes, d.change, clock) {
                w.recordable[d.change] = true;
            }
            if is_delete {
                w.recordable[d.change] = true;
            }
            let operation = match changes[d.change] {
                Change::Put { .. } => Operation::Update,
                Change::Delete { .. } => Operation::Delete,
                Change::Label { .. } => Operation::Relabel,
            };
            decided.push(w.decide(operation, changes[d.change].at(), clock));
        }
        for ((d, crash), decision) in batch.iter().zip(&decided) {
            clock = w.apply(decision, clock, *crash);
            if *crash
                && matches!(
                    decision,
                    Decision::Delete {
                        tombstone: true,
                        ..
                    }
                )
            {
                // SQS delivers it again after the visibility timeout.
                let again = Delivery {
                    change: d.change,
                    at_ms: clock + 30_000,
                };
                let pos = queue.partition_point(|(q, _)| q.at_ms <= again.at_ms);
                queue.insert(pos.max(i + batch.len()), (again, false));
            }
        }
        i += batch.len();
    }
    // The final reconcile lap, as `seed::ensure` and the missed-delete check decide.
    let end_ms = clock.max(changes.last().map_or(0, |c| c.at() * 1000)) + 60_000;
    reconcile(&mut w, end_ms);
    check(seed, &schedule, &w)
}

/// Whether SSM, at `at_ms`, still holds the version a put or label change stands for.
fn ssm_holds_changes_version(changes: &[Change], change: usize, at_ms: i64) -> bool {
    let Some(then) = truth_at(changes, changes[change].at()) else {
        return false;
    };
    ssm_at(changes, at_ms).is_some_and(|now| now.contains(&then))
}

/// The reconcile's lap over the key, as `seed::ensure` and the missed-delete check decide,
/// each through the writer's own decision (`Backup::apply`).
fn reconcile(w: &mut Writer<'_>, end_ms: i64) {
    let now = end_ms.div_euclid(1000);
    let (newest, recorded) = w.bucket.current();
    let event = match ssm_at(w.changes, end_ms).and_then(|v| v.last().copied()) {
        Some((version, ms)) => {
            match backup::holds_version(newest.is_none(), &recorded, version, ms) {
                Held::Recorded => return,
                // A missing version as of its LastModifiedDate...
                Held::Missing => (Operation::Update, ms.div_euclid(1000)),
                // ...a hidden one anew, at the time it is found.
                Held::HiddenByMarker => (Operation::Retag, now),
            }
        }
        // Keys whose newest object is a value, gone from SSM: a delete found now.
        None if newest.is_some_and(|f| !f.is_tombstone()) => (Operation::Delete, now),
        None => return,
    };
    let decision = w.decide(event.0, event.1, end_ms);
    w.apply(&decision, end_ms, false);
}

/// The invariant (see the module documentation).
fn check(seed: u64, schedule: &Schedule, w: &Writer<'_>) -> Result<(), Failure> {
    let changes = &schedule.changes;
    let listed = w.bucket.listing();
    let entries: Vec<VersionEntry> = listed.iter().map(|(e, _)| e.clone()).collect();
    let first = changes.first().map_or(START, |c| c.at());
    let last = changes.last().map_or(START, |c| c.at());
    // The last change is recorded by the reconcile when it is a put (or a label) SSM still
    // shows, whatever its events did.
    let reconciled = changes.len().checked_sub(1).filter(|&i| {
        !matches!(changes[i], Change::Delete { .. }) && truth_at(changes, changes[i].at()).is_some()
    });
    for t in (first - 2)..=(last + 2) {
        let in_second = changes.iter().filter(|c| c.at() == t).count();
        if in_second > 1 {
            continue;
        }
        // The change in force at t, and whether anything could record it.
        let in_force = changes.iter().rposition(|c| c.at() <= t);
        if let Some(c) = in_force {
            // A second with two changes decides everything up to the next change.
            if changes.iter().filter(|x| x.at() == changes[c].at()).count() > 1 {
                continue;
            }
            let recorded = w.recordable[c] || Some(c) == reconciled;
            // A label records the version it finds, which the put before it already stands
            // for when that was recorded: only the put's own record counts then.
            let label_covered = matches!(changes[c], Change::Label { .. })
                && changes[..c]
                    .iter()
                    .rposition(|x| matches!(x, Change::Put { .. }))
                    .is_some_and(|p| w.recordable[p]);
            if !recorded && !label_covered {
                continue;
            }
        }
        let truth = truth_at(changes, t);
        let read = match pit::state_at(&entries, t) {
            StateAt::Present { index, .. } => listed[index].1,
            StateAt::Deleted { .. } | StateAt::NoVersion => None,
        };
        if read != truth {
            return Err(Failure {
                seed,
                at: t,
                truth,
                read,
                schedule: describe(schedule, w),
            });
        }
    }
    Ok(())
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} at +{} s: SSM had {:?}, a restore reads {:?} ((version, LastModifiedDate ms))\n{}",
            self.seed,
            self.at - START,
            self.truth,
            self.read,
            self.schedule
        )
    }
}

/// The schedule and the bucket it left, for a failure report.
fn describe(schedule: &Schedule, w: &Writer<'_>) -> String {
    let mut out = String::from("changes (seconds after the start):\n");
    for (i, c) in schedule.changes.iter().enumerate() {
        out += &format!("  #{i} {:?} at +{}\n", c, c.at() - START);
    }
    out += "deliveries (change, processed at ms after the start, interleaved, crash):\n";
    for ((d, p), c) in schedule
        .deliveries
        .iter()
        .zip(&schedule.interleaved)
        .zip(&schedule.crashes)
    {
        out += &format!(
            "  #{} at +{} ms{}{}\n",
            d.change,
            d.at_ms - START * 1000,
            if *p { " interleaved" } else { "" },
            if *c { " crash" } else { "" }
        );
    }
    out += "bucket (write order):\n";
    for o in &w.bucket.objects {
        out += &format!(
            "  {} written +{} ms {:?}\n",
            o.id,
            o.written_ms - START * 1000,
            o.kind
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed budget `cargo test` runs; `cargo xtask sim --seeds N` runs more.
    #[test]
    fn any_delivery_order_restores_the_truth() {
        let failures: Vec<Failure> = (0..SEEDS).filter_map(|seed| run(seed).err()).collect();
        if let Some(f) = failures.first() {
            panic!("{} of {SEEDS} schedules fail; {f}", failures.len());
        }
    }

    const SEEDS: u64 = 10_000;

    /// Seeds the simulation once failed on, each fixed since: kept so that they stay fixed.
    /// 54: a late label event took the next version's skew. 166, 628, 2700: an event of a
    /// deleted incarnation, processed after the re-creation, took the new version 1 for its own.
    #[test]
    fn seeds_that_failed_once() {
        for seed in [54, 166, 628, 2700, 4005] {
            if let Err(f) = run(seed) {
                panic!("{f}");
            }
        }
    }

    /// Seed 4005, with the race modelled: a delete that crashed between its tombstone and its
    /// marker is completed later; when another invocation writes a value of the key between
    /// the look and the marker, the marker follows a value and, while it is the newest entry
    /// (`IsLatest` proves the value before it), no tombstone explains it: a delete at its own
    /// LastModified. The reconcile finds the current version hidden (`Held::HiddenByMarker`)
    /// and records it again at the time it finds it. Here the marker and the value share a
    /// second, so once the marker is no longer the newest the listing cannot order them and
    /// the tombstone explains the marker again: the whole history reads right. With the two a
    /// second or more apart, what lies between the marker and the reconcile stays deleted
    /// (open: docs/guarantees.md).
    #[test]
    fn a_value_written_between_a_late_marker_and_its_tombstone_is_repaired_by_the_reconcile() {
        if let Err(f) = run_with(4005, false) {
            panic!("{f}");
        }
    }
}
