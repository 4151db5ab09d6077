//! The data stack's resource policies (its bucket policy and its key policy) read offline, as
//! IAM's policy evaluation logic documents it, for the requests a security review asks about.
//! Only a real account evaluates them (moto enforces neither); this is the check that can run
//! here, on the template itself (resolved for the example deployment, every option on).
//!
//! What it models (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements:
//! Condition operators"): an explicit Deny wins; a statement applies when its action, resource
//! and principal match and every condition holds; a negated operator (`StringNotEquals`,
//! `ArnNotLike`) holds when the key is absent, a positive one does not; `...IfExists` holds
//! when the key is absent; `Null` tests absence; several values of a key are alternatives.
//! Every statement is on this bucket or key, so resources are not compared.

use std::collections::BTreeMap;

use serde_json::Value;

/// One request, as the policies see it.
pub(crate) struct Request<'a> {
    pub(crate) principal: &'a str,
    pub(crate) action: &'a str,
    /// The condition keys present, with their values.
    pub(crate) context: BTreeMap<&'a str, String>,
}

/// What one policy says about a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Denied,
    Allowed,
    /// Neither: another policy must allow it.
    NotAllowed,
}

pub(crate) fn decide(policy: &Value, request: &Request<'_>) -> Decision {
    let applying: Vec<&Value> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            matches_any(&s["Action"], request.action)
                && principal_matches(&s["Principal"], request.principal)
                && conditions_hold(&s["Condition"], &request.context)
        })
        .collect();
    if applying.iter().any(|s| s["Effect"] == "Deny") {
        Decision::Denied
    } else if applying.iter().any(|s| s["Effect"] == "Allow") {
        Decision::Allowed
    } else {
        Decision::NotAllowed
    }
}

/// `value` (a string or a list of them) has a pattern matching `text` (`*` and `?` wildcards).
fn matches_any(value: &Value, text: &str) -> bool {
    strings(value).iter().any(|p| wildcard(p, text))
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // matched[j]: the pattern so far matches text[..j].
    let mut matched = vec![false; t.len() + 1];
    matched[0] = true;
    for c in p {
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            next[j] = match c {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && t[j - 1].eq_ignore_ascii_case(&c),
            };
        }
        matched = next;
    }
    matched[t.len()]
}

fn principal_matches(principal: &Value, arn: &str) -> bool {
    match principal {
        // An identity policy's statement names no principal: it is its role's.
        Value::Null => true,
        Value::String(s) => s == "*",
        Value::Object(m) => m.get("AWS").is_some_and(|v| strings(v).contains(&arn)),
        _ => false,
    }
}

fn conditions_hold(conditions: &Value, context: &BTreeMap<&str, String>) -> bool {
    let Some(conditions) = conditions.as_object() else {
        return true;
    };
    conditions.iter().all(|(operator, keys)| {
        keys.as_object()
            .into_iter()
            .flatten()
            .all(|(key, expected)| {
                let expected = match expected {
                    Value::Bool(b) => vec![b.to_string()],
                    other => strings(other).into_iter().map(str::to_owned).collect(),
                };
                holds(operator, context.get(key.as_str()), &expected)
            })
    })
}

fn holds(operator: &str, actual: Option<&String>, expected: &[String]) -> bool {
    let (base, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let Some(actual) = actual else {
        return match base {
            "Null" => expected.iter().any(|e| e == "true"),
            _ => if_exists || base.contains("Not"),
        };
    };
    let any = |f: &dyn Fn(&str) -> bool| expected.iter().any(|e| f(e));
    match base {
        "Null" => expected.iter().any(|e| e == "false"),
        "Bool" | "StringEquals" => any(&|e| e == actual),
        "StringNotEquals" => !any(&|e| e == actual),
        "ArnLike" | "StringLike" => any(&|e| wildcard(e, actual)),
        "ArnNotLike" | "StringNotLike" => !any(&|e| wildcard(e, actual)),
        "NumericLessThan" => {
            let actual: f64 = actual.parse().unwrap_or(f64::NAN);
            any(&|e| e.parse::<f64>().is_ok_and(|e| actual < e))
        }
        other => panic!("condition operator {other} is not modelled here: add it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{example_list, resolved};

    const ACCOUNT: &str = "123456789012";

    fn role(name: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/{name}")
    }

    fn function_role() -> String {
        role("ssmbak-backup-function")
    }

    /// A policy of cfn/data.yml (`BucketPolicy` or `Key`), as the example deployment has it.
    fn policy(resource: &str, property: &str) -> Value {
        let text = std::fs::read_to_string(crate::util::project_root().join("cfn/data.yml"))
            .expect("cfn/data.yml");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        resolved(&doc["Resources"][resource]["Properties"][property]).expect("a policy")
    }

    /// A request over TLS 1.2 from this account, with `extra` keys.
    fn request<'a>(principal: &'a str, action: &'a str, extra: &[(&'a str, &str)]) -> Request<'a> {
        let mut context = BTreeMap::from([
            ("aws:SecureTransport", "true".to_owned()),
            ("s3:TlsVersion", "1.2".to_owned()),
            ("aws:PrincipalAccount", ACCOUNT.to_owned()),
            ("aws:PrincipalArn", principal.to_owned()),
        ]);
        context.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Request {
            principal,
            action,
            context,
        }
    }

    fn bucket(principal: &str, action: &str, extra: &[(&str, &str)]) -> Decision {
        decide(
            &policy("BucketPolicy", "PolicyDocument"),
            &request(principal, action, extra),
        )
    }

    #[test]
    fn only_the_listed_roles_read_a_backup() {
        let readers = example_list("Readers").expect("readers");
        let writers = example_list("Writers").expect("writers");
        for allowed in [vec![function_role()], readers, writers].concat() {
            for action in ["s3:GetObject", "s3:GetObjectVersion"] {
                assert_eq!(
                    bucket(&allowed, action, &[]),
                    Decision::NotAllowed,
                    "{allowed}"
                );
            }
        }
        // ReadOnlyAccess, an administrator, the CI's CloudFormation role: denied whatever
        // their IAM policies grant.
        for outsider in [
            role("ReadOnly"),
            role("Admin"),
            role("ssmbak-cfn-execution"),
        ] {
            assert_eq!(
                bucket(&outsider, "s3:GetObject", &[]),
                Decision::Denied,
                "{outsider}"
            );
        }
    }

    #[test]
    fn other_accounts_old_tls_and_plain_http_are_denied() {
        let reader = &example_list("Readers").expect("readers")[0];
        let other = "arn:aws:iam::999999999999:role/ssmbak-operator";
        let cases = [
            (other, vec![("aws:PrincipalAccount", "999999999999")]),
            (reader.as_str(), vec![("s3:TlsVersion", "1.1")]),
            (reader.as_str(), vec![("aws:SecureTransport", "false")]),
        ];
        for (principal, extra) in cases {
            assert_eq!(
                bucket(principal, "s3:ListBucket", &extra),
                Decision::Denied,
                "{extra:?}"
            );
        }
    }

    #[test]
    fn uploads_go_under_the_bucket_key_only() {
        let f = function_role();
        let key = "arn:aws:kms:us-east-1:123456789012:key/1a2b3c4d-0000-0000-0000-000000000000";
        let put = |extra: &[(&str, &str)]| bucket(&f, "s3:PutObject", extra);
        assert_eq!(put(&[]), Decision::NotAllowed, "the default encryption");
        assert_eq!(
            put(&[
                ("s3:x-amz-server-side-encryption", "aws:kms"),
                ("s3:x-amz-server-side-encryption-aws-kms-key-id", key)
            ]),
            Decision::NotAllowed
        );
        let other_key = "arn:aws:kms:us-east-1:123456789012:key/another";
        for refused in [
            vec![(
                "s3:x-amz-server-side-encryption-customer-algorithm",
                "AES256",
            )],
            vec![("s3:x-amz-server-side-encryption", "AES256")],
            vec![
                ("s3:x-amz-server-side-encryption", "aws:kms"),
                ("s3:x-amz-server-side-encryption-aws-kms-key-id", other_key),
            ],
        ] {
            assert_eq!(put(&refused), Decision::Denied, "{refused:?}");
        }
    }

    #[test]
    fn only_administrators_change_the_buckets_settings() {
        let admin = &example_list("Administrators").expect("administrators")[0];
        for action in [
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutLifecycleConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketVersioning",
        ] {
            assert_eq!(bucket(admin, action, &[]), Decision::NotAllowed, "{action}");
            for other in [role("ssmbak-cfn-execution"), function_role()] {
                assert_eq!(
                    bucket(&other, action, &[]),
                    Decision::Denied,
                    "{other} {action}"
                );
            }
        }
    }

    /// The key policy alone decides (it has no statement for the account, so no IAM policy
    /// grants the key): decrypt through S3 for the listed roles only.
    #[test]
    fn the_key_decrypts_for_the_listed_roles_only_and_only_through_s3() {
        let key_policy = policy("Key", "KeyPolicy");
        let via = |service: &str| {
            vec![(
                "kms:ViaService",
                format!("{service}.us-east-1.amazonaws.com"),
            )]
        };
        let decide_key = |principal: &str, action: &str, service: &str| {
            let extra = via(service);
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            decide(&key_policy, &request(principal, action, &extra))
        };
        let readers = example_list("Readers").expect("readers");
        let writers = example_list("Writers").expect("writers");
        for reader in [vec![function_role()], readers.clone(), writers.clone()].concat() {
            assert_eq!(
                decide_key(&reader, "kms:Decrypt", "s3"),
                Decision::Allowed,
                "{reader}"
            );
            assert_eq!(
                decide_key(&reader, "kms:Decrypt", "ssm"),
                Decision::NotAllowed,
                "{reader}"
            );
        }
        for writer in [vec![function_role()], writers].concat() {
            assert_eq!(
                decide_key(&writer, "kms:GenerateDataKey", "s3"),
                Decision::Allowed
            );
        }
        assert_eq!(
            decide_key(&readers[0], "kms:GenerateDataKey", "s3"),
            Decision::NotAllowed,
            "a reader writes no backup"
        );
        let admin = &example_list("Administrators").expect("administrators")[0];
        assert_eq!(decide_key(admin, "kms:Decrypt", "s3"), Decision::NotAllowed);
        assert_eq!(
            decide_key(admin, "kms:ScheduleKeyDeletion", "s3"),
            Decision::Allowed
        );
        for outsider in [
            role("ReadOnly"),
            role("ssmbak-cfn-execution"),
            format!("arn:aws:iam::{ACCOUNT}:root"),
        ] {
            assert_eq!(
                decide_key(&outsider, "kms:Decrypt", "s3"),
                Decision::NotAllowed,
                "{outsider}"
            );
        }
    }

    /// VPC mode: code run outside the VPC (a template without VpcConfig) reads neither a
    /// parameter nor a backup with the role.
    #[test]
    fn in_vpc_mode_the_role_reads_ssm_and_s3_only_through_the_endpoints() {
        let vpc = policy("FunctionVpcAccess", "PolicyDocument");
        let f = function_role();
        for action in ["ssm:GetParameterHistory", "s3:GetObject", "s3:PutObject"] {
            assert_eq!(
                decide(&vpc, &request(&f, action, &[])),
                Decision::Denied,
                "{action}"
            );
        }
        let through = |endpoint: &str, action: &str| {
            decide(&vpc, &request(&f, action, &[("aws:SourceVpce", endpoint)]))
        };
        assert_eq!(
            through("SsmEndpoint", "ssm:GetParameterHistory"),
            Decision::NotAllowed
        );
        assert_eq!(through("S3Endpoint", "s3:PutObject"), Decision::NotAllowed);
        assert_eq!(through("vpce-elsewhere", "s3:PutObject"), Decision::Denied);
    }

    #[test]
    fn wildcards_and_absent_keys_read_as_iam_documents() {
        assert!(wildcard("kms:Get*", "kms:GetKeyPolicy"));
        assert!(!wildcard("kms:Get*", "kms:Decrypt"));
        assert!(wildcard("arn:aws:iam::1:role/*", "arn:aws:iam::1:role/x"));
        assert!(holds("StringNotEqualsIfExists", None, &["a".to_owned()]));
        assert!(holds("StringNotEquals", None, &["a".to_owned()]));
        assert!(!holds("StringEquals", None, &["a".to_owned()]));
        assert!(holds("Null", None, &["true".to_owned()]));
        assert!(!holds("Null", None, &["false".to_owned()]));
    }
}
