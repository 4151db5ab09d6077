//! The `ssmbak` and `s3bak` command-line tools: point-in-time preview and restore.
//!
//! * [`common`]: what both share (time parsing, exit codes, the bucket, output).
//! * [`ssmbak`]: SSM parameters from the Lambda's backups.
//! * [`s3bak`]: any versioned bucket.

pub mod common;
pub mod s3bak;
pub mod ssmbak;
