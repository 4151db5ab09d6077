//! Who deleted it: with the template's `RecordDeleters` on, CloudTrail's record of each
//! `DeleteParameter`/`DeleteParameters` call reaches the Lambda beside the delete's change event,
//! in either order, and `ssmbak log` shows the caller on the delete's row. Without a record the
//! deleter is unknown, never a guess.
//!
//! moto has no CloudTrail → EventBridge delivery (nor any trail): the tests publish the records
//! as EventBridge delivers them ("AWS API Call via CloudTrail", fields as in
//! `lambda/tests/fixtures/cloudtrail_delete*.json`) on the pipeline's bus, whose rule is the
//! template's DeleterRule.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::{run, Run};
use ssmbak_tests::emulator::Clients;
use ssmbak_tests::fault_proxy::{Fault, Seen};
use ssmbak_tests::pipeline::{now_secs, Pipeline};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com";
/// IAM names may hold `,` and `=`, which S3 tag values may not: stored escaped.
const BOB: &str = "arn:aws:iam::123456789012:user/ops/bob,jr=2";

fn ssmbak(args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_ssmbak"), args, &[])
}

async fn sleep_secs(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

/// `ssmbak log KEY --output json`'s rows as (deleted, modified_by of a delete). (moto gives
/// every version's LastModifiedUser as `N/A`; restore-cli/tests/who_changed.rs covers those.)
fn log_rows(p: &Pipeline, key: &str) -> Vec<(bool, Option<String>)> {
    let log = ssmbak(&["log", key, "-b", &p.bucket, "--output", "json"]).json();
    log["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            let deleted = v["deleted"].as_bool().expect("deleted");
            let by = v["modified_by"].as_str().filter(|_| deleted);
            (deleted, by.map(str::to_owned))
        })
        .collect()
}

fn log_table(p: &Pipeline, key: &str) -> String {
    let table = ssmbak(&["log", key, "-b", &p.bucket]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    table.stdout
}

/// A parameter put and backed up.
async fn backed_up(p: &Pipeline, key: &str) {
    p.change(key, "v1", ParameterType::String, None, "Create")
        .await;
    p.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn the_deleter_is_recorded_whichever_event_comes_first() {
    let p = Pipeline::start().await;
    let (late, early, never) = (p.name("late"), p.name("early"), p.name("never"));
    for key in [&late, &early, &never] {
        backed_up(&p, key).await;
    }

    // The usual order: the change event writes the tombstone, CloudTrail's record (later,
    // P99 ~90 s in practice) tags it. Delivered twice: the second changes nothing.
    p.delete(&late).await;
    let t = now_secs();
    p.publish(&late, "Delete", "String", t).await;
    p.drain().await;
    for _ in 0..2 {
        p.publish_cloudtrail_delete(&[&late], &[], ALICE, t).await;
        p.drain().await;
    }
    assert_eq!(
        log_rows(&p, &late),
        [(false, None), (true, Some(ALICE.to_owned()))],
        "{}",
        p.logs()
    );
    assert!(log_table(&p, &late).contains(ALICE));
    let h = p.history(&late).await;
    assert_eq!(h.tombstones().len(), 1);
    assert_eq!(
        h.tombstones()[0].fields().deleted_by.as_deref(),
        Some(ALICE)
    );

    // CloudTrail first, one DeleteParameters call for two parameters and a name that did not
    // exist: the record writes each tombstone (with the deleter) and marker itself; the change
    // event then finds the delete recorded. The invalid name gets nothing.
    p.delete(&early).await;
    p.delete(&never).await;
    let t = now_secs();
    p.publish_cloudtrail_delete(&[&early, &never], &[&p.name("nothing")], BOB, t)
        .await;
    p.drain().await;
    for key in [&early, &never] {
        p.publish(key, "Delete", "String", t).await;
    }
    p.drain().await;
    for key in [&early, &never] {
        assert_eq!(
            log_rows(&p, key),
            [(false, None), (true, Some(BOB.to_owned()))],
            "{key}: {}",
            p.logs()
        );
        let h = p.history(key).await;
        assert_eq!(
            (h.tombstones().len(), h.markers.len()),
            (1, 1),
            "one delete, recorded once: {h:?}"
        );
    }
    let nothing = p.history(&p.name("nothing")).await;
    assert!(nothing.versions.is_empty() && nothing.markers.is_empty());
    assert!(
        p.logs().contains("\"outcome\":\"deleted\"") && p.logs().contains("deleter-tagged"),
        "{}",
        p.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn without_a_record_the_deleter_is_unknown_never_a_guess() {
    let p = Pipeline::start().await;
    let (plain, recreated) = (p.name("plain"), p.name("recreated"));
    backed_up(&p, &plain).await;
    backed_up(&p, &recreated).await;

    // No CloudTrail record (no trail, or RecordDeleters off).
    p.delete(&plain).await;
    p.publish(&plain, "Delete", "String", now_secs()).await;
    p.drain().await;
    assert_eq!(log_rows(&p, &plain), [(false, None), (true, None)]);
    assert!(log_table(&p, &plain).contains("unknown"));

    // Deleted and re-created before either event is processed, CloudTrail's first: a
    // tombstone now would say the parameter is gone, so the record writes nothing, and the
    // delete its change event records later has no known deleter.
    p.delete(&recreated).await;
    let deleted_at = now_secs();
    sleep_secs(1.1).await;
    p.put(&recreated, "v2", ParameterType::String, None).await;
    let created_at = now_secs();
    p.publish_cloudtrail_delete(&[&recreated], &[], ALICE, deleted_at)
        .await;
    p.drain().await;
    assert_eq!(p.history(&recreated).await.tombstones().len(), 0);
    p.publish(&recreated, "Delete", "String", deleted_at).await;
    p.publish(&recreated, "Create", "String", created_at).await;
    p.drain().await;
    assert_eq!(
        log_rows(&p, &recreated),
        [(false, None), (true, None), (false, None)],
        "{}",
        p.logs()
    );
    assert!(p.logs().contains("still-exists"), "{}", p.logs());
}

/// Object Lock keeps a version from being deleted or overwritten; its tags stay editable, so
/// a locked tombstone still gets its deleter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_locked_tombstone_still_gets_its_deleter() {
    let p = Pipeline::start_with_object_lock("GOVERNANCE", 1).await;
    let key = p.name("locked");
    backed_up(&p, &key).await;
    p.delete(&key).await;
    let t = now_secs();
    p.publish(&key, "Delete", "String", t).await;
    p.drain().await;
    p.publish_cloudtrail_delete(&[&key], &[], BOB, t).await;
    p.drain().await;
    assert_eq!(
        log_rows(&p, &key),
        [(false, None), (true, Some(BOB.to_owned()))],
        "{}",
        p.logs()
    );
}

/// A delete's change event and its CloudTrail record in one batch, the record first on the
/// queue: the Lambda takes one parameter's work in event order, a change before a record of
/// the same second, so the change event writes the tombstone and the record tags it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn in_one_batch_the_change_event_goes_first() {
    let p = Pipeline::start().await;
    let key = p.name("batched");
    backed_up(&p, &key).await;
    p.delete(&key).await;
    let t = now_secs();
    p.publish_cloudtrail_delete(&[&key], &[], ALICE, t).await;
    p.publish(&key, "Delete", "String", t).await;
    let batches = p.drain().await;
    assert_eq!(batches.len(), 1, "one batch: {batches:?}");
    assert_eq!(
        log_rows(&p, &key),
        [(false, None), (true, Some(ALICE.to_owned()))]
    );
    let tagged = p
        .logs()
        .lines()
        .any(|l| l.contains(&key) && l.contains("\"outcome\":\"deleter-tagged\""));
    assert!(tagged, "{}", p.logs());
}

/// Whether S3 refuses a request's tags: a value outside S3's tag-value pattern (S3 API
/// reference, `Tag`), in a PutObject's `x-amz-tagging` header or a PutObjectTagging body.
/// moto takes any value.
fn tags_s3_refuses(seen: &Seen) -> bool {
    static VALUE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").expect("pattern")
    });
    if seen.target.is_some() || seen.method != "PUT" {
        return false;
    }
    let decode = |v: &str| {
        percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut values: Vec<String> = seen
        .headers
        .get("x-amz-tagging")
        .map(|h| {
            h.split('&')
                .map(|pair| decode(pair.split_once('=').map_or("", |(_, v)| v)))
                .collect()
        })
        .unwrap_or_default();
    if seen.path.contains("tagging") {
        values.extend(seen.body.split("<Value>").skip(1).map(|rest| {
            rest.split("</Value>")
                .next()
                .unwrap_or_default()
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
        }));
    }
    values
        .iter()
        .any(|v| v.chars().count() > 256 || !VALUE.is_match(v))
}

/// S3 refuses a tag value with `,`, which IAM names may hold: through a proxy that refuses
/// what S3 refuses, the deleter is still recorded, in either order (escaped as `=2C`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn an_arn_s3_cannot_tag_as_it_is_is_recorded_escaped() {
    let p = Pipeline::start_with_proxy().await;
    let proxy = p.proxy.as_ref().expect("a proxy");
    proxy.inject(
        usize::MAX,
        Fault::Invalid("InvalidTag: The TagValue you have provided is invalid"),
        tags_s3_refuses,
    );
    // The proxy refuses what S3 refuses.
    let through = Clients::new(&proxy.endpoint).await;
    let raw = through
        .s3
        .put_object()
        .bucket(&p.bucket)
        .key("/probe")
        .tagging(format!(
            "who={}",
            percent_encoding::utf8_percent_encode(BOB, percent_encoding::NON_ALPHANUMERIC)
        ))
        .body(b"x".to_vec().into())
        .send()
        .await;
    assert!(raw.is_err(), "a comma in a tag value is refused");

    let (late, early) = (p.name("late"), p.name("early"));
    for key in [&late, &early] {
        backed_up(&p, key).await;
        p.delete(key).await;
    }
    let t = now_secs();
    p.publish(&late, "Delete", "String", t).await;
    p.drain().await;
    p.publish_cloudtrail_delete(&[&late, &early], &[], BOB, t)
        .await;
    p.drain().await;
    p.publish(&early, "Delete", "String", t).await;
    p.drain().await;
    for key in [&late, &early] {
        assert_eq!(
            log_rows(&p, key),
            [(false, None), (true, Some(BOB.to_owned()))],
            "{key}: {}",
            p.logs()
        );
        let tagged = p.history(key).await.tombstones()[0]
            .tag("ssmbakDeletedBy")
            .map(str::to_owned);
        assert_eq!(
            tagged.as_deref(),
            Some("arn:aws:iam::123456789012:user/ops/bob=2Cjr=3D2")
        );
    }
    assert!(!p.logs().contains("\"outcome\":\"failed\""), "{}", p.logs());
}
