//! How many requests a preview makes, counted at a proxy in front of the emulator: a version
//! whose listed ETag is the MD5 of SSM's current value is not downloaded, and each key is read
//! with as few requests as its format allows. (`cargo xtask bench` measures the same at scale.)

use ssmbak_tests::cli::run_at;
use std::collections::BTreeMap;

use aws_sdk_ssm::types::ParameterType as SsmType;
use ssmbak_core::format::{BackupRecord, ParameterSnapshot, ParameterType};
use ssmbak_tests::emulator::{self, checktime, put_encoded, unique, Clients};
use ssmbak_tests::fault_proxy::{Fault, FaultProxy, Seen};

const KEYS: usize = 12;

struct Tree {
    aws: Clients,
    bucket: String,
    path: String,
}

impl Tree {
    async fn new() -> Option<Self> {
        let endpoint = emulator::required_endpoint();
        let aws = Clients::new(&endpoint).await;
        let bucket = unique("budget").to_ascii_lowercase();
        emulator::versioned_bucket(&aws.s3, &bucket).await;
        let path = format!("/{}/", unique("b"));
        Some(Tree { aws, bucket, path })
    }

    fn name(&self, i: usize) -> String {
        format!("{}p{i:02}", self.path)
    }

    async fn ssm_put(&self, i: usize, value: &str, description: &str) {
        self.aws
            .ssm
            .put_parameter()
            .name(self.name(i))
            .value(value)
            .r#type(SsmType::String)
            .description(description)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    /// `rounds` rounds of backups in our format, every key changed in each, a second apart:
    /// a time after each round.
    async fn backed_up_rounds(&self, rounds: usize) -> Vec<i64> {
        let mut after = Vec::new();
        for round in 0..rounds {
            let event_time = secs_now();
            for i in 0..KEYS {
                let record = BackupRecord::Value {
                    event_time,
                    snapshot: snapshot(self.name(i), &format!("v{i} r{round}"), "d"),
                };
                put_encoded(&self.aws.s3, &self.bucket, record.encode()).await;
            }
            after.push(after_a_second().await);
        }
        after
    }

    /// Runs `ssmbak preview PATH T -R` through a counting proxy: the changes by name, and the
    /// S3 requests by operation.
    fn preview(&self, at: i64) -> (BTreeMap<String, String>, BTreeMap<String, usize>) {
        let proxy = FaultProxy::start(&self.aws.endpoint);
        let when = checktime(at);
        let args = [
            "preview",
            &self.path,
            &when,
            "-R",
            "-b",
            &self.bucket,
            "--output",
            "json",
        ];
        let json = run_at(env!("CARGO_BIN_EXE_ssmbak"), &args, &proxy.endpoint).json();
        let changes = json["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default().to_owned();
                let action = c["action"].as_str().unwrap_or_default().to_owned();
                (name, action)
            })
            .collect();
        let s3 = proxy
            .counts()
            .into_iter()
            .filter(|(op, _)| op.starts_with("S3 "))
            .collect();
        (changes, s3)
    }
}

fn count(requests: &BTreeMap<String, usize>, op: &str) -> usize {
    requests.get(op).copied().unwrap_or(0)
}

fn snapshot(name: String, value: &str, description: &str) -> ParameterSnapshot {
    ParameterSnapshot::new(name, value, ParameterType::String).with_attributes(|a| {
        a.description = Some(description.to_owned());
        a.version = Some(1);
        a.tier = Some("Standard".to_owned());
        a.data_type = Some("text".to_owned());
    })
}

fn secs_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn after_a_second() -> i64 {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let t = secs_now();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn our_format_costs_one_request_per_key_and_unchanged_bodies_are_not_downloaded() {
    let Some(tree) = Tree::new().await else {
        return;
    };
    tree.backed_up_rounds(2).await;
    let at = after_a_second().await;
    // SSM: p00-p02 hold another value, p03 the same value with another description, the rest
    // what was backed up.
    for i in 0..KEYS {
        match i {
            0..=2 => tree.ssm_put(i, "changed", "d").await,
            3 => tree.ssm_put(i, &format!("v{i} r1"), "another").await,
            _ => tree.ssm_put(i, &format!("v{i} r1"), "d").await,
        }
    }

    let (changes, s3) = tree.preview(at);

    let expected: BTreeMap<String, String> = (0..=3)
        .map(|i| (tree.name(i), "update".to_owned()))
        .collect();
    assert_eq!(changes, expected);
    assert_eq!(count(&s3, "S3 GetObject"), 3, "{s3:?}");
    assert_eq!(count(&s3, "S3 HeadObject"), KEYS - 3, "{s3:?}");
    assert_eq!(count(&s3, "S3 GetObjectTagging"), 0, "{s3:?}");
}

/// `ssmbak diff T1 T2` lists the scope once for both points: one listing of its keys, one of
/// their index entries (`ssmbak_core::index`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_diff_between_two_points_lists_the_scope_once() {
    let Some(tree) = Tree::new().await else {
        return;
    };
    let points: Vec<String> = tree
        .backed_up_rounds(2)
        .await
        .into_iter()
        .map(checktime)
        .collect();
    let proxy = FaultProxy::start(&tree.aws.endpoint);
    let args = [
        "diff",
        &tree.path,
        &points[0],
        &points[1],
        "-R",
        "-b",
        &tree.bucket,
        "--output",
        "json",
    ];
    let json = run_at(env!("CARGO_BIN_EXE_ssmbak"), &args, &proxy.endpoint).json();
    let changed = json["changes"].as_array().map_or(0, Vec::len);
    assert_eq!(changed, KEYS, "{json}");
    let s3 = proxy.counts();
    // The scope's listing and its index's.
    assert_eq!(count(&s3, "S3 ListObjectVersions"), 2, "{s3:?}");
    // Each key at both points.
    assert_eq!(count(&s3, "S3 GetObject"), 2 * KEYS, "{s3:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn the_originals_format_skips_unchanged_bodies_too() {
    let Some(tree) = Tree::new().await else {
        return;
    };
    for round in 0..2 {
        let t = secs_now();
        for i in 0..KEYS {
            tree.aws
                .s3
                .put_object()
                .bucket(&tree.bucket)
                .key(tree.name(i))
                .tagging(format!(
                    "ssmbakTime={t}&ssmbakType=String&ssmbakDescription=d"
                ))
                .body(format!("v{i} r{round}").into_bytes().into())
                .send()
                .await
                .expect("put object");
        }
        after_a_second().await;
    }
    let at = after_a_second().await;
    for i in 0..KEYS {
        let value = if i < 3 {
            "changed".to_owned()
        } else {
            format!("v{i} r1")
        };
        tree.ssm_put(i, &value, "d").await;
    }

    let (changes, s3) = tree.preview(at);

    let expected: BTreeMap<String, String> = (0..3)
        .map(|i| (tree.name(i), "update".to_owned()))
        .collect();
    assert_eq!(changes, expected);
    assert_eq!(count(&s3, "S3 GetObject"), 3, "{s3:?}");
    // The time of each key's latest version is only in its tags: one tag request per key.
    // The first key read shows the bucket's format, so no key is asked for metadata it lacks.
    assert_eq!(count(&s3, "S3 GetObjectTagging"), KEYS, "{s3:?}");
    assert_eq!(count(&s3, "S3 HeadObject"), 0, "{s3:?}");
}

/// SSM's metadata is read only for parameters that may differ: a parameter whose current
/// version is the one backed up at T changed in no field `PutParameter` sets (every
/// `PutParameter` makes a new version), so only the others are described, by name, and the
/// bucket is not read for them at all: their index entries name SSM's version and the digest
/// of the tags SSM has. Each field changed alone is still found, tags too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn ssm_metadata_is_read_only_where_something_may_differ() {
    use ssmbak_tests::pipeline::{now_secs, Pipeline};
    let p = Pipeline::start().await;
    let name = |i: usize| p.name(&format!("meta/p{i:02}"));
    // Parameter i as first created; a test changes one field of it.
    let put = |i: usize| {
        p.aws
            .ssm
            .put_parameter()
            .name(name(i))
            .value(format!("v{i}"))
            .r#type(SsmType::String)
            .description("d")
            .allowed_pattern(".*")
            .overwrite(true)
    };
    for i in 0..KEYS {
        put(i).send().await.expect("put parameter");
        p.publish(&name(i), "Create", "String", now_secs()).await;
    }
    p.drain().await;
    let at = after_a_second().await;
    // One field changed on each of four parameters (each a new SSM version); the rest as
    // backed up.
    put(0).value("changed").send().await.expect("value");
    put(1)
        .description("another")
        .send()
        .await
        .expect("description");
    put(2)
        .allowed_pattern("^v.*")
        .send()
        .await
        .expect("pattern");
    put(3)
        .r#type(SsmType::StringList)
        .send()
        .await
        .expect("type");
    // A tag added: no new version, no event.
    p.aws
        .ssm
        .add_tags_to_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(name(4))
        .tags(
            aws_sdk_ssm::types::Tag::builder()
                .key("team")
                .value("x")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag");

    let proxy = FaultProxy::start(&p.aws.endpoint);
    let when = checktime(at);
    let path = format!("{}/meta/", p.prefix);
    let args = [
        "preview", &path, &when, "-R", "-b", &p.bucket, "--output", "json",
    ];
    let json = run_at(env!("CARGO_BIN_EXE_ssmbak"), &args, &proxy.endpoint).json();
    let differs: BTreeMap<String, serde_json::Value> = json["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["differs"].clone(),
            )
        })
        .collect();
    let expected: BTreeMap<String, serde_json::Value> = [
        (0, "value"),
        (1, "description"),
        (2, "allowed pattern"),
        (3, "type"),
        (4, "tags"),
    ]
    .into_iter()
    .map(|(i, field)| (name(i), serde_json::json!([field])))
    .collect();
    assert_eq!(differs, expected);
    let counts = proxy.counts();
    let ssm = |op: &str| count(&counts, &format!("AmazonSSM.{op}"));
    // Values by name, 10 a request (parts are multiples of 10), nothing by path. The four
    // that may differ fit one DescribeParameters page (moto: 10 a page; AWS: 50).
    assert_eq!(ssm("GetParameters"), KEYS.div_ceil(10), "{counts:?}");
    assert_eq!(ssm("GetParametersByPath"), 0, "{counts:?}");
    assert_eq!(ssm("DescribeParameters"), 1, "{counts:?}");
    // The backups recorded tags (none): SSM's are read for each parameter still there.
    assert_eq!(ssm("ListTagsForResource"), KEYS, "{counts:?}");
    // The bucket: one object read for each of the five that differ, none for the seven
    // whose version and tags the index entries prove the same as SSM's (issue 28 part 5).
    let reads: usize = ["S3 GetObject", "S3 HeadObject", "S3 GetObjectTagging"]
        .iter()
        .map(|op| count(&counts, op))
        .sum();
    assert_eq!(reads, 5, "{counts:?}");
}

/// A restore point in the past costs one S3 read per key whose state differs when the real
/// Lambda wrote the backups: the version in force at T. The index places every other version,
/// any of which could be a late-processed change from before T, without a read. One key's
/// second change is delivered late, after its third: that late version is in force after the
/// second round although it was written after the third, and nothing reads it to find that
/// out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_restore_point_in_the_past_reads_only_the_answer() {
    use ssmbak_tests::pipeline::{now_secs, Pipeline};
    let p = Pipeline::start().await;
    let name = |i: usize| p.name(&format!("past/p{i:02}"));
    let put = |i: usize, round: usize| {
        p.aws
            .ssm
            .put_parameter()
            .name(name(i))
            .value(format!("v{i} r{round}"))
            .r#type(SsmType::String)
            .overwrite(true)
            .send()
    };
    // The time after each round.
    let mut after = Vec::new();
    let mut late = 0;
    for round in 0..4 {
        for i in 0..KEYS {
            put(i, round).await.expect("put parameter");
            let t = now_secs();
            let operation = if round == 0 { "Create" } else { "Update" };
            match (i, round) {
                // Held back until after the next round.
                (0, 1) => late = t,
                _ => p.publish(&name(i), operation, "String", t).await,
            }
        }
        p.drain().await;
        if round == 2 {
            p.publish(&name(0), "Update", "String", late).await;
            p.drain().await;
        }
        after.push(after_a_second().await);
    }

    let path = format!("{}/past/", p.prefix);
    for round in [0, 1] {
        let proxy = FaultProxy::start(&p.aws.endpoint);
        let when = checktime(after[round]);
        let args = [
            "preview", &path, &when, "-R", "-b", &p.bucket, "--output", "json",
        ];
        let json = run_at(env!("CARGO_BIN_EXE_ssmbak"), &args, &proxy.endpoint).json();
        let wanted: BTreeMap<String, String> = json["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    c["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let expected: BTreeMap<String, String> = (0..KEYS)
            .map(|i| (name(i), format!("v{i} r{round}")))
            .collect();
        assert_eq!(wanted, expected, "after round {round}");
        // Every key's body at T differs from SSM's: one GetObject each, the answer, and
        // nothing more: the index (written by the Lambda beside each version) places every
        // version, the late one too, without reading it (issue 28, item 5: at most 1.05 reads
        // per parameter whose state differs).
        let counts = proxy.counts();
        assert_eq!(count(&counts, "S3 GetObject"), KEYS, "{counts:?}");
        assert_eq!(count(&counts, "S3 HeadObject"), 0, "{counts:?}");
        assert_eq!(count(&counts, "S3 GetObjectTagging"), 0, "{counts:?}");
    }
}

/// How far back [`an_hour_earlier`] moves SSM's modification times.
const SHIFT_SECS: f64 = 3600.0;

/// Every `LastModifiedDate` in an SSM answer an hour earlier: a parameter last modified an
/// hour ago, which moto (real time only) cannot hold.
fn an_hour_earlier(_: &Seen, body: &[u8]) -> Vec<u8> {
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    if let Some(params) = doc["Parameters"].as_array_mut() {
        for p in params {
            if let Some(t) = p["LastModifiedDate"].as_f64() {
                p["LastModifiedDate"] = serde_json::json!(t - SHIFT_SECS);
            }
        }
    }
    serde_json::to_vec(&doc).unwrap_or_else(|_| body.to_vec())
}

/// Issue 28, item 4: a version written long after its event (`seed-all` of a parameter last
/// modified an hour ago) is placed in time by its index entry, as every version our writer
/// puts: a restore point between its event and its writing reads only the answer. Without the
/// index (a bucket written before it, a reader not allowed to list it) the same preview reads
/// more and answers the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_version_written_late_is_placed_by_its_index_entry() {
    use ssmbak_core::index;
    let Some(tree) = Tree::new().await else {
        return;
    };
    tree.ssm_put(0, "prompt", "d").await;
    seed_one(&tree.aws, &tree.bucket, tree.name(0)).await;
    let seeded_by = secs_now();
    // A parameter modified an hour ago, seeded now.
    tree.ssm_put(1, "seeded", "d").await;
    after_a_second().await;
    let shifted = FaultProxy::start(&tree.aws.endpoint);
    shifted.inject(usize::MAX, Fault::Rewrite(an_hour_earlier), |s| {
        matches!(
            s.operation().as_str(),
            "AmazonSSM.GetParameterHistory" | "AmazonSSM.DescribeParameters"
        )
    });
    let through_shifted = Clients::new(&shifted.endpoint).await;
    seed_one(&through_shifted, &tree.bucket, tree.name(1)).await;

    let objects = tree
        .aws
        .s3
        .list_object_versions()
        .bucket(&tree.bucket)
        .prefix(index::scope_prefix(&tree.path))
        .send()
        .await
        .expect("list");
    let entries: Vec<&str> = objects.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let late = entries
        .iter()
        .filter_map(|k| index::parse_entry_key(k))
        .find(|(key, _)| *key == tree.name(1))
        .expect("the seeded version's entry");
    assert!(late.1.time <= seeded_by - 3000, "{late:?}");

    // Half an hour ago the seeded parameter held what it holds now (no change), and the
    // prompt one did not exist yet (deleted by a restore): the index places both versions,
    // and only the seeded one, the answer, is read (its metadata: SSM holds its value).
    let at = secs_now() - 1800;
    let deleted_only_0: BTreeMap<String, String> =
        BTreeMap::from([(tree.name(0), "delete".to_owned())]);
    let (changes, s3) = tree.preview(at);
    assert_eq!(changes, deleted_only_0);
    let reads = |s3: &BTreeMap<String, usize>| {
        ["S3 GetObject", "S3 HeadObject", "S3 GetObjectTagging"]
            .iter()
            .map(|op| count(s3, op))
            .sum::<usize>()
    };
    assert_eq!(reads(&s3), 1, "{s3:?}");

    // Without the index: the same answer, from more reads.
    for v in objects.versions() {
        tree.aws
            .s3
            .delete_object()
            .bucket(&tree.bucket)
            .set_key(v.key().map(str::to_owned))
            .set_version_id(v.version_id().map(str::to_owned))
            .send()
            .await
            .expect("delete an entry");
    }
    let (changes, s3) = tree.preview(at);
    assert_eq!(changes, deleted_only_0);
    assert!(reads(&s3) > 1, "{s3:?}");
}

/// `seed-all` of one parameter, through `aws`, into `bucket`.
async fn seed_one(aws: &Clients, bucket: &str, name: String) {
    use ssmbak_core::{backup::Backup, seed};
    // Listed as seed-all lists it: by path (the parameter's own).
    let path = name.rsplit_once('/').map(|(path, _)| path.to_owned());
    let backup = Backup::new(aws.ssm.clone(), aws.s3.clone(), bucket);
    let listed = seed::list(backup.parameters(), &Vec::from_iter(path))
        .await
        .expect("list parameters");
    let p = listed.iter().find(|p| p.name == name).expect("listed");
    let stored = seed::ensure(&backup, p, false).await;
    assert!(matches!(stored, Ok(Some(_))), "{stored:?}");
}
