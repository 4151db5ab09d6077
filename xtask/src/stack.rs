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
        let aws = Aws::connect(args.region.clone(), "deploy").await?;
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

/// The stack's status, or `None` when there is no such stack.
pub(crate) async fn status(aws: &Aws, stack: &str) -> anyhow::Result<Option<StackStatus>> {
    match aws.cfn.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out.stacks().first().and_then(|s| s.stack_status().cloned())),
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => Ok(None),
        Err(e) => Err(describe(&format!("describing stack {stack}"), &e)),
    }
}

async fn describe_stack(
    aws: &Aws,
    stack: &str,
) -> anyhow::Result<aws_sdk_cloudformation::types::Stack> {
    let out = aws
        .cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| describe(&format!("describing stack {stack}"), &e))?;
    out.stacks()
        .first()
        .cloned()
        .ok_or_else(|| anyhow::format_err!("stack {stack} does not exist"))
}

pub(crate) async fn outputs(aws: &Aws, stack: &str) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(describe_stack(aws, stack)
        .await?
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// The stack's current parameter values.
pub(crate) async fn parameters(aws: &Aws, stack: &str) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(describe_stack(aws, stack)
        .await?
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_owned(),
                p.parameter_value()?.to_owned(),
            ))
        })
        .collect())
}

pub(crate) async fn print_outputs(aws: &Aws, stack: &str) -> anyhow::Result<()> {
    for (k, v) in outputs(aws, stack).await? {
        println!("{k}\t{v}");
    }
    Ok(())
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

/// Prints the stack's events from `since` until it settles; fails on a failure or rollback.
pub(crate) async fn follow(
    aws: &Aws,
    stack: &str,
    since: DateTime,
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
                // Newest first: stop at the first event from before this operation.
                if event.timestamp().is_some_and(|t| t.secs() < since.secs()) {
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
            Some(s) if is_failure(&s) => bail!("stack {stack} ended {}", s.as_str()),
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
    let described = describe_stack(aws, stack).await?;
    let bucket = outputs(aws, stack).await?.get("Bucketname").cloned();
    // A deleted stack is found by its id only.
    let id = described.stack_id().unwrap_or(stack).to_owned();
    let since = DateTime::from(std::time::SystemTime::now());
    aws.cfn
        .delete_stack()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| describe(&format!("deleting stack {stack}"), &e))?;
    follow(aws, &id, since, Instant::now() + Duration::from_secs(1800)).await?;
    if let Some(bucket) = bucket {
        eprintln!("the backup bucket {bucket} is retained with every backup in it; delete it yourself when you no longer need them");
    }
    Ok(())
}
