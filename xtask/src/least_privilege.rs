//! Least privilege, checked against what the code really calls.
//!
//! `cargo xtask test` runs every test with `SSMBAK_RECORD_OPERATIONS` set, so each component
//! (the Lambda, `ssmbak` previewing, `ssmbak` restoring, seed-all, deploy) records every AWS
//! operation it calls (see `ssmbak_core::record`). Then each policy must grant the actions
//! behind those operations, and grant nothing else unless a line below says why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context};
use ssmbak_core::record::WITHOUT_OWNER;

/// Component (as recorded) → the policy that governs it.
const POLICIES: [(&str, &str); 5] = [
    ("lambda", "cfn/data.yml"),
    ("operator-preview", "policies/iam/operator-preview.json"),
    ("operator-restore", "policies/iam/operator-restore.json"),
    ("seed-all", "policies/iam/seed-all.json"),
    ("deploy", "policies/iam/deployer.json"),
];

/// The two sides of a restore into another account (`--to-profile`): each must grant what its
/// side calls. They are not held to "nothing else": the cross-account tests call only part of
/// the executor, and `the_two_sides_of_a_cross_account_restore_split_operator_restore` holds
/// every statement of theirs to `operator-restore.json`'s, which is held to "nothing else".
const COVERS_ONLY: [(&str, &str); 2] = [
    (
        "operator-restore-source",
        "policies/iam/operator-restore-source.json",
    ),
    (
        "operator-restore-destination",
        "policies/iam/operator-restore-destination.json",
    ),
];

/// Granted without being an API call of ours, and why.
const JUSTIFIED: [(&str, &str, &str); 26] = [
    (
        "lambda",
        "logs:CreateLogStream",
        "the Lambda service writes the function's logs",
    ),
    (
        "lambda",
        "logs:PutLogEvents",
        "the Lambda service writes the function's logs",
    ),
    (
        "lambda",
        "sqs:ReceiveMessage",
        "the event source mapping polls the queue with the role",
    ),
    (
        "lambda",
        "sqs:DeleteMessage",
        "the event source mapping deletes what succeeded",
    ),
    (
        "lambda",
        "sqs:GetQueueAttributes",
        "the event source mapping reads the queue",
    ),
    (
        "lambda",
        "sqs:ChangeMessageVisibility",
        "the event source mapping returns failed records",
    ),
    (
        "lambda",
        "kms:Decrypt",
        "SSM decrypts SecureStrings with the caller's rights",
    ),
    (
        "lambda",
        "ec2:AssignPrivateIpAddresses",
        "VPC mode: the Lambda service attaches the function to the subnets with the role",
    ),
    (
        "lambda",
        "ec2:CreateNetworkInterface",
        "VPC mode: the Lambda service attaches the function to the subnets with the role",
    ),
    (
        "lambda",
        "ec2:DeleteNetworkInterface",
        "VPC mode: the Lambda service attaches the function to the subnets with the role",
    ),
    (
        "lambda",
        "ec2:DescribeNetworkInterfaces",
        "VPC mode: the Lambda service attaches the function to the subnets with the role",
    ),
    (
        "lambda",
        "ec2:UnassignPrivateIpAddresses",
        "VPC mode: the Lambda service attaches the function to the subnets with the role",
    ),
    (
        "lambda",
        "s3:ListBucket",
        "HeadObject answers 404, not 403, for a missing key",
    ),
    (
        "lambda",
        "s3:PutObjectTagging",
        "PutObject sends the tags in its x-amz-tagging header",
    ),
    (
        "operator-preview",
        "kms:Decrypt",
        "SSM decrypts SecureStrings with the caller's rights",
    ),
    (
        "operator-restore",
        "kms:Decrypt",
        "SSM decrypts SecureStrings with the caller's rights",
    ),
    (
        "operator-restore",
        "kms:Encrypt",
        "SSM encrypts restored SecureStrings with the caller's rights",
    ),
    (
        "operator-restore",
        "kms:GenerateDataKey",
        "SSM encrypts restored SecureStrings with the caller's rights",
    ),
    (
        "operator-restore",
        "cloudformation:DescribeStacks",
        "--stack, as for previews",
    ),
    (
        "seed-all",
        "kms:Decrypt",
        "SSM decrypts SecureStrings with the caller's rights",
    ),
    (
        "seed-all",
        "kms:GenerateDataKey",
        "S3 encrypts new backups with the bucket's KMS key, when one is set",
    ),
    (
        "seed-all",
        "s3:ListBucket",
        "HeadObject answers 404, not 403, for a missing key",
    ),
    (
        "seed-all",
        "s3:PutObjectTagging",
        "PutObject sends the tags in its x-amz-tagging header",
    ),
    ("seed-all", "cloudformation:DescribeStacks", "--stack"),
    (
        "deploy",
        "cloudformation:TagResource",
        "the ssmbak:managed tag on create and update",
    ),
    (
        "deploy",
        "s3:GetBucketPolicy",
        "the artifact bucket's TLS-only policy is checked over HTTPS only (the emulator is plain HTTP)",
    ),
];

/// Called by a component but deliberately not granted to it, and why: the code meets the
/// refusal with one line saying who must do it.
const WITHHELD: [(&str, &str, &str); 6] = [
    (
        "deploy",
        "cloudformation:CreateStack",
        "an administrator creates the stack once with its service role; the CI only updates it, and CloudFormation keeps the role without the CI passing it",
    ),
    (
        "deploy",
        "s3:CreateBucket",
        "the artifact bucket is set up by `cargo xtask ci-role`; the CI deployer only checks it",
    ),
    (
        "deploy",
        "s3:PutBucketPublicAccessBlock",
        "artifact bucket repair is for `cargo xtask ci-role`",
    ),
    (
        "deploy",
        "s3:PutBucketVersioning",
        "artifact bucket repair is for `cargo xtask ci-role`",
    ),
    (
        "deploy",
        "s3:PutEncryptionConfiguration",
        "artifact bucket repair is for `cargo xtask ci-role`",
    ),
    (
        "deploy",
        "s3:PutBucketPolicy",
        "a resource policy is a privilege escalation (parliament); repair is for `cargo xtask ci-role`",
    ),
];

/// The IAM actions an operation needs: all of the groups, any action of a group.
fn actions_for(service: &str, operation: &str) -> Vec<Vec<String>> {
    let one = |a: &str| vec![vec![a.to_owned()]];
    match (service.to_ascii_lowercase().as_str(), operation) {
        // A named version is authorised by its own action (see `ssmbak_core::record`).
        ("s3", "GetObject" | "HeadObject") => one("s3:GetObject"),
        ("s3", "GetObject@version" | "HeadObject@version") => one("s3:GetObjectVersion"),
        ("s3", "GetObjectTagging@version") => one("s3:GetObjectVersionTagging"),
        // Our one PutObjectTagging names a VersionId (the deleter on a tombstone), which S3
        // authorises as s3:PutObjectVersionTagging (S3 API reference, PutObjectTagging).
        ("s3", "PutObjectTagging@version") => one("s3:PutObjectVersionTagging"),
        ("s3", "DeleteObject@if-match") => {
            vec![
                vec!["s3:DeleteObject".to_owned()],
                vec!["s3:GetObject".to_owned()],
            ]
        }
        ("s3", "ListObjectVersions") => one("s3:ListBucketVersions"),
        ("s3", "HeadBucket" | "ListObjectsV2") => one("s3:ListBucket"),
        ("s3", "PutBucketEncryption") => one("s3:PutEncryptionConfiguration"),
        ("s3", "GetBucketEncryption") => one("s3:GetEncryptionConfiguration"),
        ("s3", "PutPublicAccessBlock") => one("s3:PutBucketPublicAccessBlock"),
        ("s3", "GetPublicAccessBlock") => one("s3:GetBucketPublicAccessBlock"),
        (service, op) => one(&format!("{service}:{op}")),
    }
}

/// Every `service:Action` a policy file grants, with its statement's Sid: a JSON policy, or
/// the role policies of a template (every option on).
fn granted(root: &Path, policy: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(root.join(policy)).with_context(|| policy.to_owned())?;
    let documents = if policy.ends_with(".json") {
        vec![serde_json::from_str(&text).with_context(|| policy.to_owned())?]
    } else {
        crate::template::inline_policies(&text)?
            .into_iter()
            .map(|(_, document)| document)
            .collect()
    };
    let mut out = BTreeMap::new();
    for doc in &documents {
        // A Deny takes away; only what is allowed counts as granted.
        for s in doc["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["Effect"] == "Allow")
        {
            let sid = s["Sid"].as_str().unwrap_or_default().to_owned();
            let actions = match &s["Action"] {
                serde_json::Value::String(a) => vec![a.clone()],
                v => v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
            };
            for a in actions {
                out.insert(a, sid.clone());
            }
        }
    }
    Ok(out)
}

/// The problems with the policies, given a recording (`component<TAB>Service:Operation` lines).
pub(crate) fn problems(root: &Path, recording: &str) -> anyhow::Result<Vec<String>> {
    let mut called: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut without_owner: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for line in recording.lines() {
        let mut fields = line.split('\t');
        let (Some(component), Some(op)) = (fields.next(), fields.next()) else {
            continue;
        };
        if fields.next() == Some(WITHOUT_OWNER) {
            without_owner.entry(component).or_default().insert(op);
            continue;
        }
        let Some((service, operation)) = op.split_once(':') else {
            continue;
        };
        called
            .entry(component)
            .or_default()
            .insert((service, operation));
    }
    let mut out = Vec::new();
    let checks = POLICIES
        .iter()
        .map(|p| (p, false))
        .chain(COVERS_ONLY.iter().map(|p| (p, true)));
    for (&(component, policy), covers_only) in checks {
        // S3 authorises a bucket by name, whoever owns it: only the owner header says whose.
        for op in without_owner.get(component).into_iter().flatten() {
            out.push(format!(
                "{component} calls {op} without an expected bucket owner: the bucket may be another account's"
            ));
        }
        let Some(ops) = called.get(component) else {
            out.push(format!(
                "{component}: no recorded operations (did its tests run?)"
            ));
            continue;
        };
        let granted = granted(root, policy)?;
        let mut used = BTreeSet::new();
        for (service, operation) in ops {
            for group in actions_for(service, operation) {
                let withheld =
                    |a: &String| WITHHELD.iter().any(|(c, w, _)| *c == component && w == a);
                match group.iter().find(|a| granted.contains_key(*a)) {
                    Some(a) => {
                        used.insert(a.clone());
                    }
                    None if group.iter().any(withheld) => {}
                    None => out.push(format!(
                        "{policy} lacks {} ({component} calls {service}:{operation})",
                        group.join(" or ")
                    )),
                }
            }
        }
        for action in granted.keys() {
            let justified = JUSTIFIED
                .iter()
                .any(|(c, a, _)| *c == component && a == action);
            if WITHHELD
                .iter()
                .any(|(c, a, _)| *c == component && a == action)
            {
                out.push(format!(
                    "{policy} grants {action}, which is withheld from {component} on purpose"
                ));
            } else if !used.contains(action) && !justified && !covers_only {
                out.push(format!(
                    "{policy} grants {action}, which {component} never calls"
                ));
            }
        }
    }
    Ok(out)
}

/// `cargo xtask test`'s final check.
pub(crate) fn check(root: &Path, recording: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(recording).with_context(|| recording.display().to_string())?;
    let found = problems(root, &text)?;
    for p in &found {
        eprintln!("least privilege: {p}");
    }
    if !found.is_empty() {
        bail!(
            "the IAM policies do not match what the code calls ({} problem(s))",
            found.len()
        );
    }
    eprintln!("least privilege: every policy grants exactly what its component calls");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::project_root;

    /// Backups under a KMS key need kms:Decrypt through S3 to read, kms:GenerateDataKey to
    /// write (S3 user guide, "Using server-side encryption with AWS KMS keys": "you must have
    /// kms:Decrypt permission" to download, kms:GenerateDataKey to upload). The data stack's
    /// own key grants them in its key policy, which ignores IAM policies; these grants serve
    /// the versions written under an earlier key of an adopted bucket, whose key policy may
    /// delegate to IAM.
    #[test]
    fn the_bucket_key_is_usable_by_who_reads_and_writes_backups() {
        for (policy, action) in [
            ("policies/iam/operator-preview.json", "kms:Decrypt"),
            ("policies/iam/operator-restore.json", "kms:Decrypt"),
            ("policies/iam/seed-all.json", "kms:GenerateDataKey"),
        ] {
            let text = std::fs::read_to_string(project_root().join(policy)).expect("policy");
            let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let through_s3 = doc["Statement"]
                .as_array()
                .expect("statements")
                .iter()
                .any(|s| {
                    s["Action"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == action))
                        && s["Condition"]["StringLike"]["kms:ViaService"] == "s3.*.amazonaws.com"
                        && s["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"][1]
                            == "arn:aws:s3:::BACKUP_BUCKET/*"
                });
            assert!(
                through_s3,
                "{policy} lacks {action} on the bucket's key through S3"
            );
        }
    }

    #[test]
    fn named_actions_on_named_resources() {
        const NO_RESOURCE_LEVEL: [&str; 7] = [
            "ssm:DescribeParameters",
            "sts:GetCallerIdentity",
            "logs:DescribeLogGroups",
            "lambda:CreateEventSourceMapping",
            "lambda:UpdateEventSourceMapping",
            "lambda:DeleteEventSourceMapping",
            "lambda:GetEventSourceMapping",
        ];
        let all = POLICIES.iter().chain(&COVERS_ONLY);
        for (_, policy) in all.filter(|(_, p)| p.ends_with(".json")) {
            let text = std::fs::read_to_string(project_root().join(policy)).expect("policy");
            let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(doc["Version"], "2012-10-17", "{policy}");
            for s in doc["Statement"].as_array().expect("statements") {
                let actions: Vec<&str> = s["Action"]
                    .as_array()
                    .expect("a list")
                    .iter()
                    .filter_map(|a| a.as_str())
                    .collect();
                assert!(
                    actions.iter().all(|a| !a.contains('*')),
                    "{policy}: {actions:?}"
                );
                if s["Resource"] == "*" {
                    assert!(
                        actions.iter().all(|a| NO_RESOURCE_LEVEL.contains(a)),
                        "{policy}: {actions:?} on *"
                    );
                }
            }
        }
    }

    /// Every S3 grant names the account whose buckets it covers (`s3:ResourceAccount`): a
    /// bucket name or pattern alone also matches another account's bucket of that name, which
    /// would then receive the backups or feed a restore. CreateBucket alone is left out: the
    /// bucket it creates is always the caller's, and has no owner to compare yet.
    #[test]
    fn every_s3_grant_is_pinned_to_the_account() {
        let pinned = |statement: &serde_json::Value, account: &serde_json::Value| {
            statement["Condition"]["StringEquals"]["s3:ResourceAccount"] == *account
        };
        let is_s3_grant = |statement: &serde_json::Value| {
            let actions: Vec<&str> = match &statement["Action"] {
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
                serde_json::Value::String(a) => vec![a.as_str()],
                _ => Vec::new(),
            };
            statement["Effect"] == "Allow"
                && actions.iter().any(|a| a.starts_with("s3:"))
                && actions != ["s3:CreateBucket"]
        };
        let dir = project_root().join("policies/iam");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("policies") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("policy");
            let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            for s in doc["Statement"].as_array().expect("statements") {
                if is_s3_grant(s) {
                    assert!(
                        pinned(s, &serde_json::json!("ACCOUNT_ID")),
                        "{}: {}",
                        path.display(),
                        s["Sid"]
                    );
                    checked += 1;
                }
            }
        }
        // The templates' roles: their statements, those under `!If` included.
        let account = serde_json::json!(crate::iam::Placeholders::example().account);
        for template in crate::validate::TEMPLATES {
            let text = std::fs::read_to_string(project_root().join(template)).expect("template");
            for (name, doc) in crate::template::inline_policies(&text).expect("policies") {
                for s in doc["Statement"].as_array().expect("statements") {
                    if is_s3_grant(s) {
                        assert!(pinned(s, &account), "{template} {name}: {}", s["Sid"]);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 18, "{checked} S3 grants");
    }

    #[test]
    fn an_s3_call_without_an_expected_owner_fails_the_check() {
        let recording = "lambda\tS3:GetObject\nlambda\tS3:GetObject\twithout-owner\niam-admin\tS3:GetBucketVersioning\twithout-owner\n";
        let found = problems(&project_root(), recording).expect("runs");
        let unowned: Vec<&String> = found
            .iter()
            .filter(|p| p.contains("without an expected bucket owner"))
            .collect();
        assert_eq!(
            unowned,
            ["lambda calls S3:GetObject without an expected bucket owner: the bucket may be another account's"]
        );
    }

    #[test]
    fn the_check_finds_missing_and_unused_grants() {
        let root = project_root();
        let recording = "operator-preview\tSSM:PutParameter\nlambda\tS3:HeadObject\n";
        let found = problems(&root, recording).expect("runs");
        let has = |needle: &str| found.iter().any(|p| p.contains(needle));
        assert!(
            has("operator-preview.json lacks ssm:PutParameter"),
            "{found:?}"
        );
        assert!(has("operator-preview.json grants ssm:GetParametersByPath, which operator-preview never calls"), "{found:?}");
        assert!(has("seed-all: no recorded operations"), "{found:?}");
        assert!(!has("cfn/template.yml lacks"), "{found:?}");
    }

    /// The check reads the template with every option on, so a statement granted only under
    /// a condition would cover a deployment without it (a default deployment's Lambda once
    /// lacked s3:GetObjectVersionTagging that way): the function's policy has none.
    #[test]
    fn the_function_policy_grants_nothing_under_a_condition() {
        let text = std::fs::read_to_string(project_root().join("cfn/data.yml")).expect("data");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        let statements =
            &doc["Resources"]["FunctionPolicy"]["Properties"]["PolicyDocument"]["Statement"];
        let statements = statements.as_sequence().expect("statements");
        assert!(statements.len() > 5);
        for s in statements {
            assert!(
                !matches!(s, serde_yaml::Value::Tagged(_)),
                "a conditional statement: {s:?}"
            );
        }
    }

    fn statements(policy: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(project_root().join(policy)).expect("policy");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        doc["Statement"].as_array().expect("statements").clone()
    }

    /// A restore into another account runs with two identities: the source's reads the
    /// backups, the destination profile's reads and writes SSM there. Between them they hold
    /// exactly `operator-restore.json`'s statements, each on one side, plus the source's
    /// bucket discovery by its own parameter (in one account, `ReadAndWriteParameters` covers
    /// it): the split cannot drift from the one-account policy.
    #[test]
    fn the_two_sides_of_a_cross_account_restore_split_operator_restore() {
        let whole = statements("policies/iam/operator-restore.json");
        let source = statements("policies/iam/operator-restore-source.json");
        let destination = statements("policies/iam/operator-restore-destination.json");
        let discovery = |s: &serde_json::Value| s["Sid"] == "FindTheBucketByParameter";
        for s in source.iter().chain(&destination).filter(|s| !discovery(s)) {
            assert!(whole.contains(s), "not in operator-restore.json: {s}");
        }
        for s in &whole {
            let sides = usize::from(source.contains(s)) + usize::from(destination.contains(s));
            assert_eq!(sides, 1, "on one side exactly: {s}");
        }
        let ssm_side = |s: &serde_json::Value| {
            s.to_string().contains("ssm:") || s.to_string().contains("ssm.*.amazonaws.com")
        };
        assert!(destination.iter().all(ssm_side));
        assert!(source
            .iter()
            .filter(|s| !discovery(s))
            .all(|s| !ssm_side(s)));
    }

    #[test]
    fn reads_the_lambda_role_from_the_data_stack() {
        let granted = granted(&project_root(), "cfn/data.yml").expect("reads");
        for a in [
            "ssm:GetParameterHistory",
            "s3:PutObject",
            "kms:Decrypt",
            "sqs:ReceiveMessage",
            "s3:PutObjectVersionTagging",
        ] {
            assert!(granted.contains_key(a), "{a} in {granted:?}");
        }
        assert_eq!(
            granted["s3:GetObjectVersionTagging"],
            "ReadTheTagsOfEarlierVersions"
        );
        // The trust policy is not a grant; the backups' key is granted by its key policy.
        assert!(!granted.contains_key("sts:AssumeRole"));
        assert!(!granted.contains_key("kms:GenerateDataKey"));
    }
}
