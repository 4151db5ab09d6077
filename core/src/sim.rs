//! A deterministic simulation of the backup pipeline: one seed gives one schedule, replayable
//! (`cargo xtask sim --seeds N`, and a fixed budget in `cargo test`).
//!
//! It runs the **real** writer ([`Backup::apply`]), the real reconcile ([`reconcile::run`], which
//! is `seed-all`'s [`crate::seed::ensure`] plus the missed-delete check) and the real
//! point-in-time reader ([`BucketReader::state_at`]) against the in-memory models of S3 and
//! SSM ([`crate::store::memory`]), through the storage seam every release uses:
//!
//! * two parameters, one the other's path prefix (`/app/p`, `/app/p/x`: their listings
//!   overlap); random histories of puts, deletes, re-creations (within one second and
//!   across seconds), label moves, some longer than SSM's 100 kept versions;
//! * each change's event delivered late (milliseconds to an hour), reordered, duplicated or
//!   lost;
//! * deliveries run two at a time, interleaved at every await point the stores yield at (a
//!   seeded choice per call), and reconcile runs beside them at random points;
//! * calls slow (every other task runs first), throttled, or timed out after S3 made them
//!   (the write happened, its answer was lost), at random; a failed delivery comes again
//!   after SQS's visibility timeout (a crash between any two writes), up to the queue's
//!   receive count, then it is lost to the dead-letter queue;
//! * listing pages of a random size (1 to 1,000 entries), split anywhere;
//! * time moving on at every call (latency), so writes of one delivery span seconds or not;
//!   the writer's clock off S3's by up to 250 ms either way (see `docs/guarantees.md` for more).
//!
//! The invariant (`World::check`), after a final reconcile lap: for every key and every second
//! where something changed (and the seconds either side), what a restore reads for T,
//! through each read path (with the index, without it, knowing SSM's value), is SSM's truth
//! at T: absent, or the version with its value, type and LastModifiedDate. The only
//! exceptions are those `docs/guarantees.md` names:
//! * a second holding two changes of the key (their order inside the second is not in any
//!   event), up to the next change;
//! * a change no delivery recorded (every delivery lost, or made when SSM no longer had its
//!   version: a value can only be read while it exists), up to the next change;
//! * after a delete whose event was lost, up to the reconcile that found it gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::join_all;

use crate::backup::{Backup, ChangeEvent, Operation};
use crate::format::{object_key, ParameterType, Tags};
use crate::index::Index;
use crate::reader::{BackupState, BucketReader, Listing};
use crate::reconcile;
use crate::store::faulty::{Fault, FaultyStore};
use crate::store::memory::{Clock, MemoryParameters, MemoryStore};
use crate::store::{HistoryVersion, ObjectStore, ParameterStore, ParametersPage, StoreFuture};

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

/// The parameters of the simulation: the second's name extends the first's, so a listing of
/// the first's key holds the second's entries too.
pub const NAMES: [&str; 2] = ["/app/p", "/app/p/x"];

/// What SSM did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PutParameter: a new version (version 1 of a new parameter when absent).
    Put(ParameterType),
    Delete,
    /// LabelParameterVersion on the current version: an event, no new version.
    Label,
}

/// One change SSM made to one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Which of [`NAMES`].
    pub param: usize,
    pub kind: Kind,
    /// Its event's time, epoch seconds.
    pub at: i64,
    /// The milliseconds within `at` when SSM made it.
    pub ms: i64,
}

impl Change {
    fn made_ms(&self) -> i64 {
        self.at * 1000 + self.ms
    }

    fn value(index: usize) -> String {
        format!("value {index}")
    }
}

/// SSM's versions of `param` after the changes made by `upto_ms`, `(version, ms, change)`.
fn ssm_at(changes: &[Change], param: usize, upto_ms: i64) -> Option<Vec<(i64, i64, usize)>> {
    let mut state: Option<Vec<(i64, i64, usize)>> = None;
    for (i, c) in changes.iter().enumerate() {
        if c.param != param || c.made_ms() > upto_ms {
            continue;
        }
        match c.kind {
            Kind::Put(_) => {
                let versions = state.get_or_insert_with(Vec::new);
                let v = versions.last().map_or(1, |last| last.0 + 1);
                versions.push((v, c.made_ms(), i));
            }
            Kind::Delete => state = None,
            Kind::Label => {}
        }
    }
    state
}

/// The truth for `param` at second `t`: the current version `(version, ms, change)`, or absent.
fn truth_at(changes: &[Change], param: usize, t: i64) -> Option<(i64, i64, usize)> {
    ssm_at(changes, param, t * 1000 + 999).and_then(|v| v.last().copied())
}

/// One delivery of one change's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub change: usize,
    /// When it is received, epoch ms.
    pub at_ms: i64,
}

/// A schedule: what SSM does, and what the pipeline is given to do, in time.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub changes: Vec<Change>,
    pub deliveries: Vec<Delivery>,
    /// When a reconcile runs beside the deliveries, epoch ms.
    pub reconciles: Vec<i64>,
    /// Entries per listing page.
    pub page_size: usize,
    /// Percent of store calls that fail.
    pub fault_percent: u64,
    /// How far the writer's clock is ahead of S3's, ms.
    pub skew_ms: i64,
}

const START: i64 = 1_700_000_000;
/// SQS's visibility timeout: a failed delivery comes again after it.
const VISIBILITY_MS: i64 = 30_000;
/// Deliveries of one message before SQS moves it to the dead-letter queue.
const MAX_RECEIVES: usize = 5;

impl Schedule {
    /// The schedule of `seed`.
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Rng::new(seed);
        let mut changes: Vec<Change> = Vec::new();
        let mut t = START;
        let mut exists = [false; 2];
        // Now and then a burst past SSM's 100 kept versions.
        let n = if rng.chance(2) {
            100 + rng.below(40)
        } else {
            2 + rng.below(12)
        };
        for _ in 0..n {
            // Same second sometimes, mostly a few seconds apart, sometimes minutes.
            t += match rng.below(10) {
                0 => 0,
                1 => 60 + rng.below(600) as i64,
                _ => 1 + rng.below(4) as i64,
            };
            let param = if rng.chance(75) { 0 } else { 1 };
            let kind = match (exists[param], rng.below(10)) {
                (false, _) | (true, 0..=4) => {
                    exists[param] = true;
                    let types = [
                        ParameterType::String,
                        ParameterType::SecureString,
                        ParameterType::StringList,
                    ];
                    Kind::Put(types[rng.below(3) as usize])
                }
                (true, 5..=7) if n < 100 => {
                    exists[param] = false;
                    Kind::Delete
                }
                (true, _) => Kind::Label,
            };
            // SSM's dates only grow.
            let after = match changes.last() {
                Some(c) if c.at == t => c.ms + 1,
                _ => 0,
            };
            changes.push(Change {
                param,
                kind,
                at: t,
                ms: (after + rng.below(1000) as i64).min(999),
            });
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
                deliveries.push(Delivery {
                    change: i,
                    at_ms: c.made_ms() + lag_ms,
                });
            }
        }
        deliveries.sort_by_key(|d| d.at_ms);
        let last = changes.last().map_or(START, |c| c.at);
        let reconciles = (0..rng.below(3))
            .map(|_| (START + rng.below((last - START + 60) as u64) as i64) * 1000)
            .collect();
        let page_size = match rng.below(4) {
            0 => 1 + rng.below(3) as usize,
            1 => 4 + rng.below(20) as usize,
            _ => 1000,
        };
        let fault_percent = [0, 0, 2, 5, 10][rng.below(5) as usize];
        let skew_ms = [0, 0, 250, -250, 100, -100][rng.below(6) as usize];
        Schedule {
            seed,
            changes,
            deliveries,
            reconciles,
            page_size,
            fault_percent,
            skew_ms,
        }
    }
}

/// What went wrong at one second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seed: u64,
    pub name: &'static str,
    pub at: i64,
    /// Through which read path.
    pub path: &'static str,
    pub truth: String,
    pub read: String,
    pub report: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {}: {} at +{} s, read {}: SSM had {}, a restore reads {}\n{}",
            self.seed,
            self.name,
            self.at - START,
            self.path,
            self.truth,
            self.read,
            self.report
        )
    }
}

/// One job the pipeline is given.
#[derive(Debug, Clone, Copy)]
enum Job {
    Deliver { change: usize, receives: usize },
    Reconcile,
}

/// The simulated world: the models, the real writer, and what the check needs to know.
/// The schedule's SSM changes, each made as soon as the clock passes its time: at every SSM
/// call too, not only between jobs, so a job that runs long sees SSM as it then is (an
/// earlier model made changes only between jobs, and a reconcile that ran past a
/// re-creation still saw the parameter gone: simulation seed 337014).
#[derive(Debug)]
struct DueChanges {
    changes: Vec<Change>,
    made: Mutex<usize>,
    ssm: Arc<MemoryParameters>,
    clock: Clock,
}

impl DueChanges {
    fn make(&self) {
        let now = self.clock.now_ms();
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(c) = self.changes.get(*made).filter(|c| c.made_ms() <= now) {
            let name = NAMES[c.param];
            match c.kind {
                Kind::Put(t) => {
                    self.ssm.put_at(name, &Change::value(*made), t, c.made_ms());
                }
                Kind::Delete => {
                    self.ssm.delete(name);
                }
                Kind::Label => {
                    if let Some((version, _)) = self.ssm.current(name) {
                        self.ssm.label(name, version, "live");
                    }
                }
            }
            *made += 1;
        }
    }
}

/// SSM for the code under test: the in-memory model, with the changes due by each call made.
#[derive(Debug)]
struct ScheduledParameters {
    due: Arc<DueChanges>,
}

impl ParameterStore for ScheduledParameters {
    fn history<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Vec<HistoryVersion>>> {
        self.due.make();
        self.due.ssm.history(name)
    }

    fn tags<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tags>> {
        self.due.make();
        self.due.ssm.tags(name)
    }

    fn describe<'a>(
        &'a self,
        paths: &'a [String],
        next_token: Option<String>,
    ) -> StoreFuture<'a, ParametersPage> {
        self.due.make();
        self.due.ssm.describe(paths, next_token)
    }
}

struct World<'a> {
    schedule: &'a Schedule,
    clock: Clock,
    bucket: Arc<MemoryStore>,
    ssm: Arc<MemoryParameters>,
    backup: Backup,
    faults_on: Arc<AtomicBool>,
    /// The SSM changes, each made once its time has come.
    due: Arc<DueChanges>,
    /// Changes a delivery recorded while SSM still had what they need.
    recorded: Vec<bool>,
    /// When the final reconcile ran, epoch seconds.
    reconciled_at: i64,
    rng: Rng,
}

impl<'a> World<'a> {
    fn new(schedule: &'a Schedule) -> Self {
        let clock = Clock::at_ms(START * 1000 - 60_000);
        let calls = Arc::new(Mutex::new(Rng::new(schedule.seed ^ 0xA5A5_5A5A)));
        let latency = {
            let (clock, calls) = (clock.clone(), calls.clone());
            // Each call takes some milliseconds, and may first let the other delivery run.
            Arc::new(move || {
                let mut rng = calls.lock().unwrap_or_else(|e| e.into_inner());
                clock.advance(rng.below(40) as i64);
                rng.chance(40)
            })
        };
        let bucket = Arc::new(
            MemoryStore::new("sim", clock.clone())
                .with_page_size(schedule.page_size)
                .with_skew(schedule.skew_ms)
                .with_yields(latency),
        );
        let faults_on = Arc::new(AtomicBool::new(schedule.fault_percent > 0));
        let policy = {
            let (faults_on, calls) = (faults_on.clone(), calls.clone());
            let percent = schedule.fault_percent;
            Arc::new(move |_: &str, _: &str| {
                if !faults_on.load(Ordering::Relaxed) {
                    return Fault::None;
                }
                let mut rng = calls.lock().unwrap_or_else(|e| e.into_inner());
                match (rng.chance(percent), rng.below(3)) {
                    (false, _) => Fault::None,
                    (true, 0) => Fault::Throttled,
                    (true, 1) => Fault::AnswerLost,
                    (true, _) => Fault::Slow,
                }
            })
        };
        let objects: Arc<dyn ObjectStore> = Arc::new(FaultyStore::new(bucket.clone(), policy));
        let ssm = Arc::new(MemoryParameters::new(clock.clone()));
        let due = Arc::new(DueChanges {
            changes: schedule.changes.clone(),
            made: Mutex::new(0),
            ssm: ssm.clone(),
            clock: clock.clone(),
        });
        let parameters = Arc::new(ScheduledParameters { due: due.clone() });
        World {
            schedule,
            backup: Backup::on(objects, parameters),
            due,
            clock,
            bucket,
            ssm,
            faults_on,
            recorded: vec![false; schedule.changes.len()],
            reconciled_at: i64::MAX,
            rng: Rng::new(schedule.seed ^ 0x5EED),
        }
    }

    /// Makes the SSM changes due by now.
    fn make_changes(&mut self) {
        self.due.make();
    }

    /// Whether SSM now holds the version a put or label change stands for.
    fn holds_changes_version(&self, change: usize) -> bool {
        let c = &self.schedule.changes[change];
        let Some((version, ms, _)) = truth_at(&self.schedule.changes, c.param, c.at) else {
            return false;
        };
        self.ssm
            .history_now(NAMES[c.param])
            .is_some_and(|h| h.contains(&(version, ms)))
    }

    async fn run(&mut self) -> Result<(), Failure> {
        let mut queue: Vec<(i64, Job)> = self
            .schedule
            .deliveries
            .iter()
            .map(|d| {
                let job = Job::Deliver {
                    change: d.change,
                    receives: 1,
                };
                (d.at_ms, job)
            })
            .chain(
                self.schedule
                    .reconciles
                    .iter()
                    .map(|&at| (at, Job::Reconcile)),
            )
            .collect();
        queue.sort_by_key(|(at, _)| *at);
        while !queue.is_empty() {
            let together = if queue.len() > 1 && self.rng.chance(25) {
                2
            } else {
                1
            };
            let batch: Vec<(i64, Job)> = queue.drain(..together).collect();
            // Both received by the time they run: an event never comes before its change.
            self.clock.advance_to(batch[together - 1].0);
            self.make_changes();
            let held: Vec<bool> = batch
                .iter()
                .map(|(_, job)| match *job {
                    Job::Deliver { change, .. } => self.holds_changes_version(change),
                    Job::Reconcile => false,
                })
                .collect();
            let results = join_all(batch.iter().map(|(_, job)| self.perform(*job))).await;
            // SSM changes while a job runs: a version it no longer holds at the end may have
            // been gone before the delivery read it.
            self.make_changes();
            let held: Vec<bool> = batch
                .iter()
                .zip(held)
                .map(|((_, job), before)| match *job {
                    Job::Deliver { change, .. } => before && self.holds_changes_version(change),
                    Job::Reconcile => false,
                })
                .collect();
            for (((_, job), ok), held) in batch.iter().zip(results).zip(held) {
                let Job::Deliver { change, receives } = *job else {
                    continue;
                };
                let is_delete = self.schedule.changes[change].kind == Kind::Delete;
                if ok && (held || is_delete) {
                    self.recorded[change] = true;
                }
                if !ok && receives < MAX_RECEIVES {
                    let again = self.clock.now_ms() + VISIBILITY_MS;
                    let job = Job::Deliver {
                        change,
                        receives: receives + 1,
                    };
                    let at = queue.partition_point(|(t, _)| *t <= again);
                    queue.insert(at, (again, job));
                }
            }
        }
        // The final lap, with nothing failing: what a restore reads after it.
        let end = self
            .clock
            .now_ms()
            .max(self.schedule.changes.last().map_or(0, |c| c.made_ms()))
            + 60_000;
        self.clock.advance_to(end);
        self.make_changes();
        self.faults_on.store(false, Ordering::Relaxed);
        let summary = reconcile::run(&self.backup, &[], None).await;
        // By the writer's clock, which dates the deletes it finds.
        self.reconciled_at = self.backup.now_secs();
        if let Ok(s) = &summary {
            debug_assert_eq!(s.failed, 0);
        }
        self.check().await
    }

    /// Runs one job; whether it succeeded.
    async fn perform(&self, job: Job) -> bool {
        match job {
            Job::Deliver { change, .. } => {
                let c = &self.schedule.changes[change];
                let event = ChangeEvent {
                    name: NAMES[c.param].to_owned(),
                    operation: match c.kind {
                        Kind::Put(_) => Operation::Update,
                        Kind::Delete => Operation::Delete,
                        Kind::Label => Operation::Relabel,
                    },
                    event_time: c.at,
                    param_type: None,
                };
                self.backup.apply(&event).await.is_ok()
            }
            Job::Reconcile => reconcile::run(&self.backup, &[], None).await.is_ok(),
        }
    }

    /// The invariant (see the module documentation).
    async fn check(&self) -> Result<(), Failure> {
        let changes = &self.schedule.changes;
        let reader = BucketReader::on(self.bucket.clone());
        let listing: Listing = reader.list("/app/").await.map_err(|e| self.fail_io(&e))?;
        let index = reader.index("/app/").await.map_err(|e| self.fail_io(&e))?;
        for (param, name) in NAMES.iter().enumerate() {
            let key = object_key(name);
            let listed = listing.get(&key).cloned().unwrap_or_default();
            let mine: Vec<usize> = (0..changes.len())
                .filter(|&i| changes[i].param == param)
                .collect();
            // The last change is recorded by the final reconcile when it is a put (or a
            // label) SSM still shows, whatever its events did.
            let reconciled = mine
                .last()
                .copied()
                .filter(|&i| changes[i].kind != Kind::Delete);
            let mut seconds: Vec<i64> = mine
                .iter()
                .flat_map(|&i| [changes[i].at - 1, changes[i].at, changes[i].at + 1])
                .chain(listed.iter().map(|l| l.last_modified_ms.div_euclid(1000)))
                .collect();
            seconds.extend([START - 2, self.clock.now_ms().div_euclid(1000)]);
            seconds.sort_unstable();
            seconds.dedup();
            let current = self.ssm.snapshot(name).map(|s| s.value);
            for t in seconds {
                if !self.decidable(&mine, reconciled, t) {
                    continue;
                }
                let truth = truth_at(changes, param, t).map(|(v, ms, i)| {
                    let Kind::Put(t) = changes[i].kind else {
                        unreachable!("a version comes from a put")
                    };
                    (v, ms, Change::value(i), t)
                });
                let none = Index::none();
                let paths: [(&str, &Index, Option<&str>); 3] = [
                    ("with the index", &index, None),
                    ("without the index", &none, None),
                    ("knowing SSM's value", &index, current.as_deref()),
                ];
                for (path, index, known) in paths {
                    let state = reader
                        .state_at(&key, &listed, t, known, index)
                        .await
                        .map_err(|e| self.fail_io(&e))?;
                    let read = match state {
                        BackupState::Present { snapshot, .. } => Some((
                            snapshot.attributes.version.unwrap_or_default(),
                            snapshot.attributes.last_modified_ms.unwrap_or_default(),
                            snapshot.value,
                            snapshot.param_type,
                        )),
                        BackupState::Deleted { .. } | BackupState::NoVersion => None,
                        BackupState::Foreign { .. } => {
                            Some((-1, -1, "foreign".into(), ParameterType::String))
                        }
                    };
                    if read != truth {
                        return Err(Failure {
                            seed: self.schedule.seed,
                            name,
                            at: t,
                            path,
                            truth: format!("{truth:?}"),
                            read: format!("{read:?}"),
                            report: self.report(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the truth at `t` could be recorded (the exceptions of the module documentation).
    fn decidable(&self, mine: &[usize], reconciled: Option<usize>, t: i64) -> bool {
        let changes = &self.schedule.changes;
        let in_second = |s: i64| mine.iter().filter(|&&i| changes[i].at == s).count();
        if in_second(t) > 1 {
            return false;
        }
        let Some(&c) = mine.iter().rev().find(|&&i| changes[i].at <= t) else {
            return true;
        };
        // A second with two changes decides everything up to the next change.
        if in_second(changes[c].at) > 1 {
            return false;
        }
        // A label records the version it finds, which the put before it already stands
        // for when that was recorded: only the put's own record counts then.
        let label_covered = changes[c].kind == Kind::Label
            && mine
                .iter()
                .rev()
                .find(|&&i| i < c && matches!(changes[i].kind, Kind::Put(_)))
                .is_some_and(|&p| self.recorded[p]);
        // A lost last delete is found by the final reconcile, and recorded at its time.
        let found_gone =
            changes[c].kind == Kind::Delete && mine.last() == Some(&c) && t >= self.reconciled_at;
        self.recorded[c] || Some(c) == reconciled || label_covered || found_gone
    }

    fn fail_io(&self, e: &dyn std::fmt::Display) -> Failure {
        Failure {
            seed: self.schedule.seed,
            name: "-",
            at: 0,
            path: "reading",
            truth: String::new(),
            read: e.to_string(),
            report: self.report(),
        }
    }

    /// The schedule and the bucket it left, for a failure report.
    fn report(&self) -> String {
        let s = self.schedule;
        let mut out = format!(
            "page size {}, {}% of calls failing, the writer's clock {} ms ahead of S3's\nchanges (seconds.ms after the start):\n",
            s.page_size, s.fault_percent, s.skew_ms
        );
        for (i, c) in s.changes.iter().enumerate() {
            out += &format!(
                "  #{i} {} {:?} at +{}.{:03}{}\n",
                NAMES[c.param],
                c.kind,
                c.at - START,
                c.ms,
                if self.recorded[i] {
                    ""
                } else {
                    " (not recorded)"
                }
            );
        }
        out += "deliveries (change, received at ms after the start):\n";
        for d in &s.deliveries {
            out += &format!("  #{} at +{}\n", d.change, d.at_ms - START * 1000);
        }
        for r in &s.reconciles {
            out += &format!("  reconcile at +{}\n", r - START * 1000);
        }
        out += "bucket (each key's entries, oldest first; the index not shown):\n";
        for (key, entries) in self.bucket.dump() {
            if key.starts_with('.') {
                continue;
            }
            out += &format!("  {key}\n");
            for (id, ms, marker, metadata) in entries {
                let pairs = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let what = match crate::format::StoredFields::read([], pairs) {
                    _ if marker => "delete marker".to_owned(),
                    Ok(f) if f.is_tombstone() => {
                        format!(
                            "tombstone of a delete at +{}",
                            f.deleted_at.unwrap_or_default() - START
                        )
                    }
                    Ok(f) => format!(
                        "v{} ({}) at +{}",
                        f.attributes.version.unwrap_or_default(),
                        f.attributes.last_modified_ms.unwrap_or_default() - START * 1000,
                        f.event_time.unwrap_or_default() - START
                    ),
                    Err(e) => format!("unreadable: {e}"),
                };
                out += &format!(
                    "    {} written +{} ms: {what}\n",
                    &id[..6],
                    ms - START * 1000
                );
            }
        }
        out
    }
}

/// Runs the schedule of `seed` and checks the invariant; the first failure, if any.
pub fn run(seed: u64) -> Result<(), Failure> {
    run_schedule(&Schedule::generate(seed))
}

/// Runs one schedule (generated, or shrunk from one).
pub fn run_schedule(schedule: &Schedule) -> Result<(), Failure> {
    futures::executor::block_on(World::new(schedule).run())
}

/// A smaller schedule that fails as `schedule` does: deliveries and reconciles taken out one
/// at a time while it still fails.
pub fn shrink(schedule: &Schedule) -> Schedule {
    let mut best = schedule.clone();
    loop {
        let mut smaller = None;
        for i in 0..best.deliveries.len() {
            let mut s = best.clone();
            s.deliveries.remove(i);
            if run_schedule(&s).is_err() {
                smaller = Some(s);
                break;
            }
        }
        if smaller.is_none() {
            for i in 0..best.reconciles.len() {
                let mut s = best.clone();
                s.reconciles.remove(i);
                if run_schedule(&s).is_err() {
                    smaller = Some(s);
                    break;
                }
            }
        }
        match smaller {
            Some(s) => best = s,
            None => return best,
        }
    }
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

    const SEEDS: u64 = 2_000;

    /// `SIM_SEED=n cargo test -p ssmbak-core one_seed -- --ignored`: one schedule, reported.
    #[test]
    #[ignore]
    fn one_seed() {
        let seed = std::env::var("SIM_SEED").map_or(0, |s| s.parse().unwrap_or(0));
        if let Err(f) = run(seed) {
            panic!("{f}");
        }
    }

    /// Seeds the simulation once failed on, each fixed since: kept so that they stay fixed.
    /// 901: two deliveries of one delete at once each wrote a marker, and the second read as
    /// a delete of its own (`backup::races::two_deliveries_of_one_delete_at_once_write_one_marker`).
    /// 3718 (one of 201 in the first million): a delete processed after a re-creation of the
    /// same second was not flagged live behind its marker, so a later lost delete was never
    /// found (`backup::races::a_lost_delete_of_a_key_re_created_in_the_second_of_its_delete_is_found`).
    /// 13612 (one of 61 in the second million): a delete whose delivery read the key before a
    /// re-creation's delivery recorded its value, then wrote its tombstone and marker, did not
    /// flag the key live behind the marker
    /// (`backup::races::a_delete_racing_the_re_creation_it_precedes_flags_the_key`).
    /// 16172 (one of 33 in the third million): the reconcile dated a delete it found within a
    /// second of it by the writer's clock, 100 ms behind, in the second before the delete
    /// (`backup::races::a_delete_found_within_a_second_is_dated_by_s3s_clock_not_this_machines`).
    /// 60980 (one of 21 in the fourth million): a label record of version 2 and a re-creation
    /// (version 1 again) of the same second tied, and the higher version, the deleted
    /// incarnation's, won (`pit::tests::a_re_creation_beats_a_label_record_of_its_second_by_ssm_date_not_version`).
    /// 75995 (one of 15 in the fifth million): a delete looked for versions written below its
    /// tombstone in one listing page, which ended right after the tombstone, so a re-creation
    /// recorded meanwhile went unseen and the key was not flagged live behind its marker.
    /// 108664 (one of 11 in the sixth million): a re-creation in the millisecond of its delete,
    /// placed from its tags (no SSM date), tied with the version before the delete, and the
    /// version number ordered them
    /// (`backup::races::a_re_creation_in_the_millisecond_of_its_delete_is_ordered_by_its_ssm_date`).
    /// 337014 (one of 9 in the seventh million): the model's fault, not the code's. SSM
    /// changes were made only between jobs, so a reconcile that ran past a re-creation still
    /// read the parameter gone and recorded a delete SSM never made; changes are now made at
    /// every SSM call ([`DueChanges`]).
    /// 768845 (one of 3 in the eighth million): a delete that raced a re-creation wrote its
    /// tombstone and failed before flagging the key; the tombstone named none of the versions
    /// below it, and an earlier delete processed next trusted it, looked no further and left
    /// the key live behind its marker unflagged
    /// (`backup::races::a_delete_after_a_failed_racing_delete_still_flags_the_key`).
    /// (The model of the writer this simulation replaced kept seeds 54, 166, 628, 2700 and
    /// 4005; its schedules are not this generator's, and each bug they found has a named test
    /// in `backup::decide` or `backup::races`.)
    #[test]
    fn seeds_that_failed_once() {
        for seed in [
            901, 3718, 13612, 16172, 60980, 75995, 108664, 337014, 768845,
        ] {
            if let Err(f) = run(seed) {
                panic!("{f}");
            }
        }
    }
}
