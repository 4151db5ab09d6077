//! What the writer knows of a key before it writes: its current object and the places in
//! time of the versions it records (see [`super::decide`]).

use super::{Backup, BackupError};
use crate::format::earlier;
use crate::format::{EarlierVersion, Extras, StoredFields};
use crate::store::{ListedVersion, ObjectHead};

/// What the writer knows of a key before it writes: its current object, as `HeadObject` sees
/// it, and the facts it has about the key's recorded versions (see [`super::decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Current {
    /// The newest entry, when it is a version (`None`: no object, or a delete marker: S3
    /// answers 404 to both).
    pub(super) newest: Option<StoredFields>,
    /// The newest version's ETag, what a conditional delete names it by.
    pub(super) newest_etag: Option<String>,
    /// The newest version's place in time and those it names, newest first ([`earlier::after`]);
    /// behind a delete marker, the newest version that is not one. What a version written
    /// next names.
    pub(super) recorded: Vec<EarlierVersion>,
}

impl Current {
    /// The newest entry, when it is a value version.
    pub(super) fn latest_value(&self) -> Option<&StoredFields> {
        self.newest.as_ref().filter(|f| !f.is_tombstone())
    }
}

impl Backup {
    /// The key's current object (the newest version, unless a delete marker is newer) and the
    /// facts known about its recorded versions.
    pub(super) async fn current(&self, key: &str) -> Result<Current, BackupError> {
        let Some(head) = self.objects.head(key, None).await? else {
            return Ok(Current {
                newest: None,
                newest_etag: None,
                recorded: self.recorded_behind_marker(key).await?,
            });
        };
        let fields = self.metadata_fields(key, &head)?;
        let recorded = earlier::after(head.version_id.as_deref().unwrap_or_default(), &fields);
        Ok(Current {
            newest: Some(fields),
            newest_etag: head.etag,
            recorded,
        })
    }

    /// The place in time of the newest version of `key` that is not a delete marker (none, or
    /// not found on the listing's first page: nothing known). Read from its tags: whether the
    /// newest marker hides a recorded delete or a re-creation processed before it, only the
    /// event times can say.
    pub(super) async fn recorded_behind_marker(
        &self,
        key: &str,
    ) -> Result<Vec<EarlierVersion>, BackupError> {
        // Keys sort before their extensions (`/a` < `/a/b` < `/ab`), so the first entries of a
        // prefix listing are this key's own, newest first; versions and markers come in two
        // lists, so the first version of the key is its newest that is not a marker.
        let page = self
            .objects
            .list_versions(key, None, Some(KEY_VERSIONS_PAGE))
            .await?;
        let newest = page.versions.iter().find(|(k, _)| k == key);
        let Some((_, newest)) = newest else {
            return Ok(Vec::new());
        };
        let version_id = &newest.version_id;
        let (_, fields) = self.tagged_fields(key, version_id).await?;
        Ok(EarlierVersion::of(version_id, &fields)
            .into_iter()
            .collect())
    }

    /// Dates the records among `recorded` that name one of SSM's `versions` but no
    /// LastModifiedDate, from their own metadata. Such a record (read from tags alone, by a
    /// delivery that listed the key while another wrote it; or written before the date was
    /// kept) is placed by its time alone, and can be taken for the version of the same number
    /// of a parameter re-created since (simulation seed 881542). What the writer cannot date,
    /// it reads: one `HeadObject` each, and only for these.
    pub(super) async fn date_records(
        &self,
        key: &str,
        recorded: &mut [EarlierVersion],
        versions: &[i64],
    ) -> Result<(), BackupError> {
        let undated = recorded.iter_mut().filter(|r| {
            !r.deleted
                && r.modified_ms.is_none()
                && r.ssm_version.is_some_and(|v| versions.contains(&v))
        });
        for record in undated {
            // Gone since (expired): nothing to learn, and nothing to be taken for.
            let Some(head) = self.objects.head(key, Some(&record.version_id)).await? else {
                continue;
            };
            let fields = self.metadata_fields(key, &head)?;
            record.modified_ms = fields.attributes.last_modified_ms;
        }
        Ok(())
    }

    /// The fields a version's metadata (from `HeadObject`) gives.
    fn metadata_fields(&self, key: &str, head: &ObjectHead) -> Result<StoredFields, BackupError> {
        StoredFields::read(
            [],
            head.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|source| self.unreadable(key, source))
    }

    /// The tags of one version of `key`, and the fields they give.
    pub(super) async fn tagged_fields(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<(Vec<(String, String)>, StoredFields), BackupError> {
        let tags = self.objects.tags(key, version_id).await?;
        let fields = StoredFields::read(crate::reader::pairs(&tags), [])
            .map_err(|source| self.unreadable(key, source))?;
        Ok((tags, fields))
    }

    /// The tags and labels a stored version recorded, from its metadata or its sidecar.
    pub(super) async fn stored_extras(
        &self,
        key: &str,
        fields: &StoredFields,
    ) -> Result<Option<Extras>, BackupError> {
        if let Some(extras) = fields.attributes.extras() {
            return Ok(Some(extras));
        }
        let Some(digest) = &fields.extras else {
            return Ok(None);
        };
        let bytes = crate::reader::read_sidecar(self.objects.as_ref(), digest).await?;
        Extras::from_json(&bytes)
            .map(Some)
            .map_err(|source| self.unreadable(key, source))
    }
}

impl Backup {
    /// The versions of `key` (not its delete markers), newest first, for as long as `wanted`
    /// holds of them: page by page (S3 may end a page anywhere), stopping at the first version
    /// it does not hold of. The key's entries come first in a listing of it as a prefix (a
    /// key sorts before every longer key it prefixes), so nothing else is looked at.
    pub(super) async fn versions_while(
        &self,
        key: &str,
        wanted: impl Fn(&ListedVersion) -> bool,
    ) -> Result<Vec<ListedVersion>, BackupError> {
        let mut out = Vec::new();
        let mut from = None;
        loop {
            let page = self
                .objects
                .list_versions(key, from, Some(KEY_VERSIONS_PAGE))
                .await?;
            for (k, v) in page.versions {
                if k != key || !wanted(&v) {
                    return Ok(out);
                }
                out.push(v);
            }
            match page.next {
                Some(next) => from = Some(next),
                None => return Ok(out),
            }
        }
    }
}

/// How many entries one listing of a key's versions asks for: a listing of the key as a
/// prefix goes on into the keys it prefixes, which a larger page would fetch for nothing; a
/// key's entries alternate tombstone and marker, so its newest version is among the first few.
pub(super) const KEY_VERSIONS_PAGE: i32 = 20;
