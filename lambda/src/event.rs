//! Parsing one SQS record body: an EventBridge "Parameter Store Change" event.
//!
//! ```json
//! {"version":"0","id":"...","detail-type":"Parameter Store Change","source":"aws.ssm",
//!  "time":"2022-08-03T21:09:31Z","region":"us-east-1","resources":["arn:..."],
//!  "detail":{"name":"/a/b","type":"String","operation":"Create","description":"..."}}
//! ```
//!
//! Delete events carry no description; root-level names arrive without their `/`. The event
//! never carries the value or the SSM version.
//!
//! A parameter removed by its Expiration policy gets no Delete change event, but a "Parameter
//! Store Policy Action" event (SSM User Guide, "Setting up notifications or trigger actions
//! based on Parameter Store events"; detail fields as in `tests/fixtures/policy_action.json`):
//!
//! ```json
//! {"detail-type":"Parameter Store Policy Action","source":"aws.ssm","time":"...",
//!  "detail":{"parameter-name":"/a/b","parameter-type":"String","policy-type":"Expiration",
//!            "action-status":"Finished","action-reason":"..."}}
//! ```
//!
//! An Expiration becomes [`Operation::Removed`], which is recorded only once SSM confirms the
//! parameter is gone; the notification policy types (ExpirationNotification,
//! NoChangeNotification) change nothing and are skipped.
//!
//! With the template's `RecordDeleters` on, CloudTrail's records of `DeleteParameter` and
//! `DeleteParameters` come too, as "AWS API Call via CloudTrail" events (EventBridge User
//! Guide, "AWS service events delivered via AWS CloudTrail"; they need a trail logging
//! management events). Fields as in `tests/fixtures/cloudtrail_delete*.json`:
//!
//! ```json
//! {"detail-type":"AWS API Call via CloudTrail","source":"aws.ssm","time":"...",
//!  "detail":{"eventSource":"ssm.amazonaws.com","eventName":"DeleteParameters",
//!            "eventTime":"2024-06-13T20:10:56Z",
//!            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::...:assumed-role/R/s"},
//!            "requestParameters":{"names":["/a","/b","/c"]},
//!            "responseElements":{"deletedParameters":["/a","/b"],"invalidParameters":["/c"]}}}
//! ```
//!
//! `DeleteParameter` names its parameter in `requestParameters.name`. `DeleteParameters` deletes
//! only `responseElements.deletedParameters` (its `invalidParameters` did not exist); should
//! CloudTrail leave the response out, `requestParameters.names` is used, which is safe because
//! [`ssmbak_core::backup::Backup::record_deleter`] records nothing for a parameter SSM still
//! has. A failed call carries `errorCode` and deleted nothing: skipped. So is a record that
//! names no caller ARN: the deleter stays unknown.

use serde::Deserialize;
use ssmbak_core::backup::{ChangeEvent, DeleterEvent, Operation};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const DETAIL_TYPE: &str = "Parameter Store Change";
pub const POLICY_DETAIL_TYPE: &str = "Parameter Store Policy Action";
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
pub const SOURCE: &str = "aws.ssm";
/// CloudTrail's `eventSource` for SSM calls.
pub const CLOUDTRAIL_EVENT_SOURCE: &str = "ssm.amazonaws.com";

/// A record that is not a usable change event. It is reported as a failed batch item, so after
/// its retries it lands in the dead-letter queue, where someone can look at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("record has no body")]
    NoBody,
    #[error("record body is not an event: {0}")]
    NotJson(String),
    #[error(
        "not a Parameter Store Change or Policy Action event, nor CloudTrail's record of an SSM delete (source {event_source:?}, detail-type {detail_type:?})"
    )]
    NotParameterChange {
        event_source: Option<String>,
        detail_type: Option<String>,
    },
    #[error("event has no {0}")]
    Missing(&'static str),
    #[error("event time {0:?} is not an RFC 3339 time")]
    BadTime(String),
}

/// What a record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    ChangeEvent(ChangeEvent),
    /// CloudTrail's record of a delete call: who deleted each parameter it deleted.
    Deleters(Vec<DeleterEvent>),
    /// A Parameter Store Change or Policy Action that changes nothing we record (an operation
    /// this version does not know, a notification policy), or a CloudTrail record with nothing
    /// to record (a failed call, no caller ARN).
    Skip {
        name: String,
        operation: String,
    },
}

#[derive(Deserialize)]
struct RawEvent {
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    time: Option<String>,
    detail: Option<RawDetail>,
}

#[derive(Deserialize)]
struct RawDetail {
    name: Option<String>,
    #[serde(rename = "type")]
    param_type: Option<String>,
    operation: Option<String>,
    // Policy Action events.
    #[serde(rename = "parameter-name")]
    parameter_name: Option<String>,
    #[serde(rename = "parameter-type")]
    parameter_type: Option<String>,
    #[serde(rename = "policy-type")]
    policy_type: Option<String>,
    // CloudTrail records.
    #[serde(rename = "eventSource")]
    cloudtrail_source: Option<String>,
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(rename = "eventTime")]
    event_time: Option<String>,
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    #[serde(rename = "userIdentity")]
    user_identity: Option<RawUserIdentity>,
    #[serde(rename = "requestParameters")]
    request_parameters: Option<RawRequest>,
    #[serde(rename = "responseElements")]
    response_elements: Option<RawResponse>,
}

#[derive(Deserialize)]
struct RawUserIdentity {
    arn: Option<String>,
}

#[derive(Deserialize)]
struct RawRequest {
    name: Option<String>,
    names: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(rename = "deletedParameters")]
    deleted_parameters: Option<Vec<String>>,
}

fn epoch_seconds(time: &str) -> Result<i64, EventError> {
    Ok(OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|_| EventError::BadTime(time.to_owned()))?
        .unix_timestamp())
}

/// A CloudTrail record of an SSM call (see the module documentation).
fn parse_cloudtrail(time: Option<String>, detail: RawDetail) -> Result<Parsed, EventError> {
    let source = detail.cloudtrail_source.as_deref();
    if source != Some(CLOUDTRAIL_EVENT_SOURCE) {
        return Err(EventError::NotParameterChange {
            event_source: detail.cloudtrail_source,
            detail_type: Some(CLOUDTRAIL_DETAIL_TYPE.to_owned()),
        });
    }
    let event_name = detail
        .event_name
        .ok_or(EventError::Missing("detail.eventName"))?;
    let request = detail.request_parameters;
    let skip = |operation: String| {
        let name = request
            .as_ref()
            .and_then(|r| {
                r.name
                    .clone()
                    .or_else(|| r.names.as_ref()?.first().cloned())
            })
            .unwrap_or_default();
        Ok(Parsed::Skip { name, operation })
    };
    if !matches!(event_name.as_str(), "DeleteParameter" | "DeleteParameters") {
        return skip(event_name);
    }
    if let Some(code) = detail.error_code {
        // A failed call deleted nothing.
        return skip(format!("{event_name} failed: {code}"));
    }
    let Some(arn) = detail
        .user_identity
        .and_then(|u| u.arn)
        .filter(|a| !a.is_empty())
    else {
        return skip(format!("{event_name} by a caller with no ARN"));
    };
    let time = detail
        .event_time
        .or(time)
        .ok_or(EventError::Missing("detail.eventTime"))?;
    let event_time = epoch_seconds(&time)?;
    let mut names: Vec<String> = if event_name == "DeleteParameter" {
        request.and_then(|r| r.name).into_iter().collect()
    } else {
        detail
            .response_elements
            .and_then(|r| r.deleted_parameters)
            .or_else(|| request.and_then(|r| r.names))
            .unwrap_or_default()
    };
    names.retain(|n| !n.is_empty() && n != "/");
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(EventError::Missing("detail.requestParameters.name"));
    }
    Ok(Parsed::Deleters(
        names
            .into_iter()
            .map(|name| DeleterEvent {
                name,
                event_time,
                deleted_by: arn.clone(),
            })
            .collect(),
    ))
}

/// Parses a record body.
pub fn parse(body: Option<&str>) -> Result<Parsed, EventError> {
    let body = body.ok_or(EventError::NoBody)?;
    let raw: RawEvent =
        serde_json::from_str(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    let policy_action = raw.detail_type.as_deref() == Some(POLICY_DETAIL_TYPE);
    let cloudtrail = raw.detail_type.as_deref() == Some(CLOUDTRAIL_DETAIL_TYPE);
    if raw.source.as_deref() != Some(SOURCE)
        || !(policy_action || cloudtrail || raw.detail_type.as_deref() == Some(DETAIL_TYPE))
    {
        return Err(EventError::NotParameterChange {
            event_source: raw.source,
            detail_type: raw.detail_type,
        });
    }
    let detail = raw.detail.ok_or(EventError::Missing("detail"))?;
    if cloudtrail {
        return parse_cloudtrail(raw.time, detail);
    }
    let (name, operation, param_type) = if policy_action {
        (
            detail.parameter_name,
            detail
                .policy_type
                .ok_or(EventError::Missing("detail.policy-type"))?,
            detail.parameter_type,
        )
    } else {
        (
            detail.name,
            detail
                .operation
                .ok_or(EventError::Missing("detail.operation"))?,
            detail.param_type,
        )
    };
    let name = name
        .filter(|n| !n.is_empty() && n != "/")
        .ok_or(EventError::Missing(if policy_action {
            "detail.parameter-name"
        } else {
            "detail.name"
        }))?;
    let time = raw.time.ok_or(EventError::Missing("time"))?;
    let event_time = epoch_seconds(&time)?;
    let operation = match (policy_action, operation.as_str()) {
        (false, "Create") => Operation::Create,
        (false, "Update") => Operation::Update,
        (false, "Delete") => Operation::Delete,
        // The labels of a version moved: the value did not change, what the backup records
        // about the version may have.
        (false, "LabelParameterVersion" | "UnlabelParameterVersion") => Operation::Relabel,
        (true, "Expiration") => Operation::Removed,
        _ => return Ok(Parsed::Skip { name, operation }),
    };
    Ok(Parsed::ChangeEvent(ChangeEvent {
        name,
        operation,
        event_time,
        // An unknown type name does not stop a backup: the type stored comes from SSM.
        param_type: param_type.and_then(|t| t.parse().ok()),
    }))
}

#[cfg(test)]
mod tests;
