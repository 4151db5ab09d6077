//! AWS client construction, the same for the Lambda, the CLIs and the xtask.
//!
//! Region and credentials come from the standard chain (environment, profile, container and
//! instance roles). The endpoint can be overridden with the standard `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` (which the SDK reads by itself) and with the original ssmbak's
//! `AWS_ENDPOINT`. Whenever S3's endpoint is overridden, S3 uses path-style addressing, which
//! emulators need.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The original ssmbak's endpoint variable, honoured when the standard one is unset.
pub const LEGACY_ENDPOINT_VAR: &str = "AWS_ENDPOINT";

/// How clients are built.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Overrides the region chain (the CLIs' `-r`).
    pub region: Option<String>,
    /// A named profile of the shared config and credentials files instead of the default
    /// chain's (the CLIs' `--to-profile`).
    pub profile: Option<String>,
    /// Send every request to this endpoint instead of the service's (the AWS CLI's
    /// `--endpoint-url`): it wins over `AWS_ENDPOINT_URL`; S3 is then addressed path-style.
    pub endpoint_url: Option<String>,
    /// Total attempts per request, first one included (standard retry mode, with backoff).
    pub max_attempts: u32,
    /// Limit on one attempt, so a hung connection turns into a retry, not a stall.
    pub attempt_timeout: Duration,
    /// Adaptive retry: also slows the client down when the service throttles (bulk writes).
    pub adaptive_retry: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            region: None,
            profile: None,
            endpoint_url: None,
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(10),
            adaptive_retry: false,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no AWS region: pass -r/--region or set AWS_REGION (or AWS_DEFAULT_REGION, or region= in ~/.aws/config)")]
    NoRegion,
}

/// The endpoint set by environment for `service` (lower-case SDK id, e.g. `s3`), if any.
pub fn endpoint_override(service: &str) -> Option<String> {
    let specific = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
    [specific.as_str(), "AWS_ENDPOINT_URL", LEGACY_ENDPOINT_VAR]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// Loads the shared configuration.
pub async fn load(options: &ClientOptions) -> Result<SdkConfig, ConfigError> {
    let retry = if options.adaptive_retry {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry.with_max_attempts(options.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(options.attempt_timeout)
                .build(),
        );
    if let Some(profile) = &options.profile {
        // The SDK's default chain reads credentials from the environment before any profile:
        // a named profile must supply its own, or a restore meant for another account would
        // write with the caller's (AWS_ACCESS_KEY_ID set by aws-vault, a CI job, ...). A
        // profile that does not exist fails the first request; it never falls back.
        let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(profile)
            .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
        // A named profile stands for where to work: its region wins over the environment's
        // (which, in the SDK's chain, comes first) unless a region is given.
        if options.region.is_none() {
            use aws_config::meta::region::ProvideRegion;
            let named = aws_config::profile::ProfileFileRegionProvider::builder()
                .profile_name(profile)
                .build();
            if let Some(region) = named.region().await {
                loader = loader.region(region);
            }
        }
    }
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    } else if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        if let Ok(legacy) = std::env::var(LEGACY_ENDPOINT_VAR) {
            if !legacy.is_empty() {
                loader = loader.endpoint_url(legacy);
            }
        }
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(ConfigError::NoRegion);
    }
    Ok(config)
}

/// An S3 client for `component` (see [`crate::record`]); path-style when the endpoint is
/// overridden.
pub fn s3(config: &SdkConfig, component: &'static str) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some() || endpoint_override("s3").is_some());
    if let Some(r) = crate::record::recorder(component) {
        builder = builder.interceptor(r);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// An SSM client for `component` (see [`crate::record`]).
pub fn ssm(config: &SdkConfig, component: &'static str) -> aws_sdk_ssm::Client {
    let mut builder = aws_sdk_ssm::config::Builder::from(config);
    if let Some(r) = crate::record::recorder(component) {
        builder = builder.interceptor(r);
    }
    aws_sdk_ssm::Client::from_conf(builder.build())
}

/// A client whose every request may spend all of its `max_attempts`: for the CLIs, which
/// bound the requests they have in flight themselves (64 key reads, 64 writes).
///
/// The SDK's default retry quota is one token bucket per service, shared by every client of
/// the process: 500 tokens, 5 spent by a retry and 10 by a retry after a timeout, one given
/// back by each first-attempt success (aws-smithy-runtime 1.16.2,
/// `client/retries/token_bucket.rs`, `strategy/standard.rs`). It stops a client with unbounded
/// concurrency from multiplying the load on a struggling service, and the CLIs' bound already
/// does that: at most `max_attempts` × what is in flight. What the quota did instead was end a
/// preview of 10,000 parameters: one stall past the attempt timeout of the 128 reads in flight
/// spent it, and the 51st retry was refused.
pub trait WithoutRetryQuota {
    fn without_retry_quota(&self) -> Self;
}

fn partition_without_quota(name: &'static str) -> aws_sdk_s3::config::retry::RetryPartition {
    use aws_sdk_s3::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom(name)
        .token_bucket(TokenBucket::unlimited())
        .build()
}

impl WithoutRetryQuota for aws_sdk_s3::Client {
    fn without_retry_quota(&self) -> Self {
        let config = self.config().to_builder();
        aws_sdk_s3::Client::from_conf(
            config
                .retry_partition(partition_without_quota("ssmbak-s3"))
                .build(),
        )
    }
}

impl WithoutRetryQuota for aws_sdk_ssm::Client {
    fn without_retry_quota(&self) -> Self {
        let config = self.config().to_builder();
        aws_sdk_ssm::Client::from_conf(
            config
                .retry_partition(partition_without_quota("ssmbak-ssm"))
                .build(),
        )
    }
}

/// A failed `GetBucketVersioning`.
pub type VersioningError = aws_sdk_s3::error::SdkError<
    aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningError,
    aws_sdk_s3::config::http::HttpResponse,
>;

/// A bucket's versioning status (`None`: never turned on), checked against `expected_owner`
/// when given.
///
/// moto names the answer's root element `GetBucketVersioningResponse` (S3:
/// `VersioningConfiguration`), which the SDK refuses to parse; the status is still in the
/// body and is read from there. Real S3 never takes that path.
pub async fn versioning_status(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    expected_owner: Option<&str>,
) -> Result<Option<aws_sdk_s3::types::BucketVersioningStatus>, VersioningError> {
    use aws_sdk_s3::types::BucketVersioningStatus;
    let answer = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .set_expected_bucket_owner(expected_owner.map(str::to_owned))
        .send()
        .await;
    match answer {
        Ok(v) => Ok(v.status),
        Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Ok(["Enabled", "Suspended"]
                .into_iter()
                .find(|s| body.contains(&format!("<Status>{s}</Status>")))
                .map(BucketVersioningStatus::from))
        }
        Err(e) => Err(e),
    }
}

/// Sends `x-amz-request-payer: requester` with every request: the caller pays for reading a
/// requester-pays bucket, which S3 otherwise answers with 403 (S3 User Guide, "Downloading
/// objects from Requester Pays buckets": "Requesters must include x-amz-request-payer in
/// their requests").
#[derive(Debug, Clone, Copy)]
pub struct RequesterPays;

impl aws_smithy_runtime_api::client::interceptors::Intercept for RequesterPays {
    fn name(&self) -> &'static str {
        "RequesterPays"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-amz-request-payer", "requester");
        Ok(())
    }
}

/// `s3`, paying for its requests to requester-pays buckets.
pub fn paying_requester(s3: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
    let config = s3.config().to_builder().interceptor(RequesterPays).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The account a bucket must belong to, sent with every S3 request as
/// `x-amz-expected-bucket-owner` (and, for a copy, `x-amz-source-expected-bucket-owner`): S3
/// refuses the request with 403 when the bucket is another account's (S3 User Guide,
/// "Verifying bucket ownership with bucket owner condition"). A bucket name alone is no proof
/// of whose it is: a rewritten discovery parameter or `SSMBAK_BUCKET` naming another account's
/// bucket would otherwise receive every backup, or feed a restore.
///
/// Known from the start (the CLIs: STS or `--bucket-owner`) or learned once (the Lambda: from
/// its own ARN, on its first invocation). Until it is known every S3 request fails: closed,
/// never unconditioned.
#[derive(Debug, Clone, Default)]
pub struct ExpectedOwner(Arc<OnceLock<String>>);

/// An account id that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("not an AWS account id: {0:?} (12 digits)")]
    NotAnAccount(String),
    #[error("no account in ARN {0:?}")]
    NoAccountIn(String),
}

impl ExpectedOwner {
    /// `account`, checked to be an account id.
    pub fn account(account: &str) -> Result<Self, OwnerError> {
        let owner = ExpectedOwner::to_be_learned();
        owner.learn(account)?;
        Ok(owner)
    }

    /// An owner learned later ([`ExpectedOwner::learn_from_arn`]); requests fail until then.
    pub fn to_be_learned() -> Self {
        ExpectedOwner::default()
    }

    /// Learns `account`; the first one learned stays.
    pub fn learn(&self, account: &str) -> Result<&str, OwnerError> {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OwnerError::NotAnAccount(account.to_owned()));
        }
        Ok(self.0.get_or_init(|| account.to_owned()))
    }

    /// Learns the account of `arn` (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
    pub fn learn_from_arn(&self, arn: &str) -> Result<&str, OwnerError> {
        let account = arn
            .split(':')
            .nth(4)
            .filter(|_| arn.starts_with("arn:"))
            .ok_or_else(|| OwnerError::NoAccountIn(arn.to_owned()))?;
        self.learn(account)
    }

    /// The account, once known.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

pub use crate::record::EXPECTED_OWNER_HEADER;
const SOURCE_OWNER_HEADER: &str = "x-amz-source-expected-bucket-owner";

impl aws_smithy_runtime_api::client::interceptors::Intercept for ExpectedOwner {
    fn name(&self) -> &'static str {
        "ExpectedOwner"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let owner = self
            .get()
            .ok_or("the backup bucket's account is not known yet: no S3 request is sent")?
            .to_owned();
        let headers = context.request_mut().headers_mut();
        // A value the request set itself (xtask's artifact bucket) stays.
        if !headers.contains_key(EXPECTED_OWNER_HEADER) {
            headers.insert(EXPECTED_OWNER_HEADER, owner.clone());
        }
        if headers.contains_key("x-amz-copy-source") && !headers.contains_key(SOURCE_OWNER_HEADER) {
            headers.insert(SOURCE_OWNER_HEADER, owner);
        }
        Ok(())
    }
}

/// `s3`, sending `owner` as the expected owner of every bucket it calls.
pub fn owned_by(s3: &aws_sdk_s3::Client, owner: &ExpectedOwner) -> aws_sdk_s3::Client {
    let config = s3.config().to_builder().interceptor(owner.clone()).build();
    aws_sdk_s3::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_learns_its_account_from_its_arn_once() {
        let owner = ExpectedOwner::to_be_learned();
        assert_eq!(owner.get(), None);
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:ssmbak-Function-X";
        assert_eq!(owner.learn_from_arn(arn), Ok("123456789012"));
        let other = "arn:aws:lambda:eu-west-1:210987654321:function:other";
        assert_eq!(owner.learn_from_arn(other), Ok("123456789012"));
        assert_eq!(owner.clone().get(), Some("123456789012"));
    }

    #[test]
    fn only_an_account_id_is_an_owner() {
        for bad in ["", "12345678901", "1234567890123", "12345678901a", "*"] {
            assert_eq!(
                ExpectedOwner::account(bad).map(|o| o.get().map(str::to_owned)),
                Err(OwnerError::NotAnAccount(bad.to_owned()))
            );
        }
        for bad in [
            "function:x",
            "arn:aws:lambda",
            "xrn:aws:lambda:r:123456789012:f",
        ] {
            assert!(ExpectedOwner::to_be_learned().learn_from_arn(bad).is_err());
        }
        assert!(ExpectedOwner::account("000000000000").is_ok());
    }
}
