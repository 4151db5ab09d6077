//! `cargo xtask data STACK [--do-it]`: the data stack of STACK (`cfn/data.yml`: the bucket,
//! its policy, the backups' key, the function's role), deployed by an administrator. The CI
//! deploys only the application stack, which imports the bucket and the role: who controls
//! the CI can neither read a backup nor change who may. A dry run unless `--do-it`.
//!
//! A stack from before the data stack kept its bucket itself: the data stack adopts it
//! (`AdoptBucket`), so the bucket and every version stay where they are. Its policy is
//! replaced (CloudFormation cannot create a bucket policy where one exists: the handler
//! answers "AlreadyExists"), and with a key its default encryption becomes that key; versions
//! written before stay under the encryption they were written with.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};

use crate::apply::Apply;
use crate::aws::{describe, Aws};
use crate::stack::{self, StackInfo};
use crate::values::{humantime_secs, parse_param};

#[derive(clap::Args)]
pub(crate) struct DataArgs {
    /// The application stack whose data stack (STACK-data) this is.
    pub(crate) stack: String,
    /// AWS region (default: the standard chain).
    #[arg(short, long)]
    pub(crate) region: Option<String>,
    /// Who administers the key and the bucket's settings (an IAM role or user ARN);
    /// repeatable. Default: the stack's current list, else you.
    #[arg(long = "administrator")]
    pub(crate) administrators: Vec<String>,
    /// Who may preview and restore (kms:Decrypt of the backups); repeatable. Default: the
    /// stack's current list, else you.
    #[arg(long = "reader")]
    pub(crate) readers: Vec<String>,
    /// Who may run seed-all; repeatable. Default: the stack's current list, else you.
    #[arg(long = "writer")]
    pub(crate) writers: Vec<String>,
    /// A template parameter of cfn/data.yml, `Key=Value`; repeatable (for example
    /// Encryption=sse-s3, ObjectLockMode=GOVERNANCE).
    #[arg(long = "param", value_parser = parse_param)]
    pub(crate) params: Vec<(String, String)>,
    /// Apply; without it, only print what would be done.
    #[arg(long)]
    pub(crate) do_it: bool,
    /// Give up following the stack after this long.
    #[arg(long, default_value = "30m", value_parser = humantime_secs)]
    pub(crate) timeout: u64,
}

impl DataArgs {
    /// Applying the data stack of `stack` with every list and parameter at its default (the
    /// demo's and the tests' administrator).
    pub(crate) fn applying(stack: &str, timeout: u64) -> Self {
        DataArgs {
            stack: stack.to_owned(),
            region: None,
            administrators: Vec::new(),
            readers: Vec::new(),
            writers: Vec::new(),
            params: Vec::new(),
            do_it: true,
            timeout,
        }
    }
}

/// The data stack of the application stack `stack`.
pub(crate) fn stack_name(stack: &str) -> String {
    format!("{stack}-data")
}

pub(crate) fn run(root: &Path, args: &DataArgs) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(root.join("cfn/data.yml")).context("cfn/data.yml")?;
    crate::aws::block_on(async {
        let aws = Aws::connect(args.region.clone(), "data-admin").await?;
        apply(&aws, &template, args).await
    })?
}

/// Creates or updates the data stack as `args` says (or only says what it would do).
pub(crate) async fn apply(aws: &Aws, template: &str, args: &DataArgs) -> anyhow::Result<()> {
    let name = stack_name(&args.stack);
    let existing = stack::info(aws, &name).await?.filter(StackInfo::exists);
    let current = existing
        .as_ref()
        .map(|s| s.parameters.clone())
        .unwrap_or_default();
    let me = caller(aws).await?;
    let mut given = BTreeMap::from([("AppStack".to_owned(), args.stack.clone())]);
    for (param, listed) in [
        ("Administrators", &args.administrators),
        ("Readers", &args.readers),
        ("Writers", &args.writers),
    ] {
        let value = match (listed.is_empty(), current.get(param)) {
            (false, _) => listed.join(","),
            (true, Some(kept)) => kept.clone(),
            (true, None) => me.clone(),
        };
        given.insert(param.to_owned(), value);
    }
    let adopted = match &existing {
        Some(_) => current
            .get("AdoptBucket")
            .filter(|b| !b.is_empty())
            .cloned(),
        None => bucket_of_an_earlier_release(aws, &args.stack).await?,
    };
    if let Some(bucket) = &adopted {
        given.insert("AdoptBucket".to_owned(), bucket.clone());
    }
    given.extend(args.params.iter().cloned());

    let verb = if args.do_it { "" } else { "would " };
    let action = if existing.is_some() {
        "update"
    } else {
        "create"
    };
    eprintln!("data: {verb}{action} stack {name}");
    for (k, v) in &given {
        eprintln!("data:   {k} = {v}");
    }
    let adopting_now = existing.is_none() && adopted.is_some();
    if let (true, Some(bucket)) = (adopting_now, &adopted) {
        eprintln!(
            "data: {verb}adopt bucket {bucket} of stack {} (an earlier release), keeping every version; its bucket policy is replaced",
            args.stack
        );
    }
    if !args.do_it {
        eprintln!("data: dry run; pass --do-it to apply");
        return Ok(());
    }
    if let (true, Some(bucket)) = (adopting_now, &adopted) {
        aws.s3
            .delete_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| describe(&format!("removing the old policy of bucket {bucket}"), &e))?;
    }
    Apply {
        stack: &name,
        template,
        given,
        role_arn: None,
        tags: &[],
        timeout: Duration::from_secs(args.timeout),
    }
    .run(aws, existing)
    .await?;
    let outputs = stack::outputs(aws, &name).await?;
    if let (Some(bucket), Some(key)) = (&adopted, outputs.get("KeyArn")) {
        encrypt_by_default(aws, bucket, key).await?;
    }
    if adopting_now {
        eprintln!(
            "data: next, deploy {0} once with these credentials (`cargo xtask deploy {0}`): it moves the function onto {name}'s role and deletes its old one, which the CI's role may not; the CI deploys after that",
            args.stack
        );
    }
    stack::print(&outputs);
    Ok(())
}

/// The bucket an application stack of an earlier release keeps itself (it has no
/// `DataStack` parameter), if `stack` is one.
async fn bucket_of_an_earlier_release(aws: &Aws, stack: &str) -> anyhow::Result<Option<String>> {
    Ok(stack::info(aws, stack)
        .await?
        .filter(|s| s.exists() && !s.parameters.contains_key("DataStack"))
        .and_then(|s| s.outputs.get("Bucketname").cloned()))
}

/// New versions of an adopted bucket under the data stack's key, without a Bucket Key (a
/// created bucket gets the same from the template).
async fn encrypt_by_default(aws: &Aws, bucket: &str, key: &str) -> anyhow::Result<()> {
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(key)
        .build()
        .context("encryption settings")?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default)
        .bucket_key_enabled(false)
        .build();
    let configuration = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .context("encryption settings")?;
    aws.s3
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(configuration)
        .send()
        .await
        .map_err(|e| describe(&format!("setting the default encryption of {bucket}"), &e))?;
    eprintln!("data: bucket {bucket} encrypts new backups under {key}");
    Ok(())
}

/// The IAM principal the caller is, as a policy names it: an assumed role's role ARN (with
/// its path, which `aws:PrincipalArn` carries), else the user's or root's ARN.
async fn caller(aws: &Aws) -> anyhow::Result<String> {
    let arn = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| describe("who am I (sts:GetCallerIdentity)", &e))?
        .arn
        .context("sts:GetCallerIdentity returned no ARN")?;
    match principal_of(&arn) {
        Principal::Role(role) => {
            let got = aws
                .iam
                .get_role()
                .role_name(&role)
                .send()
                .await
                .map_err(|e| describe(&format!("reading role {role}"), &e))?;
            got.role
                .map(|r| r.arn)
                .with_context(|| format!("role {role} has no ARN"))
        }
        Principal::Arn(arn) => Ok(arn),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Principal {
    /// An assumed role, by name: its ARN (with its path) comes from IAM.
    Role(String),
    Arn(String),
}

/// What `sts:GetCallerIdentity`'s ARN names: `assumed-role/NAME/SESSION` is the role NAME;
/// a user or root is its own ARN (in IAM's namespace; emulators answer in STS's).
fn principal_of(arn: &str) -> Principal {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, _, _, _, resource] if resource.starts_with("assumed-role/") => Principal::Role(
            resource
                .trim_start_matches("assumed-role/")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        ["arn", partition, _, _, account, resource] => {
            Principal::Arn(format!("arn:{partition}:iam::{account}:{resource}"))
        }
        _ => Principal::Arn(arn.to_owned()),
    }
}

/// Creates the data stack of `stack` on the emulator, as an administrator would.
#[cfg(test)]
pub(crate) fn create_for_test(stack: &str) {
    crate::aws::block_on(create_for_test_async(stack))
        .expect("runtime")
        .expect("the data stack");
}

#[cfg(test)]
async fn create_for_test_async(stack: &str) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(crate::util::project_root().join("cfn/data.yml"))
        .expect("cfn/data.yml");
    let aws = Aws::connect(None, "data-admin").await?;
    apply(&aws, &template, &DataArgs::applying(stack, 120)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_is_named_as_a_policy_names_it() {
        assert_eq!(
            principal_of("arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com"),
            Principal::Role("Admin".to_owned())
        );
        assert_eq!(
            principal_of("arn:aws:iam::111122223333:user/ops/bob"),
            Principal::Arn("arn:aws:iam::111122223333:user/ops/bob".to_owned())
        );
        assert_eq!(
            principal_of("arn:aws:sts::123456789012:user/moto"),
            Principal::Arn("arn:aws:iam::123456789012:user/moto".to_owned())
        );
        assert_eq!(
            principal_of("arn:aws:iam::111122223333:root"),
            Principal::Arn("arn:aws:iam::111122223333:root".to_owned())
        );
    }

    /// An application stack of an earlier release, in the shape that matters here: it keeps
    /// its bucket (retained) and creates its function's role.
    const EARLIER_RELEASE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      VersioningConfiguration: { Status: Enabled }
  FunctionRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - { Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }
Outputs:
  Bucketname:
    Value: !Ref Bucket
"#;

    /// The upgrade keeps the bucket and every version: the data stack adopts the earlier
    /// release's bucket, then the application stack moves onto it (CloudFormation keeps the
    /// retained bucket it drops; the emulator is made to, see xtask/emulator/moto_as_aws.py).
    /// Before the adoption, the deploy refuses with one line saying what to run.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn an_upgrade_keeps_the_bucket_and_every_version() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let app_template =
            std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let stack = ssmbak_tests::emulator::unique("upgrade");
        let deploy_args = crate::deploy::DeployArgs::for_test(&stack, &[]);
        crate::aws::block_on(async {
            let aws = Aws::connect(None, "stack-admin").await?;
            Apply {
                stack: &stack,
                template: EARLIER_RELEASE,
                given: BTreeMap::new(),
                role_arn: None,
                tags: &[],
                timeout: Duration::from_secs(120),
            }
            .run(&aws, None)
            .await?;
            let bucket = stack::outputs(&aws, &stack).await?["Bucketname"].clone();
            // moto creates the bucket without the template's versioning; AWS turns it on.
            aws.s3
                .put_bucket_versioning()
                .bucket(&bucket)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await?;
            for body in ["v1", "v2", "v3"] {
                aws.s3
                    .put_object()
                    .bucket(&bucket)
                    .key("app/p")
                    .body(body.as_bytes().to_vec().into())
                    .send()
                    .await?;
            }
            aws.s3
                .delete_object()
                .bucket(&bucket)
                .key("app/p")
                .send()
                .await?;
            let versions = |aws: &Aws| {
                let (aws, bucket) = (aws.s3.clone(), bucket.clone());
                async move {
                    let listed = aws.list_object_versions().bucket(&bucket).send().await?;
                    anyhow::Ok((listed.versions().len(), listed.delete_markers().len()))
                }
            };
            assert_eq!(versions(&aws).await?, (3, 1));

            let refused = crate::deploy::deploy(&deploy_args, &app_template, b"code").await;
            let refused = refused.expect_err("no data stack yet").to_string();
            assert!(
                refused.contains(&format!("cargo xtask data {stack} --do-it")),
                "{refused}"
            );

            create_for_test_async(&stack).await?;
            crate::deploy::deploy(&deploy_args, &app_template, b"code").await?;

            let data = stack::outputs(&aws, &stack_name(&stack)).await?;
            let app = stack::outputs(&aws, &stack).await?;
            assert_eq!(data.get("Bucket"), Some(&bucket), "adopted, not created");
            assert_eq!(app.get("Bucketname"), Some(&bucket));
            assert_eq!(versions(&aws).await?, (3, 1), "every version kept");
            let resources = stack::resources(&aws, &stack).await?;
            let types: Vec<&str> = resources.iter().map(|(_, t)| t.as_str()).collect();
            assert!(
                !types
                    .iter()
                    .any(|t| *t == "AWS::S3::Bucket" || t.starts_with("AWS::IAM::")),
                "{types:?}"
            );
            let encryption = aws
                .s3
                .get_bucket_encryption()
                .bucket(&bucket)
                .send()
                .await?;
            let rule = &encryption
                .server_side_encryption_configuration()
                .context("encryption")?
                .rules()[0];
            let by_default = rule
                .apply_server_side_encryption_by_default()
                .context("default encryption")?;
            assert_eq!(by_default.sse_algorithm(), &ServerSideEncryption::AwsKms);
            assert_eq!(
                by_default.kms_master_key_id(),
                data.get("KeyArn").map(String::as_str)
            );
            assert_eq!(rule.bucket_key_enabled(), Some(false));
            anyhow::Ok(())
        })
        .expect("runtime")
        .expect("the upgrade");
    }

    /// A VPC with two private subnets and their route table, as a platform team has one.
    const NETWORK: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Vpc: { Type: AWS::EC2::VPC, Properties: { CidrBlock: 10.42.0.0/16 } }
  A: { Type: AWS::EC2::Subnet, Properties: { VpcId: !Ref Vpc, CidrBlock: 10.42.1.0/24, AvailabilityZone: us-east-1a } }
  B: { Type: AWS::EC2::Subnet, Properties: { VpcId: !Ref Vpc, CidrBlock: 10.42.2.0/24, AvailabilityZone: us-east-1b } }
  Routes: { Type: AWS::EC2::RouteTable, Properties: { VpcId: !Ref Vpc } }
Outputs:
  Vpc: { Value: !Ref Vpc }
  Subnets: { Value: !Join [",", [!Ref A, !Ref B]] }
  Routes: { Value: !Ref Routes }
"#;

    /// VPC mode: the data stack creates the endpoints (five interface, one S3 gateway), the
    /// function's security group and the role's VPC policy; the application stack then runs
    /// the function in those subnets without being told (deploy reads the data stack).
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn vpc_mode_puts_the_function_behind_the_data_stacks_endpoints() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let app_template =
            std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let data_template = std::fs::read_to_string(root.join("cfn/data.yml")).expect("data");
        let stack = ssmbak_tests::emulator::unique("vpc");
        crate::aws::block_on(async {
            let aws = Aws::connect(None, "stack-admin").await?;
            let network = format!("{stack}-network");
            Apply {
                stack: &network,
                template: NETWORK,
                given: BTreeMap::new(),
                role_arn: None,
                tags: &[],
                timeout: Duration::from_secs(120),
            }
            .run(&aws, None)
            .await?;
            let net = stack::outputs(&aws, &network).await?;
            let args = DataArgs {
                params: vec![
                    ("VpcId".to_owned(), net["Vpc"].clone()),
                    ("SubnetIds".to_owned(), net["Subnets"].clone()),
                    ("RouteTableIds".to_owned(), net["Routes"].clone()),
                ],
                ..DataArgs::applying(&stack, 120)
            };
            apply(&aws, &data_template, &args).await?;
            let data = stack::outputs(&aws, &stack_name(&stack)).await?;
            assert_eq!(data.get("FunctionSubnetIds"), Some(&net["Subnets"]));
            assert!(
                data["FunctionSecurityGroupId"].starts_with("sg-"),
                "{data:?}"
            );
            let endpoints = stack::resources(&aws, &stack_name(&stack))
                .await?
                .iter()
                .filter(|(_, t)| t == "AWS::EC2::VPCEndpoint")
                .count();
            assert_eq!(endpoints, 6, "SSM, KMS, SQS, Logs, CloudFormation and S3");

            let deploy_args = crate::deploy::DeployArgs::for_test(&stack, &[]);
            crate::deploy::deploy(&deploy_args, &app_template, b"code").await?;
            let app = stack::existing(&aws, &stack).await?;
            assert_eq!(
                app.parameters.get("VpcMode").map(String::as_str),
                Some("true")
            );
            anyhow::Ok(())
        })
        .expect("runtime")
        .expect("VPC mode");
    }
}
