//! One test's private backup pipeline on the emulator:
//! EventBridge bus + rule → SQS queue → (this harness as the event source mapping) → the real
//! `bootstrap` → a versioned bucket.
//!
//! Every test gets its own bus, queue, bucket and parameter prefix, so tests can run in
//! parallel against one emulator.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_ssm::types::ParameterType;
use serde_json::json;
use ssmbak_core::format::StoredFields;
use ssmbak_core::pit::{self, VersionEntry};

use crate::emulator::{self, unique, Clients, REGION};
use crate::fault_proxy::FaultProxy;
use crate::lambda::{self, Bootstrap};
use crate::runtime_api::{Invocation, RuntimeApi};

/// Seconds a received message stays invisible: short, so failed records come back quickly.
pub const VISIBILITY_TIMEOUT: i32 = 2;

pub struct Pipeline {
    pub aws: Clients,
    pub bucket: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub bus: String,
    /// A parameter path only this test uses, e.g. `/t123x4x0a1b2c3d4`.
    pub prefix: String,
    pub api: RuntimeApi,
    pub lambda: Bootstrap,
    dir: PathBuf,
    binary: PathBuf,
    lambda_endpoint: String,
    /// Between the Lambda and the emulator, when started with one.
    pub proxy: Option<FaultProxy>,
    pub dead_letter_url: Option<String>,
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub message_ids: Vec<String>,
    /// The ids the Lambda reported in `batchItemFailures`.
    pub failed: Vec<String>,
    pub invocation: Invocation,
}

/// One stored object version or delete marker, with everything S3 keeps about it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub version_id: String,
    pub is_delete_marker: bool,
    /// The listing's `IsLatest`.
    pub is_latest: bool,
    pub last_modified_ms: i64,
    pub tags: BTreeMap<String, String>,
    pub metadata: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Stored {
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn tag(&self, k: &str) -> Option<&str> {
        self.tags.get(k).map(String::as_str)
    }
    pub fn fields(&self) -> StoredFields {
        StoredFields::read(
            self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .expect("stored fields parse")
    }
}

/// The versions of one key, as S3 lists them.
#[derive(Debug, Clone)]
pub struct History {
    /// Value versions and tombstones, newest first.
    pub versions: Vec<Stored>,
    /// Delete markers, newest first.
    pub markers: Vec<Stored>,
}

impl History {
    /// Value versions (tombstones left out), oldest first.
    pub fn values(&self) -> Vec<&Stored> {
        self.versions
            .iter()
            .rev()
            .filter(|v| !v.fields().is_tombstone())
            .collect()
    }
    pub fn tombstones(&self) -> Vec<&Stored> {
        self.versions
            .iter()
            .rev()
            .filter(|v| v.fields().is_tombstone())
            .collect()
    }

    /// The body at `at` (epoch seconds) as the core's point-in-time reader sees it:
    /// `Some(value)`, or `None` when deleted or not yet there.
    pub fn value_at(&self, at: i64) -> Option<String> {
        let all: Vec<&Stored> = self.versions.iter().chain(&self.markers).collect();
        let entries: Vec<VersionEntry> = all
            .iter()
            .map(|s| {
                let f = s.fields();
                VersionEntry {
                    version_id: s.version_id.clone(),
                    last_modified_ms: s.last_modified_ms,
                    is_delete_marker: s.is_delete_marker,
                    is_latest: s.is_latest,
                    event_time: f.event_time,
                    deleted_at: f.deleted_at,
                    ssm_version: f.attributes.version,
                    ssm_modified_ms: f.attributes.last_modified_ms,
                    unread: false,
                }
            })
            .collect();
        match pit::state_at(&entries, at) {
            pit::StateAt::Present { index, .. } => Some(all[index].body_str()),
            _ => None,
        }
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Pipeline {
    /// Sets up a pipeline on the emulator (see [`emulator::required_endpoint`]).
    pub async fn start() -> Self {
        Self::start_with_env(&[]).await
    }

    /// With extra Lambda environment; `{prefix}` in a value becomes this test's prefix.
    pub async fn start_with_env(extra_env: &[(&str, &str)]) -> Self {
        Self::start_custom(extra_env, false, None, None).await
    }

    /// With the Lambda talking to the emulator through a [`FaultProxy`] (`self.proxy`).
    pub async fn start_with_proxy() -> Self {
        Self::start_custom(&[], true, None, None).await
    }

    /// With a dead-letter queue after `max_receive` receives (`self.dead_letter_url`).
    pub async fn start_with_dead_letters(max_receive: u32) -> Self {
        Self::start_custom(&[], false, Some(max_receive), None).await
    }

    /// With S3 Object Lock on the bucket: every version kept `days` in `mode` (the template's
    /// ObjectLockMode / ObjectLockRetentionDays).
    pub async fn start_with_object_lock(mode: &str, days: i32) -> Self {
        Self::start_custom(&[], false, None, Some((mode, days))).await
    }

    async fn start_custom(
        extra_env: &[(&str, &str)],
        proxied: bool,
        redrive: Option<u32>,
        object_lock: Option<(&str, i32)>,
    ) -> Self {
        let endpoint = emulator::required_endpoint();
        let zip = std::env::var(lambda::ZIP_VAR)
            .unwrap_or_else(|_| panic!("{} is not set", lambda::ZIP_VAR));
        let aws = Clients::new(&endpoint).await;
        let id = unique("t");
        let bucket = format!("ssmbak-{}", id.to_ascii_lowercase());
        emulator::versioned_bucket(&aws.s3, &bucket).await;
        if let Some((mode, days)) = object_lock {
            use aws_sdk_s3::types::{
                DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
                ObjectLockRetentionMode, ObjectLockRule,
            };
            aws.s3
                .put_object_lock_configuration()
                .bucket(&bucket)
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .rule(
                            ObjectLockRule::builder()
                                .default_retention(
                                    DefaultRetention::builder()
                                        .mode(ObjectLockRetentionMode::from(mode))
                                        .days(days)
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("object lock");
        }
        let mut dead_letter_url = None;
        let mut create = aws.sqs.create_queue().queue_name(&id).attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT.to_string(),
        );
        if let Some(max_receive) = redrive {
            let url = aws
                .sqs
                .create_queue()
                .queue_name(format!("{id}-dlq"))
                .send()
                .await
                .expect("dlq")
                .queue_url
                .expect("url");
            let arn = aws
                .sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .expect("dlq attributes")
                .attributes
                .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
                .expect("dlq arn");
            let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive});
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            dead_letter_url = Some(url);
        }
        let queue_url = create
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let queue_arn = aws
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("queue arn");
        let bus = id.clone();
        aws.events
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("create bus");
        aws.events
            .put_rule()
            .name(&id)
            .event_bus_name(&bus)
            .event_pattern(
                json!({"source": ["aws.ssm"], "detail-type": ["Parameter Store Change", "Parameter Store Policy Action"]})
                    .to_string(),
            )
            .send()
            .await
            .expect("put rule");
        // The template's DeleterRule (RecordDeleters=true): CloudTrail's delete records.
        let deleters = format!("{id}-deleters");
        aws.events
            .put_rule()
            .name(&deleters)
            .event_bus_name(&bus)
            .event_pattern(
                json!({
                    "source": ["aws.ssm"],
                    "detail-type": ["AWS API Call via CloudTrail"],
                    "detail": {
                        "eventSource": ["ssm.amazonaws.com"],
                        "eventName": ["DeleteParameter", "DeleteParameters"],
                    },
                })
                .to_string(),
            )
            .send()
            .await
            .expect("put deleter rule");
        for rule in [&id, &deleters] {
            aws.events
                .put_targets()
                .rule(rule)
                .event_bus_name(&bus)
                .targets(
                    Target::builder()
                        .id("q")
                        .arn(&queue_arn)
                        .build()
                        .expect("target"),
                )
                .send()
                .await
                .expect("put targets");
        }

        let dir = std::env::temp_dir().join(format!("ssmbak-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let binary = lambda::extract_bootstrap(zip.as_ref(), &dir);
        let api = RuntimeApi::start();
        let prefix = format!("/{id}");
        let extra: Vec<(&str, String)> = extra_env
            .iter()
            .map(|(k, v)| (*k, v.replace("{prefix}", &prefix)))
            .collect();
        let mut env = vec![("SSMBAK_BUCKET", bucket.as_str()), ("LOGLEVEL", "debug")];
        env.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let proxy = proxied.then(|| FaultProxy::start(&endpoint));
        let lambda_endpoint = proxy
            .as_ref()
            .map_or(endpoint.clone(), |p| p.endpoint.clone());
        let lambda = Bootstrap::spawn(&binary, &api, &lambda_endpoint, &env);
        Pipeline {
            aws,
            bucket,
            queue_url,
            queue_arn,
            bus,
            prefix,
            api,
            lambda,
            dir,
            binary,
            lambda_endpoint,
            proxy,
            dead_letter_url,
        }
    }

    /// A parameter name under this test's prefix.
    pub fn name(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.prefix)
    }

    /// `PutParameter` (overwriting); returns the new SSM version.
    pub async fn put(
        &self,
        name: &str,
        value: &str,
        ty: ParameterType,
        description: Option<&str>,
    ) -> i64 {
        self.aws.put_parameter(name, value, ty, description).await
    }

    /// `PutParameter`, then the change event SSM would publish for it (`operation`: Create,
    /// Update); returns the new SSM version.
    pub async fn change(
        &self,
        name: &str,
        value: &str,
        ty: ParameterType,
        description: Option<&str>,
        operation: &str,
    ) -> i64 {
        let type_name = ty.as_str().to_owned();
        let version = self.put(name, value, ty, description).await;
        self.publish(name, operation, &type_name, now_secs()).await;
        version
    }

    pub async fn delete(&self, name: &str) {
        self.aws
            .ssm
            .delete_parameter()
            .name(name)
            .send()
            .await
            .expect("delete parameter");
    }

    /// Publishes a "Parameter Store Change" event, as SSM would (moto emits none itself).
    pub async fn publish(&self, event_name: &str, operation: &str, ty: &str, time: i64) {
        let detail = json!({"name": event_name, "type": ty, "operation": operation});
        self.publish_event(
            "aws.ssm",
            "Parameter Store Change",
            &detail.to_string(),
            time,
        )
        .await;
    }

    /// Publishes CloudTrail's record of deleting `names` (and failing to delete `invalid`) by
    /// `arn` at `time`, as EventBridge would with a trail (moto emits none itself).
    pub async fn publish_cloudtrail_delete(
        &self,
        names: &[&str],
        invalid: &[&str],
        arn: &str,
        time: i64,
    ) {
        let detail = crate::events::cloudtrail_delete_detail(names, invalid, arn, time);
        self.publish_event(
            "aws.ssm",
            "AWS API Call via CloudTrail",
            &detail.to_string(),
            time,
        )
        .await;
    }

    pub async fn publish_event(&self, source: &str, detail_type: &str, detail: &str, time: i64) {
        let entry = PutEventsRequestEntry::builder()
            .source(source)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(&self.bus)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(time))
            .resources(format!(
                "arn:aws:ssm:{REGION}:123456789012:parameter{}",
                self.prefix
            ))
            .build();
        let out = self
            .aws
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .expect("put events");
        assert_eq!(out.failed_entry_count, 0, "event not accepted: {out:?}");
    }

    /// Sends a raw SQS message, bypassing EventBridge (malformed records).
    pub async fn send_raw(&self, body: &str) {
        self.aws
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send message");
    }

    /// The queue → Lambda feed of this pipeline.
    pub fn source(&self) -> EventSource<'_> {
        EventSource {
            sqs: &self.aws.sqs,
            queue_url: &self.queue_url,
            queue_arn: &self.queue_arn,
            api: &self.api,
            timeout: Duration::from_secs(60),
        }
    }

    /// See [`EventSource::pump_once`].
    pub async fn pump_once(&self) -> Option<Batch> {
        self.source().pump_once().await
    }

    /// [`EventSource::pump_once`], giving up on the invocation after `timeout` (a dead Lambda).
    pub async fn pump_once_within(&self, timeout: Duration) -> Option<Batch> {
        EventSource {
            timeout,
            ..self.source()
        }
        .pump_once()
        .await
    }

    /// The Lambda's process id.
    pub fn lambda_pid(&self) -> u32 {
        self.lambda.pid()
    }

    /// See [`EventSource::drain`].
    pub async fn drain(&self) -> Vec<Batch> {
        self.source().drain().await
    }

    /// Everything the bucket holds for `key`.
    pub async fn history(&self, key: &str) -> History {
        let listing = self
            .aws
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .expect("list versions");
        let mut versions = Vec::new();
        for v in listing.versions().iter().filter(|v| v.key() == Some(key)) {
            let id = v.version_id().unwrap_or_default().to_owned();
            let tags = self
                .aws
                .s3
                .get_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .version_id(&id)
                .send()
                .await
                .expect("tags")
                .tag_set
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect();
            let object = self
                .aws
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .version_id(&id)
                .send()
                .await
                .expect("get version");
            let metadata = object.metadata.clone().unwrap_or_default();
            let body = object
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec();
            versions.push(Stored {
                version_id: id,
                is_delete_marker: false,
                is_latest: v.is_latest() == Some(true),
                last_modified_ms: v
                    .last_modified()
                    .and_then(|d| d.to_millis().ok())
                    .unwrap_or_default(),
                tags,
                metadata,
                body,
            });
        }
        let markers = listing
            .delete_markers()
            .iter()
            .filter(|m| m.key() == Some(key))
            .map(|m| Stored {
                version_id: m.version_id().unwrap_or_default().to_owned(),
                is_delete_marker: true,
                is_latest: m.is_latest() == Some(true),
                last_modified_ms: m
                    .last_modified()
                    .and_then(|d| d.to_millis().ok())
                    .unwrap_or_default(),
                tags: BTreeMap::new(),
                metadata: HashMap::new(),
                body: Vec::new(),
            })
            .collect();
        History { versions, markers }
    }

    /// Kills the Lambda process (as a crash would) and starts a fresh one.
    pub fn restart_lambda(&mut self) {
        self.lambda.kill();
        let env = [
            ("SSMBAK_BUCKET", self.bucket.as_str()),
            ("LOGLEVEL", "debug"),
        ];
        self.lambda = Bootstrap::spawn(&self.binary, &self.api, &self.lambda_endpoint, &env);
    }

    /// Invokes the Lambda with `payload` directly (as a schedule would), returning its answer.
    pub fn invoke(&self, payload: serde_json::Value) -> Invocation {
        self.invoke_within(payload, Duration::from_secs(60))
    }

    /// [`Pipeline::invoke`] for a function whose timeout is `timeout`.
    pub fn invoke_within(&self, payload: serde_json::Value, timeout: Duration) -> Invocation {
        tokio::task::block_in_place(|| self.api.invoke(payload.to_string(), timeout))
    }

    /// Everything `bootstrap` logged so far, one string.
    pub fn logs(&self) -> String {
        self.lambda.logs().join("\n")
    }
}

/// What Lambda's SQS event source mapping does, done by the harness (moto runs no Lambda code):
/// receive a batch, invoke the function through the Runtime API, delete what succeeded.
pub struct EventSource<'a> {
    pub sqs: &'a aws_sdk_sqs::Client,
    pub queue_url: &'a str,
    pub queue_arn: &'a str,
    pub api: &'a RuntimeApi,
    /// How long an invocation may take before it counts as lost.
    pub timeout: Duration,
}

impl EventSource<'_> {
    /// Acts as the event source mapping once: receives up to 10 messages, invokes the Lambda
    /// with them, deletes those not reported as failed. `None` when the queue had nothing.
    pub async fn pump_once(&self) -> Option<Batch> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return None;
        }
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                })
            })
            .collect();
        let payload = json!({ "Records": records }).to_string();
        let api = self.api;
        let timeout = self.timeout;
        let invocation = tokio::task::block_in_place(|| api.invoke(payload, timeout));
        let failed: Vec<String> = match &invocation {
            Invocation::Response(body) => {
                let v: serde_json::Value =
                    serde_json::from_str(body).expect("the response is JSON");
                v["batchItemFailures"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            // A failed or lost invocation returns the whole batch to the queue.
            _ => messages
                .iter()
                .filter_map(|m| m.message_id.clone())
                .collect(),
        };
        for m in &messages {
            if m.message_id.as_ref().is_some_and(|id| failed.contains(id)) {
                continue;
            }
            self.sqs
                .delete_message()
                .queue_url(self.queue_url)
                .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                .send()
                .await
                .expect("delete message");
        }
        Some(Batch {
            message_ids: messages
                .iter()
                .filter_map(|m| m.message_id.clone())
                .collect(),
            failed,
            invocation,
        })
    }

    /// Pumps until the queue is empty; returns the batches.
    pub async fn drain(&self) -> Vec<Batch> {
        let mut batches = Vec::new();
        while let Some(batch) = self.pump_once().await {
            batches.push(batch);
        }
        batches
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
