//! Whether the function is the release its stack deploys: only then may it start the bucket's
//! late-writes lease (see `ssmbak_core::late`, "What breaks it").
//!
//! During a stack update the new code runs before the update is known to succeed; if the
//! update fails, CloudFormation rolls the function back to the release before, which may not
//! mark its late writes. A lease started by the new code in between would vouch for that
//! release's writes until it lapses (12 hours). And an invocation may outlive an update of its
//! function's code by up to its timeout. So a lease is started only while the stack is in a
//! state no rollback follows and its `ArtifactKey` (content-addressed) is this code's.

use std::sync::Arc;

use aws_config::SdkConfig;
use ssmbak_core::backup::LeaseStart;
use tracing::{info, warn};

/// Stack states that no automatic rollback follows: CloudFormation's "last known stable
/// state[s]" (API reference, RollbackStack: `CREATE_COMPLETE`, `UPDATE_COMPLETE`,
/// `UPDATE_ROLLBACK_COMPLETE`, `IMPORT_COMPLETE`, `IMPORT_ROLLBACK_COMPLETE`), and
/// `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`, where the update succeeded and only old resources
/// are being removed. After a rollback the stack runs, and names, the release rolled back to.
const STABLE: [&str; 6] = [
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
];

/// The template parameter naming the function's code.
pub const ARTIFACT_PARAMETER: &str = "ArtifactKey";

/// Whether the function whose code is `own_artifact` is what a stack in `status`, with
/// `deployed_artifact` as its [`ARTIFACT_PARAMETER`], runs for good.
pub fn runs_for_good(status: &str, deployed_artifact: Option<&str>, own_artifact: &str) -> bool {
    STABLE.contains(&status) && deployed_artifact == Some(own_artifact)
}

/// Lets the function start a lease while `stack` (a name or id) runs its code (`artifact`) for
/// good ([`runs_for_good`]), asking CloudFormation (`DescribeStacks`) each time a lease is to
/// be started. An answer it cannot get starts nothing: the bucket's readers then read exactly,
/// as without a lease.
pub fn lease_start(sdk: &SdkConfig, stack: &str, artifact: &str) -> LeaseStart {
    let mut builder = aws_sdk_cloudformation::config::Builder::from(sdk);
    if let Some(r) = ssmbak_core::record::recorder("lambda") {
        builder = builder.interceptor(r);
    }
    let cfn = aws_sdk_cloudformation::Client::from_conf(builder.build());
    let (stack, artifact) = (stack.to_owned(), artifact.to_owned());
    LeaseStart::When(Arc::new(move || {
        let (cfn, stack, artifact) = (cfn.clone(), stack.clone(), artifact.clone());
        Box::pin(async move {
            match cfn.describe_stacks().stack_name(&stack).send().await {
                Ok(out) => {
                    let found = out.stacks().first();
                    let status = found
                        .and_then(|s| s.stack_status())
                        .map_or("", |s| s.as_str());
                    let deployed = found
                        .into_iter()
                        .flat_map(|s| s.parameters())
                        .find_map(|p| {
                            (p.parameter_key() == Some(ARTIFACT_PARAMETER))
                                .then(|| p.parameter_value())
                                .flatten()
                        });
                    let for_good = runs_for_good(status, deployed, &artifact);
                    if !for_good {
                        info!(
                            stack,
                            status,
                            deployed,
                            artifact,
                            "the stack is not running this code for good: no late-writes lease started"
                        );
                    }
                    for_good
                }
                Err(e) => {
                    let e = aws_sdk_cloudformation::error::DisplayErrorContext(&e);
                    warn!(stack, error = %e, "cannot read the stack's status: no late-writes lease started");
                    false
                }
            }
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_finished_deploy_of_this_code_runs_for_good() {
        for status in STABLE {
            assert!(runs_for_good(status, Some("a"), "a"), "{status}");
            // Another release deployed since, or an invocation that outlived a rollback.
            assert!(!runs_for_good(status, Some("b"), "a"), "{status}");
            assert!(!runs_for_good(status, None, "a"), "{status}");
        }
        // The new code runs during an update that may still roll back.
        for status in [
            "CREATE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_FAILED",
            "ROLLBACK_COMPLETE",
            "DELETE_IN_PROGRESS",
            "",
        ] {
            assert!(!runs_for_good(status, Some("a"), "a"), "{status}");
        }
    }
}
