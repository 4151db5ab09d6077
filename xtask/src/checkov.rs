//! checkov on both templates, pinned and installed under `target/` like the other checkers:
//! every finding is fixed or listed, with its reason, in `policies/checkov-accepted.yml`, and
//! every listed one is still found (a stale reason is as wrong as a missing one).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::util;

const CHECKOV: &str = "checkov==3.3.30";

/// The accepted findings' file.
const ACCEPTED: &str = "policies/checkov-accepted.yml";

/// One finding: (check id, template file, resource).
type Finding = (String, String, String);

#[derive(serde::Deserialize)]
struct Accepted {
    check: String,
    file: String,
    resource: String,
    why: String,
}

fn accepted(root: &Path) -> anyhow::Result<Vec<Accepted>> {
    let text = std::fs::read_to_string(root.join(ACCEPTED)).context(ACCEPTED)?;
    let list: Vec<Accepted> = serde_yaml::from_str(&text).context(ACCEPTED)?;
    if let Some(a) = list.iter().find(|a| a.why.trim().len() < 20) {
        bail!("{ACCEPTED}: {} on {} needs a reason", a.check, a.resource);
    }
    Ok(list)
}

/// The failed checks of checkov's JSON report (one framework's object, or a list of them).
fn findings(report: &str) -> anyhow::Result<BTreeSet<Finding>> {
    let report: serde_json::Value = serde_json::from_str(report).context("checkov's report")?;
    let reports = match report {
        serde_json::Value::Array(list) => list,
        one => vec![one],
    };
    let mut out = BTreeSet::new();
    for r in &reports {
        for f in r["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let field = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            let file = field("file_path").trim_start_matches('/').to_owned();
            out.insert((field("check_id"), file, field("resource")));
        }
    }
    Ok(out)
}

/// What is wrong between the findings and the accepted list, one line each.
fn problems(found: &BTreeSet<Finding>, accepted: &[Accepted]) -> Vec<String> {
    let listed: BTreeSet<Finding> = accepted
        .iter()
        .map(|a| (a.check.clone(), a.file.clone(), a.resource.clone()))
        .collect();
    let new = found.difference(&listed).map(|(c, f, r)| {
        format!("checkov: {c} on {r} ({f}): fix it, or list it with a reason in {ACCEPTED}")
    });
    let stale = listed
        .difference(found)
        .map(|(c, f, r)| format!("{ACCEPTED}: {c} on {r} ({f}) is no longer found: remove it"));
    new.chain(stale).collect()
}

pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let venv = root.join("target/checkov-venv");
    let checkov = venv.join("bin/checkov");
    util::pip_install(&venv, &[CHECKOV], checkov.exists(), "checkov")?;
    let mut cmd = Command::new(&checkov);
    cmd.current_dir(root).args([
        "--framework",
        "cloudformation",
        "--quiet",
        "--compact",
        "-o",
        "json",
    ]);
    for template in crate::validate::TEMPLATES {
        cmd.args(["-f", template]);
    }
    // checkov exits 1 when a check fails: the report, not the status, is read.
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", checkov.display()))?;
    let report = String::from_utf8_lossy(&out.stdout);
    let found = findings(&report).with_context(|| {
        format!(
            "checkov gave no report: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let accepted = accepted(root)?;
    let problems = problems(&found, &accepted);
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    eprintln!(
        "checkov: every finding on the templates is listed with its reason ({} in {ACCEPTED})",
        accepted.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_finding_has_its_reason() {
        let list = accepted(&crate::util::project_root()).expect("reads");
        assert!(!list.is_empty());
        for a in &list {
            assert!(
                crate::validate::TEMPLATES.contains(&a.file.as_str()),
                "{}",
                a.file
            );
            assert!(a.check.starts_with("CKV_"), "{}", a.check);
        }
    }

    #[test]
    fn a_new_finding_and_a_stale_reason_both_fail() {
        let report = r#"{"check_type": "cloudformation", "results": {"failed_checks": [
            {"check_id": "CKV_AWS_27", "file_path": "/cfn/template.yml", "resource": "AWS::SQS::Queue.Queue"},
            {"check_id": "CKV_AWS_999", "file_path": "/cfn/data.yml", "resource": "AWS::S3::Bucket.Bucket"}]}}"#;
        let found = findings(report).expect("parses");
        let accepted = [
            Accepted {
                check: "CKV_AWS_27".to_owned(),
                file: "cfn/template.yml".to_owned(),
                resource: "AWS::SQS::Queue.Queue".to_owned(),
                why: "a reason long enough to read".to_owned(),
            },
            Accepted {
                check: "CKV_AWS_26".to_owned(),
                file: "cfn/template.yml".to_owned(),
                resource: "AWS::SNS::Topic.AlarmTopic".to_owned(),
                why: "a reason long enough to read".to_owned(),
            },
        ];
        let problems = problems(&found, &accepted);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("CKV_AWS_999"));
        assert!(problems[1].contains("CKV_AWS_26") && problems[1].contains("no longer found"));
    }
}
