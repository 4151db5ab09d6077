//! SSM as the schedule changes it: every call first makes the changes due by then, so a job
//! that runs past a change sees it (seed 337014).

use std::sync::{Arc, Mutex};

use super::schedule::{Change, Kind, NAMES};
use crate::format::Tags;
use crate::store::memory::{Clock, MemoryParameters};
use crate::store::{HistoryVersion, ParameterStore, ParametersPage, StoreFuture};

/// The simulated world: the models, the real writer, and what the check needs to know.
/// The schedule's SSM changes, each made as soon as the clock passes its time: at every SSM
/// call too, not only between jobs, so a job that runs long sees SSM as it then is (an
/// earlier model made changes only between jobs, and a reconcile that ran past a
/// re-creation still saw the parameter gone: simulation seed 337014).
#[derive(Debug)]
pub(super) struct DueChanges {
    pub(super) changes: Vec<Change>,
    pub(super) made: Mutex<usize>,
    pub(super) ssm: Arc<MemoryParameters>,
    pub(super) clock: Clock,
}

impl DueChanges {
    pub(super) fn make(&self) {
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
pub(super) struct ScheduledParameters {
    pub(super) due: Arc<DueChanges>,
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
