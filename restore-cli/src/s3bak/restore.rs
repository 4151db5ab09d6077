//! `s3bak restore`: the fewest copies and delete markers that bring keys back to the time.
//!
//! Three steps: `plan` reads what each key needs, the executor applies the plan, and
//! `report` (pure) turns what became of each key into lines, a summary and an exit code.

use super::cli::Target;
use super::copy::{copy_source, long_copy, multipart_copy};
use super::download::readable;
use super::session::{s3_error, Selected, Session};
use crate::common::checktime;
use crate::common::execute::{Attempt, Executor};
use crate::common::exit::ExitCode;
use crate::common::output::{aws_error, print_lines, Line};
use crate::common::summary::{Outcome, Summary};
use crate::s3bak::objects::{self, Current, ObjectAction};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;

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

    /// How lines name where `key` (of `source_bucket`) goes: the key itself when it is
    /// restored in place, else the destination's URL.
    pub(crate) fn written_to(&self, source_bucket: &str, key: &str, dest_key: &str) -> String {
        if key == dest_key && self.bucket == source_bucket {
            key.to_owned()
        } else {
            format!("s3://{}/{dest_key}", self.bucket)
        }
    }
}

/// What every request of one restore works with: where from, where to, and how it copies.
pub(crate) struct RestoreContext<'a> {
    pub(crate) session: &'a Session,
    pub(crate) target: &'a Target,
    pub(crate) dest: &'a Destination,
    pub(crate) options: &'a CopyOptions,
}

/// One key of the plan: what brings it back, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedObject {
    pub(crate) key: String,
    pub(crate) dest_key: String,
    /// How lines name the destination ([`Destination::written_to`]).
    pub(crate) written_to: String,
    pub(crate) action: ObjectAction,
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

/// Brings the selected keys back to the time (a dry run only says how); the exit code is
/// partial when a key failed, was not attempted or needs a restore request.
pub(crate) async fn restore(
    ctx: &RestoreContext<'_>,
    selected: &[Selected],
    dry_run: bool,
    keep_going: bool,
) -> anyhow::Result<ExitCode> {
    let plan = plan(ctx, selected).await?;
    check_some_version(ctx.target, &plan)?;
    let executor = Executor::new(keep_going)
        .dry_run(dry_run)
        .stopping_everything_on(objects::is_bucket_wide)
        .with_progress();
    let attempts = executor
        .run(&plan, ctx.target.concurrency, |planned| apply(ctx, planned))
        .await;
    if let Some(refusal) = executor.stopped_everything_by(&attempts) {
        anyhow::bail!("{refusal}");
    }
    let report = report(&plan, &attempts, dry_run, ctx.target.is_tree());
    report.print();
    Ok(report.exit_code())
}

/// What each selected key needs, read from the destination and, when the bytes match, from
/// both versions' metadata.
async fn plan(
    ctx: &RestoreContext<'_>,
    selected: &[Selected],
) -> anyhow::Result<Vec<PlannedObject>> {
    let RestoreContext {
        session,
        target,
        dest,
        options,
    } = *ctx;
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
        plan.push(PlannedObject {
            written_to: dest.written_to(&target.bucket, &s.key, &dest_key),
            key: s.key.clone(),
            dest_key,
            action,
        });
    }
    Ok(plan)
}

/// A single key needs a version at or before the time; a tree may have none.
fn check_some_version(target: &Target, plan: &[PlannedObject]) -> anyhow::Result<()> {
    let single_key_without_version =
        !target.is_tree() && plan.iter().all(|p| p.action == ObjectAction::NoVersion);
    if single_key_without_version {
        anyhow::bail!(
            "no version of {} at or before {}",
            target.key,
            checktime::format(target.checktime)
        );
    }
    Ok(())
}

/// What became of one key, as the summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectOutcome {
    Copied,
    Deleted,
    Unchanged,
    Failed,
    NeedingRestoreRequest,
    NotAttempted,
}

impl Outcome for ObjectOutcome {
    const ALL: &'static [Self] = &[
        ObjectOutcome::Copied,
        ObjectOutcome::Deleted,
        ObjectOutcome::Unchanged,
        ObjectOutcome::Failed,
        ObjectOutcome::NeedingRestoreRequest,
        ObjectOutcome::NotAttempted,
    ];

    fn label(self) -> &'static str {
        match self {
            ObjectOutcome::Copied => "copied",
            ObjectOutcome::Deleted => "deleted",
            ObjectOutcome::Unchanged => "unchanged",
            ObjectOutcome::Failed => "failed",
            ObjectOutcome::NeedingRestoreRequest => "needing a restore request",
            ObjectOutcome::NotAttempted => "not attempted",
        }
    }

    /// Archived versions and keys left unattempted are exceptional: named only when there
    /// were some.
    fn always_shown(self) -> bool {
        !matches!(
            self,
            ObjectOutcome::NeedingRestoreRequest | ObjectOutcome::NotAttempted
        )
    }

    /// An archived version is not restored until its restore request is made and done.
    fn leaves_work_undone(self) -> bool {
        matches!(
            self,
            ObjectOutcome::Failed
                | ObjectOutcome::NeedingRestoreRequest
                | ObjectOutcome::NotAttempted
        )
    }
}

/// What a restore prints, in order, and the counts its exit code comes from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RestoreReport {
    pub(crate) lines: Vec<Line>,
    pub(crate) summary: Summary<ObjectOutcome>,
}

impl RestoreReport {
    fn print(&self) {
        print_lines(&self.lines);
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        self.summary.exit_code()
    }
}

/// The report of a restore from what became of each key of `plan` (`attempts`, in its order);
/// a dry run names what it would do instead of summing up. `tree`: the target is a prefix,
/// whose deletions are named one by one.
pub(crate) fn report(
    plan: &[PlannedObject],
    attempts: &[Attempt<(), anyhow::Error>],
    dry_run: bool,
    tree: bool,
) -> RestoreReport {
    let mut lines = Vec::new();
    let mut summary = Summary::default();
    for (planned, attempt) in plan.iter().zip(attempts) {
        let (counted_as, line) = outcome(planned, attempt, dry_run, tree);
        if let Some(counted_as) = counted_as {
            summary.add(counted_as);
        }
        lines.extend(line);
    }
    lines.push(Line::Stdout(if dry_run {
        "dry run: nothing written".to_owned()
    } else {
        summary.to_string()
    }));
    RestoreReport { lines, summary }
}

/// How one key is counted (a key without a version, or one a dry run would change, is not),
/// and the line it gets.
fn outcome(
    planned: &PlannedObject,
    attempt: &Attempt<(), anyhow::Error>,
    dry_run: bool,
    tree: bool,
) -> (Option<ObjectOutcome>, Option<Line>) {
    let PlannedObject {
        key,
        written_to,
        action,
        ..
    } = planned;
    match (action, attempt) {
        (ObjectAction::Unchanged, _) => (Some(ObjectOutcome::Unchanged), None),
        (
            ObjectAction::Archived {
                version_id,
                storage_class,
            },
            _,
        ) => (
            Some(ObjectOutcome::NeedingRestoreRequest),
            Some(Line::Stderr(format!(
                "needs a restore request: {key} version {version_id} is {storage_class}"
            ))),
        ),
        (ObjectAction::NoVersion, _) => (None, None),
        (_, Attempt::NotAttempted) if dry_run => (
            None,
            Some(Line::Stdout(format!(
                "would {}: {key} -> {written_to}",
                action.as_str()
            ))),
        ),
        (_, Attempt::NotAttempted) => (Some(ObjectOutcome::NotAttempted), None),
        (_, Attempt::Failed(e)) => (
            Some(ObjectOutcome::Failed),
            Some(Line::Stderr(format!("failed: {key}: {e:#}"))),
        ),
        (ObjectAction::Copy { .. }, Attempt::Succeeded(())) => (Some(ObjectOutcome::Copied), None),
        (ObjectAction::Delete, Attempt::Succeeded(())) => (
            Some(ObjectOutcome::Deleted),
            tree.then(|| Line::Stdout(format!("deleted (delete marker): {written_to}"))),
        ),
    }
}

/// Makes one key of the plan what it was: a copy of its version, or a delete marker.
pub(crate) async fn apply(ctx: &RestoreContext<'_>, planned: &PlannedObject) -> anyhow::Result<()> {
    let RestoreContext {
        session,
        target,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::output::Format;
    use Line::{Stderr, Stdout};

    fn target(key: &str) -> Target {
        Target {
            key: key.to_owned(),
            checktime: 0,
            bucket: "source".to_owned(),
            region: None,
            recursive: false,
            ssmbak_time: false,
            concurrency: 8,
            output: Format::Table,
            request_payer: false,
            bucket_owner: None,
        }
    }

    fn planned(key: &str, action: ObjectAction) -> PlannedObject {
        PlannedObject {
            key: key.to_owned(),
            dest_key: key.to_owned(),
            written_to: format!("s3://elsewhere/{key}"),
            action,
        }
    }

    fn copy() -> ObjectAction {
        ObjectAction::Copy {
            version_id: "v1".to_owned(),
            size: 3,
        }
    }

    fn archived() -> ObjectAction {
        ObjectAction::Archived {
            version_id: "v2".to_owned(),
            storage_class: "GLACIER".to_owned(),
        }
    }

    fn out(text: &str) -> Line {
        Stdout(text.to_owned())
    }

    fn err(text: &str) -> Line {
        Stderr(text.to_owned())
    }

    #[test]
    fn a_report_has_the_lines_the_summary_and_the_exit_code_of_what_became_of_each_key() {
        use Attempt::{Failed, NotAttempted, Succeeded};
        let failed = || Failed(anyhow::anyhow!("AccessDenied: no").context("copying a version v1"));
        struct Case {
            why: &'static str,
            keys: Vec<(ObjectAction, Attempt<(), anyhow::Error>)>,
            dry_run: bool,
            tree: bool,
            lines: Vec<Line>,
            exit: ExitCode,
        }
        let cases = [
            Case {
                why: "a tree restored: its delete markers named",
                keys: vec![
                    (copy(), Succeeded(())),
                    (ObjectAction::Delete, Succeeded(())),
                    (ObjectAction::Unchanged, Succeeded(())),
                    (ObjectAction::NoVersion, Succeeded(())),
                ],
                dry_run: false,
                tree: true,
                lines: vec![
                    out("deleted (delete marker): s3://elsewhere/b"),
                    out("copied 1, deleted 1, unchanged 1, failed 0"),
                ],
                exit: ExitCode::Success,
            },
            Case {
                why: "a single key's delete marker is not named",
                keys: vec![(ObjectAction::Delete, Succeeded(()))],
                dry_run: false,
                tree: false,
                lines: vec![out("copied 0, deleted 1, unchanged 0, failed 0")],
                exit: ExitCode::Success,
            },
            Case {
                why: "a failure stopped the run",
                keys: vec![
                    (copy(), failed()),
                    (copy(), NotAttempted),
                    (copy(), NotAttempted),
                ],
                dry_run: false,
                tree: true,
                lines: vec![
                    err("failed: a: copying a version v1: AccessDenied: no"),
                    out("copied 0, deleted 0, unchanged 0, failed 1, not attempted 2"),
                ],
                exit: ExitCode::Partial,
            },
            Case {
                why: "an archived version needs a restore request",
                keys: vec![(archived(), Succeeded(())), (copy(), Succeeded(()))],
                dry_run: false,
                tree: true,
                lines: vec![
                    err("needs a restore request: a version v2 is GLACIER"),
                    out("copied 1, deleted 0, unchanged 0, failed 0, needing a restore request 1"),
                ],
                exit: ExitCode::Partial,
            },
            Case {
                why: "a dry run names what it would do",
                keys: vec![
                    (copy(), NotAttempted),
                    (ObjectAction::Delete, NotAttempted),
                    (ObjectAction::Unchanged, NotAttempted),
                ],
                dry_run: true,
                tree: true,
                lines: vec![
                    out("would copy: a -> s3://elsewhere/a"),
                    out("would delete: b -> s3://elsewhere/b"),
                    out("dry run: nothing written"),
                ],
                exit: ExitCode::Success,
            },
            Case {
                why: "a dry run still needs the restore requests",
                keys: vec![(archived(), NotAttempted)],
                dry_run: true,
                tree: false,
                lines: vec![
                    err("needs a restore request: a version v2 is GLACIER"),
                    out("dry run: nothing written"),
                ],
                exit: ExitCode::Partial,
            },
        ];
        for case in cases {
            let keys = ["a", "b", "c", "d"];
            let (plan, attempts): (Vec<_>, Vec<_>) = case
                .keys
                .into_iter()
                .zip(keys)
                .map(|((action, attempt), key)| (planned(key, action), attempt))
                .unzip();
            let report = report(&plan, &attempts, case.dry_run, case.tree);
            assert_eq!(report.lines, case.lines, "{}", case.why);
            assert_eq!(report.exit_code(), case.exit, "{}", case.why);
        }
    }

    #[test]
    fn the_summary_counts_every_outcome_zeros_too_in_json() {
        let mut summary = Summary::default();
        summary.add(ObjectOutcome::Copied);
        summary.add(ObjectOutcome::NeedingRestoreRequest);
        assert_eq!(
            summary.to_json(),
            serde_json::json!({
                "copied": 1, "deleted": 0, "unchanged": 0, "failed": 0,
                "needing_a_restore_request": 1, "not_attempted": 0,
            })
        );
    }

    #[test]
    fn lines_name_a_key_restored_in_place_by_itself_and_any_other_by_its_url() {
        let in_place = Destination {
            bucket: "source".to_owned(),
            prefix: None,
        };
        assert_eq!(in_place.written_to("source", "d/a", "d/a"), "d/a");
        let other_bucket = Destination {
            bucket: "other".to_owned(),
            prefix: None,
        };
        assert_eq!(
            other_bucket.written_to("source", "d/a", "d/a"),
            "s3://other/d/a"
        );
        let other_prefix = Destination {
            bucket: "source".to_owned(),
            prefix: Some("e/".to_owned()),
        };
        let tree = target("d/");
        let dest_key = other_prefix.key(&tree, "d/x/a");
        assert_eq!(dest_key, "e/x/a");
        assert_eq!(
            other_prefix.written_to("source", "d/x/a", &dest_key),
            "s3://source/e/x/a"
        );
    }

    #[test]
    fn only_a_single_key_needs_a_version() {
        let none = [planned("k", ObjectAction::NoVersion)];
        let error = check_some_version(&target("k"), &none).expect_err("no version");
        assert_eq!(
            error.to_string(),
            "no version of k at or before 1970-01-01T00:00:00Z"
        );
        assert!(check_some_version(&target("d/"), &[]).is_ok());
        assert!(check_some_version(&target("k"), &[planned("k", copy())]).is_ok());
    }
}
