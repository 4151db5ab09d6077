//! Tags and labels end to end: the real Lambda records them, `preview` shows what differs,
//! `restore` puts tags back (without a new version when only they differ) and re-attaches the
//! labels to the version it writes, `--no-tags` leaves them alone, `export`/`import` carry
//! them, and `grep --in tags` searches them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::{run, Run};
use ssmbak_tests::emulator::checktime;
use ssmbak_tests::pipeline::{now_secs, Pipeline};

fn ssmbak(args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_ssmbak"), args, &[])
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn sleep_secs(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

/// The change planned for `name` in a plan's JSON.
fn change<'a>(plan: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn restore_puts_tags_and_labels_back() {
    let p = Pipeline::start().await;
    let (a, b) = (p.name("app/a"), p.name("app/b"));
    let va = p.put(&a, "a1", ParameterType::String, None).await;
    p.aws
        .tag_parameter(&a, &[("team", "core"), ("env", "prod")])
        .await;
    p.aws.label_parameter(&a, va, &["stable"]).await;
    p.publish(&a, "Create", "String", now_secs()).await;
    let vb = p.put(&b, "b1", ParameterType::String, None).await;
    p.aws.tag_parameter(&b, &[("team", "core")]).await;
    p.publish(&b, "Create", "String", now_secs()).await;
    p.drain().await;
    sleep_secs(1.1).await;
    let then = checktime(now_secs());
    sleep_secs(1.1).await;

    // a: a new value and other tags; b: other tags only.
    p.change(&a, "a2", ParameterType::String, None, "Update")
        .await;
    p.aws.untag_parameter(&a, &["env"]).await;
    p.aws
        .tag_parameter(&a, &[("team", "web"), ("owner", "x")])
        .await;
    p.aws.untag_parameter(&b, &["team"]).await;
    p.aws.tag_parameter(&b, &[("temp", "1")]).await;
    p.drain().await;

    let path = format!("{}/app/", p.prefix);
    let bucket = ["-b", p.bucket.as_str()];
    let preview = |extra: &[&str]| {
        ssmbak(
            &[
                &["preview", &path, &then, "-R", "--output", "json"][..],
                extra,
                &bucket,
            ]
            .concat(),
        )
        .json()
    };
    let plan = preview(&[]);
    let ca = change(&plan, &a).expect("a changes");
    assert_eq!(ca["action"], "update");
    assert_eq!(ca["differs"], serde_json::json!(["value", "tags"]));
    assert_eq!(
        ca["tags_added"],
        serde_json::json!({"env": "prod", "team": "core"})
    );
    assert_eq!(ca["tags_removed"], serde_json::json!(["owner"]));
    assert_eq!(ca["labels"], serde_json::json!(["stable"]));
    let cb = change(&plan, &b).expect("b changes");
    assert_eq!(cb["differs"], serde_json::json!(["tags"]));
    assert_eq!(cb["tags_added"], serde_json::json!({"team": "core"}));
    assert_eq!(cb["tags_removed"], serde_json::json!(["temp"]));

    let table = ssmbak(&[&["preview", &path, &then, "-R"][..], &bucket].concat());
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .contains("tags (+env=prod, +team=core, -owner)"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("labels: stable"), "{}", table.stdout);

    // --no-tags: neither compared nor restored.
    let untagged = preview(&["--no-tags"]);
    assert_eq!(
        change(&untagged, &a).expect("a")["differs"],
        serde_json::json!(["value"])
    );
    assert!(change(&untagged, &b).is_none(), "{untagged}");

    let restored = ssmbak(&[&["restore", &path, &then, "-R"][..], &bucket].concat());
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    assert_eq!(
        p.aws.parameter_tags(&a).await,
        tags(&[("env", "prod"), ("team", "core")])
    );
    assert_eq!(p.aws.parameter_tags(&b).await, tags(&[("team", "core")]));
    assert_eq!(
        p.aws.parameter_version(&b).await,
        vb,
        "only b's tags differed: no new version"
    );
    let labels = p.aws.parameter_labels(&a).await;
    let (newest, newest_labels) = labels.last().expect("a's history");
    assert_eq!(*newest, va + 2, "{labels:?}");
    assert_eq!(newest_labels, &["stable".to_owned()], "{labels:?}");

    let again = preview(&[]);
    assert_eq!(again["changes"], serde_json::json!([]), "{again}");

    // The export carries the tags and labels, and an import writes them.
    let export = ssmbak(&[&["export", &path, &then, "-R"][..], &bucket].concat());
    let exported = export.json();
    let exported_a = exported["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|x| x["name"] == a.as_str())
        .expect("a exported");
    assert_eq!(
        exported_a["tags"],
        serde_json::json!({"env": "prod", "team": "core"})
    );
    let file = std::env::temp_dir().join(format!("ssmbak-tags-{}.json", std::process::id()));
    std::fs::write(&file, &export.stdout).expect("write export");
    let copy = format!("{}/copy/", p.prefix);
    let imported = ssmbak(&["import", file.to_str().expect("path"), "--to", &copy]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(imported.code, 0, "{}\n{}", imported.stdout, imported.stderr);
    let copy_a = format!("{copy}a");
    assert_eq!(
        p.aws.parameter_tags(&copy_a).await,
        tags(&[("env", "prod"), ("team", "core")])
    );
    assert_eq!(
        p.aws.parameter_labels(&copy_a).await,
        [(1, vec!["stable".to_owned()])]
    );

    // grep searches the tags each version recorded, as key=value.
    let found = ssmbak(
        &[
            &[
                "grep", "^owner=", &path, "-R", "--in", "tags", "--output", "json",
            ][..],
            &bucket,
        ]
        .concat(),
    )
    .json();
    let hits: Vec<(&str, &str)> = found["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default(),
                m["text"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(hits, [(a.as_str(), "owner=x")], "{found}");
}

/// Fifty tags live in a sidecar object; a restore reads it and puts every tag back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn fifty_tags_restore_whole_from_their_sidecar() {
    let p = Pipeline::start().await;
    let name = p.name("many");
    p.put(&name, "v1", ParameterType::String, None).await;
    let all: Vec<(String, String)> = (0..50)
        .map(|i| (format!("key{i:02}"), format!("{i:02}-{}", "y".repeat(200))))
        .collect();
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    p.aws.tag_parameter(&name, &pairs).await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.drain().await;
    sleep_secs(1.1).await;
    let then = checktime(now_secs());
    let removed: Vec<&str> = pairs[..10].iter().map(|(k, _)| *k).collect();
    p.aws.untag_parameter(&name, &removed).await;

    let bucket = ["-b", p.bucket.as_str()];
    let plan =
        ssmbak(&[&["preview", &name, &then, "--output", "json"][..], &bucket].concat()).json();
    let c = change(&plan, &name).expect("tags differ");
    assert_eq!(
        c["tags_added"].as_object().map(|t| t.len()),
        Some(10),
        "{plan}"
    );

    let restored = ssmbak(&[&["restore", &name, &then][..], &bucket].concat());
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    assert_eq!(
        p.aws.parameter_tags(&name).await,
        all.into_iter().collect::<BTreeMap<_, _>>()
    );
}
