//! A store that fails some calls, for tests and the simulation: throttled or refused before
//! the call reaches the bucket, or timed out after it did (the write happened, its answer was
//! lost). A writer that stops at any failure models a crash between any two of its writes.

use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;

use super::{
    Deleted, KeysPage, NewObject, ObjectHead, ObjectStore, StoreFuture, StoreResult, VersionsFrom,
    VersionsPage, Written,
};
use crate::aws_error::AwsError;

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Refused before it reaches the bucket (`SlowDown`, 503).
    Throttled,
    /// Made, but its answer is lost (a timeout): the caller sees a failure.
    AnswerLost,
    /// Made late: every other task runs before it (a slow network, a retry's backoff).
    Slow,
}

/// Pending `n` times (waking itself each time) before it is ready: under a joined executor,
/// every other ready task runs first.
struct YieldTimes(u32);

impl std::future::Future for YieldTimes {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 == 0 {
            return std::task::Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// How many times a slow call lets the others run first: more than any writer makes calls.
const SLOW_YIELDS: u32 = 64;

/// Decides each call's fault from its operation and key.
pub type FaultPolicy = Arc<dyn Fn(&str, &str) -> Fault + Send + Sync>;

/// `inner`, with the faults `policy` picks.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    policy: FaultPolicy,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, policy: FaultPolicy) -> Self {
        FaultyStore { inner, policy }
    }

    fn failed(&self, operation: &str, key: &str, fault: Fault) -> AwsError {
        let (status, code) = match fault {
            Fault::AnswerLost => (None, None),
            _ => (Some(503), Some("SlowDown".to_owned())),
        };
        AwsError {
            call: format!("S3 {operation} s3://{}/{key}", self.inner.bucket()),
            code,
            status,
            message: "injected".to_owned(),
        }
    }

    /// Runs `call` through the fault `operation` on `key` draws.
    fn run<'a, T: Send + 'a>(
        &'a self,
        operation: &'static str,
        key: String,
        call: StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        let fault = (self.policy)(operation, &key);
        Box::pin(async move {
            match fault {
                Fault::None => call.await,
                Fault::Slow => {
                    YieldTimes(SLOW_YIELDS).await;
                    call.await
                }
                Fault::Throttled => Err(self.failed(operation, &key, fault)),
                Fault::AnswerLost => {
                    let _made: StoreResult<T> = call.await;
                    Err(self.failed(operation, &key, fault))
                }
            }
        })
    }
}

impl ObjectStore for FaultyStore {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }

    fn list_versions<'a>(
        &'a self,
        prefix: &'a str,
        from: Option<VersionsFrom>,
        max_keys: Option<i32>,
    ) -> StoreFuture<'a, VersionsPage> {
        let call = self.inner.list_versions(prefix, from, max_keys);
        self.run("ListObjectVersions", prefix.to_owned(), call)
    }

    fn list_keys<'a>(
        &'a self,
        prefix: &'a str,
        continuation: Option<String>,
    ) -> StoreFuture<'a, KeysPage> {
        let call = self.inner.list_keys(prefix, continuation);
        self.run("ListObjectsV2", prefix.to_owned(), call)
    }

    fn head<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<ObjectHead>> {
        self.run(
            "HeadObject",
            key.to_owned(),
            self.inner.head(key, version_id),
        )
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<(ObjectHead, Vec<u8>)>> {
        self.run("GetObject", key.to_owned(), self.inner.get(key, version_id))
    }

    fn tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        self.run(
            "GetObjectTagging",
            key.to_owned(),
            self.inner.tags(key, version_id),
        )
    }

    fn put_tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
        tags: Vec<(String, String)>,
    ) -> StoreFuture<'a, ()> {
        let call = self.inner.put_tags(key, version_id, tags);
        self.run("PutObjectTagging", key.to_owned(), call)
    }

    fn put(&self, object: NewObject) -> StoreFuture<'_, Written> {
        let key = object.key.clone();
        self.run("PutObject", key, self.inner.put(object))
    }

    fn delete<'a>(&'a self, key: &'a str, if_match: Option<&'a str>) -> StoreFuture<'a, Deleted> {
        let call = self.inner.delete(key, if_match);
        self.run("DeleteObject", key.to_owned(), call)
    }

    fn now(&self) -> SystemTime {
        self.inner.now()
    }

    fn sleep_until(&self, until: SystemTime) -> BoxFuture<'_, ()> {
        self.inner.sleep_until(until)
    }
}
