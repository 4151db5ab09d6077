//! `s3bak restore`: the fewest copies and delete markers that bring keys back to the time.
//!
//! `plan` reads what each key needs (`describe` tells two objects apart beyond their bytes),
//! the executor runs `apply` on each (`copy` for the large and the long), and `report` (pure)
//! turns what became of each key into lines, a summary and an exit code.

mod apply;
mod context;
mod copy;
mod describe;
mod plan;
mod report;

pub(crate) use context::{CopyOptions, Destination, RestoreContext};
pub(crate) use copy::MULTIPART_COPY_THRESHOLD;

use crate::common::execute::Executor;
use crate::common::exit::ExitCode;
use crate::s3bak::objects;
use crate::s3bak::session::Selected;

/// Brings the selected keys back to the time (a dry run only says how); the exit code is
/// partial when a key failed, was not attempted or needs a restore request.
pub(crate) async fn restore(
    ctx: &RestoreContext<'_>,
    selected: &[Selected],
    dry_run: bool,
    keep_going: bool,
) -> anyhow::Result<ExitCode> {
    let plan = plan::plan(ctx, selected).await?;
    plan::check_some_version(ctx.selection, &plan)?;
    let executor = Executor::new(keep_going)
        .dry_run(dry_run)
        .stopping_everything_on(objects::is_bucket_wide)
        .with_progress();
    let attempts = executor
        .run(&plan, ctx.selection.concurrency, |planned| {
            apply::apply(ctx, planned)
        })
        .await;
    if let Some(refusal) = executor.stopped_everything_by(&attempts) {
        anyhow::bail!("{refusal}");
    }
    let report = report::report(&plan, &attempts, dry_run, ctx.selection.is_tree());
    report.print();
    Ok(report.exit_code())
}
