//! parliament on the IAM policies, as a gate that cannot be skipped.
//!
//! parliament skips every statement that holds an action its IAM database does not know, and
//! reports the unknown action only at LOW: one new action hid a whole statement (cfn-execution's
//! bucket, log group and function grants) from every check. So an unknown action fails here
//! unless it is in [`NEWER_THAN_PARLIAMENT`], whose actions are taken out of a copy of the
//! policy before it is analysed (the rest of their statement is then read), and which is
//! re-checked on every run to be still unknown. The community auditors run too. Any finding
//! at MEDIUM or above fails unless [`JUSTIFIED`] names it and says why, and a justification
//! whose finding no longer occurs fails as well, so the list only shrinks.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

pub(crate) const PINNED: &str = "parliament==1.6.4";

/// Actions AWS added after the pinned parliament's database, with where AWS documents each.
pub(crate) const NEWER_THAN_PARLIAMENT: [(&str, &str); 6] = [
    (
        "s3:GetBucketAbac",
        "https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketAbac.html",
    ),
    (
        "s3:PutBucketAbac",
        "https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketAbac.html",
    ),
    (
        "logs:PutBearerTokenAuthentication",
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutBearerTokenAuthentication.html",
    ),
    (
        "logs:PutLogGroupDeletionProtection",
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogGroupDeletionProtection.html",
    ),
    (
        "lambda:GetFunctionScalingConfig",
        "https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionScalingConfig.html",
    ),
    (
        "lambda:PutFunctionScalingConfig",
        "https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionScalingConfig.html",
    ),
];

/// Findings at MEDIUM or above that stay, each with its reason: (policy file, issue, a part of
/// its subject (the escalation's type, the detail or the actions), why). Those marked "open"
/// are issue 29's.
pub(crate) const JUSTIFIED: [(&str, &str, &str, &str); 4] = [
    (
        "cfn-execution.json",
        "PRIVILEGE_ESCALATION",
        "PassExistingRoleToNewLambdaThenTriggerWithExistingDynamo",
        "CloudFormation creates the function with the data stack's role, which an administrator made (PassRole of STACK-backup-function only, to lambda.amazonaws.com only); the CI cannot create or change a role",
    ),
    (
        "cfn-execution.json",
        "PRIVILEGE_ESCALATION",
        "EditExistingLambdaFunctionWithRole",
        "deploying new code is what a deploy does; the code runs as the data stack's role, which the CI cannot change (issue 29, path A: open)",
    ),
    (
        "cfn-execution.json",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "lambda:addpermission",
        "the schedule's invoke permission (lambda:AddPermission on the stack's function) and the queue policy's handler",
    ),
    (
        "cfn-execution.json",
        "RESOURCE_MISMATCH",
        "logs:PutIndexPolicy",
        "the log group handler's index policy calls, on the stack's log group; parliament's database lists no resource type for them, but the API takes a log group (PutIndexPolicy's logGroupIdentifier) and AWS's own roles scope them to log-group ARNs (Bedrock AgentCore's evaluation role): parliament's database is behind",
    ),
];

/// One finding of parliament's `--json` output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    issue: String,
    severity: String,
    /// What it is about: the escalation's type, the unknown action, or the detail.
    subject: String,
}

impl Finding {
    fn parse(line: &str) -> anyhow::Result<Self> {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("parliament said {line:?}"))?;
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let location = &v["location"];
        let subject = [&location["type"], &location["string"], &v["detail"]]
            .into_iter()
            .map(text)
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| text(&location["actions"]));
        Ok(Finding {
            issue: text(&v["issue"]),
            severity: text(&v["severity"]),
            subject,
        })
    }

    fn at_least_medium(&self) -> bool {
        matches!(self.severity.as_str(), "MEDIUM" | "HIGH" | "CRITICAL")
    }
}

/// The findings on `policy` (a filled-in document).
fn analyse(parliament: &Path, policy: &str) -> anyhow::Result<Vec<Finding>> {
    let out = Command::new(parliament)
        .args(["--json", "--minimum_severity", "LOW"])
        .arg("--include-community-auditors")
        .args(["--string", policy])
        .stdin(std::process::Stdio::null())
        .output()
        .context("running parliament")?;
    // 0: nothing found; 1: findings (on stdout).
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!(
            "parliament failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(Finding::parse)
        .collect()
}

/// `policy` without the actions of [`NEWER_THAN_PARLIAMENT`] (and without a statement left
/// with none), so parliament reads the rest of their statements.
fn without_newer_actions(policy: &str) -> anyhow::Result<String> {
    let mut doc: serde_json::Value = serde_json::from_str(policy).context("policy JSON")?;
    let newer = |a: &serde_json::Value| {
        NEWER_THAN_PARLIAMENT
            .iter()
            .any(|(n, _)| a.as_str().is_some_and(|a| a.eq_ignore_ascii_case(n)))
    };
    if let Some(statements) = doc["Statement"].as_array_mut() {
        for s in statements.iter_mut() {
            if let Some(actions) = s["Action"].as_array_mut() {
                actions.retain(|a| !newer(a));
            }
        }
        statements.retain(|s| s["Action"].as_array().is_none_or(|a| !a.is_empty()));
    }
    Ok(doc.to_string())
}

/// What is wrong with `findings` on `file`; marks the justifications used in `used`.
fn problems_of(file: &str, findings: &[Finding], used: &mut [bool]) -> Vec<String> {
    let mut out = Vec::new();
    for f in findings {
        if f.issue == "UNKNOWN_ACTION" {
            out.push(format!(
                "{file}: {} is an action parliament does not know, so it skips the statement: \
                 if AWS documents it, add it to NEWER_THAN_PARLIAMENT with its source",
                f.subject
            ));
            continue;
        }
        if !f.at_least_medium() {
            continue;
        }
        let justified = JUSTIFIED.iter().position(|(policy, issue, part, _)| {
            *policy == file && *issue == f.issue && f.subject.contains(part)
        });
        match justified {
            Some(i) => used[i] = true,
            None => out.push(format!("{file}: {} {}: {}", f.severity, f.issue, f.subject)),
        }
    }
    out
}

/// Every problem of the policies in `root`'s `policies/iam/` (filled with example values) and
/// of the template's inline policies.
pub(crate) fn check(parliament: &Path, root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = &root.join("policies/iam");
    let mut problems = Vec::new();
    // The allowlist stays honest: each action is still unknown to the pinned parliament.
    let only_newer = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": NEWER_THAN_PARLIAMENT.map(|(a, _)| a), "Resource": "*"}]
    });
    let unknown = analyse(parliament, &only_newer.to_string())?;
    for (action, _) in NEWER_THAN_PARLIAMENT {
        if !unknown
            .iter()
            .any(|f| f.issue == "UNKNOWN_ACTION" && f.subject == action)
        {
            problems.push(format!(
                "{action}: {PINNED} knows it now; take it out of NEWER_THAN_PARLIAMENT"
            ));
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut used = [false; JUSTIFIED.len()];
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = crate::iam::Placeholders::example().fill(&std::fs::read_to_string(&file)?);
        let findings = analyse(parliament, &without_newer_actions(&text)?)?;
        problems.extend(problems_of(&name, &findings, &mut used));
    }
    // The template's inline policies, as the example deployment with every option on.
    for template_name in crate::validate::TEMPLATES {
        let template = std::fs::read_to_string(root.join(template_name))?;
        for (name, document) in crate::template::inline_policies(&template)? {
            let name = format!("{template_name} {name}");
            let findings = analyse(parliament, &without_newer_actions(&document.to_string())?)?;
            problems.extend(problems_of(&name, &findings, &mut used));
        }
    }
    for (i, (policy, issue, part, _)) in JUSTIFIED.iter().enumerate() {
        if !used[i] {
            problems.push(format!(
                "{policy}: {issue} on {part:?} is justified but no longer found: remove it from JUSTIFIED"
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_actions_are_taken_out_and_empty_statements_dropped() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:GetBucketAbac","s3:GetBucketTagging"],"Resource":"*"},
            {"Effect":"Allow","Action":["lambda:PutFunctionScalingConfig"],"Resource":"*"},
            {"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#;
        let out: serde_json::Value =
            serde_json::from_str(&without_newer_actions(policy).expect("JSON")).expect("JSON");
        let statements = out["Statement"].as_array().expect("statements");
        assert_eq!(statements.len(), 2);
        assert_eq!(
            statements[0]["Action"],
            serde_json::json!(["s3:GetBucketTagging"])
        );
        assert_eq!(statements[1]["Action"], "sts:GetCallerIdentity");
    }

    #[test]
    fn an_unknown_action_fails_and_only_justified_findings_pass() {
        let lines = [
            r#"{"issue": "UNKNOWN_ACTION", "severity": "LOW", "detail": "Unknown action s3:Brandnew", "location": {"string": "s3:Brandnew", "line": 1}}"#,
            r#"{"issue": "PRIVILEGE_ESCALATION", "severity": "HIGH", "detail": "", "location": {"type": "PassExistingRoleToNewLambdaThenTriggerWithExistingDynamo", "actions": ["iam:passrole"]}}"#,
            r#"{"issue": "PRIVILEGE_ESCALATION", "severity": "HIGH", "detail": "", "location": {"type": "CreateAccessKey", "actions": ["iam:createaccesskey"]}}"#,
            r#"{"issue": "MISMATCHED_TYPE_BUT_USABLE", "severity": "LOW", "detail": "Type mismatch", "location": {}}"#,
            r#"{"issue": "PERMISSIONS_MANAGEMENT_ACTIONS", "severity": "MEDIUM", "detail": "", "location": {"actions": ["lambda:addpermission"]}}"#,
        ];
        let findings: Vec<Finding> = lines
            .iter()
            .map(|l| Finding::parse(l).expect("parses"))
            .collect();
        assert_eq!(findings[4].subject, r#"["lambda:addpermission"]"#);
        let mut used = [false; JUSTIFIED.len()];
        let problems = problems_of("cfn-execution.json", &findings, &mut used);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("s3:Brandnew is an action parliament does not know"));
        assert!(problems[1].contains("HIGH PRIVILEGE_ESCALATION: CreateAccessKey"));
        assert_eq!(used.iter().filter(|u| **u).count(), 2);
        // The same findings on another policy are not justified by cfn-execution.json's reasons.
        let mut unused = [false; JUSTIFIED.len()];
        assert_eq!(
            problems_of("seed-all.json", &findings, &mut unused).len(),
            4
        );
    }
}
