//! The real writer's versions against the in-memory S3 and SSM, read knowing SSM's parameter
//! now: what is proven is not read, and anything short of the proof is read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::executor::block_on;

use super::Proven;
use crate::backup::races::{World, NAME, T0};
use crate::backup::{ChangeEvent, Operation};
use crate::format::{ParameterSnapshot, ParameterType, Tags};
use crate::reader::{BackupState, BucketReader};
use crate::store::faulty::{Fault, FaultyStore};
use crate::store::ObjectStore;

impl World {
    /// SSM changes `NAME` at `secs` (a put of `value`, or a delete for `None`), and the writer
    /// records the change's event.
    fn change(&self, secs: i64, value: Option<&str>) {
        self.at(secs);
        let operation = match value {
            Some(v) => {
                let created = self.ssm.snapshot(NAME).is_none();
                self.ssm.put(NAME, v, ParameterType::String);
                if created {
                    Operation::Create
                } else {
                    Operation::Update
                }
            }
            None => {
                self.ssm.delete(NAME);
                Operation::Delete
            }
        };
        let event = ChangeEvent {
            name: NAME.to_owned(),
            operation,
            event_time: T0 + secs,
            param_type: None,
        };
        block_on(self.backup().apply(&event)).expect("backed up");
    }

    fn now(&self) -> ParameterSnapshot {
        self.ssm.snapshot(NAME).expect("SSM holds it")
    }

    /// The state at `T0 + secs` knowing SSM's parameter `now` and `tags_now`, as a restore
    /// reads it: what `state_or_now` proved, the state, and how many objects were read.
    fn read(
        &self,
        secs: i64,
        now: &ParameterSnapshot,
        tags_now: Option<&Tags>,
    ) -> (bool, BackupState, usize) {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let policy = Arc::new(move |op: &str, _: &str| {
            if ["GetObject", "HeadObject", "GetObjectTagging"].contains(&op) {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            Fault::None
        });
        let objects: Arc<dyn ObjectStore> = Arc::new(FaultyStore::new(self.bucket.clone(), policy));
        let reader = BucketReader::on(objects);
        let listing = block_on(reader.list("/app/")).expect("listed");
        let listed = listing.get(NAME).cloned().unwrap_or_default();
        let index = block_on(reader.index("/app/")).expect("index listed");
        let (proven, state) = block_on(async {
            let proven = reader
                .state_or_now(NAME, &listed, T0 + secs, now, &index)
                .await
                .expect("read");
            let is_now = matches!(proven, Proven::IsNow { .. });
            let state = reader
                .settle_proven(NAME, &listed, &index, proven, now, tags_now)
                .await
                .expect("settled");
            (is_now, state)
        });
        (proven, state, reads.load(Ordering::SeqCst))
    }
}

fn value(state: &BackupState) -> Option<&str> {
    match state {
        BackupState::Present { snapshot, .. } => Some(&snapshot.value),
        _ => None,
    }
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_version_ssm_holds_now_is_proven_without_a_read() {
    let w = World::new();
    w.change(1, Some("a"));
    w.change(10, Some("b"));
    w.at(20);
    let (now, none) = (w.now(), Tags::new());
    let (proven, state, reads) = w.read(15, &now, Some(&none));
    assert!(proven);
    assert_eq!((value(&state), reads), (Some("b"), 0), "{state:?}");
    let BackupState::Present { at, snapshot } = &state else {
        unreachable!("present")
    };
    assert_eq!(*at, T0 + 10, "in force from its event time");
    assert_eq!(snapshot.attributes.tags, Some(none));
    // Before it, another version is in force: read, as ever.
    let (proven, state, reads) = w.read(5, &now, Some(&Tags::new()));
    assert!(!proven);
    assert_eq!(value(&state), Some("a"));
    assert!(reads >= 1, "{reads}");
}

#[test]
fn tags_changed_since_the_backup_are_read_back_from_the_version() {
    let w = World::new();
    w.change(1, Some("a"));
    w.at(5);
    // Tags change without a new version or an event.
    assert!(w.ssm.set_tags(NAME, tags(&[("team", "x")])));
    let now = w.now();
    let (proven, state, reads) = w.read(10, &now, Some(&tags(&[("team", "x")])));
    assert!(proven, "the index proves the version");
    assert!(reads >= 1, "but not its tags: read ({reads})");
    let BackupState::Present { snapshot, .. } = &state else {
        unreachable!("{state:?}")
    };
    assert_eq!(snapshot.value, "a");
    assert_eq!(snapshot.attributes.tags, Some(Tags::new()), "as recorded");
    // Leaving tags alone (`--no-tags`), they are not compared: nothing to read.
    let (_, state, reads) = w.read(10, &now, None);
    assert_eq!((value(&state), reads), (Some("a"), 0));
}

#[test]
fn a_re_created_parameter_is_not_taken_for_the_version_of_its_namesake() {
    let w = World::new();
    w.change(1, Some("old"));
    w.change(10, None);
    // Re-created: version 1 again, at another date; its event not processed yet.
    w.at(20);
    w.ssm.put(NAME, "new", ParameterType::String);
    let now = w.now();
    assert_eq!(now.attributes.version, Some(1));
    let (proven, state, _) = w.read(5, &now, Some(&Tags::new()));
    assert!(!proven, "version 1 of another incarnation");
    assert_eq!(value(&state), Some("old"));
    let (proven, state, _) = w.read(15, &now, Some(&Tags::new()));
    assert!(!proven);
    assert_eq!(value(&state), None, "deleted at 15");
}

#[test]
fn a_version_the_index_does_not_settle_is_read() {
    let w = World::new();
    w.change(1, Some("a"));
    w.at(5);
    // SSM moved on and its change is not recorded yet: no entry names SSM's version.
    w.ssm.put(NAME, "b", ParameterType::String);
    let now = w.now();
    let (proven, state, reads) = w.read(10, &now, Some(&Tags::new()));
    assert!(!proven);
    assert_eq!(value(&state), Some("a"));
    assert!(reads >= 1, "{reads}");
}
