//! `cargo xtask bench`: ours against the original ssmbak 0.5.2, side by side, on the local
//! emulator (raw, and behind a proxy that adds a fixed round trip to every request).
//!
//! Installs the original from PyPI into `target/original-venv`, builds our release `ssmbak`, `s3bak` and
//! Lambda zip, starts moto, runs the `ssmbak-bench` program and writes its tables to
//! `target/bench.md`. Tuned by `SSMBAK_BENCH_SIZES` (default `100,1000`; 10000 is opt-in),
//! `SSMBAK_BENCH_RUNS` (3, ours), `SSMBAK_BENCH_ORIGINAL_RUNS` (1), `SSMBAK_BENCH_ORIGINAL_MAX`
//! (1000: the largest tree the original is run on), `SSMBAK_BENCH_DELAY_MS` (20),
//! `SSMBAK_BENCH_LAMBDA_RECORDS` (500), `SSMBAK_BENCH_PARTS` (`preview,restore,lambda,s3bak`) and
//! `SSMBAK_BENCH_POINTS` (`end,middle`). First, with no emulator, `core/benches/selection.rs`:
//! the page merge and point-in-time selection over a million listed versions.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::{build_lambda, moto, util};

/// The peer, pinned.
const ORIGINAL: &str = "ssmbak==0.5.2";

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let venv = root.join("target/original-venv");
    let original = venv.join("bin/ssmbak");
    if !original.exists() {
        util::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        util::run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", ORIGINAL]))?;
    }
    util::run(util::cargo().current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "ssmbak",
        "--bin",
        "ssmbak",
        "--bin",
        "s3bak",
    ]))?;
    util::run(util::cargo().current_dir(root).args([
        "build",
        "--quiet",
        "--locked",
        "-p",
        "ssmbak-tests",
        "--bin",
        "ssmbak-bench",
    ]))?;
    // The selection path at a million versions, in-process (no emulator; release build).
    let selection = util::cargo()
        .current_dir(root)
        .args([
            "bench",
            "--quiet",
            "--locked",
            "-p",
            "ssmbak-core",
            "--bench",
            "selection",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run the selection benchmark")?;
    anyhow::ensure!(
        selection.status.success(),
        "the selection benchmark failed: {}",
        selection.status
    );
    let zip = build_lambda::run(root, build_lambda::Arch::X86_64)?;
    let moto = moto::start(root)?;
    let output = Command::new(root.join("target/debug/ssmbak-bench"))
        .env("SSMBAK_TEST_ENDPOINT", &moto.endpoint)
        .env("SSMBAK_BENCH_OURS", root.join("target/release/ssmbak"))
        .env("SSMBAK_BENCH_ORIGINAL", &original)
        .env("SSMBAK_BENCH_ORIGINAL_PYTHON", venv.join("bin/python"))
        .env("SSMBAK_TEST_BOOTSTRAP_ZIP", &zip)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run ssmbak-bench")?;
    drop(moto);
    let table = format!(
        "{}{}",
        String::from_utf8_lossy(&selection.stdout),
        String::from_utf8_lossy(&output.stdout)
    );
    print!("{table}");
    std::fs::write(root.join("target/bench.md"), table.as_bytes())?;
    anyhow::ensure!(
        output.status.success(),
        "the benchmark failed: {}",
        output.status
    );
    Ok(())
}
