//! Applying a plan to SSM: deletes first (batches of 10), then puts, concurrently but bounded;
//! a replacement deletes, waits as SSM asks, and creates.
//!
//! Throttling is absorbed by the SDK's retries with backoff. A failure is reported by name;
//! without `--keep-going` nothing new starts after it. Applying is idempotent: re-planning and
//! re-applying after a partial run finishes the job.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_ssm::types::{ParameterTier, ParameterType as SsmType};
use ssmbak_core::bounded::map_in_order;
use ssmbak_core::format::{ParameterSnapshot, ParameterType};
use ssmbak_core::plan::{Action, Plan, PlannedChange};

use ssmbak_core::aws_error::AwsError;

use crate::common::output::aws_error;

/// Puts in flight at once: SSM's write throughput is low, retries do the rest.
const PUT_CONCURRENCY: usize = 4;
/// `DeleteParameters` takes at most 10 names.
const DELETE_BATCH: usize = 10;

/// What happened to one planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub name: String,
    pub action: Action,
    /// `None` when it was not attempted (an earlier failure stopped the run).
    pub result: Option<Result<(), String>>,
}

/// How long a replacement waits between deleting a parameter and creating it again: "After
/// deleting a parameter, wait for at least 30 seconds to create a parameter with the same
/// name" (DeleteParameter API reference).
pub const RECREATE_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// Applies `plan`; a replacement waits `recreate_pause` between its delete and its create.
pub async fn apply(
    ssm: &aws_sdk_ssm::Client,
    plan: &Plan,
    keep_going: bool,
    recreate_pause: std::time::Duration,
) -> Vec<Applied> {
    let stop = AtomicBool::new(false);
    let mut out = Vec::new();
    let deletes: Vec<&PlannedChange> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    for batch in deletes.chunks(DELETE_BATCH) {
        let names: Vec<String> = batch.iter().map(|c| c.name.clone()).collect();
        let result = if stop.load(Ordering::Relaxed) {
            None
        } else {
            // Names SSM no longer has come back as InvalidParameters: already done.
            let r = ssm
                .delete_parameters()
                .set_names(Some(names.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{:#}", aws_error("DeleteParameters", &e)));
            if r.is_err() && !keep_going {
                stop.store(true, Ordering::Relaxed);
            }
            Some(r)
        };
        out.extend(names.into_iter().map(|name| Applied {
            name,
            action: Action::Delete,
            result: result.clone(),
        }));
    }
    let puts = plan
        .changes
        .iter()
        .filter_map(|c| Some((c, c.target.as_ref()?)));
    let put_results = map_in_order(puts, PUT_CONCURRENCY, |(c, target)| {
        let stop = &stop;
        async move {
            let result = if stop.load(Ordering::Relaxed) {
                None
            } else {
                // The plan already knows SSM would refuse it: reported, never sent.
                let r = match c.refused {
                    Some(reason) => Err(format!("PutParameter: not sent: {reason}")),
                    None if c.action == Action::Replace => {
                        replace(ssm, target, recreate_pause).await
                    }
                    None => put(ssm, target).await,
                };
                if r.is_err() && !keep_going {
                    stop.store(true, Ordering::Relaxed);
                }
                Some(r)
            };
            Applied {
                name: c.name.clone(),
                action: c.action,
                result,
            }
        }
    })
    .await;
    out.extend(put_results);
    out
}

/// Deletes the parameter, waits `pause`, writes `s`. A re-run after a failure between the two
/// finds the parameter absent and creates it.
async fn replace(
    ssm: &aws_sdk_ssm::Client,
    s: &ParameterSnapshot,
    pause: std::time::Duration,
) -> Result<(), String> {
    match ssm.delete_parameter().name(&s.name).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) => {}
        Err(e) => return Err(format!("{:#}", aws_error("DeleteParameter", &e))),
    }
    tokio::time::sleep(pause).await;
    put(ssm, s).await
}

/// How often a write refused with `TooManyUpdates` is tried, in all.
const TOO_MANY_UPDATES_ATTEMPTS: u32 = 6;

/// Writes `s`, retrying with backoff while SSM answers `TooManyUpdates` (another writer is
/// changing the same parameter: "There are concurrent updates for the resource", PutParameter
/// API reference), which the SDK does not retry as it does throttling.
async fn put(ssm: &aws_sdk_ssm::Client, s: &ParameterSnapshot) -> Result<(), String> {
    let mut attempt = 1;
    let version = loop {
        match put_once(ssm, s).await {
            Err(e) if e.code() == Some("TooManyUpdates") && attempt < TOO_MANY_UPDATES_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                attempt += 1;
            }
            result => break result.map_err(|e| e.to_string())?,
        }
    };
    if s.attributes.data_type.as_deref() == Some(AMI_DATA_TYPE) {
        confirm(ssm, s, version).await?;
    }
    Ok(())
}

/// The data type SSM validates only after PutParameter has answered.
const AMI_DATA_TYPE: &str = "aws:ec2:image";
/// How long an `aws:ec2:image` write is waited for.
const CONFIRM_ATTEMPTS: u32 = 10;

/// Confirms an `aws:ec2:image` write: SSM checks the AMI id after PutParameter returns ("a
/// successful HTTP 200 response does not guarantee that your parameter was successfully
/// created or updated", PutParameter API reference, `DataType`), and a write that fails that
/// check never appears. Done only once the parameter holds the version written, with the value
/// written.
async fn confirm(
    ssm: &aws_sdk_ssm::Client,
    s: &ParameterSnapshot,
    version: i64,
) -> Result<(), String> {
    for attempt in 0..CONFIRM_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let now = match ssm.get_parameter().name(&s.name).send().await {
            Ok(out) => out.parameter,
            // A create not (yet) done.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                None
            }
            Err(e) => {
                return Err(format!(
                    "{:#}",
                    aws_error("GetParameter (confirming the write)", &e)
                ))
            }
        };
        let (held, value) = now.map_or((0, None), |p| (p.version, p.value));
        if held >= version {
            return if held == version && value.as_deref() == Some(s.value.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "PutParameter: version {version} of this aws:ec2:image parameter was changed again before it could be confirmed"
                ))
            };
        }
    }
    Err(format!(
        "PutParameter: the aws:ec2:image write (version {version}) never appeared: SSM validates the AMI id after answering, and the parameter's history or its EventBridge events say why it was refused"
    ))
}

/// Writes `s`, which the plan has already fitted to what SSM accepts (`plan::fit_to_ssm`);
/// the version SSM says it wrote.
async fn put_once(ssm: &aws_sdk_ssm::Client, s: &ParameterSnapshot) -> Result<i64, AwsError> {
    let a = &s.attributes;
    let tier = a.tier.as_deref().map(ParameterTier::from);
    // Policies are restored only when they are what PutParameter takes: a JSON array.
    let policies = a
        .policies
        .clone()
        .filter(|p| serde_json::from_str::<Vec<serde_json::Value>>(p).is_ok());
    ssm.put_parameter()
        .name(&s.name)
        .value(&s.value)
        .r#type(match s.param_type {
            ParameterType::String => SsmType::String,
            ParameterType::StringList => SsmType::StringList,
            ParameterType::SecureString => SsmType::SecureString,
        })
        .overwrite(true)
        .set_description(a.description.clone())
        .set_key_id(a.key_id.clone())
        .set_tier(tier)
        .set_data_type(a.data_type.clone())
        .set_allowed_pattern(a.allowed_pattern.clone())
        .set_policies(policies)
        .send()
        .await
        .map(|out| out.version)
        .map_err(|e| AwsError::doing("PutParameter", &e))
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    pub created: usize,
    pub updated: usize,
    pub replaced: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub not_attempted: usize,
}

impl RestoreSummary {
    pub fn of(applied: &[Applied], unchanged: usize) -> Self {
        let mut s = RestoreSummary {
            unchanged,
            ..RestoreSummary::default()
        };
        for a in applied {
            match (&a.result, a.action) {
                (None, _) => s.not_attempted += 1,
                (Some(Err(_)), _) => s.failed += 1,
                (Some(Ok(())), Action::Create) => s.created += 1,
                (Some(Ok(())), Action::Update) => s.updated += 1,
                (Some(Ok(())), Action::Delete) => s.deleted += 1,
                (Some(Ok(())), Action::Replace) => s.replaced += 1,
            }
        }
        s
    }
}

impl RestoreSummary {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "created": self.created, "updated": self.updated, "replaced": self.replaced,
            "deleted": self.deleted,
            "unchanged": self.unchanged, "failed": self.failed, "not_attempted": self.not_attempted,
        })
    }
}

impl std::fmt::Display for RestoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created {}, updated {}, deleted {}, unchanged {}, failed {}",
            self.created, self.updated, self.deleted, self.unchanged, self.failed
        )?;
        if self.replaced > 0 {
            write!(f, ", replaced {}", self.replaced)?;
        }
        if self.not_attempted > 0 {
            write!(f, ", not attempted {}", self.not_attempted)?;
        }
        Ok(())
    }
}
