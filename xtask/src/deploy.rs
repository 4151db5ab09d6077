//! `cargo xtask deploy STACK`: build, validate, upload the artifact, create or update the
//! stack, follow its events until it settles, print its outputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
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
    /// A stack tag, `Key=Value`; repeatable. Tags the stack has already are kept.
    #[arg(long = "tag", value_parser = parse_param)]
    pub(crate) tags: Vec<(String, String)>,
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
    if stack::status(&aws, &args.stack).await?.is_none() {
        return Ok(build_lambda::Arch::default());
    }
    match stack::parameters(&aws, &args.stack)
        .await?
        .get("Architecture")
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
        None => format!("ssmbak-artifacts-{account}-{}", aws.region()),
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
    // Its events are told from others' by this token, not by the local clock.
    let operation = stack::Operation::start("deploy");
    // UpdateStack replaces the whole tag set when Tags is given, and the change reaches every
    // resource ("If you don't specify this parameter, CloudFormation doesn't modify the stack's
    // tags", UpdateStack API reference): the current tags are kept, the given ones added.
    let current_tags = match &existing {
        Some(_) => stack::tags(&aws, &args.stack).await?,
        None => BTreeMap::new(),
    };
    let tags: Vec<Tag> = merged_tags(current_tags, &args.tags)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let capabilities = [Capability::CapabilityIam, Capability::CapabilityNamedIam];
    match existing {
        None => {
            eprintln!("creating stack {}", args.stack);
            let params = stack_parameters(given.iter());
            aws.cfn
                .create_stack()
                .stack_name(&args.stack)
                .client_request_token(&operation.token)
                .template_body(template)
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
            let mut values = stack::parameters(&aws, &args.stack).await?;
            values.extend(given);
            let params = stack_parameters(known.iter().filter_map(|k| Some((k, values.get(k)?))));
            let result = aws
                .cfn
                .update_stack()
                .stack_name(&args.stack)
                .client_request_token(&operation.token)
                .template_body(template)
                .set_parameters(Some(params))
                .set_capabilities(Some(capabilities.to_vec()))
                .set_tags(Some(tags))
                .send()
                .await;
            if let Err(e) = result {
                let text = aws_sdk_s3::error::ProvideErrorMetadata::message(&e)
                    .unwrap_or_default()
                    .to_owned();
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

/// How long one upload attempt of `bytes` may take: sized to the object, so that a slow
/// uplink (down to 256 kbit/s) still gets the zip through, not the 10 s other requests get.
fn upload_timeout(bytes: usize) -> Duration {
    const SLOWEST_BYTES_PER_SEC: u64 = 32 * 1024;
    Duration::from_secs(30 + bytes as u64 / SLOWEST_BYTES_PER_SEC)
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

/// The artifact bucket, as ours alone. Its name is predictable, so anyone could create it
/// first, in any account, and serve the code CloudFormation deploys: every call carries S3's
/// bucket owner condition (`ExpectedBucketOwner`; S3 answers 403 when the bucket belongs to
/// another account: S3 User Guide, "Verifying bucket ownership with bucket owner condition"),
/// the hardening is re-applied on every deploy, and the uploaded zip's SHA-256 is checked by S3.
struct Artifacts<'a> {
    aws: &'a Aws,
    bucket: &'a str,
    /// The deploying account: the only acceptable owner.
    owner: &'a str,
}

impl Artifacts<'_> {
    async fn ensure_bucket(&self) -> anyhow::Result<()> {
        let (aws, bucket, owner) = (self.aws, self.bucket, self.owner);
        match aws
            .s3
            .head_bucket()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                self.create().await?
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => bail!(
                "artifact bucket {bucket} is not owned by account {owner} (or is not readable by it): pass --artifact-bucket with a bucket of this account"
            ),
            Err(e) => return Err(describe(&format!("checking artifact bucket {bucket}"), &e)),
        }
        self.harden().await
    }

    async fn create(&self) -> anyhow::Result<()> {
        let (aws, bucket) = (self.aws, self.bucket);
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
        Ok(())
    }

    /// The same hardening as the backup bucket; idempotent, so applied on every deploy (a
    /// failure half-way through one deploy is repaired by the next).
    async fn harden(&self) -> anyhow::Result<()> {
        let (aws, bucket, owner) = (self.aws, self.bucket, self.owner);
        aws.s3
            .put_public_access_block()
            .bucket(bucket)
            .expected_bucket_owner(owner)
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
            .expected_bucket_owner(owner)
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
            .expected_bucket_owner(owner)
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
            .expected_bucket_owner(owner)
            .policy(tls_only.to_string())
            .send()
            .await
            .map_err(|e| describe("setting the TLS-only policy", &e))?;
        Ok(())
    }

    /// Uploads `zip` under `key` unless an object with its SHA-256 is already there; S3
    /// checks the upload against the SHA-256 sent with it (`x-amz-checksum-sha256`).
    async fn upload(&self, key: &str, zip: &[u8]) -> anyhow::Result<()> {
        let (aws, bucket, owner) = (self.aws, self.bucket, self.owner);
        let checksum = aws_smithy_types::base64::encode(Sha256::digest(zip));
        let existing = aws
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .expected_bucket_owner(owner)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await;
        if existing
            .as_ref()
            .is_ok_and(|h| h.checksum_sha256() == Some(checksum.as_str()))
        {
            eprintln!("artifact s3://{bucket}/{key} already uploaded");
            return Ok(());
        }
        eprintln!("uploading s3://{bucket}/{key}");
        aws.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .expected_bucket_owner(owner)
            .checksum_sha256(&checksum)
            .body(zip.to_vec().into())
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(upload_timeout(zip.len()))
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|e| describe(&format!("uploading s3://{bucket}/{key}"), &e))?;
        Ok(())
    }
}

/// Whether S3 is reached over plain HTTP (an emulator), where TLS cannot be required.
fn plain_http() -> bool {
    ssmbak_core::client::endpoint_override("s3").is_some_and(|e| e.starts_with("http://"))
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
        let tags = crate::aws::block_on(stack::tags(&aws, &stack))
            .expect("runtime")
            .expect("tags");
        assert_eq!(
            (tags.get("cost-center"), tags.get("ssmbak:managed")),
            (Some(&"42".to_owned()), Some(&"true".to_owned())),
            "an update keeps the stack's tags: {tags:?}"
        );

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

    /// Every call to the artifact bucket carries the owner condition, and a bucket another
    /// account owns is refused with one line. moto ignores `x-amz-expected-bucket-owner`; S3
    /// answers 403 Access Denied when the bucket's owner differs (S3 User Guide, "Verifying
    /// bucket ownership with bucket owner condition"), which the proxy does for the foreign
    /// bucket.
    #[test]
    fn the_artifact_bucket_must_be_ours() {
        use ssmbak_tests::fault_proxy::{Fault, FaultProxy};
        use std::sync::{Arc, Mutex};

        let Some(endpoint) = ssmbak_tests::emulator::endpoint() else {
            return;
        };
        let proxy = FaultProxy::start(&endpoint);
        let aws = crate::aws::block_on(Aws::with_s3_at(&proxy.endpoint))
            .expect("runtime")
            .expect("clients");
        let owner = crate::aws::block_on(aws.account())
            .expect("runtime")
            .expect("account");
        let ours = ssmbak_tests::emulator::unique("artifacts").to_ascii_lowercase();
        let foreign = ssmbak_tests::emulator::unique("foreign").to_ascii_lowercase();
        let unconditioned = Arc::new(Mutex::new(Vec::new()));
        let (seen, bucket) = (Arc::clone(&unconditioned), format!("/{ours}"));
        proxy.inject(usize::MAX, Fault::Denied, move |s| {
            // CreateBucket takes no owner condition: the bucket is not there yet.
            let query = s.path.split_once('?').map_or("", |(_, q)| q);
            let create_bucket = s.method == "PUT"
                && s.path_only().trim_end_matches('/') == bucket
                && !["versioning", "encryption", "publicAccessBlock", "policy"]
                    .iter()
                    .any(|sub| query.contains(sub));
            if s.path_only().starts_with(&bucket)
                && !create_bucket
                && !s.headers.contains_key("x-amz-expected-bucket-owner")
            {
                seen.lock().expect("lock").push(s.operation());
            }
            false
        });
        let foreign_path = format!("/{foreign}");
        proxy.inject(usize::MAX, Fault::Denied, move |s| {
            s.path_only().starts_with(&foreign_path)
                && s.headers.contains_key("x-amz-expected-bucket-owner")
        });

        let artifacts = Artifacts {
            aws: &aws,
            bucket: &ours,
            owner: &owner,
        };
        for _ in 0..2 {
            crate::aws::block_on(async {
                artifacts.ensure_bucket().await?;
                artifacts.upload("ssmbak/lambda/x.zip", b"code").await
            })
            .expect("runtime")
            .expect("deploys into our own bucket");
        }
        assert_eq!(*unconditioned.lock().expect("lock"), Vec::<String>::new());
        assert!(
            proxy.counts().values().sum::<usize>() >= 8,
            "the calls went through the proxy: {:?}",
            proxy.counts()
        );

        let theirs = Artifacts {
            aws: &aws,
            bucket: &foreign,
            owner: &owner,
        };
        let refused = crate::aws::block_on(theirs.ensure_bucket()).expect("runtime");
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("is not owned by account")),
            "{refused:?}"
        );
    }

    #[test]
    fn an_upload_gets_time_for_its_size() {
        assert_eq!(upload_timeout(0), Duration::from_secs(30));
        // The ~4 MB zip over a 256 kbit/s uplink takes ~125 s.
        assert!(upload_timeout(4_000_000) >= Duration::from_secs(125));
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
