//! `ssmbak restore PATH/ T -R` of a tree where every parameter differs, behind a proxy that
//! throttles writes as SSM does (a rate limit per account): both tools must absorb it and leave
//! SSM as backed up.

use std::sync::Mutex;
use std::time::Instant;

use ssmbak_tests::emulator::{checktime, Clients};
use ssmbak_tests::fault_proxy::{Fault, FaultProxy};

use crate::run::{run, Tool};
use crate::tree::Tree;
use crate::Config;

/// The modelled write limit: SSM's default ("standard") throughput is 40 transactions per
/// second per account and Region, shared with reads (AWS documents the number for
/// GetParameter/GetParameters and says PutParameter falls under the same setting).
pub(crate) const PUT_TPS: f64 = 40.0;

/// A token bucket: `rate` per second, bursts up to `rate`.
struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: f64) -> Self {
        RateLimit {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// True when a request may pass now.
    fn admit(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(crate) const HEADER: &str = "| parameters | tool | s | s/param | peak RSS MB | requests | requests/param | throttled (absorbed) | by operation | parameters left different |\n|---|---|---|---|---|---|---|---|---|---|";

pub(crate) async fn compare(config: &Config, aws: &Clients, tree: &Tree) {
    let when = checktime(tree.after_round[tree.after_round.len() - 1]);
    let mut seconds = Vec::new();
    for tool in [Tool::Original, Tool::Ours] {
        if tool == Tool::Original && tree.n > config.original_max {
            continue;
        }
        tree.set_ssm(aws, |i| format!("drifted {i}")).await;
        let proxy = FaultProxy::start(&config.endpoint);
        let limit = Mutex::new(RateLimit::new(PUT_TPS));
        proxy.inject(usize::MAX, Fault::Throttle, move |seen| {
            seen.target.as_deref() == Some("AmazonSSM.PutParameter")
                && !limit.lock().expect("lock").admit()
        });
        let args = ["restore", &tree.path, &when, "-R", "-b", &tree.bucket];
        let m = run(tool, config.binary(tool), &args, &proxy);
        let left = tree.ssm_differences(aws).await;
        println!(
            "| {} | {} | {:.2} | {:.4} | {} | {} | {:.2} | {} | {} | {left} |",
            tree.n,
            tool.label(),
            m.seconds,
            m.seconds / tree.n as f64,
            m.peak_rss_mb(),
            m.total_requests(),
            m.total_requests() as f64 / tree.n as f64,
            proxy.injected(),
            m.by_operation(),
        );
        assert_eq!(left, 0, "{} left parameters unrestored", tool.label());
        seconds.push(m.seconds);
    }
    if let [original, ours] = seconds[..] {
        println!(
            "| | **original/ours** | **{:.1}x** | | | | | | | |",
            original / ours
        );
    }
}
