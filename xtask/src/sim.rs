//! `cargo xtask sim --seeds N`: runs the delivery-order simulation (`ssmbak_core::sim`) over
//! many seeds, on every core, and prints the first failing seed's schedule, shrunk to the
//! deliveries and reconciles the failure needs, ready to add to `seeds_that_failed_once`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(clap::Args)]
pub(crate) struct SimArgs {
    /// How many schedules to run.
    #[arg(long, default_value_t = 100_000)]
    seeds: u64,
    /// The first seed (to go on where an earlier run stopped).
    #[arg(long, default_value_t = 0)]
    from: u64,
}

pub(crate) fn run(args: &SimArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let next = AtomicU64::new(args.from);
    let end = args.from.saturating_add(args.seeds);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                if let Err(f) = ssmbak_core::sim::run(seed) {
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(f);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|f| f.seed);
    let took = started.elapsed().as_secs_f64();
    match failures.first() {
        None => {
            println!(
                "sim: {} schedules (seeds {}..{end}) passed in {took:.1} s",
                args.seeds, args.from
            );
            Ok(())
        }
        Some(f) => {
            // The same failure from fewer deliveries and reconciles, to read and to keep.
            let shrunk = ssmbak_core::sim::shrink(&ssmbak_core::sim::Schedule::generate(f.seed));
            match ssmbak_core::sim::run_schedule(&shrunk) {
                Err(small) => println!("{small}"),
                Ok(()) => println!("{f}"),
            }
            println!(
                "keep it: add {} to `seeds_that_failed_once` in core/src/sim.rs once fixed",
                f.seed
            );
            anyhow::bail!(
                "{} of {} schedules failed (first: seed {}) in {took:.1} s",
                failures.len(),
                args.seeds,
                f.seed
            )
        }
    }
}
