//! The stores on AWS, through the SDK clients.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::EncodingType;
use aws_sdk_ssm::types::{ParameterHistory, ParameterStringFilter};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use super::{
    Deleted, HistoryVersion, KeysPage, ListedParameter, ListedVersion, NewObject, ObjectHead,
    ObjectStore, ParameterStore, ParametersPage, StoreFuture, VersionsFrom, VersionsPage, Written,
};
use crate::aws_error::AwsError;
use crate::current;
use crate::format::{Attributes, ParameterSnapshot, Tags};

/// A bucket on S3.
#[derive(Debug, Clone)]
pub struct SdkStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl SdkStore {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        SdkStore {
            s3,
            bucket: bucket.into(),
        }
    }

    fn error<E>(&self, operation: &str, key: &str, e: &SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError::new("S3", operation, &self.url(key), e)
    }

    fn local(&self, operation: &str, key: &str, e: impl std::fmt::Display) -> AwsError {
        AwsError::local(&format!("S3 {operation} {}", self.url(key)), e)
    }

    /// `s3://bucket/key`: parameter keys start with `/`, the bucket's own objects do not.
    fn url(&self, key: &str) -> String {
        let slash = if key.starts_with('/') { "" } else { "/" };
        format!("s3://{}{slash}{key}", self.bucket)
    }
}

fn is_404<E>(e: &SdkError<E, HttpResponse>) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
}

fn millis(t: Option<&aws_smithy_types::DateTime>) -> i64 {
    t.and_then(|d| d.to_millis().ok()).unwrap_or_default()
}

impl ObjectStore for SdkStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn list_versions<'a>(
        &'a self,
        prefix: &'a str,
        from: Option<VersionsFrom>,
        max_keys: Option<i32>,
    ) -> StoreFuture<'a, VersionsPage> {
        Box::pin(async move {
            let (key_marker, version_marker) = match from {
                Some(f) => (Some(f.key), f.version_id),
                None => (None, None),
            };
            let page = self
                .s3
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .encoding_type(EncodingType::Url)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .set_max_keys(max_keys)
                .send()
                .await
                .map_err(|e| self.error("ListObjectVersions", prefix, &e))?;
            let encoded = page.encoding_type() == Some(&EncodingType::Url);
            let key = |k: Option<&str>| k.map(|k| listed_key(k, encoded));
            let versions = page
                .versions()
                .iter()
                .filter_map(|v| {
                    let listed = ListedVersion {
                        version_id: v.version_id()?.to_owned(),
                        last_modified_ms: millis(v.last_modified()),
                        is_delete_marker: false,
                        is_latest: v.is_latest() == Some(true),
                        size: v.size().unwrap_or_default(),
                        etag: v.e_tag().map(str::to_owned),
                        storage_class: v.storage_class().map(|c| c.as_str().to_owned()),
                    };
                    Some((key(v.key())?, listed))
                })
                .collect();
            let markers = page
                .delete_markers()
                .iter()
                .filter_map(|m| {
                    let listed = ListedVersion {
                        version_id: m.version_id()?.to_owned(),
                        last_modified_ms: millis(m.last_modified()),
                        is_delete_marker: true,
                        is_latest: m.is_latest() == Some(true),
                        ..ListedVersion::default()
                    };
                    Some((key(m.key())?, listed))
                })
                .collect();
            let next = key(page.next_key_marker())
                .filter(|_| page.is_truncated() == Some(true))
                .map(|key| VersionsFrom {
                    key,
                    version_id: page.next_version_id_marker().map(str::to_owned),
                });
            Ok(VersionsPage {
                versions,
                markers,
                next,
            })
        })
    }

    fn list_keys<'a>(
        &'a self,
        prefix: &'a str,
        continuation: Option<String>,
    ) -> StoreFuture<'a, KeysPage> {
        Box::pin(async move {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .encoding_type(EncodingType::Url)
                .set_continuation_token(continuation)
                .send()
                .await
                .map_err(|e| self.error("ListObjectsV2", prefix, &e))?;
            let encoded = page.encoding_type() == Some(&EncodingType::Url);
            Ok(KeysPage {
                keys: page
                    .contents()
                    .iter()
                    .filter_map(|o| Some(listed_key(o.key()?, encoded)))
                    .collect(),
                next: page
                    .next_continuation_token()
                    .filter(|_| page.is_truncated() == Some(true))
                    .map(str::to_owned),
            })
        })
    }

    fn head<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<ObjectHead>> {
        Box::pin(async move {
            match self
                .s3
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(version_id.map(str::to_owned))
                .send()
                .await
            {
                Ok(head) => Ok(Some(ObjectHead {
                    version_id: head.version_id().map(str::to_owned),
                    etag: head.e_tag().map(str::to_owned),
                    metadata: head.metadata.unwrap_or_default(),
                })),
                Err(e) if is_404(&e) => Ok(None),
                Err(e) => Err(self.error("HeadObject", key, &e)),
            }
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        version_id: Option<&'a str>,
    ) -> StoreFuture<'a, Option<(ObjectHead, Vec<u8>)>> {
        Box::pin(async move {
            let object = match self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(version_id.map(str::to_owned))
                .send()
                .await
            {
                Ok(object) => object,
                Err(e) if is_404(&e) => return Ok(None),
                Err(e) => return Err(self.error("GetObject", key, &e)),
            };
            let head = ObjectHead {
                version_id: object.version_id().map(str::to_owned),
                etag: object.e_tag().map(str::to_owned),
                metadata: object.metadata.clone().unwrap_or_default(),
            };
            let body = object
                .body
                .collect()
                .await
                .map_err(|e| self.local("GetObject", key, e))?
                .into_bytes()
                .to_vec();
            Ok(Some((head, body)))
        })
    }

    fn tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let answer = self
                .s3
                .get_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .version_id(version_id)
                .send()
                .await
                .map_err(|e| self.error("GetObjectTagging", key, &e))?;
            Ok(answer
                .tag_set
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect())
        })
    }

    fn put_tags<'a>(
        &'a self,
        key: &'a str,
        version_id: &'a str,
        tags: Vec<(String, String)>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tagging = aws_sdk_s3::types::Tagging::builder();
            for (k, v) in tags {
                let tag = aws_sdk_s3::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| self.local("PutObjectTagging", key, e))?;
                tagging = tagging.tag_set(tag);
            }
            let tagging = tagging
                .build()
                .map_err(|e| self.local("PutObjectTagging", key, e))?;
            // With a VersionId this is authorised as s3:PutObjectVersionTagging (S3 API
            // reference, PutObjectTagging: "To put tags of any other version, you use the
            // versionId query parameter. You also need permission for the
            // s3:PutObjectVersionTagging action").
            self.s3
                .put_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .version_id(version_id)
                .tagging(tagging)
                .send()
                .await
                .map_err(|e| self.error("PutObjectTagging", key, &e))?;
            Ok(())
        })
    }

    fn put(&self, object: NewObject) -> StoreFuture<'_, Written> {
        Box::pin(async move {
            let mut request = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(&object.key)
                .set_content_type(object.content_type)
                .body(object.body.into());
            if !object.tagging.is_empty() {
                request = request.tagging(object.tagging);
            }
            for (k, v) in &object.metadata {
                request = request.metadata(k, v);
            }
            let put = request
                .send()
                .await
                .map_err(|e| self.error("PutObject", &object.key, &e))?;
            Ok(Written {
                version_id: put.version_id().map(str::to_owned),
                etag: put.e_tag().map(str::to_owned),
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str, if_match: Option<&'a str>) -> StoreFuture<'a, Deleted> {
        Box::pin(async move {
            // A conditional delete with an ETag is authorised as s3:DeleteObject and
            // s3:GetObject (S3 User Guide, "How to perform conditional deletes").
            let answer = self
                .s3
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .set_if_match(if_match.map(str::to_owned))
                .send()
                .await;
            match answer {
                Ok(deleted) => Ok(Deleted::Marker(deleted.version_id().map(str::to_owned))),
                Err(e)
                    if if_match.is_some()
                        && e.raw_response()
                            .is_some_and(|r| matches!(r.status().as_u16(), 404 | 412)) =>
                {
                    Ok(Deleted::NotCurrent)
                }
                Err(e) => Err(self.error("DeleteObject", key, &e)),
            }
        })
    }
}

/// Parameter Store, through the SDK.
#[derive(Debug, Clone)]
pub struct SdkParameters {
    ssm: aws_sdk_ssm::Client,
}

impl SdkParameters {
    pub fn new(ssm: aws_sdk_ssm::Client) -> Self {
        SdkParameters { ssm }
    }

    pub fn client(&self) -> &aws_sdk_ssm::Client {
        &self.ssm
    }
}

impl ParameterStore for SdkParameters {
    fn history<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Vec<HistoryVersion>>> {
        Box::pin(async move {
            let result = self
                .ssm
                .get_parameter_history()
                .name(name)
                .with_decryption(true)
                .max_results(50)
                .into_paginator()
                .send()
                .try_collect()
                .await;
            match result {
                Ok(pages) => Ok(Some(
                    pages
                        .into_iter()
                        .flat_map(|p| p.parameters.unwrap_or_default())
                        .map(|h| history_version(&h))
                        .collect(),
                )),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_parameter_not_found()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(AwsError::new("SSM", "GetParameterHistory", name, &e)),
            }
        })
    }

    fn tags<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tags>> {
        Box::pin(current::tags(&self.ssm, name))
    }

    fn describe<'a>(
        &'a self,
        paths: &'a [String],
        next_token: Option<String>,
    ) -> StoreFuture<'a, ParametersPage> {
        Box::pin(async move {
            let mut filters = Vec::new();
            if !paths.is_empty() {
                let mut filter = ParameterStringFilter::builder()
                    .key("Path")
                    .option("Recursive");
                for p in paths {
                    let p = p.trim_end_matches('/');
                    filter = filter.values(if p.is_empty() { "/" } else { p });
                }
                filters.push(
                    filter
                        .build()
                        .map_err(|e| AwsError::local("SSM DescribeParameters", e))?,
                );
            }
            let page = self
                .ssm
                .describe_parameters()
                .set_parameter_filters((!filters.is_empty()).then_some(filters))
                .max_results(50)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| AwsError::new("SSM", "DescribeParameters", &paths.join(","), &e))?;
            Ok(ParametersPage {
                parameters: page
                    .parameters()
                    .iter()
                    .filter_map(|p| {
                        Some(ListedParameter {
                            name: p.name()?.to_owned(),
                            version: p.version(),
                            last_modified_ms: millis(p.last_modified_date()),
                        })
                    })
                    .collect(),
                next_token: page.next_token().map(str::to_owned),
            })
        })
    }
}

/// One history entry as ours: its snapshot (named as SSM names it) and its labels.
fn history_version(h: &ParameterHistory) -> HistoryVersion {
    let mut labels = h.labels().to_vec();
    labels.sort();
    let name = h.name().unwrap_or_default().to_owned();
    HistoryVersion {
        snapshot: ParameterSnapshot {
            name: name.clone(),
            value: h.value().unwrap_or_default().to_owned(),
            param_type: current::param_type(h.r#type()),
            attributes: Attributes {
                version: Some(h.version()),
                last_modified_ms: h.last_modified_date().and_then(|d| d.to_millis().ok()),
                description: h.description().map(str::to_owned),
                key_id: h.key_id().map(str::to_owned),
                tier: h.tier().map(|t| t.as_str().to_owned()),
                data_type: h.data_type().map(str::to_owned),
                allowed_pattern: h.allowed_pattern().map(str::to_owned),
                policies: current::policies_json(h.policies()),
                last_modified_user: h.last_modified_user().map(str::to_owned),
                tags: None,
                labels: None,
                unknown: Vec::new(),
            },
        },
        name,
        labels,
    }
}

/// The listing of `ListObjectVersions` pages, by key: each key's versions newest first, then its
/// delete markers newest first, whatever page they came on. (One key's entries can be split
/// across pages, and a page's versions and markers end at different keys.)
/// A key as a listing returned it. Listings ask for `EncodingType=url`, so that a key with
/// characters XML 1.0 cannot carry (control characters) does not make the whole page
/// unparseable; S3 then URL-encodes keys, prefixes and markers, spaces as `+` (S3 API
/// reference, ListObjectVersions: "EncodingType ... Amazon S3 encodes the key names in the
/// response"; decoded as the AWS SDKs for Python do, with `unquote_plus`). Decoded only when
/// the answer says it is encoded: an emulator may ignore the request.
pub fn listed_key(raw: &str, url_encoded: bool) -> String {
    if !url_encoded {
        return raw.to_owned();
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}
