//! What each `ssmbak` command does: connect, build the request, plan, execute, report.

use anyhow::Context;
use futures::channel::mpsc;
use futures::StreamExt;

use super::apply::{self, RestoreSummary};
use super::cli::{Cli, Command, Common, Elsewhere, Target};
use super::export::Export;
use super::grep::{self, GrepRequest};
use super::report as output;
use super::scope::Scope;
use super::session::{self, Remap, Session};
use crate::common::bucket;
use crate::common::execute::Attempt;
use crate::common::exit::{ExitCode, UsageError};
use crate::common::output::Format;
use ssmbak_core::client::{self, ClientOptions, WithoutRetryQuota};
use ssmbak_core::plan::Plan;
use ssmbak_core::reader::BucketReader;

/// Parts of a restore's plan written at once (see `restore`).
const PARTS_IN_FLIGHT: usize = 4;

/// Components, as `policies/iam/operator-*.json` know them.
const PREVIEW: &str = "operator-preview";
const RESTORE: &str = "operator-restore";
/// A restore elsewhere has two sides, each with its own policy (the destination may be
/// another account).
const RESTORE_SOURCE: &str = "operator-restore-source";
const RESTORE_DESTINATION: &str = "operator-restore-destination";

/// The components of the reading side and the SSM side of `component`, written `elsewhere`.
fn sides(component: &'static str, elsewhere: &Elsewhere) -> (&'static str, &'static str) {
    match (component, elsewhere.is_set()) {
        (RESTORE, true) => (RESTORE_SOURCE, RESTORE_DESTINATION),
        _ => (component, component),
    }
}

fn client_options(common: &Common) -> ClientOptions {
    ClientOptions {
        region: common.region.clone(),
        profile: common.profile.clone(),
        endpoint_url: common.endpoint_url.clone(),
        max_attempts: 8,
        adaptive_retry: true,
        ..ClientOptions::default()
    }
}

/// Clients for `component` (the name the least-privilege check knows it by); SSM's in
/// `elsewhere` when it is set.
async fn connect(
    common: &Common,
    elsewhere: &Elsewhere,
    component: &'static str,
) -> anyhow::Result<Session> {
    let (component, ssm_component) = sides(component, elsewhere);
    let options = client_options(common);
    let sdk = client::load(&options).await?;
    if common.verbose {
        eprintln!(
            "region {}",
            sdk.region().map(|r| r.as_ref()).unwrap_or_default()
        );
    }
    let ssm = client::ssm(&sdk, component).without_retry_quota();
    let owner = bucket::owner(&sdk, common.bucket_owner.as_deref(), component).await?;
    let s3 = client::owned_by(&client::s3(&sdk, component), &owner).without_retry_quota();
    let mut cfn = aws_sdk_cloudformation::config::Builder::from(&sdk);
    if let Some(r) = ssmbak_core::record::recorder(component) {
        cfn = cfn.interceptor(r);
    }
    let cfn = aws_sdk_cloudformation::Client::from_conf(cfn.build());
    let stack = common.stack.as_deref().map(|s| (&cfn, s));
    let bucket = bucket::resolve(common.bucket.clone(), stack, &ssm, common.verbose).await?;
    bucket::check_versioned(&s3, &bucket, Some(&owner)).await?;
    // The bucket was found with the caller's own SSM; plans and writes go to the destination's.
    let ssm = match elsewhere.is_set() {
        true => ssm_elsewhere(&options, elsewhere, ssm_component).await?,
        false => ssm,
    };
    Ok(Session {
        ssm,
        reader: BucketReader::new(s3, bucket),
        same_ssm: !elsewhere.is_set(),
    })
}

/// SSM where plans are made and written: the caller's own, or the one `elsewhere` names (said
/// on stderr, so nobody writes to the wrong place unawares).
async fn ssm_elsewhere(
    options: &ClientOptions,
    elsewhere: &Elsewhere,
    component: &'static str,
) -> anyhow::Result<aws_sdk_ssm::Client> {
    let there = client::load(&ClientOptions {
        region: elsewhere.to_region.clone(),
        // Another region with the same credentials keeps --profile.
        profile: elsewhere
            .to_profile
            .clone()
            .or_else(|| options.profile.clone()),
        ..options.clone()
    })
    .await?;
    let region = there.region().map(|r| r.to_string()).unwrap_or_default();
    let profile = elsewhere
        .to_profile
        .as_deref()
        .map(|p| format!(", profile {p}"))
        .unwrap_or_default();
    eprintln!("SSM in {region}{profile}");
    Ok(client::ssm(&there, component).without_retry_quota())
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("JSON output")?
    );
    Ok(())
}

/// Prints a report in the format asked for: the table (nothing when there is nothing to show)
/// or the JSON.
fn print_report(
    format: Format,
    table: impl FnOnce() -> Option<String>,
    json: impl FnOnce() -> serde_json::Value,
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            if let Some(table) = table() {
                println!("{table}");
            }
            Ok(())
        }
        Format::Json => print_json(&json()),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Preview(target) => {
            let session = connect(&target.common, &target.elsewhere, PREVIEW).await?;
            let scope = Scope::new(&target.path, target.recursive);
            let remap = Remap {
                no_tags: target.no_tags,
                ..Remap::default()
            };
            let plan = session.plan(&scope, target.checktime, &remap).await?;
            let c = &target.common;
            print_report(
                c.output,
                || output::plan_table(&plan, c.show_secrets),
                || {
                    output::plan_json(
                        &plan,
                        session.reader.bucket(),
                        target.checktime,
                        c.show_secrets,
                    )
                },
            )?;
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
            let session = connect(&common, &Elsewhere::default(), PREVIEW).await?;
            let scope = Scope::new(&path, recursive);
            let (plan, after) = session.diff(&scope, t1, t2).await?;
            let secrets = common.show_secrets;
            print_report(
                common.output,
                || output::diff_table(&plan, &after, secrets),
                || output::diff_json(&plan, &after, t1, t2, secrets),
            )?;
            Ok(ExitCode::Success)
        }
        Command::Log { key, common } => {
            let session = connect(&common, &Elsewhere::default(), PREVIEW).await?;
            let key = ssmbak_core::format::object_key(&key);
            let history = session.history(&key).await?;
            let secrets = common.show_secrets;
            print_report(
                common.output,
                || output::log_table(&history, secrets),
                || output::log_json(&key, &history, secrets),
            )?;
            Ok(ExitCode::Success)
        }
        Command::Grep {
            pattern,
            path,
            recursive,
            since,
            until,
            fields,
            common,
        } => {
            let pattern = regex::Regex::new(&pattern).map_err(|e| {
                // The parser's message spans lines, with a caret under the fault.
                let one_line = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                UsageError(format!("PATTERN: {one_line}"))
            })?;
            if since.zip(until).is_some_and(|(s, u)| u < s) {
                return Err(UsageError("--until is before --since".to_owned()).into());
            }
            let session = connect(&common, &Elsewhere::default(), PREVIEW).await?;
            let scope = Scope::new(&path, recursive);
            let request = GrepRequest {
                pattern,
                since,
                until,
                fields,
            };
            let found = grep::grep(&session, &scope, &request).await?;
            let secrets = common.show_secrets;
            print_report(
                common.output,
                || output::grep_table(&found, secrets),
                || output::grep_json(&found, secrets),
            )?;
            if found.is_empty() && common.output == Format::Table {
                eprintln!("no match");
            }
            Ok(ExitCode::Success)
        }
        Command::Export {
            path,
            checktime,
            recursive,
            format,
            outfile,
            common,
        } => {
            let session = connect(&common, &Elsewhere::default(), PREVIEW).await?;
            let scope = Scope::new(&path, recursive);
            let states = session.backups_at(&scope, checktime).await?;
            let export = Export::of(
                session.reader.bucket(),
                scope.prefix(),
                checktime,
                &states,
                common.show_secrets,
            );
            // Only a dotenv export of masked secrets fails: asked for what it cannot hold.
            let text = export
                .render(format)
                .map_err(|e| UsageError(e.to_string()))?;
            match outfile {
                None => print!("{text}"),
                Some(file) => write_private(&file, &text)?,
            }
            Ok(ExitCode::Success)
        }
        Command::Import {
            file,
            to,
            key_id,
            no_tags,
            dry_run,
            keep_going,
            elsewhere,
            common,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let export = Export::parse(&text).map_err(|e| UsageError(e.to_string()))?;
            let tree = export.path.ends_with('/');
            if let Some(to) = to.as_deref().filter(|to| to.ends_with('/') != tree) {
                return Err(UsageError(format!(
                    "--to {to}: an exported path imports to a path (ending in /), a key to a key"
                ))
                .into());
            }
            let to = to.map(|t| ssmbak_core::format::object_key(&t));
            let (at, states) = export
                .states(to.as_deref())
                .map_err(|e| UsageError(e.to_string()))?;
            let options = client_options(&common);
            // An import reads no bucket: -r names the region it writes to.
            let elsewhere = Elsewhere {
                to_region: elsewhere.to_region.or(common.region.clone()),
                ..elsewhere
            };
            let ssm = match elsewhere.is_set() {
                true => ssm_elsewhere(&options, &elsewhere, RESTORE_DESTINATION).await?,
                false => client::ssm(&client::load(&options).await?, RESTORE).without_retry_quota(),
            };
            let scope = Scope::new(to.as_deref().unwrap_or(&export.path), true);
            let remap = Remap {
                to: None,
                key_id,
                no_tags,
            };
            let plan = session::plan_into(&ssm, &scope, states, &remap).await?;
            let json = || output::plan_json(&plan, &export.bucket, at, common.show_secrets);
            if dry_run {
                print_report(
                    common.output,
                    || output::plan_table(&plan, common.show_secrets),
                    json,
                )?;
                return Ok(ExitCode::Success);
            }
            let pause = apply::RECREATE_PAUSE;
            apply_plan(&ssm, &plan, &common, keep_going, pause, json()).await
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ssmbak", &mut std::io::stdout());
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
    let session = connect(c, &target.elsewhere, RESTORE).await?;
    let remap = Remap {
        to,
        key_id,
        no_tags: target.no_tags,
    };
    // Planned and written part by part: the writes start while the rest is planned, so a
    // large restore takes about as long as its writes alone at SSM's rate.
    let applier = &apply::Applier::new(&session.ssm, keep_going, recreate_pause);
    let (parts, received) = mpsc::channel(1);
    let applying = async {
        let mut plan = Plan::default();
        let mut applied = Vec::new();
        // A few parts written at once, so that a replacement's pause (30 s between delete and
        // create) holds up only its own part; the writer's pace bounds the rate whatever the
        // number in flight.
        let mut written = received
            .map(|part| async move {
                let applied = applier.apply(&part).await;
                (part, applied)
            })
            .buffered(PARTS_IN_FLIGHT);
        while let Some((part, part_applied)) = written.next().await {
            applied.extend(part_applied);
            plan.extend(part);
        }
        (plan, applied)
    };
    let planning = session.plan_parts(
        &scope,
        target.checktime,
        &remap,
        session::PLANS_IN_FLIGHT_WRITING,
        parts,
    );
    let (planned, (plan, applied)) = tokio::join!(planning, applying);
    if planned.is_err() && applied.is_empty() {
        return planned.map(|()| ExitCode::Success);
    }
    let json = output::plan_json(
        &plan,
        session.reader.bucket(),
        target.checktime,
        c.show_secrets,
    );
    let reported = report_applied(&plan, &applied, c, json)?;
    // What was written before an error is reported; a re-run plans the rest again.
    planned
        .context("the restore stopped part-way: what was written is reported above, and running it again finishes it")
        .map(|()| reported)
}

/// The end of `import`: applies the plan and reports what became of each change (`plan_json`
/// gains the summary).
async fn apply_plan(
    ssm: &aws_sdk_ssm::Client,
    plan: &Plan,
    c: &Common,
    keep_going: bool,
    recreate_pause: std::time::Duration,
    plan_json: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    let applied = apply::apply(ssm, plan, keep_going, recreate_pause).await;
    report_applied(plan, &applied, c, plan_json)
}

/// The report of a restore or import, once written: the plan's table, each failure by name
/// on stderr, and the summary, on its own line or in `plan_json`, printed whole.
fn report_applied(
    plan: &Plan,
    applied: &[apply::Applied],
    c: &Common,
    mut plan_json: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    if c.output == Format::Table {
        if let Some(table) = output::plan_table(plan, c.show_secrets) {
            println!("{table}");
        }
    }
    let summary = RestoreSummary::of(applied, plan.unchanged);
    for a in applied {
        if let Attempt::Failed(e) = &a.result {
            eprintln!("failed: {} ({}): {e}", a.name, a.action.as_str());
        }
    }
    match c.output {
        Format::Table => println!("{summary}"),
        Format::Json => {
            plan_json["summary"] = summary.to_json();
            print_json(&plan_json)?;
        }
    }
    Ok(summary.exit_code())
}

/// Writes `text` to `file`, readable by its owner only: an export may hold secrets.
fn write_private(file: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut out = open
        .open(file)
        .with_context(|| format!("writing {}", file.display()))?;
    // `mode` applies only when the file is created: an existing one keeps its mode otherwise.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        out.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    std::io::Write::write_all(&mut out, text.as_bytes())
        .with_context(|| format!("writing {}", file.display()))
}
