//! `ssmbak grep` end to end, against backups the real Lambda wrote: every version in scope,
//! deleted parameters included, secrets reported but masked, and only the versions in the time
//! window read.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::{run_at, Run};
use ssmbak_tests::emulator::checktime;
use ssmbak_tests::fault_proxy::FaultProxy;
use ssmbak_tests::pipeline::{now_secs, Pipeline};

async fn sleep_secs(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

async fn change(p: &Pipeline, name: &str, value: &str, ty: ParameterType, description: &str) {
    p.change(name, value, ty, Some(description), "Update").await;
}

/// `(name leaf, field, text)` of every match, in order.
fn matches(run: &Run, prefix: &str) -> Vec<(String, String, String)> {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    json["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            let name = text("name");
            (
                name.trim_start_matches(prefix).to_owned(),
                text("field"),
                text("text"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn finds_every_version_that_ever_matched() {
    let p = Pipeline::start().await;
    let secret = ssmbak_tests::sentinel::secret();
    let (db, token, cache) = (
        p.name("app/db"),
        p.name("app/token"),
        p.name("app/deep/cache"),
    );
    change(&p, &db, "db.old.internal", ParameterType::String, "primary").await;
    change(
        &p,
        &token,
        &format!("db.old.internal:{secret}"),
        ParameterType::SecureString,
        "t",
    )
    .await;
    change(
        &p,
        &cache,
        "redis",
        ParameterType::String,
        "next to db.old.internal",
    )
    .await;
    p.drain().await;
    sleep_secs(1.1).await;
    let t_mid = now_secs();
    sleep_secs(1.1).await;
    change(&p, &db, "db.new.internal", ParameterType::String, "primary").await;
    p.delete(&token).await;
    p.publish(&token, "Delete", "SecureString", now_secs())
        .await;
    p.drain().await;

    let proxy = FaultProxy::start(&p.aws.endpoint);
    let ssmbak = env!("CARGO_BIN_EXE_ssmbak");
    let path = format!("{}/app/", p.prefix);
    let prefix = format!("{}/", p.prefix);
    let grep = |extra: &[&str]| {
        let mut args = vec![
            "grep",
            "db\\.old",
            &path,
            "-b",
            p.bucket.as_str(),
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        run_at(ssmbak, &args, &proxy.endpoint)
    };

    // Values at all depths, the deleted secret included, its value masked.
    let all = grep(&["-R"]);
    assert_eq!(
        matches(&all, &prefix),
        [
            (
                "app/db".to_owned(),
                "value".to_owned(),
                "db.old.internal".to_owned()
            ),
            (
                "app/token".to_owned(),
                "value".to_owned(),
                "(secret hidden)".to_owned()
            ),
        ],
        "{}",
        all.stdout
    );
    assert!(!all.stdout.contains(&secret) && !all.stderr.contains(&secret));
    // Descriptions too, when asked; direct children only without -R.
    let described = grep(&["-R", "--in", "value,description"]);
    assert!(
        matches(&described, &prefix).contains(&(
            "app/deep/cache".to_owned(),
            "description".to_owned(),
            "next to db.old.internal".to_owned()
        )),
        "{}",
        described.stdout
    );
    let shallow = grep(&["--in", "description"]);
    assert_eq!(matches(&shallow, &prefix), [], "{}", shallow.stdout);
    // With the secret shown on request.
    let shown = grep(&["-R", "--show-secrets"]);
    assert!(shown.stdout.contains(&secret), "{}", shown.stdout);

    // From t_mid on, nothing matches, and only the versions written since are read: the new db
    // value and the secret's tombstone (one GetObject each), never the three older versions.
    let before = proxy.counts().get("S3 GetObject").copied().unwrap_or(0);
    let since = grep(&["-R", "--since", &checktime(t_mid)]);
    assert_eq!(matches(&since, &prefix), [], "{}", since.stdout);
    let read = proxy.counts().get("S3 GetObject").copied().unwrap_or(0) - before;
    assert_eq!(read, 2, "{:?}", proxy.counts());
}
