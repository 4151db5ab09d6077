//! The benchmark's data: a tree in the original's bucket format or ours, and SSM beside it.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use futures::stream::{self, StreamExt};
use ssmbak_core::format::{
    self, Attributes, BackupRecord, EarlierVersion, ParameterSnapshot, StoredFields,
};
use ssmbak_core::index;
use ssmbak_core::paced::PacedSsm;
use ssmbak_tests::emulator::{put_encoded, unique, Clients};

/// Versions written per parameter.
pub(crate) const VERSIONS: usize = 5;

/// How far apart [`Spacing::Apart`] writes its rounds: the 10-minute window of the late-writes
/// lease our readers trusted before the index (issue 28), scaled down. Kept so that the bench
/// still shows that a restore point close to later writes costs what a far one does.
pub(crate) const APART_SECS: i64 = 10;

/// How far apart a tree's rounds are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spacing {
    /// A second or two: every later version seconds after a point between rounds.
    Close,
    /// [`APART_SECS`] more: changes "minutes" apart, scaled down.
    Apart,
}

/// How a tree's versions are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The original's: tags only.
    Original,
    /// Ours, as our Lambda writes it: metadata, each version naming the earlier ones, and its
    /// index entry (`ssmbak_core::index`).
    Ours,
}

/// A tree of parameters backed up in one layout.
pub(crate) struct Tree {
    pub(crate) layout: Layout,
    pub(crate) n: usize,
    pub(crate) path: String,
    pub(crate) bucket: String,
    /// Epoch seconds just after each round of versions.
    pub(crate) after_round: Vec<i64>,
}

pub(crate) fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Tree {
    pub(crate) fn name(&self, i: usize) -> String {
        format!("{}p{i:05}", self.path)
    }

    /// The value the last round backed up.
    pub(crate) fn backed_up(&self, i: usize) -> String {
        value(i, VERSIONS - 1)
    }

    /// `n` parameters with [`VERSIONS`] versions each, in `layout`, written round by round (so
    /// LastModified follows the event times, as with a live Lambda); SSM holds the last round
    /// with every tenth parameter changed. In our layout each round is written to SSM first and
    /// each backup records the version and modification time SSM gave it, as our Lambda does,
    /// so that a preview can prove the other nine in ten unchanged (#15 part 1).
    pub(crate) async fn generate(
        aws: &Clients,
        n: usize,
        layout: Layout,
        spacing: Spacing,
    ) -> Tree {
        let id = unique("bench");
        let tree = Tree {
            layout,
            n,
            bucket: id.to_ascii_lowercase(),
            path: format!("/{id}/"),
            after_round: Vec::new(),
        };
        ssmbak_tests::emulator::versioned_bucket(&aws.s3, &tree.bucket).await;
        let mut after_round = Vec::new();
        // Ours: what each key's next version names.
        let mut earlier: Vec<Vec<EarlierVersion>> = vec![Vec::new(); n];
        for round in 0..VERSIONS {
            let recorded = match layout {
                Layout::Ours => tree.write_round_to_ssm(aws, round).await,
                Layout::Original => vec![Attributes::default(); n],
            };
            // The event time: at or after SSM's change, as an event's is.
            let t = now_secs();
            let written: Vec<(usize, Option<String>)> = stream::iter(0..n)
                .map(|i| {
                    let (aws, tree, earlier, recorded) = (aws, &tree, &earlier[i], &recorded[i]);
                    async move { (i, tree.put(aws, i, round, t, earlier, recorded).await) }
                })
                .buffer_unordered(32)
                .collect()
                .await;
            for (i, version_id) in written {
                let mut fields = StoredFields {
                    event_time: Some(t),
                    earlier: std::mem::take(&mut earlier[i]),
                    ..StoredFields::default()
                };
                fields.attributes.version = recorded[i].version.or(Some(ssm_version(round)));
                earlier[i] = format::earlier::after(&version_id.unwrap_or_default(), &fields);
            }
            tokio::time::sleep(Duration::from_millis(1100)).await;
            after_round.push(now_secs());
            let gap = match spacing {
                Spacing::Close => Duration::from_millis(1100),
                Spacing::Apart => {
                    Duration::from_secs(APART_SECS.unsigned_abs()) + Duration::from_millis(1100)
                }
            };
            tokio::time::sleep(gap).await;
        }
        let tree = Tree {
            after_round,
            ..tree
        };
        let changed = |i: usize| i.is_multiple_of(10);
        match layout {
            // SSM already holds the last round.
            Layout::Ours => {
                tree.set_ssm(aws, |i| changed(i).then(|| "changed".to_owned()))
                    .await
            }
            Layout::Original => {
                tree.set_ssm(aws, |i| {
                    Some(match changed(i) {
                        true => "changed".to_owned(),
                        false => tree.backed_up(i),
                    })
                })
                .await
            }
        }
        tree
    }

    /// Puts round `round`'s values into SSM: what SSM then says of each parameter (its
    /// version and modification time), read back as a preview reads it.
    async fn write_round_to_ssm(&self, aws: &Clients, round: usize) -> Vec<Attributes> {
        self.set_ssm(aws, |i| Some(value(i, round))).await;
        let names: Vec<String> = (0..self.n).map(|i| self.name(i)).collect();
        let now = ssmbak_core::current::values_of(&PacedSsm::new(&aws.ssm), &names)
            .await
            .expect("get parameters");
        names
            .iter()
            .map(|n| now.get(n).map(|p| p.attributes.clone()).unwrap_or_default())
            .collect()
    }

    /// Writes version `round` of parameter `i`, with event time `t` and (our layout) what SSM
    /// `recorded` of it: its version id.
    async fn put(
        &self,
        aws: &Clients,
        i: usize,
        round: usize,
        t: i64,
        earlier: &[EarlierVersion],
        recorded: &Attributes,
    ) -> Option<String> {
        match self.layout {
            Layout::Original => {
                aws.s3
                    .put_object()
                    .bucket(&self.bucket)
                    .key(self.name(i))
                    .tagging(format!("ssmbakTime={t}&ssmbakType=String"))
                    .body(value(i, round).into_bytes().into())
                    .send()
                    .await
                    .expect("put")
                    .version_id
            }
            Layout::Ours => {
                let snapshot = ParameterSnapshot::new(
                    self.name(i),
                    value(i, round),
                    format::ParameterType::String,
                )
                .with_attributes(|a| {
                    a.version = recorded.version;
                    a.last_modified_ms = recorded.last_modified_ms;
                    // As our Lambda records them (format 2): the tree's parameters have none.
                    a.tags = Some(Default::default());
                    a.labels = Some(Vec::new());
                });
                let record = BackupRecord::Value {
                    event_time: t,
                    snapshot,
                };
                let mut object = record.encode();
                object.name_earlier(earlier);
                let key = object.key.clone();
                let version_id = put_encoded(&aws.s3, &self.bucket, object).await;
                let entry = version_id.as_deref().and_then(|id| record.place(id));
                if let Some(entry_key) = entry.and_then(|e| index::entry_key(&key, &e)) {
                    self.put_empty(aws, &entry_key).await;
                }
                version_id
            }
        }
    }

    async fn put_empty(&self, aws: &Clients, key: &str) {
        aws.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(Vec::new().into())
            .send()
            .await
            .expect("put an index entry");
    }

    /// Puts the parameters of the tree into SSM with the value `value(i)`, where it has one.
    pub(crate) async fn set_ssm(&self, aws: &Clients, value: impl Fn(usize) -> Option<String>) {
        let value = &value;
        stream::iter((0..self.n).filter_map(|i| Some((i, value(i)?))))
            .map(|(i, value)| async move {
                aws.ssm
                    .put_parameter()
                    .name(self.name(i))
                    .value(value)
                    .r#type(ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .expect("put parameter");
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
    }

    /// How many parameters in SSM do not hold what the last round backed up.
    pub(crate) async fn ssm_differences(&self, aws: &Clients) -> usize {
        let mut pages = aws
            .ssm
            .get_parameters_by_path()
            .path(self.path.trim_end_matches('/'))
            .recursive(true)
            .into_paginator()
            .send();
        let mut same = 0;
        while let Some(page) = pages.next().await {
            let page = page.expect("get parameters by path");
            same += page
                .parameters()
                .iter()
                .filter(|p| {
                    let i = p
                        .name()
                        .and_then(|n| n.rsplit('p').next())
                        .and_then(|d| d.parse::<usize>().ok());
                    i.is_some_and(|i| p.value() == Some(self.backed_up(i).as_str()))
                })
                .count();
        }
        self.n - same
    }
}

/// The SSM version round `round` stands for.
fn ssm_version(round: usize) -> i64 {
    i64::try_from(round).unwrap_or_default() + 1
}

fn value(i: usize, round: usize) -> String {
    format!("value {i} round {round}")
}
