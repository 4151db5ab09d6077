//! What this build is (see `core/build.rs`): printed by `--version`, logged by the Lambda at
//! cold start, so that what runs can be traced to a release and a commit.

/// The crate version (the release).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit built from (12 hex digits), or "unknown".
pub const COMMIT: &str = env!("SSMBAK_COMMIT");
/// The target triple built for.
pub const TARGET: &str = env!("SSMBAK_TARGET");
/// The build's day (`SOURCE_DATE_EPOCH`, else the commit's), `YYYY-MM-DD`.
pub const BUILD_DATE: &str = env!("SSMBAK_BUILD_DATE");

/// `VERSION (commit COMMIT, TARGET, built BUILD_DATE)`: what `--version` prints after the name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SSMBAK_COMMIT"),
    ", ",
    env!("SSMBAK_TARGET"),
    ", built ",
    env!("SSMBAK_BUILD_DATE"),
    ")"
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_long_version_names_version_commit_target_and_date() {
        let long = super::LONG_VERSION;
        assert!(long.starts_with(super::VERSION), "{long}");
        for part in [super::COMMIT, super::TARGET, super::BUILD_DATE] {
            assert!(!part.is_empty() && long.contains(part), "{long}");
        }
        let date = super::BUILD_DATE;
        assert!(
            date == "unknown" || (date.len() == 10 && date.as_bytes()[4] == b'-'),
            "{date}"
        );
    }
}
