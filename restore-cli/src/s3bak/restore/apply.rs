//! Makes one key of the plan what it was: a copy of its version, or a delete marker.

use super::context::RestoreContext;
use super::copy::{copy_source, long_copy, multipart_copy};
use super::describe::{head, kept_on_copy};
use super::plan::PlannedObject;
use crate::common::output::aws_error;
use crate::s3bak::objects::ObjectAction;
use crate::s3bak::session::s3_error;

/// Makes one key of the plan what it was: a copy of its version, or a delete marker.
pub(crate) async fn apply(ctx: &RestoreContext<'_>, planned: &PlannedObject) -> anyhow::Result<()> {
    let RestoreContext {
        session,
        selection,
        dest,
        options,
    } = *ctx;
    let PlannedObject {
        key,
        dest_key,
        action,
        ..
    } = planned;
    let s3 = &session.s3;
    match action {
        ObjectAction::Delete => {
            s3.delete_object()
                .bucket(&dest.bucket)
                .key(dest_key)
                .send()
                .await
                .map_err(|e| aws_error(&format!("deleting {dest_key}"), &e))?;
        }
        ObjectAction::Copy { version_id, size } if *size > options.multipart_threshold => {
            multipart_copy(ctx, key, dest_key, version_id, *size).await?;
        }
        ObjectAction::Copy { version_id, .. } => {
            // Metadata and content headers are copied with the object; tags too unless asked;
            // its KMS key and storage class when set.
            let kept =
                kept_on_copy(&head(session, &selection.bucket, key, Some(version_id)).await?);
            let mut copy = s3
                .copy_object()
                .bucket(&dest.bucket)
                .key(dest_key)
                .copy_source(copy_source(&selection.bucket, key, version_id))
                .set_server_side_encryption(kept.encryption)
                .set_ssekms_key_id(kept.kms_key_id)
                .set_storage_class(kept.storage_class);
            if options.no_tags {
                copy = copy.tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace);
            }
            copy.customize()
                .config_override(long_copy())
                .send()
                .await
                .map_err(|e| s3_error(&format!("copying {key} version {version_id}"), &e))?;
        }
        ObjectAction::Unchanged | ObjectAction::Archived { .. } | ObjectAction::NoVersion => {}
    }
    Ok(())
}
