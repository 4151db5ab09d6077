//! The benchmark behind `cargo xtask bench`: the original ssmbak 0.5.2 and ours side by side on
//! moto, raw and with a modelled round trip, counting the requests each makes by operation.
//!
//! - preview (`ssmbak preview PATH/ T -R`) at two restore points, beside the emulator's ceiling;
//! - restore of a tree where every parameter differs, with throttled writes;
//! - the backup Lambda: batches of 10 records through the local Runtime API;
//! - `s3bak preview` of a prefix of 100,000 versions (the listing served by the proxy).
//!
//! Prints Markdown tables (`BENCHMARKS.md` quotes them).

mod lambda;
mod limits;
mod preview;
mod restore;
mod run;
mod s3bak;
mod targets;
mod tree;

use std::path::PathBuf;

use ssmbak_tests::emulator::{self, Clients};

use crate::run::Tool;
use crate::tree::{Layout, Spacing, Tree};

/// What to measure, from the environment (`cargo xtask bench` sets the paths).
pub(crate) struct Config {
    pub(crate) endpoint: String,
    pub(crate) ours: String,
    pub(crate) original: String,
    pub(crate) original_python: String,
    pub(crate) bootstrap_zip: PathBuf,
    pub(crate) sizes: Vec<usize>,
    /// Runs of ours per measurement (the median is reported).
    pub(crate) runs: usize,
    /// Runs of the original per measurement: it is slow and steady.
    pub(crate) original_runs: usize,
    /// Largest tree the original is run on.
    pub(crate) original_max: usize,
    pub(crate) delay_ms: u64,
    /// Records sent to each Lambda.
    pub(crate) lambda_records: usize,
    /// Which parts run: `preview`, `restore`, `lambda`, `s3bak`.
    pub(crate) parts: Vec<String>,
    /// Which preview restore points: `end`, `middle`.
    pub(crate) points: Vec<String>,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn list(name: &str, default: &str) -> Vec<String> {
    var(name, default)
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect()
}

impl Config {
    fn from_env(endpoint: String) -> Self {
        Config {
            endpoint,
            ours: var("SSMBAK_BENCH_OURS", "target/release/ssmbak"),
            original: var("SSMBAK_BENCH_ORIGINAL", "target/original-venv/bin/ssmbak"),
            original_python: var(
                "SSMBAK_BENCH_ORIGINAL_PYTHON",
                "target/original-venv/bin/python",
            ),
            bootstrap_zip: var("SSMBAK_TEST_BOOTSTRAP_ZIP", "target/lambda/bootstrap.zip").into(),
            sizes: var("SSMBAK_BENCH_SIZES", "100,1000")
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
            runs: number("SSMBAK_BENCH_RUNS", 3),
            original_runs: number("SSMBAK_BENCH_ORIGINAL_RUNS", 1),
            original_max: number("SSMBAK_BENCH_ORIGINAL_MAX", 1000),
            delay_ms: number("SSMBAK_BENCH_DELAY_MS", 20),
            lambda_records: number("SSMBAK_BENCH_LAMBDA_RECORDS", 500),
            parts: list("SSMBAK_BENCH_PARTS", "preview,restore,lambda,s3bak"),
            points: list("SSMBAK_BENCH_POINTS", "end,middle"),
        }
    }

    /// Raw moto, then with the modelled round trip (unless it is 0).
    pub(crate) fn delays(&self) -> Vec<u64> {
        if self.delay_ms == 0 {
            vec![0]
        } else {
            vec![0, self.delay_ms]
        }
    }

    pub(crate) fn binary(&self, tool: Tool) -> &str {
        match tool {
            Tool::Original => &self.original,
            Tool::Ours => &self.ours,
        }
    }

    fn runs(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
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
    let config = Config::from_env(endpoint);
    let aws = Clients::new(&config.endpoint).await;
    let mut targets = targets::Targets::default();

    let mut trees = Vec::new();
    if config.runs("preview") || config.runs("restore") {
        for &n in &config.sizes {
            eprintln!("generating {n} parameters x {} versions...", tree::VERSIONS);
            trees.push(Tree::generate(&aws, n, Layout::Original, Spacing::Close).await);
        }
    }
    if config.runs("preview") {
        println!("### Preview\n\n{}", preview::HEADER);
        let mut at_end = Vec::new();
        // (parameters, point, original s at 0 ms, at the delay; ours the same)
        let mut round_trips = Vec::new();
        for tree in &trees {
            let end = tree.after_round[tree::VERSIONS - 1];
            let middle = tree.after_round[1];
            let points = [("end", end), ("middle", middle)];
            for (point, at) in points
                .into_iter()
                .filter(|(p, _)| config.points.iter().any(|x| x == p))
            {
                let mut raw = None;
                for delay in config.delays() {
                    eprintln!("preview: {} parameters, {point}, {delay} ms", tree.n);
                    let compared = preview::compare(&config, tree, point, at, delay);
                    match raw {
                        None => raw = Some((compared.original, compared.ours)),
                        Some((original, ours)) => round_trips.push((
                            tree.n,
                            point,
                            delay,
                            original.zip(compared.original),
                            (ours, compared.ours),
                        )),
                    }
                    if point == "end" {
                        at_end.push((delay, compared));
                    }
                }
            }
            if config.points.iter().any(|p| p == "middle") {
                // Issue 28 part 5: three versions back in our layout, the later changes
                // seconds or minutes after the point: the index places every version from
                // the listing either way, and only the version at the point is read.
                eprintln!("generating {} parameters in our layout, close...", tree.n);
                let close = Tree::generate(&aws, tree.n, Layout::Ours, Spacing::Close).await;
                let at = close.after_round[1];
                let label = "middle, our layout, changes seconds apart";
                let c = preview::compare(&config, &close, label, at, 0);
                // Three versions back, every parameter differs from SSM's state now.
                let point = "three versions back, changes seconds apart";
                let (reads, requests) = (c.object_reads_per_param, c.requests_per_param);
                targets.index(close.n, point, reads, 1.0, requests);
                eprintln!("generating {} parameters in our layout, apart...", tree.n);
                let ours = Tree::generate(&aws, tree.n, Layout::Ours, Spacing::Apart).await;
                let at = ours.after_round[1];
                let label = "middle, our layout, changes minutes apart";
                let c = preview::compare(&config, &ours, label, at, 0);
                let point = "three versions back, changes minutes apart";
                let (reads, requests) = (c.object_reads_per_param, c.requests_per_param);
                targets.index(ours.n, point, reads, 1.0, requests);
                // #15 part 1: SSM read only where something may differ.
                let at = ours.after_round[tree::VERSIONS - 1];
                let compared = preview::compare(&config, &ours, "end, our layout", at, 0);
                targets.ssm_reads(ours.n, compared.ssm_requests_per_param);
                // At the end, SSM differs from the point for the tenth changed since.
                let (reads, requests) =
                    (compared.object_reads_per_param, compared.requests_per_param);
                targets.index(ours.n, "end", reads, 0.1, requests);
            }
            let ceiling = preview::ceiling(&config, tree).await;
            for (delay, c) in at_end.drain(..) {
                targets.memory(tree.n, delay, c.peak_rss_mb);
                if delay == 0 {
                    let (reads, requests) = (c.object_reads_per_param, c.requests_per_param);
                    targets.preview_raw(tree.n, reads, requests, c.ours, ceiling);
                } else if let Some(original) = c.original {
                    targets.preview_delayed(tree.n, delay, original, c.ours, ceiling);
                }
            }
        }
        println!();
        if !round_trips.is_empty() {
            println!("### Sequential round trips of a preview\n\n(time with the modelled round trip − time without) / round trip: the number a slower network multiplies.\n\n| parameters | restore point | original | ours |\n|---|---|---|---|");
            for (n, point, delay, original, ours) in round_trips {
                let trips = |(raw, slow): (f64, f64)| (slow - raw) / (delay as f64 / 1000.0);
                let original = original.map_or("—".to_owned(), |o| format!("{:.0}", trips(o)));
                println!("| {n} | {point} | {original} | {:.0} |", trips(ours));
            }
            println!();
        }
    }
    if config.runs("restore") {
        println!(
            "### Restore (every parameter differs; writes over {} per second throttled)\n\n{}",
            restore::PUT_TPS,
            restore::HEADER
        );
        // Every parameter is rewritten: the largest tree is left to the preview.
        for tree in trees.iter().filter(|t| t.n <= 1000) {
            eprintln!("restore: {} parameters", tree.n);
            if let Some(ours) = restore::compare(&config, &aws, tree).await {
                targets.restore(tree.n, ours, restore::PUT_TPS);
            }
        }
        println!();
    }
    if config.runs("lambda") {
        let zip_bytes = std::fs::metadata(&config.bootstrap_zip).map_or(0, |m| m.len());
        println!(
            "### Backup Lambda (batches of 10 records; zip {:.2} MB)\n\n{}",
            zip_bytes as f64 / 1e6,
            lambda::HEADER
        );
        eprintln!("lambda: {} records", config.lambda_records);
        for (delay, rss, start_up) in lambda::compare(&config, &aws, config.lambda_records).await {
            targets.lambda(delay, rss, start_up);
        }
        targets.zip(zip_bytes);
        println!();
    }
    if config.runs("s3bak") {
        println!(
            "### s3bak preview of a prefix of 100,000 versions (the listing served by the proxy)\n\n{}",
            s3bak::HEADER
        );
        eprintln!("s3bak: 100,000 versions");
        s3bak::measure(&config, &aws).await;
        println!();
    }
    targets.print();
}
