//! The emulator's endpoint, guarded, and SDK clients for it.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region};

/// Set by `cargo xtask test`.
pub const ENDPOINT_VAR: &str = "SSMBAK_TEST_ENDPOINT";
pub const REGION: &str = "us-east-1";

/// The emulator endpoint, or `None` outside `cargo xtask test` (for the demo and bench
/// binaries, which say so).
///
/// Panics on an endpoint that is not loopback: a test must never reach real AWS.
pub fn endpoint() -> Option<String> {
    let endpoint = std::env::var(ENDPOINT_VAR).ok()?;
    assert!(
        is_loopback(&endpoint),
        "refusing to run tests against {endpoint}: only loopback endpoints are allowed"
    );
    Some(endpoint)
}

/// Why the end-to-end tests are `#[ignore]`d: plain `cargo test` lists them as ignored with
/// this reason; `cargo xtask test` starts the emulator and runs them (`--include-ignored`).
pub const NEEDS_EMULATOR: &str = "needs the moto emulator: `cargo xtask test` runs it";

/// The emulator endpoint, for a test that needs it; run without one (an ignored test run
/// by hand), it fails with one line saying how to run it.
pub fn required_endpoint() -> String {
    endpoint().unwrap_or_else(|| {
        panic!("{ENDPOINT_VAR} is not set: this test needs the emulator; run `cargo xtask test`")
    })
}

/// True for `http://127.x.y.z[:port]`, `http://[::1][:port]` and `http://localhost[:port]`.
pub fn is_loopback(endpoint: &str) -> bool {
    let Some(rest) = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost",
    }
}

/// Clients for the emulator.
pub struct Clients {
    pub endpoint: String,
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub cfn: aws_sdk_cloudformation::Client,
}

impl Clients {
    pub async fn new(endpoint: &str) -> Self {
        Self::new_in(endpoint, REGION).await
    }

    pub async fn new_in(endpoint: &str, region: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Clients {
            endpoint: endpoint.to_owned(),
            s3: aws_sdk_s3::Client::from_conf(s3),
            ssm: aws_sdk_ssm::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            cfn: aws_sdk_cloudformation::Client::new(&config),
        }
    }

    /// `PutParameter` (overwriting); returns the new SSM version.
    pub async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        ty: aws_sdk_ssm::types::ParameterType,
        description: Option<&str>,
    ) -> i64 {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ty)
            .set_description(description.map(str::to_owned))
            .overwrite(true)
            .send()
            .await
            .expect("put parameter")
            .version
    }

    /// Adds (or overwrites) resource tags on a parameter.
    pub async fn tag_parameter(&self, name: &str, tags: &[(&str, &str)]) {
        let tags = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_ssm::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .expect("tag")
            })
            .collect();
        self.ssm
            .add_tags_to_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tags(Some(tags))
            .send()
            .await
            .expect("add tags");
    }

    /// Removes resource tags from a parameter.
    pub async fn untag_parameter(&self, name: &str, keys: &[&str]) {
        self.ssm
            .remove_tags_from_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tag_keys(Some(keys.iter().map(|k| (*k).to_owned()).collect()))
            .send()
            .await
            .expect("remove tags");
    }

    /// The parameter's resource tags now.
    pub async fn parameter_tags(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        self.ssm
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .send()
            .await
            .expect("list tags")
            .tag_list()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }

    /// Attaches labels to a version of a parameter (moving them from another version).
    pub async fn label_parameter(&self, name: &str, version: i64, labels: &[&str]) {
        self.ssm
            .label_parameter_version()
            .name(name)
            .parameter_version(version)
            .set_labels(Some(labels.iter().map(|l| (*l).to_owned()).collect()))
            .send()
            .await
            .expect("label parameter version");
    }

    /// Each version of a parameter with its labels, oldest first.
    pub async fn parameter_labels(&self, name: &str) -> Vec<(i64, Vec<String>)> {
        let pages: Vec<_> = self
            .ssm
            .get_parameter_history()
            .name(name)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .expect("parameter history");
        pages
            .iter()
            .flat_map(|p| p.parameters())
            .map(|h| (h.version(), h.labels().to_vec()))
            .collect()
    }

    /// The parameter's SSM version now.
    pub async fn parameter_version(&self, name: &str) -> i64 {
        self.ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .expect("get parameter")
            .parameter
            .map(|p| p.version)
            .unwrap_or_default()
    }

    /// The parameter's value in SSM now (decrypted), `None` when it does not exist.
    pub async fn parameter_value(&self, name: &str) -> Option<String> {
        self.ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .ok()
            .and_then(|o| o.parameter)
            .and_then(|p| p.value)
    }
}

/// A name no other test of this run uses: tests share one emulator.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}{}x{n}x{nanos:08x}", std::process::id())
}

/// Creates `name` with versioning on.
pub async fn versioned_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create bucket");
    enable_versioning(s3, name).await;
}

/// Turns versioning on for `name`.
pub async fn enable_versioning(s3: &aws_sdk_s3::Client, name: &str) {
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
}

/// Stores `object` as the Lambda does: body, tags and `ssmbak-*` metadata in one `PutObject`.
pub async fn put_encoded(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    object: ssmbak_core::format::EncodedObject,
) -> Option<String> {
    let mut request = s3
        .put_object()
        .bucket(bucket)
        .key(&object.key)
        .tagging(&object.tagging)
        .body(object.body.into());
    for (k, v) in &object.metadata {
        request = request.metadata(k, v);
    }
    request.send().await.expect("put object").version_id
}

/// Epoch seconds as RFC 3339 (`2026-11-27T13:00:00Z`), as AWS events carry time.
pub fn rfc3339(secs: i64) -> String {
    format!("{}Z", checktime(secs))
}

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SS` (UTC), the CHECKTIME both ssmbak versions accept.
pub fn checktime(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// What `DescribeParameters` says of the parameter `name` (KeyId, tier, description...).
pub async fn describe_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> aws_sdk_ssm::types::ParameterMetadata {
    let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .values(name)
        .build()
        .expect("filter");
    let described = ssm
        .describe_parameters()
        .parameter_filters(filter)
        .send()
        .await
        .expect("describe parameters");
    described
        .parameters()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not described"))
}

/// Sleeps until just after the start of the next wall-clock second, so that the writes that
/// follow share one S3 LastModified second (S3 listings give whole seconds).
pub async fn start_of_a_second() {
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or_default();
    let wait = 1000 - u64::from(into_second) + 20;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_endpoints_pass_the_guard() {
        for ok in [
            "http://127.0.0.1:5000",
            "http://127.1.2.3",
            "http://[::1]:80/",
            "http://localhost:9",
        ] {
            assert!(is_loopback(ok), "{ok}");
        }
        for bad in [
            "https://s3.amazonaws.com",
            "http://10.0.0.1:5000",
            "http://127.0.0.1.evil.com",
            "http://user@127.0.0.1@evil.com",
            "127.0.0.1:5000",
            "http://[2001:db8::1]:80",
            "",
        ] {
            assert!(!is_loopback(bad), "{bad}");
        }
    }
}
