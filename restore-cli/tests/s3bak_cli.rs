//! `s3bak` end to end against a versioned bucket on moto, run as a user runs it.

use std::time::Duration;

use ssmbak_tests::cli::{run, Run};
use ssmbak_tests::emulator::{self, checktime as iso, unique, Clients};
use ssmbak_tests::pipeline::now_secs;

fn s3bak(args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_s3bak"), args, &[])
}

/// Each key of a `preview --output json` with its boolean `flag` (`exists`, `deleted`).
fn key_flags(preview: &serde_json::Value, flag: &str) -> Vec<(String, bool)> {
    preview["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap_or_default().to_owned(),
                k[flag] == true,
            )
        })
        .collect()
}

async fn versioned_bucket(aws: &Clients, name: &str) {
    emulator::versioned_bucket(&aws.s3, name).await;
}

async fn put(aws: &Clients, bucket: &str, key: &str, body: &[u8]) {
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .expect("put");
}

async fn get(aws: &Clients, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let o = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(o.body.collect().await.expect("body").into_bytes().to_vec())
}

const A1: &[u8] = b"\x00\xffbinary\r\n  with spaces  \n";

/// A bucket with a history: at T1 `data/a`=A1 (with headers, metadata, tags), `data/ab`,
/// `data/sub/c`; after T1 `data/a` changed, `data/ab` deleted, `data/new` created.
async fn history(aws: &Clients) -> (String, i64) {
    let bucket = unique("s3bak").to_ascii_lowercase();
    versioned_bucket(aws, &bucket).await;
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("data/a")
        .body(A1.to_vec().into())
        .content_type("application/x-a")
        .metadata("owner", "team-a")
        .tagging("class=gold")
        .send()
        .await
        .expect("put a");
    put(aws, &bucket, "data/ab", b"AB1").await;
    put(aws, &bucket, "data/sub/c", b"C1").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t1 = now_secs();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put(aws, &bucket, "data/a", b"A2").await;
    aws.s3
        .delete_object()
        .bucket(&bucket)
        .key("data/ab")
        .send()
        .await
        .expect("delete");
    put(aws, &bucket, "data/new", b"N").await;
    (bucket, t1)
}

macro_rules! emulator {
    () => {
        Clients::new(&emulator::required_endpoint()).await
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn preview_and_download() {
    let aws = emulator!();
    let (bucket, t1) = history(&aws).await;
    let at = iso(t1);

    // One key: exactly that key, never data/ab.
    let one = s3bak(&["preview", "data/a", &at, "-b", &bucket, "--output", "json"]).json();
    assert_eq!(one["keys"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["keys"][0]["size"], A1.len());
    let tree = s3bak(&["preview", "data/", &at, "-b", &bucket, "--output", "json"]).json();
    let states = key_flags(&tree, "exists");
    assert_eq!(
        states,
        [
            ("data/a".into(), true),
            ("data/ab".into(), true),
            ("data/new".into(), false),
            ("data/sub/c".into(), true)
        ]
    );

    // The exact bytes, to a file and to stdout.
    let dir = std::env::temp_dir().join(unique("s3bak-dl"));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("a.bin");
    let run = s3bak(&[
        "body",
        "data/a",
        &at,
        "-b",
        &bucket,
        "-o",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&file).expect("file"), A1);
    let run = s3bak(&["body", "data/a", &at, "-b", &bucket, "-o", "-"]);
    assert_eq!(run.bytes, A1, "stdout holds exactly the bytes");

    // A tree, as it was.
    let tree_dir = dir.join("tree");
    let run = s3bak(&[
        "body",
        "data/",
        &at,
        "-b",
        &bucket,
        "-o",
        tree_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(tree_dir.join("a")).expect("a"), A1);
    assert_eq!(std::fs::read(tree_dir.join("ab")).expect("ab"), b"AB1");
    assert_eq!(std::fs::read(tree_dir.join("sub/c")).expect("c"), b"C1");
    assert!(!tree_dir.join("new").exists(), "created after the time");
    let flat = dir.join("flat");
    let run = s3bak(&[
        "body",
        "data/",
        &at,
        "-b",
        &bucket,
        "-o",
        flat.to_str().expect("utf-8"),
        "--flat",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(flat.join("c")).expect("c"), b"C1");

    // A deleted key and a key with no version then.
    let run = s3bak(&[
        "body",
        "data/ab",
        &iso(now_secs()),
        "-b",
        &bucket,
        "-o",
        "-",
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("was deleted"), "{}", run.stderr);
    let run = s3bak(&["body", "data/new", &at, "-b", &bucket, "-o", "-"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no version of data/new"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn keys_never_escape_the_download_directory() {
    let aws = emulator!();
    let bucket = unique("s3bak-esc").to_ascii_lowercase();
    versioned_bucket(&aws, &bucket).await;
    put(&aws, &bucket, "data/../../escaped", b"evil").await;
    put(&aws, &bucket, "data/fine", b"ok").await;
    let base = std::env::temp_dir().join(unique("s3bak-esc"));
    let dir = base.join("inner/out");
    let run = s3bak(&[
        "body",
        "data/",
        &iso(now_secs()),
        "-b",
        &bucket,
        "-o",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 3, "partial: one key refused\n{}", run.stderr);
    assert!(run.stderr.contains("climbs out"), "{}", run.stderr);
    assert_eq!(std::fs::read(dir.join("fine")).expect("fine"), b"ok");
    assert!(!base.join("escaped").exists() && !base.join("inner/escaped").exists());
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn restore_in_place_is_minimal_and_idempotent() {
    let aws = emulator!();
    let (bucket, t1) = history(&aws).await;
    let at = iso(t1);
    let dry = s3bak(&["restore", "data/", &at, "-b", &bucket, "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("would copy: data/a") && dry.stdout.contains("would delete: data/new"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        get(&aws, &bucket, "data/a").await.as_deref(),
        Some(&b"A2"[..]),
        "a dry run writes nothing"
    );

    let run = s3bak(&["restore", "data/", &at, "-b", &bucket]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("copied 2, deleted 1, unchanged 1, failed 0"),
        "{}",
        run.stdout
    );
    assert_eq!(get(&aws, &bucket, "data/a").await.as_deref(), Some(A1));
    assert_eq!(
        get(&aws, &bucket, "data/ab").await.as_deref(),
        Some(&b"AB1"[..])
    );
    assert_eq!(
        get(&aws, &bucket, "data/new").await,
        None,
        "a delete marker, not a permanent delete"
    );
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("data/a")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("application/x-a"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("team-a")
    );
    let tags = aws
        .s3
        .get_object_tagging()
        .bucket(&bucket)
        .key("data/a")
        .send()
        .await
        .expect("tags");
    assert_eq!(
        tags.tag_set().first().map(|t| (t.key(), t.value())),
        Some(("class", "gold"))
    );
    // The versions of data/new are all still there.
    let listed = aws
        .s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix("data/new")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.versions().len(), 1);

    let again = s3bak(&["restore", "data/", &at, "-b", &bucket]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("copied 0, deleted 0, unchanged 4"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn restore_to_another_bucket_and_prefix_in_parts() {
    let aws = emulator!();
    let (bucket, t1) = history(&aws).await;
    let other = unique("s3bak-to").to_ascii_lowercase();
    versioned_bucket(&aws, &other).await;
    let at = iso(t1);
    // A tiny multipart threshold takes the >5 GiB path with small objects.
    let run = s3bak(&[
        "restore",
        "data/",
        &at,
        "-b",
        &bucket,
        "--to-bucket",
        &other,
        "--to-prefix",
        "restored/",
        "--multipart-threshold",
        "1",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(get(&aws, &other, "restored/a").await.as_deref(), Some(A1));
    assert_eq!(
        get(&aws, &other, "restored/ab").await.as_deref(),
        Some(&b"AB1"[..])
    );
    assert_eq!(
        get(&aws, &other, "restored/sub/c").await.as_deref(),
        Some(&b"C1"[..])
    );
    assert_eq!(get(&aws, &other, "restored/new").await, None);
    let head = aws
        .s3
        .head_object()
        .bucket(&other)
        .key("restored/a")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("application/x-a"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("team-a")
    );
    assert_eq!(
        get(&aws, &bucket, "data/a").await.as_deref(),
        Some(&b"A2"[..]),
        "the source is untouched"
    );
    // Plain copies compare by ETag, so a second run copies nothing. (A multipart copy gets a
    // new ETag, so objects over 5 GiB are copied again: their content cannot be compared.)
    let plain = [
        "restore",
        "data/",
        &at,
        "-b",
        &bucket,
        "--to-bucket",
        &other,
        "--to-prefix",
        "plain/",
    ];
    let first = s3bak(&plain);
    assert!(first.stdout.contains("copied 3"), "{}", first.stdout);
    let again = s3bak(&plain);
    assert!(
        again.stdout.contains("copied 0, deleted 0, unchanged 4"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn bad_inputs_get_one_clear_line_and_their_exit_code() {
    let aws = emulator!();
    let plain = unique("s3bak-plain").to_ascii_lowercase();
    aws.s3
        .create_bucket()
        .bucket(&plain)
        .send()
        .await
        .expect("bucket");
    let cases: Vec<(&str, Vec<&str>, i32, &str)> = vec![
        (
            "no such bucket",
            vec!["preview", "k", "now", "-b", "no-such-bucket-s3bak"],
            1,
            "does not exist",
        ),
        (
            "unversioned",
            vec!["preview", "k", "now", "-b", &plain],
            1,
            "not versioned",
        ),
        (
            "bad time",
            vec!["preview", "k", "soon", "-b", &plain],
            2,
            "is not a time",
        ),
        (
            "body without -o",
            vec!["body", "k", "now", "-b", &plain],
            2,
            "needs -o",
        ),
        ("no bucket", vec!["preview", "k", "now"], 2, "--bucket"),
    ];
    for (what, args, code, needle) in cases {
        let run = s3bak(&args);
        assert_eq!(run.code, code, "{what}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{what}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{what}: {}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn archived_versions_are_reported_and_event_time_can_decide() {
    let aws = emulator!();
    let bucket = unique("s3bak-arch").to_ascii_lowercase();
    versioned_bucket(&aws, &bucket).await;
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("cold")
        .body(b"old".to_vec().into())
        .storage_class(aws_sdk_s3::types::StorageClass::DeepArchive)
        .send()
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t1 = now_secs();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put(&aws, &bucket, "cold", b"new").await;
    let run = s3bak(&["restore", "cold", &iso(t1), "-b", &bucket]);
    assert_eq!(run.code, 3, "not done: {}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("needs a restore request") && run.stderr.contains("DEEP_ARCHIVE"),
        "{}",
        run.stderr
    );
    assert_eq!(
        get(&aws, &bucket, "cold").await.as_deref(),
        Some(&b"new"[..]),
        "nothing was copied"
    );
    // Once a restore request has finished, the version (still DEEP_ARCHIVE, with a temporary
    // copy) is copied back and downloaded like any other. (moto 5.2.5 restores only the
    // current version, whatever VersionId says: the request is made before the next put.)
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("thawed")
        .body(b"old".to_vec().into())
        .storage_class(aws_sdk_s3::types::StorageClass::DeepArchive)
        .send()
        .await
        .expect("put");
    aws.s3
        .restore_object()
        .bucket(&bucket)
        .key("thawed")
        .restore_request(aws_sdk_s3::types::RestoreRequest::builder().days(1).build())
        .send()
        .await
        .expect("restore request");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t2 = now_secs();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put(&aws, &bucket, "thawed", b"new").await;
    let body = s3bak(&["body", "thawed", &iso(t2), "-b", &bucket, "-o", "-"]);
    assert_eq!(body.code, 0, "{}", body.stderr);
    assert_eq!(body.bytes, b"old");
    let run = s3bak(&["restore", "thawed", &iso(t2), "-b", &bucket]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        get(&aws, &bucket, "thawed").await.as_deref(),
        Some(&b"old"[..])
    );

    // An ssmbak object written now for an event an hour ago: by LastModified it did not exist
    // half an hour ago; by its ssmbakTime it did.
    let event = now_secs() - 3600;
    let version_id = aws
        .s3
        .put_object()
        .bucket(&bucket)
        .key("/app/param")
        .body(b"v".to_vec().into())
        .tagging(format!("ssmbakTime={event}&ssmbakType=String"))
        .send()
        .await
        .expect("put")
        .version_id
        .expect("a version id");
    let half_hour_ago = iso(now_secs() - 1800);
    let preview = |by_event: bool| {
        let mut args = vec![
            "preview",
            "/app/param",
            &half_hour_ago,
            "-b",
            &bucket,
            "--output",
            "json",
        ];
        args.extend(by_event.then_some("--ssmbak-time"));
        s3bak(&args)
    };
    let by_lm = preview(false);
    assert_eq!(
        by_lm.code, 1,
        "no version by LastModified: {}",
        by_lm.stderr
    );
    let preview_by_event = || preview(true);
    let by_event = preview_by_event().json();
    assert_eq!(by_event["keys"][0]["exists"], true, "{by_event}");

    // With --ssmbak-time, the bucket's index (ssmbak_core::index) places the versions it
    // names without reading them, and only those its listing holds: the same answer with an
    // entry for that version, and with one naming a version the listing does not hold.
    let place = |id: &str, time: i64| ssmbak_core::format::EarlierVersion {
        version_id: id.to_owned(),
        deleted: false,
        time,
        ssm_version: Some(1),
        modified_ms: None,
        tags_digest: None,
    };
    for entry in [place(&version_id, event), place("not-listed", now_secs())] {
        let key = ssmbak_core::index::entry_key("/app/param", &entry).expect("short");
        put(&aws, &bucket, &key, b"").await;
        let indexed = preview_by_event().json();
        assert_eq!(indexed["keys"][0]["exists"], true, "{indexed}");
    }
}

/// A key deleted and put again within one second, and one put and then deleted within one
/// second: S3 lists both in whole seconds and versions apart from markers, so only `IsLatest`
/// says which came last. A restore to now changes neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn same_second_delete_and_put_read_in_write_order() {
    let aws = emulator!();
    let bucket = unique("same").to_ascii_lowercase();
    versioned_bucket(&aws, &bucket).await;
    put(&aws, &bucket, "d/back", b"first").await;
    put(&aws, &bucket, "d/gone", b"first").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    emulator::start_of_a_second().await;
    let delete = |key: &'static str| {
        let (s3, bucket) = (aws.s3.clone(), bucket.clone());
        async move {
            s3.delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("delete")
        }
    };
    delete("d/back").await;
    put(&aws, &bucket, "d/back", b"second").await;
    put(&aws, &bucket, "d/gone", b"second").await;
    delete("d/gone").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = iso(now_secs());

    let preview = s3bak(&["preview", "d/", &now, "-b", &bucket, "--output", "json"]).json();
    let states = key_flags(&preview, "deleted");
    assert_eq!(
        states,
        [("d/back".to_owned(), false), ("d/gone".to_owned(), true)],
        "{preview}"
    );
    let run = s3bak(&["restore", "d/", &now, "-b", &bucket]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("copied 0, deleted 0, unchanged 2"),
        "{}",
        run.stdout
    );
    assert_eq!(
        get(&aws, &bucket, "d/back").await.as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(get(&aws, &bucket, "d/gone").await, None);
}

/// Keys whose names differ only after a dot (`index.html`, `index.js`, `index`) download side
/// by side, each to its own bytes: the temporary files must not share a name (they once were
/// `index.s3bak-partial` for all three, and the renames published mixed bytes). Nothing
/// temporary is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn downloads_of_similar_names_never_mix() {
    let aws = emulator!();
    let bucket = unique("mix").to_ascii_lowercase();
    versioned_bucket(&aws, &bucket).await;
    let bodies: Vec<(&str, Vec<u8>)> = ["d/index.html", "d/index.js", "d/index", "d/index.css"]
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, vec![b'a' + i as u8; 256 * 1024]))
        .collect();
    for (key, body) in &bodies {
        put(&aws, &bucket, key, body).await;
    }
    let dir = std::env::temp_dir().join(unique("s3bak-mix"));
    for round in 0..3 {
        let out = dir.join(round.to_string());
        let run = s3bak(&[
            "body",
            "d/",
            "now",
            "-b",
            &bucket,
            "-o",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        for (key, body) in &bodies {
            let file = out.join(key.trim_start_matches("d/"));
            assert!(
                std::fs::read(&file).expect("file") == *body,
                "{key}: its own bytes"
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("s3bak-partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keys that cannot be files side by side (differing only in case, on macOS or Windows; a key
/// `a` beside `a/b`) are refused before anything is written, naming them; console folder
/// placeholders (empty keys ending in `/`) are skipped, not failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn colliding_keys_are_named_before_anything_is_written() {
    let aws = emulator!();
    let bucket = unique("clash").to_ascii_lowercase();
    versioned_bucket(&aws, &bucket).await;
    for key in ["c/A.txt", "c/a.txt", "c/z"] {
        put(&aws, &bucket, key, key.as_bytes()).await;
    }
    for key in ["p/folder/", "p/folder/x"] {
        put(
            &aws,
            &bucket,
            key,
            if key.ends_with('/') { b"" } else { b"x" },
        )
        .await;
    }
    let dir = std::env::temp_dir().join(unique("s3bak-clash"));
    let out = |sub: &str| dir.join(sub).to_str().expect("utf-8").to_owned();

    let clash = s3bak(&["body", "c/", "now", "-b", &bucket, "-o", &out("c")]);
    assert_eq!(clash.code, 1, "{}", clash.stderr);
    assert!(
        clash.stderr.contains("c/A.txt") && clash.stderr.contains("c/a.txt"),
        "{}",
        clash.stderr
    );
    assert!(!dir.join("c").join("z").exists(), "nothing written");

    let folders = s3bak(&["body", "p/", "now", "-b", &bucket, "-o", &out("p")]);
    assert_eq!(folders.code, 0, "{}", folders.stderr);
    assert!(
        folders.stderr.contains("skipped 1 folder placeholder"),
        "{}",
        folders.stderr
    );
    assert_eq!(std::fs::read(dir.join("p/folder/x")).expect("x"), b"x");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same bytes are not the same object: a version whose bytes the key still holds, but
/// whose content type, metadata or tags differ from the current object's, is copied back, so
/// the key serves as it did; a re-run then leaves it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn same_bytes_with_other_headers_are_restored() {
    let aws = emulator!();
    let bucket = unique("headers").to_ascii_lowercase();
    versioned_bucket(&aws, &bucket).await;
    let put_as = |content_type: &'static str, owner: &'static str| {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key("h/k")
            .content_type(content_type)
            .metadata("owner", owner)
            .body(b"same bytes".to_vec().into())
            .send()
    };
    put_as("text/plain", "a").await.expect("put");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put_as("application/json", "b").await.expect("put");

    let run = s3bak(&["restore", "h/k", &then, "-b", &bucket]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("copied 1"), "{}", run.stdout);
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("h/k")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("a")
    );
    let again = s3bak(&["restore", "h/k", &then, "-b", &bucket]);
    assert!(again.stdout.contains("copied 0"), "{}", again.stdout);
}

/// A copy is encrypted with the destination's default and stored as STANDARD unless told
/// otherwise (S3 API reference, CopyObject): a restored version keeps its KMS key and its
/// storage class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_restored_version_keeps_its_kms_key_and_storage_class() {
    let aws = emulator!();
    let bucket = unique("s3bak-kms").to_ascii_lowercase();
    emulator::versioned_bucket(&aws.s3, &bucket).await;
    let key_id = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000001";
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("kms/a")
        .body(b"old".to_vec().into())
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(key_id)
        .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
        .send()
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("kms/a")
        .body(b"new".to_vec().into())
        .send()
        .await
        .expect("put");
    let out = s3bak(&["restore", "kms/a", &at, "-b", &bucket]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("kms/a")
        .send()
        .await
        .expect("head");
    assert_eq!(
        (
            head.server_side_encryption().map(|e| e.as_str()),
            head.ssekms_key_id(),
            head.storage_class().map(|c| c.as_str()),
        ),
        (Some("aws:kms"), Some(key_id), Some("STANDARD_IA"))
    );
}
