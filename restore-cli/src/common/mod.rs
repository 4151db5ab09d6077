//! What `ssmbak` and `s3bak` share: time parsing, exit codes, the bucket, output, running a
//! plan and summing it up.

pub mod bucket;
pub mod checktime;
pub mod color;
pub mod execute;
pub mod exit;
pub mod output;
pub mod summary;

/// The CHECKTIME forms both tools take (see [`checktime::parse`]), for both `--help`s.
#[macro_export]
macro_rules! checktime_rule {
    () => {
        "CHECKTIME: YYYY-MM-DDTHH:MM:SS (UTC), RFC 3339 (2026-11-27T09:15:00Z, …+01:00), \"2h ago\", \"now\".\n"
    };
}

/// A command's `--help` ending: the CHECKTIME and PATH/KEY rules, then its examples.
#[macro_export]
macro_rules! command_help {
    ($($example:literal),+ $(,)?) => {
        concat!(
            $crate::checktime_rule!(),
            $crate::path_rule!(),
            "\n\nExamples:",
            $("\n  ", $example),+
        )
    };
}

/// What a PATH (ssmbak) or KEY (s3bak) argument covers: one rule for both tools, in both
/// `--help`s and docs/cli.md.
#[macro_export]
macro_rules! path_rule {
    () => {
        "PATH/KEY: one ending in / covers the names under it, all depths with -R; without -R, \
         ssmbak takes only the direct children (as SSM's GetParametersByPath does) and s3bak \
         every key under it. -R also makes a KEY without / a prefix for s3bak. Anything else \
         is exactly one name, never its siblings."
    };
}
