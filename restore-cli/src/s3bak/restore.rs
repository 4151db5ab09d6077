//! `s3bak restore`: the fewest copies and delete markers that bring keys back to the time.

use super::cli::Target;
use super::copy::{copy_source, long_copy, multipart_copy};
use super::download::readable;
use super::session::{progress, s3_error, Selected, Session};
use crate::common::checktime;
use crate::common::exit::ExitCode;
use crate::common::output::aws_error;
use crate::s3bak::objects::{self, Current, ObjectAction};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use ssmbak_core::bounded::map_in_order;

pub(crate) struct Destination {
    pub(crate) bucket: String,
    pub(crate) prefix: Option<String>,
}

pub(crate) struct CopyOptions {
    pub(crate) no_tags: bool,
    pub(crate) multipart_threshold: i64,
}

impl Destination {
    /// The destination key of `key` (in scope `target`).
    pub(crate) fn key(&self, target: &Target, key: &str) -> String {
        match &self.prefix {
            None => key.to_owned(),
            Some(p) if target.is_tree() => {
                format!(
                    "{p}{}",
                    key.strip_prefix(target.key.as_str()).unwrap_or(key)
                )
            }
            Some(p) => format!("{p}{}", key.rsplit('/').next().unwrap_or(key)),
        }
    }
}

/// The destination's current object, when it is not the source key itself.
pub(crate) async fn current_elsewhere(
    session: &Session,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<Current>> {
    match session
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(h) => Ok(Some(Current {
            version_id: h.version_id().map(str::to_owned),
            etag: h.e_tag().map(str::to_owned),
            size: h.content_length().unwrap_or_default(),
        })),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
        Err(e) => Err(s3_error(&format!("checking s3://{bucket}/{key}"), &e)),
    }
}

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

#[allow(clippy::too_many_arguments)]
pub(crate) async fn restore(
    session: &Session,
    target: &Target,
    selected: &[Selected],
    dest: &Destination,
    dry_run: bool,
    keep_going: bool,
    options: &CopyOptions,
) -> anyhow::Result<ExitCode> {
    let in_place_bucket = dest.bucket == target.bucket && dest.prefix.is_none();
    let mut plan = Vec::new();
    for s in selected {
        let dest_key = dest.key(target, &s.key);
        let current = if in_place_bucket {
            objects::current_of(&s.listed)
        } else {
            current_elsewhere(session, &dest.bucket, &dest_key).await?
        };
        let mut action = objects::plan(
            s.entry(),
            current.as_ref(),
            in_place_bucket,
            target.is_tree(),
        );
        // An archived version whose restore request has finished is copied like any other.
        if let (ObjectAction::Archived { .. }, Some(entry)) = (&action, s.entry()) {
            if readable(session, &s.key, entry).await? {
                action = ObjectAction::Copy {
                    version_id: entry.version_id.clone(),
                    size: entry.size,
                };
            }
        }
        // The same bytes are not the same object: a version is left alone only when its
        // metadata, content headers and tags are the current object's too.
        if let (ObjectAction::Unchanged, Some(entry), Some(c)) = (&action, s.entry(), &current) {
            let same_version = c.version_id.as_deref() == Some(entry.version_id.as_str());
            let already_it = in_place_bucket && same_version;
            if !entry.is_delete_marker && !already_it {
                let (source, now) = futures::try_join!(
                    described(
                        session,
                        &target.bucket,
                        &s.key,
                        Some(&entry.version_id),
                        options
                    ),
                    described(session, &dest.bucket, &dest_key, None, options),
                )?;
                if source != now {
                    action = ObjectAction::Copy {
                        version_id: entry.version_id.clone(),
                        size: entry.size,
                    };
                }
            }
        }
        plan.push((s.key.clone(), dest_key, action));
    }
    let single_key_without_version =
        !target.is_tree() && plan.iter().all(|(_, _, a)| *a == ObjectAction::NoVersion);
    if single_key_without_version {
        anyhow::bail!(
            "no version of {} at or before {}",
            target.key,
            checktime::format(target.checktime)
        );
    }
    let bar = progress(plan.len());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<(String, String, ObjectAction, Option<anyhow::Result<()>>)> =
        map_in_order(plan, target.concurrency, |(key, dest_key, action)| {
            let (bar, stop) = (&bar, &stop);
            async move {
                let result = if dry_run || stop.load(std::sync::atomic::Ordering::Relaxed) {
                    None
                } else {
                    let r = apply(session, target, dest, &key, &dest_key, &action, options).await;
                    let bucket_wide = r.as_ref().is_err_and(objects::is_bucket_wide);
                    if r.is_err() && (!keep_going || bucket_wide) {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Some(r)
                };
                bar.inc(1);
                (key, dest_key, action, result)
            }
        })
        .await;
    bar.finish_and_clear();
    if let Some(refusal) = results.iter().find_map(|(_, _, _, r)| {
        r.as_ref()?
            .as_ref()
            .err()
            .filter(|e| objects::is_bucket_wide(e))
    }) {
        anyhow::bail!("{refusal}");
    }

    let (mut copied, mut deleted, mut unchanged, mut archived, mut failed, mut skipped) =
        (0, 0, 0, 0, 0, 0);
    for (key, dest_key, action, result) in &results {
        let written_to = if key == dest_key && dest.bucket == target.bucket {
            key.clone()
        } else {
            format!("s3://{}/{dest_key}", dest.bucket)
        };
        match (action, result) {
            (ObjectAction::Unchanged, _) => unchanged += 1,
            (
                ObjectAction::Archived {
                    version_id,
                    storage_class,
                },
                _,
            ) => {
                archived += 1;
                eprintln!("needs a restore request: {key} version {version_id} is {storage_class}");
            }
            (ObjectAction::NoVersion, _) => {}
            (_, None) if dry_run => println!("would {}: {key} -> {written_to}", action.as_str()),
            (_, None) => skipped += 1,
            (_, Some(Err(e))) => {
                failed += 1;
                eprintln!("failed: {key}: {e:#}");
            }
            (ObjectAction::Copy { .. }, Some(Ok(()))) => copied += 1,
            (ObjectAction::Delete, Some(Ok(()))) => {
                deleted += 1;
                if target.is_tree() {
                    println!("deleted (delete marker): {written_to}");
                }
            }
        }
    }
    if dry_run {
        println!("dry run: nothing written");
    } else {
        let mut line =
            format!("copied {copied}, deleted {deleted}, unchanged {unchanged}, failed {failed}");
        if archived > 0 {
            line.push_str(&format!(", needing a restore request {archived}"));
        }
        if skipped > 0 {
            line.push_str(&format!(", not attempted {skipped}"));
        }
        println!("{line}");
    }
    Ok(if failed + archived + skipped > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Success
    })
}

pub(crate) async fn apply(
    session: &Session,
    target: &Target,
    dest: &Destination,
    key: &str,
    dest_key: &str,
    action: &ObjectAction,
    options: &CopyOptions,
) -> anyhow::Result<()> {
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
            multipart_copy(
                session, target, dest, key, dest_key, version_id, *size, options,
            )
            .await?;
        }
        ObjectAction::Copy { version_id, .. } => {
            // Metadata and content headers are copied with the object; tags too unless asked;
            // its KMS key and storage class when set.
            let kept = kept_on_copy(&head(session, &target.bucket, key, Some(version_id)).await?);
            let mut copy = s3
                .copy_object()
                .bucket(&dest.bucket)
                .key(dest_key)
                .copy_source(copy_source(&target.bucket, key, version_id))
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
