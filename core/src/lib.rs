//! ssmbak-core: what the Lambda, `seed-all` and the restore CLIs share.
//!
//! * [`build_info`]: what this build is (version, commit, target, date).
//! * [`aws_error`]: one shape for a failed AWS call, printed one way.
//! * [`format`](mod@format): the bucket-format contract (key, body, tags, metadata, tombstones).
//! * [`parameter`]: the domain model: a parameter at one version, its type and attributes.
//! * [`pit`]: which stored version describes a parameter at a point in time.
//! * [`backup`]: back up one SSM change, exactly as it was at the event.
//! * [`client`]: AWS client construction (region, credentials, endpoint overrides).
//! * [`index`]: where each version stands in time, readable from a listing.
//! * [`reader`]: a tree of backups at a point in time, fetching only what can matter.
//! * [`current`]: what SSM holds now.
//! * [`plan`]: what a restore must change.
//! * [`seed`]: back up what exists and is not backed up yet (seed-all, reconcile).
//! * [`reconcile`]: the scheduled repair of what the change events missed.
//! * [`sim`]: a deterministic simulation of the writer and reader under any delivery order.
//! * [`store`]: the storage seam: S3 and SSM on AWS, in memory, or failing on purpose.

pub mod aws_error;
pub mod backup;
pub mod bounded;
pub mod build_info;
pub mod client;
pub mod current;
pub mod format;
pub mod index;
pub mod paced;
pub mod parameter;
pub mod pit;
pub mod plan;
pub mod rate;
pub mod reader;
pub mod reconcile;
pub mod record;
pub mod seed;
pub mod sim;
pub mod store;
