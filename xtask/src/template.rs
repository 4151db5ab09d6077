//! The template's documents as plain JSON, for the checkers that read IAM policies
//! (parliament, the repository tests): short-form intrinsics resolved to example values, and
//! each `!If` taken as its option on, so every statement any deployment can have is read.

use serde_yaml::Value as Yaml;

/// The example deployment's region (the placeholders name no region).
const EXAMPLE_REGION: &str = "us-east-1";

/// The value of `!Ref NAME`, `!GetAtt NAME.ATTR` or `${NAME}` in a `!Sub`, in the example
/// deployment: the values `iam::Placeholders::example` fills policies with.
fn example(name: &str) -> String {
    let p = crate::iam::Placeholders::example();
    let (account, region) = (&p.account, EXAMPLE_REGION);
    match name {
        "AWS::AccountId" => account.clone(),
        "AWS::Partition" => "aws".to_owned(),
        "AWS::Region" => region.to_owned(),
        "AWS::StackName" => format!("{}-data", p.stack),
        "AppStack" => p.stack.clone(),
        "FunctionRole" => format!("{}-backup-function", p.stack),
        "FunctionRole.Arn" => format!("arn:aws:iam::{account}:role/{}-backup-function", p.stack),
        "Key.Arn" => {
            format!("arn:aws:kms:{region}:{account}:key/1a2b3c4d-0000-0000-0000-000000000000")
        }
        "Bucket" => p.backup_bucket.clone(),
        "Bucket.Arn" => format!("arn:aws:s3:::{}", p.backup_bucket),
        "Queue.Arn" => format!("arn:aws:sqs:{region}:{account}:{}-Queue-1A2B3C", p.stack),
        other => other.to_owned(),
    }
}

/// The example deployment's lists (the data stack's CommaDelimitedList parameters).
pub(crate) fn example_list(name: &str) -> Option<Vec<String>> {
    let p = crate::iam::Placeholders::example();
    let role = |n: &str| format!("arn:aws:iam::{}:role/{n}", p.account);
    match name {
        "Administrators" => Some(vec![role("Admin")]),
        "Readers" => Some(vec![role("ssmbak-operator"), role("ssmbak-restore")]),
        "Writers" => Some(vec![role("ssmbak-seed")]),
        _ => None,
    }
}

/// `${NAME}` in `text` replaced by its example value.
fn substitute(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((before, after)) = rest.split_once("${") {
        out.push_str(before);
        let Some((name, tail)) = after.split_once('}') else {
            out.push_str("${");
            rest = after;
            continue;
        };
        out.push_str(&example(name));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// `v` as JSON, or `None` where it is `!Ref AWS::NoValue` (dropped from its list or mapping).
pub(crate) fn resolved(v: &Yaml) -> Option<serde_json::Value> {
    match v {
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            match (tag.trim_start_matches('!'), &t.value) {
                ("Ref", Yaml::String(n)) if n == "AWS::NoValue" => None,
                ("Ref", Yaml::String(n)) if example_list(n).is_some() => {
                    example_list(n).map(Into::into)
                }
                ("Join", Yaml::Sequence(args)) => {
                    let delimiter = args.first().and_then(Yaml::as_str).unwrap_or_default();
                    let items = args.get(1).and_then(resolved)?;
                    let parts: Vec<String> = items
                        .as_array()?
                        .iter()
                        .map(|item| match item {
                            serde_json::Value::Array(list) => list
                                .iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(delimiter),
                            other => other.as_str().unwrap_or_default().to_owned(),
                        })
                        .collect();
                    Some(parts.join(delimiter).into())
                }
                ("Split", Yaml::Sequence(args)) => {
                    let delimiter = args.first().and_then(Yaml::as_str).unwrap_or_default();
                    let text = args.get(1).and_then(resolved)?;
                    Some(text.as_str()?.split(delimiter).collect::<Vec<_>>().into())
                }
                ("Ref", Yaml::String(n)) => Some(example(n).into()),
                ("GetAtt", Yaml::String(n)) => Some(example(n).into()),
                ("GetAtt", Yaml::Sequence(parts)) => {
                    let parts: Vec<&str> = parts.iter().filter_map(Yaml::as_str).collect();
                    Some(example(&parts.join(".")).into())
                }
                ("Sub", Yaml::String(s)) => Some(substitute(s).into()),
                // The option on: the statement a deployment with it has.
                ("If", Yaml::Sequence(branches)) => branches.get(1).and_then(resolved),
                (name, value) => {
                    Some(serde_json::json!({ format!("Fn::{name}"): resolved(value) }))
                }
            }
        }
        Yaml::Mapping(m) => Some(
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), resolved(v)?)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        ),
        Yaml::Sequence(s) => Some(s.iter().filter_map(resolved).collect()),
        other => serde_json::to_value(other).ok(),
    }
}

/// The role policies of a template, inline in a role or beside it in an `AWS::IAM::Policy`:
/// (resource/policy name, document).
pub(crate) fn inline_policies(template: &str) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let doc: Yaml = serde_yaml::from_str(template)?;
    let mut out = Vec::new();
    for (name, resource) in doc["Resources"].as_mapping().into_iter().flatten() {
        let properties = &resource["Properties"];
        let policies: Vec<&Yaml> = match resource["Type"].as_str() {
            Some("AWS::IAM::Role") => properties["Policies"]
                .as_sequence()
                .into_iter()
                .flatten()
                .collect(),
            Some("AWS::IAM::Policy") => vec![properties],
            _ => continue,
        };
        for policy in policies {
            let label = format!(
                "{}/{}",
                name.as_str().unwrap_or_default(),
                policy["PolicyName"].as_str().unwrap_or_default()
            );
            if let Some(document) = resolved(&policy["PolicyDocument"]) {
                out.push((label, document));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intrinsics_resolve_to_the_example_deployment() {
        let yaml = r#"
A: !Sub "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-backup:*"
B: !GetAtt Bucket.Arn
C: [!If [On, {Sid: X}, !Ref AWS::NoValue], !Ref AWS::NoValue, !Ref AWS::AccountId]
"#;
        let v = resolved(&serde_yaml::from_str(yaml).expect("YAML")).expect("a value");
        assert_eq!(
            v["A"],
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/ssmbak-data-backup:*"
        );
        assert_eq!(v["B"], "arn:aws:s3:::ssmbak-bucket-1a2b3c4d5e6f");
        assert_eq!(v["C"], serde_json::json!([{"Sid": "X"}, "123456789012"]));
    }

    #[test]
    fn the_function_role_policy_is_found() {
        let text = std::fs::read_to_string(crate::util::project_root().join("cfn/data.yml"))
            .expect("template");
        let policies = inline_policies(&text).expect("policies");
        let (name, doc) = policies
            .iter()
            .find(|(n, _)| n.starts_with("FunctionPolicy/"))
            .expect("the function's role policy");
        assert!(name.ends_with("/ssmbak-backup"), "{name}");
        assert!(doc["Statement"].as_array().is_some_and(|s| s.len() > 5));
        assert!(!doc.to_string().contains("Fn::"), "unresolved: {doc}");
    }
}
