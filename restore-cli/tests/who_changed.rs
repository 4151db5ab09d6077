//! Who changed what: the Lambda records SSM's `LastModifiedUser` with every version, and
//! `log`, `preview` and `diff` show who made the version restored and who made the current one.
//!
//! moto answers `LastModifiedUser` with `N/A`; AWS answers with the ARN of the identity that
//! made the version ("LastModifiedUser: Amazon Resource Name (ARN) of the AWS user who last
//! changed the parameter", ParameterHistory and ParameterMetadata, SSM API reference). The
//! fault proxy puts real-looking ARNs in, one per SSM version, for both the Lambda's
//! `GetParameterHistory` and the CLI's `DescribeParameters`.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::{run_at, Run};
use ssmbak_tests::emulator::checktime;
use ssmbak_tests::fault_proxy::{Fault, Seen};
use ssmbak_tests::pipeline::{now_secs, Pipeline};

/// The ARN the rewritten answers give version `v` of any parameter.
fn author(v: i64) -> String {
    format!("arn:aws:sts::123456789012:assumed-role/deployer/author{v}")
}

/// `LastModifiedUser` of every parameter in an SSM answer set to [`author`] of its version.
fn authors_by_version(_: &Seen, body: &[u8]) -> Vec<u8> {
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    if let Some(params) = doc["Parameters"].as_array_mut() {
        for p in params {
            let version = p["Version"].as_i64().unwrap_or_default();
            p["LastModifiedUser"] = serde_json::json!(author(version));
        }
    }
    serde_json::to_vec(&doc).unwrap_or_else(|_| body.to_vec())
}

async fn sleep_secs(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

fn json(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn log_preview_and_diff_show_who_made_each_version() {
    let p = Pipeline::start_with_proxy().await;
    let proxy = p.proxy.as_ref().expect("a proxy");
    proxy.inject(usize::MAX, Fault::Rewrite(authors_by_version), |s| {
        matches!(
            s.operation().as_str(),
            "AmazonSSM.GetParameterHistory" | "AmazonSSM.DescribeParameters"
        )
    });
    let key = p.name("who/db");
    p.put(&key, "v1", ParameterType::String, None).await;
    p.publish(&key, "Create", "String", now_secs()).await;
    p.drain().await;
    sleep_secs(1.1).await;
    let t1 = checktime(now_secs());
    sleep_secs(1.1).await;
    p.put(&key, "v2", ParameterType::String, None).await;
    p.publish(&key, "Update", "String", now_secs()).await;
    p.drain().await;

    let ssmbak = env!("CARGO_BIN_EXE_ssmbak");
    let common = ["-b", p.bucket.as_str(), "--output", "json"];
    fn with<'a>(args: &[&'a str], common: &[&'a str]) -> Vec<&'a str> {
        [args, common].concat()
    }

    let log = json(&run_at(
        ssmbak,
        &with(&["log", &key], &common),
        &proxy.endpoint,
    ));
    let by: Vec<&str> = log["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["modified_by"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(by, [author(1), author(2)], "{log}");

    let preview = json(&run_at(
        ssmbak,
        &with(&["preview", &key, &t1], &common),
        &proxy.endpoint,
    ));
    let change = &preview["changes"][0];
    assert_eq!(change["modified_by"], author(1), "{preview}");
    assert_eq!(change["current_modified_by"], author(2), "{preview}");

    let diff = json(&run_at(
        ssmbak,
        &with(&["diff", &key, &t1], &common),
        &proxy.endpoint,
    ));
    let change = &diff["changes"][0];
    assert_eq!(change["before_modified_by"], author(1), "{diff}");
    assert_eq!(change["after_modified_by"], author(2), "{diff}");

    // A delete: SSM forgets the parameter and its last author; without a record of the
    // deleter the table says "unknown" and the JSON null, never a guess.
    p.delete(&key).await;
    p.publish(&key, "Delete", "String", now_secs()).await;
    p.drain().await;
    let log = json(&run_at(
        ssmbak,
        &with(&["log", &key], &common),
        &proxy.endpoint,
    ));
    let last = log["versions"]
        .as_array()
        .and_then(|v| v.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (last["deleted"].as_bool(), last["modified_by"].is_null()),
        (Some(true), true),
        "{log}"
    );
    let table = run_at(
        ssmbak,
        &["log", &key, "-b", p.bucket.as_str()],
        &proxy.endpoint,
    );
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("author2") && table.stdout.contains("unknown"),
        "{}",
        table.stdout
    );
}
