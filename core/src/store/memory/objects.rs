//! The in-memory bucket: versions, delete markers, tags and listings as S3 keeps and pages
//! them, with S3's limits and conditional writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use super::{Clock, MaybeYield, YieldPolicy};
use crate::aws_error::AwsError;
use crate::format;
use crate::store::{
    Deleted, KeysPage, ListedVersion, NewObject, ObjectHead, ObjectStore, StoreFuture, StoreResult,
    VersionsFrom, VersionsPage, Written,
};

/// One version or delete marker.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    version_id: String,
    /// S3's LastModified, epoch ms (listings give whole seconds).
    written_ms: i64,
    marker: bool,
    body: Vec<u8>,
    metadata: HashMap<String, String>,
    tags: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(super) struct Bucket {
    /// Each key's entries, oldest first.
    pub(super) keys: BTreeMap<String, Vec<Entry>>,
    pub(super) written: u64,
}

/// An in-memory versioned bucket.
pub struct MemoryStore {
    pub(super) bucket: String,
    pub(super) state: Mutex<Bucket>,
    pub(super) clock: Clock,
    /// Entries per listing page at most (S3: 1,000).
    pub(super) page_size: usize,
    pub(super) yields: Option<YieldPolicy>,
    /// How far the writer's clock ([`ObjectStore::now`]) is ahead of S3's, ms.
    pub(super) skew_ms: i64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("bucket", &self.bucket)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// S3's most entries per listing page.
const MAX_KEYS: usize = 1000;

/// S3's limit on user metadata (keys and values, UTF-8 bytes).
const METADATA_LIMIT: usize = 2048;

/// S3's most tags per object.
const TAG_LIMIT: usize = 10;

impl MemoryStore {
    pub fn new(bucket: impl Into<String>, clock: Clock) -> Self {
        MemoryStore {
            bucket: bucket.into(),
            state: Mutex::default(),
            clock,
            page_size: MAX_KEYS,
            yields: None,
            skew_ms: 0,
        }
    }

    /// The writer's clock `ms` ahead of S3's (behind when negative): what it takes for now,
    /// and waits for, is off by that much from the LastModified S3 gives its writes.
    pub fn with_skew(mut self, ms: i64) -> Self {
        self.skew_ms = ms;
        self
    }

    /// Listing pages of at most `n` entries (S3 splits pages anywhere; small pages show it).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, MAX_KEYS);
        self
    }

    pub fn with_yields(mut self, yields: YieldPolicy) -> Self {
        self.yields = Some(yields);
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Every key and its entries, oldest first: id, LastModified (ms), whether a delete
    /// marker, and the metadata (for reports).
    pub fn dump(&self) -> Vec<(String, Vec<(String, i64, bool, HashMap<String, String>)>)> {
        let state = self.lock();
        state
            .keys
            .iter()
            .map(|(k, es)| {
                let entries = es
                    .iter()
                    .map(|e| {
                        let m = e.metadata.clone();
                        (e.version_id.clone(), e.written_ms, e.marker, m)
                    })
                    .collect();
                (k.clone(), entries)
            })
            .collect()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, operation: &str, key: &str, status: u16, code: &str) -> AwsError {
        let slash = if key.starts_with('/') { "" } else { "/" };
        AwsError {
            call: format!("S3 {operation} s3://{}{slash}{key}", self.bucket),
            code: Some(code.to_owned()),
            status: Some(status),
            message: String::new(),
        }
    }

    /// Runs `call` on the bucket, after yielding if the policy says so.
    fn call<'a, T: Send + 'a>(
        &'a self,
        call: impl FnOnce(&mut Bucket, i64) -> StoreResult<T> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        let yield_first = self.yields.as_ref().is_some_and(|y| y());
        Box::pin(async move {
            MaybeYield(yield_first).await;
            let now = self.clock.now_ms();
            call(&mut self.lock(), now)
        })
    }

    /// The entry a versioned read names, or the key's newest unless it is a marker.
    fn find<'b>(
        bucket: &'b Bucket,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<&'b Entry>, ()> {
        let entries = bucket.keys.get(key);
        match version_id {
            None => Ok(entries.and_then(|es| es.last()).filter(|e| !e.marker)),
            Some(id) => match entries.and_then(|es| es.iter().find(|e| e.version_id == id)) {
                Some(e) if e.marker => Err(()),
                found => Ok(found),
            },
        }
    }

    fn head_of(e: &Entry) -> ObjectHead {
        ObjectHead {
            version_id: Some(e.version_id.clone()),
            metadata: e.metadata.clone(),
            etag: Some(format::plain_etag(&e.body)),
        }
    }
}

/// An opaque version id, unique in the bucket (AWS ids are 32 URL-safe characters).
fn version_id(n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut id = String::with_capacity(32);
    for _ in 0..20 {
        id.push(ALPHABET[(x % 64) as usize] as char);
        x = x.rotate_right(6) ^ n;
    }
    format!("{id}{n:012}")
}

fn check_tags(tags: &[(String, String)]) -> bool {
    tags.len() <= TAG_LIMIT
        && tags
            .iter()
            .all(|(k, v)| k.chars().count() <= 128 && v.chars().count() <= 256)
}

impl ObjectStore for MemoryStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn list_versions<'a>(
        &'a self,
        prefix: &'a str,
        from: Option<VersionsFrom>,
        max_keys: Option<i32>,
    ) -> StoreFuture<'a, VersionsPage> {
        let limit = max_keys
            .map_or(MAX_KEYS, |n| n.max(1) as usize)
            .min(self.page_size);
        self.call(move |bucket, _| {
            // S3's order: by key (UTF-8 binary), each key's entries newest first.
            let all = bucket
                .keys
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .flat_map(|(k, es)| {
                    let n = es.len();
                    es.iter()
                        .enumerate()
                        .rev()
                        .map(move |(i, e)| (k, e, i + 1 == n))
                });
            let after = |(k, e, _): &(&String, &Entry, bool)| match &from {
                None => true,
                Some(f) => match k.as_str().cmp(f.key.as_str()) {
                    std::cmp::Ordering::Less => false,
                    std::cmp::Ordering::Greater => true,
                    // Within the marker's key: the entries after its version (older ones).
                    std::cmp::Ordering::Equal => f.version_id.as_ref().is_some_and(|v| {
                        let es = &bucket.keys[*k];
                        let at = es.iter().position(|x| &x.version_id == v);
                        let me = es.iter().position(|x| x.version_id == e.version_id);
                        matches!((at, me), (Some(a), Some(m)) if m < a)
                    }),
                },
            };
            let mut page: Vec<(&String, &Entry, bool)> =
                all.filter(after).take(limit + 1).collect();
            let truncated = page.len() > limit;
            page.truncate(limit);
            let next = page
                .last()
                .filter(|_| truncated)
                .map(|(k, e, _)| VersionsFrom {
                    key: (*k).clone(),
                    version_id: Some(e.version_id.clone()),
                });
            let mut out = VersionsPage {
                next,
                ..VersionsPage::default()
            };
            for (k, e, latest) in page {
                let listed = ListedVersion {
                    version_id: e.version_id.clone(),
                    last_modified_ms: e.written_ms.div_euclid(1000) * 1000,
                    is_delete_marker: e.marker,
                    is_latest: latest,
                    size: if e.marker { 0 } else { e.body.len() as i64 },
                    etag: (!e.marker).then(|| format::plain_etag(&e.body)),
                    storage_class: (!e.marker).then(|| "STANDARD".to_owned()),
                };
                let side = if e.marker {
                    &mut out.markers
                } else {
                    &mut out.versions
                };
                side.push((k.clone(), listed));
            }
            Ok(out)
        })
    }

    fn list_keys<'a>(
        &'a self,
        prefix: &'a str,
        continuation: Option<String>,
    ) -> StoreFuture<'a, KeysPage> {
        let limit = self.page_size;
        self.call(move |bucket, _| {
            let mut keys: Vec<String> = bucket
                .keys
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| continuation.as_ref().is_none_or(|c| *k > c))
                .filter(|(_, es)| es.last().is_some_and(|e| !e.marker))
                .map(|(k, _)| k.clone())
                .take(limit + 1)
                .collect();
            let truncated = keys.len() > limit;
            keys.truncate(limit);
            let next = keys.last().filter(|_| truncated).cloned();
            Ok(KeysPage { keys, next })
        })
    }

    fn head<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<ObjectHead>> {
        self.call(move |bucket, _| match Self::find(bucket, key, version_id) {
            Ok(found) => Ok(found.map(Self::head_of)),
            Err(()) => Err(self.error("HeadObject", key, 405, "MethodNotAllowed")),
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<(ObjectHead, Vec<u8>)>> {
        self.call(move |bucket, _| match Self::find(bucket, key, version_id) {
            Ok(found) => Ok(found.map(|e| (Self::head_of(e), e.body.clone()))),
            Err(()) => Err(self.error("GetObject", key, 405, "MethodNotAllowed")),
        })
    }

    fn tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        self.call(
            move |bucket, _| match Self::find(bucket, key, Some(version_id)) {
                Ok(Some(e)) => Ok(e.tags.clone()),
                Ok(None) => Err(self.error("GetObjectTagging", key, 404, "NoSuchVersion")),
                Err(()) => Err(self.error("GetObjectTagging", key, 405, "MethodNotAllowed")),
            },
        )
    }

    fn put_tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
        tags: Vec<(String, String)>,
    ) -> StoreFuture<'a, ()> {
        self.call(move |bucket, _| {
            if !check_tags(&tags) {
                return Err(self.error("PutObjectTagging", key, 400, "InvalidTag"));
            }
            let entry = bucket
                .keys
                .get_mut(key)
                .and_then(|es| es.iter_mut().find(|e| e.version_id == version_id));
            match entry {
                Some(e) if e.marker => {
                    Err(self.error("PutObjectTagging", key, 405, "MethodNotAllowed"))
                }
                Some(e) => {
                    e.tags = tags;
                    Ok(())
                }
                None => Err(self.error("PutObjectTagging", key, 404, "NoSuchVersion")),
            }
        })
    }

    fn put(&self, object: NewObject) -> StoreFuture<'_, Written> {
        self.call(move |bucket, now| {
            let metadata: HashMap<String, String> = object
                .metadata
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
            if size > METADATA_LIMIT {
                return Err(self.error("PutObject", &object.key, 400, "MetadataTooLarge"));
            }
            let tags = if object.tagging.is_empty() {
                Vec::new()
            } else {
                format::decode_tagging(&object.tagging)
            };
            if !check_tags(&tags) {
                return Err(self.error("PutObject", &object.key, 400, "InvalidTag"));
            }
            bucket.written += 1;
            let id = version_id(bucket.written);
            let etag = format::plain_etag(&object.body);
            bucket.keys.entry(object.key).or_default().push(Entry {
                version_id: id.clone(),
                written_ms: now,
                marker: false,
                body: object.body,
                metadata,
                tags,
            });
            Ok(Written {
                version_id: Some(id),
                etag: Some(etag),
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str, if_match: Option<&'a str>) -> StoreFuture<'a, Deleted> {
        self.call(move |bucket, now| {
            if let Some(etag) = if_match {
                let current = bucket.keys.get(key).and_then(|es| es.last());
                let matches =
                    current.is_some_and(|e| !e.marker && format::plain_etag(&e.body) == etag);
                if !matches {
                    return Ok(Deleted::NotCurrent);
                }
            }
            bucket.written += 1;
            let id = version_id(bucket.written);
            bucket.keys.entry(key.to_owned()).or_default().push(Entry {
                version_id: id.clone(),
                written_ms: now,
                marker: true,
                body: Vec::new(),
                metadata: HashMap::new(),
                tags: Vec::new(),
            });
            Ok(Deleted::Marker(Some(id)))
        })
    }

    fn now(&self) -> SystemTime {
        let ms = self.clock.now_ms() + self.skew_ms;
        UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
    }

    fn sleep_until(&self, until: SystemTime) -> BoxFuture<'_, ()> {
        let ms = until
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.clock.advance_to(ms - self.skew_ms);
        Box::pin(async {})
    }
}
