//! Reading backups and SSM for one scope and time, and planning the restore.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use futures::channel::mpsc;
use futures::stream::{self, StreamExt, TryStreamExt};
use futures::{FutureExt, SinkExt};
use ssmbak_core::current;
use ssmbak_core::format::{Attribute, ParameterSnapshot, ParameterType};
use ssmbak_core::index::Index;
use ssmbak_core::paced::PacedSsm;
use ssmbak_core::plan::{self, Plan};
use ssmbak_core::reader::{
    BackupState, BucketReader, HistoryEntry, ListedVersion, Listing, Proven,
};

use crate::ssmbak::scope::Scope;

/// Keys read from the bucket at once: enough to hide a round trip of tens of milliseconds behind
/// the others (S3 serves thousands of GETs a second per prefix).
pub(crate) const READ_CONCURRENCY: usize = 64;

pub struct Session {
    pub ssm: aws_sdk_ssm::Client,
    pub reader: BucketReader,
    /// Whether `ssm` is the SSM the backups were made from (not another region or account):
    /// only then does a parameter's version say whether it changed since its backup.
    pub same_ssm: bool,
}

/// Where and how a restore writes, when not exactly as backed up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remap {
    /// Restore under this prefix (or to this key) instead of the original names.
    pub to: Option<String>,
    /// Encrypt SecureStrings with this KMS key.
    pub key_id: Option<String>,
    /// Leave tags and labels as they are (neither read nor written).
    pub no_tags: bool,
}

impl Remap {
    /// The name `name` (in `scope`) is restored to.
    fn name(&self, scope: &Scope, name: &str) -> String {
        match &self.to {
            None => name.to_owned(),
            Some(to) => match scope {
                Scope::Key(_) => ssmbak_core::format::object_key(to),
                Scope::Path { path, .. } => format!(
                    "{}{}",
                    ssmbak_core::format::object_key(to),
                    name.strip_prefix(path.as_str()).unwrap_or(name)
                ),
            },
        }
    }

    fn apply(
        &self,
        scope: &Scope,
        backups: BTreeMap<String, BackupState>,
    ) -> BTreeMap<String, BackupState> {
        backups
            .into_iter()
            .map(|(name, mut state)| {
                let new_name = self.name(scope, &name);
                if let BackupState::Present { snapshot, .. } = &mut state {
                    snapshot.name = new_name.clone();
                    if self.no_tags {
                        snapshot.attributes.tags = None;
                        snapshot.attributes.labels = None;
                    }
                    if snapshot.param_type == ParameterType::SecureString && self.key_id.is_some() {
                        let wanted = &mut snapshot.attributes;
                        wanted.key_id = self.key_id.clone();
                        wanted.unknown.retain(|a| *a != Attribute::KeyId);
                    }
                }
                (new_name, state)
            })
            .collect()
    }
}

impl Session {
    /// What the backup says about every tracked key in scope at `at`.
    pub async fn backups_at(
        &self,
        scope: &Scope,
        at: i64,
    ) -> anyhow::Result<BTreeMap<String, BackupState>> {
        let (listing, index) = self.listing_and_index(scope).await?;
        self.states_at(scope, listing, at, &index, |_| None).await
    }

    /// The backup's listing of `scope` and its index there, read together (in either order:
    /// see `ssmbak_core::index`).
    async fn listing_and_index(&self, scope: &Scope) -> anyhow::Result<(Listing, Index)> {
        Ok(tokio::try_join!(
            self.reader.list(scope.prefix()),
            self.reader.index(scope.prefix())
        )?)
    }

    /// [`Self::backups_at`] from a listing already made. `known_value` gives the value a key is
    /// expected to hold (SSM's, now), so that unchanged bodies need not be downloaded.
    async fn states_at<'k>(
        &self,
        scope: &Scope,
        listing: Listing,
        at: i64,
        index: &Index,
        known_value: impl Fn(&str) -> Option<&'k str> + Sync,
    ) -> anyhow::Result<BTreeMap<String, BackupState>> {
        let known_value = &known_value;
        self.read_keys(scope, listing, |key, listed| async move {
            let state = self
                .reader
                .state_at(&key, &listed, at, known_value(&key), index)
                .await?;
            anyhow::Ok((key, state))
        })
        .await
    }

    /// [`Self::states_at`], knowing `now`, SSM's parameters of the very names the backups were
    /// made of: a key whose version in force at `at` the index proves to be SSM's version now
    /// (with the tags SSM has now, when `compare_tags`) is not read at all
    /// (`BucketReader::state_or_now`). SSM's tags of those keys are read into `now`.
    async fn states_knowing_now(
        &self,
        scope: &Scope,
        listing: Listing,
        at: i64,
        index: &Index,
        now: &mut BTreeMap<String, ParameterSnapshot>,
        compare_tags: bool,
    ) -> anyhow::Result<BTreeMap<String, BackupState>> {
        let known = &*now;
        let proven = self
            .read_keys(scope, listing, |key, listed| async move {
                let proven = match known.get(&key) {
                    Some(now) => {
                        self.reader
                            .state_or_now(&key, &listed, at, now, index)
                            .await?
                    }
                    None => {
                        Proven::State(self.reader.state_at(&key, &listed, at, None, index).await?)
                    }
                };
                anyhow::Ok((key, (proven, listed)))
            })
            .await?;
        if compare_tags {
            let proven_now = proven
                .iter()
                .filter(|(_, (p, _))| matches!(p, Proven::IsNow { .. }))
                .map(|(name, _)| name.clone());
            read_tags_of(&self.ssm, now, proven_now.collect()).await?;
        }
        let now = &*now;
        stream::iter(proven)
            .map(|(key, (proven, listed))| async move {
                let state = match (proven, now.get(&key)) {
                    (Proven::State(state), _) => state,
                    (proven, Some(now)) => {
                        let tags_now = now.attributes.tags.as_ref().filter(|_| compare_tags);
                        self.reader
                            .settle_proven(&key, &listed, index, proven, now, tags_now)
                            .await?
                    }
                    // Proven only against a parameter `now` holds; read, should it not.
                    (Proven::IsNow { .. }, None) => {
                        self.reader.state_at(&key, &listed, at, None, index).await?
                    }
                };
                anyhow::Ok((key, state))
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Reads every key of `listing` in scope with `read`, [`READ_CONCURRENCY`] at once.
    async fn read_keys<T, F, Fut>(
        &self,
        scope: &Scope,
        listing: Listing,
        read: F,
    ) -> anyhow::Result<BTreeMap<String, T>>
    where
        F: Fn(String, Vec<ListedVersion>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<(String, T)>>,
    {
        let keys: Vec<_> = listing
            .into_iter()
            .filter(|(k, _)| scope.contains(k))
            .collect();
        // The first key alone: it shows the reader which format the bucket holds, so the
        // others start with the right request instead of a guess each.
        let mut keys = keys.into_iter();
        let first = match keys.next() {
            Some((key, listed)) => vec![read(key, listed).await?],
            None => return Ok(BTreeMap::new()),
        };
        let rest: Vec<(String, T)> = stream::iter(keys)
            .map(|(key, listed)| read(key, listed))
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(first.into_iter().chain(rest).collect())
    }

    /// The backup's listing in scope, its index there, and SSM's parameters in `ssm_scope`,
    /// read at once.
    async fn listing_and_current(
        &self,
        scope: &Scope,
        ssm_scope: &Scope,
    ) -> anyhow::Result<(Listing, Index, BTreeMap<String, ParameterSnapshot>)> {
        let listing = async { anyhow::Ok(self.reader.list(scope.prefix()).await?) };
        let index = async { anyhow::Ok(self.reader.index(scope.prefix()).await?) };
        tokio::try_join!(listing, index, self.current(ssm_scope))
            .context("reading the backup and SSM")
    }

    /// What SSM holds now in scope.
    pub async fn current(
        &self,
        scope: &Scope,
    ) -> anyhow::Result<BTreeMap<String, ParameterSnapshot>> {
        current_in(&self.ssm, scope).await
    }

    /// The restore plan for `scope` at `at`, as a preview makes it ([`PLANS_IN_FLIGHT_READING`]).
    pub async fn plan(&self, scope: &Scope, at: i64, remap: &Remap) -> anyhow::Result<Plan> {
        let (parts, mut received) = mpsc::channel(0);
        let collect = async {
            let mut plan = Plan::default();
            while let Some(part) = received.next().await {
                plan.extend(part);
            }
            plan
        };
        let planning = self.plan_parts(scope, at, remap, PLANS_IN_FLIGHT_READING, parts);
        let (planned, plan) = tokio::join!(planning, collect);
        planned.map(|()| plan)
    }

    /// [`Self::plan`] in parts, each sent to `parts` as soon as it is made, so that a restore
    /// writes the first parameters while it plans the others: the parts, joined with
    /// [`Plan::extend`], make the whole plan. The backup is listed page by page, and each part
    /// ([`Parts`]) is planned once its keys are listed: SSM's values of those keys (by name),
    /// their backup states, metadata and tags (`in_flight` parts at once, sent in order).
    pub async fn plan_parts(
        &self,
        scope: &Scope,
        at: i64,
        remap: &Remap,
        in_flight: usize,
        mut parts: mpsc::Sender<Plan>,
    ) -> anyhow::Result<()> {
        // SSM's values by name, paced to the account's read rate.
        let reads = PacedSsm::new(&self.ssm);
        // The bucket's index in scope: listed once, beside the listing, and shared by every
        // part. Listed before or after a version, it never changes an answer: a version it
        // does not place is read (see `ssmbak_core::index`).
        let index = self
            .reader
            .index(scope.prefix())
            .map(|read| read.map(Arc::new))
            .shared();
        // The listing runs ahead of the planning by a page or two.
        let (mut listed, pages) = mpsc::channel::<Listing>(1);
        let list = async move {
            let mut stream = std::pin::pin!(self.reader.list_in_parts(scope.prefix()));
            while let Some(page) = stream.next().await {
                if listed
                    .send(page.context("reading the backup")?)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            anyhow::Ok(())
        };
        // The parts, as the listing reaches their keys.
        let cut = stream::unfold(
            (Parts::default(), pages, false),
            move |(mut cutter, mut pages, mut all_listed)| async move {
                loop {
                    if let Some(part) = cutter.next(all_listed) {
                        return Some((part, (cutter, pages, all_listed)));
                    }
                    if all_listed {
                        return None;
                    }
                    match pages.next().await {
                        Some(page) => {
                            cutter.extend(page.into_iter().filter(|(k, _)| scope.contains(k)))
                        }
                        None => all_listed = true,
                    }
                }
            },
        );
        let reads = &reads;
        let plan = async {
            let planned = cut
                .map(|part| {
                    let index = index.clone();
                    async move {
                        let index = index.await.context("reading the backup")?;
                        self.plan_part(scope, at, remap, reads, &index, part).await
                    }
                })
                .buffered(in_flight);
            let mut planned = std::pin::pin!(planned);
            while let Some(plan) = planned.next().await {
                if parts.send(plan?).await.is_err() {
                    // Nobody is taking parts any more.
                    break;
                }
            }
            anyhow::Ok(())
        };
        tokio::try_join!(list, plan).map(|_| ())
    }

    /// The plan of one part of the keys in scope, with their listings.
    async fn plan_part(
        &self,
        scope: &Scope,
        at: i64,
        remap: &Remap,
        reads: &PacedSsm,
        index: &Index,
        part: Vec<(String, Vec<ListedVersion>)>,
    ) -> anyhow::Result<Plan> {
        let names: Vec<String> = part.iter().map(|(k, _)| remap.name(scope, k)).collect();
        let mut now = current::values_of(reads, &names)
            .await
            .context("reading SSM")?;
        // SSM's versions say what changed only in the SSM the backups came from, under their
        // own names and keys.
        let same = self.same_ssm && remap.to.is_none() && remap.key_id.is_none();
        let listing = part.into_iter().collect();
        let backups = if same {
            self.states_knowing_now(scope, listing, at, index, &mut now, !remap.no_tags)
                .await?
        } else {
            self.states_at(scope, listing, at, index, |name| {
                now.get(&remap.name(scope, name)).map(|p| p.value.as_str())
            })
            .await?
        };
        let backups = remap.apply(scope, backups);
        complete_metadata(&self.ssm, &mut now, &backups, same).await?;
        read_tags(&self.ssm, &mut now, &backups).await?;
        Ok(plan::plan(&backups, &now))
    }

    /// What changed from `t1` to `t2` (or to SSM now): the plan that would take the later state
    /// back to `t1`, and the later state.
    pub async fn diff(
        &self,
        scope: &Scope,
        t1: i64,
        t2: Option<i64>,
    ) -> anyhow::Result<(Plan, BTreeMap<String, ParameterSnapshot>)> {
        let (before, after) = match t2 {
            None => {
                let (listing, index, mut current) = self.listing_and_current(scope, scope).await?;
                let before = if self.same_ssm {
                    self.states_knowing_now(scope, listing, t1, &index, &mut current, true)
                        .await?
                } else {
                    self.states_at(scope, listing, t1, &index, |name| {
                        current.get(name).map(|p| p.value.as_str())
                    })
                    .await?
                };
                complete_metadata(&self.ssm, &mut current, &before, self.same_ssm).await?;
                read_tags(&self.ssm, &mut current, &before).await?;
                (before, current)
            }
            Some(t2) => {
                // One listing serves both points.
                let (listing, index) = self.listing_and_index(scope).await?;
                let (before, after) = tokio::try_join!(
                    self.states_at(scope, listing.clone(), t1, &index, |_| None),
                    self.states_at(scope, listing, t2, &index, |_| None)
                )?;
                let after = after
                    .into_iter()
                    .filter_map(|(name, state)| match state {
                        BackupState::Present { snapshot, .. } => Some((name, snapshot)),
                        _ => None,
                    })
                    .collect();
                (before, after)
            }
        };
        Ok((plan::plan(&before, &after), after))
    }

    /// Every recorded change of one key.
    pub async fn history(&self, key: &str) -> anyhow::Result<Vec<HistoryEntry>> {
        let listing = self.reader.list(key).await?;
        let Some(listed) = listing.get(key) else {
            anyhow::bail!("{key} has no backups in {}", self.reader.bucket());
        };
        Ok(self.reader.history(key, listed).await?)
    }
}

/// Parts a preview plans at once, sent in order: the SSM reads of one (by name, one request
/// at a time at SSM's read rate) fill the waits of the other's bucket reads. With one, the
/// preview of 1,000 parameters took 12.4 s on moto and 14.5 s with a 20 ms round trip (109
/// sequential round trips); with two, 9.4 s and 9.8 s (21), beside a CI build (BENCHMARKS.md,
/// session 9).
pub(crate) const PLANS_IN_FLIGHT_READING: usize = 2;
/// Parts a restore plans at once while it writes the parts before: one. On the single-threaded
/// emulator, whose time the plan's reads and the writes share, the restore benchmark was slower
/// with two (35.8 s against 30.1–31.9 s with one, session 8): worth measuring again against
/// AWS, where they do not compete.
pub(crate) const PLANS_IN_FLIGHT_WRITING: usize = 1;

/// Keys in the first part of a plan: few, so that the first write starts a few round trips in.
/// Every part but the last is a multiple of 10, the names one `GetParameters` takes.
const PART_FIRST: usize = 10;
/// Parts grow to this many keys: enough to keep [`READ_CONCURRENCY`] reads and SSM's batched
/// reads full.
const PART_MAX: usize = 320;

/// Keys cut into parts as they are listed: [`PART_FIRST`], then twice as many each time up
/// to [`PART_MAX`], in order.
struct Parts<T> {
    pending: std::collections::VecDeque<T>,
    size: usize,
}

impl<T> Default for Parts<T> {
    fn default() -> Self {
        Parts {
            pending: std::collections::VecDeque::new(),
            size: PART_FIRST,
        }
    }
}

impl<T> Parts<T> {
    fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.pending.extend(items);
    }

    /// The next part, once enough keys came for it; once `all_listed`, what is left too.
    fn next(&mut self, all_listed: bool) -> Option<Vec<T>> {
        let ready = self.pending.len() >= self.size || (all_listed && !self.pending.is_empty());
        if !ready {
            return None;
        }
        let part = self
            .pending
            .drain(..self.size.min(self.pending.len()))
            .collect();
        self.size = (self.size * 2).min(PART_MAX);
        Some(part)
    }
}

/// What `ssm` holds now in scope: values, types, versions, data types and modification times
/// ([`complete_metadata`] adds the rest where it matters).
pub async fn current_in(
    ssm: &aws_sdk_ssm::Client,
    scope: &Scope,
) -> anyhow::Result<BTreeMap<String, ParameterSnapshot>> {
    Ok(match scope {
        Scope::Key(k) => current::key_value(ssm, k)
            .await?
            .map(|p| (p.name.clone(), p))
            .into_iter()
            .collect(),
        Scope::Path { path, recursive } => current::values(ssm, path, *recursive)
            .await?
            .into_iter()
            .filter(|(name, _)| scope.contains(name))
            .collect(),
    })
}

/// The plan that writes `states` (named as they are to be written) into `scope` of `ssm`:
/// an import's, with nothing read from a bucket.
pub async fn plan_into(
    ssm: &aws_sdk_ssm::Client,
    scope: &Scope,
    states: BTreeMap<String, BackupState>,
    remap: &Remap,
) -> anyhow::Result<Plan> {
    let mut current = current_in(ssm, scope).await?;
    let states = remap.apply(scope, states);
    complete_metadata(ssm, &mut current, &states, false).await?;
    read_tags(ssm, &mut current, &states).await?;
    Ok(plan::plan(&states, &current))
}

/// Reads the rest of the metadata (`DescribeParameters`, by name) of the parameters in
/// `current` that may differ from their state in `wanted`; those proven unchanged since their
/// backup ([`plan::unchanged_since`]) take the backup's record of it instead. `same_parameters`:
/// `current` is the very SSM and names the backups were made from, written as they are.
async fn complete_metadata(
    ssm: &aws_sdk_ssm::Client,
    current: &mut BTreeMap<String, ParameterSnapshot>,
    wanted: &BTreeMap<String, BackupState>,
    same_parameters: bool,
) -> anyhow::Result<()> {
    let mut unsettled = Vec::new();
    for (name, now) in current.iter_mut() {
        match wanted.get(name) {
            Some(state @ BackupState::Present { snapshot, .. })
                if plan::unchanged_since(state, now, same_parameters) =>
            {
                plan::adopt_recorded(now, snapshot)
            }
            // Untracked, or not ssmbak's: a restore leaves it alone.
            None | Some(BackupState::Foreign { .. }) => {}
            Some(_) => unsettled.push(name.clone()),
        }
    }
    Ok(current::describe(ssm, current, &unsettled).await?)
}

/// `ListTagsForResource` calls in flight at once (SSM documents no rate for it; the SDK's
/// retries absorb throttling).
const TAG_READ_CONCURRENCY: usize = 8;

/// Reads the tags of the parameters in `current` whose state in `wanted` recorded tags: only
/// there is a difference possible to show or restore. Tags already read (for a key proven
/// as backed up, see [`Session::states_knowing_now`]) are not read again.
async fn read_tags(
    ssm: &aws_sdk_ssm::Client,
    current: &mut BTreeMap<String, ParameterSnapshot>,
    wanted: &BTreeMap<String, BackupState>,
) -> anyhow::Result<()> {
    let names: Vec<String> = wanted
        .iter()
        .filter(|(name, state)| {
            current
                .get(*name)
                .is_some_and(|now| now.attributes.tags.is_none())
                && matches!(state, BackupState::Present { snapshot, .. } if snapshot.attributes.tags.is_some())
        })
        .map(|(name, _)| name.clone())
        .collect();
    read_tags_of(ssm, current, names).await
}

/// Reads SSM's tags of `names` into `current`. SSM reads tags one parameter at a time.
async fn read_tags_of(
    ssm: &aws_sdk_ssm::Client,
    current: &mut BTreeMap<String, ParameterSnapshot>,
    names: Vec<String>,
) -> anyhow::Result<()> {
    let tags: Vec<(String, Option<ssmbak_core::format::Tags>)> = stream::iter(names)
        .map(|name| async move {
            let tags = current::tags(ssm, &name).await?;
            anyhow::Ok((name, tags))
        })
        .buffer_unordered(TAG_READ_CONCURRENCY)
        .try_collect()
        .await?;
    for (name, tags) in tags {
        if let Some(p) = current.get_mut(&name) {
            // Gone since it was listed: no tags to keep or remove.
            p.attributes.tags = Some(tags.unwrap_or_default());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_made_in_parts_that_start_small_and_grow() {
        // All listed at once, or page by page: the same parts.
        let parts = |items: Vec<usize>, page: usize| -> Vec<Vec<usize>> {
            let mut cutter = Parts::default();
            let mut out = Vec::new();
            for chunk in items.chunks(page.max(1)) {
                cutter.extend(chunk.iter().copied());
                out.extend(std::iter::from_fn(|| cutter.next(false)));
            }
            out.extend(std::iter::from_fn(|| cutter.next(true)));
            out
        };
        for page in [1, 7, 200, 1000] {
            let whole = parts((0..1000).collect(), 1000);
            assert_eq!(parts((0..1000).collect(), page), whole, "pages of {page}");
        }
        let sizes =
            |n: usize| -> Vec<usize> { parts((0..n).collect(), n).iter().map(Vec::len).collect() };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(5), [5]);
        assert_eq!(sizes(10), [10]);
        assert_eq!(sizes(100), [10, 20, 40, 30]);
        assert_eq!(sizes(1000), [10, 20, 40, 80, 160, 320, 320, 50]);
        // In order, each key once.
        let joined: Vec<usize> = parts((0..1000).collect(), 13).concat();
        assert_eq!(joined, (0..1000).collect::<Vec<_>>());
    }
}
