//! The backup Lambda: turns SSM "Parameter Store Change" events, delivered by EventBridge
//! through SQS, into versions in the backup bucket (see `ssmbak_core::format`).

pub mod config;
pub mod event;
pub mod handler;
pub mod metrics;
pub mod reconcile;
