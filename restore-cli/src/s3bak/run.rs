//! What each `s3bak` command does: read the arguments once into a [`Selection`], connect,
//! select the version of each key at the time, then preview, download or restore them.

use super::cli::{Cli, Command};
use super::download::{download_one, download_tree};
use super::preview::preview;
use super::restore::{restore, CopyOptions, Destination, RestoreContext};
use super::session::{connect, select};
use crate::common::bucket;
use crate::common::exit::{ExitCode, UsageError};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Preview(target) => {
            let selection = target.selection();
            let session = connect(&selection).await?;
            let selected = select(&session, &selection).await?;
            preview(&selection, &selected)?;
            let nothing = !selection.is_tree() && selected.iter().all(|s| s.entry().is_none());
            if nothing {
                return Err(selection.no_version());
            }
            Ok(ExitCode::Success)
        }
        Command::Body {
            target,
            outfile,
            flat,
        } => {
            let Some(out) = outfile else {
                return Err(UsageError(
                    "body needs -o/--outfile (a file, - for stdout, or a directory for a prefix)"
                        .to_owned(),
                )
                .into());
            };
            let selection = target.selection();
            let session = connect(&selection).await?;
            let selected = select(&session, &selection).await?;
            if selection.is_tree() {
                download_tree(&session, &selection, &selected, &out, flat).await
            } else {
                download_one(&session, &selection, &selected, &out).await
            }
        }
        Command::Restore {
            target,
            to_bucket,
            to_prefix,
            dry_run,
            keep_going,
            no_tags,
            multipart_threshold,
        } => {
            let selection = target.selection();
            let session = connect(&selection).await?;
            let dest = Destination {
                bucket: to_bucket
                    .clone()
                    .unwrap_or_else(|| selection.bucket.clone()),
                prefix: to_prefix,
            };
            if to_bucket.is_some() {
                bucket::check_versioned(&session.s3, &dest.bucket, session.owner.as_ref()).await?;
            }
            let selected = select(&session, &selection).await?;
            let options = CopyOptions {
                no_tags,
                multipart_threshold,
            };
            let ctx = RestoreContext {
                session: &session,
                selection: &selection,
                dest: &dest,
                options: &options,
            };
            restore(&ctx, &selected, dry_run, keep_going).await
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "s3bak", &mut std::io::stdout());
            Ok(ExitCode::Success)
        }
    }
}
