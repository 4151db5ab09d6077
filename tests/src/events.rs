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
