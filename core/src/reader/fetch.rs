//! Fetching versions: as little of each as the question needs (its place in time, its
//! fields, its body), with the first request picked by the format the bucket seems to hold.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::try_join_all;

use super::{BucketReader, ListedVersion, ReadError};
use crate::aws_error::AwsError;
use crate::format::{self, ParameterSnapshot, StoredFields};
use crate::store::ObjectStore;

/// What one fetched version holds.
#[derive(Debug, Clone)]
pub(super) struct Fetched {
    pub(super) fields: StoredFields,
    /// `None` when the body was not read.
    pub(super) body: Option<Vec<u8>>,
    /// How much of the version is known.
    pub(super) depth: Depth,
}

/// How much of a version to read. Each depth includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Depth {
    /// Its place in time: from its tags (both formats tag the time and deletes), or from the
    /// earlier versions a later version names (see [`format::earlier`]).
    Placed,
    /// Every field but the body: the tags of the original's objects, the metadata of ours.
    Fields,
    /// Its fields and body.
    Full,
}

impl BucketReader {
    /// Fetches the given entries that are versions and not yet known to `depth`, concurrently.
    pub(super) async fn fetch_into(
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
    pub(super) async fn read_extras(
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

    pub(super) async fn tags(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Vec<(String, String)>, ReadError> {
        Ok(self.objects.tags(key, version_id).await?)
    }

    pub(super) async fn head(&self, key: &str, version_id: &str) -> Result<Metadata, ReadError> {
        match self.objects.head(key, Some(version_id)).await? {
            Some(head) => Ok(head.metadata),
            None => Err(self.gone("HeadObject", key, version_id)),
        }
    }

    pub(super) async fn get(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<(Metadata, Vec<u8>), ReadError> {
        match self.objects.get(key, Some(version_id)).await? {
            Some((head, body)) => Ok((head.metadata, body)),
            None => Err(self.gone("GetObject", key, version_id)),
        }
    }

    /// A listed version no longer there (expired, or deleted by its id since the listing).
    pub(super) fn gone(&self, operation: &str, key: &str, version_id: &str) -> ReadError {
        AwsError {
            call: format!("S3 {operation} s3://{}/{key}", self.bucket()),
            code: Some("NoSuchVersion".to_owned()),
            status: Some(404),
            message: format!("version {version_id} is gone"),
        }
        .into()
    }

    /// What a fetch learnt, with its fields read from the tags and metadata it got.
    pub(super) fn fetched(
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
    pub(super) async fn fetch_tags(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Fetched, ReadError> {
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
    pub(super) async fn fetch_fields(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Fetched, ReadError> {
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
    pub(super) async fn fetch(&self, key: &str, version_id: &str) -> Result<Fetched, ReadError> {
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

pub(super) type Metadata = HashMap<String, String>;

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
pub(super) struct FormatGuess {
    ours: AtomicUsize,
    original: AtomicUsize,
}

impl FormatGuess {
    pub(super) fn expects_ours(&self) -> bool {
        self.ours.load(Ordering::Relaxed) >= self.original.load(Ordering::Relaxed)
    }

    pub(super) fn saw(&self, ours: bool) {
        let counter = if ours { &self.ours } else { &self.original };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
