//! Reading a tree of backups at a point in time, with as few requests as exactness allows.
//!
//! One `ListObjectVersions` pass gives every version's key, id and LastModified. The effective
//! time of a version (its event time) is in its metadata or tags, which cost a request each, so
//! they are fetched only where they can matter. That is sound because a version's effective time
//! is never after its LastModified (a change is recorded after it happens):
//!
//! 1. Fetch the newest version with LastModified at or before T (the likely answer), and the
//!    versions the newest delete marker at or before T may follow (to pair it with its
//!    tombstone, see [`pit::pair_markers`]). Their effective times give a lower bound e for the
//!    answer's.
//! 2. Only entries with LastModified at or after e can beat it (anything older has an effective
//!    time before e): fetch those, and the versions each such delete marker may follow. In our
//!    layout the newest of them is fetched first: it names where the key's earlier versions
//!    stand in time ([`format::earlier`]), and only those it does not place are fetched after.
//! 3. Decide with [`pit::state_at`] over everything, unfetched entries marked unread (they keep
//!    their place in write order and never win). Should an unread version still be able to win
//!    (it cannot, by 2.), every version is read before answering: no answer from a guess.
//!
//! For a restore point after the last change that is one `GetObject` per key (it returns the
//! body with our metadata). Further in the past, our layout adds one `HeadObject` of the newest
//! version written after T, however many there are and however late; the original's layout adds
//! one `GetObjectTagging` per version written after T. Where the bucket's index ([`index`])
//! places the versions, none is read but the answer: one listing of `.ssmbak/index<prefix>`
//! per scope, beside the scope's own listing, places every indexed version of every key, and
//! what it does not place is read as above.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::try_join_all;
use futures::StreamExt;

use crate::aws_error::AwsError;
use crate::format::{self, ParameterSnapshot, StoredFields};
use crate::index::{self, Index};
use crate::pit::{self, StateAt, VersionEntry};
use crate::store::sdk::SdkStore;
pub use crate::store::ListedVersion;
use crate::store::ObjectStore;

/// A key's listing: versions newest first, then delete markers newest first (S3's order).
pub type Listing = BTreeMap<String, Vec<ListedVersion>>;

/// What the backup says about one key at a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupState {
    /// Backed up, but nothing at or before the time (it did not exist yet).
    NoVersion,
    Deleted {
        at: i64,
    },
    Present {
        at: i64,
        snapshot: ParameterSnapshot,
    },
    /// The version in force is not an ssmbak backup (no `ssmbakType`): nothing to restore
    /// from, and no reason to delete either.
    Foreign {
        at: i64,
    },
}

/// A failed read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("s3://{bucket}/{key} version {version_id} is unreadable: {source}")]
    Unreadable {
        bucket: String,
        key: String,
        version_id: String,
        source: crate::format::BadField,
    },
}

impl ReadError {
    /// The AWS error code, if any (`NoSuchBucket`, `AccessDenied`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            ReadError::Aws(e) => e.code(),
            ReadError::Unreadable { .. } => None,
        }
    }
}

/// What one fetched version holds.
#[derive(Debug, Clone)]
struct Fetched {
    fields: StoredFields,
    /// `None` when the body was not read.
    body: Option<Vec<u8>>,
    /// How much of the version is known.
    depth: Depth,
}

/// How much of a version to read. Each depth includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Depth {
    /// Its place in time: from its tags (both formats tag the time and deletes), or from the
    /// earlier versions a later version names (see [`format::earlier`]).
    Placed,
    /// Every field but the body: the tags of the original's objects, the metadata of ours.
    Fields,
    /// Its fields and body.
    Full,
}

/// Reads one bucket.
#[derive(Debug, Clone)]
pub struct BucketReader {
    objects: Arc<dyn ObjectStore>,
    /// Which format this bucket's objects seem to be in, to pick the first request for each.
    guess: Arc<FormatGuess>,
}

impl BucketReader {
    /// Reads `bucket` on AWS.
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        BucketReader::on(Arc::new(SdkStore::new(s3, bucket)))
    }

    /// Reads the bucket `objects` is (AWS, or the in-memory model).
    pub fn on(objects: Arc<dyn ObjectStore>) -> Self {
        BucketReader {
            objects,
            guess: Arc::default(),
        }
    }

    pub fn bucket(&self) -> &str {
        self.objects.bucket()
    }

    /// Every version and delete marker under `prefix`, by key.
    pub async fn list(&self, prefix: &str) -> Result<Listing, ReadError> {
        let mut listing = Listing::new();
        let mut parts = std::pin::pin!(self.list_in_parts(prefix));
        while let Some(part) = parts.next().await {
            listing.extend(part?);
        }
        Ok(listing)
    }

    /// [`Self::list`] as the pages come: after each page, the keys it completed (every key
    /// before the page's last, whose versions may go on in the next page), in key order, so
    /// that work on the first keys can start while the rest is listed.
    pub fn list_in_parts<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl futures::Stream<Item = Result<Listing, ReadError>> + 'a {
        // (merger, where the next page starts; `None` once the last page was read)
        let start = (
            PageMerger::default(),
            Some((None::<String>, None::<String>)),
        );
        futures::stream::try_unfold(start, move |(mut merger, next)| async move {
            let Some((key_marker, version_marker)) = next else {
                return Ok(None);
            };
            let from = key_marker.map(|key| crate::store::VersionsFrom {
                key,
                version_id: version_marker,
            });
            let page = self.objects.list_versions(prefix, from, None).await?;
            merger.add(page.versions.into_iter().chain(page.markers));
            let next_key = page.next.as_ref().map(|n| n.key.clone());
            Ok(Some(match next_key {
                Some(next_key) => {
                    let done = merger.take_before(&next_key);
                    let next = Some((Some(next_key), page.next.and_then(|n| n.version_id)));
                    (done, (merger, next))
                }
                None => (std::mem::take(&mut merger).finish(), (merger, None)),
            }))
        })
    }

    /// The index entries of the keys under `prefix` ([`index`]): where each indexed version
    /// stands in time. None when this reader may not list them (a policy that allows listing
    /// some prefixes only): every version is then read, as for a bucket without an index.
    pub async fn index(&self, prefix: &str) -> Result<Index, ReadError> {
        let index_prefix = index::scope_prefix(prefix);
        let mut keys = Vec::new();
        let mut parts = std::pin::pin!(self.list_in_parts(&index_prefix));
        while let Some(part) = parts.next().await {
            match part {
                Err(e) if e.code() == Some("AccessDenied") => return Ok(Index::none()),
                part => keys.extend(part?.into_keys()),
            }
        }
        Ok(Index::from_keys(keys.iter().map(String::as_str)))
    }

    /// The state of `key` at `at` (epoch seconds, inclusive), from its listing.
    ///
    /// `known_value` is what the caller already holds for the key (SSM's current value): a
    /// version whose listed ETag is that value's MD5 is not downloaded (see
    /// [`format::plain_etag`]), which is the usual case when nothing changed since `at`.
    /// `index` is the bucket's index in the key's scope ([`Self::index`]): the versions it
    /// places are not read unless one is the answer.
    pub async fn state_at(
        &self,
        key: &str,
        listed: &[ListedVersion],
        at: i64,
        known_value: Option<&str>,
        index: &Index,
    ) -> Result<BackupState, ReadError> {
        let known_etag = known_value.map(|v| format::plain_etag(v.as_bytes()));
        let holds_known =
            |i: usize| known_etag.is_some() && listed[i].etag.as_deref() == known_etag.as_deref();
        let depth_for = |i: usize| {
            if holds_known(i) {
                Depth::Fields
            } else {
                Depth::Full
            }
        };
        let mut fetched = placed_by_index(listed, index.of(key));
        let plan = LazyRead::new(listed, at);
        // The likely winner in full (without its body when the caller has it), its rivals by
        // their tags; nothing when the index settles the answer already.
        let first = match plan.decide(&fields_of(&fetched)) {
            Some(_) => Vec::new(),
            None => plan.first_round(),
        };
        let (cheap, full): (Vec<usize>, Vec<usize>) = first
            .into_iter()
            .partition(|&i| depth_for(i) == Depth::Fields);
        self.fetch_into(key, listed, &cheap, &mut fetched, Depth::Fields)
            .await?;
        self.fetch_into(key, listed, &full, &mut fetched, Depth::Full)
            .await?;
        Ok(match self.settle(key, listed, &plan, &mut fetched).await? {
            StateAt::NoVersion => BackupState::NoVersion,
            StateAt::Deleted { at, .. } => BackupState::Deleted { at },
            StateAt::Present { at, index } => {
                self.fetch_into(key, listed, &[index], &mut fetched, depth_for(index))
                    .await?;
                let body = fetched
                    .get(&index)
                    .and_then(|f| f.body.clone())
                    .or_else(|| {
                        known_value
                            .filter(|_| holds_known(index))
                            .map(|v| v.as_bytes().to_vec())
                    });
                let fields = fetched.get(&index).map(|f| &f.fields);
                match fields.zip(body).and_then(|(f, body)| f.snapshot(key, body)) {
                    Some(mut snapshot) => {
                        if let Some(fields) = fields {
                            self.read_extras(key, fields, &mut snapshot).await?;
                        }
                        BackupState::Present { at, snapshot }
                    }
                    None => BackupState::Foreign { at },
                }
            }
        })
    }

    /// The entry of `key` in force at `at` by its ssmbak event time (tags or metadata), for
    /// `s3bak --ssmbak-time`: its index in `listed`. `index` as for [`Self::state_at`].
    pub async fn select_by_event_time(
        &self,
        key: &str,
        listed: &[ListedVersion],
        at: i64,
        index: &Index,
    ) -> Result<Option<usize>, ReadError> {
        let mut fetched = placed_by_index(listed, index.of(key));
        let plan = LazyRead::new(listed, at);
        if plan.decide(&fields_of(&fetched)).is_none() {
            self.fetch_into(
                key,
                listed,
                &plan.first_round(),
                &mut fetched,
                Depth::Placed,
            )
            .await?;
        }
        Ok(self.settle(key, listed, &plan, &mut fetched).await?.index())
    }

    /// The lazy read's second round and its answer, after the first round was fetched; reads
    /// every version if the answer is not settled by then (see [`LazyRead::decide`]).
    async fn settle(
        &self,
        key: &str,
        listed: &[ListedVersion],
        plan: &LazyRead<'_>,
        fetched: &mut HashMap<usize, Fetched>,
    ) -> Result<StateAt, ReadError> {
        learn_earlier(listed, fetched);
        // Ours: the newest version names where the earlier ones stand, so it is read first
        // (it is among what the round would read anyway), and only what it leaves unplaced
        // after it.
        if self.guess.expects_ours() {
            let second = plan.second_round(&fields_of(fetched));
            if let Some(newest) = plan.newest_unread(&second, &fields_of(fetched)) {
                self.fetch_into(key, listed, &[newest], fetched, Depth::Fields)
                    .await?;
                learn_earlier(listed, fetched);
            }
        }
        let second = plan.second_round(&fields_of(fetched));
        self.fetch_into(key, listed, &second, fetched, Depth::Placed)
            .await?;
        learn_earlier(listed, fetched);
        let pairing = plan.pairing_round(&fields_of(fetched));
        self.fetch_into(key, listed, &pairing, fetched, Depth::Placed)
            .await?;
        if plan.decide(&fields_of(fetched)).is_none() {
            let all: Vec<usize> = (0..listed.len()).collect();
            self.fetch_into(key, listed, &all, fetched, Depth::Placed)
                .await?;
        }
        // Values tied in the answer's second are ordered by SSM's dates, which tags and other
        // versions' lists may leave out: those are read from the versions themselves.
        let undated = pit::undated_rivals(&entries(listed, &fields_of(fetched)), plan.at);
        self.fetch_into(key, listed, &undated, fetched, Depth::Fields)
            .await?;
        Ok(pit::state_at(
            &entries(listed, &fields_of(fetched)),
            plan.at,
        ))
    }

    /// Fetches the given entries that are versions and not yet known to `depth`, concurrently.
    async fn fetch_into(
        &self,
        key: &str,
        listed: &[ListedVersion],
        which: &[usize],
        fetched: &mut HashMap<usize, Fetched>,
        depth: Depth,
    ) -> Result<(), ReadError> {
        let todo: Vec<usize> = which
            .iter()
            .copied()
            .filter(|i| {
                !listed[*i].is_delete_marker && fetched.get(i).is_none_or(|f| f.depth < depth)
            })
            .collect();
        let results = try_join_all(todo.iter().map(|&i| async move {
            let version_id = &listed[i].version_id;
            match depth {
                Depth::Placed => self.fetch_tags(key, version_id).await,
                Depth::Fields => self.fetch_fields(key, version_id).await,
                Depth::Full => self.fetch(key, version_id).await,
            }
        }))
        .await?;
        fetched.extend(todo.into_iter().zip(results));
        Ok(())
    }

    /// Completes `snapshot` with the tags and labels `fields` keep in a sidecar (see "Tags and
    /// labels" in docs/format.md); nothing to do for those kept in metadata.
    async fn read_extras(
        &self,
        key: &str,
        fields: &StoredFields,
        snapshot: &mut ParameterSnapshot,
    ) -> Result<(), ReadError> {
        let Some(digest) = &fields.extras else {
            return Ok(());
        };
        let bytes = read_sidecar(self.objects.as_ref(), digest).await?;
        let extras = format::Extras::from_json(&bytes).map_err(|source| ReadError::Unreadable {
            bucket: self.bucket().to_owned(),
            key: key.to_owned(),
            version_id: format::extras_key(digest),
            source,
        })?;
        snapshot.attributes.set_extras(extras);
        Ok(())
    }

    async fn tags(&self, key: &str, version_id: &str) -> Result<Vec<(String, String)>, ReadError> {
        Ok(self.objects.tags(key, version_id).await?)
    }

    async fn head(&self, key: &str, version_id: &str) -> Result<Metadata, ReadError> {
        match self.objects.head(key, Some(version_id)).await? {
            Some(head) => Ok(head.metadata),
            None => Err(self.gone("HeadObject", key, version_id)),
        }
    }

    async fn get(&self, key: &str, version_id: &str) -> Result<(Metadata, Vec<u8>), ReadError> {
        match self.objects.get(key, Some(version_id)).await? {
            Some((head, body)) => Ok((head.metadata, body)),
            None => Err(self.gone("GetObject", key, version_id)),
        }
    }

    /// A listed version no longer there (expired, or deleted by its id since the listing).
    fn gone(&self, operation: &str, key: &str, version_id: &str) -> ReadError {
        AwsError {
            call: format!("S3 {operation} s3://{}/{key}", self.bucket()),
            code: Some("NoSuchVersion".to_owned()),
            status: Some(404),
            message: format!("version {version_id} is gone"),
        }
        .into()
    }

    /// What a fetch learnt, with its fields read from the tags and metadata it got.
    fn fetched(
        &self,
        key: &str,
        version_id: &str,
        (tags, metadata): (&[(String, String)], &Metadata),
        body: Option<Vec<u8>>,
        depth: Depth,
    ) -> Result<Fetched, ReadError> {
        let fields = StoredFields::read(
            pairs(tags),
            metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|source| ReadError::Unreadable {
            bucket: self.bucket().to_owned(),
            key: key.to_owned(),
            version_id: version_id.to_owned(),
            source,
        })?;
        Ok(Fetched {
            fields,
            body,
            depth,
        })
    }

    /// One version's place in time, from its tags alone. For the original's objects that is
    /// every field there is.
    async fn fetch_tags(&self, key: &str, version_id: &str) -> Result<Fetched, ReadError> {
        let tags = self.tags(key, version_id).await?;
        let depth = if format::tagged_by_us(pairs(&tags)) {
            Depth::Placed
        } else {
            Depth::Fields
        };
        self.fetched(key, version_id, (&tags, &Metadata::new()), None, depth)
    }

    /// Every field of one version but its body: our metadata, or the original's tags. One
    /// request when the bucket's format is guessed right, two when not.
    async fn fetch_fields(&self, key: &str, version_id: &str) -> Result<Fetched, ReadError> {
        if self.guess.expects_ours() {
            let metadata = self.head(key, version_id).await?;
            let ours = StoredFields::is_ours(&metadata);
            self.guess.saw(ours);
            let tags = if ours {
                Vec::new()
            } else {
                self.tags(key, version_id).await?
            };
            return self.fetched(key, version_id, (&tags, &metadata), None, Depth::Fields);
        }
        let tags = self.tags(key, version_id).await?;
        let ours = format::tagged_by_us(pairs(&tags));
        self.guess.saw(ours);
        let metadata = if ours {
            self.head(key, version_id).await?
        } else {
            Metadata::new()
        };
        self.fetched(key, version_id, (&tags, &metadata), None, Depth::Fields)
    }

    /// One version's body and fields: our metadata when it has it, else its tags (the original's
    /// objects, whose tags are read beside the body when the bucket seems to hold them).
    async fn fetch(&self, key: &str, version_id: &str) -> Result<Fetched, ReadError> {
        let (metadata, body, tags) = if self.guess.expects_ours() {
            let (metadata, body) = self.get(key, version_id).await?;
            (metadata, body, None)
        } else {
            let ((metadata, body), tags) =
                futures::try_join!(self.get(key, version_id), self.tags(key, version_id))?;
            (metadata, body, Some(tags))
        };
        let ours = StoredFields::is_ours(&metadata);
        self.guess.saw(ours);
        let tags = match (ours, tags) {
            (true, _) => Vec::new(),
            (false, Some(tags)) => tags,
            (false, None) => self.tags(key, version_id).await?,
        };
        self.fetched(key, version_id, (&tags, &metadata), Some(body), Depth::Full)
    }
}

type Metadata = HashMap<String, String>;

/// The bytes of the sidecar named `digest` (see "Tags and labels" in docs/format.md).
pub(crate) async fn read_sidecar(
    objects: &dyn ObjectStore,
    digest: &str,
) -> Result<Vec<u8>, AwsError> {
    let key = format::extras_key(digest);
    match objects.get(&key, None).await? {
        Some((_, body)) => Ok(body),
        None => Err(AwsError {
            call: format!("S3 GetObject s3://{}/{key}", objects.bucket()),
            code: Some("NoSuchKey".to_owned()),
            status: Some(404),
            message: "the sidecar a version names is missing".to_owned(),
        }),
    }
}

pub(crate) fn pairs(tags: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// A running count of which format a bucket's objects were in, so that each read starts with
/// the request most likely to be enough (`HeadObject` for ours, `GetObjectTagging` for the
/// original's). A wrong guess costs one extra request, never a wrong answer.
#[derive(Debug, Default)]
struct FormatGuess {
    ours: AtomicUsize,
    original: AtomicUsize,
}

impl FormatGuess {
    fn expects_ours(&self) -> bool {
        self.ours.load(Ordering::Relaxed) >= self.original.load(Ordering::Relaxed)
    }

    fn saw(&self, ours: bool) {
        let counter = if ours { &self.ours } else { &self.original };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn merge_pages(pages: impl IntoIterator<Item = Vec<(String, ListedVersion)>>) -> Listing {
    let mut merger = PageMerger::default();
    for page in pages {
        merger.add(page);
    }
    merger.finish()
}

/// [`merge_pages`] one page at a time, as the pages arrive: only the listing so far and the
/// page at hand are held, never every page at once.
#[derive(Debug, Default)]
pub struct PageMerger {
    versions: Listing,
    markers: Listing,
    /// The key the listing is at: keys come in order, so every key before it is complete.
    at: Option<String>,
}

impl PageMerger {
    pub fn add(&mut self, page: impl IntoIterator<Item = (String, ListedVersion)>) {
        for (key, listed) in page {
            if self.at.as_ref() != Some(&key) {
                // A complete key's list gives back the room its growth left over (a million
                // versions hold tens of MB of it).
                if let Some(done) = self.at.replace(key.clone()) {
                    if let Some(v) = self.versions.get_mut(&done) {
                        v.shrink_to_fit();
                    }
                }
            }
            let side = if listed.is_delete_marker {
                &mut self.markers
            } else {
                &mut self.versions
            };
            side.entry(key).or_default().push(listed);
        }
    }

    /// The keys before `key`, which no later page can add to (keys come in order), taken out.
    pub fn take_before(&mut self, key: &str) -> Listing {
        let versions = self.versions.split_off(key);
        let markers = self.markers.split_off(key);
        PageMerger {
            versions: std::mem::replace(&mut self.versions, versions),
            markers: std::mem::replace(&mut self.markers, markers),
            at: None,
        }
        .finish()
    }

    pub fn finish(self) -> Listing {
        let mut versions = self.versions;
        for (key, ms) in self.markers {
            versions.entry(key).or_default().extend(ms);
        }
        versions
    }
}

/// The entry of `listed` in force at `at`, by LastModified alone (generic buckets): its index,
/// or `None` when nothing was written by then. Within one second a version and a delete marker
/// are ordered only when one of them is the key's newest (`IsLatest`); otherwise the version
/// wins, so a restore never deletes an object that may have been put after the delete.
pub fn by_last_modified(listed: &[ListedVersion], at: i64) -> Option<usize> {
    let entries: Vec<VersionEntry> = listed.iter().map(placeholder).collect();
    pit::state_at(&entries, at).index()
}

fn placeholder(l: &ListedVersion) -> VersionEntry {
    VersionEntry {
        version_id: l.version_id.clone(),
        last_modified_ms: l.last_modified_ms,
        is_delete_marker: l.is_delete_marker,
        is_latest: l.is_latest,
        event_time: None,
        deleted_at: None,
        ssm_version: None,
        ssm_modified_ms: None,
        unread: false,
    }
}

/// Entries for [`pit`]: fetched versions with their fields; the others marked unread (they keep
/// their place in write order and never win).
fn entries(listed: &[ListedVersion], known: &HashMap<usize, &StoredFields>) -> Vec<VersionEntry> {
    listed
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut e = placeholder(l);
            match known.get(&i) {
                Some(f) => {
                    e.event_time = f.event_time;
                    e.deleted_at = f.deleted_at;
                    e.ssm_version = f.attributes.version;
                    e.ssm_modified_ms = f.attributes.last_modified_ms;
                }
                None => e.unread = !l.is_delete_marker,
            }
            e
        })
        .collect()
}

fn fields_of(fetched: &HashMap<usize, Fetched>) -> HashMap<usize, &StoredFields> {
    fetched.iter().map(|(i, f)| (*i, &f.fields)).collect()
}

/// Adds to `fetched` the versions that the fetched ones place in time ([`placed_by_earlier`]).
fn learn_earlier(listed: &[ListedVersion], fetched: &mut HashMap<usize, Fetched>) {
    for (i, fields) in placed_by_earlier(listed, &fields_of(fetched)) {
        let placed = Fetched {
            fields,
            body: None,
            depth: Depth::Placed,
        };
        fetched.insert(i, placed);
    }
}

/// What the index entries of a key (see [`index`]) place of its listed versions: only entries
/// whose version id is listed count.
fn placed_by_index(
    listed: &[ListedVersion],
    entries: &[format::EarlierVersion],
) -> HashMap<usize, Fetched> {
    if entries.is_empty() {
        return HashMap::new();
    }
    let by_id: HashMap<&str, &format::EarlierVersion> =
        entries.iter().map(|e| (e.version_id.as_str(), e)).collect();
    (0..listed.len())
        .filter(|&i| !listed[i].is_delete_marker)
        .filter_map(|i| {
            let entry = by_id.get(listed[i].version_id.as_str())?;
            let placed = Fetched {
                fields: entry.fields(),
                body: None,
                depth: Depth::Placed,
            };
            Some((i, placed))
        })
        .collect()
}

/// The versions of `listed` not in `known` that the earlier-version lists of those in `known`
/// name ([`format::earlier`]), with the fields those lists give them: their place in time.
/// An entry naming no listed version (a copy's, an expired version's) places nothing.
pub fn placed_by_earlier(
    listed: &[ListedVersion],
    known: &HashMap<usize, &StoredFields>,
) -> Vec<(usize, StoredFields)> {
    if known.values().all(|f| f.earlier.is_empty()) {
        return Vec::new();
    }
    let unknown: HashMap<&str, usize> = (0..listed.len())
        .filter(|i| !listed[*i].is_delete_marker && !known.contains_key(i))
        .map(|i| (listed[i].version_id.as_str(), i))
        .collect();
    let mut placed: BTreeMap<usize, StoredFields> = BTreeMap::new();
    for e in known.values().flat_map(|f| &f.earlier) {
        if let Some(&i) = unknown.get(e.version_id.as_str()) {
            placed.entry(i).or_insert_with(|| e.fields());
        }
    }
    placed.into_iter().collect()
}

/// The pure part of [`BucketReader::state_at`]: which versions to fetch, in two rounds, and the
/// answer from what was fetched (see the module documentation).
#[derive(Debug, Clone)]
pub struct LazyRead<'a> {
    listed: &'a [ListedVersion],
    at: i64,
    /// The listing alone, as [`pit`] entries.
    bare: Vec<VersionEntry>,
    /// The newest version and the newest delete marker written at or before `at`.
    newest_version: Option<usize>,
    newest_marker: Option<usize>,
}

impl<'a> LazyRead<'a> {
    pub fn new(listed: &'a [ListedVersion], at: i64) -> Self {
        let before = |marker: bool| {
            // Each list is newest first.
            (0..listed.len()).find(|&i| {
                listed[i].is_delete_marker == marker
                    && listed[i].last_modified_ms.div_euclid(1000) <= at
            })
        };
        LazyRead {
            listed,
            at,
            bare: listed.iter().map(placeholder).collect(),
            newest_version: before(false),
            newest_marker: before(true),
        }
    }

    /// The newest version at or before `at`, and every version the newest marker may pair with;
    /// nothing, when nothing was written by then (only late-processed versions can count, and
    /// the second round, with no bound, covers them all).
    pub fn first_round(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.newest_version.into_iter().collect();
        if let Some(m) = self.newest_marker {
            out.extend(pit::marker_window(&self.bare, m));
        }
        out
    }

    /// Whatever could beat the first round's candidates, given what the first round fetched:
    /// every entry written at or after the best effective time known so far (a change is never
    /// recorded before it happens), and the versions each such marker may pair with.
    pub fn second_round(&self, known: &HashMap<usize, &StoredFields>) -> Vec<usize> {
        let bound = self.lower_bound(known);
        let mut out = Vec::new();
        for i in 0..self.listed.len() {
            let before_bound =
                bound.is_some_and(|b| self.listed[i].last_modified_ms.div_euclid(1000) < b);
            if before_bound {
                continue;
            }
            out.push(i);
            if self.listed[i].is_delete_marker {
                out.extend(pit::marker_window(&self.bare, i));
            }
        }
        out
    }

    /// The versions not in `known` that decide how the delete markers that could be the answer
    /// pair: those written at or after the bound the fields known give, whose pairing depends
    /// on older markers' windows too ([`pit::pairing_versions`]). They are read before deciding.
    /// In our layout the versions read before name them ([`format::earlier`]), so this is
    /// rarely a request.
    pub fn pairing_round(&self, known: &HashMap<usize, &StoredFields>) -> Vec<usize> {
        let bare = &self.bare;
        let bound = self.lower_bound(known);
        // Markers come newest first: the last one written at or after the bound is the oldest.
        let oldest_in_play = (0..bare.len())
            .rev()
            .find(|&m| bare[m].is_delete_marker && bound.is_none_or(|b| bare[m].second() >= b));
        let deciding = oldest_in_play.map_or_else(Vec::new, |m| pit::pairing_versions(bare, m));
        deciding
            .into_iter()
            .filter(|i| !known.contains_key(i))
            .collect()
    }

    /// The newest version in `round` not in `known`: ours names where the earlier versions
    /// stand, so reading it first can spare reading them.
    pub fn newest_unread(
        &self,
        round: &[usize],
        known: &HashMap<usize, &StoredFields>,
    ) -> Option<usize> {
        // Versions come first in a listing, newest first.
        round
            .iter()
            .copied()
            .filter(|i| !self.listed[*i].is_delete_marker && !known.contains_key(i))
            .min()
    }

    /// An effective time at or before `at` that some entry surely has, so the answer's is no
    /// earlier: that of a fetched version, or the newest marker's LastModified when no version
    /// it may pair with is a tombstone.
    fn lower_bound(&self, known: &HashMap<usize, &StoredFields>) -> Option<i64> {
        let entries = entries(self.listed, known);
        let versions = known.keys().map(|&i| entries[i].own_time());
        let unpaired_marker = self.newest_marker.filter(|&m| {
            pit::marker_window(&self.bare, m)
                .iter()
                .all(|v| known.get(v).is_some_and(|f| f.deleted_at.is_none()))
        });
        let marker = unpaired_marker.map(|m| self.listed[m].last_modified_ms.div_euclid(1000));
        versions.chain(marker).filter(|&t| t <= self.at).max()
    }

    /// The answer, from the fields of the fetched versions; `None` when a version left unread
    /// could still be it, or could be a tombstone a marker pairs with. The rounds above leave
    /// unread only versions written before the answer's effective time (and a version's
    /// effective time is never after its LastModified) and in no marker's window, so `None`
    /// means that reasoning failed: the caller then reads everything rather than answer from
    /// a guess.
    ///
    pub fn decide(&self, known: &HashMap<usize, &StoredFields>) -> Option<StateAt> {
        if !self.pairing_round(known).is_empty() {
            return None;
        }
        let entries = entries(self.listed, known);
        let state = pit::state_at(&entries, self.at);
        let answer_time = match state {
            StateAt::NoVersion => None,
            StateAt::Deleted { at, .. } | StateAt::Present { at, .. } => Some(at),
        };
        let could_win = |e: &VersionEntry| answer_time.is_none_or(|t| e.second() >= t);
        let settled = !entries.iter().any(|e| e.unread && could_win(e));
        settled.then_some(state)
    }
}

/// One recorded change of a key, for `ssmbak log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub version_id: String,
    /// Effective (event) time, epoch seconds.
    pub at: i64,
    pub last_modified_ms: i64,
    /// `None` for a delete.
    pub snapshot: Option<ParameterSnapshot>,
    /// For a version not written by ssmbak: recorded, but not a parameter state.
    pub foreign: bool,
    /// For a delete: who made it, when the tombstone records it (see "Who deleted it" in
    /// docs/format.md). Read only by [`BucketReader::history`].
    pub deleted_by: Option<String>,
}

impl BucketReader {
    /// Every recorded change of `key`, oldest first. A delete written as tombstone and marker
    /// is one entry, with its deleter when the tombstone records one.
    ///
    /// A deleter tagged on the tombstone after it was written is in its tags only, which a
    /// `GetObject` does not return: that costs one `GetObjectTagging` per tombstone whose
    /// metadata does not name its deleter. Only this (`ssmbak log`) reads them.
    pub async fn history(
        &self,
        key: &str,
        listed: &[ListedVersion],
    ) -> Result<Vec<HistoryEntry>, ReadError> {
        let mut history = self.history_since(key, listed, None).await?;
        let unknown = history
            .iter_mut()
            .filter(|e| e.snapshot.is_none() && !e.foreign && e.deleted_by.is_none())
            // Delete markers no tombstone explains have no tags.
            .filter(|e| {
                listed
                    .iter()
                    .any(|l| l.version_id == e.version_id && !l.is_delete_marker)
            });
        let reads = unknown.map(|e| async move {
            let tags = self.tags(key, &e.version_id).await?;
            let fields = self.fetched(
                key,
                &e.version_id,
                (&tags, &Metadata::new()),
                None,
                Depth::Placed,
            )?;
            e.deleted_by = fields.fields.deleted_by;
            Ok::<(), ReadError>(())
        });
        try_join_all(reads).await?;
        Ok(history)
    }

    /// [`Self::history`] from `since` (epoch seconds, inclusive) on: only versions written
    /// then or later are read, since a change is never recorded before it happens.
    pub async fn history_since(
        &self,
        key: &str,
        listed: &[ListedVersion],
        since: Option<i64>,
    ) -> Result<Vec<HistoryEntry>, ReadError> {
        let mut fetched = HashMap::new();
        let in_window =
            |l: &ListedVersion| since.is_none_or(|s| l.last_modified_ms.div_euclid(1000) >= s);
        let window: Vec<usize> = (0..listed.len())
            .filter(|&i| in_window(&listed[i]))
            .collect();
        self.fetch_into(key, listed, &window, &mut fetched, Depth::Full)
            .await?;
        let entries = entries(listed, &fields_of(&fetched));
        let pairs = pit::pair_markers(&entries);
        let times = pit::effective_times(&entries, &pairs);
        let mut write_order: Vec<usize> = (0..entries.len()).collect();
        write_order.sort_by_key(|&i| times[i].1);
        let mut out = Vec::new();
        for i in write_order {
            let l = &listed[i];
            let (at, _) = times[i];
            if entries[i].unread || since.is_some_and(|s| at < s) {
                continue;
            }
            if l.is_delete_marker {
                // A marker that follows its tombstone is part of that delete's entry.
                if pairs[i].is_none() {
                    out.push(HistoryEntry {
                        version_id: l.version_id.clone(),
                        at,
                        last_modified_ms: l.last_modified_ms,
                        snapshot: None,
                        foreign: false,
                        deleted_by: None,
                    });
                }
                continue;
            }
            let f = fetched.get(&i);
            let tombstone = f.is_some_and(|f| f.fields.is_tombstone());
            let mut snapshot = f.and_then(|f| f.fields.snapshot(key, f.body.clone()?));
            if let (Some(f), Some(s)) = (f, snapshot.as_mut()) {
                self.read_extras(key, &f.fields, s).await?;
            }
            out.push(HistoryEntry {
                version_id: l.version_id.clone(),
                at,
                last_modified_ms: l.last_modified_ms,
                foreign: !tombstone && snapshot.is_none(),
                deleted_by: f.and_then(|f| f.fields.deleted_by.clone()),
                snapshot,
            });
        }
        // Event order, not write order: late-processed changes take their place.
        out.sort_by_key(|e| (e.at, e.snapshot.as_ref().and_then(|s| s.attributes.version)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
