//! What `ssmbak` and `s3bak` share: time parsing, exit codes, the bucket, output, running a
//! plan and summing it up.

pub mod bucket;
pub mod checktime;
pub mod execute;
pub mod exit;
pub mod output;
pub mod summary;

/// What a PATH (ssmbak) or KEY (s3bak) argument covers: one rule for both tools, in both
/// `--help`s and the README.
#[macro_export]
macro_rules! path_rule {
    () => {
        "PATH/KEY: one ending in / covers the names under it, all depths with -R; without -R, \
         ssmbak takes only the direct children (as SSM's GetParametersByPath does) and s3bak \
         every key under it. -R also makes a KEY without / a prefix for s3bak. Anything else \
         is exactly one name, never its siblings."
    };
}
