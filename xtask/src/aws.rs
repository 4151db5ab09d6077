//! AWS clients for the deploy commands, through `ssmbak_core::client` (so `AWS_ENDPOINT_URL`
//! and the original's `AWS_ENDPOINT` work here too).

use anyhow::Context;
use ssmbak_core::client::{self, ClientOptions, WithoutRetryQuota};

/// The named profile every command's clients use (`cargo xtask --profile NAME ...`), set once
/// at start.
static PROFILE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Uses `profile` (credentials and region of ~/.aws/config) for every AWS call from now on.
pub(crate) fn use_profile(profile: Option<String>) {
    // Set once, by `main`, before any client exists.
    let _ = PROFILE.set(profile);
}

pub(crate) struct Aws {
    pub(crate) config: aws_config::SdkConfig,
    pub(crate) cfn: aws_sdk_cloudformation::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) ssm: aws_sdk_ssm::Client,
    pub(crate) sts: aws_sdk_sts::Client,
}

impl Aws {
    /// Clients for `component` (as the least-privilege check knows it: `deploy`, `seed-all`).
    pub(crate) async fn connect(
        region: Option<String>,
        component: &'static str,
    ) -> anyhow::Result<Self> {
        let config = client::load(&ClientOptions {
            region,
            profile: PROFILE.get().cloned().flatten(),
            adaptive_retry: true,
            ..ClientOptions::default()
        })
        .await?;
        Ok(Self::from_config(config, component))
    }

    fn from_config(config: aws_config::SdkConfig, component: &'static str) -> Self {
        let mut cfn = aws_sdk_cloudformation::config::Builder::from(&config);
        let mut sts = aws_sdk_sts::config::Builder::from(&config);
        let mut iam = aws_sdk_iam::config::Builder::from(&config);
        if let Some(r) = ssmbak_core::record::recorder(component) {
            cfn = cfn.interceptor(r.clone());
            iam = iam.interceptor(r.clone());
            sts = sts.interceptor(r);
        }
        Aws {
            cfn: aws_sdk_cloudformation::Client::from_conf(cfn.build()),
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            // seed-all reads and writes thousands, a bounded number at once.
            s3: client::s3(&config, component).without_retry_quota(),
            ssm: client::ssm(&config, component).without_retry_quota(),
            config,
        }
    }

    /// The same clients, with S3 talking to `endpoint` (a test's fault proxy). Set on the
    /// client itself: the SDK prefers the environment's `AWS_ENDPOINT_URL` to a shared
    /// configuration's endpoint.
    #[cfg(test)]
    pub(crate) async fn with_s3_at(endpoint: &str) -> anyhow::Result<Self> {
        let mut aws = Self::connect(None, "deploy").await?;
        let s3 = aws_sdk_s3::config::Builder::from(&aws.config)
            .endpoint_url(endpoint)
            .force_path_style(true)
            .build();
        aws.s3 = aws_sdk_s3::Client::from_conf(s3);
        Ok(aws)
    }

    pub(crate) fn region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    pub(crate) async fn account(&self) -> anyhow::Result<String> {
        self.sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| describe("who am I (sts:GetCallerIdentity)", &e))?
            .account
            .context("sts:GetCallerIdentity returned no account")
    }
}

/// One line for an AWS error, as the CLIs print it.
pub(crate) use ssmbak_cli::common::output::aws_error as describe;

/// A single-threaded runtime for one command.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(f))
}
