//! Counts that must reach CloudWatch as metrics, so that an alarm can watch them: one line of
//! CloudWatch's embedded metric format (EMF) on standard output, which Lambda sends to the
//! function's log group, where CloudWatch extracts the metrics without any API call or
//! permission ("Embedding metrics within logs", CloudWatch User Guide).

use serde_json::{json, Map, Value};

/// The metrics' namespace; the template's alarms watch it.
pub const NAMESPACE: &str = "ssmbak";

/// Lambda sets this to the function's name; it is the metrics' one dimension.
const FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Prints one EMF line with these counts.
pub fn emit(counts: &[(&str, usize)]) {
    let function = std::env::var(FUNCTION_NAME_VAR).ok();
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    println!("{}", line(function.as_deref(), counts, now_ms as i64));
}

/// One EMF document: the metric definitions under `_aws`, the values and the dimension at the
/// top level.
pub fn line(function: Option<&str>, counts: &[(&str, usize)], timestamp_ms: i64) -> String {
    let definitions: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let dimensions: Vec<&str> = function.map(|_| "FunctionName").into_iter().collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        }),
    );
    if let Some(f) = function {
        doc.insert("FunctionName".to_owned(), json!(f));
    }
    for (name, count) in counts {
        doc.insert((*name).to_owned(), json!(count));
    }
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_defines_and_carries_every_count() {
        let line = line(
            Some("stack-backup"),
            &[("A", 1), ("B", 0)],
            1_700_000_000_000,
        );
        let doc: Value = serde_json::from_str(&line).expect("JSON");
        let metrics = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "ssmbak");
        assert_eq!(metrics["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(metrics["Metrics"][1], json!({"Name": "B", "Unit": "Count"}));
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!((doc["A"].clone(), doc["B"].clone()), (json!(1), json!(0)));
        assert_eq!(doc["FunctionName"], "stack-backup");
        assert!(!line.contains('\n'), "one line");
    }
}
