//! Knowing SSM's parameter now: a version the index proves to be that very parameter is not
//! read at all (issue 28 part 5: nothing per unchanged key).
//!
//! The proof, from the listing alone: the index settles the version in force at the time
//! ([`LazyRead::decide`] over what the entries place), and that version's entry names SSM's
//! version number and LastModifiedDate (to the millisecond) of the parameter now. Every
//! `PutParameter` makes a new version, and a re-created parameter counts from 1 again at
//! another date, so that is one version of one incarnation: its value, type and every
//! attribute `PutParameter` sets are SSM's now (the argument of [`crate::plan::unchanged_since`]).
//! Tags change without a new version: the entry's tags digest ([`crate::index`]) must equal
//! that of SSM's tags now, which the caller reads anyway to restore tags
//! ([`BucketReader::settle_proven`]). Anything short of that proof is read, as [`BucketReader::state_at`]
//! reads it.

use super::lazy::{fields_of, placed_by_index, LazyRead};
use super::{BackupState, BucketReader, ListedVersion, ReadError};
use crate::format::{self, ParameterSnapshot, Tags};
use crate::index::Index;
use crate::pit::StateAt;

/// What [`BucketReader::state_or_now`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proven {
    /// The state, read as [`BucketReader::state_at`] reads it.
    State(BackupState),
    /// The version in force at time `asked` is, by its index entry, SSM's parameter now (not
    /// read): in force from `at`, with recorded tags of digest `tags_digest`.
    IsNow {
        asked: i64,
        at: i64,
        tags_digest: String,
    },
}

impl BucketReader {
    /// [`Self::state_at`], knowing `now`, SSM's parameter of this very name (the SSM the
    /// backups were made from, not another account, region or name): a version the index
    /// proves to be `now` is not read (see the module documentation).
    pub async fn state_or_now(
        &self,
        key: &str,
        listed: &[ListedVersion],
        at: i64,
        now: &ParameterSnapshot,
        index: &Index,
    ) -> Result<Proven, ReadError> {
        Ok(match proven_now(key, listed, at, now, index) {
            Some((effective, tags_digest)) => Proven::IsNow {
                asked: at,
                at: effective,
                tags_digest,
            },
            None => Proven::State(
                self.state_at(key, listed, at, Some(&now.value), index)
                    .await?,
            ),
        })
    }

    /// The state `proven` stands for, given SSM's tags now, `tags_now` (`None` when the caller
    /// leaves tags alone, as `--no-tags` does: they are then not compared): the version is
    /// read when its recorded tags differ from them.
    pub async fn settle_proven(
        &self,
        key: &str,
        listed: &[ListedVersion],
        index: &Index,
        proven: Proven,
        now: &ParameterSnapshot,
        tags_now: Option<&Tags>,
    ) -> Result<BackupState, ReadError> {
        match proven {
            Proven::State(state) => Ok(state),
            Proven::IsNow {
                asked,
                at,
                tags_digest,
            } => match as_now(at, &tags_digest, now, tags_now) {
                Some(state) => Ok(state),
                None => {
                    self.state_at(key, listed, asked, Some(&now.value), index)
                        .await
                }
            },
        }
    }
}

/// The state of a version proven to be `now`, in force from `at` with recorded tags of
/// digest `tags_digest`, given SSM's tags now (`None`: left alone, not compared); `None` when
/// the version recorded other tags than SSM's.
fn as_now(
    at: i64,
    tags_digest: &str,
    now: &ParameterSnapshot,
    tags_now: Option<&Tags>,
) -> Option<BackupState> {
    let same_tags = tags_now.is_none_or(|t| format::tags_digest(t) == tags_digest);
    same_tags.then(|| BackupState::Present {
        at,
        snapshot: now.clone().with_attributes(|a| {
            a.tags = tags_now.cloned();
            // Not recorded here: a write would need them, and none is made for a parameter
            // that is as backed up.
            a.labels = None;
        }),
    })
}

/// When the index alone settles the version in force at `at` and names it as `now`'s version
/// with a tags digest: the version's effective time and that digest.
fn proven_now(
    key: &str,
    listed: &[ListedVersion],
    at: i64,
    now: &ParameterSnapshot,
    index: &Index,
) -> Option<(i64, String)> {
    let entries = index.of(key);
    let placed = placed_by_index(listed, entries);
    let StateAt::Present { at, index: i } =
        LazyRead::new(listed, at).decide(&fields_of(&placed))?
    else {
        return None;
    };
    let entry = entries
        .iter()
        .find(|e| e.version_id == listed[i].version_id)?;
    entry
        .fields()
        .attributes
        .same_version_as(&now.attributes)
        .then_some(())?;
    Some((at, entry.tags_digest.clone()?))
}

#[cfg(test)]
mod tests;
