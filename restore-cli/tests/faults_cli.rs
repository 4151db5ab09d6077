//! Restores under faults, through the loopback fault proxy: throttling is absorbed, a hard
//! failure is reported by name, and a re-run finishes the job.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::bucket_owner::{OwnerCheck, EMULATOR_ACCOUNT, OTHER_ACCOUNT};
use ssmbak_tests::cli::run_at as run;
use ssmbak_tests::emulator::{self, checktime as iso, unique, Clients};
use ssmbak_tests::fault_proxy::{Fault, FaultProxy};
use ssmbak_tests::pipeline::{now_secs, Pipeline};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn ssmbak_restore_absorbs_throttling_and_reports_a_hard_failure_by_name() {
    let p = Pipeline::start().await;
    let (names, good) = good_then_bad(&p, &["a", "b", "c", "d"]).await;
    let proxy = FaultProxy::start(&p.aws.endpoint);
    proxy.inject(3, Fault::Throttle, |s| {
        s.operation() == "AmazonSSM.PutParameter"
    });
    let refused = names[2].clone();
    proxy.inject(1, Fault::Denied, move |s| {
        s.operation() == "AmazonSSM.PutParameter" && s.body.contains(&refused)
    });

    let path = format!("{}/", p.prefix);
    let ssmbak = env!("CARGO_BIN_EXE_ssmbak");
    let first = run(
        ssmbak,
        &["restore", &path, &good, "-b", &p.bucket, "--keep-going"],
        &proxy.endpoint,
    );
    assert_eq!(
        first.code, 3,
        "only part applied\n{}\n{}",
        first.stdout, first.stderr
    );
    assert!(
        first.stderr.contains(&names[2]) && first.stderr.contains("AccessDenied"),
        "{}",
        first.stderr
    );
    assert!(
        first.stdout.contains("updated 3") && first.stdout.contains("failed 1"),
        "{}",
        first.stdout
    );
    assert!(
        proxy
            .counts()
            .get("AmazonSSM.PutParameter")
            .copied()
            .unwrap_or(0)
            >= 7,
        "{:?}",
        proxy.counts()
    );

    let again = run(
        ssmbak,
        &["restore", &path, &good, "-b", &p.bucket],
        &proxy.endpoint,
    );
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("updated 1") && again.stdout.contains("unchanged 3"),
        "{}",
        again.stdout
    );
    for n in &names {
        let v = p.aws.parameter_value(n).await;
        assert_eq!(v.as_deref(), Some("good"), "{n}");
    }
}

/// Parameters backed up as "good", then changed to "bad" beside the backup: their names, and
/// a restore point when they were good.
async fn good_then_bad(p: &Pipeline, letters: &[&str]) -> (Vec<String>, String) {
    let names: Vec<String> = letters.iter().map(|l| p.name(l)).collect();
    for n in &names {
        p.put(n, "good", ParameterType::String, None).await;
        p.publish(n, "Create", "String", now_secs()).await;
    }
    p.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let good = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for n in &names {
        p.put(n, "bad", ParameterType::String, None).await;
    }
    (names, good)
}

/// SSM refuses one write for its rate every time: `ssmbak` sends it again at its pace, ten
/// times in all and no more (the SDK adds no retries of its own beside the pace, which would
/// make 100), then reports that key with SSM's error on one line, and writes the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_write_refused_for_the_rate_every_time_is_sent_ten_times_then_reported() {
    let p = Pipeline::start().await;
    let (names, good) = good_then_bad(&p, &["a", "b", "c"]).await;
    let proxy = FaultProxy::start(&p.aws.endpoint);
    let refused = names[1].clone();
    proxy.inject(usize::MAX, Fault::Throttle, move |s| {
        s.operation() == "AmazonSSM.PutParameter" && s.body.contains(&refused)
    });
    let path = format!("{}/", p.prefix);
    let ssmbak = env!("CARGO_BIN_EXE_ssmbak");
    let out = run(
        ssmbak,
        &["restore", &path, &good, "-b", &p.bucket, "--keep-going"],
        &proxy.endpoint,
    );
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(proxy.injected(), 10, "{:?}", proxy.counts());
    let errors: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].contains(&names[1]) && errors[0].contains("ThrottlingException"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("updated 2") && out.stdout.contains("failed 1"),
        "{}",
        out.stdout
    );
    assert_eq!(
        p.aws.parameter_value(&names[1]).await.as_deref(),
        Some("bad")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn an_interrupted_s3bak_restore_is_finished_by_a_rerun() {
    let endpoint = emulator::required_endpoint();
    let aws = Clients::new(&endpoint).await;
    let bucket = unique("s3bak-int").to_ascii_lowercase();
    ssmbak_tests::emulator::versioned_bucket(&aws.s3, &bucket).await;
    let keys = ["t/1", "t/2", "t/3", "t/4"];
    for k in keys {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(k)
            .body(b"v1".to_vec().into())
            .send()
            .await
            .expect("put");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for k in keys {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(k)
            .body(b"v2".to_vec().into())
            .send()
            .await
            .expect("put");
    }
    let proxy = FaultProxy::start(&endpoint);
    // The third copy is refused: without --keep-going the run stops there.
    let copies = std::sync::atomic::AtomicUsize::new(0);
    proxy.inject(1, Fault::Denied, move |s| {
        s.target.is_none()
            && s.method == "PUT"
            && copies.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2
    });
    let s3bak = env!("CARGO_BIN_EXE_s3bak");
    let args = [
        "restore",
        "t/",
        then.as_str(),
        "-b",
        bucket.as_str(),
        "--concurrency",
        "1",
    ];
    let first = run(s3bak, &args, &proxy.endpoint);
    assert_eq!(first.code, 3, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("copied 2") && first.stdout.contains("not attempted 1"),
        "{}",
        first.stdout
    );
    let again = run(s3bak, &args, &proxy.endpoint);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("copied 2, deleted 0, unchanged 2"),
        "what was done is left alone: {}",
        again.stdout
    );
    for k in keys {
        let body = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key(k)
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body");
        assert_eq!(&body.into_bytes()[..], b"v1", "{k}");
    }
}

/// SSM cannot turn an Advanced parameter back into Standard ("you can't revert an advanced
/// parameter to a standard parameter", SSM User Guide, "Managing parameter tiers"). moto takes
/// the downgrade, so the proxy answers it as AWS refuses a request it will not take. A backup
/// recorded as Standard, restored over a parameter that is Advanced now, keeps Advanced and
/// says so, instead of failing the same way on every re-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_restore_keeps_an_advanced_parameter_advanced() {
    let p = Pipeline::start().await;
    let name = p.name("tiered");
    p.put(&name, "standard value", ParameterType::String, None)
        .await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.aws
        .ssm
        .put_parameter()
        .name(&name)
        .value("advanced value")
        .r#type(ParameterType::String)
        .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
        .overwrite(true)
        .send()
        .await
        .expect("make it Advanced");
    let proxy = FaultProxy::start(&p.aws.endpoint);
    let downgrade = name.clone();
    proxy.inject(
        usize::MAX,
        Fault::Invalid("You can't change the tier of an advanced parameter to standard"),
        move |s| {
            s.operation() == "AmazonSSM.PutParameter"
                && s.body.contains(&downgrade)
                && s.body.contains(r#""Tier":"Standard""#)
        },
    );

    let ssmbak = env!("CARGO_BIN_EXE_ssmbak");
    let preview = run(
        ssmbak,
        &["preview", &name, &then, "-b", &p.bucket, "--output", "json"],
        &proxy.endpoint,
    );
    assert_eq!(preview.code, 0, "{}", preview.stderr);
    let json: serde_json::Value = serde_json::from_str(&preview.stdout).expect("JSON");
    assert_eq!(json["changes"][0]["action"], "update", "{json}");
    assert!(
        json["changes"][0]["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("stays Advanced")),
        "{json}"
    );
    let restore = run(
        ssmbak,
        &["restore", &name, &then, "-b", &p.bucket],
        &proxy.endpoint,
    );
    assert_eq!(restore.code, 0, "{}\n{}", restore.stdout, restore.stderr);
    let now = emulator::describe_parameter(&p.aws.ssm, &name).await;
    assert_eq!(now.tier().map(|t| t.as_str()), Some("Advanced"));
    let value = p.aws.parameter_value(&name).await;
    assert_eq!(value.as_deref(), Some("standard value"));
    let again = run(
        ssmbak,
        &["restore", &name, &then, "-b", &p.bucket, "--output", "json"],
        &proxy.endpoint,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    let json: serde_json::Value = serde_json::from_str(&again.stdout).expect("JSON");
    assert_eq!(
        json["summary"]["updated"], 0,
        "a re-run has nothing to do: {json}"
    );
}

/// A versioned bucket with one key `k` (`v1` at the returned time, `v2` now), and a proxy to
/// the emulator; `None` without an emulator.
async fn two_versions_behind_a_proxy(prefix: &str) -> Option<(String, String, FaultProxy)> {
    let endpoint = emulator::required_endpoint();
    let aws = Clients::new(&endpoint).await;
    let (bucket, then) = two_versions(&aws, prefix, &["k"]).await;
    Some((bucket, then, FaultProxy::start(&endpoint)))
}

/// `s3bak restore k THEN` through `proxy`, which must copy `k` back.
fn restore_k(bucket: &str, then: &str, proxy: &FaultProxy) {
    let s3bak = env!("CARGO_BIN_EXE_s3bak");
    let restore = run(
        s3bak,
        &["restore", "k", then, "-b", bucket],
        &proxy.endpoint,
    );
    assert_eq!(restore.code, 0, "{}\n{}", restore.stdout, restore.stderr);
    assert!(restore.stdout.contains("copied 1"), "{}", restore.stdout);
}

/// A versioned bucket with `keys`: `v1` at the returned time, `v2` now.
async fn two_versions(aws: &Clients, prefix: &str, keys: &[&str]) -> (String, String) {
    let bucket = unique(prefix).to_ascii_lowercase();
    emulator::versioned_bucket(&aws.s3, &bucket).await;
    let put = |key: &str, body: &'static [u8]| {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
    };
    for key in keys {
        put(key, b"v1").await.expect("put");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for key in keys {
        put(key, b"v2").await.expect("put");
    }
    (bucket, then)
}

/// A bucket in another region than the configured one: S3 answers `301 PermanentRedirect`
/// with the bucket's region in `x-amz-bucket-region` (S3 API reference, HeadBucket), which moto
/// never does, so the proxy answers so for every request not signed for `eu-west-1`. s3bak
/// finds the region and works, instead of failing with a bare redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn s3bak_finds_a_bucket_in_another_region() {
    let Some((bucket, then, proxy)) = two_versions_behind_a_proxy("far").await else {
        return;
    };
    let far = bucket.clone();
    proxy.inject(usize::MAX, Fault::WrongRegion("eu-west-1"), move |s| {
        s.target.is_none()
            && s.path_only()
                .trim_start_matches('/')
                .starts_with(far.as_str())
            && s.region() != Some("eu-west-1")
    });
    restore_k(&bucket, &then, &proxy);
    assert!(proxy.injected() >= 1, "the redirect was answered");
}

/// A policy may allow listing some prefixes only (the `s3:prefix` condition key): one that
/// does not allow `.ssmbak/index/` refuses the listing of the index. `s3bak --ssmbak-time`
/// then places nothing by it and reads every version it needs, as for a bucket without an
/// index, rather than fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn an_index_that_may_not_be_listed_places_nothing() {
    let Some((bucket, then, proxy)) = two_versions_behind_a_proxy("nomarks").await else {
        return;
    };
    proxy.inject(usize::MAX, Fault::Denied, |s| {
        s.operation() == "S3 ListObjectVersions" && s.path.contains("index")
    });
    let s3bak = env!("CARGO_BIN_EXE_s3bak");
    let args = ["preview", "k", &then, "-b", &bucket, "--ssmbak-time"];
    let preview = run(s3bak, &args, &proxy.endpoint);
    assert_eq!(preview.code, 0, "{}\n{}", preview.stdout, preview.stderr);
    assert!(proxy.injected() >= 1, "the index's listing was refused");
}

/// A server-side copy runs at S3's pace: far longer than the 10 s an ordinary request gets
/// (CopyObject "can take a while", S3 API reference; a 200 can even carry an error). A copy
/// that takes 12 s must not be cut off and retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_slow_copy_is_not_cut_off() {
    let Some((bucket, then, proxy)) = two_versions_behind_a_proxy("slowcopy").await else {
        return;
    };
    proxy.inject(1, Fault::Delay(Duration::from_secs(12)), |s| {
        s.operation() == "S3 CopyObject"
    });
    restore_k(&bucket, &then, &proxy);
    assert_eq!(
        proxy.counts().get("S3 CopyObject"),
        Some(&1),
        "one attempt, not a retry after 10 s"
    );
}

/// A stall longer than the 10 s attempt timeout, of every read in flight at once (a network
/// blip; moto serving a listing page of 50,000 versions), is retried, not fatal. The SDK's
/// default retry quota is one per service and process: 500 tokens, 10 spent on each retry
/// after a timeout (aws-smithy-runtime 1.16.2, `client/retries/token_bucket.rs`). The 64 keys
/// in flight, two reads each for the original's format, timing out together spent it, and the
/// 51st retry was refused: a preview of 10,000 parameters failed on one slow moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_stall_that_times_out_every_read_in_flight_is_retried() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Instant;
    // Planned in parts of 10, 20, 40, 80, 160 and 90 keys: the stall comes in the part of
    // 160, with 64 keys (128 reads) in flight.
    const KEYS: usize = 400;
    const STALL_FROM: usize = 320;
    let endpoint = emulator::required_endpoint();
    let aws = Clients::new(&endpoint).await;
    let bucket = unique("stall").to_ascii_lowercase();
    emulator::versioned_bucket(&aws.s3, &bucket).await;
    let path = format!("/{bucket}/");
    let backed_up = now_secs();
    let puts = (0..KEYS).map(|i| {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(format!("{path}p{i:03}"))
            .tagging(format!("ssmbakTime={backed_up}&ssmbakType=String"))
            .body(b"v".to_vec().into())
            .send()
    });
    for put in futures::future::join_all(puts).await {
        put.expect("put");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    let proxy = FaultProxy::start(&endpoint);
    // From the 320th read, every read that comes in the next 9 s: every key in flight is held
    // (at least one read of each of 64, 640 tokens of retries after their timeouts). Retries
    // come after the 10 s attempt timeout, and are answered.
    let in_bucket = bucket.clone();
    let reads = AtomicUsize::new(0);
    let stall_began = Mutex::new(None::<Instant>);
    proxy.inject(
        usize::MAX,
        Fault::Delay(Duration::from_secs(11)),
        move |s| {
            let read = matches!(
                s.operation().as_str(),
                "S3 GetObject" | "S3 GetObjectTagging"
            ) && s.path_only().contains(&in_bucket);
            if !read || reads.fetch_add(1, Ordering::SeqCst) < STALL_FROM {
                return false;
            }
            let began = *stall_began
                .lock()
                .expect("lock")
                .get_or_insert_with(Instant::now);
            began.elapsed() < Duration::from_secs(9)
        },
    );
    let preview = run(
        env!("CARGO_BIN_EXE_ssmbak"),
        &["preview", &path, &then, "-R", "-b", &bucket],
        &proxy.endpoint,
    );
    assert_eq!(preview.code, 0, "{}\n{}", preview.stdout, preview.stderr);
    assert!(proxy.injected() >= 64, "{}", proxy.injected());
    assert!(preview.stdout.contains("p399"), "{}", preview.stdout);
}

/// Concurrent writers on one parameter make SSM answer `TooManyUpdates` (PutParameter API
/// reference), which moto never does: the proxy answers so twice, and the restore retries with
/// backoff as it does throttling, instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn too_many_updates_is_retried() {
    let p = Pipeline::start().await;
    let name = p.name("busy");
    p.put(&name, "good", ParameterType::String, None).await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let good = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.put(&name, "bad", ParameterType::String, None).await;
    let proxy = FaultProxy::start(&p.aws.endpoint);
    proxy.inject(2, Fault::TooManyUpdates, |s| {
        s.operation() == "AmazonSSM.PutParameter"
    });
    let restore = run(
        env!("CARGO_BIN_EXE_ssmbak"),
        &["restore", &name, &good, "-b", &p.bucket],
        &proxy.endpoint,
    );
    assert_eq!(restore.code, 0, "{}\n{}", restore.stdout, restore.stderr);
    assert_eq!(proxy.injected(), 2);
    let value = p.aws.parameter_value(&name).await;
    assert_eq!(value.as_deref(), Some("good"));
}

/// SSM validates an `aws:ec2:image` value after PutParameter has answered 200 ("a successful
/// HTTP 200 response does not guarantee that your parameter was successfully created or
/// updated", PutParameter API reference). moto validates nothing, so the proxy answers the
/// write with a 200 and drops it, as SSM does with an AMI id that fails the check: the restore
/// must not count it as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn an_ami_parameter_write_is_confirmed_before_it_counts() {
    use ssmbak_core::format::{BackupRecord, ParameterSnapshot, ParameterType as Type};
    let p = Pipeline::start().await;
    let name = p.name("ami");
    let record = BackupRecord::Value {
        event_time: now_secs() - 5,
        snapshot: ParameterSnapshot::new(&name, "ami-0123456789abcdef0", Type::String)
            .with_attributes(|a| {
                a.version = Some(1);
                a.data_type = Some("aws:ec2:image".to_owned());
            }),
    };
    emulator::put_encoded(&p.aws.s3, &p.bucket, record.encode()).await;
    let proxy = FaultProxy::start(&p.aws.endpoint);
    proxy.inject(
        usize::MAX,
        Fault::Accepted(r#"{"Version":1,"Tier":"Standard"}"#),
        |s| s.operation() == "AmazonSSM.PutParameter" && s.body.contains("aws:ec2:image"),
    );
    let restore = run(
        env!("CARGO_BIN_EXE_ssmbak"),
        &["restore", &name, "now", "-b", &p.bucket],
        &proxy.endpoint,
    );
    assert_eq!(restore.code, 3, "{}\n{}", restore.stdout, restore.stderr);
    assert!(
        restore.stderr.contains("never appeared") && restore.stdout.contains("failed 1"),
        "{}\n{}",
        restore.stdout,
        restore.stderr
    );
}

/// A key with a character XML 1.0 cannot carry. S3 (and moto) put it in a listing as it is,
/// which no XML parser accepts, unless the listing asks for `encoding-type=url`.
const ODD_KEY: &str = "odd/ctl\u{1}key";

/// S3's answer to a ListObjectVersions with `encoding-type=url`, which moto ignores: keys URL-
/// encoded (spaces as `+`) and `EncodingType` saying so (S3 API reference, ListObjectVersions,
/// "EncodingType").
fn url_encoded_listing(_: &ssmbak_tests::fault_proxy::Seen, body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let encode = |key: &str| -> String {
        key.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut out = String::new();
    let mut rest: &str = &text;
    while let Some(start) = rest.find("<Key>") {
        let (before, after) = rest.split_at(start + "<Key>".len());
        out.push_str(before);
        let end = after.find("</Key>").unwrap_or(after.len());
        out.push_str(&encode(&after[..end].replace("&amp;", "&")));
        rest = &after[end..];
    }
    out.push_str(rest);
    out.replacen(
        "<IsTruncated>",
        "<EncodingType>url</EncodingType><IsTruncated>",
        1,
    )
    .into_bytes()
}

/// One key with a character XML cannot carry must not break the listing of its whole prefix
/// (without `encoding-type=url`, moto's answer is as unparseable as S3's); keys with spaces,
/// `+` and `&` come back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn keys_xml_cannot_carry_are_listed() {
    let endpoint = emulator::required_endpoint();
    let aws = Clients::new(&endpoint).await;
    let bucket = unique("s3bak-xml").to_ascii_lowercase();
    ssmbak_tests::emulator::versioned_bucket(&aws.s3, &bucket).await;
    let keys = ["odd/plain", "odd/sp ace", "odd/pl+us", "odd/a&b", ODD_KEY];
    for k in keys {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(k)
            .body(b"v".to_vec().into())
            .send()
            .await
            .expect("put");
    }
    let proxy = FaultProxy::start(&endpoint);
    let path = format!("/{bucket}");
    proxy.inject(usize::MAX, Fault::Rewrite(url_encoded_listing), move |s| {
        s.method == "GET"
            && s.path_only().trim_end_matches('/') == path
            && s.path.contains("versions")
            && s.path.contains("encoding-type=url")
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s3bak = env!("CARGO_BIN_EXE_s3bak");
    let at = iso(now_secs());
    let out = run(
        s3bak,
        &["preview", "odd/", &at, "-b", &bucket, "--output", "json"],
        &proxy.endpoint,
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let mut listed: Vec<String> = json["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["key"].as_str().map(str::to_owned))
        .collect();
    listed.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

/// A requester-pays bucket answers 403 to every request without `x-amz-request-payer` (S3
/// User Guide, "Downloading objects from Requester Pays buckets"; moto does not enforce it,
/// the proxy does): one line that names the flag, and with it every request carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_requester_pays_bucket_is_named_and_paid_for() {
    let endpoint = emulator::required_endpoint();
    let aws = Clients::new(&endpoint).await;
    let (bucket, at) = two_versions(&aws, "s3bak-rp", &["rp/a", "rp/b"]).await;
    let proxy = FaultProxy::start(&endpoint);
    proxy.inject(usize::MAX, Fault::Denied, |s| {
        s.headers.get("x-amz-request-payer").map(String::as_str) != Some("requester")
    });
    let s3bak = env!("CARGO_BIN_EXE_s3bak");
    let unpaid = run(
        s3bak,
        &["preview", "rp/", &at, "-b", &bucket],
        &proxy.endpoint,
    );
    assert_eq!(unpaid.code, 1, "{}\n{}", unpaid.stdout, unpaid.stderr);
    assert_eq!(unpaid.stderr.trim().lines().count(), 1, "{}", unpaid.stderr);
    assert!(
        unpaid.stderr.contains("--request-payer"),
        "{}",
        unpaid.stderr
    );

    let dir = std::env::temp_dir().join(unique("s3bak-rp"));
    let target = dir.to_string_lossy().into_owned();
    let paid = run(
        s3bak,
        &[
            "body",
            "rp/",
            &at,
            "-b",
            &bucket,
            "-o",
            &target,
            "--request-payer",
        ],
        &proxy.endpoint,
    );
    assert_eq!(paid.code, 0, "{}\n{}", paid.stdout, paid.stderr);
    assert_eq!(
        std::fs::read(dir.join("a")).expect("downloaded"),
        b"v1".to_vec()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A version encrypted with a customer-provided key (SSE-C) cannot be read or copied without
/// that key: S3 answers 400 InvalidRequest (S3 User Guide, "Using server-side encryption with
/// customer-provided keys"), played by the proxy for the keys under sse-c/. Every key would
/// get it alike, so the run stops at the first, with one line and exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn customer_key_encryption_stops_the_run_with_one_line() {
    let endpoint = emulator::required_endpoint();
    let aws = Clients::new(&endpoint).await;
    let keys = ["ssec/1", "ssec/2", "ssec/3", "ssec/4"];
    let (bucket, at) = two_versions(&aws, "s3bak-ssec", &keys).await;
    let proxy = FaultProxy::start(&endpoint);
    let objects = format!("/{bucket}/ssec/");
    proxy.inject(
        usize::MAX,
        Fault::Invalid("The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."),
        move |s| {
            (s.path_only().starts_with(&objects) && (s.method == "GET" || s.method == "HEAD"))
                || s.headers.contains_key("x-amz-copy-source")
        },
    );
    let s3bak = env!("CARGO_BIN_EXE_s3bak");
    let dir = std::env::temp_dir().join(unique("s3bak-ssec"));
    let target = dir.to_string_lossy().into_owned();
    for args in [
        vec![
            "body",
            "ssec/",
            &at,
            "-b",
            &bucket,
            "-o",
            &target,
            "--concurrency",
            "1",
        ],
        vec![
            "restore",
            "ssec/",
            &at,
            "-b",
            &bucket,
            "--keep-going",
            "--concurrency",
            "1",
        ],
    ] {
        let out = run(s3bak, &args, &proxy.endpoint);
        assert_eq!(out.code, 1, "{args:?}\n{}\n{}", out.stdout, out.stderr);
        let lines: Vec<&str> = out.stderr.trim().lines().collect();
        assert!(
            lines.len() == 1 && lines[0].contains("customer-provided key (SSE-C)"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// SSM does not change a parameter to or from data type `aws:ec2:image` (SSM User Guide,
/// "Parameter data types in Parameter Store": "You can't change a parameter to or from either
/// of these data types"); moto does, so the proxy refuses such a PutParameter while the
/// parameter exists. The restore plans it as a replacement, says so, and gets it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_data_type_ssm_will_not_change_in_place_is_replaced() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let p = Pipeline::start().await;
    let name = p.name("image");
    p.put(&name, "plain text", ParameterType::String, None)
        .await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    p.aws
        .ssm
        .put_parameter()
        .name(&name)
        .value("ami-12c6146b")
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .send()
        .await
        .expect("now an AMI parameter");

    let proxy = FaultProxy::start(&p.aws.endpoint);
    let deleted = Arc::new(AtomicBool::new(false));
    let (seen, target) = (Arc::clone(&deleted), name.clone());
    proxy.inject(usize::MAX, Fault::Denied, move |s| {
        if s.operation() == "AmazonSSM.DeleteParameter" && s.body.contains(&target) {
            seen.store(true, Ordering::SeqCst);
        }
        false
    });
    let (gone, target) = (Arc::clone(&deleted), name.clone());
    proxy.inject(
        usize::MAX,
        Fault::Invalid("Parameter data type cannot be changed from aws:ec2:image to text"),
        move |s| {
            s.operation() == "AmazonSSM.PutParameter"
                && s.body.contains(&target)
                && !gone.load(Ordering::SeqCst)
        },
    );
    let ssmbak = env!("CARGO_BIN_EXE_ssmbak");
    let preview = run(
        ssmbak,
        &["preview", &name, &then, "-b", &p.bucket],
        &proxy.endpoint,
    );
    assert_eq!(preview.code, 0, "{}\n{}", preview.stdout, preview.stderr);
    assert!(
        preview.stdout.contains("replace") && preview.stdout.contains("deleted, then created"),
        "{}",
        preview.stdout
    );
    let restore = run(
        ssmbak,
        &[
            "restore",
            &name,
            &then,
            "-b",
            &p.bucket,
            "--recreate-pause",
            "0",
        ],
        &proxy.endpoint,
    );
    assert_eq!(restore.code, 0, "{}\n{}", restore.stdout, restore.stderr);
    assert!(restore.stdout.contains("replaced 1"), "{}", restore.stdout);
    assert!(deleted.load(Ordering::SeqCst), "deleted first");
    let now = p
        .aws
        .ssm
        .get_parameter()
        .name(&name)
        .send()
        .await
        .expect("restored")
        .parameter
        .expect("parameter");
    assert_eq!(
        (now.value(), now.data_type()),
        (Some("plain text"), Some("text"))
    );
}

/// A restore is planned and written part by part (10 keys, then 20, ...), so writing starts
/// while the rest is planned. An error planning a later part stops the run after the parts
/// already planned are written and reported; it ends with one line, and a re-run finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_restore_stopped_part_way_reports_what_it_wrote() {
    use ssmbak_core::format::{BackupRecord, ParameterSnapshot, ParameterType as Type};
    const KEYS: usize = 40;
    let aws = Clients::new(&emulator::required_endpoint()).await;
    let bucket = unique("parts").to_ascii_lowercase();
    emulator::versioned_bucket(&aws.s3, &bucket).await;
    let path = format!("/{}/", unique("parts"));
    let name = |i: usize| format!("{path}p{i:02}");
    for i in 0..KEYS {
        let snapshot = ParameterSnapshot::new(name(i), format!("good {i}"), Type::String)
            .with_attributes(|a| a.version = Some(1));
        let record = BackupRecord::Value {
            event_time: now_secs(),
            snapshot,
        };
        emulator::put_encoded(&aws.s3, &bucket, record.encode()).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let good = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 0..KEYS {
        aws.ssm
            .put_parameter()
            .name(name(i))
            .value("bad")
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }
    // p30's backup cannot be read: it is in the third part (keys 30 to 39).
    let proxy = FaultProxy::start(&aws.endpoint);
    let refused = format!("{}/p30", path.trim_end_matches('/'));
    proxy.inject(1, Fault::Denied, move |s| {
        s.method == "GET" && s.path_only().ends_with(&refused) && !s.path.contains("tagging")
    });
    let ssmbak = env!("CARGO_BIN_EXE_ssmbak");
    let args = ["restore", &path, &good, "-R", "-b", &bucket];

    let first = run(ssmbak, &args, &proxy.endpoint);
    assert_ne!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stderr.contains("stopped part-way") && first.stderr.contains("AccessDenied"),
        "{}",
        first.stderr
    );
    assert_eq!(first.stderr.trim().lines().count(), 1, "{}", first.stderr);
    // The first two parts, whole, and nothing after them.
    assert!(first.stdout.contains("updated 30,"), "{}", first.stdout);
    for i in 0..KEYS {
        let expected = if i < 30 {
            format!("good {i}")
        } else {
            "bad".to_owned()
        };
        let value = aws.parameter_value(&name(i)).await;
        assert_eq!(value, Some(expected), "{}", name(i));
    }

    let again = run(ssmbak, &args, &proxy.endpoint);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("updated 10,") && again.stdout.contains("unchanged 30,"),
        "{}",
        again.stdout
    );
}

/// Every request to the backup bucket names the caller's account as its owner (S3's bucket
/// owner condition; moto checks none, `OwnerCheck` plays S3): a bucket name that now points at
/// another account's bucket (a rewritten `SSMBAK_BUCKET` or discovery parameter) ends the
/// restore on one line before anything is read from it or written to SSM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_bucket_of_another_account_is_refused_wherever_its_name_came_from() {
    let p = Pipeline::start().await;
    let (names, good) = good_then_bad(&p, &["a"]).await;
    let foreign = unique("foreign").to_ascii_lowercase();
    emulator::versioned_bucket(&p.aws.s3, &foreign).await;
    let proxy = FaultProxy::start(&p.aws.endpoint);
    let check = OwnerCheck::install(
        &proxy,
        &[(&p.bucket, EMULATOR_ACCOUNT), (&foreign, OTHER_ACCOUNT)],
    );
    let path = format!("{}/", p.prefix);
    let (ssmbak, s3bak) = (env!("CARGO_BIN_EXE_ssmbak"), env!("CARGO_BIN_EXE_s3bak"));
    let refused = |out: &ssmbak_tests::cli::Run, bucket: &str, account: &str| {
        assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
        let line = format!("access denied to bucket {bucket}: it is not in account {account}");
        assert!(
            out.stderr.contains(&line) && out.stderr.trim().lines().count() == 1,
            "{}",
            out.stderr
        );
    };

    let redirected = ssmbak_tests::cli::run(
        ssmbak,
        &["restore", &path, &good],
        &[
            ("AWS_ENDPOINT_URL", &proxy.endpoint),
            ("SSMBAK_BUCKET", &foreign),
        ],
    );
    refused(&redirected, &foreign, EMULATOR_ACCOUNT);
    let theirs = run(
        s3bak,
        &["preview", &path, &good, "-b", &foreign, "--ssmbak-time"],
        &proxy.endpoint,
    );
    refused(&theirs, &foreign, EMULATOR_ACCOUNT);
    // The owner asked for is the one S3 checks.
    let elsewhere = run(
        ssmbak,
        &[
            "preview",
            &path,
            &good,
            "-b",
            &p.bucket,
            "--bucket-owner",
            OTHER_ACCOUNT,
        ],
        &proxy.endpoint,
    );
    refused(&elsewhere, &p.bucket, OTHER_ACCOUNT);
    assert_eq!(
        p.aws.parameter_value(&names[0]).await.as_deref(),
        Some("bad")
    );

    let ours = run(
        ssmbak,
        &["restore", &path, &good, "-b", &p.bucket],
        &proxy.endpoint,
    );
    assert_eq!(ours.code, 0, "{}\n{}", ours.stdout, ours.stderr);
    assert_eq!(
        p.aws.parameter_value(&names[0]).await.as_deref(),
        Some("good")
    );
    assert_eq!(check.unconditioned(), Vec::<String>::new());

    // Any other versioned bucket is the one named with -b: s3bak asks no owner of it.
    let plain = run(
        s3bak,
        &["preview", &path, &good, "-b", &foreign],
        &proxy.endpoint,
    );
    assert_eq!(plain.code, 0, "{}\n{}", plain.stdout, plain.stderr);
    assert!(!check.unconditioned().is_empty());
}
