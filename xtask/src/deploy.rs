//! `cargo xtask deploy STACK`: build, validate, upload the artifact, create or update the
//! stack, follow its events until it settles, print its outputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
use sha2::{Digest, Sha256};

use crate::artifacts::{self, Artifacts};
use crate::aws::{describe, Aws};
use crate::{build_lambda, stack, validate};

#[derive(clap::Args)]
pub(crate) struct DeployArgs {
    /// The stack's name.
    pub(crate) stack: String,
    /// AWS region (default: the standard chain).
    #[arg(short, long)]
    pub(crate) region: Option<String>,
    /// Where to upload the Lambda zip (default: ssmbak-artifacts-ACCOUNT-REGION, created,
    /// hardened, if missing).
    #[arg(long)]
    pub(crate) artifact_bucket: Option<String>,
    /// A template parameter, `Key=Value`; repeatable. An update keeps the others as they are.
    #[arg(long = "param", value_parser = parse_param)]
    pub(crate) params: Vec<(String, String)>,
    /// A stack tag, `Key=Value`; repeatable. Tags the stack has already are kept.
    #[arg(long = "tag", value_parser = parse_param)]
    pub(crate) tags: Vec<(String, String)>,
    /// The CloudFormation service role the stack is driven through
    /// (policies/iam/cfn-execution.json; `cargo xtask iam` creates STACK-cfn-execution). The
    /// roles the stack creates then carry the permissions boundary STACK-backup-boundary
    /// unless --param PermissionsBoundaryArn names another.
    #[arg(long)]
    pub(crate) role_arn: Option<String>,
    /// Give up following the stack after this long.
    #[arg(long, default_value = "30m", value_parser = humantime_secs)]
    pub(crate) timeout: u64,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not Key=Value"))
}

fn humantime_secs(s: &str) -> Result<u64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m"))?;
    match unit {
        "" | "s" => Ok(n),
        "m" => Ok(n * 60),
        "h" => Ok(n * 3600),
        _ => Err(format!("{s:?} is not a duration like 30m")),
    }
}

/// The template's parameter names.
fn template_parameters(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_parameters = false;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_parameters = line.trim_end() == "Parameters:";
            continue;
        }
        if in_parameters {
            if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                if !name.starts_with(' ') {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

pub(crate) fn run(root: &Path, args: &DeployArgs) -> anyhow::Result<()> {
    let arch = crate::aws::block_on(architecture(args))??;
    let zip = build_lambda::run(root, arch)?;
    validate::run(root)?;
    let template =
        std::fs::read_to_string(root.join("cfn/template.yml")).context("cfn/template.yml")?;
    let bytes = std::fs::read(&zip).with_context(|| format!("reading {}", zip.display()))?;
    // Never upload code the function cannot start.
    build_lambda::check(&build_lambda::unpack(&bytes)?, arch)
        .with_context(|| format!("{} does not fit the stack's Architecture", zip.display()))?;
    crate::aws::block_on(deploy(args, &template, &bytes))?
}

/// The architecture to build for: `--param Architecture=...`, else the stack's current one,
/// else the template's default (x86_64).
async fn architecture(args: &DeployArgs) -> anyhow::Result<build_lambda::Arch> {
    if let Some((_, value)) = args.params.iter().rev().find(|(k, _)| k == "Architecture") {
        return build_lambda::Arch::parse(value);
    }
    let aws = Aws::connect(args.region.clone(), "deploy").await?;
    let current = stack::info(&aws, &args.stack).await?;
    match current
        .as_ref()
        .and_then(|s| s.parameters.get("Architecture"))
    {
        Some(value) => build_lambda::Arch::parse(value),
        None => Ok(build_lambda::Arch::default()),
    }
}

/// Everything after the build, against whatever endpoint the environment names.
pub(crate) async fn deploy(args: &DeployArgs, template: &str, zip: &[u8]) -> anyhow::Result<()> {
    let aws = Aws::connect(args.region.clone(), "deploy").await?;
    let account = aws.account().await?;
    let bucket = match &args.artifact_bucket {
        Some(b) => b.clone(),
        None => artifacts::default_bucket(&account, &aws.region()),
    };
    let artifacts = Artifacts {
        aws: &aws,
        bucket: &bucket,
        owner: &account,
    };
    artifacts.ensure_bucket().await?;
    let key = format!("ssmbak/lambda/{:x}.zip", Sha256::digest(zip));
    artifacts.upload(&key, zip).await?;

    let mut given: BTreeMap<String, String> = args.params.iter().cloned().collect();
    if artifacts::plain_http() && !given.contains_key("EnforceTls") {
        eprintln!("the S3 endpoint is plain HTTP (an emulator): deploying with EnforceTls=false");
        given.insert("EnforceTls".to_owned(), "false".to_owned());
    }
    // Read once: the status, the boundary below, the update's kept values and tags.
    let existing = stack::info(&aws, &args.stack).await?;
    let (current, current_tags) = match &existing {
        Some(s) => (s.parameters.clone(), s.tags.clone()),
        None => Default::default(),
    };
    if let Some(role) = &args.role_arn {
        let has_boundary = |v: Option<&String>| v.is_some_and(|v| !v.is_empty());
        if !has_boundary(given.get(BOUNDARY_PARAM)) && !has_boundary(current.get(BOUNDARY_PARAM)) {
            let boundary = boundary_for(role, &args.stack)?;
            eprintln!("the stack's roles get the permissions boundary {boundary}");
            given.insert(BOUNDARY_PARAM.to_owned(), boundary);
        }
    }
    given.insert("ArtifactBucket".to_owned(), bucket);
    given.insert("ArtifactKey".to_owned(), key);
    let known = template_parameters(template);
    if let Some(unknown) = given.keys().find(|k| !known.contains(k)) {
        bail!("--param {unknown}: the template has no such parameter");
    }

    // Its events are told from others' by this token, not by the local clock.
    let operation = stack::Operation::start("deploy");
    // UpdateStack replaces the whole tag set when Tags is given, and the change reaches every
    // resource ("If you don't specify this parameter, CloudFormation doesn't modify the stack's
    // tags", UpdateStack API reference): the current tags are kept, the given ones added.
    let tags: Vec<Tag> = merged_tags(current_tags, &args.tags)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let capabilities = [Capability::CapabilityIam, Capability::CapabilityNamedIam];
    match existing.and_then(|s| s.status) {
        None => {
            eprintln!("creating stack {}", args.stack);
            let params = stack_parameters(given.iter());
            aws.cfn
                .create_stack()
                .stack_name(&args.stack)
                .client_request_token(&operation.token)
                .template_body(template)
                .set_role_arn(args.role_arn.clone())
                .set_parameters(Some(params))
                .set_capabilities(Some(capabilities.to_vec()))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| describe(&format!("creating stack {}", args.stack), &e))?;
        }
        Some(status) if stack::advice(&args.stack, &status).is_some() => {
            bail!(
                "{}",
                stack::advice(&args.stack, &status).unwrap_or_default()
            )
        }
        Some(_) => {
            eprintln!("updating stack {}", args.stack);
            // Parameters not given keep their current values, not the template defaults. The
            // values are passed back explicitly rather than with UsePreviousValue, which moto
            // cannot do for a parameter left at its default (the template has no NoEcho
            // parameter, whose value would read back masked).
            let mut values = current;
            values.extend(given);
            let params = stack_parameters(known.iter().filter_map(|k| Some((k, values.get(k)?))));
            let result = aws
                .cfn
                .update_stack()
                .stack_name(&args.stack)
                .client_request_token(&operation.token)
                .template_body(template)
                .set_role_arn(args.role_arn.clone())
                .set_parameters(Some(params))
                .set_capabilities(Some(capabilities.to_vec()))
                .set_tags(Some(tags))
                .send()
                .await;
            if let Err(e) = result {
                let text = aws_sdk_s3::error::ProvideErrorMetadata::message(&e)
                    .unwrap_or_default()
                    .to_owned();
                // A ValidationError like any other refusal: only the message tells "nothing to
                // do" apart (the AWS CLI's `deploy --no-fail-on-empty-changeset` does the same).
                if text.contains("No updates are to be performed") {
                    eprintln!("stack {} is up to date", args.stack);
                    return stack::print_outputs(&aws, &args.stack).await;
                }
                return Err(describe(&format!("updating stack {}", args.stack), &e));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    stack::follow(&aws, &args.stack, &operation, deadline).await?;
    stack::print_outputs(&aws, &args.stack).await
}

/// The template parameter naming the roles' permissions boundary.
const BOUNDARY_PARAM: &str = "PermissionsBoundaryArn";

/// The boundary `cargo xtask iam` creates for `stack`, in the service role's account and
/// partition: the execution role may create roles only with it.
fn boundary_for(role_arn: &str, stack: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if resource.starts_with("role/") && account.len() == 12 =>
        {
            Ok(format!(
                "arn:{partition}:iam::{account}:policy/{}",
                crate::iam::policy_name(stack, "backup-boundary")
            ))
        }
        _ => {
            bail!("--role-arn {role_arn:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        }
    }
}

/// The stack's tags after a deploy: what it has, then what was given, then ours.
fn merged_tags(
    mut current: BTreeMap<String, String>,
    given: &[(String, String)],
) -> BTreeMap<String, String> {
    current.extend(given.iter().cloned());
    current.insert("ssmbak:managed".to_owned(), "true".to_owned());
    current
}

/// CloudFormation parameters from `(key, value)` pairs.
fn stack_parameters<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<Parameter> {
    pairs
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_template_parameter_names() {
        let template =
            std::fs::read_to_string(crate::util::project_root().join("cfn/template.yml"))
                .expect("template");
        let names = template_parameters(&template);
        for expected in [
            "ArtifactBucket",
            "ArtifactKey",
            "LogLevel",
            "MaximumConcurrency",
            "DiscoveryPrefix",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert!(
            !names.iter().any(|n| n == "Type" || n == "Default"),
            "{names:?}"
        );
    }

    fn stack_parameters(aws: &Aws, stack: &str) -> BTreeMap<String, String> {
        crate::aws::block_on(stack::existing(aws, stack))
            .expect("runtime")
            .expect("parameters")
            .parameters
    }

    /// Deploy, redeploy, update with new code, query and delete, against moto.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn deploys_updates_and_deletes_a_stack_on_the_emulator() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let template = std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let stack = ssmbak_tests::emulator::unique("deploy");
        let prefix = format!("/{stack}/");
        let args = |params: Vec<(&str, &str)>| DeployArgs {
            stack: stack.clone(),
            region: None,
            artifact_bucket: None,
            role_arn: None,
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            tags: Vec::new(),
            timeout: 120,
        };
        let run = |a: DeployArgs, zip: &'static [u8]| {
            crate::aws::block_on(deploy(&a, &template, zip)).expect("runtime")
        };

        let mut create = args(vec![
            ("DiscoveryPrefix", prefix.as_str()),
            ("LogLevel", "debug"),
        ]);
        create.tags = vec![("cost-center".to_owned(), "42".to_owned())];
        run(create, b"code v1").expect("create");
        let aws = crate::aws::block_on(Aws::connect(None, "deploy"))
            .expect("runtime")
            .expect("clients");
        let status = crate::aws::block_on(stack::status(&aws, &stack))
            .expect("runtime")
            .expect("status");
        assert_eq!(
            status.map(|s| s.as_str().to_owned()),
            Some("CREATE_COMPLETE".to_owned())
        );
        let outputs = crate::aws::block_on(stack::outputs(&aws, &stack))
            .expect("runtime")
            .expect("outputs");
        for key in [
            "Bucketname",
            "LambdaName",
            "QUrl",
            "QArn",
            "DeadLetterQueueUrl",
            "LogGroup",
        ] {
            assert!(outputs.contains_key(key), "{key} in {outputs:?}");
        }
        // moto creates neither alarms nor queue policies from a template, so their outputs and
        // their presence cannot be shown here.
        let first = stack_parameters(&aws, &stack);
        let key_v1 = first.get("ArtifactKey").cloned().expect("ArtifactKey");
        assert!(
            key_v1.starts_with("ssmbak/lambda/") && key_v1.ends_with(".zip"),
            "{key_v1}"
        );

        // The same code again: nothing to do, and that is success.
        run(args(vec![]), b"code v1").expect("redeploy");
        // New code: a new content-addressed key; parameters not given keep their values.
        run(args(vec![]), b"code v2").expect("update");
        let second = stack_parameters(&aws, &stack);
        assert_ne!(
            second.get("ArtifactKey"),
            Some(&key_v1),
            "a code change redeploys"
        );
        assert_eq!(
            second.get("LogLevel").map(String::as_str),
            Some("debug"),
            "kept, not reset to the default"
        );
        assert_eq!(second.get("DiscoveryPrefix"), Some(&prefix));
        let tags = crate::aws::block_on(stack::existing(&aws, &stack))
            .expect("runtime")
            .expect("tags")
            .tags;
        assert_eq!(
            (tags.get("cost-center"), tags.get("ssmbak:managed")),
            (Some(&"42".to_owned()), Some(&"true".to_owned())),
            "an update keeps the stack's tags: {tags:?}"
        );

        let unknown = run(args(vec![("NoSuchParam", "x")]), b"code v2");
        assert!(unknown.is_err_and(|e| e.to_string().contains("NoSuchParam")));

        let admin = crate::aws::block_on(Aws::connect(None, "stack-admin"))
            .expect("runtime")
            .expect("clients");
        crate::aws::block_on(stack::delete_stack(&admin, &stack))
            .expect("runtime")
            .expect("delete");
        let gone = crate::aws::block_on(stack::status(&aws, &stack))
            .expect("runtime")
            .expect("status");
        assert!(
            gone.as_ref()
                .is_none_or(|s| s.as_str() == "DELETE_COMPLETE"),
            "{gone:?}"
        );
        // DeletionPolicy: Retain: the backups outlive the stack.
        let bucket = outputs.get("Bucketname").cloned().unwrap_or_default();
        let kept =
            crate::aws::block_on(admin.s3.head_bucket().bucket(&bucket).send()).expect("runtime");
        assert!(
            kept.is_ok(),
            "the backup bucket {bucket} must survive the stack"
        );
    }

    /// An arm64 stack: the deploy builds for `--param Architecture=arm64`, and on an update
    /// without it for the stack's own Architecture; the function's code (the template's
    /// `Code.S3Key`, the zip's content address) is the arm64 zip, byte for byte.
    #[test]
    #[ignore = "needs the moto emulator and the arm64 release zip: `cargo xtask test` runs it"]
    fn an_arm64_stack_gets_the_arm64_zip() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let path = std::env::var(build_lambda::ARM64_ZIP_VAR).expect("the arm64 zip");
        let zip = std::fs::read(path).expect("the arm64 zip");
        let root = crate::util::project_root();
        let template = std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let stack = ssmbak_tests::emulator::unique("arm");
        let args = |params: &[(&str, &str)]| DeployArgs {
            stack: stack.clone(),
            region: None,
            artifact_bucket: None,
            role_arn: None,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            tags: Vec::new(),
            timeout: 120,
        };
        let prefix = format!("/{stack}/");
        let create = args(&[
            ("Architecture", "arm64"),
            ("DiscoveryPrefix", &prefix),
            ("ReconcileSchedule", ""),
        ]);
        let arch = |a: &DeployArgs| {
            crate::aws::block_on(architecture(a))
                .expect("runtime")
                .expect("architecture")
        };
        assert_eq!(arch(&create), build_lambda::Arch::Arm64);
        crate::aws::block_on(deploy(&create, &template, &zip))
            .expect("runtime")
            .expect("deploys");
        assert_eq!(
            arch(&args(&[])),
            build_lambda::Arch::Arm64,
            "an update builds for the stack's own Architecture"
        );

        let aws = crate::aws::block_on(Aws::connect(None, "test-inspection"))
            .expect("runtime")
            .expect("clients");
        let params = stack_parameters(&aws, &stack);
        assert_eq!(
            params.get("Architecture").map(String::as_str),
            Some("arm64")
        );
        let key = format!("ssmbak/lambda/{:x}.zip", Sha256::digest(&zip));
        assert_eq!(params.get("ArtifactKey"), Some(&key));
        let account = crate::aws::block_on(aws.account())
            .expect("runtime")
            .expect("account");
        let bucket = artifacts::default_bucket(&account, &aws.region());
        let uploaded = crate::aws::block_on(async {
            let object = aws.s3.get_object().bucket(&bucket).key(&key).send().await?;
            anyhow::Ok(object.body.collect().await?.into_bytes().to_vec())
        })
        .expect("runtime")
        .expect("the uploaded artifact");
        assert!(uploaded == zip, "the function's code is the arm64 zip");
    }

    /// `RecordDeleters=true` adds the CloudTrail delete rule and the Lambda's version-tagging
    /// rights; by default a stack has neither. Two stacks, not one updated: moto's update
    /// neither removes a resource whose condition turns false nor re-reads a policy whose
    /// `Fn::If` changes (it diffs templates and parameter `Ref`s only), while CloudFormation
    /// does both. moto creates no queue policy from a template either, so the rule's place in
    /// it is checked by cfn-lint and `SQS_QUEUE_POLICY_NAMES_ITS_RULES` only.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn record_deleters_adds_the_cloudtrail_rule_only_when_on() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let template = std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let aws = crate::aws::block_on(Aws::connect(None, "test-inspection"))
            .expect("runtime")
            .expect("clients");
        let admin = crate::aws::block_on(Aws::connect(None, "stack-admin"))
            .expect("runtime")
            .expect("clients");
        for record in [Some("true"), None] {
            let stack = ssmbak_tests::emulator::unique("deleters");
            let prefix = format!("/{stack}/");
            let mut params = vec![
                ("DiscoveryPrefix".to_owned(), prefix),
                ("ReconcileSchedule".to_owned(), String::new()),
            ];
            params.extend(record.map(|r| ("RecordDeleters".to_owned(), r.to_owned())));
            let args = DeployArgs {
                stack: stack.clone(),
                region: None,
                artifact_bucket: None,
                role_arn: None,
                params,
                tags: Vec::new(),
                timeout: 120,
            };
            crate::aws::block_on(deploy(&args, &template, b"code"))
                .expect("runtime")
                .expect("deploys");
            // (the DeleterRule exists, the role grants s3:PutObjectVersionTagging)
            let state = crate::aws::block_on(async {
                let resources = aws
                    .cfn
                    .describe_stack_resources()
                    .stack_name(&stack)
                    .send()
                    .await?;
                let physical = |logical: &str| {
                    resources
                        .stack_resources()
                        .iter()
                        .find(|r| r.logical_resource_id() == Some(logical))
                        .and_then(|r| r.physical_resource_id().map(str::to_owned))
                };
                let role = physical("FunctionRole").context("the function's role")?;
                let policy = aws
                    .iam
                    .get_role_policy()
                    .role_name(&role)
                    .policy_name("ssmbak-backup")
                    .send()
                    .await?;
                anyhow::Ok((
                    physical("DeleterRule").is_some(),
                    policy.policy_document().contains("PutObjectVersionTagging"),
                ))
            })
            .expect("runtime")
            .expect("stack resources");
            let on = record.is_some();
            assert_eq!(state, (on, on), "RecordDeleters {record:?}");
            crate::aws::block_on(stack::delete_stack(&admin, &stack))
                .expect("runtime")
                .expect("delete");
        }
    }

    #[test]
    fn the_boundary_is_the_one_iam_creates_in_the_roles_account() {
        assert_eq!(
            boundary_for("arn:aws:iam::111122223333:role/prod-cfn-execution", "prod")
                .expect("an IAM role"),
            "arn:aws:iam::111122223333:policy/prod-backup-boundary"
        );
        assert_eq!(
            boundary_for("arn:aws-cn:iam::111122223333:role/x", "s").expect("China"),
            "arn:aws-cn:iam::111122223333:policy/s-backup-boundary"
        );
        for bad in [
            "prod-cfn-execution",
            "arn:aws:iam::1:role/x",
            "arn:aws:s3:::b",
        ] {
            assert!(boundary_for(bad, "s").is_err(), "{bad}");
        }
    }

    /// `--role-arn`: CloudFormation drives the stack with the service role, and the role the
    /// stack creates carries the boundary that role requires (cfn-execution.json lets it create
    /// roles only with it). moto enforces neither; it stores both, which is what is shown.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn a_deploy_through_the_service_role_bounds_the_roles_it_creates() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let template = std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let stack = ssmbak_tests::emulator::unique("role");
        let aws = crate::aws::block_on(Aws::connect(None, "deploy"))
            .expect("runtime")
            .expect("clients");
        let account = crate::aws::block_on(aws.account())
            .expect("runtime")
            .expect("account");
        let role = format!("arn:aws:iam::{account}:role/{stack}-cfn-execution");
        let args = DeployArgs {
            stack: stack.clone(),
            region: None,
            artifact_bucket: None,
            role_arn: Some(role.clone()),
            params: vec![
                ("DiscoveryPrefix".to_owned(), format!("/{stack}/")),
                ("ReconcileSchedule".to_owned(), String::new()),
            ],
            tags: Vec::new(),
            timeout: 120,
        };
        crate::aws::block_on(deploy(&args, &template, b"code"))
            .expect("runtime")
            .expect("deploys");
        // What the test looks at is not the deployer's to call.
        let aws = crate::aws::block_on(Aws::connect(None, "test-inspection"))
            .expect("runtime")
            .expect("clients");
        let described = crate::aws::block_on(aws.cfn.describe_stacks().stack_name(&stack).send())
            .expect("runtime")
            .expect("described");
        assert_eq!(
            described.stacks()[0].role_arn(),
            Some(role.as_str()),
            "the stack is driven by the service role"
        );
        let boundary = stack_parameters(&aws, &stack)
            .get(BOUNDARY_PARAM)
            .cloned()
            .unwrap_or_default();
        assert_eq!(boundary, boundary_for(&role, &stack).expect("boundary"));
        // moto answers DescribeStackResource with a 500; the list has the same.
        let resources =
            crate::aws::block_on(aws.cfn.describe_stack_resources().stack_name(&stack).send())
                .expect("runtime")
                .expect("resources");
        let role_name = resources
            .stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some("FunctionRole"))
            .and_then(|r| r.physical_resource_id())
            .expect("the function's role")
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let created = crate::aws::block_on(aws.iam.get_role().role_name(&role_name).send())
            .expect("runtime")
            .expect("the function's role");
        assert_eq!(
            created
                .role()
                .and_then(|r| r.permissions_boundary())
                .and_then(|b| b.permissions_boundary_arn()),
            Some(boundary.as_str())
        );
    }

    #[test]
    fn a_deploy_keeps_the_stacks_tags() {
        let current = BTreeMap::from([
            ("cost-center".to_owned(), "42".to_owned()),
            ("team".to_owned(), "old".to_owned()),
        ]);
        let given = [("team".to_owned(), "platform".to_owned())];
        let merged = merged_tags(current, &given);
        assert_eq!(
            merged.into_iter().collect::<Vec<_>>(),
            [
                ("cost-center".to_owned(), "42".to_owned()),
                ("ssmbak:managed".to_owned(), "true".to_owned()),
                ("team".to_owned(), "platform".to_owned()),
            ]
        );
    }

    #[test]
    fn params_and_durations() {
        assert_eq!(parse_param("A=b=c"), Ok(("A".to_owned(), "b=c".to_owned())));
        assert!(parse_param("nope").is_err());
        assert_eq!(humantime_secs("30m"), Ok(1800));
        assert_eq!(humantime_secs("90"), Ok(90));
        assert!(humantime_secs("soon").is_err());
    }
}
