//! The backup Lambda: our `bootstrap` and the original's Python handler, each driven through the
//! local Runtime API with the same batches of 10 SQS records, against a fresh bucket.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssmbak_tests::emulator::{self, unique, Clients};
use ssmbak_tests::events::{change_event, sqs_event, sqs_record};
use ssmbak_tests::lambda::{extract_bootstrap, Bootstrap};
use ssmbak_tests::runtime_api::{Invocation, RuntimeApi};

use crate::preview::proxy;
use crate::run::Tool;
use crate::tree::now_secs;
use crate::Config;

pub(crate) const HEADER: &str = "| records | round trip | runtime | start-up ms | s | records/s | peak RSS MB | requests/record | by operation |\n|---|---|---|---|---|---|---|---|---|";

/// A minimal Python runtime client for the original's handler: what the Lambda Python runtime
/// does (import the handler at start-up, then fetch, call, answer), with nothing else.
const PYTHON_RUNTIME: &str = r#"
import json, os, urllib.request
from ssmbak.backup.ssmbak import handler
base = "http://%s/2018-06-01/runtime/invocation" % os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    with urllib.request.urlopen(base + "/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    try:
        path, body = "response", json.dumps(handler(event, None))
    except Exception as e:
        path, body = "error", json.dumps({"errorMessage": str(e), "errorType": type(e).__name__})
    urllib.request.urlopen(urllib.request.Request(
        "%s/%s/%s" % (base, request_id, path), data=body.encode(), method="POST")).read()
"#;

/// An executable that starts the original's handler under [`PYTHON_RUNTIME`].
fn python_runtime(dir: &Path, python: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("original-runtime");
    std::fs::write(&path, format!("#!{python}\n{PYTHON_RUNTIME}")).expect("write the runtime");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Peak resident memory of a running process, from `/proc`.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs both; returns ours' (round trip ms, peak RSS MB, start-up ms) for each round trip.
pub(crate) async fn compare(
    config: &Config,
    aws: &Clients,
    records: usize,
) -> Vec<(u64, Option<f64>, f64)> {
    let dir = std::env::temp_dir().join(unique("ssmbak-bench-lambda"));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let ours = extract_bootstrap(&config.bootstrap_zip, &dir);
    let original = python_runtime(&dir, &config.original_python);
    let path = format!("/{}/", unique("lambda"));
    let names: Vec<String> = (0..records).map(|i| format!("{path}p{i:05}")).collect();
    for name in &names {
        aws.ssm
            .put_parameter()
            .name(name)
            .value(format!("value of {name}"))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }
    let time = now_secs();
    let batches: Vec<String> = names
        .chunks(10)
        .enumerate()
        .map(|(b, chunk)| {
            sqs_event(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        sqs_record(
                            &format!("m{b}-{i}"),
                            &change_event(name, "String", "Update", time),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for delay in config.delays() {
        for tool in [Tool::Original, Tool::Ours] {
            let binary = match tool {
                Tool::Original => &original,
                Tool::Ours => &ours,
            };
            let (rss, start_up) = one(config, aws, tool, binary, &batches, records, delay).await;
            if tool == Tool::Ours {
                out.push((delay, rss, start_up));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}

async fn one(
    config: &Config,
    aws: &Clients,
    tool: Tool,
    binary: &Path,
    batches: &[String],
    records: usize,
    delay: u64,
) -> (Option<f64>, f64) {
    let bucket = unique("benchlambda").to_ascii_lowercase();
    emulator::versioned_bucket(&aws.s3, &bucket).await;
    let proxy = proxy(&config.endpoint, delay);
    let api = RuntimeApi::start();
    let env = [
        ("SSMBAK_BUCKET", bucket.as_str()),
        // The original reads its endpoint from here, and its region from the default chain.
        ("AWS_ENDPOINT", proxy.endpoint.as_str()),
        ("AWS_DEFAULT_REGION", emulator::REGION),
    ];
    let spawned = Instant::now();
    let mut lambda = Bootstrap::spawn(binary, &api, &proxy.endpoint, &env);
    let started = loop {
        if let Some(at) = api.first_poll() {
            break at;
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(30),
            "{} never asked for work:\n{}",
            tool.label(),
            lambda.logs().join("\n")
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    let start_up = started.duration_since(spawned);
    let before = proxy.counts();
    let start = Instant::now();
    for batch in batches {
        let result =
            tokio::task::block_in_place(|| api.invoke(batch.clone(), Duration::from_secs(120)));
        assert!(
            matches!(result, Invocation::Response(_)),
            "{}: {result:?}\n{}",
            tool.label(),
            lambda.logs().join("\n")
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let peak = peak_rss_kb(lambda.pid());
    lambda.kill();
    let after = proxy.counts();
    let requests: Vec<(String, usize)> = after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let total: usize = requests.iter().map(|(_, n)| n).sum();
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list")
        .key_count()
        .unwrap_or_default();
    assert_eq!(
        listed as usize,
        records.min(1000),
        "{} stored every record",
        tool.label()
    );
    let by_operation: Vec<String> = requests
        .iter()
        .map(|(op, n)| format!("{op}: {n}"))
        .collect();
    println!(
        "| {records} | {delay} ms | {} | {:.1} | {seconds:.2} | {:.0} | {} | {:.2} | {} |",
        tool.label(),
        start_up.as_secs_f64() * 1000.0,
        records as f64 / seconds,
        peak.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0)),
        total as f64 / records as f64,
        by_operation.join(", "),
    );
    (
        peak.map(|k| k as f64 / 1024.0),
        start_up.as_secs_f64() * 1000.0,
    )
}
