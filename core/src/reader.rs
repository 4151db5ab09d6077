//! Reading a tree of backups at a point in time, with as few requests as exactness allows.
//!
//! One `ListObjectVersions` pass gives every version's key, id and LastModified. The effective
//! time of a version (its event time) is in its metadata or tags, which cost a request each, so
//! they are fetched only where they can matter. That is sound because a version's effective time
//! is never after its LastModified (a change is recorded after it happens):
//!
//! 1. Fetch the newest version with LastModified at or before T (the likely answer), and the
//!    versions the newest delete marker at or before T may follow (to pair it with its
//!    tombstone, see [`crate::pit::pair_markers`]). Their effective times give a lower bound e for the
//!    answer's.
//! 2. Only entries with LastModified at or after e can beat it (anything older has an effective
//!    time before e): fetch those, and the versions each such delete marker may follow. In our
//!    layout the newest of them is fetched first: it names where the key's earlier versions
//!    stand in time ([`format::earlier`]), and only those it does not place are fetched after.
//! 3. Decide with [`crate::pit::state_at`] over everything, unfetched entries marked unread (they keep
//!    their place in write order and never win). Should an unread version still be able to win
//!    (it cannot, by 2.), every version is read before answering: no answer from a guess.
//!
//! For a restore point after the last change that is one `GetObject` per key (it returns the
//! body with our metadata). Further in the past, our layout adds one `HeadObject` of the newest
//! version written after T, however many there are and however late; the original's layout adds
//! one `GetObjectTagging` per version written after T. Where the bucket's index ([`crate::index`])
//! places the versions, none is read but the answer: one listing of `.ssmbak/index<prefix>`
//! per scope, beside the scope's own listing, places every indexed version of every key, and
//! what it does not place is read as above. And where the caller holds SSM's parameter now,
//! a version the index proves to be it is not read at all ([`BucketReader::state_or_now`]).

mod fetch;
mod history;
mod lazy;
mod listing;
mod now;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::aws_error::AwsError;
use crate::format::{self, ParameterSnapshot};
use crate::index::Index;
use crate::pit::StateAt;
use crate::store::sdk::SdkStore;
use crate::store::ObjectStore;
use fetch::{Depth, Fetched, FormatGuess};
use lazy::{fields_of, placed_by_index};

pub use crate::store::ListedVersion;
pub(crate) use fetch::{pairs, read_sidecar};
pub use history::HistoryEntry;
pub use lazy::{placed_by_earlier, LazyRead};
pub use listing::{by_last_modified, merge_pages, PageMerger};
pub use now::Proven;

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

    /// The lazy read's rounds after the first and its answer (see [`lazy::Round`]); reads
    /// every version if the answer is not settled by then (see [`LazyRead::decide`]).
    async fn settle(
        &self,
        key: &str,
        listed: &[ListedVersion],
        plan: &LazyRead<'_>,
        fetched: &mut HashMap<usize, Fetched>,
    ) -> Result<StateAt, ReadError> {
        let mut settling = plan.settling(self.guess.expects_ours());
        while let Some(reads) = settling.next_reads(fetched) {
            self.fetch_into(key, listed, &reads.versions, fetched, reads.depth)
                .await?;
        }
        Ok(settling.answer(fetched))
    }
}

#[cfg(test)]
mod tests;
