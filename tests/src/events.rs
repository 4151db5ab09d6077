//! The events the Lambda receives: SSM "Parameter Store Change" events as EventBridge delivers
//! them, wrapped in SQS records as the event source mapping hands them over.

use serde_json::{json, Value};

/// An EventBridge "Parameter Store Change" event for `name` at `time` (epoch seconds).
pub fn change_event(name: &str, ty: &str, operation: &str, time: i64) -> String {
    json!({
        "version": "0",
        "id": format!("bench-{name}-{time}"),
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": "123456789012",
        "time": crate::emulator::rfc3339(time),
        "region": crate::emulator::REGION,
        "resources": [format!("arn:aws:ssm:{}:123456789012:parameter{name}", crate::emulator::REGION)],
        "detail": {"name": name, "type": ty, "operation": operation},
    })
    .to_string()
}

/// The `detail` of CloudTrail's record of a successful `DeleteParameter` (one name) or
/// `DeleteParameters` call by `arn` at `time`, as EventBridge delivers it with the
/// "AWS API Call via CloudTrail" detail-type (fields as in `lambda/tests/fixtures/
/// cloudtrail_delete*.json`). For `DeleteParameters`, `invalid` names are reported as not found.
pub fn cloudtrail_delete_detail(names: &[&str], invalid: &[&str], arn: &str, time: i64) -> Value {
    let one = names.len() == 1 && invalid.is_empty();
    let (event_name, request, response) = if one {
        ("DeleteParameter", json!({"name": names[0]}), Value::Null)
    } else {
        let asked: Vec<&str> = names.iter().chain(invalid).copied().collect();
        (
            "DeleteParameters",
            json!({"names": asked}),
            json!({"deletedParameters": names, "invalidParameters": invalid}),
        )
    };
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEID12345678:session",
            "arn": arn,
            "accountId": "123456789012",
        },
        "eventTime": crate::emulator::rfc3339(time),
        "eventSource": "ssm.amazonaws.com",
        "eventName": event_name,
        "awsRegion": crate::emulator::REGION,
        "sourceIPAddress": "203.0.113.17",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": request,
        "responseElements": response,
        "requestID": format!("req-{time}"),
        "eventID": format!("evt-{time}-{}", names.join(",")),
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    })
}

/// One SQS record holding `body`.
pub fn sqs_record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("r-{message_id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ssmbak",
        "awsRegion": crate::emulator::REGION,
    })
}

/// The Lambda payload for a batch of records.
pub fn sqs_event(records: Vec<Value>) -> String {
    json!({ "Records": records }).to_string()
}
