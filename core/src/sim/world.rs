//! One run: the real writer, reconcile and reader against the in-memory stores, the schedule's
//! jobs in time order, and the invariant checked after a final reconcile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::join_all;

use super::schedule::{
    truth_at, Change, Kind, Rng, Schedule, MAX_RECEIVES, NAMES, START, VISIBILITY_MS,
};
use super::ssm::{DueChanges, ScheduledParameters};
use crate::backup::{Backup, ChangeEvent, Operation};
use crate::format::{object_key, ParameterSnapshot, ParameterType};
use crate::index::Index;
use crate::reader::{BackupState, BucketReader, Listing};
use crate::reconcile;
use crate::store::faulty::{Fault, FaultyStore};
use crate::store::memory::{Clock, MemoryParameters, MemoryStore};
use crate::store::{ObjectStore, ParameterStore};

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

pub(super) struct World<'a> {
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
    pub(super) fn new(schedule: &'a Schedule) -> Self {
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

    pub(super) async fn run(&mut self) -> Result<(), Failure> {
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
            // SSM's parameter now, as a restore reads it before the bucket (GetParameters),
            // and its tags (ListTagsForResource).
            let now = self.ssm.snapshot(name);
            let tags_now = ParameterStore::tags(self.ssm.as_ref(), name)
                .await
                .map_err(|e| self.fail_io(&e))?;
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
                let paths: [(&str, &Index, Option<&ParameterSnapshot>); 3] = [
                    ("with the index", &index, None),
                    ("without the index", &none, None),
                    ("knowing SSM's parameter now", &index, now.as_ref()),
                ];
                for (path, index, now) in paths {
                    let state = match now {
                        None => reader.state_at(&key, &listed, t, None, index).await,
                        Some(now) => {
                            let proven = reader
                                .state_or_now(&key, &listed, t, now, index)
                                .await
                                .map_err(|e| self.fail_io(&e))?;
                            reader
                                .settle_proven(&key, &listed, index, proven, now, tags_now.as_ref())
                                .await
                        }
                    }
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
