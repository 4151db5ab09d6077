//! Running a tool as a user runs it, through the counting proxy, and reading what it cost.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use ssmbak_tests::emulator;
use ssmbak_tests::fault_proxy::FaultProxy;

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Original,
    Ours,
}

impl Tool {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Tool::Original => "original 0.5.2",
            Tool::Ours => "ours",
        }
    }
}

/// One timed run.
pub(crate) struct Measured {
    pub(crate) seconds: f64,
    pub(crate) peak_rss_kb: Option<u64>,
    /// CPU time the tool itself used (user + system), seconds: independent of the emulator.
    pub(crate) cpu_seconds: Option<f64>,
    pub(crate) stdout: String,
    pub(crate) requests: BTreeMap<String, usize>,
}

impl Measured {
    pub(crate) fn total_requests(&self) -> usize {
        self.requests.values().sum()
    }

    /// Requests by operation, as `op: n, ...`.
    pub(crate) fn by_operation(&self) -> String {
        let ops: Vec<String> = self
            .requests
            .iter()
            .map(|(op, k)| format!("{op}: {k}"))
            .collect();
        ops.join(", ")
    }

    pub(crate) fn cpu(&self) -> String {
        self.cpu_seconds
            .map_or("-".to_owned(), |s| format!("{s:.2}"))
    }

    pub(crate) fn peak_rss_mb(&self) -> String {
        self.peak_rss_kb
            .map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
    }
}

/// Runs `binary args...` (the CLI of `tool`) against `proxy` under `/usr/bin/time`.
pub(crate) fn run(tool: Tool, binary: &str, args: &[&str], proxy: &FaultProxy) -> Measured {
    let before = proxy.counts();
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M %U %S", binary]).args(args);
    match tool {
        Tool::Original => cmd
            .env("AWS_ENDPOINT", &proxy.endpoint)
            .env("AWS_DEFAULT_REGION", emulator::REGION),
        Tool::Ours => cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint),
    };
    let start = Instant::now();
    let out = cmd.output().expect("run the tool");
    let seconds = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{binary} {args:?} failed: {stderr}");
    let after = proxy.counts();
    // `/usr/bin/time` writes its line last: peak RSS KB, user s, system s.
    let usage: Vec<f64> = stderr
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Measured {
        seconds,
        peak_rss_kb: usage.first().map(|kb| *kb as u64),
        cpu_seconds: (usage.len() == 3).then(|| usage[1] + usage[2]),
        stdout,
        requests: after
            .iter()
            .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect(),
    }
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}
