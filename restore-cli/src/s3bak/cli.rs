//! `s3bak`'s arguments (clap); what each command does with them is `run.rs`.

use super::restore::MULTIPART_COPY_THRESHOLD;
use super::selection::Selection;
use crate::common::exit;
use crate::common::output::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "s3bak",
    version = ssmbak_core::build_info::LONG_VERSION,
    about = "Preview, download and restore any versioned S3 bucket as it was at a point in time",
    after_help = concat!(
        crate::checktime_rule!(),
        crate::path_rule!(),
        "\nExit codes: 0 done, 1 AWS or runtime failure, 2 usage, 3 only part done, 130 interrupted."
    )
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) color: crate::common::color::ColorArg,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// The version each key had at CHECKTIME.
    #[command(after_help = crate::command_help!(
        "s3bak preview data/ 2026-11-27T09:15:00Z -b my-bucket   # the version of each key then",
        "s3bak preview data/report.csv \"2h ago\" -b my-bucket --output json",
    ))]
    Preview(Target),
    /// Download the version(s) of CHECKTIME: one key to a file (or - for stdout), a prefix to a directory.
    #[command(after_help = crate::command_help!(
        "s3bak body data/report.csv \"2h ago\" -b my-bucket -o report.csv   # the exact bytes",
        "s3bak body data/report.csv \"2h ago\" -b my-bucket -o -            # to stdout",
        "s3bak body data/ \"2h ago\" -b my-bucket -o ./then/ [--flat]        # the whole tree",
    ))]
    Body {
        #[command(flatten)]
        target: Target,
        /// Destination file, `-` for stdout, or a directory for a prefix.
        #[arg(short, long = "outfile")]
        outfile: Option<PathBuf>,
        /// Put every file directly in the directory (the key's last component), not under its key path.
        #[arg(long)]
        flat: bool,
    },
    /// Make the current state equal to the state at CHECKTIME (delete markers, never permanent deletes).
    #[command(after_help = crate::command_help!(
        "s3bak restore data/ \"2h ago\" -b my-bucket --dry-run      # what it would do",
        "s3bak restore data/ \"2h ago\" -b my-bucket --keep-going",
        "s3bak restore data/ \"2h ago\" -b my-bucket --to-bucket other --to-prefix restored/",
    ))]
    Restore {
        #[command(flatten)]
        target: Target,
        /// Restore into this bucket instead.
        #[arg(long)]
        to_bucket: Option<String>,
        /// Restore under this prefix instead (replacing the KEY/prefix part).
        #[arg(long)]
        to_prefix: Option<String>,
        /// Show what would be done, do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Go on with the other keys when one fails (exit code 3 then).
        #[arg(long)]
        keep_going: bool,
        /// Do not copy the versions' tags.
        #[arg(long)]
        no_tags: bool,
        /// Copies above this size (bytes) are multipart.
        #[arg(long, default_value_t = MULTIPART_COPY_THRESHOLD, hide = true)]
        multipart_threshold: i64,
    },
    /// Print a completion script for a shell (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Examples:\n  s3bak completions bash > ~/.local/share/bash-completion/completions/s3bak\n  s3bak completions fish > ~/.config/fish/completions/s3bak.fish"
    )]
    Completions { shell: clap_complete::Shell },
}

#[derive(Args)]
pub(crate) struct Target {
    /// An object key, or a prefix ending in `/`.
    pub(crate) key: String,
    /// The point in time (see below).
    #[arg(value_parser = exit::parse_checktime)]
    pub(crate) checktime: i64,
    /// The versioned bucket.
    #[arg(short, long)]
    pub(crate) bucket: String,
    /// AWS region (default: the standard chain).
    #[arg(short, long)]
    pub(crate) region: Option<String>,
    /// A named profile of ~/.aws/config and ~/.aws/credentials, its credentials and region
    /// (default: AWS_PROFILE, else the standard chain).
    #[arg(long, value_name = "PROFILE")]
    pub(crate) profile: Option<String>,
    /// Send every AWS request to this URL (the AWS CLI's --endpoint-url; default:
    /// AWS_ENDPOINT_URL, else AWS's); S3 is then addressed path-style.
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Treat KEY as a prefix even without a trailing `/` (see PATH/KEY below).
    #[arg(short = 'R', long)]
    pub(crate) recursive: bool,
    /// Use the ssmbakTime tag (event time) instead of LastModified.
    #[arg(long)]
    pub(crate) ssmbak_time: bool,
    /// Keys worked on at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Output format for listings.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
    /// Pay for the requests: the bucket is requester-pays (`x-amz-request-payer: requester`).
    #[arg(long)]
    pub(crate) request_payer: bool,
    /// The account the bucket (and --to-bucket) must belong to; S3 refuses every request to
    /// a bucket of another. Default with --ssmbak-time (an ssmbak bucket): your own account;
    /// otherwise none.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub(crate) bucket_owner: Option<String>,
}

impl Target {
    /// The plain values the commands work with.
    pub(crate) fn selection(&self) -> Selection {
        Selection {
            key: self.key.clone(),
            checktime: self.checktime,
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            recursive: self.recursive,
            ssmbak_time: self.ssmbak_time,
            concurrency: self.concurrency,
            output: self.output,
            request_payer: self.request_payer,
            bucket_owner: self.bucket_owner.clone(),
        }
    }
}
