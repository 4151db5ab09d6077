//! The workflows' security properties, checked as repository tests: whoever can push a change
//! to `.github/workflows/deploy.yml` or `release.yml` sees it fail here before it lands.
//!
//! - every action pinned to a 40-character commit, its tag in a comment (a tag can be moved);
//! - no permissions by default; the OIDC token (`id-token: write`) in the deploy job alone,
//!   which runs in the `production` environment after the test job;
//! - AWS credentials configured only after everything is built, and only in that job;
//! - locked builds (`--locked`: the lockfile as reviewed) and a timeout on every job;
//! - the release: attestations made in the jobs that build, for everything they build, and
//!   `contents: write` only in the job that publishes, which runs nothing of the repository's.

#[cfg(test)]
mod tests {
    use serde_yaml::Value;

    const WORKFLOW: &str = ".github/workflows/deploy.yml";
    const RELEASE: &str = ".github/workflows/release.yml";
    const ATTEST: &str = "actions/attest-build-provenance@";
    const CREDENTIALS: &str = "aws-actions/configure-aws-credentials@";

    fn workflow() -> (String, Value) {
        read(WORKFLOW)
    }

    fn read(path: &str) -> (String, Value) {
        let text = std::fs::read_to_string(crate::util::project_root().join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc = serde_yaml::from_str(&text).expect("YAML");
        (text, doc)
    }

    fn steps(job: &Value) -> Vec<&Value> {
        job["steps"].as_sequence().expect("steps").iter().collect()
    }

    fn uses(step: &Value) -> &str {
        step["uses"].as_str().unwrap_or_default()
    }

    /// The workflow's jobs, by name, with their own permissions, after checking what every
    /// job of every workflow must have: no permissions by default, a timeout on each job.
    fn jobs_with_permissions(doc: &Value) -> Vec<(&str, &Value, &serde_yaml::Mapping)> {
        let top = doc["permissions"]
            .as_mapping()
            .expect("top-level permissions");
        assert!(top.is_empty(), "top-level permissions must be {{}}");
        let jobs = doc["jobs"].as_mapping().expect("jobs");
        jobs.iter()
            .map(|(name, job)| {
                let name = name.as_str().unwrap_or_default();
                assert!(
                    job["timeout-minutes"].as_u64().is_some_and(|m| m > 0),
                    "{name}: no timeout-minutes"
                );
                let permissions = job["permissions"].as_mapping().expect("job permissions");
                (name, job, permissions)
            })
            .collect()
    }

    #[test]
    fn every_action_is_pinned_to_a_commit_with_its_tag_beside_it() {
        let texts = [read(WORKFLOW).0, read(RELEASE).0];
        let lines: Vec<&str> = texts
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| l.contains("uses:"))
            .collect();
        assert!(!lines.is_empty());
        for line in lines {
            let (action, comment) = line
                .split_once("uses:")
                .map(|(_, rest)| rest.split_once('#').unwrap_or((rest, "")))
                .expect("uses");
            let sha = action.trim().rsplit_once('@').map_or("", |(_, r)| r);
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "not pinned to a commit: {line}"
            );
            assert!(
                !comment.trim().is_empty(),
                "no tag beside the commit: {line}"
            );
        }
    }

    #[test]
    fn only_the_deploy_job_gets_the_oidc_token_after_the_tests() {
        let (_, doc) = workflow();
        let test = &doc["jobs"]["test"];
        let deploy = &doc["jobs"]["deploy"];
        assert!(
            test.is_mapping() && deploy.is_mapping(),
            "a test and a deploy job"
        );
        assert_eq!(deploy["needs"], Value::from("test"));
        assert_eq!(deploy["environment"], Value::from("production"));
        assert_eq!(deploy["permissions"]["id-token"], Value::from("write"));
        for (name, job, permissions) in jobs_with_permissions(&doc) {
            for (scope, level) in permissions {
                let (scope, level) = (scope.as_str(), level.as_str());
                let allowed = matches!((scope, level), (Some("contents"), Some("read")))
                    || (name == "deploy" && scope == Some("id-token") && level == Some("write"));
                assert!(allowed, "{name}: {scope:?}: {level:?}");
            }
            if name != "deploy" {
                assert!(
                    steps(job).iter().all(|s| !uses(s).starts_with(CREDENTIALS)),
                    "{name}: AWS credentials outside the deploy job"
                );
            }
        }
        // In the deploy job, credentials come after the build and before what needs them.
        let steps = steps(deploy);
        let credentials = steps
            .iter()
            .position(|s| uses(s).starts_with(CREDENTIALS))
            .expect("the deploy job configures credentials");
        let built = steps
            .iter()
            .position(|s| s["run"].as_str().is_some_and(|r| r.contains("cargo build")))
            .expect("the deploy job builds first");
        assert!(built < credentials, "credentials before the build");
        for step in &steps[..credentials] {
            let run = step["run"].as_str().unwrap_or_default();
            assert!(
                !run.contains("deploy") && !run.contains("aws "),
                "an AWS call before credentials: {run}"
            );
        }
    }

    #[test]
    fn every_build_is_locked() {
        let docs = [read(WORKFLOW).1, read(RELEASE).1];
        let runs = docs
            .iter()
            .flat_map(|d| d["jobs"].as_mapping().expect("jobs").values())
            .flat_map(steps)
            .filter_map(|s| s["run"].as_str());
        let cargo: Vec<&str> = runs
            .flat_map(str::lines)
            .filter(|l| l.trim_start().starts_with("cargo ") || l.contains(" cargo "))
            .collect();
        assert!(!cargo.is_empty());
        for line in cargo {
            assert!(line.contains("--locked"), "not locked: {line}");
        }
    }

    /// The release: no permissions by default; the jobs that build may read the repository
    /// and sign attestations, and attest everything they upload; the job that publishes may
    /// write the release, and runs no code of the repository's (it only downloads what the
    /// others built and attested); the job that updates the Homebrew tap holds no permission
    /// of this repository's, runs none of its code, and alone sees a secret (the tap's token).
    #[test]
    fn the_release_attests_what_it_builds_and_publishes_with_least_permissions() {
        let (text, doc) = read(RELEASE);
        let mut builders = 0;
        let mut secret_holders = Vec::new();
        for (name, job, permissions) in jobs_with_permissions(&doc) {
            let grant = |scope: &str| permissions.get(scope).and_then(Value::as_str);
            let steps = steps(job);
            let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
            let only_downloads = || {
                steps.iter().all(|s| {
                    s["uses"].is_null() || uses(s).starts_with("actions/download-artifact@")
                }) && runs
                    .iter()
                    .all(|r| !r.contains("cargo") && !r.contains("./"))
            };
            if steps.iter().any(|s| {
                s["env"].as_mapping().is_some_and(|env| {
                    env.values()
                        .any(|v| v.as_str().is_some_and(|v| v.contains("secrets.")))
                })
            }) {
                secret_holders.push(name);
            }
            if permissions.is_empty() {
                assert!(only_downloads(), "{name}: runs the repository's code");
                continue;
            }
            if grant("contents") == Some("write") {
                assert_eq!(permissions.len(), 1, "{name}: contents: write and more");
                assert!(
                    only_downloads(),
                    "{name}: the publishing job checks out, builds or runs the repository's code"
                );
                continue;
            }
            builders += 1;
            for (scope, level) in permissions {
                let allowed = matches!(
                    (scope.as_str(), level.as_str()),
                    (Some("contents"), Some("read"))
                        | (Some("id-token"), Some("write"))
                        | (Some("attestations"), Some("write"))
                );
                assert!(allowed, "{name}: {scope:?}: {level:?}");
            }
            let built = steps
                .iter()
                .position(|s| {
                    s["run"].as_str().is_some_and(|r| {
                        r.contains("xtask -- dist") || r.contains("xtask -- formula")
                    })
                })
                .unwrap_or_else(|| panic!("{name}: no `cargo xtask dist` or `formula`"));
            let attested = steps
                .iter()
                .position(|s| uses(s).starts_with(ATTEST))
                .unwrap_or_else(|| panic!("{name}: no attestation"));
            let uploaded = steps
                .iter()
                .position(|s| uses(s).starts_with("actions/upload-artifact@"))
                .unwrap_or_else(|| panic!("{name}: nothing uploaded"));
            assert!(
                built < attested && attested < uploaded,
                "{name}: attest after building, before uploading"
            );
            let subjects = steps[attested]["with"]["subject-path"]
                .as_str()
                .unwrap_or_default();
            let uploads = steps[uploaded]["with"]["path"].as_str().unwrap_or_default();
            for artifact in uploads
                .lines()
                .map(str::trim)
                .filter(|l| !l.ends_with(".sha256"))
            {
                assert!(
                    subjects.contains(artifact),
                    "{name}: {artifact} uploaded without an attestation"
                );
            }
        }
        assert_eq!(builders, 3, "a Linux and a macOS build, and the formula");
        assert_eq!(
            secret_holders,
            ["tap"],
            "secrets only where the tap is written"
        );
        assert_eq!(
            text.matches("secrets.").count(),
            1,
            "one secret, the tap's token"
        );
        assert!(
            text.contains("if: vars.HOMEBREW_TAP != ''"),
            "the tap job runs only where a tap is set"
        );
    }
}
