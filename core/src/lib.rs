//! ssmbak-core: what the Lambda, `seed-all` and the restore CLIs share.
//!
//! * [`format`]: the bucket-format contract (key, body, tags, metadata, tombstones).
//! * [`pit`]: which stored version describes a parameter at a point in time.
//! * [`backup`]: back up one SSM change, exactly as it was at the event.
//! * [`client`]: AWS client construction (region, credentials, endpoint overrides).

pub mod backup;
pub mod client;
pub mod format;
pub mod pit;
pub mod reader;
