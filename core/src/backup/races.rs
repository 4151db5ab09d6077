//! The writer against the in-memory stores, where two deliveries race or a write fails half
//! way: each test names a layout that once made a restore wrong.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::executor::block_on;

use super::{Backup, ChangeEvent, Operation, Outcome};
use crate::format::ParameterType;
use crate::index::Index;
use crate::reader::{BackupState, BucketReader};
use crate::store::faulty::{Fault, FaultyStore};
use crate::store::memory::{Clock, MemoryParameters, MemoryStore};
use crate::store::ObjectStore;

pub(crate) const T0: i64 = 1_700_000_000;
pub(crate) const NAME: &str = "/app/p";

/// The in-memory S3 and SSM at `T0`, one parameter `NAME` (also the world of
/// `reader::now`'s tests).
pub(crate) struct World {
    pub(crate) clock: Clock,
    pub(crate) bucket: Arc<MemoryStore>,
    pub(crate) ssm: Arc<MemoryParameters>,
}

impl World {
    /// Every store call first lets the other task run: two deliveries joined alternate at
    /// every await point.
    pub(crate) fn new() -> Self {
        Self::with_pages_of(1000)
    }

    /// As `new`, with S3 listing pages of at most `entries` (S3 may end a page anywhere).
    fn with_pages_of(entries: usize) -> Self {
        let clock = Clock::at_ms(T0 * 1000);
        let bucket = MemoryStore::new("b", clock.clone())
            .with_yields(Arc::new(|| true))
            .with_page_size(entries);
        let bucket = Arc::new(bucket);
        let ssm = Arc::new(MemoryParameters::new(clock.clone()));
        World { clock, bucket, ssm }
    }

    pub(crate) fn backup(&self) -> Backup {
        Backup::on(self.bucket.clone(), self.ssm.clone())
    }

    /// A backup whose `operation` calls fail on their `nth` (1-based) occurrence.
    fn failing(&self, operation: &'static str, nth: usize) -> Backup {
        self.with_fault(operation, nth, Fault::Throttled)
    }

    /// A backup whose `operation` calls meet `fault` on their `nth` (1-based) occurrence.
    fn with_fault(&self, operation: &'static str, nth: usize, fault: Fault) -> Backup {
        let mut faults = vec![Fault::None; nth - 1];
        faults.push(fault);
        self.with_faults(operation, faults)
    }

    /// A backup whose `operation` calls meet `faults` in turn, then none.
    fn with_faults(&self, operation: &'static str, faults: Vec<Fault>) -> Backup {
        let seen = Arc::new(AtomicUsize::new(0));
        let policy = Arc::new(move |op: &str, _: &str| {
            if op != operation {
                return Fault::None;
            }
            let nth = seen.fetch_add(1, Ordering::SeqCst);
            faults.get(nth).copied().unwrap_or(Fault::None)
        });
        let objects: Arc<dyn ObjectStore> = Arc::new(FaultyStore::new(self.bucket.clone(), policy));
        Backup::on(objects, self.ssm.clone())
    }

    /// `old` created at +1 and backed up; deleted in SSM at +10 (its event not processed yet).
    fn backed_up_then_deleted() -> Self {
        Self::backed_up_then_deleted_in(World::new())
    }

    fn backed_up_then_deleted_in(w: World) -> Self {
        w.at(1);
        w.ssm.put(NAME, "old", ParameterType::String);
        block_on(w.backup().apply(&event(Operation::Create, 1))).expect("created");
        w.at(10);
        w.ssm.delete(NAME);
        w
    }

    /// The delete of +10 processed, stopping between its tombstone and its marker.
    fn delete_stopped_before_its_marker(&self) {
        let crashed = block_on(
            self.failing("DeleteObject", 1)
                .apply(&event(Operation::Delete, 10)),
        );
        assert!(crashed.is_err(), "{crashed:?}");
    }

    pub(crate) fn at(&self, secs: i64) {
        self.clock.advance_to((T0 + secs) * 1000);
    }

    /// The value a restore to `T0 + secs` writes (`None`: absent), through the reader with
    /// and without the index.
    fn restored(&self, secs: i64) -> Option<String> {
        let reader = BucketReader::on(self.bucket.clone());
        let listing = block_on(reader.list("/app/")).expect("listed");
        let listed = listing.get(NAME).cloned().unwrap_or_default();
        let index = block_on(reader.index("/app/")).expect("index listed");
        let mut answers = [&index, &Index::none()].map(|index| {
            match block_on(reader.state_at(NAME, &listed, T0 + secs, None, index)).expect("read") {
                BackupState::Present { snapshot, .. } => Some(snapshot.value),
                _ => None,
            }
        });
        assert_eq!(answers[0], answers[1], "with and without the index");
        answers[0].take()
    }

    fn markers(&self) -> usize {
        self.bucket
            .dump()
            .iter()
            .filter(|(k, _)| k == NAME)
            .flat_map(|(_, es)| es.iter().filter(|e| e.2))
            .count()
    }
}

fn event(operation: Operation, secs: i64) -> ChangeEvent {
    ChangeEvent {
        name: NAME.to_owned(),
        operation,
        event_time: T0 + secs,
        param_type: None,
    }
}

/// Deleted at +10, re-created at +20; the re-creation is recorded first, then two deliveries
/// of the delete run at once. Both find the delete unrecorded and write a tombstone; without
/// a condition both wrote a marker too, and the second one, following a marker, read as a
/// delete of its own at +40: a restore to +40 deleted the live parameter. Found by the
/// simulation (seed 901).
#[test]
fn two_deliveries_of_one_delete_at_once_write_one_marker() {
    let w = World::backed_up_then_deleted();
    w.at(20);
    w.ssm.put(NAME, "new", ParameterType::String);
    w.at(30);
    block_on(w.backup().apply(&event(Operation::Create, 20))).expect("re-created");
    w.at(40);
    let (a, b) = block_on(futures::future::join(
        w.backup().apply(&event(Operation::Delete, 10)),
        w.backup().apply(&event(Operation::Delete, 10)),
    ));
    assert_eq!((a, b), (Ok(Outcome::Deleted), Ok(Outcome::Deleted)));
    assert_eq!(w.markers(), 1);
    assert_eq!(w.restored(5).as_deref(), Some("old"));
    assert_eq!(w.restored(15), None);
    assert_eq!(w.restored(40).as_deref(), Some("new"));
    assert_eq!(w.restored(100).as_deref(), Some("new"));
}

/// A delete stopped between its tombstone and its marker; SQS delivers it again, and while
/// that delivery, having seen its tombstone current, is about to put the marker, another
/// invocation records the re-creation. A marker then would follow the new value and hide it
/// (seed 4005 of the earlier model): the marker is written only over its tombstone.
#[test]
fn a_delete_completed_late_puts_no_marker_over_a_value_written_since() {
    let w = World::backed_up_then_deleted();
    w.at(11);
    w.delete_stopped_before_its_marker();
    w.at(20);
    w.ssm.put(NAME, "new", ParameterType::String);
    w.at(41);
    let completion = w.with_fault("DeleteObject", 1, Fault::Slow);
    let recreation = w.backup();
    let (again, created) = block_on(futures::future::join(
        completion.apply(&event(Operation::Delete, 10)),
        recreation.apply(&event(Operation::Create, 20)),
    ));
    assert_eq!(created, Ok(Outcome::Stored { version: 1 }));
    assert_eq!(again, Ok(Outcome::Duplicate { version: None }));
    assert_eq!(w.markers(), 0);
    assert_eq!(w.restored(15), None);
    assert_eq!(w.restored(41).as_deref(), Some("new"));
    assert_eq!(w.restored(100).as_deref(), Some("new"));
}

/// The same crash with nothing written since: the delete's next delivery completes it.
#[test]
fn a_delete_stopped_before_its_marker_is_completed_by_its_next_delivery() {
    let w = World::backed_up_then_deleted();
    w.delete_stopped_before_its_marker();
    w.at(50);
    let again = block_on(w.backup().apply(&event(Operation::Delete, 10)));
    assert_eq!(again, Ok(Outcome::DeleteCompleted));
    assert_eq!(w.markers(), 1);
    assert_eq!(w.restored(5).as_deref(), Some("old"));
    assert_eq!(w.restored(10), None);
    assert_eq!(w.restored(60), None);
}

/// Deleted at +10, re-created at +20 and recorded, then the delete of +10 processed: its
/// marker is the key's newest entry while the parameter exists. Deleted again at +30, that
/// event lost: the reconcile, which looks for lost deletes among keys whose newest entry is
/// not a marker, never saw this key, and a restore to now brought it back. The writer flags
/// such a key for the reconcile.
#[test]
fn a_lost_delete_of_a_key_live_behind_a_marker_is_found_by_the_reconcile() {
    let w = World::backed_up_then_deleted();
    w.at(20);
    w.ssm.put(NAME, "new", ParameterType::String);
    w.at(21);
    block_on(w.backup().apply(&event(Operation::Create, 20))).expect("re-created");
    w.at(22);
    let late = block_on(w.backup().apply(&event(Operation::Delete, 10)));
    assert_eq!(late, Ok(Outcome::Deleted));
    assert_eq!(w.markers(), 1);
    w.at(30);
    w.ssm.delete(NAME);
    w.at(100);
    let summary = block_on(crate::reconcile::run(&w.backup(), &[], None)).expect("reconciled");
    assert_eq!(summary.removed, 1);
    assert_eq!(w.restored(15), None);
    assert_eq!(w.restored(25).as_deref(), Some("new"));
    assert_eq!(w.restored(100), None);
    // Found and recorded: the flag is down, and the next lap finds nothing.
    let again = block_on(crate::reconcile::run(&w.backup(), &[], None)).expect("reconciled");
    assert_eq!(again.removed, 0);
}

/// An Update whose event is lost leaves its version in SSM's history only: the next version
/// recorded brings it back, at its own LastModifiedDate, while SSM keeps it.
#[test]
fn a_version_whose_event_was_lost_is_recorded_with_the_next_one() {
    let w = World::new();
    w.at(1);
    w.ssm.put(NAME, "one", ParameterType::String);
    block_on(w.backup().apply(&event(Operation::Create, 1))).expect("created");
    w.at(5);
    w.ssm.put(NAME, "two", ParameterType::String);
    w.at(9);
    w.ssm.put(NAME, "three", ParameterType::String);
    w.at(12);
    let stored = block_on(w.backup().apply(&event(Operation::Update, 9)));
    assert_eq!(stored, Ok(Outcome::Stored { version: 3 }));
    assert_eq!(w.restored(4).as_deref(), Some("one"));
    assert_eq!(w.restored(5).as_deref(), Some("two"));
    assert_eq!(w.restored(9).as_deref(), Some("three"));
    // The lost event, delivered after all: a duplicate.
    let late = block_on(w.backup().apply(&event(Operation::Update, 5)));
    assert_eq!(late, Ok(Outcome::Duplicate { version: Some(2) }));
}

/// As above, the re-creation in the very second of the delete: readers let the value win that
/// second, so the key is live behind the marker too (seed 3718).
#[test]
fn a_lost_delete_of_a_key_re_created_in_the_second_of_its_delete_is_found() {
    let w = World::backed_up_then_deleted();
    w.clock.advance(400);
    w.ssm.put(NAME, "new", ParameterType::String);
    w.at(11);
    block_on(w.backup().apply(&event(Operation::Create, 10))).expect("re-created");
    w.at(12);
    let late = block_on(w.backup().apply(&event(Operation::Delete, 10)));
    assert_eq!(late, Ok(Outcome::Deleted));
    assert_eq!(w.restored(10).as_deref(), Some("new"));
    w.at(30);
    w.ssm.delete(NAME);
    w.at(100);
    let summary = block_on(crate::reconcile::run(&w.backup(), &[], None)).expect("reconciled");
    assert_eq!(summary.removed, 1);
    assert_eq!(w.restored(100), None);
}

/// Deleted at +10, re-created at +20; the delete's delivery reads the key, then, slowed, lets
/// the re-creation's delivery record the new value before it writes its tombstone and marker.
/// What it read showed nothing after the delete, so the key was not flagged live behind the
/// marker, and a later lost delete was never found (seed 13612): the flag is decided from the
/// versions the tombstone follows in S3, those written since the read included.
#[test]
fn a_delete_racing_the_re_creation_it_precedes_flags_the_key() {
    delete_racing_the_re_creation_it_precedes(World::backed_up_then_deleted());
}

/// The same race with S3 listing one entry per page: the page read after the tombstone ended
/// right after it, hiding the re-creation written below it, and the key went unflagged
/// (seed 75995). The writer reads on, page by page, down to the newest version it knew.
#[test]
fn a_delete_racing_the_re_creation_flags_the_key_whatever_the_listing_pages() {
    for entries in [1, 2, 3] {
        let w = World::backed_up_then_deleted_in(World::with_pages_of(entries));
        delete_racing_the_re_creation_it_precedes(w);
    }
}

fn delete_racing_the_re_creation_it_precedes(w: World) {
    w.at(20);
    w.ssm.put(NAME, "new", ParameterType::String);
    w.at(30);
    let delete = w.with_fault("PutObject", 1, Fault::Slow);
    let (deleted, created) = block_on(futures::future::join(
        delete.apply(&event(Operation::Delete, 10)),
        w.backup().apply(&event(Operation::Create, 20)),
    ));
    assert_eq!(created, Ok(Outcome::Stored { version: 1 }));
    assert_eq!(deleted, Ok(Outcome::Deleted));
    assert_eq!(w.markers(), 1);
    assert_eq!(w.restored(15), None);
    assert_eq!(w.restored(25).as_deref(), Some("new"));
    w.at(40);
    w.ssm.delete(NAME);
    w.at(100);
    let summary = block_on(crate::reconcile::run(&w.backup(), &[], None)).expect("reconciled");
    assert_eq!(summary.removed, 1);
    assert_eq!(w.restored(25).as_deref(), Some("new"));
    assert_eq!(w.restored(100), None);
}

/// Deleted at +10 and +15 (between, a version whose events come too late to be recorded),
/// re-created at +20. The delete of +15 reads the key, then, slowed, lets the re-creation be
/// recorded, writes its tombstone and fails on its index entry, before it could flag the key:
/// that tombstone names none of the versions below it. The delete of +10, processed next, knew
/// the key's versions from that tombstone alone and looked no further, so it put its marker
/// over a live key without a flag, and a later lost delete was never found (simulation seed
/// 768845): the versions written since a delete's time are looked at, whatever the newest
/// version says it follows.
#[test]
fn a_delete_after_a_failed_racing_delete_still_flags_the_key() {
    for entries in [1, 2, 1000] {
        let w = World::backed_up_then_deleted_in(World::with_pages_of(entries));
        w.at(12);
        w.ssm.put(NAME, "between", ParameterType::String);
        w.at(15);
        w.ssm.delete(NAME);
        w.at(20);
        w.ssm.put(NAME, "new", ParameterType::String);
        w.at(30);
        let failing = w.with_faults("PutObject", vec![Fault::Slow, Fault::Throttled]);
        let (failed, created) = block_on(futures::future::join(
            failing.apply(&event(Operation::Delete, 15)),
            w.backup().apply(&event(Operation::Create, 20)),
        ));
        assert_eq!(created, Ok(Outcome::Stored { version: 1 }));
        assert!(failed.is_err(), "{failed:?}");
        w.at(40);
        let late = block_on(w.backup().apply(&event(Operation::Delete, 10)));
        assert_eq!(late, Ok(Outcome::Deleted));
        assert_eq!(w.markers(), 1, "pages of {entries}");
        assert_eq!(w.restored(25).as_deref(), Some("new"));
        w.at(50);
        w.ssm.delete(NAME);
        w.at(100);
        let summary = block_on(crate::reconcile::run(&w.backup(), &[], None)).expect("reconciled");
        assert_eq!(summary.removed, 1, "pages of {entries}");
        assert_eq!(w.restored(25).as_deref(), Some("new"));
        assert_eq!(w.restored(100), None, "pages of {entries}");
    }
}

/// Version 1 created at +1 and labelled at +8; the Create's delivery finds no object, and,
/// slowed, lists the key after the label's delivery wrote its record: it knew that record from
/// its tags alone, which carry no SSM date, and named it so. Deleted at +9.5 and re-created at
/// +9.999 (version 1 again), both events lost; the new version labelled at +12. The undated
/// record of +8, within the clocks' skew of the re-creation, was taken for the new version's,
/// so the label's event was a duplicate and the re-created value was never recorded: a
/// restore to +12 wrote the deleted value back (simulation seed 881542). What the writer
/// cannot date, it reads: the record's own metadata gives its date.
#[test]
fn an_undated_record_of_the_deleted_incarnation_is_read_not_guessed() {
    let w = World::new();
    w.at(1);
    w.ssm.put(NAME, "old", ParameterType::String);
    w.at(8);
    w.ssm.label(NAME, 1, "live");
    w.at(9);
    let create = w.with_fault("ListObjectVersions", 1, Fault::Slow);
    let (created, labelled) = block_on(futures::future::join(
        create.apply(&event(Operation::Create, 1)),
        w.backup().apply(&event(Operation::Relabel, 8)),
    ));
    assert_eq!(labelled, Ok(Outcome::Stored { version: 1 }));
    assert_eq!(created, Ok(Outcome::Stored { version: 1 }));
    w.clock.advance_to((T0 + 9) * 1000 + 500);
    w.ssm.delete(NAME);
    w.clock.advance_to((T0 + 9) * 1000 + 999);
    w.ssm.put(NAME, "new", ParameterType::String);
    w.at(12);
    w.ssm.label(NAME, 1, "live");
    w.at(13);
    let label = block_on(w.backup().apply(&event(Operation::Relabel, 12)));
    assert_eq!(label, Ok(Outcome::Stored { version: 1 }));
    assert_eq!(w.restored(8).as_deref(), Some("old"));
    assert_eq!(w.restored(12).as_deref(), Some("new"));
}

/// Deleted at +10.010, its event lost; the reconcile finds it gone at +10.050, on a machine
/// whose clock is 100 ms behind S3's and SSM's. Dated by that clock (+9.950), the found delete
/// fell in the second before the delete, while the parameter still existed (simulation seed
/// 16172): it is dated by S3's clock, read from a probe written between SSM's listing and its
/// confirmation.
#[test]
fn a_delete_found_within_a_second_is_dated_by_s3s_clock_not_this_machines() {
    let clock = Clock::at_ms(T0 * 1000);
    let bucket = Arc::new(MemoryStore::new("b", clock.clone()).with_skew(-100));
    let ssm = Arc::new(MemoryParameters::new(clock.clone()));
    let w = World { clock, bucket, ssm };
    w.at(1);
    w.ssm.put(NAME, "old", ParameterType::String);
    block_on(w.backup().apply(&event(Operation::Create, 1))).expect("created");
    w.clock.advance_to((T0 + 10) * 1000 + 10);
    w.ssm.delete(NAME);
    w.clock.advance_to((T0 + 10) * 1000 + 50);
    let summary = block_on(crate::reconcile::run(&w.backup(), &[], None)).expect("reconciled");
    assert_eq!(summary.removed, 1);
    assert_eq!(w.restored(9).as_deref(), Some("old"));
    assert_eq!(w.restored(10), None);
}

/// Version 2 written at +4.243; the parameter deleted and re-created (version 1 again) in the
/// same millisecond, +4.999; the re-creation recorded at +7, the delete at +15; later a delete
/// only the reconcile finds. In the second +4 the re-creation's value is the last: SSM's dates
/// order it after version 2. A restore to +6 placed the re-creation from its tags, which carry
/// no date, so the version numbers ordered the two and version 2 was written back (simulation
/// seed 108664): a tied value without its date is read for it.
#[test]
fn a_re_creation_in_the_millisecond_of_its_delete_is_ordered_by_its_ssm_date() {
    let w = World::new();
    w.clock.advance_to(T0 * 1000 + 442);
    w.ssm.put(NAME, "first", ParameterType::StringList);
    w.clock.advance_to((T0 + 4) * 1000 + 243);
    w.ssm.put(NAME, "second", ParameterType::StringList);
    w.clock.advance_to((T0 + 4) * 1000 + 390);
    block_on(w.backup().apply(&event(Operation::Update, 4))).expect("version 2");
    w.clock.advance_to((T0 + 4) * 1000 + 999);
    w.ssm.delete(NAME);
    w.ssm.put(NAME, "again", ParameterType::String);
    w.clock.advance_to((T0 + 7) * 1000 + 154);
    block_on(w.backup().apply(&event(Operation::Create, 4))).expect("re-created");
    w.clock.advance_to((T0 + 15) * 1000 + 33);
    let late = block_on(w.backup().apply(&event(Operation::Delete, 4)));
    assert_eq!(late, Ok(Outcome::Deleted));
    w.at(30);
    w.ssm.delete(NAME);
    w.at(100);
    let summary = block_on(crate::reconcile::run(&w.backup(), &[], None)).expect("reconciled");
    assert_eq!(summary.removed, 1);
    assert_eq!(w.restored(6).as_deref(), Some("again"));
}
