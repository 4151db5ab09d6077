//! `cargo xtask iam [--do-it]`: the policies in `policies/iam/` as customer-managed policies of
//! the account (placeholders filled from the account and the stack), and the CloudFormation
//! service role deploys run through. A dry run unless `--do-it`, like `seed-all`.
//!
//! A policy that changed gets a new default version; IAM keeps at most five versions of a
//! managed policy (IAM User Guide, "Versioning IAM policies"), so the oldest non-default one
//! is deleted first when five exist.

use std::path::Path;

use anyhow::Context;
use aws_sdk_iam::error::ProvideErrorMetadata;

use crate::aws::{describe, Aws};
use crate::stack;

/// IAM keeps at most this many versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

/// The template's default discovery prefix, for a stack that does not exist yet.
const DEFAULT_DISCOVERY_PREFIX: &str = "/newvoll/ssmbak/";

#[derive(clap::Args)]
pub(crate) struct IamArgs {
    /// The stack the policies are for; they are named after it (STACK-deployer, …).
    #[arg(long, default_value = "ssmbak")]
    pub(crate) stack: String,
    /// AWS region of the stack (IAM itself is global).
    #[arg(short, long)]
    pub(crate) region: Option<String>,
    /// SSM path of the stack's discovery parameters (default: the stack's, else the
    /// template's default).
    #[arg(long)]
    pub(crate) discovery_prefix: Option<String>,
    /// Apply the changes; without it, only print them.
    #[arg(long)]
    pub(crate) do_it: bool,
}

/// The managed policy made from `policies/iam/<stem>.json` for `stack`.
pub(crate) fn policy_name(stack: &str, stem: &str) -> String {
    format!("{stack}-{stem}")
}

/// The CloudFormation service role of `stack` (`deploy --role-arn`).
pub(crate) fn execution_role_name(stack: &str) -> String {
    format!("{stack}-cfn-execution")
}

/// What the policies' placeholders stand for.
pub(crate) struct Placeholders {
    pub(crate) account: String,
    pub(crate) stack: String,
    pub(crate) discovery_prefix: String,
    /// The backup bucket, or the pattern CloudFormation's generated names follow.
    pub(crate) backup_bucket: String,
}

impl Placeholders {
    /// Example values, for checking the policies offline.
    pub(crate) fn example() -> Self {
        Placeholders {
            account: "123456789012".to_owned(),
            stack: "ssmbak".to_owned(),
            discovery_prefix: DEFAULT_DISCOVERY_PREFIX.to_owned(),
            backup_bucket: "ssmbak-bucket-1a2b3c4d5e6f".to_owned(),
        }
    }

    /// `text` with every placeholder replaced (longer names first: one contains another).
    pub(crate) fn fill(&self, text: &str) -> String {
        text.replace("STACK_NAME_LOWER", &self.stack.to_ascii_lowercase())
            .replace("STACK_NAME", &self.stack)
            .replace("ACCOUNT_ID", &self.account)
            .replace("BACKUP_BUCKET", &self.backup_bucket)
            .replace("DISCOVERY_PREFIX", &self.discovery_prefix)
    }

    /// The values for `stack` in the account `aws` reaches: from the stack when it exists.
    pub(crate) async fn of(
        aws: &Aws,
        stack: &str,
        discovery_prefix: Option<&str>,
    ) -> anyhow::Result<Self> {
        let account = aws.account().await?;
        let (params, outputs) = match stack::info(aws, stack).await? {
            Some(s) if s.exists() => (s.parameters, s.outputs),
            _ => Default::default(),
        };
        let discovery_prefix = discovery_prefix
            .map(str::to_owned)
            .or_else(|| params.get("DiscoveryPrefix").cloned())
            .unwrap_or_else(|| DEFAULT_DISCOVERY_PREFIX.to_owned());
        // CloudFormation names the bucket STACK-LOGICALID-RANDOM, lower-cased: the data
        // stack's STACK-data-bucket-*, or an adopted STACK-bucket-* of an earlier release.
        let backup_bucket = outputs
            .get("Bucketname")
            .cloned()
            .unwrap_or_else(|| format!("{}-*bucket-*", stack.to_ascii_lowercase()));
        Ok(Placeholders {
            account,
            stack: stack.to_owned(),
            discovery_prefix,
            backup_bucket,
        })
    }
}

/// Every policy file: (stem, text).
fn policy_files(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let dir = root.join("policies/iam");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text =
                std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
            out.push((stem, text));
        }
    }
    out.sort();
    Ok(out)
}

/// IAM, changing things only when `do_it`; every change (made or planned) is printed.
pub(crate) struct Iam<'a> {
    pub(crate) aws: &'a Aws,
    pub(crate) account: String,
    pub(crate) do_it: bool,
}

impl Iam<'_> {
    fn say(&self, change: &str) {
        let prefix = if self.do_it { "" } else { "would " };
        eprintln!("iam: {prefix}{change}");
    }

    pub(crate) fn policy_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:policy/{name}", self.account)
    }

    /// The managed policy `name` holds `document`; returns its ARN.
    pub(crate) async fn ensure_policy(
        &self,
        name: &str,
        document: &str,
        description: &str,
    ) -> anyhow::Result<String> {
        let iam = &self.aws.iam;
        let arn = self.policy_arn(name);
        let wanted: serde_json::Value =
            serde_json::from_str(document).with_context(|| format!("policy {name}"))?;
        let current = match iam.get_policy().policy_arn(&arn).send().await {
            Ok(out) => out.policy,
            Err(e) if is_no_such_entity(&e) => None,
            Err(e) => return Err(describe(&format!("reading policy {name}"), &e)),
        };
        let Some(current) = current else {
            self.say(&format!("create policy {name}"));
            if self.do_it {
                iam.create_policy()
                    .policy_name(name)
                    .description(description)
                    .policy_document(document)
                    .send()
                    .await
                    .map_err(|e| describe(&format!("creating policy {name}"), &e))?;
            }
            return Ok(arn);
        };
        let default = current.default_version_id.unwrap_or_default();
        let version = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(&default)
            .send()
            .await
            .map_err(|e| describe(&format!("reading policy {name}"), &e))?;
        let document_now = version
            .policy_version
            .and_then(|v| v.document)
            .unwrap_or_default();
        if parse_iam_document(&document_now).as_ref() == Some(&wanted) {
            eprintln!("iam: policy {name} is up to date");
            return Ok(arn);
        }
        let versions = iam
            .list_policy_versions()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| describe(&format!("listing versions of policy {name}"), &e))?
            .versions
            .unwrap_or_default();
        if versions.len() >= MAX_POLICY_VERSIONS {
            let oldest = versions
                .iter()
                .filter(|v| !v.is_default_version)
                .min_by_key(|v| v.create_date.map(|d| (d.secs(), d.subsec_nanos())))
                .and_then(|v| v.version_id.clone());
            if let Some(oldest) = oldest {
                self.say(&format!(
                    "delete version {oldest} of policy {name} (IAM keeps {MAX_POLICY_VERSIONS})"
                ));
                if self.do_it {
                    iam.delete_policy_version()
                        .policy_arn(&arn)
                        .version_id(&oldest)
                        .send()
                        .await
                        .map_err(|e| describe(&format!("pruning policy {name}"), &e))?;
                }
            }
        }
        self.say(&format!(
            "update policy {name} (a new default version replaces {default})"
        ));
        if self.do_it {
            iam.create_policy_version()
                .policy_arn(&arn)
                .policy_document(document)
                .set_as_default(true)
                .send()
                .await
                .map_err(|e| describe(&format!("updating policy {name}"), &e))?;
        }
        Ok(arn)
    }

    /// The role `name` trusts as `trust` says and has `policies` (ARNs) attached; returns its
    /// ARN. Policies attached by others are left alone.
    pub(crate) async fn ensure_role(
        &self,
        name: &str,
        trust: &serde_json::Value,
        policies: &[String],
        description: &str,
    ) -> anyhow::Result<String> {
        let iam = &self.aws.iam;
        let arn = format!("arn:aws:iam::{}:role/{name}", self.account);
        let current = match iam.get_role().role_name(name).send().await {
            Ok(out) => out.role,
            Err(e) if is_no_such_entity(&e) => None,
            Err(e) => return Err(describe(&format!("reading role {name}"), &e)),
        };
        let attached: Vec<String> = match &current {
            None => {
                self.say(&format!("create role {name}"));
                if self.do_it {
                    iam.create_role()
                        .role_name(name)
                        .description(description)
                        .assume_role_policy_document(trust.to_string())
                        .send()
                        .await
                        .map_err(|e| describe(&format!("creating role {name}"), &e))?;
                }
                Vec::new()
            }
            Some(role) => {
                let trusted = role
                    .assume_role_policy_document
                    .as_deref()
                    .and_then(parse_iam_document);
                if trusted.as_ref() != Some(trust) {
                    self.say(&format!("update the trust policy of role {name}"));
                    if self.do_it {
                        iam.update_assume_role_policy()
                            .role_name(name)
                            .policy_document(trust.to_string())
                            .send()
                            .await
                            .map_err(|e| describe(&format!("updating role {name}"), &e))?;
                    }
                }
                iam.list_attached_role_policies()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(|e| describe(&format!("reading role {name}"), &e))?
                    .attached_policies
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.policy_arn)
                    .collect()
            }
        };
        for policy in policies.iter().filter(|p| !attached.contains(p)) {
            self.say(&format!("attach {policy} to role {name}"));
            if self.do_it {
                iam.attach_role_policy()
                    .role_name(name)
                    .policy_arn(policy)
                    .send()
                    .await
                    .map_err(|e| describe(&format!("attaching {policy} to {name}"), &e))?;
            }
        }
        if current.is_some() && policies.iter().all(|p| attached.contains(p)) {
            eprintln!("iam: role {name} is up to date");
        }
        Ok(arn)
    }
}

/// A policy document as IAM returns it: URL-encoded (RFC 3986) JSON.
pub(crate) fn parse_iam_document(text: &str) -> Option<serde_json::Value> {
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded)
        .ok()
        .or_else(|| serde_json::from_str(text).ok())
}

fn is_no_such_entity<E: ProvideErrorMetadata, R>(e: &aws_sdk_iam::error::SdkError<E, R>) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.code() == Some("NoSuchEntity"))
}

/// The service role's trust: CloudFormation, nothing else.
fn execution_trust() -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "cloudformation.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// Every policy of `policies/iam/`, filled for the stack, and the CloudFormation service role
/// with `cfn-execution` attached. Returns the policies' ARNs by stem.
pub(crate) async fn apply(
    iam: &Iam<'_>,
    root: &Path,
    placeholders: &Placeholders,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let stack = &placeholders.stack;
    let mut arns = std::collections::BTreeMap::new();
    for (stem, text) in policy_files(root)? {
        let name = policy_name(stack, &stem);
        let description = format!("ssmbak stack {stack}: policies/iam/{stem}.json");
        let arn = iam
            .ensure_policy(&name, &placeholders.fill(&text), &description)
            .await?;
        arns.insert(stem, arn);
    }
    let execution = arns
        .get("cfn-execution")
        .cloned()
        .context("policies/iam/cfn-execution.json is missing")?;
    let role = iam
        .ensure_role(
            &execution_role_name(stack),
            &execution_trust(),
            &[execution],
            &format!("CloudFormation deploys ssmbak stack {stack} with this role"),
        )
        .await?;
    println!("{role}");
    Ok(arns)
}

pub(crate) fn run(root: &Path, args: &IamArgs) -> anyhow::Result<()> {
    crate::aws::block_on(async {
        let aws = Aws::connect(args.region.clone(), "iam-admin").await?;
        let placeholders =
            Placeholders::of(&aws, &args.stack, args.discovery_prefix.as_deref()).await?;
        let iam = Iam {
            aws: &aws,
            account: placeholders.account.clone(),
            do_it: args.do_it,
        };
        apply(&iam, root, &placeholders).await?;
        if !args.do_it {
            eprintln!("iam: dry run; pass --do-it to apply");
        }
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_longest_first() {
        let p = Placeholders {
            account: "111122223333".to_owned(),
            stack: "Prod".to_owned(),
            discovery_prefix: "/a/b/".to_owned(),
            backup_bucket: "prod-bucket-*".to_owned(),
        };
        assert_eq!(
            p.fill("arn:aws:s3:::STACK_NAME_LOWER-bucket-*|STACK_NAME|ACCOUNT_ID|parameterDISCOVERY_PREFIX*|BACKUP_BUCKET"),
            "arn:aws:s3:::prod-bucket-*|Prod|111122223333|parameter/a/b/*|prod-bucket-*"
        );
    }

    #[test]
    fn reads_url_encoded_documents() {
        let doc = parse_iam_document("%7B%22Version%22%3A%222012-10-17%22%7D").expect("parses");
        assert_eq!(doc["Version"], "2012-10-17");
        assert!(parse_iam_document(r#"{"a": "100%"}"#).is_some());
    }

    /// Dry run, apply, re-apply (nothing to do), then six changes of one policy: always one
    /// default version, never more than IAM's five.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn applies_the_policies_idempotently_on_the_emulator() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let stack = ssmbak_tests::emulator::unique("iam");
        crate::aws::block_on(async {
            let aws = Aws::connect(None, "iam-admin").await.expect("clients");
            let placeholders = Placeholders::of(&aws, &stack, None).await.expect("values");
            let dry = Iam {
                aws: &aws,
                account: placeholders.account.clone(),
                do_it: false,
            };
            apply(&dry, &root, &placeholders).await.expect("dry run");
            let deployer = dry.policy_arn(&policy_name(&stack, "deployer"));
            assert!(
                aws.iam
                    .get_policy()
                    .policy_arn(&deployer)
                    .send()
                    .await
                    .is_err(),
                "a dry run changes nothing"
            );

            let real = Iam { do_it: true, ..dry };
            let arns = apply(&real, &root, &placeholders).await.expect("apply");
            assert_eq!(arns.len(), policy_files(&root).expect("files").len());
            let version = |arn: String| {
                let aws = &aws;
                async move {
                    let v = aws
                        .iam
                        .get_policy()
                        .policy_arn(arn)
                        .send()
                        .await
                        .expect("policy")
                        .policy
                        .expect("policy");
                    v.default_version_id.expect("default")
                }
            };
            assert_eq!(version(deployer.clone()).await, "v1");
            // Placeholders are filled from the account and the stack.
            let document = aws
                .iam
                .get_policy_version()
                .policy_arn(&deployer)
                .version_id("v1")
                .send()
                .await
                .expect("version")
                .policy_version
                .and_then(|v| v.document)
                .expect("document");
            let document = parse_iam_document(&document).expect("JSON").to_string();
            assert!(
                document.contains(&format!("stack/{stack}/*")) && !document.contains("ACCOUNT_ID"),
                "{document}"
            );
            let role = aws
                .iam
                .list_attached_role_policies()
                .role_name(execution_role_name(&stack))
                .send()
                .await
                .expect("role");
            assert_eq!(
                role.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn())
                    .collect::<Vec<_>>(),
                [real.policy_arn(&policy_name(&stack, "cfn-execution"))]
            );

            apply(&real, &root, &placeholders).await.expect("re-apply");
            assert_eq!(version(deployer.clone()).await, "v1", "nothing changed");

            let name = policy_name(&stack, "deployer");
            for n in 0..6 {
                let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{
                    "Sid": format!("Change{n}"), "Effect": "Allow",
                    "Action": ["sts:GetCallerIdentity"], "Resource": "*"}]});
                real.ensure_policy(&name, &doc.to_string(), "test")
                    .await
                    .expect("update");
            }
            let versions = aws
                .iam
                .list_policy_versions()
                .policy_arn(&deployer)
                .send()
                .await
                .expect("versions")
                .versions
                .unwrap_or_default();
            assert!(versions.len() <= MAX_POLICY_VERSIONS, "{versions:?}");
            assert_eq!(versions.iter().filter(|v| v.is_default_version).count(), 1);
            assert_eq!(version(deployer).await, "v7");
        })
        .expect("runtime");
    }
}
