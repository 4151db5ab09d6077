//! `cargo xtask test`: every test, against the emulator, as CI runs them.

use std::path::Path;

use crate::{build_lambda, least_privilege, lint, moto, util};

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

pub(crate) fn run(root: &Path, args: &TestArgs) -> anyhow::Result<()> {
    // The end-to-end tests drive the real release artifact; the arm64 one is checked too,
    // when the aarch64 standard library is there or rustup can add it (it needs the network).
    let zip = build_lambda::run(root, build_lambda::Arch::X86_64)?;
    let arm64 = match crate::zig::ensure_rust_target(build_lambda::Arch::Arm64.triple()) {
        Ok(()) => Some(build_lambda::run(root, build_lambda::Arch::Arm64)?),
        Err(e) => {
            eprintln!("arm64 artifact not built, its tests are skipped: {e:#}");
            None
        }
    };
    let moto = moto::start(root)?;
    eprintln!("moto on {} (log: {})", moto.endpoint, moto.log.display());
    // Every component records the AWS operations it calls, for the least-privilege check.
    let recording = root.join("target/recorded-operations.txt");
    let _ = std::fs::remove_file(&recording);
    // The end-to-end tests are #[ignore]d for plain `cargo test` (they need what is started
    // here); this runs them all. The harness's own arguments follow the first `--`.
    let (cargo_args, harness_args) = match args.cargo_test_args.iter().position(|a| a == "--") {
        Some(i) => (&args.cargo_test_args[..i], &args.cargo_test_args[i + 1..]),
        None => (&args.cargo_test_args[..], &[][..]),
    };
    let mut cmd = util::cargo();
    cmd.current_dir(root)
        .args(["test", "--workspace", "--locked"])
        .args(cargo_args)
        .arg("--")
        .arg("--include-ignored")
        .args(harness_args)
        .args(if arm64.is_none() {
            &["--skip", "arm64"][..]
        } else {
            &[]
        })
        .env("SSMBAK_TEST_ENDPOINT", &moto.endpoint)
        .env("SSMBAK_TEST_BOOTSTRAP_ZIP", &zip)
        .env(
            build_lambda::ARM64_ZIP_VAR,
            arm64.as_deref().unwrap_or(std::path::Path::new("")),
        )
        // Nothing in a test may reach real AWS: the SDK's own endpoint setting points at the
        // emulator too, credentials are fake and no profile or instance role is consulted.
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(ssmbak_core::record::RECORD_VAR, &recording);
    let result = util::run(&mut cmd);
    drop(moto);
    result?;
    // With a test filter, not every component ran.
    if args.cargo_test_args.is_empty() {
        least_privilege::check(root, &recording)?;
        lint::check(root)?;
    }
    Ok(())
}
