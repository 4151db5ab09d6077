//! `cargo xtask deploy STACK`: build, validate, upload the artifact, create or update the
//! stack, follow its events until it settles, print its outputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus, Tag};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use sha2::{Digest, Sha256};

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
    let zip = build_lambda::run(root)?;
    validate::run(root)?;
    let template =
        std::fs::read_to_string(root.join("cfn/template.yml")).context("cfn/template.yml")?;
    let bytes = std::fs::read(&zip).with_context(|| format!("reading {}", zip.display()))?;
    crate::aws::block_on(deploy(args, &template, &bytes))?
}

/// Everything after the build, against whatever endpoint the environment names.
pub(crate) async fn deploy(args: &DeployArgs, template: &str, zip: &[u8]) -> anyhow::Result<()> {
    let aws = Aws::connect(args.region.clone(), "deploy").await?;
    let bucket = match &args.artifact_bucket {
        Some(b) => b.clone(),
        None => format!("ssmbak-artifacts-{}-{}", aws.account().await?, aws.region()),
    };
    ensure_artifact_bucket(&aws, &bucket).await?;
    let key = format!("ssmbak/lambda/{:x}.zip", Sha256::digest(zip));
    upload(&aws, &bucket, &key, zip).await?;

    let mut given: BTreeMap<String, String> = args.params.iter().cloned().collect();
    if plain_http() && !given.contains_key("EnforceTls") {
        eprintln!("the S3 endpoint is plain HTTP (an emulator): deploying with EnforceTls=false");
        given.insert("EnforceTls".to_owned(), "false".to_owned());
    }
    given.insert("ArtifactBucket".to_owned(), bucket);
    given.insert("ArtifactKey".to_owned(), key);
    let known = template_parameters(template);
    if let Some(unknown) = given.keys().find(|k| !known.contains(k)) {
        bail!("--param {unknown}: the template has no such parameter");
    }

    let existing = stack::status(&aws, &args.stack).await?;
    let started = aws_sdk_cloudformation::primitives::DateTime::from(std::time::SystemTime::now());
    let tags = Tag::builder().key("ssmbak:managed").value("true").build();
    let capabilities = [Capability::CapabilityIam, Capability::CapabilityNamedIam];
    match existing {
        None => {
            eprintln!("creating stack {}", args.stack);
            let params = stack_parameters(given.iter());
            aws.cfn
                .create_stack()
                .stack_name(&args.stack)
                .template_body(template)
                .set_parameters(Some(params))
                .set_capabilities(Some(capabilities.to_vec()))
                .tags(tags)
                .send()
                .await
                .map_err(|e| describe(&format!("creating stack {}", args.stack), &e))?;
        }
        Some(StackStatus::RollbackComplete) => bail!(
            "stack {} is ROLLBACK_COMPLETE after a failed create: delete it (cargo xtask delete {}) and deploy again",
            args.stack,
            args.stack
        ),
        Some(status) if status.as_str().ends_with("_IN_PROGRESS") => {
            bail!("stack {} is busy ({}): try again when it settles", args.stack, status.as_str())
        }
        Some(_) => {
            eprintln!("updating stack {}", args.stack);
            // Parameters not given keep their current values, not the template defaults. The
            // values are passed back explicitly rather than with UsePreviousValue, which moto
            // cannot do for a parameter left at its default (the template has no NoEcho
            // parameter, whose value would read back masked).
            let mut values = stack::parameters(&aws, &args.stack).await?;
            values.extend(given);
            let params = stack_parameters(known.iter().filter_map(|k| Some((k, values.get(k)?))));
            let result = aws
                .cfn
                .update_stack()
                .stack_name(&args.stack)
                .template_body(template)
                .set_parameters(Some(params))
                .set_capabilities(Some(capabilities.to_vec()))
                .tags(tags)
                .send()
                .await;
            if let Err(e) = result {
                let text = aws_sdk_s3::error::ProvideErrorMetadata::message(&e).unwrap_or_default().to_owned();
                if text.contains("No updates are to be performed") {
                    eprintln!("stack {} is up to date", args.stack);
                    return stack::print_outputs(&aws, &args.stack).await;
                }
                return Err(describe(&format!("updating stack {}", args.stack), &e));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    stack::follow(&aws, &args.stack, started, deadline).await?;
    stack::print_outputs(&aws, &args.stack).await
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

async fn ensure_artifact_bucket(aws: &Aws, bucket: &str) -> anyhow::Result<()> {
    match aws.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
        Err(e) => return Err(describe(&format!("checking artifact bucket {bucket}"), &e)),
    }
    eprintln!("creating artifact bucket {bucket}");
    let mut create = aws.s3.create_bucket().bucket(bucket);
    let region = aws.region();
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(|e| describe(&format!("creating bucket {bucket}"), &e))?;
    // The same hardening as the backup bucket.
    aws.s3
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| describe("blocking public access", &e))?;
    aws.s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| describe("enabling versioning", &e))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .context("encryption rule")?,
        )
        .build();
    aws.s3
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .context("encryption")?,
        )
        .send()
        .await
        .map_err(|e| describe("enabling encryption", &e))?;
    if plain_http() {
        // A TLS-only policy would refuse every request made over the emulator's plain HTTP.
        return Ok(());
    }
    let tls_only = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    });
    aws.s3
        .put_bucket_policy()
        .bucket(bucket)
        .policy(tls_only.to_string())
        .send()
        .await
        .map_err(|e| describe("setting the TLS-only policy", &e))?;
    Ok(())
}

/// Whether S3 is reached over plain HTTP (an emulator), where TLS cannot be required.
fn plain_http() -> bool {
    ssmbak_core::client::endpoint_override("s3").is_some_and(|e| e.starts_with("http://"))
}

async fn upload(aws: &Aws, bucket: &str, key: &str, zip: &[u8]) -> anyhow::Result<()> {
    if aws
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
    {
        eprintln!("artifact s3://{bucket}/{key} already uploaded");
        return Ok(());
    }
    eprintln!("uploading s3://{bucket}/{key}");
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(zip.to_vec().into())
        .send()
        .await
        .map_err(|e| describe(&format!("uploading s3://{bucket}/{key}"), &e))?;
    Ok(())
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
        crate::aws::block_on(stack::parameters(aws, stack))
            .expect("runtime")
            .expect("parameters")
    }

    /// Deploy, redeploy, update with new code, query and delete, against moto.
    #[test]
    fn deploys_updates_and_deletes_a_stack_on_the_emulator() {
        let Some(_endpoint) = ssmbak_tests::emulator::endpoint() else {
            return;
        };
        let root = crate::util::project_root();
        let template = std::fs::read_to_string(root.join("cfn/template.yml")).expect("template");
        let stack = ssmbak_tests::emulator::unique("deploy");
        let prefix = format!("/{stack}/");
        let args = |params: Vec<(&str, &str)>| DeployArgs {
            stack: stack.clone(),
            region: None,
            artifact_bucket: None,
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            timeout: 120,
        };
        let run = |a: DeployArgs, zip: &'static [u8]| {
            crate::aws::block_on(deploy(&a, &template, zip)).expect("runtime")
        };

        run(
            args(vec![
                ("DiscoveryPrefix", prefix.as_str()),
                ("LogLevel", "debug"),
            ]),
            b"code v1",
        )
        .expect("create");
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

        let unknown = run(args(vec![("NoSuchParam", "x")]), b"code v2");
        assert!(unknown.is_err_and(|e| e.to_string().contains("NoSuchParam")));

        crate::aws::block_on(stack::delete_stack(&aws, &stack))
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
            crate::aws::block_on(aws.s3.head_bucket().bucket(&bucket).send()).expect("runtime");
        assert!(
            kept.is_ok(),
            "the backup bucket {bucket} must survive the stack"
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
