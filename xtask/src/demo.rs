//! `cargo xtask demo`: the whole pipeline on a fresh machine with no AWS account. Starts the
//! emulator, deploys the stack into it with the same code as `deploy`, then hands over to the
//! `ssmbak-demo` program, which changes parameters, backs them up through the real Lambda
//! binary and restores the tree with the real `ssmbak`.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::deploy::{self, DeployArgs};
use crate::{build_lambda, moto, stack, util};

const STACK: &str = "ssmbak-demo";

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let zip = build_lambda::run(root, build_lambda::Arch::X86_64)?;
    util::run(util::cargo().current_dir(root).args([
        "build",
        "--quiet",
        "--locked",
        "-p",
        "ssmbak",
        "--bin",
        "ssmbak",
        "-p",
        "ssmbak-tests",
        "--bin",
        "ssmbak-demo",
    ]))?;
    let moto = moto::start(root)?;
    println!(
        "== The local emulator (moto) is listening on {}",
        moto.endpoint
    );
    // Everything below talks to the emulator only.
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("SSMBAK_TEST_ENDPOINT", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_PROFILE");
    std::env::remove_var("AWS_SESSION_TOKEN");

    println!(
        "\n== cargo xtask data {STACK} --do-it: the administrator's data stack (bucket, key, role)"
    );
    let data_template =
        std::fs::read_to_string(root.join("cfn/data.yml")).context("cfn/data.yml")?;
    let data_args = crate::data::DataArgs::applying(STACK, 300);
    crate::aws::block_on(async {
        let aws = crate::aws::Aws::connect(None, "data-admin").await?;
        crate::data::apply(&aws, &data_template, &data_args).await
    })??;

    println!("\n== cargo xtask deploy {STACK}: validate, upload the Lambda zip, create the stack");
    let template =
        std::fs::read_to_string(root.join("cfn/template.yml")).context("cfn/template.yml")?;
    let bytes = std::fs::read(&zip).with_context(|| format!("reading {}", zip.display()))?;
    // moto matches every put_events against a schedule rule too, and cannot invoke its Lambda
    // target: the demo stack goes without the scheduled reconcile (the tests show it).
    let args = DeployArgs {
        timeout: 300,
        ..DeployArgs::with_params(STACK, &[("ReconcileSchedule", "")])
    };
    crate::validate::run(root)?;
    let outputs = crate::aws::block_on(async {
        deploy::deploy(&args, &template, &bytes).await?;
        let aws = crate::aws::Aws::connect(None, "deploy").await?;
        stack::outputs(&aws, STACK).await
    })??;
    let output = |k: &str| {
        outputs
            .get(k)
            .cloned()
            .with_context(|| format!("the stack has no {k} output"))
    };

    let status = Command::new(root.join("target/debug/ssmbak-demo"))
        .env("SSMBAK_DEMO_BUCKET", output("Bucketname")?)
        .env("SSMBAK_DEMO_QUEUE_URL", output("QUrl")?)
        .env("SSMBAK_DEMO_QUEUE_ARN", output("QArn")?)
        .env("SSMBAK_DEMO_SSMBAK", root.join("target/debug/ssmbak"))
        .env("SSMBAK_TEST_BOOTSTRAP_ZIP", &zip)
        .status()
        .context("cannot start target/debug/ssmbak-demo")?;
    drop(moto);
    anyhow::ensure!(status.success(), "the demo failed: {status}");
    Ok(())
}
