//! A SecureString value never appears in any output unless asked for: the Lambda's logs at
//! debug level, and every `ssmbak` command, table and JSON, verbose or not.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::run;
use ssmbak_tests::pipeline::{now_secs, Pipeline};

fn output(args: &[&str], bucket: &str) -> String {
    let args = [args, &["-b", bucket]].concat();
    let out = run(env!("CARGO_BIN_EXE_ssmbak"), &args, &[]);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    format!("{}{}", out.stdout, out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn no_command_shows_a_secret_unless_asked() {
    let p = Pipeline::start().await;
    let name = p.name("db/password");
    let secret = ssmbak_tests::sentinel::secret();
    let newer = ssmbak_tests::sentinel::secret();
    p.put(
        &name,
        &secret,
        ParameterType::SecureString,
        Some("the password"),
    )
    .await;
    p.publish(&name, "Create", "SecureString", now_secs()).await;
    p.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = ssmbak_tests::emulator::checktime(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.put(
        &name,
        &newer,
        ParameterType::SecureString,
        Some("the password"),
    )
    .await;
    p.publish(&name, "Update", "SecureString", now_secs()).await;
    p.drain().await;

    let path = format!("{}/", p.prefix);
    let mut all = p.logs();
    for args in [
        vec!["preview", path.as_str(), then.as_str(), "-R", "-v"],
        vec![
            "preview",
            path.as_str(),
            then.as_str(),
            "-R",
            "--output",
            "json",
        ],
        vec!["diff", path.as_str(), then.as_str(), "-R"],
        vec![
            "diff",
            path.as_str(),
            then.as_str(),
            "-R",
            "--output",
            "json",
        ],
        vec!["log", name.as_str()],
        vec!["log", name.as_str(), "--output", "json", "-v"],
        vec![
            "restore",
            path.as_str(),
            then.as_str(),
            "-R",
            "--output",
            "json",
        ],
        vec!["restore", path.as_str(), "now", "-R", "-v"],
    ] {
        all.push_str(&output(&args, &p.bucket));
    }
    assert!(all.contains(&name), "the outputs name the parameter");
    assert!(
        !all.contains(&secret) && !all.contains(&newer),
        "a SecureString value leaked:\n{all}"
    );

    // Asked for, it is shown.
    let shown = output(&["log", &name, "--show-secrets"], &p.bucket);
    assert!(shown.contains(&secret) && shown.contains(&newer), "{shown}");
}
