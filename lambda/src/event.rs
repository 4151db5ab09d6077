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

use serde::Deserialize;
use ssmbak_core::backup::{ChangeEvent, Operation};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const DETAIL_TYPE: &str = "Parameter Store Change";
pub const POLICY_DETAIL_TYPE: &str = "Parameter Store Policy Action";
pub const SOURCE: &str = "aws.ssm";

/// A record that is not a usable change event. It is reported as a failed batch item, so after
/// its retries it lands in the dead-letter queue, where someone can look at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("record has no body")]
    NoBody,
    #[error("record body is not an event: {0}")]
    NotJson(String),
    #[error(
        "not a Parameter Store Change or Policy Action event (source {event_source:?}, detail-type {detail_type:?})"
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
    /// A Parameter Store Change or Policy Action that changes nothing we record (an operation
    /// this version does not know, a notification policy).
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
}

/// Parses a record body.
pub fn parse(body: Option<&str>) -> Result<Parsed, EventError> {
    let body = body.ok_or(EventError::NoBody)?;
    let raw: RawEvent =
        serde_json::from_str(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    let policy_action = raw.detail_type.as_deref() == Some(POLICY_DETAIL_TYPE);
    if raw.source.as_deref() != Some(SOURCE)
        || !(policy_action || raw.detail_type.as_deref() == Some(DETAIL_TYPE))
    {
        return Err(EventError::NotParameterChange {
            event_source: raw.source,
            detail_type: raw.detail_type,
        });
    }
    let detail = raw.detail.ok_or(EventError::Missing("detail"))?;
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
    let event_time = OffsetDateTime::parse(&time, &Rfc3339)
        .map_err(|_| EventError::BadTime(time.clone()))?
        .unix_timestamp();
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
