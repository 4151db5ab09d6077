//! `ssmbak`'s arguments and what each command does with them.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use super::apply::{self, RestoreSummary};
use super::export::{self, Export};
use super::grep::{self, GrepRequest};
use super::report as output;
use super::scope::Scope;
use super::session::{self, Remap, Session};
use crate::common::bucket;
use crate::common::execute::Attempt;
use crate::common::exit::{self, ExitCode, UsageError};
use crate::common::output::Format;
use ssmbak_core::client::{self, ClientOptions};
use ssmbak_core::plan::Plan;
use ssmbak_core::reader::BucketReader;

#[derive(Parser)]
#[command(
    name = "ssmbak",
    version,
    about = "Preview and restore SSM parameters as they were at a point in time",
    after_help = concat!(
        crate::checktime_rule!(),
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
    #[command(after_help = crate::command_help!(
        "ssmbak preview /prod/app/ \"1h ago\" -R              # the tree as it was an hour ago",
        "ssmbak preview /prod/app/db 2026-11-27T09:15:00 --output json",
    ))]
    Preview(Target),
    /// Bring SSM back to the state at CHECKTIME.
    #[command(after_help = crate::command_help!(
        "ssmbak restore /prod/app/ \"1h ago\" -R              # undo the last hour",
        "ssmbak restore /prod/app/db 2026-11-27T09:15:00      # one parameter",
        "ssmbak restore /prod/app/ \"1h ago\" -R --to /staging/app/ --key-id alias/staging",
        "ssmbak restore / \"1h ago\" -R --to-region us-west-2     # a disaster-recovery drill",
        "ssmbak restore /prod/ \"1h ago\" -R --to-profile dr-account --key-id alias/dr",
    ))]
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
    #[command(after_help = crate::command_help!(
        "ssmbak diff /prod/app/ \"1d ago\" -R                 # since yesterday, against SSM now",
        "ssmbak diff /prod/app/ 2026-11-26T00:00:00 2026-11-27T00:00:00 -R",
    ))]
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
    /// Every backed-up version of one parameter, with who made it.
    #[command(after_help = crate::command_help!(
        "ssmbak log /prod/app/db",
        "ssmbak log /prod/app/db --output json --show-secrets",
    ))]
    Log {
        /// The parameter name.
        key: String,
        #[command(flatten)]
        common: Common,
    },
    /// Every backed-up version (deleted parameters included) whose value or description
    /// matches a regular expression.
    #[command(after_help = crate::command_help!(
        "ssmbak grep 'db\\.old\\.internal' /prod/ -R           # which parameters ever pointed there",
        "ssmbak grep '(?i)deprecated' /prod/app/ --in description --since \"30d ago\"",
    ))]
    Grep {
        /// A regular expression (Rust's regex syntax; `(?i)` for any case).
        pattern: String,
        /// A parameter name, or a path ending in `/`.
        path: String,
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Only versions from this time on (only they are read).
        #[arg(long, value_parser = exit::parse_checktime, value_name = "CHECKTIME")]
        since: Option<i64>,
        /// Only versions up to this time.
        #[arg(long, value_parser = exit::parse_checktime, value_name = "CHECKTIME")]
        until: Option<i64>,
        /// Where to search: value, description, or both (comma-separated).
        #[arg(
            long = "in",
            value_enum,
            value_delimiter = ',',
            default_value = "value"
        )]
        fields: Vec<grep::Field>,
        #[command(flatten)]
        common: Common,
    },
    /// Write the parameters in scope as they were at CHECKTIME to a file: a portable,
    /// reviewable backup, or the seed of another environment (see import).
    #[command(after_help = crate::command_help!(
        "ssmbak export /prod/app/ \"1h ago\" -R -o app.json            # SecureStrings masked",
        "ssmbak export /prod/app/ now -R --format yaml --show-secrets -o app.yaml",
        "ssmbak export /prod/app/ now --format dotenv --show-secrets > .env",
    ))]
    Export {
        /// A parameter name, or a path ending in `/`.
        path: String,
        #[arg(value_parser = exit::parse_checktime)]
        checktime: i64,
        #[arg(short = 'R', long)]
        recursive: bool,
        #[arg(long, value_enum, default_value = "json")]
        format: export::ExportFormat,
        /// Write to this file (created readable by its owner only) instead of stdout.
        #[arg(short = 'o', long, value_name = "FILE")]
        outfile: Option<std::path::PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Apply an export (JSON or YAML) to SSM, as a restore does: only what differs is written.
    #[command(after_help = crate::command_help!(
        "ssmbak import app.json --dry-run                       # what it would change",
        "ssmbak import app.json --to /staging/app/ --key-id alias/staging",
        "ssmbak import app.yaml --to-region us-west-2 --keep-going",
    ))]
    Import {
        /// A file `ssmbak export` wrote (JSON or YAML, exported with --show-secrets when it
        /// holds SecureStrings).
        file: std::path::PathBuf,
        /// Write under this path (ending in /) instead of the export's.
        #[arg(long, value_name = "PREFIX")]
        to: Option<String>,
        /// Encrypt imported SecureStrings with this KMS key (id, ARN or alias).
        #[arg(long, value_name = "KMS")]
        key_id: Option<String>,
        /// Show the plan, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply the rest of the plan when one parameter fails (exit code 3 then).
        #[arg(long)]
        keep_going: bool,
        #[command(flatten)]
        elsewhere: Elsewhere,
        #[command(flatten)]
        common: Common,
    },
    /// Print a completion script for a shell (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Examples:\n  ssmbak completions bash > ~/.local/share/bash-completion/completions/ssmbak\n  ssmbak completions zsh > \"${fpath[1]}/_ssmbak\""
    )]
    Completions { shell: clap_complete::Shell },
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
    elsewhere: Elsewhere,
    #[command(flatten)]
    common: Common,
}

/// Another region or account to plan against and write to; the backups are read as usual.
#[derive(Args, Default)]
struct Elsewhere {
    /// Plan against and restore into SSM in this region (a disaster-recovery drill, a copy).
    #[arg(long, value_name = "REGION")]
    to_region: Option<String>,
    /// ... with this profile's credentials and region (another account).
    #[arg(long, value_name = "PROFILE")]
    to_profile: Option<String>,
}

impl Elsewhere {
    fn is_set(&self) -> bool {
        self.to_region.is_some() || self.to_profile.is_some()
    }
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

fn client_options(common: &Common) -> ClientOptions {
    ClientOptions {
        region: common.region.clone(),
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
    let options = client_options(common);
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
    // The bucket was found with the caller's own SSM; plans and writes go to the destination's.
    let ssm = match elsewhere.is_set() {
        true => ssm_elsewhere(&options, elsewhere, component).await?,
        false => ssm,
    };
    Ok(Session {
        ssm,
        reader: BucketReader::new(s3, bucket),
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
        profile: elsewhere.to_profile.clone(),
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
    Ok(client::ssm(&there, component))
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
            let plan = session
                .plan(&scope, target.checktime, &Remap::default())
                .await?;
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
            dry_run,
            keep_going,
            elsewhere,
            common,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let export = Export::parse(&text).map_err(|e| UsageError(e.to_string()))?;
            if let Some(to) = to.as_deref().filter(|to| !to.ends_with('/')) {
                return Err(UsageError(format!("--to {to}: a path ending in /")).into());
            }
            let to = to.map(|t| ssmbak_core::format::object_key(&t));
            let (at, states) = export
                .states(to.as_deref())
                .map_err(|e| UsageError(e.to_string()))?;
            let options = client_options(&common);
            let ssm = match elsewhere.is_set() {
                true => ssm_elsewhere(&options, &elsewhere, RESTORE).await?,
                false => client::ssm(&client::load(&options).await?, RESTORE),
            };
            let scope = Scope::new(to.as_deref().unwrap_or(&export.path), true);
            let remap = Remap { to: None, key_id };
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
    let remap = Remap { to, key_id };
    let plan = session.plan(&scope, target.checktime, &remap).await?;
    let json = output::plan_json(
        &plan,
        session.reader.bucket(),
        target.checktime,
        c.show_secrets,
    );
    apply_plan(&session.ssm, &plan, c, keep_going, recreate_pause, json).await
}

/// The end of `restore` and `import`: shows the plan, applies it, and reports what became of
/// each change (`plan_json` gains the summary).
async fn apply_plan(
    ssm: &aws_sdk_ssm::Client,
    plan: &Plan,
    c: &Common,
    keep_going: bool,
    recreate_pause: std::time::Duration,
    mut plan_json: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    if c.output == Format::Table {
        if let Some(table) = output::plan_table(plan, c.show_secrets) {
            println!("{table}");
        }
    }
    let applied = apply::apply(ssm, plan, keep_going, recreate_pause).await;
    let summary = RestoreSummary::of(&applied, plan.unchanged);
    for a in &applied {
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
    std::io::Write::write_all(&mut out, text.as_bytes())
        .with_context(|| format!("writing {}", file.display()))
}
