//! `ssmbak`'s arguments: clap only. What each command does with them is in [`super::run`].

use clap::{Args, Parser, Subcommand};

use super::apply;
use super::export;
use super::grep;
use crate::common::exit;
use crate::common::output::Format;

#[derive(Parser)]
#[command(
    name = "ssmbak",
    version = ssmbak_core::build_info::LONG_VERSION,
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
    pub(super) command: Command,
    #[command(flatten)]
    pub(crate) color: crate::common::color::ColorArg,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Show what a restore would change in SSM (nothing is written).
    #[command(after_help = crate::command_help!(
        "ssmbak preview /prod/app/ \"1h ago\" -R              # the tree as it was an hour ago",
        "ssmbak preview /prod/app/db 2026-11-27T09:15:00 --output json",
        "ssmbak preview /prod/app/ \"1h ago\" -R --no-tags     # values only: no tag reads",
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
    /// Every backed-up version of one parameter, with who made it (and who deleted it, when
    /// the stack records deleters).
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
    /// Every backed-up version (deleted parameters included) whose value, description or tags
    /// match a regular expression.
    #[command(after_help = crate::command_help!(
        "ssmbak grep 'db\\.old\\.internal' /prod/ -R           # which parameters ever pointed there",
        "ssmbak grep '(?i)deprecated' /prod/app/ --in description --since \"30d ago\"",
        "ssmbak grep '^owner=alice$' /prod/ -R --in tags              # what she ever owned",
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
        /// Where to search: value, description, tags (each as `key=value`), or several
        /// (comma-separated).
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
        /// Leave tags and labels as they are.
        #[arg(long)]
        no_tags: bool,
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
pub(super) struct Target {
    /// A parameter name, or a path ending in `/` (direct children; all depths with -R).
    pub(super) path: String,
    /// The point in time (see below).
    #[arg(value_parser = exit::parse_checktime)]
    pub(super) checktime: i64,
    /// Recurse into sub-paths (only for a path ending in `/`).
    #[arg(short = 'R', long)]
    pub(super) recursive: bool,
    /// Leave tags and labels as they are: neither compared (no `ListTagsForResource` per
    /// parameter) nor restored.
    #[arg(long)]
    pub(super) no_tags: bool,
    #[command(flatten)]
    pub(super) elsewhere: Elsewhere,
    #[command(flatten)]
    pub(super) common: Common,
}

/// Another region or account to plan against and write to; the backups are read as usual.
#[derive(Args, Default)]
pub(super) struct Elsewhere {
    /// Plan against and restore into SSM in this region (a disaster-recovery drill, a copy).
    #[arg(long, value_name = "REGION")]
    pub(super) to_region: Option<String>,
    /// ... with this profile's credentials and region (another account).
    #[arg(long, value_name = "PROFILE")]
    pub(super) to_profile: Option<String>,
}

impl Elsewhere {
    pub(super) fn is_set(&self) -> bool {
        self.to_region.is_some() || self.to_profile.is_some()
    }
}

#[derive(Args)]
pub(super) struct Common {
    /// AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's).
    #[arg(short, long)]
    pub(super) region: Option<String>,
    /// A named profile of ~/.aws/config and ~/.aws/credentials, its credentials and region
    /// (default: AWS_PROFILE, else the standard chain).
    #[arg(long, value_name = "PROFILE")]
    pub(super) profile: Option<String>,
    /// Send every AWS request to this URL (the AWS CLI's --endpoint-url; default:
    /// AWS_ENDPOINT_URL, else AWS's).
    #[arg(long, value_name = "URL")]
    pub(super) endpoint_url: Option<String>,
    /// The backup bucket (default: SSMBAK_BUCKET, else the SSM parameter /newvoll/ssmbak/bucketname).
    #[arg(short, long)]
    pub(super) bucket: Option<String>,
    /// Read the bucket from this ssmbak stack's outputs.
    #[arg(long, conflicts_with = "bucket")]
    pub(super) stack: Option<String>,
    /// The account the bucket must belong to (default: your own). S3 refuses every request
    /// to a bucket of another account, wherever its name came from.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub(super) bucket_owner: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(super) output: Format,
    /// Show SecureString values instead of masking them.
    #[arg(long)]
    pub(super) show_secrets: bool,
    /// Say where the region and bucket came from.
    #[arg(short, long)]
    pub(super) verbose: bool,
}
