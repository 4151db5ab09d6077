//! `ssmbak`'s arguments and what each command does with them.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use super::apply::{self, RestoreSummary};
use super::report as output;
use super::scope::Scope;
use super::session::{Remap, Session};
use crate::common::bucket;
use crate::common::execute::Attempt;
use crate::common::exit::{self, ExitCode, UsageError};
use crate::common::output::Format;
use ssmbak_core::client::{self, ClientOptions};
use ssmbak_core::reader::BucketReader;

#[derive(Parser)]
#[command(
    name = "ssmbak",
    version,
    about = "Preview and restore SSM parameters as they were at a point in time",
    after_help = concat!(
        "CHECKTIME: YYYY-MM-DDTHH:MM:SS (UTC), RFC 3339 (2026-11-27T09:15:00Z, …+01:00), \"2h ago\", \"now\".\n",
        crate::path_rule!(),
        "\nExit codes: 0 done (also nothing to do), 1 AWS or runtime failure, 2 usage, \
         3 restore applied only part of its plan, 130 interrupted."
    )
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a restore would change in SSM (nothing is written).
    Preview(Target),
    /// Bring SSM back to the state at CHECKTIME.
    Restore {
        #[command(flatten)]
        target: Target,
        /// Write under another path instead (e.g. a prod tree into staging): PATH's part is
        /// replaced by this prefix.
        #[arg(long, value_name = "PREFIX")]
        to: Option<String>,
        /// Encrypt restored SecureStrings with this KMS key (id, ARN or alias).
        #[arg(long, value_name = "KMS")]
        key_id: Option<String>,
        /// Apply the rest of the plan when one parameter fails (exit code 3 then).
        #[arg(long)]
        keep_going: bool,
        /// Seconds a replacement waits between deleting and creating a parameter (SSM asks
        /// for 30).
        #[arg(long, default_value_t = apply::RECREATE_PAUSE.as_secs(), hide = true)]
        recreate_pause: u64,
    },
    /// What changed between T1 and T2 (or now, in SSM).
    Diff {
        /// A parameter name, or a path ending in `/`.
        path: String,
        #[arg(value_parser = exit::parse_checktime)]
        t1: i64,
        /// The later point; SSM as it is now when left out.
        #[arg(value_parser = exit::parse_checktime)]
        t2: Option<i64>,
        #[arg(short = 'R', long)]
        recursive: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Every backed-up version of one parameter.
    Log {
        /// The parameter name.
        key: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Target {
    /// A parameter name, or a path ending in `/` (direct children; all depths with -R).
    path: String,
    /// The point in time (see below).
    #[arg(value_parser = exit::parse_checktime)]
    checktime: i64,
    /// Recurse into sub-paths (only for a path ending in `/`).
    #[arg(short = 'R', long)]
    recursive: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct Common {
    /// AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's).
    #[arg(short, long)]
    region: Option<String>,
    /// The backup bucket (default: SSMBAK_BUCKET, else the SSM parameter /newvoll/ssmbak/bucketname).
    #[arg(short, long)]
    bucket: Option<String>,
    /// Read the bucket from this ssmbak stack's outputs.
    #[arg(long, conflicts_with = "bucket")]
    stack: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Show SecureString values instead of masking them.
    #[arg(long)]
    show_secrets: bool,
    /// Say where the region and bucket came from.
    #[arg(short, long)]
    verbose: bool,
}

/// Components, as `policies/iam/operator-*.json` know them.
const PREVIEW: &str = "operator-preview";
const RESTORE: &str = "operator-restore";

/// Clients for `component` (the name the least-privilege check knows it by).
async fn connect(common: &Common, component: &'static str) -> anyhow::Result<Session> {
    let options = ClientOptions {
        region: common.region.clone(),
        max_attempts: 8,
        adaptive_retry: true,
        ..ClientOptions::default()
    };
    let sdk = client::load(&options).await?;
    if common.verbose {
        eprintln!(
            "region {}",
            sdk.region().map(|r| r.as_ref()).unwrap_or_default()
        );
    }
    let ssm = client::ssm(&sdk, component);
    let s3 = client::s3(&sdk, component);
    let mut cfn = aws_sdk_cloudformation::config::Builder::from(&sdk);
    if let Some(r) = ssmbak_core::record::recorder(component) {
        cfn = cfn.interceptor(r);
    }
    let cfn = aws_sdk_cloudformation::Client::from_conf(cfn.build());
    let stack = common.stack.as_deref().map(|s| (&cfn, s));
    let bucket = bucket::resolve(common.bucket.clone(), stack, &ssm, common.verbose).await?;
    bucket::check_versioned(&s3, &bucket).await?;
    Ok(Session {
        ssm,
        reader: BucketReader::new(s3, bucket),
    })
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("JSON output")?
    );
    Ok(())
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Preview(target) => {
            let session = connect(&target.common, PREVIEW).await?;
            let scope = Scope::new(&target.path, target.recursive);
            let plan = session
                .plan(&scope, target.checktime, &Remap::default())
                .await?;
            let c = &target.common;
            match c.output {
                Format::Table => {
                    if let Some(table) = output::plan_table(&plan, c.show_secrets) {
                        println!("{table}");
                    }
                }
                Format::Json => print_json(&output::plan_json(
                    &plan,
                    session.reader.bucket(),
                    target.checktime,
                    c.show_secrets,
                ))?,
            }
            Ok(ExitCode::Success)
        }
        Command::Restore {
            target,
            to,
            key_id,
            keep_going,
            recreate_pause,
        } => {
            let pause = std::time::Duration::from_secs(recreate_pause);
            restore(target, to, key_id, keep_going, pause).await
        }
        Command::Diff {
            path,
            t1,
            t2,
            recursive,
            common,
        } => {
            if t2.is_some_and(|t2| t2 < t1) {
                return Err(UsageError("T2 is before T1".to_owned()).into());
            }
            let session = connect(&common, PREVIEW).await?;
            let scope = Scope::new(&path, recursive);
            let (plan, after) = session.diff(&scope, t1, t2).await?;
            match common.output {
                Format::Table => {
                    if let Some(table) = output::diff_table(&plan, &after, common.show_secrets) {
                        println!("{table}");
                    }
                }
                Format::Json => print_json(&output::diff_json(
                    &plan,
                    &after,
                    t1,
                    t2,
                    common.show_secrets,
                ))?,
            }
            Ok(ExitCode::Success)
        }
        Command::Log { key, common } => {
            let session = connect(&common, PREVIEW).await?;
            let key = ssmbak_core::format::object_key(&key);
            let history = session.history(&key).await?;
            match common.output {
                Format::Table => {
                    if let Some(table) = output::log_table(&history, common.show_secrets) {
                        println!("{table}");
                    }
                }
                Format::Json => print_json(&output::log_json(&key, &history, common.show_secrets))?,
            }
            Ok(ExitCode::Success)
        }
    }
}

async fn restore(
    target: Target,
    to: Option<String>,
    key_id: Option<String>,
    keep_going: bool,
    recreate_pause: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let c = &target.common;
    let scope = Scope::new(&target.path, target.recursive);
    if let Some(to) = &to {
        if matches!(scope, Scope::Path { .. }) != to.ends_with('/') {
            return Err(UsageError(format!(
                "--to {to}: a path restores to a path (ending in /), a key to a key"
            ))
            .into());
        }
    }
    let session = connect(c, RESTORE).await?;
    let remap = Remap { to, key_id };
    let plan = session.plan(&scope, target.checktime, &remap).await?;
    if c.output == Format::Table {
        if let Some(table) = output::plan_table(&plan, c.show_secrets) {
            println!("{table}");
        }
    }
    let applied = apply::apply(&session.ssm, &plan, keep_going, recreate_pause).await;
    let summary = RestoreSummary::of(&applied, plan.unchanged);
    for a in &applied {
        if let Attempt::Failed(e) = &a.result {
            eprintln!("failed: {} ({}): {e}", a.name, a.action.as_str());
        }
    }
    match c.output {
        Format::Table => println!("{summary}"),
        Format::Json => {
            let mut json = output::plan_json(
                &plan,
                session.reader.bucket(),
                target.checktime,
                c.show_secrets,
            );
            json["summary"] = summary.to_json();
            print_json(&json)?;
        }
    }
    Ok(summary.exit_code())
}
