//! The `ssmbak` and `s3bak` command-line tools: point-in-time preview and restore.

pub mod apply;
pub mod bucket;
pub mod checktime;
pub mod download;
pub mod exit;
pub mod objects;
pub mod output;
pub mod scope;
pub mod session;
