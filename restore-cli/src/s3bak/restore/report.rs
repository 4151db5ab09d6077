//! What a restore prints and its exit code, from what became of each key (pure).

use super::plan::PlannedObject;
use crate::common::execute::Attempt;
use crate::common::exit::ExitCode;
use crate::common::output::{print_lines, Line};
use crate::common::summary::{Outcome, Summary};
use crate::s3bak::objects::ObjectAction;

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
    pub(crate) fn print(&self) {
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

#[cfg(test)]
mod tests {
    use super::super::plan::fixtures::{archived, copy, planned};
    use super::*;
    use Line::{Stderr, Stdout};

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
}
