//! `ssmbak`: SSM parameters at a point in time, from the backups the Lambda writes.

pub mod apply;
mod cli;
pub mod export;
pub mod grep;
pub mod report;
mod run;
pub mod scope;
pub mod session;

pub use cli::Cli;
pub use run::run;
