//! The benchmark behind `cargo xtask bench`: `ssmbak preview PATH/ T -R` of the original
//! ssmbak 0.5.2 and ours on the same tree, on raw moto and with a modelled round trip, counting
//! the requests each makes by operation.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_ssm::types::ParameterType;
use futures::stream::{self, StreamExt};
use ssmbak_tests::emulator::{self, unique, Clients};
use ssmbak_tests::fault_proxy::{Fault, FaultProxy};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn naive(secs: i64) -> String {
    ssmbak_tests::emulator::checktime(secs)
}

/// A tree of `n` parameters with `versions` versions each, in the original's format, written
/// round by round (so LastModified follows the event times, as with a live Lambda), and SSM
/// holding the last round with every tenth parameter changed. Returns (path, bucket, times after
/// each round).
async fn tree(aws: &Clients, n: usize, versions: usize) -> (String, String, Vec<i64>) {
    let id = unique("bench");
    let bucket = id.to_ascii_lowercase();
    ssmbak_tests::emulator::versioned_bucket(&aws.s3, &bucket).await;
    let path = format!("/{id}/");
    let mut after_round = Vec::new();
    for round in 0..versions {
        let t = now_secs();
        stream::iter(0..n)
            .map(|i| {
                let (aws, bucket, path) = (aws, &bucket, &path);
                async move {
                    aws.s3
                        .put_object()
                        .bucket(bucket)
                        .key(format!("{path}p{i:05}"))
                        .tagging(format!("ssmbakTime={t}&ssmbakType=String"))
                        .body(format!("value {i} round {round}").into_bytes().into())
                        .send()
                        .await
                        .expect("put");
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        after_round.push(now_secs());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    stream::iter(0..n)
        .map(|i| {
            let (aws, path) = (aws, &path);
            async move {
                let value = if i % 10 == 0 {
                    "changed".to_owned()
                } else {
                    format!("value {i} round {}", versions - 1)
                };
                aws.ssm
                    .put_parameter()
                    .name(format!("{path}p{i:05}"))
                    .value(value)
                    .r#type(ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .expect("put parameter");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    (path, bucket, after_round)
}

struct Measured {
    seconds: f64,
    peak_rss_kb: Option<u64>,
    changes: usize,
    requests: BTreeMap<String, usize>,
}

/// Runs one preview through `proxy`; `original` picks the tool.
fn preview(
    original: bool,
    binary: &str,
    path: &str,
    at: i64,
    bucket: &str,
    proxy: &FaultProxy,
) -> Measured {
    let before = proxy.counts();
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args([
        "-f",
        "%M",
        binary,
        "preview",
        path,
        &naive(at),
        "-R",
        "-b",
        bucket,
    ]);
    if original {
        cmd.env("AWS_ENDPOINT", &proxy.endpoint)
            .env("AWS_DEFAULT_REGION", emulator::REGION);
    } else {
        cmd.args(["--output", "json"])
            .env("AWS_ENDPOINT_URL", &proxy.endpoint);
    }
    let start = Instant::now();
    let out = cmd.output().expect("run the preview");
    let seconds = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{binary} failed: {stderr}");
    let changes = if original {
        stdout.lines().filter(|l| l.starts_with("| /")).count()
    } else {
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        json["changes"].as_array().map_or(0, Vec::len)
    };
    let peak_rss_kb = stderr.lines().last().and_then(|l| l.trim().parse().ok());
    let after = proxy.counts();
    let requests = after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    Measured {
        seconds,
        peak_rss_kb,
        changes,
        requests,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(endpoint) = emulator::endpoint() else {
        eprintln!(
            "{} is not set: run `cargo xtask bench`",
            emulator::ENDPOINT_VAR
        );
        std::process::exit(2);
    };
    let ours = var("SSMBAK_BENCH_OURS", "target/release/ssmbak");
    let original = var("SSMBAK_BENCH_ORIGINAL", "target/original-venv/bin/ssmbak");
    let sizes: Vec<usize> = var("SSMBAK_BENCH_SIZES", "100,1000")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs: usize = var("SSMBAK_BENCH_RUNS", "3").parse().unwrap_or(3);
    let delay_ms: u64 = var("SSMBAK_BENCH_DELAY_MS", "20").parse().unwrap_or(20);
    let aws = Clients::new(&endpoint).await;

    println!("| parameters | restore point | round trip | tool | median s | s/param | peak RSS MB | requests | requests/param | by operation | changes |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &sizes {
        eprintln!("generating {n} parameters x 5 versions...");
        let (path, bucket, rounds) = tree(&aws, n, 5).await;
        for (label, at) in [("end", rounds[4]), ("middle", rounds[1])] {
            for delay in [0, delay_ms] {
                let proxy = FaultProxy::start(&endpoint);
                if delay > 0 {
                    proxy.inject(
                        usize::MAX,
                        Fault::Delay(Duration::from_millis(delay)),
                        |_| true,
                    );
                }
                let mut medians = Vec::new();
                for (tool, binary, is_original) in [
                    ("original 0.5.2", original.as_str(), true),
                    ("ours", ours.as_str(), false),
                ] {
                    let measured: Vec<Measured> = (0..runs)
                        .map(|_| preview(is_original, binary, &path, at, &bucket, &proxy))
                        .collect();
                    let m = median(measured.iter().map(|m| m.seconds).collect());
                    let last = measured.last().expect("a run");
                    let total: usize = last.requests.values().sum();
                    let ops: Vec<String> = last
                        .requests
                        .iter()
                        .map(|(op, k)| format!("{op}: {k}"))
                        .collect();
                    println!(
                        "| {n} | {label} | {delay} ms | {tool} | {m:.2} | {:.4} | {} | {total} | {:.2} | {} | {} |",
                        m / n as f64,
                        last.peak_rss_kb.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0)),
                        total as f64 / n as f64,
                        ops.join(", "),
                        last.changes,
                    );
                    medians.push((m, last.changes));
                }
                assert_eq!(
                    medians[0].1, medians[1].1,
                    "both tools find the same changes"
                );
                println!(
                    "| | | | **original/ours** | **{:.1}x** | | | | | | |",
                    medians[0].0 / medians[1].0
                );
            }
        }
    }
}
