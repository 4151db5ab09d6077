//! Server-side copies of one version: whole, or in parts for large objects.

use super::context::RestoreContext;
use super::describe::{described_by, head, kept_on_copy};
use crate::common::output::aws_error;
use crate::s3bak::session::s3_error;
use anyhow::Context;

/// Versions above this size are copied in parts. CopyObject takes up to 5 GiB, but one request
/// copying gigabytes runs for minutes and is all lost to one failure; parts are retried alone.
pub(crate) const MULTIPART_COPY_THRESHOLD: i64 = 512 * 1024 * 1024;
/// Part size for multipart copies, unless the object needs larger parts to fit S3's 10,000.
pub(crate) const PART_SIZE: i64 = 128 * 1024 * 1024;
/// S3's limit on the parts of one upload.
pub(crate) const MAX_PARTS: i64 = 10_000;
/// How long one copy request may run: server-side copies move data at S3's pace, far longer
/// than the 10 s other requests get (a part of 128 MiB, or a whole object up to the threshold).
pub(crate) const COPY_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The part size for a multipart copy of `size` bytes: [`PART_SIZE`], or larger when that
/// would take more than S3's 10,000 parts (5 TiB objects need about 525 MiB parts).
pub(crate) fn part_size(size: i64) -> i64 {
    const MIB: i64 = 1024 * 1024;
    // Signed integers have no stable div_ceil.
    let ceil = |a: i64, b: i64| (a + b - 1) / b;
    PART_SIZE.max(ceil(ceil(size, MAX_PARTS), MIB) * MIB)
}

/// The configuration of a copy request: its own long attempt timeout.
pub(crate) fn long_copy() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(COPY_ATTEMPT_TIMEOUT)
            .build(),
    )
}

/// `bucket/key?versionId=v`, the key percent-encoded as CopySource wants it.
pub(crate) fn copy_source(bucket: &str, key: &str, version_id: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{bucket}/{}?versionId={version_id}",
        percent_encoding::utf8_percent_encode(key, KEEP)
    )
}

/// Copies a version too large for CopyObject in parts, keeping its headers, metadata and tags.
pub(crate) async fn multipart_copy(
    ctx: &RestoreContext<'_>,
    key: &str,
    dest_key: &str,
    version_id: &str,
    size: i64,
) -> anyhow::Result<()> {
    let RestoreContext {
        session,
        selection,
        dest,
        options,
    } = *ctx;
    let s3 = &session.s3;
    // One HeadObject of the source version serves both what it serves with and what the
    // copy must keep.
    let head = head(session, &selection.bucket, key, Some(version_id)).await?;
    let source = described_by(
        session,
        &head,
        &selection.bucket,
        key,
        Some(version_id),
        options,
    )
    .await?;
    let kept = kept_on_copy(&head);
    let mut create = s3
        .create_multipart_upload()
        .bucket(&dest.bucket)
        .key(dest_key)
        .set_server_side_encryption(kept.encryption)
        .set_ssekms_key_id(kept.kms_key_id)
        .set_storage_class(kept.storage_class)
        .set_metadata(Some(source.metadata.into_iter().collect()))
        .set_content_type(source.content_type)
        .set_content_encoding(source.content_encoding)
        .set_content_disposition(source.content_disposition)
        .set_content_language(source.content_language)
        .set_cache_control(source.cache_control);
    if !source.tags.is_empty() {
        let pairs = source.tags.iter().map(|(k, v)| (k.as_str(), v.clone()));
        create = create.tagging(ssmbak_core::format::encode_tagging(pairs));
    }
    let upload = create
        .send()
        .await
        .map_err(|e| aws_error(&format!("starting the copy of {key}"), &e))?;
    let upload_id = upload.upload_id().context("no upload id")?.to_owned();
    let result = async {
        let mut parts = Vec::new();
        let mut start = 0;
        let mut number = 1;
        let part_size = part_size(size);
        while start < size {
            let end = (start + part_size).min(size) - 1;
            let part = s3
                .upload_part_copy()
                .bucket(&dest.bucket)
                .key(dest_key)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(copy_source(&selection.bucket, key, version_id))
                .copy_source_range(format!("bytes={start}-{end}"))
                .customize()
                .config_override(long_copy())
                .send()
                .await
                .map_err(|e| s3_error(&format!("copying part {number} of {key}"), &e))?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(
                        part.copy_part_result()
                            .and_then(|r| r.e_tag())
                            .map(str::to_owned),
                    )
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        s3.complete_multipart_upload()
            .bucket(&dest.bucket)
            .key(dest_key)
            .upload_id(&upload_id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(&format!("finishing the copy of {key}"), &e))?;
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = s3
            .abort_multipart_upload()
            .bucket(&dest.bucket)
            .key(dest_key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fit_s3s_limits_for_any_size() {
        const MIB: i64 = 1024 * 1024;
        assert_eq!(part_size(MULTIPART_COPY_THRESHOLD + 1), PART_SIZE);
        // S3's largest object, 5 TiB, in at most 10,000 parts of at most 5 GiB.
        for size in [
            MULTIPART_COPY_THRESHOLD + 1,
            100 * 1024 * MIB,
            5 * 1024 * 1024 * MIB,
        ] {
            let part = part_size(size);
            assert!((size + part - 1) / part <= MAX_PARTS, "{size}");
            assert!(part <= 5 * 1024 * MIB && part % MIB == 0, "{size}");
        }
    }
}
