//! Which bucket holds the backups: `-b`, else `--stack`'s output, else `SSMBAK_BUCKET`, else the
//! SSM parameter the stack writes. The one resolver of `ssmbak` and `cargo xtask seed-all`.

use anyhow::{bail, Context};
use aws_sdk_s3::error::ProvideErrorMetadata;
use ssmbak_core::client::ExpectedOwner;

/// The environment variable naming the bucket.
pub const BUCKET_VAR: &str = "SSMBAK_BUCKET";
/// Where the stack records its bucket (the original's name, so existing stacks keep working).
pub const DISCOVERY_PARAM: &str = "/newvoll/ssmbak/bucketname";

/// Resolves the bucket name: `flag`, else the Bucketname output of `stack` (with the client
/// to read it), else the environment, else the discovery parameter; `verbose` says where it
/// came from on stderr.
pub async fn resolve(
    flag: Option<String>,
    stack: Option<(&aws_sdk_cloudformation::Client, &str)>,
    ssm: &aws_sdk_ssm::Client,
    verbose: bool,
) -> anyhow::Result<String> {
    if let Some(b) = flag.filter(|b| !b.is_empty()) {
        return Ok(b);
    }
    if let Some((cfn, stack)) = stack {
        let b = from_stack(cfn, stack).await?;
        if verbose {
            eprintln!("bucket {b} from stack {stack}");
        }
        return Ok(b);
    }
    if let Some(b) = std::env::var(BUCKET_VAR).ok().filter(|b| !b.is_empty()) {
        if verbose {
            eprintln!("bucket {b} from {BUCKET_VAR}");
        }
        return Ok(b);
    }
    match ssm.get_parameter().name(DISCOVERY_PARAM).send().await {
        Ok(out) => {
            let b = out
                .parameter
                .and_then(|p| p.value)
                .context("the bucket parameter has no value")?;
            if verbose {
                eprintln!("bucket {b} from SSM parameter {DISCOVERY_PARAM}");
            }
            Ok(b)
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => bail!(
            "no bucket: pass -b/--bucket, set {BUCKET_VAR}, or deploy the stack (SSM parameter {DISCOVERY_PARAM} not found)"
        ),
        Err(e) => Err(crate::common::output::aws_error("reading the bucket's SSM parameter", &e)),
    }
}

/// The account the bucket must belong to: `flag` (`--bucket-owner`), else the caller's own,
/// from STS (which needs no permission: AWS STS API reference, GetCallerIdentity).
pub async fn owner(
    sdk: &aws_config::SdkConfig,
    flag: Option<&str>,
    component: &'static str,
) -> anyhow::Result<ExpectedOwner> {
    if let Some(account) = flag {
        return ExpectedOwner::account(account).context("--bucket-owner");
    }
    let mut sts = aws_sdk_sts::config::Builder::from(sdk);
    if let Some(r) = ssmbak_core::record::recorder(component) {
        sts = sts.interceptor(r);
    }
    let me = aws_sdk_sts::Client::from_conf(sts.build())
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| crate::common::output::aws_error("who am I (sts:GetCallerIdentity)", &e))?;
    let account = me
        .account()
        .context("sts:GetCallerIdentity returned no account")?;
    Ok(ExpectedOwner::account(account)?)
}

/// Fails unless `bucket` exists and has versioning on (or suspended, with history kept).
///
/// With an expected owner, S3 answers 403 for a bucket of another account exactly as for one
/// the caller may not read: the error says both.
pub async fn check_versioned(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    owner: Option<&ExpectedOwner>,
) -> anyhow::Result<()> {
    let owner = owner.and_then(ExpectedOwner::get);
    let versioned = match ssmbak_core::client::versioning_status(s3, bucket, owner).await {
        Ok(status) => status.is_some(),
        Err(e) if e.code() == Some("NoSuchBucket") => bail!("bucket {bucket} does not exist"),
        Err(e) => {
            if let (Some("AccessDenied"), Some(owner)) = (e.code(), owner) {
                bail!("access denied to bucket {bucket}: it is not in account {owner}, or you may not read it (--bucket-owner names another account)");
            }
            return Err(crate::common::output::aws_error(
                &format!("checking bucket {bucket}"),
                &e,
            ));
        }
    };
    if !versioned {
        bail!("bucket {bucket} is not versioned: it holds no history to restore from");
    }
    Ok(())
}

/// The bucket of an ssmbak stack, from its `Bucketname` output.
async fn from_stack(cfn: &aws_sdk_cloudformation::Client, stack: &str) -> anyhow::Result<String> {
    let described = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| crate::common::output::aws_error(&format!("reading stack {stack}"), &e))?;
    described
        .stacks()
        .iter()
        .flat_map(|s| s.outputs())
        .find(|o| matches!(o.output_key(), Some("Bucketname" | "BucketName")))
        .and_then(|o| o.output_value())
        .map(str::to_owned)
        .with_context(|| format!("stack {stack} has no Bucketname output: is it an ssmbak stack?"))
}

/// An S3 client in `bucket`'s own region. S3 answers a request signed for another region with
/// `301 PermanentRedirect` and names the bucket's region in `x-amz-bucket-region` (S3 API
/// reference, HeadBucket: "x-amz-bucket-region: The Region that the bucket is located"); the
/// SDK does not follow it, so the bucket's region is read from a HeadBucket first.
pub async fn client_in_region_of(
    s3: aws_sdk_s3::Client,
    bucket: &str,
) -> anyhow::Result<aws_sdk_s3::Client> {
    let region = match s3.head_bucket().bucket(bucket).send().await {
        Ok(head) => head.bucket_region().map(str::to_owned),
        Err(e) => e
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_owned),
    };
    match region {
        Some(r) if Some(r.as_str()) != s3.config().region().map(|c| c.as_ref()) => {
            // The same client (its interceptors: owner, recorder) in the bucket's region.
            let config = s3.config().to_builder().region(aws_config::Region::new(r));
            Ok(aws_sdk_s3::Client::from_conf(config.build()))
        }
        // The same region, or no answer to go by: the checks that follow say what is wrong.
        _ => Ok(s3),
    }
}
