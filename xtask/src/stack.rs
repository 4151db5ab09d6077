//! `cargo xtask outputs|bucketname|lambdaname|status|delete STACK`, and the stack helpers
//! `deploy` uses.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::bail;
use aws_sdk_cloudformation::primitives::DateTime;
use aws_sdk_cloudformation::types::StackStatus;
use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::aws::{describe, Aws};

#[derive(clap::Args)]
pub(crate) struct StackArgs {
    /// The stack's name.
    stack: String,
    /// AWS region (default: the standard chain).
    #[arg(short, long)]
    region: Option<String>,
}

#[derive(Clone, Copy)]
pub(crate) enum Query {
    Outputs,
    Bucketname,
    Lambdaname,
    Status,
    Delete,
}

pub(crate) fn run(query: Query, args: &StackArgs) -> anyhow::Result<()> {
    crate::aws::block_on(async {
        // Deleting is not the CI deployer's to do (policies/iam/deployer.json has no
        // DeleteStack): an operator's, recorded apart.
        let component = match query {
            Query::Delete => "stack-admin",
            _ => "deploy",
        };
        let aws = Aws::connect(args.region.clone(), component).await?;
        let name = &args.stack;
        match query {
            Query::Outputs => print_outputs(&aws, name).await,
            Query::Bucketname => print_output(&aws, name, "Bucketname").await,
            Query::Lambdaname => print_output(&aws, name, "LambdaName").await,
            Query::Status => match status(&aws, name).await? {
                Some(s) => {
                    println!("{}", s.as_str());
                    Ok(())
                }
                None => bail!("stack {name} does not exist"),
            },
            Query::Delete => delete_stack(&aws, name).await,
        }
    })?
}

/// What one `DescribeStacks` answer says of a stack: every caller that needs more than one of
/// these reads them from one request.
#[derive(Debug, Clone)]
pub(crate) struct StackInfo {
    pub(crate) id: Option<String>,
    pub(crate) status: Option<StackStatus>,
    pub(crate) parameters: BTreeMap<String, String>,
    pub(crate) outputs: BTreeMap<String, String>,
    pub(crate) tags: BTreeMap<String, String>,
    /// The CloudFormation service role the stack is driven through, if any.
    pub(crate) role_arn: Option<String>,
}

impl StackInfo {
    fn of(s: &aws_sdk_cloudformation::types::Stack) -> Self {
        let pairs = |pairs: Vec<Option<(&str, &str)>>| {
            pairs
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        StackInfo {
            id: s.stack_id().map(str::to_owned),
            status: s.stack_status().cloned(),
            parameters: pairs(
                s.parameters()
                    .iter()
                    .map(|p| p.parameter_key().zip(p.parameter_value()))
                    .collect(),
            ),
            outputs: pairs(
                s.outputs()
                    .iter()
                    .map(|o| o.output_key().zip(o.output_value()))
                    .collect(),
            ),
            tags: pairs(s.tags().iter().map(|t| t.key().zip(t.value())).collect()),
            role_arn: s.role_arn().map(str::to_owned),
        }
    }

    /// Whether the stack is there to update (a deleted one is still described by its id).
    pub(crate) fn exists(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| *s != StackStatus::DeleteComplete)
    }
}

/// The stack, or `None` when there is no such stack.
pub(crate) async fn info(aws: &Aws, stack: &str) -> anyhow::Result<Option<StackInfo>> {
    match aws.cfn.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out.stacks().first().map(StackInfo::of)),
        // CloudFormation's code for a missing stack is the generic ValidationError: its
        // message is what tells (the AWS CLI decides the same way).
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => Ok(None),
        Err(e) => Err(describe(&format!("describing stack {stack}"), &e)),
    }
}

/// The stack, which must exist.
pub(crate) async fn existing(aws: &Aws, stack: &str) -> anyhow::Result<StackInfo> {
    info(aws, stack)
        .await?
        .ok_or_else(|| anyhow::format_err!("stack {stack} does not exist"))
}

/// The stack's status, or `None` when there is no such stack.
pub(crate) async fn status(aws: &Aws, stack: &str) -> anyhow::Result<Option<StackStatus>> {
    Ok(info(aws, stack).await?.and_then(|s| s.status))
}

pub(crate) async fn outputs(aws: &Aws, stack: &str) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(existing(aws, stack).await?.outputs)
}

/// The stack's resources, as (logical id, resource type) pairs.
#[cfg(test)]
pub(crate) async fn resources(aws: &Aws, stack: &str) -> anyhow::Result<Vec<(String, String)>> {
    use anyhow::Context;
    let described = aws
        .cfn
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .with_context(|| format!("describing the resources of stack {stack}"))?;
    Ok(described
        .stack_resources()
        .iter()
        .map(|r| {
            let id = r.logical_resource_id().unwrap_or_default().to_owned();
            (id, r.resource_type().unwrap_or_default().to_owned())
        })
        .collect())
}

pub(crate) async fn print_outputs(aws: &Aws, stack: &str) -> anyhow::Result<()> {
    print(&outputs(aws, stack).await?);
    Ok(())
}

/// Outputs already read, one `Key<TAB>Value` line each.
pub(crate) fn print(outputs: &BTreeMap<String, String>) {
    for (k, v) in outputs {
        println!("{k}\t{v}");
    }
}

async fn print_output(aws: &Aws, stack: &str, key: &str) -> anyhow::Result<()> {
    match outputs(aws, stack).await?.get(key) {
        Some(v) => {
            println!("{v}");
            Ok(())
        }
        None => bail!("stack {stack} has no {key} output: is it an ssmbak stack?"),
    }
}

fn is_failure(status: &StackStatus) -> bool {
    let s = status.as_str();
    s.ends_with("_FAILED") || s.contains("ROLLBACK")
}

/// One stack operation: its `ClientRequestToken`, and when it was started (for events that
/// carry no token, as the emulator's).
pub(crate) struct Operation {
    pub(crate) token: String,
    pub(crate) since: DateTime,
}

impl Operation {
    /// A new operation: a token unique to this run (CloudFormation: at most 128 characters of
    /// `[a-zA-Z0-9][-a-zA-Z0-9]*`).
    pub(crate) fn start(what: &str) -> Self {
        let now = std::time::SystemTime::now();
        let ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Operation {
            token: format!("ssmbak-{what}-{ms}-{}", std::process::id()),
            since: DateTime::from(now),
        }
    }

    /// Whether an event is this operation's: by its token when it has one (clocks may be off),
    /// else by its time.
    fn owns(&self, token: Option<&str>, time: Option<&DateTime>) -> bool {
        match token {
            Some(t) => t == self.token,
            None => time.is_none_or(|t| t.secs() >= self.since.secs()),
        }
    }
}

/// One line of advice for a stack left in a state a deploy cannot go on from.
pub(crate) fn advice(stack: &str, status: &StackStatus) -> Option<String> {
    Some(match status {
        StackStatus::RollbackComplete => format!(
            "stack {stack} is ROLLBACK_COMPLETE after a failed create: delete it (cargo xtask delete {stack}) and deploy again"
        ),
        StackStatus::ReviewInProgress => format!(
            "stack {stack} is REVIEW_IN_PROGRESS: a change set was created and never executed; execute or delete it (or delete the stack), then deploy again"
        ),
        StackStatus::UpdateRollbackFailed => format!(
            "stack {stack} is UPDATE_ROLLBACK_FAILED: fix what its events name, run `aws cloudformation continue-update-rollback --stack-name {stack}`, then deploy again"
        ),
        StackStatus::DeleteFailed => format!(
            "stack {stack} is DELETE_FAILED: remove what its events say could not be deleted, delete it again (cargo xtask delete {stack}), then deploy"
        ),
        s if s.as_str().ends_with("_IN_PROGRESS") => {
            format!("stack {stack} is busy ({}): try again when it settles", s.as_str())
        }
        _ => return None,
    })
}

/// Prints the operation's events until the stack settles; fails on a failure or rollback.
pub(crate) async fn follow(
    aws: &Aws,
    stack: &str,
    operation: &Operation,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    loop {
        let mut new = Vec::new();
        let mut pages = aws
            .cfn
            .describe_stack_events()
            .stack_name(stack)
            .into_paginator()
            .send();
        'pages: while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                // Gone (deleted, and this emulator forgets deleted stacks): no more events.
                Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => break 'pages,
                Err(e) => return Err(describe(&format!("reading events of {stack}"), &e)),
            };
            for event in page.stack_events() {
                // Newest first: stop at the first event of an earlier operation.
                if !operation.owns(event.client_request_token(), event.timestamp()) {
                    break 'pages;
                }
                if let Some(id) = event.event_id() {
                    if seen.insert(id.to_owned()) {
                        new.push(event.clone());
                    }
                }
            }
        }
        for e in new.iter().rev() {
            eprintln!(
                "{}  {:<28} {:<28} {:<32} {}",
                e.timestamp().map(|t| t.to_string()).unwrap_or_default(),
                e.resource_status().map(|s| s.as_str()).unwrap_or_default(),
                e.logical_resource_id().unwrap_or_default(),
                e.resource_type().unwrap_or_default(),
                e.resource_status_reason().unwrap_or_default()
            );
        }
        match status(aws, stack).await? {
            None => return Ok(()), // deleted
            Some(s) if s.as_str().ends_with("_IN_PROGRESS") => {}
            Some(StackStatus::DeleteComplete) => return Ok(()),
            Some(s) if is_failure(&s) => match advice(stack, &s) {
                Some(line) => bail!("{line}"),
                None => bail!("stack {stack} ended {}", s.as_str()),
            },
            Some(s) => {
                eprintln!("stack {stack}: {}", s.as_str());
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("stack {stack} did not settle in time; it goes on in CloudFormation");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

pub(crate) async fn delete_stack(aws: &Aws, stack: &str) -> anyhow::Result<()> {
    let described = existing(aws, stack).await?;
    let bucket = described.outputs.get("Bucketname").cloned();
    // A deleted stack is found by its id only.
    let id = described.id.unwrap_or_else(|| stack.to_owned());
    let operation = Operation::start("delete");
    aws.cfn
        .delete_stack()
        .stack_name(stack)
        .client_request_token(&operation.token)
        .send()
        .await
        .map_err(|e| describe(&format!("deleting stack {stack}"), &e))?;
    follow(
        aws,
        &id,
        &operation,
        Instant::now() + Duration::from_secs(1800),
    )
    .await?;
    if let Some(bucket) = bucket {
        eprintln!("the backup bucket {bucket} is retained with every backup in it; delete it yourself when you no longer need them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_owns_its_events_by_token_then_by_time() {
        let op = Operation::start("deploy");
        let before = DateTime::from_secs(op.since.secs() - 60);
        assert!(
            op.owns(Some(op.token.as_str()), Some(&before)),
            "the token wins over a skewed clock"
        );
        assert!(
            !op.owns(Some("ssmbak-deploy-1-1"), Some(&op.since)),
            "another operation's"
        );
        assert!(op.owns(None, Some(&op.since)));
        assert!(!op.owns(None, Some(&before)));
    }

    #[test]
    fn odd_states_get_one_line_of_advice() {
        for (status, needle) in [
            (StackStatus::RollbackComplete, "delete it"),
            (StackStatus::ReviewInProgress, "change set"),
            (
                StackStatus::UpdateRollbackFailed,
                "continue-update-rollback",
            ),
            (StackStatus::DeleteFailed, "delete it again"),
            (StackStatus::UpdateInProgress, "busy"),
        ] {
            let line = advice("s", &status).unwrap_or_default();
            assert!(
                line.contains(needle) && !line.contains('\n'),
                "{status:?}: {line}"
            );
        }
        assert_eq!(advice("s", &StackStatus::UpdateComplete), None);
    }
}
