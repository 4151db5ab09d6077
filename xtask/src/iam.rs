//! Checks of the IAM policy documents in `policies/iam/` (run by `cargo test`).
//!
//! Each component's policy must grant the IAM actions behind the AWS operations its code
//! calls, and nothing broader than named actions. The operation lists below are kept by hand
//! beside the code; recording them from the integration tests is a follow-up.

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::util::project_root;

    /// Actions AWS offers no resource-level permissions for: `"Resource": "*"` is the only way.
    const NO_RESOURCE_LEVEL: [&str; 7] = [
        "ssm:DescribeParameters",
        "sts:GetCallerIdentity",
        "logs:DescribeLogGroups",
        "lambda:CreateEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
        "lambda:DeleteEventSourceMapping",
        "lambda:GetEventSourceMapping",
    ];

    fn statements(file: &str) -> Vec<serde_json::Value> {
        let path = project_root().join("policies/iam").join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc["Version"], "2012-10-17", "{file}");
        doc["Statement"].as_array().cloned().unwrap_or_default()
    }

    fn strings(v: &serde_json::Value) -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn granted(file: &str) -> BTreeSet<String> {
        statements(file)
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .flat_map(|s| strings(&s["Action"]))
            .collect()
    }

    const POLICIES: [&str; 4] = [
        "operator-preview.json",
        "operator-restore.json",
        "seed-all.json",
        "deployer.json",
    ];

    #[test]
    fn named_actions_on_named_resources() {
        for file in POLICIES {
            for s in statements(file) {
                let actions = strings(&s["Action"]);
                for a in &actions {
                    assert!(
                        a != "*" && !a.ends_with(":*") && !a.contains('*'),
                        "{file}: wildcard action {a}"
                    );
                }
                if strings(&s["Resource"]).iter().any(|r| r == "*") {
                    for a in &actions {
                        assert!(
                            NO_RESOURCE_LEVEL.contains(&a.as_str()),
                            "{file}: {a} on every resource"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn previewing_writes_nothing() {
        for a in granted("operator-preview.json") {
            let verb = a.split(':').nth(1).unwrap_or_default();
            assert!(
                ["Get", "List", "Describe"]
                    .iter()
                    .any(|p| verb.starts_with(p))
                    || a == "kms:Decrypt",
                "the preview policy grants {a}"
            );
        }
    }

    /// The IAM actions behind the operations each component calls (see the code: `core/`,
    /// `restore-cli/`, `xtask/`).
    #[test]
    fn each_policy_grants_what_its_component_calls() {
        let read = [
            "ssm:GetParameter",              // bucket discovery, one key's current state
            "ssm:GetParametersByPath",       // a path's current state
            "ssm:DescribeParameters",        // descriptions, KeyId, tier...
            "kms:Decrypt",                   // WithDecryption
            "s3:GetBucketVersioning",        // the bucket check
            "s3:ListBucketVersions",         // ListObjectVersions
            "s3:GetObjectVersion",           // GetObject with a VersionId
            "s3:GetObjectVersionTagging", // GetObjectTagging with a VersionId (the original's objects)
            "cloudformation:DescribeStacks", // --stack
        ];
        let restore: Vec<&str> = read
            .iter()
            .copied()
            .chain(["ssm:PutParameter", "ssm:DeleteParameters"])
            .collect();
        let seed = [
            "ssm:DescribeParameters",
            "ssm:GetParameterHistory",
            "kms:Decrypt",
            "s3:GetObject", // HeadObject
            "s3:ListBucket",
            "s3:PutObject",
            "s3:PutObjectTagging", // the x-amz-tagging header
            "cloudformation:DescribeStacks",
        ];
        let deploy = [
            "sts:GetCallerIdentity",
            "s3:ListBucket", // HeadBucket
            "s3:CreateBucket",
            "s3:PutBucketVersioning",
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketPolicy",
            "s3:PutObject",
            "s3:GetObject", // HeadObject of the artifact
            "cloudformation:CreateStack",
            "cloudformation:UpdateStack",
            "cloudformation:DeleteStack",
            "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
        ];
        for (file, needed) in [
            ("operator-preview.json", read.to_vec()),
            ("operator-restore.json", restore),
            ("seed-all.json", seed.to_vec()),
            ("deployer.json", deploy.to_vec()),
        ] {
            let granted = granted(file);
            for action in needed {
                assert!(granted.contains(action), "{file} lacks {action}");
            }
        }
    }
}
