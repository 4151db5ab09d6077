//! In-memory models of a versioned S3 bucket and of Parameter Store, as AWS documents them,
//! for the simulation and the tests. Each cites the behaviour it models; where an emulator
//! (moto) is kinder than AWS, these follow AWS.
//!
//! S3 ([`MemoryStore`]):
//! * every put and every delete without a version id makes a new version with its own opaque
//!   id; a delete makes a delete marker, also when there is nothing to delete (S3 User Guide,
//!   "Working with delete markers");
//! * listings give LastModified in whole seconds (the `ListObjectVersions` XML carries no
//!   milliseconds), versions and markers in two lists, `IsLatest` on each key's newest entry,
//!   pages of at most `max_keys` (1,000) entries split anywhere, even inside one key;
//! * `HeadObject`/`GetObject` of a key whose newest entry is a marker: 404; of a marker's own
//!   version: 405 `MethodNotAllowed` (S3 User Guide, "Working with delete markers": "If the
//!   latest version is a delete marker ... returns a 404"; a GET of a marker's version id
//!   "returns a 405 Method Not Allowed"); tags of a marker: 405 too;
//! * strong read-after-write consistency (S3 User Guide, "Amazon S3 data consistency model");
//! * user metadata of at most 2 KB, at most 10 tags (S3 User Guide, "Working with object
//!   metadata", "Categorizing your storage using tags").
//!
//! Parameter Store ([`MemoryParameters`]):
//! * versions numbered from 1, and from 1 again after a delete (a new parameter);
//! * LastModifiedDate in milliseconds; history of the existing parameter only;
//! * labels that move between versions (one version per label);
//! * tags with no history;
//! * at most 100 versions: the oldest is dropped (SSM User Guide, "Working with parameter
//!   versions": "If you create more than 100 versions ... the oldest version is deleted").
//!
//! Time is the model's own ([`Clock`]): the caller moves it, and a writer's waits move it.

mod objects;
mod parameters;

pub use objects::MemoryStore;
pub use parameters::{MemoryParameters, HISTORY_LIMIT};

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// A shared, settable clock in epoch milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<Mutex<i64>>);

impl Clock {
    pub fn at_ms(ms: i64) -> Self {
        Clock(Arc::new(Mutex::new(ms)))
    }

    pub fn now_ms(&self) -> i64 {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock to `ms` unless it is there already or later.
    pub fn advance_to(&self, ms: i64) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now = (*now).max(ms);
    }

    pub fn advance(&self, ms: i64) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += ms;
    }
}

/// Decides, before each call, whether the call first lets other tasks run: with
/// `futures::join!` of two writers, they then interleave at those await points.
pub type YieldPolicy = Arc<dyn Fn() -> bool + Send + Sync>;

/// A future that is pending once (waking itself) when `yield_first`.
struct MaybeYield(bool);

impl Future for MaybeYield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            self.0 = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests;
