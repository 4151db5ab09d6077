//! What `ssmbak` and `s3bak` share: time parsing, exit codes, the bucket, output.

pub mod bucket;
pub mod checktime;
pub mod exit;
pub mod output;
