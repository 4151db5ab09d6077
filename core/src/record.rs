//! Recording the AWS operations a component calls, for the least-privilege check.
//!
//! When `SSMBAK_RECORD_OPERATIONS` names a file, every client built through [`crate::client`]
//! appends `component<TAB>service:Operation` to it before each call. `cargo xtask test` turns it
//! on and afterwards checks each IAM policy in `policies/` against what its component called.

use std::io::Write;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The variable naming the recording file.
pub const RECORD_VAR: &str = "SSMBAK_RECORD_OPERATIONS";

/// Appends each operation to the recording file.
#[derive(Debug, Clone)]
pub struct Recorder {
    component: &'static str,
    path: std::path::PathBuf,
}

/// A recorder for `component`, when recording is on.
pub fn recorder(component: &'static str) -> Option<Recorder> {
    let path = std::env::var_os(RECORD_VAR).filter(|p| !p.is_empty())?;
    Some(Recorder {
        component,
        path: path.into(),
    })
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "ssmbak-operation-recorder"
    }

    // Once per operation, after the operation's own configuration (its name) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            // One short line per write with O_APPEND: concurrent writers do not interleave.
            let line = format!("{}\t{}:{}\n", self.component, m.service(), m.name());
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            file.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}
