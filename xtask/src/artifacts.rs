//! The artifact bucket that holds the Lambda zip CloudFormation deploys: ours alone, hardened,
//! checked on every deploy.

use std::time::Duration;

use anyhow::bail;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use sha2::{Digest, Sha256};

use crate::aws::{describe, Aws};

/// The default artifact bucket of an account and region.
pub(crate) fn default_bucket(account: &str, region: &str) -> String {
    format!("ssmbak-artifacts-{account}-{region}")
}

/// How long one upload attempt of `bytes` may take: sized to the object, so that a slow
/// uplink (down to 256 kbit/s) still gets the zip through, not the 10 s other requests get.
fn upload_timeout(bytes: usize) -> Duration {
    const SLOWEST_BYTES_PER_SEC: u64 = 32 * 1024;
    Duration::from_secs(30 + bytes as u64 / SLOWEST_BYTES_PER_SEC)
}

/// The artifact bucket, as ours alone. Its name is predictable, so anyone could create it
/// first, in any account, and serve the code CloudFormation deploys: every call carries S3's
/// bucket owner condition (`ExpectedBucketOwner`; S3 answers 403 when the bucket belongs to
/// another account: S3 User Guide, "Verifying bucket ownership with bucket owner condition"),
/// the hardening is re-applied on every deploy, and the uploaded zip's SHA-256 is checked by S3.
pub(crate) struct Artifacts<'a> {
    pub(crate) aws: &'a Aws,
    pub(crate) bucket: &'a str,
    /// The deploying account: the only acceptable owner.
    pub(crate) owner: &'a str,
}

impl Artifacts<'_> {
    pub(crate) async fn ensure_bucket(&self) -> anyhow::Result<()> {
        let (aws, bucket, owner) = (self.aws, self.bucket, self.owner);
        match aws
            .s3
            .head_bucket()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .send()
            .await
        {
            Ok(_) => self.harden(false).await,
            Err(e) if status(&e) == 404 => {
                self.create().await?;
                self.harden(true).await
            }
            Err(e) if status(&e) == 403 => bail!(
                "artifact bucket {bucket} is not owned by account {owner} (or is not readable by it): pass --artifact-bucket with a bucket of this account"
            ),
            Err(e) => Err(describe(&format!("checking artifact bucket {bucket}"), &e)),
        }
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
        match create.send().await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == 403 => bail!(
                "artifact bucket {bucket} does not exist and this identity may not create it: run `cargo xtask ci-role` (or one deploy with the rights to) first"
            ),
            Err(e) => Err(describe(&format!("creating bucket {bucket}"), &e)),
        }
    }

    /// The same hardening as the backup bucket, checked on every deploy: each setting is read
    /// and written only when it is missing, so a failure half-way through one deploy is
    /// repaired by the next, and a CI deployer needs only the rights to read the settings
    /// (`policies/iam/deployer.json`). Writing them is for whoever sets the bucket up
    /// (`cargo xtask ci-role`, or a deploy with those rights); a deploy without them says so.
    /// A bucket just created (`fresh`) has none of them: they are written without reading.
    async fn harden(&self, fresh: bool) -> anyhow::Result<()> {
        if fresh || !self.public_access_blocked().await? {
            self.repair("public access block", self.block_public_access())
                .await?;
        }
        if fresh || !self.versioned().await? {
            self.repair("versioning", self.enable_versioning()).await?;
        }
        if fresh || !self.encrypted().await? {
            self.repair("default encryption", self.enable_encryption())
                .await?;
        }
        // A TLS-only policy would refuse every request made over an emulator's plain HTTP.
        if !plain_http() && (fresh || !self.tls_only().await?) {
            self.repair("TLS-only bucket policy", self.require_tls())
                .await?;
        }
        Ok(())
    }

    /// Runs one hardening write, with one line of advice when this identity may not.
    async fn repair(
        &self,
        what: &str,
        write: impl std::future::Future<Output = Result<(), RepairError>>,
    ) -> anyhow::Result<()> {
        eprintln!("artifact bucket {}: setting its {what}", self.bucket);
        match write.await {
            Ok(()) => Ok(()),
            Err(RepairError { status: 403, .. }) => bail!(
                "artifact bucket {} lacks its {what} and this identity may not set it: run `cargo xtask ci-role` (or one deploy with the rights to) to repair it",
                self.bucket
            ),
            Err(e) => Err(e.error),
        }
    }

    /// Answers a read of one setting: `Ok(None)` when S3 says it is not set (404).
    fn setting<T, E>(doing: &str, answer: Result<T, SdkError<E>>) -> anyhow::Result<Option<T>>
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match answer {
            Ok(v) => Ok(Some(v)),
            Err(e) if status(&e) == 404 => Ok(None),
            Err(e) => Err(describe(doing, &e)),
        }
    }

    async fn public_access_blocked(&self) -> anyhow::Result<bool> {
        let answer = self
            .aws
            .s3
            .get_public_access_block()
            .bucket(self.bucket)
            .expected_bucket_owner(self.owner)
            .send()
            .await;
        let blocked = Self::setting("reading the public access block", answer)?
            .and_then(|o| o.public_access_block_configuration)
            .is_some_and(|c| {
                [
                    c.block_public_acls,
                    c.block_public_policy,
                    c.ignore_public_acls,
                    c.restrict_public_buckets,
                ]
                .iter()
                .all(|b| *b == Some(true))
            });
        Ok(blocked)
    }

    async fn versioned(&self) -> anyhow::Result<bool> {
        let answer =
            ssmbak_core::client::versioning_status(&self.aws.s3, self.bucket, Some(self.owner))
                .await;
        Ok(Self::setting("reading versioning", answer)?
            .flatten()
            .is_some_and(|s| s == BucketVersioningStatus::Enabled))
    }

    async fn encrypted(&self) -> anyhow::Result<bool> {
        let answer = self
            .aws
            .s3
            .get_bucket_encryption()
            .bucket(self.bucket)
            .expected_bucket_owner(self.owner)
            .send()
            .await;
        Ok(Self::setting("reading default encryption", answer)?
            .and_then(|o| o.server_side_encryption_configuration)
            .is_some_and(|c| !c.rules.is_empty()))
    }

    async fn tls_only(&self) -> anyhow::Result<bool> {
        let answer = self
            .aws
            .s3
            .get_bucket_policy()
            .bucket(self.bucket)
            .expected_bucket_owner(self.owner)
            .send()
            .await;
        let policy = Self::setting("reading the bucket policy", answer)?
            .and_then(|o| o.policy)
            .unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
        Ok(doc["Statement"].as_array().into_iter().flatten().any(|s| {
            s["Effect"] == "Deny"
                && s["Principal"] == "*"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        }))
    }

    async fn block_public_access(&self) -> Result<(), RepairError> {
        self.aws
            .s3
            .put_public_access_block()
            .bucket(self.bucket)
            .expected_bucket_owner(self.owner)
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
            .map_err(|e| RepairError::new("blocking public access", &e))?;
        Ok(())
    }

    async fn enable_versioning(&self) -> Result<(), RepairError> {
        self.aws
            .s3
            .put_bucket_versioning()
            .bucket(self.bucket)
            .expected_bucket_owner(self.owner)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| RepairError::new("enabling versioning", &e))?;
        Ok(())
    }

    async fn enable_encryption(&self) -> Result<(), RepairError> {
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .map_err(|e| RepairError::from(anyhow::Error::from(e)))?,
            )
            .build();
        let configuration = ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| RepairError::from(anyhow::Error::from(e)))?;
        self.aws
            .s3
            .put_bucket_encryption()
            .bucket(self.bucket)
            .expected_bucket_owner(self.owner)
            .server_side_encryption_configuration(configuration)
            .send()
            .await
            .map_err(|e| RepairError::new("enabling encryption", &e))?;
        Ok(())
    }

    async fn require_tls(&self) -> Result<(), RepairError> {
        let bucket = self.bucket;
        let tls_only = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }]
        });
        self.aws
            .s3
            .put_bucket_policy()
            .bucket(bucket)
            .expected_bucket_owner(self.owner)
            .policy(tls_only.to_string())
            .send()
            .await
            .map_err(|e| RepairError::new("setting the TLS-only policy", &e))?;
        Ok(())
    }

    /// Uploads `zip` under `key` unless an object with its SHA-256 is already there; S3
    /// checks the upload against the SHA-256 sent with it (`x-amz-checksum-sha256`).
    pub(crate) async fn upload(&self, key: &str, zip: &[u8]) -> anyhow::Result<()> {
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

/// A hardening write that failed, with S3's HTTP status (403: not allowed).
struct RepairError {
    status: u16,
    error: anyhow::Error,
}

impl RepairError {
    fn new<E>(doing: &str, e: &SdkError<E>) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        RepairError {
            status: status(e),
            error: describe(doing, e),
        }
    }
}

impl From<anyhow::Error> for RepairError {
    fn from(error: anyhow::Error) -> Self {
        RepairError { status: 0, error }
    }
}

type SdkError<E> = aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>;

/// The HTTP status S3 answered with (0 when there was no answer).
fn status<E>(e: &SdkError<E>) -> u16 {
    e.raw_response().map_or(0, |r| r.status().as_u16())
}

/// Whether S3 is reached over plain HTTP (an emulator), where TLS cannot be required.
pub(crate) fn plain_http() -> bool {
    ssmbak_core::client::endpoint_override("s3").is_some_and(|e| e.starts_with("http://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call to the artifact bucket carries the owner condition, and a bucket another
    /// account owns is refused with one line. moto ignores `x-amz-expected-bucket-owner`; S3
    /// answers 403 Access Denied when the bucket's owner differs (S3 User Guide, "Verifying
    /// bucket ownership with bucket owner condition"), which the proxy does for the foreign
    /// bucket.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn the_artifact_bucket_must_be_ours() {
        use ssmbak_tests::bucket_owner::{OwnerCheck, OTHER_ACCOUNT};
        use ssmbak_tests::fault_proxy::FaultProxy;

        let endpoint = ssmbak_tests::emulator::required_endpoint();
        let proxy = FaultProxy::start(&endpoint);
        let aws = crate::aws::block_on(Aws::with_s3_at(&proxy.endpoint))
            .expect("runtime")
            .expect("clients");
        let owner = crate::aws::block_on(aws.account())
            .expect("runtime")
            .expect("account");
        let ours = ssmbak_tests::emulator::unique("artifacts").to_ascii_lowercase();
        let foreign = ssmbak_tests::emulator::unique("foreign").to_ascii_lowercase();
        let check = OwnerCheck::install(&proxy, &[(&ours, &owner), (&foreign, OTHER_ACCOUNT)]);

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
        assert_eq!(check.unconditioned(), Vec::<String>::new());
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

    /// A CI deployer (policies/iam/deployer.json) may read the bucket's settings but not write
    /// them, nor create the bucket: S3 answers 403 (the proxy plays it, moto enforces no IAM).
    /// A bucket already hardened needs no write; one that is not gets one line naming who must.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn a_deployer_that_may_not_repair_says_who_must() {
        use ssmbak_tests::fault_proxy::{Fault, FaultProxy};

        let endpoint = ssmbak_tests::emulator::required_endpoint();
        let proxy = FaultProxy::start(&endpoint);
        // Every bucket write (PUT/DELETE on the bucket itself, not on an object) is refused.
        proxy.inject(usize::MAX, Fault::Denied, |s| {
            s.method == "PUT" && s.path_only().trim_matches('/').split('/').count() == 1
        });
        let aws = crate::aws::block_on(Aws::with_s3_at(&proxy.endpoint))
            .expect("runtime")
            .expect("clients");
        let owner = crate::aws::block_on(aws.account())
            .expect("runtime")
            .expect("account");
        let direct = crate::aws::block_on(Aws::connect(None, "artifact-setup"))
            .expect("runtime")
            .expect("clients");

        let missing = ssmbak_tests::emulator::unique("missing").to_ascii_lowercase();
        let refused = crate::aws::block_on(
            Artifacts {
                aws: &aws,
                bucket: &missing,
                owner: &owner,
            }
            .ensure_bucket(),
        )
        .expect("runtime");
        assert!(
            refused.as_ref().is_err_and(|e| e
                .to_string()
                .contains("may not create it: run `cargo xtask ci-role`")),
            "{refused:?}"
        );

        // Set up by an administrator: the CI's deploy reads and goes on.
        let ready = ssmbak_tests::emulator::unique("ready").to_ascii_lowercase();
        crate::aws::block_on(
            Artifacts {
                aws: &direct,
                bucket: &ready,
                owner: &owner,
            }
            .ensure_bucket(),
        )
        .expect("runtime")
        .expect("an administrator sets it up");
        crate::aws::block_on(
            Artifacts {
                aws: &aws,
                bucket: &ready,
                owner: &owner,
            }
            .ensure_bucket(),
        )
        .expect("runtime")
        .expect("a hardened bucket needs no write");

        // Versioning suspended since: the CI's deploy stops and says who must repair it.
        crate::aws::block_on(
            direct
                .s3
                .put_bucket_versioning()
                .bucket(&ready)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Suspended)
                        .build(),
                )
                .send(),
        )
        .expect("runtime")
        .expect("suspend");
        let refused = crate::aws::block_on(
            Artifacts {
                aws: &aws,
                bucket: &ready,
                owner: &owner,
            }
            .ensure_bucket(),
        )
        .expect("runtime");
        assert!(
            refused.as_ref().is_err_and(|e| {
                let text = e.to_string();
                text.contains("lacks its versioning") && text.contains("cargo xtask ci-role")
            }),
            "{refused:?}"
        );
    }

    #[test]
    fn an_upload_gets_time_for_its_size() {
        assert_eq!(upload_timeout(0), Duration::from_secs(30));
        // The ~4 MB zip over a 256 kbit/s uplink takes ~125 s.
        assert!(upload_timeout(4_000_000) >= Duration::from_secs(125));
    }
}
