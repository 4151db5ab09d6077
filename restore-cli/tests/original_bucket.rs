//! The original ssmbak 0.5.2's behaviour (its test suite, spec §7.2) on buckets written in
//! its format: objects with only its three tags (form-encoded, `+` for a space) and plain delete
//! markers. Runs the real `ssmbak` binary against moto.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::run;
use ssmbak_tests::emulator::{self, checktime as iso, unique, Clients};
use ssmbak_tests::pipeline::now_secs;

struct Fixture {
    aws: Clients,
    bucket: String,
    prefix: String,
    region: String,
}

impl Fixture {
    async fn new(region: &str) -> Option<Self> {
        let endpoint = emulator::required_endpoint();
        let aws = Clients::new_in(&endpoint, region).await;
        let bucket = unique("orig").to_ascii_lowercase();
        let mut create = aws.s3.create_bucket().bucket(&bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        create.send().await.expect("create bucket");
        ssmbak_tests::emulator::enable_versioning(&aws.s3, &bucket).await;
        Some(Fixture {
            aws,
            prefix: format!("/{}", unique("o")),
            bucket,
            region: region.to_owned(),
        })
    }

    fn name(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.prefix)
    }

    /// What the original's Lambda writes for a Create/Update (urlencode: `+` for a space).
    async fn backup(
        &self,
        name: &str,
        value: &str,
        ty: &str,
        time: i64,
        description: Option<&str>,
    ) {
        let mut tagging = format!("ssmbakTime={time}&ssmbakType={ty}");
        if let Some(d) = description {
            tagging.push_str(&format!("&ssmbakDescription={}", d.replace(' ', "+")));
        }
        self.aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(name)
            .tagging(tagging)
            .body(value.as_bytes().to_vec().into())
            .send()
            .await
            .expect("put object");
    }

    /// What the original's Lambda writes for a Delete: a plain delete marker.
    async fn backup_delete(&self, name: &str) {
        self.aws
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
            .expect("delete object");
    }

    async fn put(&self, name: &str, value: &str, ty: ParameterType, description: Option<&str>) {
        self.aws.put_parameter(name, value, ty, description).await;
    }

    fn ssmbak(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let common = ["-b", &self.bucket, "-r", &self.region, "--output", "json"];
        let out = run(env!("CARGO_BIN_EXE_ssmbak"), &[args, &common].concat(), &[]);
        let json = serde_json::from_str(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.code, json, out.stderr)
    }

    /// `(name leaf, action)` of a preview, in order.
    fn preview(&self, path: &str, at: i64, recursive: bool) -> Vec<(String, String)> {
        let when = iso(at);
        let mut args = vec!["preview", path, when.as_str()];
        if recursive {
            args.push("-R");
        }
        let (code, json, stderr) = self.ssmbak(&args);
        assert_eq!(code, 0, "{stderr}");
        json["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default();
                (
                    name.strip_prefix(&format!("{}/", self.prefix))
                        .unwrap_or(name)
                        .to_owned(),
                    c["action"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

macro_rules! fixture {
    ($region:expr) => {
        match Fixture::new($region).await {
            Some(f) => f,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn the_original_preview_rules_on_an_original_bucket() {
    let f = fixture!("us-east-1");
    let t0 = now_secs() - 3600;
    let desc = Some("fancy description");
    // One parameter per rule of the original's suite.
    for (leaf, value, ty) in [
        ("unchanged", "same", "String"),
        ("value", "old", "String"),
        ("type", "v", "String"),
        ("description", "v", "String"),
        ("deleted-now", "v", "String"),
        ("secure-same", "s3cret", "SecureString"),
        ("secure-changed", "s3cret", "SecureString"),
        ("padded", "  padded  ", "String"),
        ("deep/child", "c", "String"),
    ] {
        f.backup(&f.name(leaf), value, ty, t0, desc).await;
    }
    // Deleted at checktime, still deleted; deleted at checktime, re-created since.
    for leaf in ["gone", "recreated"] {
        f.backup(&f.name(leaf), "x", "String", t0 - 60, desc).await;
        f.backup_delete(&f.name(leaf)).await;
    }
    f.put(&f.name("unchanged"), "same", ParameterType::String, desc)
        .await;
    f.put(&f.name("value"), "new", ParameterType::String, desc)
        .await;
    f.put(&f.name("type"), "v", ParameterType::StringList, desc)
        .await;
    f.put(
        &f.name("description"),
        "v",
        ParameterType::String,
        Some("another"),
    )
    .await;
    f.put(
        &f.name("secure-same"),
        "s3cret",
        ParameterType::SecureString,
        desc,
    )
    .await;
    f.put(
        &f.name("secure-changed"),
        "other",
        ParameterType::SecureString,
        desc,
    )
    .await;
    f.put(&f.name("padded"), "  padded  ", ParameterType::String, desc)
        .await;
    f.put(
        &f.name("deep/child"),
        "changed",
        ParameterType::String,
        desc,
    )
    .await;
    f.put(&f.name("recreated"), "y", ParameterType::String, None)
        .await;
    f.put(
        &f.name("untracked"),
        "never backed up",
        ParameterType::String,
        None,
    )
    .await;

    // The delete markers were written now, so ask after them.
    let at = now_secs() + 1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let path = format!("{}/", f.prefix);
    assert_eq!(
        f.preview(&path, at, false),
        pairs(&[
            ("deleted-now", "create"),
            ("description", "update"),
            ("recreated", "delete"),
            ("secure-changed", "update"),
            ("type", "update"),
            ("value", "update"),
        ]),
        "unchanged, whitespace-exact, untracked and still-deleted parameters are left out; no -R: no deep/"
    );
    let recursive = f.preview(&path, at, true);
    assert!(
        recursive.contains(&("deep/child".to_owned(), "update".to_owned())),
        "{recursive:?}"
    );

    // Restoring makes the preview empty, and restores exactly.
    let when = iso(at);
    let (code, json, stderr) = f.ssmbak(&["restore", &path, &when, "-R"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["summary"]["failed"], 0, "{json}");
    assert_eq!(
        f.aws.parameter_value(&f.name("value")).await.as_deref(),
        Some("old")
    );
    assert_eq!(
        f.aws
            .parameter_value(&f.name("deleted-now"))
            .await
            .as_deref(),
        Some("v")
    );
    assert_eq!(f.aws.parameter_value(&f.name("recreated")).await, None);
    assert_eq!(
        f.aws.parameter_value(&f.name("untracked")).await.as_deref(),
        Some("never backed up")
    );
    assert_eq!(f.preview(&path, at, true), pairs(&[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn exact_time_match_and_before_the_first_backup() {
    let f = fixture!("us-east-1");
    let key = f.name("key");
    let t = now_secs() - 600;
    f.backup(&key, "initial", "String", t, None).await;
    // Inclusive: at the event second the backup counts.
    assert_eq!(f.preview(&key, t, false), pairs(&[("key", "create")]));
    // Before any backup, a tracked parameter that exists now did not exist then: delete.
    f.put(&key, "initial", ParameterType::String, None).await;
    assert_eq!(f.preview(&key, t - 1, false), pairs(&[("key", "delete")]));
    assert_eq!(f.preview(&key, t, false), pairs(&[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn the_two_delete_marker_bugs_stay_fixed() {
    let f = fixture!("us-east-1");
    // test_deletemarker_bug: created, deleted, re-created: each point reads as it was.
    let key = f.name("recreated");
    let base = now_secs();
    f.backup(&key, "initial", "String", base - 100, None).await;
    f.backup_delete(&key).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t2 = now_secs();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    f.backup(&key, "recreated", "String", now_secs(), None)
        .await;
    f.put(&key, "current-modified", ParameterType::String, None)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t3 = now_secs();
    let at = |t: i64| {
        let when = iso(t);
        let (code, json, stderr) = f.ssmbak(&["preview", &key, &when]);
        assert_eq!(code, 0, "{stderr}");
        (
            json["changes"][0]["action"].as_str().map(str::to_owned),
            json["changes"][0]["value"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(
        at(base - 50),
        (Some("update".to_owned()), Some("initial".to_owned()))
    );
    assert_eq!(at(t2), (Some("delete".to_owned()), None));
    assert_eq!(
        at(t3),
        (Some("update".to_owned()), Some("recreated".to_owned()))
    );

    // test_stale_deletemarker_bug: a backup with a later event time written before a delete
    // marker: the marker (LastModified now) must not hide it.
    let stale = f.name("stale");
    let t_new = now_secs() + 20;
    f.backup(&stale, "new", "String", t_new, None).await;
    f.backup_delete(&stale).await;
    let query = iso(now_secs() + 30);
    let (code, json, stderr) = f.ssmbak(&["preview", &stale, &query]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["changes"][0]["action"], "create", "{json}");
    assert_eq!(json["changes"][0]["value"], "new", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn regions_are_isolated() {
    let home = fixture!("us-east-1");
    let away = fixture!("eu-west-1");
    let key = away.name("param");
    away.backup(&key, "from eu", "String", now_secs() - 60, None)
        .await;
    // In eu-west-1 the parameter is missing: one change; the home region's bucket knows nothing.
    assert_eq!(
        away.preview(&key, now_secs(), false),
        pairs(&[("param", "create")])
    );
    let (code, json, stderr) = home.ssmbak(&["preview", &key, "now"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["changes"], serde_json::json!([]));
    let when = iso(now_secs());
    let (code, _, stderr) = away.ssmbak(&["restore", &key, &when]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        away.aws.parameter_value(&key).await.as_deref(),
        Some("from eu")
    );
    assert_eq!(
        home.aws.parameter_value(&key).await,
        None,
        "nothing written in the home region"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_value_over_4_kb_restores_as_advanced() {
    let f = fixture!("us-east-1");
    let key = f.name("big");
    let big = "x".repeat(5000);
    f.backup(&key, &big, "String", now_secs() - 60, None).await;
    let when = iso(now_secs());
    let (code, json, stderr) = f.ssmbak(&["restore", &key, &when]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["summary"]["created"], 1, "{json}");
    assert_eq!(
        f.aws.parameter_value(&key).await.map(|v| v.len()),
        Some(5000)
    );
    let described = ssmbak_tests::emulator::describe_parameter(&f.aws.ssm, &key).await;
    assert_eq!(described.tier().map(|t| t.as_str()), Some("Advanced"));
}
