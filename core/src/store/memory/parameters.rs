//! The in-memory Parameter Store: versions, history (with its 100-version limit), labels and
//! tags as SSM keeps them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Clock;
use crate::format::{Attributes, ParameterSnapshot, ParameterType, Tags};
use crate::store::{HistoryVersion, ListedParameter, ParameterStore, ParametersPage, StoreFuture};

/// One parameter that exists.
#[derive(Debug, Clone)]
pub(super) struct Parameter {
    versions: Vec<HistoryVersion>,
    tags: Tags,
}

/// In-memory Parameter Store.
#[derive(Debug)]
pub struct MemoryParameters {
    pub(super) params: Mutex<BTreeMap<String, Parameter>>,
    pub(super) clock: Clock,
    /// Parameters per `DescribeParameters` page (AWS: up to MaxResults, 50).
    pub(super) page_size: usize,
}

/// SSM keeps at most this many versions of a parameter.
pub const HISTORY_LIMIT: usize = 100;

impl MemoryParameters {
    pub fn new(clock: Clock) -> Self {
        MemoryParameters {
            params: Mutex::default(),
            clock,
            page_size: 50,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Parameter>> {
        self.params.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `PutParameter` (overwriting) at the clock's time: the new version's number.
    pub fn put(&self, name: &str, value: &str, param_type: ParameterType) -> i64 {
        self.put_at(name, value, param_type, self.clock.now_ms())
    }

    /// [`Self::put`], last modified at `now` (epoch ms).
    pub fn put_at(&self, name: &str, value: &str, param_type: ParameterType, now: i64) -> i64 {
        let mut params = self.lock();
        let p = params.entry(name.to_owned()).or_insert(Parameter {
            versions: Vec::new(),
            tags: Tags::new(),
        });
        let version = p.versions.last().map_or(1, |v| v.version() + 1);
        p.versions.push(HistoryVersion {
            name: name.to_owned(),
            labels: Vec::new(),
            snapshot: ParameterSnapshot {
                name: name.to_owned(),
                value: value.to_owned(),
                param_type,
                attributes: Attributes {
                    version: Some(version),
                    last_modified_ms: Some(now),
                    tier: Some("Standard".to_owned()),
                    data_type: Some("text".to_owned()),
                    ..Attributes::default()
                },
            },
        });
        if p.versions.len() > HISTORY_LIMIT {
            p.versions.remove(0);
        }
        version
    }

    /// `DeleteParameter` (also what an Expiration policy does when it fires).
    pub fn delete(&self, name: &str) -> bool {
        self.lock().remove(name).is_some()
    }

    /// `LabelParameterVersion`: moves `label` to `version` (a label is on one version).
    pub fn label(&self, name: &str, version: i64, label: &str) -> bool {
        let mut params = self.lock();
        let Some(p) = params.get_mut(name) else {
            return false;
        };
        if !p.versions.iter().any(|v| v.version() == version) {
            return false;
        }
        for v in &mut p.versions {
            v.labels.retain(|l| l != label);
            if v.version() == version {
                v.labels.push(label.to_owned());
                v.labels.sort();
            }
        }
        true
    }

    /// `AddTagsToResource`/`RemoveTagsFromResource`: the tags now (no history).
    pub fn set_tags(&self, name: &str, tags: Tags) -> bool {
        match self.lock().get_mut(name) {
            Some(p) => {
                p.tags = tags;
                true
            }
            None => false,
        }
    }

    /// The current version and its LastModifiedDate, if the parameter exists.
    pub fn current(&self, name: &str) -> Option<(i64, i64)> {
        let params = self.lock();
        let v = params.get(name)?.versions.last()?;
        Some((v.version(), v.last_modified_ms()?))
    }

    /// The versions SSM keeps now, `(version, LastModifiedDate ms)`, if the parameter exists.
    pub fn history_now(&self, name: &str) -> Option<Vec<(i64, i64)>> {
        let params = self.lock();
        let p = params.get(name)?;
        Some(
            p.versions
                .iter()
                .map(|v| (v.version(), v.last_modified_ms().unwrap_or_default()))
                .collect(),
        )
    }

    /// The parameter's current snapshot, if it exists.
    pub fn snapshot(&self, name: &str) -> Option<ParameterSnapshot> {
        let params = self.lock();
        Some(params.get(name)?.versions.last()?.snapshot.clone())
    }
}

impl ParameterStore for MemoryParameters {
    fn history<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Vec<HistoryVersion>>> {
        let found = self.lock().get(name).map(|p| p.versions.clone());
        Box::pin(async move { Ok(found) })
    }

    fn tags<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tags>> {
        let found = self.lock().get(name).map(|p| p.tags.clone());
        Box::pin(async move { Ok(found) })
    }

    fn describe<'a>(
        &'a self,
        paths: &'a [String],
        next_token: Option<String>,
    ) -> StoreFuture<'a, ParametersPage> {
        let within = |name: &str| {
            paths.is_empty()
                || paths.iter().any(|p| {
                    let p = p.trim_end_matches('/');
                    name.strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
                })
        };
        let start: usize = next_token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let listed: Vec<ListedParameter> = self
            .lock()
            .iter()
            .filter(|(name, _)| within(name))
            .filter_map(|(name, p)| {
                let v = p.versions.last()?;
                Some(ListedParameter {
                    name: name.clone(),
                    version: v.version(),
                    last_modified_ms: v.last_modified_ms()?,
                })
            })
            .collect();
        let end = (start + self.page_size).min(listed.len());
        let page = ParametersPage {
            parameters: listed[start.min(end)..end].to_vec(),
            next_token: (end < listed.len()).then(|| end.to_string()),
        };
        Box::pin(async move { Ok(page) })
    }
}
