//! What an object serves with besides its bytes (metadata, content headers, tags), and what a
//! copy of it must be told to keep: a restore compares and copies by it.

use super::context::CopyOptions;
use crate::s3bak::objects;
use crate::s3bak::session::{s3_error, Session};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;

/// What serves with an object besides its bytes: user metadata, content headers, and its tags
/// unless tags are not copied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Described {
    pub(crate) metadata: std::collections::BTreeMap<String, String>,
    pub(crate) content_type: Option<String>,
    pub(crate) cache_control: Option<String>,
    pub(crate) content_disposition: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) content_language: Option<String>,
    pub(crate) website_redirect_location: Option<String>,
    /// Sorted; empty with `--no-tags`.
    pub(crate) tags: Vec<(String, String)>,
}

/// HeadObject of `key` (a version of it, with `version_id`).
pub(crate) async fn head(
    session: &Session,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> anyhow::Result<HeadObjectOutput> {
    session
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| s3_error(&format!("reading s3://{bucket}/{key}"), &e))
}

/// What a copy of the version `head` answered for must be told to keep (see
/// [`objects::KeptOnCopy`]).
pub(crate) fn kept_on_copy(head: &HeadObjectOutput) -> objects::KeptOnCopy {
    objects::KeptOnCopy::of(
        head.server_side_encryption(),
        head.ssekms_key_id(),
        head.storage_class(),
    )
}

/// What an object (a version of it, with `version_id`) serves with besides its bytes.
pub(crate) async fn described(
    session: &Session,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    options: &CopyOptions,
) -> anyhow::Result<Described> {
    let head = head(session, bucket, key, version_id).await?;
    described_by(session, &head, bucket, key, version_id, options).await
}

/// [`described`], from the HeadObject answer already in hand.
pub(crate) async fn described_by(
    session: &Session,
    head: &HeadObjectOutput,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    options: &CopyOptions,
) -> anyhow::Result<Described> {
    let mut tags = Vec::new();
    if !options.no_tags {
        let set = session
            .s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| s3_error(&format!("reading the tags of s3://{bucket}/{key}"), &e))?;
        tags = set
            .tag_set()
            .iter()
            .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
            .collect();
        tags.sort();
    }
    let text = |v: Option<&str>| v.map(str::to_owned);
    Ok(Described {
        metadata: head
            .metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        content_type: text(head.content_type()),
        cache_control: text(head.cache_control()),
        content_disposition: text(head.content_disposition()),
        content_encoding: text(head.content_encoding()),
        content_language: text(head.content_language()),
        website_redirect_location: text(head.website_redirect_location()),
        tags,
    })
}
