//! What SSM holds now, for a path or one key: values (decrypted) and the metadata a restore
//! compares.

use std::collections::BTreeMap;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{
    Parameter, ParameterInlinePolicy, ParameterMetadata, ParameterStringFilter,
};

use crate::aws_error::AwsError;
use crate::format::{Attributes, ParameterSnapshot, ParameterType, Tags};
use crate::paced::PacedSsm;

fn ssm_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    name: &str,
    e: &aws_sdk_ssm::error::SdkError<E, aws_sdk_ssm::config::http::HttpResponse>,
) -> AwsError {
    AwsError::new("SSM", operation, name, e)
}

/// SSM's parameter type as ours (an unknown one reads as String, SSM's default).
pub(crate) fn param_type(t: Option<&aws_sdk_ssm::types::ParameterType>) -> ParameterType {
    match t {
        Some(aws_sdk_ssm::types::ParameterType::StringList) => ParameterType::StringList,
        Some(aws_sdk_ssm::types::ParameterType::SecureString) => ParameterType::SecureString,
        _ => ParameterType::String,
    }
}

/// A parameter's policies as the JSON array `PutParameter` takes (`None` for none).
pub(crate) fn policies_json(policies: &[ParameterInlinePolicy]) -> Option<String> {
    (!policies.is_empty()).then(|| {
        let texts: Vec<&str> = policies.iter().filter_map(|p| p.policy_text()).collect();
        format!("[{}]", texts.join(","))
    })
}

fn from_parameter(p: &Parameter) -> Option<ParameterSnapshot> {
    Some(ParameterSnapshot {
        name: p.name()?.to_owned(),
        value: p.value().unwrap_or_default().to_owned(),
        param_type: param_type(p.r#type()),
        attributes: Attributes {
            version: Some(p.version()),
            last_modified_ms: p.last_modified_date().and_then(|d| d.to_millis().ok()),
            data_type: p.data_type().map(str::to_owned),
            ..Attributes::default()
        },
    })
}

fn add_metadata(params: &mut BTreeMap<String, ParameterSnapshot>, m: &ParameterMetadata) {
    let Some(p) = m.name().and_then(|n| params.get_mut(n)) else {
        return;
    };
    let a = &mut p.attributes;
    a.description = m.description().map(str::to_owned);
    a.key_id = m.key_id().map(str::to_owned);
    a.tier = m.tier().map(|t| t.as_str().to_owned());
    a.allowed_pattern = m.allowed_pattern().map(str::to_owned);
    if m.data_type().is_some() {
        a.data_type = m.data_type().map(str::to_owned);
    }
    a.policies = policies_json(m.policies());
    a.last_modified_user = m.last_modified_user().map(str::to_owned);
}

/// The parameters under `path` (direct children, or every depth with `recursive`): values,
/// types, versions, data types and modification times, from `GetParametersByPath`. The rest
/// of their metadata is [`describe`]'s, read only for the parameters that need it.
pub async fn values(
    ssm: &aws_sdk_ssm::Client,
    path: &str,
    recursive: bool,
) -> Result<BTreeMap<String, ParameterSnapshot>, AwsError> {
    // SSM wants the path without its trailing slash (except the root).
    let ssm_path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let mut params = BTreeMap::new();
    let mut pages = ssm
        .get_parameters_by_path()
        .path(ssm_path)
        .recursive(recursive)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ssm_error("GetParametersByPath", path, &e))?;
        for p in page.parameters().iter().filter_map(from_parameter) {
            params.insert(p.name.clone(), p);
        }
    }
    Ok(params)
}

/// The most names one `GetParameters` takes ("Maximum number of 10 items", GetParameters API
/// reference, `Names`).
const NAMES_PER_GET: usize = 10;

/// The values of those of `names` that exist, as [`values`] gives a path's: `GetParameters`,
/// 10 names a request, one request at a time at `ssm`'s pace (it shares the account's read
/// limit with `GetParameter` and `GetParametersByPath`).
pub async fn values_of(
    ssm: &PacedSsm,
    names: &[String],
) -> Result<BTreeMap<String, ParameterSnapshot>, AwsError> {
    let mut params = BTreeMap::new();
    for batch in names.chunks(NAMES_PER_GET) {
        let call = |ssm: aws_sdk_ssm::Client| {
            ssm.get_parameters()
                .set_names(Some(batch.to_vec()))
                .with_decryption(true)
                .send()
        };
        // Names SSM does not have come back in `InvalidParameters`: absent.
        let out = ssm
            .send(call)
            .await
            .map_err(|e| ssm_error("GetParameters", &batch.join(", "), &e))?;
        for p in out.parameters().iter().filter_map(from_parameter) {
            params.insert(p.name.clone(), p);
        }
    }
    Ok(params)
}

/// The most names one `DescribeParameters` filter takes (ParameterStringFilter, `Values`:
/// "Maximum number of 50 items").
const NAMES_PER_DESCRIBE: usize = 50;
/// Name batches described at once.
const DESCRIBE_CONCURRENCY: usize = 4;

/// Completes the metadata (description, KeyId, tier, allowed pattern, policies, who made it)
/// of `names` among `params`, with `DescribeParameters` filtered by name, 50 names a request.
pub async fn describe(
    ssm: &aws_sdk_ssm::Client,
    params: &mut BTreeMap<String, ParameterSnapshot>,
    names: &[String],
) -> Result<(), AwsError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let batches: Vec<Vec<ParameterMetadata>> = stream::iter(names.chunks(NAMES_PER_DESCRIBE))
        .map(|batch| async move {
            let label = batch.first().map(String::as_str).unwrap_or_default();
            let filter = ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .set_values(Some(batch.to_vec()))
                .build()
                .map_err(|e| AwsError::local(&format!("SSM DescribeParameters {label}"), e))?;
            let mut described = Vec::new();
            let mut pages = ssm
                .describe_parameters()
                .parameter_filters(filter)
                .max_results(50)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| ssm_error("DescribeParameters", label, &e))?;
                described.extend(page.parameters.unwrap_or_default());
            }
            Ok::<_, AwsError>(described)
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await?;
    for m in batches.iter().flatten() {
        add_metadata(params, m);
    }
    Ok(())
}

/// A parameter's resource tags (`ListTagsForResource`); `None` when it does not exist.
///
/// SSM has no call that reads the tags of many parameters at once, so a reader asks only
/// where a backup recorded tags to compare with.
pub async fn tags(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<Option<Tags>, AwsError> {
    match ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            out.tag_list()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        )),
        // "The resource ID isn't valid": the parameter is gone.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_resource_id()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ssm_error("ListTagsForResource", name, &e)),
    }
}

/// One parameter, if it exists, as [`values`] gives a path's.
pub async fn key_value(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<Option<ParameterSnapshot>, AwsError> {
    match ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(out) => Ok(out.parameter.as_ref().and_then(from_parameter)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ssm_error("GetParameter", name, &e)),
    }
}
