//! CloudFormation's real permissions: what the registry handlers of each resource type in
//! `cfn/template.yml` call, against what `policies/iam/cfn-execution.json` (the stack's
//! service role) grants.
//!
//! CloudFormation creates, reads, updates and deletes each resource through that type's
//! registry handlers, with the service role's credentials, and those handlers call more than
//! the emulator does (the S3 bucket's read handler alone calls ~20 `s3:Get*Configuration`).
//! Each type's schema lists them (`handlers.<op>.permissions`); cfn-lint ships the schemas,
//! pinned, and `aws cloudformation describe-type` shows the same. Every listed permission
//! must be granted, or left out below with the reason it cannot be called for this template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The policy of the stack's CloudFormation service role.
pub(crate) const EXECUTION_POLICY: &str = "policies/iam/cfn-execution.json";

/// The handlers CloudFormation runs on a stack's resources (`list` is not one of them).
const OPERATIONS: [&str; 4] = ["create", "read", "update", "delete"];

/// Why a permission a handler lists is not granted.
enum Why {
    /// The handler calls it only for these properties (anywhere under the resource's
    /// `Properties`), which no resource of the type sets. Setting one makes it a gap again.
    OnlyFor(&'static [&'static str], &'static str),
    /// The schema names an API operation, not an IAM action; what authorizes it is granted.
    NotAnIamAction(&'static str),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::OnlyFor(properties, why) => write!(f, "only for {properties:?}: {why}"),
            Why::NotAnIamAction(granted_by) => write!(f, "not an IAM action; {granted_by}"),
        }
    }
}

/// Whether a `LEFT_OUT` action (`service:Action`, or `service:*` for the whole service)
/// covers `action`.
fn covers(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(service) => action.starts_with(service),
        None => pattern == action,
    }
}

/// Handler permissions the execution role does not get: (resource type, action, why).
const LEFT_OUT: &[(&str, &str, Why)] = &[
    // AWS::Lambda::Function
    (
        "AWS::Lambda::Function",
        "elasticfilesystem:DescribeMountTargets",
        Why::OnlyFor(&["FileSystemConfigs"], "no EFS file system is mounted"),
    ),
    (
        "AWS::Lambda::Function",
        "s3files:ListMountTargets",
        Why::OnlyFor(&["FileSystemConfigs"], "no file system is mounted"),
    ),
    (
        "AWS::Lambda::Function",
        "kms:CreateGrant",
        Why::OnlyFor(
            &["KmsKeyArn", "SourceKMSKeyArn"],
            "environment and code use Lambda's own key",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "kms:Decrypt",
        Why::OnlyFor(
            &["KmsKeyArn", "SourceKMSKeyArn"],
            "environment and code use Lambda's own key",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "kms:DescribeKey",
        Why::OnlyFor(
            &["KmsKeyArn", "SourceKMSKeyArn"],
            "environment and code use Lambda's own key",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "kms:Encrypt",
        Why::OnlyFor(
            &["KmsKeyArn", "SourceKMSKeyArn"],
            "environment and code use Lambda's own key",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "kms:GenerateDataKey",
        Why::OnlyFor(
            &["KmsKeyArn", "SourceKMSKeyArn"],
            "environment and code use Lambda's own key",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "lambda:GetLayerVersion",
        Why::OnlyFor(&["Layers"], "the function has no layers"),
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PassCapacityProvider",
        Why::OnlyFor(
            &["CapacityProviderConfig"],
            "the function runs on Lambda's own capacity",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "lambda:GetCodeSigningConfig",
        Why::OnlyFor(
            &["CodeSigningConfigArn"],
            "reads the code signing configuration the template names",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "lambda:PutFunctionCodeSigningConfig",
        Why::OnlyFor(
            &["CodeSigningConfigArn"],
            "attaches the code signing configuration the template names",
        ),
    ),
    (
        "AWS::Lambda::Function",
        "lambda:AssociateRuntimeAlias",
        Why::OnlyFor(
            &["RuntimeManagementConfig"],
            "the runtime is updated by Lambda, not pinned",
        ),
    ),
    // AWS::Lambda::EventSourceMapping
    (
        "AWS::Lambda::EventSourceMapping",
        "kms:Decrypt",
        Why::OnlyFor(&["KMSKeyArn"], "filter criteria are not encrypted"),
    ),
    (
        "AWS::Lambda::EventSourceMapping",
        "kms:DescribeKey",
        Why::OnlyFor(&["KMSKeyArn"], "filter criteria are not encrypted"),
    ),
    (
        "AWS::Lambda::EventSourceMapping",
        "kms:GenerateDataKey",
        Why::OnlyFor(&["KMSKeyArn"], "filter criteria are not encrypted"),
    ),
    // AWS::Events::Rule
    (
        "AWS::Events::Rule",
        "iam:PassRole",
        Why::OnlyFor(
            &["RoleArn"],
            "neither rule nor target assumes a role: SQS and Lambda are reached by their resource policies",
        ),
    ),
    // AWS::SNS::Topic, AWS::SNS::Subscription
    (
        "AWS::SNS::Topic",
        "iam:GetRole",
        Why::OnlyFor(
            &["DeliveryStatusLogging"],
            "reads the delivery-status logging role; the alarm topic logs no delivery status",
        ),
    ),
    (
        "AWS::SNS::Subscription",
        "iam:GetRole",
        Why::OnlyFor(
            &["SubscriptionRoleArn"],
            "reads a Firehose subscription's role; the alarm subscription is email",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutReplicationConfiguration",
        Why::OnlyFor(&["ReplicationConfiguration"], "the bucket is not replicated"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutBucketReplication",
        Why::OnlyFor(&["ReplicationConfiguration"], "the bucket is not replicated"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:DeleteBucketReplication",
        Why::NotAnIamAction("s3:PutReplicationConfiguration (not needed either)"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutObjectAcl",
        Why::OnlyFor(
            &["AccessControl"],
            "ACLs are disabled (BucketOwnerEnforced)",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutBucketAcl",
        Why::OnlyFor(
            &["AccessControl"],
            "ACLs are disabled (BucketOwnerEnforced)",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3tables:*",
        Why::OnlyFor(
            &["MetadataTableConfiguration", "MetadataConfiguration"],
            "S3 Metadata writes to S3 Tables; the bucket has no metadata tables",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:CreateBucketMetadataTableConfiguration",
        Why::OnlyFor(
            &["MetadataTableConfiguration", "MetadataConfiguration"],
            "no S3 Metadata tables",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:DeleteBucketMetadataTableConfiguration",
        Why::OnlyFor(
            &["MetadataTableConfiguration", "MetadataConfiguration"],
            "no S3 Metadata tables",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:UpdateBucketMetadataAnnotationTableConfiguration",
        Why::OnlyFor(
            &["MetadataTableConfiguration", "MetadataConfiguration"],
            "no S3 Metadata tables",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:UpdateBucketMetadataInventoryTableConfiguration",
        Why::OnlyFor(
            &["MetadataTableConfiguration", "MetadataConfiguration"],
            "no S3 Metadata tables",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:UpdateBucketMetadataJournalTableConfiguration",
        Why::OnlyFor(
            &["MetadataTableConfiguration", "MetadataConfiguration"],
            "no S3 Metadata tables",
        ),
    ),
    (
        "AWS::S3::Bucket",
        "s3:DeleteBucketAnalyticsConfiguration",
        Why::NotAnIamAction("s3:PutAnalyticsConfiguration"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:DeleteBucketCors",
        Why::NotAnIamAction("s3:PutBucketCORS"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:DeleteBucketEncryption",
        Why::NotAnIamAction("s3:PutEncryptionConfiguration"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:DeleteBucketLifecycle",
        Why::NotAnIamAction("s3:PutLifecycleConfiguration"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:DeleteBucketMetricsConfiguration",
        Why::NotAnIamAction("s3:PutMetricsConfiguration"),
    ),
    (
        "AWS::S3::Bucket",
        "s3:PutObjectLockConfiguration",
        Why::NotAnIamAction("s3:PutBucketObjectLockConfiguration"),
    ),
    // AWS::Logs::LogGroup
    (
        "AWS::Logs::LogGroup",
        "logs:CreateLogDelivery",
        Why::OnlyFor(
            &["DataProtectionPolicy"],
            "delivers data-protection audit findings; the group has no such policy",
        ),
    ),
    (
        "AWS::Logs::LogGroup",
        "firehose:TagDeliveryStream",
        Why::OnlyFor(
            &["DataProtectionPolicy"],
            "audit findings to Firehose; the group has no data-protection policy",
        ),
    ),
    (
        "AWS::Logs::LogGroup",
        "s3:REST.PUT.OBJECT",
        Why::NotAnIamAction("nothing: audit findings to S3, not configured"),
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:PutResourcePolicy",
        Why::OnlyFor(
            &["ResourcePolicyDocument"],
            "the group has no resource policy",
        ),
    ),
    (
        "AWS::Logs::LogGroup",
        "logs:DeleteResourcePolicy",
        Why::OnlyFor(
            &["ResourcePolicyDocument"],
            "the group has no resource policy",
        ),
    ),
];

/// Every permission each handler of `types` lists, from the schemas in `schemas`:
/// action → the (type, operation) pairs that list it.
fn required(
    schemas: &Path,
    types: &BTreeSet<String>,
) -> anyhow::Result<BTreeMap<String, BTreeSet<(String, String)>>> {
    let providers: serde_json::Value = read_json(&schemas.join("providers/us-east-1.json"))?;
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for ty in types {
        let hash = providers[ty.as_str()]
            .as_str()
            .with_context(|| format!("the registry schemas have no {ty}"))?;
        let schema = read_json(&schemas.join(format!("resources/{hash}.json")))?;
        for op in OPERATIONS {
            let permissions = schema["handlers"][op]["permissions"].as_array();
            for action in permissions.into_iter().flatten().filter_map(|p| p.as_str()) {
                out.entry(action.to_owned())
                    .or_default()
                    .insert((ty.clone(), op.to_owned()));
            }
        }
    }
    Ok(out)
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

/// The template's resources: (type, properties).
fn resources(template: &str) -> anyhow::Result<Vec<(String, serde_yaml::Value)>> {
    let doc: serde_yaml::Value = serde_yaml::from_str(template).context("cfn/template.yml")?;
    let Some(resources) = doc["Resources"].as_mapping() else {
        bail!("cfn/template.yml has no Resources");
    };
    Ok(resources
        .values()
        .filter_map(|r| Some((r["Type"].as_str()?.to_owned(), r["Properties"].clone())))
        .collect())
}

/// Whether `key` is a mapping key anywhere under `value` (through intrinsic functions too).
fn sets(value: &serde_yaml::Value, key: &str) -> bool {
    use serde_yaml::Value;
    match value {
        Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some(key) || sets(v, key)),
        Value::Sequence(s) => s.iter().any(|v| sets(v, key)),
        Value::Tagged(t) => sets(&t.value, key),
        _ => false,
    }
}

/// Every action a policy grants (Allow statements).
fn granted(policy: &str) -> anyhow::Result<BTreeSet<String>> {
    let doc: serde_json::Value = serde_json::from_str(policy).context(EXECUTION_POLICY)?;
    let mut out = BTreeSet::new();
    for statement in doc["Statement"].as_array().into_iter().flatten() {
        if statement["Effect"] != "Allow" {
            continue;
        }
        for a in statement["Action"].as_array().into_iter().flatten() {
            out.extend(a.as_str().map(str::to_owned));
        }
    }
    Ok(out)
}

/// The gaps between what the handlers of the template's types call and what the policy
/// grants, each as one line.
pub(crate) fn gaps(schemas: &Path, template: &str, policy: &str) -> anyhow::Result<Vec<String>> {
    let resources = resources(template)?;
    let types: BTreeSet<String> = resources.iter().map(|(t, _)| t.clone()).collect();
    let required = required(schemas, &types)?;
    let granted = granted(policy)?;
    let mut out = Vec::new();
    for (action, by) in &required {
        let left_out: Vec<&(&str, &str, Why)> = LEFT_OUT
            .iter()
            .filter(|(ty, a, _)| covers(a, action) && by.iter().any(|(t, _)| t == ty))
            .collect();
        for (ty, op) in by {
            let excused = left_out.iter().find(|(t, _, _)| t == ty);
            match excused {
                Some((_, _, Why::OnlyFor(properties, why))) => {
                    let set: Vec<&&str> = properties
                        .iter()
                        .filter(|p| resources.iter().any(|(t, props)| t == ty && sets(props, p)))
                        .collect();
                    if !set.is_empty() && !granted.contains(action) {
                        out.push(format!(
                            "{EXECUTION_POLICY} lacks {action}: the template now sets {set:?} on a {ty}, whose {op} handler then calls it (left out because {why})"
                        ));
                    }
                }
                Some((_, _, Why::NotAnIamAction(_))) => {}
                None if granted.contains(action) => {}
                None => out.push(format!(
                    "{EXECUTION_POLICY} lacks {action} ({ty}'s {op} handler lists it)"
                )),
            }
        }
    }
    for action in &granted {
        let needed = required.get(action).is_some_and(|by| {
            by.iter().any(|(ty, _)| {
                !LEFT_OUT
                    .iter()
                    .any(|(t, a, _)| t == ty && covers(a, action))
            })
        });
        if !needed {
            out.push(format!(
                "{EXECUTION_POLICY} grants {action}, which no handler of the template's resource types needs"
            ));
        }
    }
    for (ty, action, why) in LEFT_OUT {
        let listed = required
            .iter()
            .any(|(a, by)| covers(action, a) && by.iter().any(|(t, _)| t == ty));
        if types.contains(*ty) && !listed {
            out.push(format!(
                "registry.rs leaves out {action} for {ty} ({why}), which its handlers no longer list"
            ));
        }
    }
    Ok(out)
}

/// Where the pinned cfn-lint keeps the registry schemas, inside `venv`.
pub(crate) fn schemas_in(venv: &Path) -> anyhow::Result<PathBuf> {
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(&lib).with_context(|| lib.display().to_string())? {
        let dir = entry?.path().join("site-packages/cfnlint/data/schemas");
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    bail!("no cfn-lint registry schemas under {}", lib.display())
}

/// `cargo xtask lint`'s registry check.
pub(crate) fn check(root: &Path, schemas: &Path) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(root.join("cfn/template.yml"))?;
    let policy = std::fs::read_to_string(root.join(EXECUTION_POLICY))?;
    let found = gaps(schemas, &template, &policy)?;
    for gap in &found {
        eprintln!("registry: {gap}");
    }
    if !found.is_empty() {
        bail!(
            "{EXECUTION_POLICY} does not match what CloudFormation's handlers call ({} gap(s))",
            found.len()
        );
    }
    eprintln!(
        "registry: {EXECUTION_POLICY} grants every handler permission of the template's resource types"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry of two types, as cfn-lint lays it out.
    fn fake_schemas() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("providers")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("resources")).expect("mkdir");
        std::fs::write(
            dir.path().join("providers/us-east-1.json"),
            r#"{"AWS::SQS::Queue": "q", "AWS::Events::Rule": "r"}"#,
        )
        .expect("write");
        std::fs::write(
            dir.path().join("resources/q.json"),
            r#"{"handlers": {"create": {"permissions": ["sqs:CreateQueue"]},
                "read": {"permissions": ["sqs:GetQueueAttributes"]},
                "list": {"permissions": ["sqs:ListQueues"]}}}"#,
        )
        .expect("write");
        std::fs::write(
            dir.path().join("resources/r.json"),
            r#"{"handlers": {"create": {"permissions": ["events:PutRule", "iam:PassRole"]}}}"#,
        )
        .expect("write");
        dir
    }

    fn policy(actions: &[&str]) -> String {
        serde_json::json!({"Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
            .to_string()
    }

    const TEMPLATE: &str = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n  R:\n    Type: AWS::Events::Rule\n    Properties:\n      Targets:\n        - Arn: !GetAtt Q.Arn\n";

    #[test]
    fn every_handler_permission_is_granted_or_left_out_for_a_reason() {
        let schemas = fake_schemas();
        let all = policy(&[
            "sqs:CreateQueue",
            "sqs:GetQueueAttributes",
            "events:PutRule",
        ]);
        assert_eq!(
            gaps(schemas.path(), TEMPLATE, &all).expect("runs"),
            Vec::<String>::new()
        );

        let missing = policy(&["sqs:CreateQueue", "events:PutRule"]);
        let found = gaps(schemas.path(), TEMPLATE, &missing).expect("runs");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("lacks sqs:GetQueueAttributes (AWS::SQS::Queue's read handler"));

        // The list handler is not CloudFormation's; nothing beyond the handlers either.
        let extra = policy(&[
            "sqs:CreateQueue",
            "sqs:GetQueueAttributes",
            "events:PutRule",
            "sqs:ListQueues",
        ]);
        let found = gaps(schemas.path(), TEMPLATE, &extra).expect("runs");
        assert!(
            found.len() == 1 && found[0].contains("grants sqs:ListQueues"),
            "{found:?}"
        );
    }

    /// A left-out permission comes back as a gap once the template sets the property that
    /// makes the handler call it: here a rule target that assumes a role.
    #[test]
    fn a_left_out_permission_returns_with_its_property() {
        let schemas = fake_schemas();
        let all = policy(&[
            "sqs:CreateQueue",
            "sqs:GetQueueAttributes",
            "events:PutRule",
        ]);
        let with_role = TEMPLATE.replace(
            "- Arn: !GetAtt Q.Arn",
            "- Arn: !GetAtt Q.Arn\n          RoleArn: !Sub arn:aws:iam::1:role/x",
        );
        let found = gaps(schemas.path(), &with_role, &all).expect("runs");
        assert!(
            found.len() == 1 && found[0].contains("lacks iam:PassRole: the template now sets"),
            "{found:?}"
        );
    }

    #[test]
    fn finds_properties_under_intrinsic_functions() {
        let props: serde_yaml::Value =
            serde_yaml::from_str("A: !If [c, {VpcConfig: {}}, !Ref AWS::NoValue]").expect("yaml");
        assert!(sets(&props, "VpcConfig"));
        assert!(!sets(&props, "Layers"));
    }
}
