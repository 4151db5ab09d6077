//! Listing a scope: every version and delete marker by key, page by page as S3 sends them,
//! and the index entries beside it.

use futures::StreamExt;

use super::lazy::placeholder;
use super::{BucketReader, ListedVersion, Listing, ReadError};
use crate::index::{self, Index};
use crate::pit::{self, VersionEntry};

impl BucketReader {
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
