//! Recording the AWS operations a component calls, for the least-privilege check.
//!
//! When `SSMBAK_RECORD_OPERATIONS` names a file, every client built through [`crate::client`]
//! appends `component<TAB>service:Operation` to it before each call. `cargo xtask test` turns it
//! on and afterwards checks each IAM policy in `policies/` against what its component called.
//!
//! An S3 read (or retagging) of a named version is recorded as `Operation@version`: IAM
//! authorises it with another action (`s3:GetObjectVersion`, `s3:GetObjectVersionTagging`,
//! `s3:PutObjectVersionTagging`) than the same on the current object (`s3:GetObject`, ...) (Service Authorization Reference,
//! Amazon S3: "To return a different version, you need the s3:GetObjectVersion permission").
//! A `DeleteObject` with `If-Match` is recorded as `DeleteObject@if-match`: it needs
//! `s3:GetObject` as well.
//!
//! An S3 request sent without an expected bucket owner (`x-amz-expected-bucket-owner`, see
//! [`crate::client::ExpectedOwner`]) is also recorded, as `component<TAB>S3:Operation<TAB>`
//! [`WITHOUT_OWNER`]: the check fails on it for every component with a policy.

use aws_sdk_s3::operation::delete_object::DeleteObjectInput;
use aws_sdk_s3::operation::get_object::GetObjectInput;
use aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingInput;
use aws_sdk_s3::operation::head_object::HeadObjectInput;
use aws_sdk_s3::operation::put_object_tagging::PutObjectTaggingInput;

use std::io::Write;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The header of S3's bucket-owner condition: `client::ExpectedOwner` sends it, and the
/// recorder marks an S3 call without it.
pub const EXPECTED_OWNER_HEADER: &str = "x-amz-expected-bucket-owner";

/// The variable naming the recording file.
pub const RECORD_VAR: &str = "SSMBAK_RECORD_OPERATIONS";

/// The mark of an S3 request sent without an expected bucket owner.
pub const WITHOUT_OWNER: &str = "without-owner";

/// S3 operations on no bucket of anyone's yet: CreateBucket (the new bucket has no owner to
/// compare) and ListBuckets (no bucket). S3 ignores the owner header on both.
const OWNERLESS: [&str; 2] = ["CreateBucket", "ListBuckets"];

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
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let input = context.input();
            let versioned = input
                .downcast_ref::<GetObjectInput>()
                .map(|i| i.version_id().is_some())
                .or_else(|| {
                    input
                        .downcast_ref::<HeadObjectInput>()
                        .map(|i| i.version_id().is_some())
                })
                .or_else(|| {
                    input
                        .downcast_ref::<GetObjectTaggingInput>()
                        .map(|i| i.version_id().is_some())
                })
                .or_else(|| {
                    input
                        .downcast_ref::<PutObjectTaggingInput>()
                        .map(|i| i.version_id().is_some())
                })
                .unwrap_or(false);
            // A delete conditional on an ETag is authorised as s3:DeleteObject and
            // s3:GetObject (S3 User Guide, "How to perform conditional deletes").
            let conditional = input
                .downcast_ref::<DeleteObjectInput>()
                .is_some_and(|i| i.if_match().is_some());
            let suffix = match (versioned, conditional) {
                (true, _) => "@version",
                (false, true) => "@if-match",
                (false, false) => "",
            };
            self.append(&format!("{}:{}{suffix}", m.service(), m.name()))?;
        }
        Ok(())
    }

    // Once per attempt, with every header set (the owner's is added before signing).
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(m) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let headers = context.request().headers();
        if m.service() == "S3"
            && !OWNERLESS.contains(&m.name())
            && !headers.contains_key(EXPECTED_OWNER_HEADER)
        {
            self.append(&format!("{}:{}\t{WITHOUT_OWNER}", m.service(), m.name()))?;
        }
        Ok(())
    }
}

impl Recorder {
    /// Appends `component<TAB>what`: one short line per write with O_APPEND, so concurrent
    /// writers do not interleave.
    fn append(&self, what: &str) -> Result<(), BoxError> {
        let line = format!("{}\t{what}\n", self.component);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line.as_bytes())?;
        Ok(())
    }
}
