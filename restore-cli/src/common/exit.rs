//! Exit codes, one per kind of outcome, so scripts can tell them apart.

/// What the process reports to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done, including "nothing to do".
    Success,
    /// An AWS or runtime failure: nothing, or nothing more, was changed.
    Failure,
    /// The command line is wrong (clap reports these itself with the same code).
    Usage,
    /// A restore applied only part of its plan; re-running it finishes the job.
    Partial,
    /// Interrupted by Ctrl-C.
    Interrupted,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Partial => 3,
            ExitCode::Interrupted => 130,
        }
    }
}

/// A command line that parses but asks for something impossible: reported with exit code 2,
/// like clap's own usage errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error that ended a run.
pub fn for_error(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(|c| c.is::<UsageError>()) {
        ExitCode::Usage
    } else {
        ExitCode::Failure
    }
}

/// Parses the command line. Help and version go to stdout (exit 0); a usage error is one line
/// on stderr and exit code 2, without clap's usage block.
pub fn parse_args<P: clap::Parser>() -> P {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color = super::color::choice(&args, std::env::var_os("NO_COLOR").as_ref());
    let parsed = P::command()
        .color(color)
        .try_get_matches_from(&args)
        .and_then(|mut matches| P::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(p) => p,
        Err(e) if e.use_stderr() => {
            // clap's first line, with the list it introduces ("...not provided:") folded in.
            let rendered = e.to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut line = lines.next().unwrap_or("error: bad command line").to_owned();
            while line.ends_with(':') {
                match lines.next().filter(|l| !l.starts_with("Usage:")) {
                    Some(more) => line = format!("{line} {more}"),
                    None => break,
                }
            }
            eprintln!("{line} (see --help)");
            std::process::exit(ExitCode::Usage.code());
        }
        Err(e) => e.exit(),
    }
}

/// Runs a command to its exit code: errors become one `Error: ...` line (with their causes,
/// never a backtrace), Ctrl-C becomes 130. Does not return.
pub fn run_to_exit<F>(command: F) -> !
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            std::process::exit(ExitCode::Failure.code());
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            result = command => result.unwrap_or_else(|e| {
                eprintln!("Error: {e:#}");
                for_error(&e)
            }),
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Interrupted");
                ExitCode::Interrupted
            }
        }
    });
    std::process::exit(code.code());
}

/// CHECKTIME as clap parses it: relative to now.
pub fn parse_checktime(s: &str) -> Result<i64, String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    crate::common::checktime::parse(s, now).map_err(|e| e.to_string())
}
