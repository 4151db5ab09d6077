//! `ssmbak preview PATH/ T -R`: the original and ours on the same tree, and the emulator's
//! ceiling (the least work any client must ask of it).

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use ssmbak_tests::emulator::{checktime, Clients};
use ssmbak_tests::fault_proxy::{Fault, FaultProxy};

use crate::run::{median, run, Measured, Tool};
use crate::tree::{Layout, Tree};
use crate::Config;

pub(crate) const HEADER: &str = "| parameters | restore point | round trip | tool | median s | s/param | CPU s | peak RSS MB | requests | requests/param | S3 object reads/param | by operation | changes |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// A proxy in front of moto enforcing SSM's limits and adding `delay_ms` to every request
/// (0: none).
pub(crate) fn proxy(endpoint: &str, delay_ms: u64) -> FaultProxy {
    let proxy = FaultProxy::start(endpoint);
    crate::limits::model_ssm_limits(&proxy);
    if delay_ms > 0 {
        proxy.inject(
            usize::MAX,
            Fault::Delay(Duration::from_millis(delay_ms)),
            |_| true,
        );
    }
    proxy
}

fn changes(tool: Tool, stdout: &str) -> usize {
    match tool {
        Tool::Original => stdout.lines().filter(|l| l.starts_with("| /")).count(),
        Tool::Ours => serde_json::from_str::<serde_json::Value>(stdout)
            .ok()
            .and_then(|v| v["changes"].as_array().map(Vec::len))
            .unwrap_or(0),
    }
}

/// S3 reads of single objects (`GetObject`, `HeadObject`, `GetObjectTagging`): the requests
/// beyond the listing pass.
fn object_reads(m: &Measured) -> usize {
    ["S3 GetObject", "S3 HeadObject", "S3 GetObjectTagging"]
        .iter()
        .map(|op| m.requests.get(*op).copied().unwrap_or(0))
        .sum()
}

/// Requests to SSM for values and metadata: every operation but `ListTagsForResource`, which
/// a preview sends once per parameter whose backup recorded tags (our Lambda's always do) to
/// restore them, and `--no-tags` skips. #15's target counts these: it was set before the
/// bench's backups recorded tags. The table shows every operation.
fn ssm_requests(m: &Measured) -> usize {
    m.requests
        .iter()
        .filter(|(op, _)| op.starts_with("AmazonSSM.") && *op != "AmazonSSM.ListTagsForResource")
        .map(|(_, count)| count)
        .sum()
}

fn row(n: usize, point: &str, delay: u64, label: &str, seconds: f64, m: &Measured, changes: usize) {
    let total = m.total_requests();
    println!(
        "| {n} | {point} | {delay} ms | {label} | {seconds:.2} | {:.4} | {} | {} | {total} | {:.2} | {:.2} | {} | {changes} |",
        seconds / n as f64,
        m.cpu(),
        m.peak_rss_mb(),
        total as f64 / n as f64,
        object_reads(m) as f64 / n as f64,
        m.by_operation(),
    );
}

/// What one comparison found.
pub(crate) struct Compared {
    /// Median seconds of the original, when it ran.
    pub(crate) original: Option<f64>,
    /// Median seconds of ours.
    pub(crate) ours: f64,
    /// Ours: all requests, single-object S3 reads, and SSM requests, per parameter.
    pub(crate) requests_per_param: f64,
    pub(crate) object_reads_per_param: f64,
    pub(crate) ssm_requests_per_param: f64,
    /// Ours, the last run.
    pub(crate) peak_rss_mb: Option<f64>,
}

/// Both tools at one restore point and round trip.
pub(crate) fn compare(config: &Config, tree: &Tree, point: &str, at: i64, delay: u64) -> Compared {
    let proxy = proxy(&config.endpoint, delay);
    let when = checktime(at);
    let mut answers = Vec::new();
    let mut medians = Vec::new();
    let mut per_param = (0.0, 0.0, 0.0);
    let mut peak_rss_mb = None;
    for tool in [Tool::Original, Tool::Ours] {
        let runs = match tool {
            // The original reads our layout as its own (its tags): nothing new to compare.
            Tool::Original if tree.n > config.original_max || tree.layout == Layout::Ours => 0,
            Tool::Original => config.original_runs,
            Tool::Ours => config.runs,
        };
        if runs == 0 {
            medians.push(None);
            continue;
        }
        let mut args = vec!["preview", &tree.path, &when, "-R", "-b", &tree.bucket];
        if tool == Tool::Ours {
            args.extend(["--output", "json"]);
        }
        let measured: Vec<Measured> = (0..runs)
            .map(|_| run(tool, config.binary(tool), &args, &proxy))
            .collect();
        let m = median(measured.iter().map(|m| m.seconds).collect());
        let last = measured.last().expect("a run");
        let found = changes(tool, &last.stdout);
        row(tree.n, point, delay, tool.label(), m, last, found);
        per_param = (
            last.total_requests() as f64 / tree.n as f64,
            object_reads(last) as f64 / tree.n as f64,
            ssm_requests(last) as f64 / tree.n as f64,
        );
        peak_rss_mb = last.peak_rss_kb.map(|kb| kb as f64 / 1024.0);
        answers.push(found);
        medians.push(Some(m));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "both tools find the same changes: {answers:?}"
    );
    let (original, ours) = (medians[0], medians[1].expect("ours always runs"));
    if let Some(o) = original {
        println!(
            "| | | | **original/ours** | **{:.1}x** | | | | | | | | |",
            o / ours
        );
    }
    Compared {
        original,
        ours,
        requests_per_param: per_param.0,
        object_reads_per_param: per_param.1,
        ssm_requests_per_param: per_param.2,
        peak_rss_mb,
    }
}

/// The emulator's ceiling for a preview at the end of history: the least any client must ask
/// (one listing pass, both SSM paginations, one tag request per key for its event time and one
/// body per changed key), sent straight to moto with the concurrency ours uses (64), and timed.
pub(crate) async fn ceiling(config: &Config, tree: &Tree) -> f64 {
    let aws = Clients::new(&config.endpoint).await;
    let mut times = Vec::new();
    let (mut requests, mut object_reads) = (0, 0);
    for _ in 0..config.runs {
        let start = Instant::now();
        let listing = async {
            let reader = ssmbak_core::reader::BucketReader::new(aws.s3.clone(), &tree.bucket);
            let listing = reader.list(&tree.path).await.expect("list");
            let versions: usize = listing.values().map(Vec::len).sum();
            let latest: Vec<(String, String)> = listing
                .into_iter()
                .filter_map(|(key, listed)| {
                    let latest = listed.into_iter().find(|l| l.is_latest)?;
                    Some((key, latest.version_id))
                })
                .collect();
            // ListObjectVersions pages hold 1,000 entries.
            (latest, versions.div_ceil(1000))
        };
        let ssm_path = tree.path.trim_end_matches('/');
        let values = async {
            let mut pages = aws
                .ssm
                .get_parameters_by_path()
                .path(ssm_path)
                .recursive(true)
                .with_decryption(true)
                .into_paginator()
                .send();
            let mut n = 0;
            while let Some(page) = pages.next().await {
                page.expect("get parameters by path");
                n += 1;
            }
            n
        };
        let metadata = async {
            let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Path")
                .option("Recursive")
                .values(ssm_path)
                .build()
                .expect("filter");
            let mut pages = aws
                .ssm
                .describe_parameters()
                .parameter_filters(filter)
                .max_results(50)
                .into_paginator()
                .send();
            let mut n = 0;
            while let Some(page) = pages.next().await {
                page.expect("describe parameters");
                n += 1;
            }
            n
        };
        let ((latest, list_pages), value_pages, metadata_pages) =
            futures::join!(listing, values, metadata);
        let reads: Vec<usize> = stream::iter(latest.iter().enumerate())
            .map(|(i, (key, version))| {
                let aws = &aws;
                async move {
                    aws.s3
                        .get_object_tagging()
                        .bucket(&tree.bucket)
                        .key(key)
                        .version_id(version)
                        .send()
                        .await
                        .expect("tags");
                    if i % 10 == 0 {
                        aws.s3
                            .get_object()
                            .bucket(&tree.bucket)
                            .key(key)
                            .version_id(version)
                            .send()
                            .await
                            .expect("get");
                        2
                    } else {
                        1
                    }
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        times.push(start.elapsed().as_secs_f64());
        object_reads = reads.iter().sum::<usize>();
        requests = list_pages + value_pages + metadata_pages + object_reads;
    }
    let m = median(times);
    println!(
        "| {} | end | 0 ms | moto ceiling (least requests, no proxy) | {m:.2} | {:.4} | - | - | {requests} | {:.2} | {:.2} | | |",
        tree.n,
        m / tree.n as f64,
        requests as f64 / tree.n as f64,
        object_reads as f64 / tree.n as f64,
    );
    m
}
