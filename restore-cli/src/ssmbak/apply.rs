//! Applying a plan to SSM: deletes first (batches of 10), then puts, concurrently but bounded;
//! a replacement deletes, waits as SSM asks, and creates. A version written gets the labels its
//! backup recorded; then the tags are made what the backup recorded.
//!
//! Writes are paced to the rate the account allows, learnt from throttling ([`Writer`]); a
//! write refused for the rate is sent again at the pace. A failure is reported by name;
//! without `--keep-going` nothing new starts after it. Applying is idempotent: re-planning and
//! re-applying after a partial run finishes the job.

use aws_sdk_ssm::config::http::HttpResponse;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::operation::put_parameter::PutParameterError;
use aws_sdk_ssm::types::{ParameterTier, ParameterType as SsmType, ResourceTypeForTagging, Tag};
use ssmbak_core::format::{ParameterSnapshot, ParameterType};
use ssmbak_core::paced::PacedSsm;
use ssmbak_core::plan::{Action, Plan, PlannedChange, TagEdit};

use ssmbak_core::aws_error::AwsError;

use crate::common::execute::{Attempt, Executor};
use crate::common::output::aws_error;
use crate::common::summary::{Outcome, Summary};

/// Puts in flight at once: enough to keep SSM's write rate busy across round trips (a change
/// may take a put, a label and two tag calls); [`Writer`]'s pace decides the rate.
const PUT_CONCURRENCY: usize = 16;

/// SSM's clients for a restore's writes. `PutParameter`, `DeleteParameter` and
/// `DeleteParameters` go at the rate the account allows ([`PacedSsm`]): the pace starts at
/// SSM's default and is measured from what SSM admits and refuses, so a
/// large restore runs at the account's limit without its refusals reaching anyone. Labels,
/// tags and reads have limits of their own and go on `ssm` as they come.
pub struct Writer {
    ssm: aws_sdk_ssm::Client,
    paced: PacedSsm,
}

impl Writer {
    pub fn new(ssm: &aws_sdk_ssm::Client) -> Self {
        Writer {
            ssm: ssm.clone(),
            paced: PacedSsm::new(ssm),
        }
    }
}
/// `DeleteParameters` takes at most 10 names.
const DELETE_BATCH: usize = 10;

/// What happened to one planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub name: String,
    pub action: Action,
    /// Not attempted when an earlier failure stopped the run.
    pub result: Attempt<(), String>,
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
    Applier::new(ssm, keep_going, recreate_pause)
        .apply(plan)
        .await
}

/// Applies plans one after another (the parts of one restore) through one [`Writer`], whose
/// pace carries over, and one executor: without `--keep-going`, a failure in one part leaves
/// the rest of it and every later part unattempted.
pub struct Applier {
    writer: Writer,
    executor: Executor<String>,
    recreate_pause: std::time::Duration,
}

impl Applier {
    pub fn new(
        ssm: &aws_sdk_ssm::Client,
        keep_going: bool,
        recreate_pause: std::time::Duration,
    ) -> Self {
        Applier {
            writer: Writer::new(ssm),
            executor: Executor::new(keep_going),
            recreate_pause,
        }
    }

    /// Applies `plan`: its deletes (in batches), then its puts.
    pub async fn apply(&self, plan: &Plan) -> Vec<Applied> {
        apply_with(&self.writer, &self.executor, plan, self.recreate_pause).await
    }
}

async fn apply_with(
    writer: &Writer,
    executor: &Executor<String>,
    plan: &Plan,
    recreate_pause: std::time::Duration,
) -> Vec<Applied> {
    // One executor for both phases: without --keep-going a failed delete leaves the puts
    // unattempted too.
    let deletes: Vec<&PlannedChange> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    // One batch at a time.
    let deleted = executor
        .run(deletes.chunks(DELETE_BATCH), 1, |batch| async move {
            let names: Vec<String> = batch.iter().map(|c| c.name.clone()).collect();
            // Names SSM no longer has come back as InvalidParameters: already done.
            writer
                .paced
                .send(|ssm| {
                    ssm.delete_parameters()
                        .set_names(Some(names.clone()))
                        .send()
                })
                .await
                .map(|_| ())
                .map_err(|e| format!("{:#}", aws_error("DeleteParameters", &e)))
        })
        .await;
    let mut out: Vec<Applied> = deletes
        .chunks(DELETE_BATCH)
        .zip(deleted)
        .flat_map(|(batch, result)| batch.iter().map(move |c| applied(c, result.clone())))
        .collect();
    let puts: Vec<(&PlannedChange, &ParameterSnapshot)> = plan
        .changes
        .iter()
        .filter_map(|c| Some((c, c.target.as_ref()?)))
        .collect();
    let put = executor
        .run(
            puts.iter().copied(),
            PUT_CONCURRENCY,
            |(c, target)| async move {
                // The plan already knows SSM would refuse it: reported, never sent.
                match c.refused {
                    Some(reason) => Err(format!("PutParameter: not sent: {reason}")),
                    None => write(writer, c, target, recreate_pause).await,
                }
            },
        )
        .await;
    out.extend(
        puts.iter()
            .zip(put)
            .map(|(&(c, _), result)| applied(c, result)),
    );
    out
}

/// Makes one parameter what `target` says: a new version (with its labels) when more than its
/// tags differ, then its tags.
async fn write(
    w: &Writer,
    c: &PlannedChange,
    target: &ParameterSnapshot,
    recreate_pause: std::time::Duration,
) -> Result<(), String> {
    if c.writes_value() {
        let version = if c.action == Action::Replace {
            replace(w, target, recreate_pause).await?
        } else {
            put(w, target).await?
        };
        label(&w.ssm, target, version).await?;
    }
    retag(&w.ssm, &target.name, &c.tags).await
}

/// Attaches the labels the backup recorded to the version just written (moving them from
/// whichever version holds them now).
async fn label(
    ssm: &aws_sdk_ssm::Client,
    s: &ParameterSnapshot,
    version: i64,
) -> Result<(), String> {
    let Some(labels) = s.attributes.labels.as_ref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let out = ssm
        .label_parameter_version()
        .name(&s.name)
        .parameter_version(version)
        .set_labels(Some(labels.clone()))
        .send()
        .await
        .map_err(|e| format!("{:#}", aws_error("LabelParameterVersion", &e)))?;
    // SSM answers 200 and lists the labels it did not attach.
    match out.invalid_labels() {
        [] => Ok(()),
        invalid => Err(format!(
            "LabelParameterVersion: SSM did not attach {}",
            invalid.join(", ")
        )),
    }
}

/// Adds and removes tags as `edit` says.
async fn retag(ssm: &aws_sdk_ssm::Client, name: &str, edit: &TagEdit) -> Result<(), String> {
    if !edit.remove.is_empty() {
        ssm.remove_tags_from_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tag_keys(Some(edit.remove.clone()))
            .send()
            .await
            .map_err(|e| format!("{:#}", aws_error("RemoveTagsFromResource", &e)))?;
    }
    if !edit.add.is_empty() {
        let tags = edit
            .add
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("AddTagsToResource: {e}"))?;
        ssm.add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| format!("{:#}", aws_error("AddTagsToResource", &e)))?;
    }
    Ok(())
}

fn applied(change: &PlannedChange, result: Attempt<(), String>) -> Applied {
    Applied {
        name: change.name.clone(),
        action: change.action,
        result,
    }
}

/// Deletes the parameter, waits `pause`, writes `s`. A re-run after a failure between the two
/// finds the parameter absent and creates it.
async fn replace(
    w: &Writer,
    s: &ParameterSnapshot,
    pause: std::time::Duration,
) -> Result<i64, String> {
    match w
        .paced
        .send(|ssm| ssm.delete_parameter().name(&s.name).send())
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) => {}
        Err(e) => return Err(format!("{:#}", aws_error("DeleteParameter", &e))),
    }
    tokio::time::sleep(pause).await;
    put(w, s).await
}

/// How often a write refused with `TooManyUpdates` is tried, in all.
const TOO_MANY_UPDATES_ATTEMPTS: u32 = 6;

/// Writes `s`, retrying with backoff while SSM answers `TooManyUpdates` (another writer is
/// changing the same parameter: "There are concurrent updates for the resource", PutParameter
/// API reference), which the SDK does not retry as it does throttling. The version written.
async fn put(w: &Writer, s: &ParameterSnapshot) -> Result<i64, String> {
    let mut attempt = 1;
    let version = loop {
        match w.paced.send(|ssm| put_once(ssm, s)).await {
            Err(e) if e.code() == Some("TooManyUpdates") && attempt < TOO_MANY_UPDATES_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                attempt += 1;
            }
            result => break result.map_err(|e| AwsError::doing("PutParameter", &e).to_string())?,
        }
    };
    if s.attributes.data_type.as_deref() == Some(AMI_DATA_TYPE) {
        confirm(&w.ssm, s, version).await?;
    }
    Ok(version)
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
async fn put_once(
    ssm: aws_sdk_ssm::Client,
    s: &ParameterSnapshot,
) -> Result<i64, SdkError<PutParameterError, HttpResponse>> {
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
}

/// What became of one parameter, as the summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterOutcome {
    Created,
    Updated,
    Replaced,
    Deleted,
    Unchanged,
    Failed,
    NotAttempted,
}

impl Outcome for ParameterOutcome {
    const ALL: &'static [Self] = &[
        ParameterOutcome::Created,
        ParameterOutcome::Updated,
        ParameterOutcome::Replaced,
        ParameterOutcome::Deleted,
        ParameterOutcome::Unchanged,
        ParameterOutcome::Failed,
        ParameterOutcome::NotAttempted,
    ];

    fn label(self) -> &'static str {
        match self {
            ParameterOutcome::Created => "created",
            ParameterOutcome::Updated => "updated",
            ParameterOutcome::Replaced => "replaced",
            ParameterOutcome::Deleted => "deleted",
            ParameterOutcome::Unchanged => "unchanged",
            ParameterOutcome::Failed => "failed",
            ParameterOutcome::NotAttempted => "not attempted",
        }
    }

    /// Replacements and changes left unattempted are exceptional: named only when there were
    /// some.
    fn always_shown(self) -> bool {
        !matches!(
            self,
            ParameterOutcome::Replaced | ParameterOutcome::NotAttempted
        )
    }

    fn leaves_work_undone(self) -> bool {
        matches!(
            self,
            ParameterOutcome::Failed | ParameterOutcome::NotAttempted
        )
    }
}

/// Counts for the summary line.
pub type RestoreSummary = Summary<ParameterOutcome>;

impl Summary<ParameterOutcome> {
    pub fn of(applied: &[Applied], unchanged: usize) -> Self {
        let mut summary = RestoreSummary::default();
        summary.add_many(ParameterOutcome::Unchanged, unchanged);
        for a in applied {
            summary.add(match (&a.result, a.action) {
                (Attempt::NotAttempted, _) => ParameterOutcome::NotAttempted,
                (Attempt::Failed(_), _) => ParameterOutcome::Failed,
                (Attempt::Succeeded(()), Action::Create) => ParameterOutcome::Created,
                (Attempt::Succeeded(()), Action::Update) => ParameterOutcome::Updated,
                (Attempt::Succeeded(()), Action::Delete) => ParameterOutcome::Deleted,
                (Attempt::Succeeded(()), Action::Replace) => ParameterOutcome::Replaced,
            });
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(action: Action, result: Attempt<(), String>) -> Applied {
        Applied {
            name: "/app/x".to_owned(),
            action,
            result,
        }
    }

    #[test]
    fn the_summary_line_shows_replaced_and_not_attempted_only_when_there_are_some() {
        let ok = || Attempt::Succeeded(());
        let clean = RestoreSummary::of(
            &[
                applied(Action::Create, ok()),
                applied(Action::Update, ok()),
                applied(Action::Update, ok()),
                applied(Action::Delete, ok()),
            ],
            5,
        );
        assert_eq!(
            clean.to_string(),
            "created 1, updated 2, deleted 1, unchanged 5, failed 0"
        );
        assert_eq!(clean.exit_code(), crate::common::exit::ExitCode::Success);

        let partial = RestoreSummary::of(
            &[
                applied(Action::Replace, ok()),
                applied(
                    Action::Delete,
                    Attempt::Failed("DeleteParameters: x".to_owned()),
                ),
                applied(Action::Create, Attempt::NotAttempted),
                applied(Action::Replace, Attempt::NotAttempted),
            ],
            0,
        );
        assert_eq!(
            partial.to_string(),
            "created 0, updated 0, deleted 0, unchanged 0, failed 1, replaced 1, not attempted 2"
        );
        assert_eq!(partial.exit_code(), crate::common::exit::ExitCode::Partial);
    }

    #[test]
    fn the_summary_json_has_every_count_zeros_too() {
        let summary = RestoreSummary::of(
            &[
                applied(Action::Update, Attempt::Succeeded(())),
                applied(
                    Action::Create,
                    Attempt::Failed("PutParameter: x".to_owned()),
                ),
            ],
            3,
        );
        assert_eq!(
            summary.to_json(),
            serde_json::json!({
                "created": 0, "updated": 1, "replaced": 0, "deleted": 0,
                "unchanged": 3, "failed": 1, "not_attempted": 0,
            })
        );
    }
}
