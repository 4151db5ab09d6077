//! `s3bak`: any versioned bucket at a point in time. One module per command, on a shared
//! session; the bin is only the entry point.

mod cli;
mod download;
pub mod objects;
pub mod paths;
mod preview;
mod restore;
mod run;
mod selection;
mod session;

pub use cli::Cli;
pub use run::run;
