//! The storage seam: every S3 and SSM call the writer, the reconcile and the reader make goes
//! through [`ObjectStore`] and [`ParameterStore`], so that the same code runs on AWS
//! ([`sdk`]), on in-memory models that behave as AWS documents them ([`memory`]), and under
//! injected failures ([`faulty`]). The deterministic simulation ([`crate::sim`]) drives the
//! real writer and reader through the models.
//!
//! The traits speak the project's types, not the SDK's: a listing entry is a
//! [`ListedVersion`], a missing object is `None`, and every failure is an [`AwsError`]
//! branched on by its code, never its message.

pub mod faulty;
pub mod memory;
pub mod sdk;

use std::collections::HashMap;
use std::time::SystemTime;

use futures::future::BoxFuture;

use crate::aws_error::AwsError;
use crate::format::{ParameterSnapshot, Tags};

/// What a store call gives back.
pub type StoreResult<T> = Result<T, AwsError>;

/// A store call in flight.
/// One listed version or delete marker, before anything else is known about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedVersion {
    pub version_id: String,
    pub last_modified_ms: i64,
    pub is_delete_marker: bool,
    /// The key's current version (or delete marker).
    pub is_latest: bool,
    pub size: i64,
    pub etag: Option<String>,
    pub storage_class: Option<String>,
}

pub type StoreFuture<'a, T> = BoxFuture<'a, StoreResult<T>>;

/// Where a `ListObjectVersions` page starts: after this key (and, within it, after this
/// version id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionsFrom {
    pub key: String,
    pub version_id: Option<String>,
}

/// One `ListObjectVersions` page, as the SDK gives it: the versions in S3's order (by key,
/// newest first), then the delete markers in the same order. LastModified is in whole seconds
/// (S3's listings give no more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionsPage {
    pub versions: Vec<(String, ListedVersion)>,
    pub markers: Vec<(String, ListedVersion)>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<VersionsFrom>,
}

/// One `ListObjectsV2` page: the keys whose newest entry is not a delete marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysPage {
    pub keys: Vec<String>,
    /// The continuation token of the next page; `None` on the last page.
    pub next: Option<String>,
}

/// What `HeadObject` (or `GetObject`) says of a version besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectHead {
    /// `None` in a bucket that never had versioning.
    pub version_id: Option<String>,
    /// User metadata, keys without `x-amz-meta-` (S3 keeps them lowercase).
    pub metadata: HashMap<String, String>,
    pub etag: Option<String>,
}

/// What S3 answered a `PutObject` with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// `None` in a bucket that never had versioning.
    pub version_id: Option<String>,
    pub etag: Option<String>,
}

/// What a `DeleteObject` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// A delete marker, with its version id.
    Marker(Option<String>),
    /// Asked to delete only the version with a given ETag, S3 found another current (412
    /// Precondition Failed), or none (404): nothing written.
    NotCurrent,
}

/// An object to put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewObject {
    pub key: String,
    pub body: Vec<u8>,
    /// The `x-amz-tagging` header (`k=v&k=v`, percent-encoded); empty for none.
    pub tagging: String,
    pub metadata: Vec<(String, String)>,
    pub content_type: Option<String>,
}

/// A versioned S3 bucket, as the writer and the reader use it.
///
/// `head`, `get` and `tags` of a delete marker's version fail with 405 (`MethodNotAllowed`),
/// as S3 answers; of a key whose newest entry is a delete marker, without a version id, `head`
/// and `get` give `None` (S3: 404).
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    fn bucket(&self) -> &str;

    /// One page of the versions and delete markers under `prefix`, at most `max_keys`
    /// entries (S3's default and maximum: 1,000).
    fn list_versions<'a>(
        &'a self,
        prefix: &'a str,
        from: Option<VersionsFrom>,
        max_keys: Option<i32>,
    ) -> StoreFuture<'a, VersionsPage>;

    /// One page of the current keys under `prefix`.
    fn list_keys<'a>(
        &'a self,
        prefix: &'a str,
        continuation: Option<String>,
    ) -> StoreFuture<'a, KeysPage>;

    /// `HeadObject`: `None` when there is no such object (404).
    fn head<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<ObjectHead>>;

    /// `GetObject`: `None` when there is no such object (404).
    fn get<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<(ObjectHead, Vec<u8>)>>;

    /// `GetObjectTagging` of one version.
    fn tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>>;

    /// `PutObjectTagging` of one version: replaces its whole tag set.
    fn put_tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
        tags: Vec<(String, String)>,
    ) -> StoreFuture<'a, ()>;

    /// `PutObject`.
    fn put(&self, object: NewObject) -> StoreFuture<'_, Written>;

    /// `DeleteObject` without a version id: a delete marker; with `if_match`, only while
    /// the key's current version has that ETag (S3 User Guide, "How to perform conditional
    /// deletes": `If-Match` is evaluated against the current version, 412 when it differs).
    fn delete<'a>(&'a self, key: &'a str, if_match: Option<&'a str>) -> StoreFuture<'a, Deleted>;

    /// The time as S3 would stamp a write made now (the writer keeps its writes in order
    /// by it).
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Waits until [`Self::now`] is at least `until`.
    fn sleep_until(&self, until: SystemTime) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Ok(wait) = until.duration_since(SystemTime::now()) {
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// One version of a parameter, as `GetParameterHistory` gives it (decrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryVersion {
    /// The parameter's name as SSM spells it (snapshot name aside).
    pub name: String,
    /// Its labels, sorted.
    pub labels: Vec<String>,
    pub snapshot: ParameterSnapshot,
}

impl HistoryVersion {
    pub fn version(&self) -> i64 {
        self.snapshot.attributes.version.unwrap_or_default()
    }

    pub fn last_modified_ms(&self) -> Option<i64> {
        self.snapshot.attributes.last_modified_ms
    }
}

/// A parameter as `DescribeParameters` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedParameter {
    pub name: String,
    pub version: i64,
    /// LastModifiedDate, epoch milliseconds.
    pub last_modified_ms: i64,
}

/// One `DescribeParameters` page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParametersPage {
    pub parameters: Vec<ListedParameter>,
    pub next_token: Option<String>,
}

/// SSM Parameter Store, as the writer and the reconcile use it.
pub trait ParameterStore: Send + Sync + std::fmt::Debug {
    /// `GetParameterHistory` with decryption, every page, oldest first; `None` when the
    /// parameter does not exist.
    fn history<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Vec<HistoryVersion>>>;

    /// `ListTagsForResource`; `None` when the parameter does not exist.
    fn tags<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tags>>;

    /// One `DescribeParameters` page of the parameters under `paths` (each recursive; all
    /// parameters when empty).
    fn describe<'a>(
        &'a self,
        paths: &'a [String],
        next_token: Option<String>,
    ) -> StoreFuture<'a, ParametersPage>;
}
