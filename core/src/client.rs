//! AWS client construction, the same for the Lambda, the CLIs and the xtask.
//!
//! Region and credentials come from the standard chain (environment, profile, container and
//! instance roles). The endpoint can be overridden with the standard `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` (which the SDK reads by itself) and with the original ssmbak's
//! `AWS_ENDPOINT`. Whenever S3's endpoint is overridden, S3 uses path-style addressing, which
//! emulators need.

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
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
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
        .force_path_style(endpoint_override("s3").is_some());
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
