//! `ssmbak restore PATH/ T -R` of a tree where every parameter differs, behind a proxy that
//! throttles writes as SSM does (a rate limit per account): both tools must absorb it and leave
//! SSM as backed up.

use ssmbak_tests::emulator::{checktime, Clients};
use ssmbak_tests::fault_proxy::FaultProxy;

use crate::run::{run, Tool};
use crate::tree::Tree;
use crate::Config;

pub(crate) use crate::limits::PUT_TPS;

pub(crate) const HEADER: &str = "| parameters | tool | s | s/param | peak RSS MB | requests | requests/param | throttled (absorbed) | by operation | parameters left different |\n|---|---|---|---|---|---|---|---|---|---|";

/// Restores the tree with each tool; ours's seconds.
pub(crate) async fn compare(config: &Config, aws: &Clients, tree: &Tree) -> Option<f64> {
    let when = checktime(tree.after_round[tree.after_round.len() - 1]);
    let mut seconds = Vec::new();
    for tool in [Tool::Original, Tool::Ours] {
        if tool == Tool::Original && tree.n > config.original_max {
            continue;
        }
        tree.set_ssm(aws, |i| Some(format!("drifted {i}"))).await;
        let proxy = FaultProxy::start(&config.endpoint);
        crate::limits::model_ssm_limits(&proxy);
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
    seconds.last().copied()
}
