//! `cargo xtask deploy STACK`: build, validate, upload the artifact, create or update the
//! stack, follow its events until it settles, print its outputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::apply::Apply;
use crate::values::{humantime_secs, parse_param};

use crate::artifacts::{self, Artifacts};
use crate::aws::Aws;
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
    /// (policies/iam/cfn-execution.json; `cargo xtask iam` creates STACK-cfn-execution).
    #[arg(long)]
    pub(crate) role_arn: Option<String>,
    /// Give up following the stack after this long.
    #[arg(long, default_value = "30m", value_parser = humantime_secs)]
    pub(crate) timeout: u64,
}

impl DeployArgs {
    /// A deploy of `stack` with these template parameters and nothing else set (the stack's
    /// region, the default artifact bucket, no service role), as the demo and the tests drive
    /// one.
    pub(crate) fn with_params(stack: &str, params: &[(&str, &str)]) -> Self {
        DeployArgs {
            stack: stack.to_owned(),
            region: None,
            artifact_bucket: None,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            tags: Vec::new(),
            role_arn: None,
            timeout: 120,
        }
    }

    /// A test stack on the emulator: its own discovery prefix, no scheduled reconcile (moto
    /// cannot invoke its target), and `more` parameters.
    #[cfg(test)]
    pub(crate) fn for_test(stack: &str, more: &[(&str, &str)]) -> Self {
        let prefix = format!("/{stack}/");
        let mut params = vec![
            ("DiscoveryPrefix", prefix.as_str()),
            ("ReconcileSchedule", ""),
        ];
        params.extend_from_slice(more);
        DeployArgs::with_params(stack, &params)
    }
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
    let data_stack = given
        .entry(DATA_STACK_PARAM.to_owned())
        .or_insert_with(|| crate::data::stack_name(&args.stack))
        .clone();
    // Read once: the status, the update's kept values and tags.
    let existing = stack::info(&aws, &args.stack).await?;
    let data = check_data_stack(&aws, &args.stack, &data_stack, existing.as_ref()).await?;
    // The function runs in the data stack's VPC when it has one (its endpoints are there).
    let in_vpc = data.parameters.get("VpcId").is_some_and(|v| !v.is_empty());
    given
        .entry("VpcMode".to_owned())
        .or_insert_with(|| in_vpc.to_string());
    given.insert("ArtifactBucket".to_owned(), bucket);
    given.insert("ArtifactKey".to_owned(), key);
    Apply {
        stack: &args.stack,
        template,
        given,
        role_arn: args.role_arn.clone(),
        tags: &args.tags,
        timeout: Duration::from_secs(args.timeout),
    }
    .run(&aws, existing)
    .await?;
    stack::print_outputs(&aws, &args.stack).await
}

/// The template parameter naming the data stack.
const DATA_STACK_PARAM: &str = "DataStack";

/// The data stack, which must exist and hold the bucket of a stack from before it (which kept
/// its bucket itself): otherwise one line saying what the administrator runs.
async fn check_data_stack(
    aws: &Aws,
    stack: &str,
    data_stack: &str,
    existing: Option<&stack::StackInfo>,
) -> anyhow::Result<stack::StackInfo> {
    let fix = format!("an administrator runs `cargo xtask data {stack} --do-it` first");
    let data = match stack::info(aws, data_stack).await? {
        Some(d) if d.exists() => d,
        _ => {
            bail!("the data stack {data_stack} (bucket, key, function role) does not exist: {fix}")
        }
    };
    let earlier_release = existing
        .filter(|s| s.exists() && !s.parameters.contains_key(DATA_STACK_PARAM))
        .and_then(|app| app.outputs.get("Bucketname"));
    if earlier_release.is_some() && data.parameters.get("AdoptBucket") != earlier_release {
        bail!(
            "stack {stack} keeps its bucket itself (an earlier release) and {data_stack} has not adopted it: {fix}"
        );
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_template_parameter_names() {
        let template =
            std::fs::read_to_string(crate::util::project_root().join("cfn/template.yml"))
                .expect("template");
        let names = crate::apply::template_parameters(&template);
        for expected in [
            "ArtifactBucket",
            "ArtifactKey",
            "LogLevel",
            "MaximumConcurrency",
            "DiscoveryPrefix",
            "DataStack",
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
        crate::data::create_for_test(&stack);
        let prefix = format!("/{stack}/");
        let args = |params: Vec<(&str, &str)>| DeployArgs::with_params(&stack, &params);
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
        crate::data::create_for_test(&stack);
        let args = |params: &[(&str, &str)]| DeployArgs::with_params(&stack, params);
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

    /// `RecordDeleters=true` adds the CloudTrail delete rule; by default a stack has none (the
    /// version-tagging right is the data stack's role's, whatever the option). Two stacks, not one updated: moto's update
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
            crate::data::create_for_test(&stack);
            let more: Vec<(&str, &str)> =
                record.map(|r| ("RecordDeleters", r)).into_iter().collect();
            let args = DeployArgs::for_test(&stack, &more);
            crate::aws::block_on(deploy(&args, &template, b"code"))
                .expect("runtime")
                .expect("deploys");
            let resources = crate::aws::block_on(stack::resources(&aws, &stack))
                .expect("runtime")
                .expect("stack resources");
            let deleter_rule = resources.iter().any(|(id, _)| id == "DeleterRule");
            assert_eq!(deleter_rule, record.is_some(), "RecordDeleters {record:?}");
            crate::aws::block_on(stack::delete_stack(&admin, &stack))
                .expect("runtime")
                .expect("delete");
        }
    }

    /// `--role-arn`: CloudFormation drives the stack with the service role, and the function
    /// backs up into the data stack's bucket as the data stack's role (the stack creates no
    /// role). moto enforces no role; it stores what is shown.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn a_deploy_through_the_service_role_uses_the_data_stacks_bucket_and_role() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let template = std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let stack = ssmbak_tests::emulator::unique("role");
        crate::data::create_for_test(&stack);
        let aws = crate::aws::block_on(Aws::connect(None, "deploy"))
            .expect("runtime")
            .expect("clients");
        let account = crate::aws::block_on(aws.account())
            .expect("runtime")
            .expect("account");
        let role = format!("arn:aws:iam::{account}:role/{stack}-cfn-execution");
        let args = DeployArgs {
            role_arn: Some(role.clone()),
            ..DeployArgs::for_test(&stack, &[])
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
        // New code: the update does not name the role (the CI may not pass it), and the stack
        // keeps it.
        crate::aws::block_on(deploy(&args, &template, b"code v2"))
            .expect("runtime")
            .expect("updates");
        let described = crate::aws::block_on(aws.cfn.describe_stacks().stack_name(&stack).send())
            .expect("runtime")
            .expect("described");
        assert_eq!(described.stacks()[0].role_arn(), Some(role.as_str()));
        let data = crate::aws::block_on(stack::outputs(&aws, &crate::data::stack_name(&stack)))
            .expect("runtime")
            .expect("the data stack's outputs");
        let outputs = crate::aws::block_on(stack::outputs(&aws, &stack))
            .expect("runtime")
            .expect("outputs");
        assert_eq!(
            outputs.get("Bucketname"),
            data.get("Bucket"),
            "the data stack's bucket"
        );
        let resources = crate::aws::block_on(stack::resources(&aws, &stack))
            .expect("runtime")
            .expect("resources");
        let iam: Vec<_> = resources
            .iter()
            .filter(|(_, t)| t.starts_with("AWS::IAM::"))
            .collect();
        assert!(
            iam.is_empty(),
            "the stack the CI deploys creates no IAM: {iam:?}"
        );
    }

    #[test]
    fn a_deploy_keeps_the_stacks_tags() {
        let current = BTreeMap::from([
            ("cost-center".to_owned(), "42".to_owned()),
            ("team".to_owned(), "old".to_owned()),
        ]);
        let given = [("team".to_owned(), "platform".to_owned())];
        let merged = crate::apply::merged_tags(current, &given);
        assert_eq!(
            merged.into_iter().collect::<Vec<_>>(),
            [
                ("cost-center".to_owned(), "42".to_owned()),
                ("ssmbak:managed".to_owned(), "true".to_owned()),
                ("team".to_owned(), "platform".to_owned()),
            ]
        );
    }
}
