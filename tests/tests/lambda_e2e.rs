//! The backup Lambda end to end: SSM-shaped events through EventBridge and SQS on the
//! emulator, processed by the real release `bootstrap` through a local Runtime API.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::pipeline::{now_secs, History, Pipeline, VISIBILITY_TIMEOUT};

macro_rules! pipeline {
    () => {
        Pipeline::start().await
    };
}

async fn sleep_secs(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

/// What the original ssmbak 0.5.2 reader (§3.3 of the reference) makes of a key at `at`:
/// `Ok(Some(value))`, `Ok(None)` for deleted or absent, `Err` where it would crash.
fn original_reader(h: &History, at: i64) -> Result<Option<String>, String> {
    let all = h.versions.iter().chain(&h.markers);
    let best = all
        .filter_map(|s| {
            let t = match s.tag("ssmbakTime") {
                Some(t) => t.parse::<i64>().map_err(|e| e.to_string()).ok()?,
                None => s.last_modified_ms.div_euclid(1000),
            };
            (t <= at).then_some((t, s.last_modified_ms, s.is_delete_marker, s))
        })
        .max_by_key(|(t, lm, marker, _)| (*t, *lm, *marker));
    match best {
        None => Ok(None),
        Some((_, _, true, _)) => Ok(None),
        Some((_, _, false, s))
            if s.tag("ssmbakType").is_none() || s.tag("ssmbakTime").is_none() =>
        {
            Err("KeyError".to_owned())
        }
        Some((_, _, false, s)) => Ok(Some(s.body_str())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn create_update_delete_are_recorded_in_the_original_layout() {
    let p = pipeline!();
    let name = p.name("app/db");
    p.put(
        &name,
        "initial",
        ParameterType::String,
        Some("fancy (desc) é!"),
    )
    .await;
    let t1 = now_secs();
    p.publish(&name, "Create", "String", t1).await;
    let batches = p.drain().await;
    assert!(
        batches.iter().all(|b| b.failed.is_empty()),
        "{batches:?}\n{}",
        p.logs()
    );

    let h = p.history(&name).await;
    let values = h.values();
    assert_eq!(values.len(), 1, "{}", p.logs());
    let v = values[0];
    assert_eq!(v.body, b"initial");
    assert_eq!(v.tag("ssmbakTime"), Some(t1.to_string().as_str()));
    assert_eq!(v.tag("ssmbakType"), Some("String"));
    assert_eq!(
        v.tag("ssmbakDescription"),
        Some("fancy desc "),
        "sanitised as the original"
    );
    assert_eq!(v.tag("ssmbakVersion"), Some("1"));
    let f = v.fields().attributes;
    assert_eq!(
        f.description.as_deref(),
        Some("fancy (desc) é!"),
        "raw description kept beside"
    );
    assert_eq!(f.version, Some(1));
    assert!(f
        .last_modified_ms
        .is_some_and(|ms| ms.div_euclid(1000) <= t1));
    assert_eq!(f.tier.as_deref(), Some("Standard"));
    assert_eq!(f.data_type.as_deref(), Some("text"));

    sleep_secs(1.1).await;
    p.put(
        &name,
        "  second value \n",
        ParameterType::String,
        Some("fancy (desc) é!"),
    )
    .await;
    let t2 = now_secs();
    p.publish(&name, "Update", "String", t2).await;
    p.drain().await;
    sleep_secs(1.1).await;
    p.delete(&name).await;
    let t3 = now_secs();
    p.publish(&name, "Delete", "String", t3).await;
    p.drain().await;

    let h = p.history(&name).await;
    let values = h.values();
    assert_eq!(values.len(), 2);
    assert_eq!(
        values[1].body, b"  second value \n",
        "the body is the raw value, untrimmed"
    );
    assert_eq!(values[1].tag("ssmbakVersion"), Some("2"));
    assert_eq!(h.tombstones().len(), 1);
    assert_eq!(h.markers.len(), 1);
    assert_eq!(h.value_at(t1).as_deref(), Some("initial"));
    assert_eq!(h.value_at(t2).as_deref(), Some("  second value \n"));
    assert_eq!(h.value_at(t3), None);
    // The original's reader: the same values, and deleted once the marker exists.
    assert_eq!(original_reader(&h, t1), Ok(Some("initial".to_owned())));
    assert_eq!(original_reader(&h, now_secs() + 1), Ok(None));
}

/// `name` created with `v1` (backed up), then deleted a second later: the delete's event is
/// published, not yet processed. Returns both event times.
async fn created_then_deleted(p: &Pipeline, name: &str) -> (i64, i64) {
    p.put(name, "v1", ParameterType::String, None).await;
    let created = now_secs();
    p.publish(name, "Create", "String", created).await;
    p.drain().await;
    sleep_secs(1.1).await;
    p.delete(name).await;
    let deleted = now_secs();
    p.publish(name, "Delete", "String", deleted).await;
    (created, deleted)
}

/// With Object Lock (the template's ObjectLockMode), S3 refuses PutObject without Content-MD5
/// or a checksum when a default retention applies (S3 User Guide, "Using S3 Object Lock": "The
/// Content-MD5 or x-amz-sdk-checksum-algorithm header is required"), which the SDK sends; a
/// delete is a delete marker, which the lock allows; and no version can be erased before its
/// retention ends. moto enforces all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn backups_under_object_lock_are_written_and_cannot_be_erased() {
    let p = Pipeline::start_with_object_lock("GOVERNANCE", 1).await;
    let name = p.name("locked");
    let (t1, t2) = created_then_deleted(&p, &name).await;
    let batches = p.drain().await;
    assert!(
        batches.iter().all(|b| b.failed.is_empty()),
        "{batches:?}\n{}",
        p.logs()
    );
    let h = p.history(&name).await;
    assert_eq!(h.values().len(), 1, "{}", p.logs());
    assert_eq!((h.tombstones().len(), h.markers.len()), (1, 1));
    assert_eq!(h.value_at(t1).as_deref(), Some("v1"));
    assert_eq!(h.value_at(t2), None);

    let version = h.values()[0].version_id.clone();
    let erased = p
        .aws
        .s3
        .delete_object()
        .bucket(&p.bucket)
        .key(&name)
        .version_id(&version)
        .send()
        .await;
    assert!(erased.is_err(), "a locked version cannot be erased");
    assert_eq!(p.history(&name).await.value_at(t1).as_deref(), Some("v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_delete_keeps_its_event_time_when_processed_late() {
    let p = pipeline!();
    let name = p.name("late-delete");
    let (_, t_del) = created_then_deleted(&p, &name).await;
    // An outage: the delete is processed seconds after it happened.
    sleep_secs(2.2).await;
    p.drain().await;

    let h = p.history(&name).await;
    let tombstones = h.tombstones();
    assert_eq!(tombstones.len(), 1);
    assert_eq!(
        tombstones[0].tag("ssmbakDeleted"),
        Some(t_del.to_string().as_str())
    );
    assert_eq!(
        tombstones[0].tag("ssmbakTime"),
        None,
        "the original must not read it as a value"
    );
    assert!(tombstones[0].body.is_empty());
    let marker_secs = h.markers[0].last_modified_ms.div_euclid(1000);
    assert!(marker_secs >= t_del + 2, "the marker was written late");

    assert_eq!(h.value_at(t_del - 1).as_deref(), Some("v1"));
    assert_eq!(
        h.value_at(t_del),
        None,
        "deleted at the event time, not at processing time"
    );
    assert_eq!(h.value_at(marker_secs + 1), None);
    // The original keeps its documented behaviour: the old value until the marker, then deleted.
    assert_eq!(original_reader(&h, t_del), Ok(Some("v1".to_owned())));
    assert_eq!(original_reader(&h, marker_secs + 1), Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn root_level_names_get_their_slash() {
    let p = pipeline!();
    // A root-level parameter: events name it without the leading slash.
    let name = p.prefix.clone();
    p.put(&name, "rooted", ParameterType::StringList, None)
        .await;
    let t = now_secs();
    p.publish(name.trim_start_matches('/'), "Create", "StringList", t)
        .await;
    p.drain().await;
    let h = p.history(&name).await;
    assert_eq!(h.values().len(), 1, "{}", p.logs());
    assert_eq!(h.values()[0].body, b"rooted");
    assert_eq!(h.values()[0].tag("ssmbakType"), Some("StringList"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn secure_strings_are_stored_decrypted_and_never_logged() {
    let p = pipeline!();
    let name = p.name("secret");
    let secret = ssmbak_tests::sentinel::secret();
    p.put(
        &name,
        &secret,
        ParameterType::SecureString,
        Some("db password"),
    )
    .await;
    p.publish(&name, "Update", "SecureString", now_secs()).await;
    p.drain().await;
    let h = p.history(&name).await;
    assert_eq!(h.values().len(), 1, "{}", p.logs());
    assert_eq!(h.values()[0].body_str(), secret);
    assert_eq!(h.values()[0].tag("ssmbakType"), Some("SecureString"));
    let logs = p.logs();
    assert!(logs.contains(&name), "the logs name the parameter: {logs}");
    assert!(
        !logs.contains(&secret),
        "a SecureString value reached the logs (LOGLEVEL=debug)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn quick_updates_processed_late_keep_their_own_values() {
    let p = pipeline!();
    let name = p.name("burst");
    let mut times = Vec::new();
    for (i, value) in ["v1", "v2", "v3"].iter().enumerate() {
        if i > 0 {
            sleep_secs(1.1).await;
        }
        p.put(&name, value, ParameterType::String, None).await;
        times.push(now_secs());
    }
    for (i, t) in times.iter().enumerate() {
        p.publish(
            &name,
            if i == 0 { "Create" } else { "Update" },
            "String",
            *t,
        )
        .await;
    }
    // Processed only now, when SSM already holds v3.
    p.drain().await;
    let h = p.history(&name).await;
    let got: Vec<(String, Option<String>, Option<String>)> = h
        .values()
        .iter()
        .map(|v| {
            (
                v.body_str(),
                v.tag("ssmbakTime").map(str::to_owned),
                v.tag("ssmbakVersion").map(str::to_owned),
            )
        })
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let expected: Vec<(String, Option<String>, Option<String>)> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                format!("v{}", i + 1),
                Some(t.to_string()),
                Some((i + 1).to_string()),
            )
        })
        .collect();
    assert_eq!(got_sorted, expected, "{}", p.logs());
    for (i, t) in times.iter().enumerate() {
        assert_eq!(h.value_at(*t), Some(format!("v{}", i + 1)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn duplicate_deliveries_add_no_versions() {
    let p = pipeline!();
    let name = p.name("dup");
    p.put(&name, "once", ParameterType::String, None).await;
    let t = now_secs();
    // Two copies in one batch, and a third delivered after the first were processed.
    p.publish(&name, "Create", "String", t).await;
    p.publish(&name, "Create", "String", t).await;
    p.drain().await;
    p.publish(&name, "Create", "String", t).await;
    p.drain().await;
    let h = p.history(&name).await;
    assert_eq!(h.values().len(), 1, "{}", p.logs());
    assert!(p.logs().contains("\"duplicate\""), "{}", p.logs());
    // And a duplicated delete adds no second tombstone.
    sleep_secs(1.1).await;
    p.delete(&name).await;
    let t_del = now_secs();
    p.publish(&name, "Delete", "String", t_del).await;
    p.drain().await;
    p.publish(&name, "Delete", "String", t_del).await;
    p.drain().await;
    let h = p.history(&name).await;
    assert_eq!(
        (h.tombstones().len(), h.markers.len()),
        (1, 1),
        "{}",
        p.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn out_of_order_processing_does_not_change_what_a_restore_sees() {
    let p = pipeline!();
    let name = p.name("ooo");
    p.put(&name, "first", ParameterType::String, None).await;
    let t1 = now_secs();
    sleep_secs(1.1).await;
    p.put(&name, "second", ParameterType::String, None).await;
    let t2 = now_secs();
    // The newer event is processed first.
    p.publish(&name, "Update", "String", t2).await;
    p.drain().await;
    p.publish(&name, "Create", "String", t1).await;
    p.drain().await;
    let h = p.history(&name).await;
    assert_eq!(h.values().len(), 2, "{}", p.logs());
    assert_eq!(h.values()[0].body_str(), "second", "written first");
    assert_eq!(h.value_at(t1).as_deref(), Some("first"));
    assert_eq!(h.value_at(t2).as_deref(), Some("second"));
    assert_eq!(h.value_at(now_secs() + 5).as_deref(), Some("second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_parameter_deleted_before_processing_is_skipped() {
    let p = pipeline!();
    let name = p.name("gone");
    p.put(&name, "short-lived", ParameterType::String, None)
        .await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.delete(&name).await;
    let batches = p.drain().await;
    assert!(
        batches.iter().all(|b| b.failed.is_empty()),
        "not an error: {batches:?}"
    );
    assert!(p.history(&name).await.versions.is_empty());
    assert!(p.logs().contains("deleted-before-backup"), "{}", p.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn other_operations_are_logged_and_skipped() {
    let p = pipeline!();
    let name = p.name("future");
    p.put(&name, "v", ParameterType::String, None).await;
    p.publish(&name, "SomeFutureOperation", "String", now_secs())
        .await;
    let batches = p.drain().await;
    assert!(batches.iter().all(|b| b.failed.is_empty()), "{batches:?}");
    assert!(p.history(&name).await.versions.is_empty());
    assert!(p.logs().contains("SomeFutureOperation"), "{}", p.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_malformed_record_fails_alone() {
    let p = pipeline!();
    let name = p.name("good");
    p.put(&name, "fine", ParameterType::String, None).await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.send_raw("this is not an event").await;
    p.send_raw(r#"{"source":"aws.ssm","detail-type":"Parameter Store Change","time":"2024-01-01T00:00:00Z","detail":{"type":"String","operation":"Create"}}"#).await;
    p.publish_event(
        "aws.ssm",
        "Parameter Store Change",
        r#"{"name":"/x","operation":"Create"}"#,
        now_secs(),
    )
    .await;

    let batch = p.pump_once().await.expect("a batch");
    assert_eq!(batch.message_ids.len(), 4, "one batch of four");
    // The event with a name but a time... all but the good one and the one naming `/x`
    // (a valid event for a parameter that does not exist) are malformed.
    assert_eq!(batch.failed.len(), 2, "{batch:?}\n{}", p.logs());
    assert_eq!(
        p.history(&name).await.values().len(),
        1,
        "the good record is done"
    );
    assert!(p.logs().contains("malformed record"), "{}", p.logs());

    // The failed records come back after the visibility timeout, the others do not.
    sleep_secs(f64::from(VISIBILITY_TIMEOUT) + 0.5).await;
    let again = p
        .pump_once()
        .await
        .expect("the failed records are redelivered");
    let mut redelivered = again.message_ids.clone();
    redelivered.sort();
    let mut failed = batch.failed.clone();
    failed.sort();
    assert_eq!(redelivered, failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn the_scheduled_reconcile_backs_up_what_the_events_missed() {
    let p = reconciling_pipeline().await;
    let (seen, missed) = (p.name("seen"), p.name("missed/deep"));
    let missed_value = ssmbak_tests::sentinel::secret();
    p.put(&seen, "v1", ParameterType::String, None).await;
    p.publish(&seen, "Create", "String", now_secs()).await;
    p.drain().await;
    // Changes whose events never arrived (SSM delivers them best-effort).
    p.put(&missed, &missed_value, ParameterType::SecureString, None)
        .await;
    p.put(&seen, "v2", ParameterType::String, None).await;

    let (summary, body) = reconcile(&p, 60);
    let mut answers = body;
    assert_eq!(summary["checked"], 2, "{summary}");
    assert_eq!(summary["repaired"], 2, "{summary}");
    assert_eq!(
        p.history(&missed).await.values()[0].body_str(),
        missed_value
    );
    let seen_history = p.history(&seen).await;
    let values: Vec<String> = seen_history.values().iter().map(|v| v.body_str()).collect();
    assert_eq!(values, ["v1", "v2"]);

    // Nothing is missing any more: a second run repairs nothing.
    let (summary, body) = reconcile(&p, 60);
    answers.push_str(&body);
    assert_eq!(
        (summary["checked"].clone(), summary["repaired"].clone()),
        (2.into(), 0.into()),
        "{summary}"
    );
    // Everything the Lambda produced: its stdout and stderr at debug level, and its answers.
    let outputs = format!("{}\n{answers}", p.logs());
    assert!(
        !outputs.contains(&missed_value),
        "a SecureString value reached the Lambda's output"
    );

    let unknown = p.invoke(serde_json::json!({"hello": "world"}));
    assert!(
        matches!(unknown, ssmbak_tests::runtime_api::Invocation::Error(_)),
        "{unknown:?}"
    );
}

/// A pipeline whose Lambda's scheduled reconcile covers this test's prefix.
async fn reconciling_pipeline() -> Pipeline {
    Pipeline::start_with_env(&[("SSMBAK_RECONCILE_PATHS", "{prefix}")]).await
}

/// Creates each parameter with the value `v1`, backs it up through the pipeline, and lets a
/// second pass.
async fn backed_up(p: &Pipeline, names: &[&String]) {
    for name in names {
        p.put(name, "v1", ParameterType::String, None).await;
        p.publish(name, "Create", "String", now_secs()).await;
    }
    p.drain().await;
    sleep_secs(1.1).await;
}

/// Runs the scheduled reconcile in a function with `timeout_secs` to live; its summary, and
/// the answer as sent.
fn reconcile(p: &Pipeline, timeout_secs: u64) -> (serde_json::Value, String) {
    let answer = p.invoke_within(
        serde_json::json!({"ssmbak": "reconcile"}),
        Duration::from_secs(timeout_secs),
    );
    let ssmbak_tests::runtime_api::Invocation::Response(body) = answer else {
        panic!("{answer:?}\n{}", p.logs());
    };
    let summary = serde_json::from_str(&body).expect("JSON");
    (summary, body)
}

/// A delete whose event never arrived: the parameter is gone from SSM while its newest backup
/// is a value. The reconcile records the delete at the time it found it gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn the_reconcile_records_a_delete_the_events_missed() {
    let p = reconciling_pipeline().await;
    let (kept, gone) = (p.name("kept"), p.name("gone/deep"));
    backed_up(&p, &[&kept, &gone]).await;
    p.delete(&gone).await;
    let before = now_secs();
    sleep_secs(1.1).await;

    let (summary, _) = reconcile(&p, 60);
    assert_eq!(
        (summary["checked"].clone(), summary["removed"].clone()),
        (1.into(), 1.into()),
        "{summary}\n{}",
        p.logs()
    );
    let h = p.history(&gone).await;
    assert_eq!((h.tombstones().len(), h.markers.len()), (1, 1), "{h:?}");
    let deleted_at = h.tombstones()[0].fields().deleted_at.unwrap_or_default();
    assert!(
        deleted_at > before,
        "the detection time, {deleted_at} > {before}"
    );
    assert_eq!(h.value_at(before).as_deref(), Some("v1"));
    assert_eq!(h.value_at(now_secs()), None);
    assert_eq!(p.history(&kept).await.tombstones().len(), 0);
    // One EMF line per run, for the alarms.
    assert!(
        p.logs().contains("\"ReconcileRemoved\":1"),
        "an embedded-metric line: {}",
        p.logs()
    );

    // Recorded once: the next run finds nothing to do.
    let (summary, _) = reconcile(&p, 60);
    assert_eq!(summary["removed"], 0, "{summary}");
    assert_eq!(p.history(&gone).await.tombstones().len(), 1);
}

/// A run that cannot list everything before its deadline checks nothing, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_reconcile_out_of_time_says_so() {
    let p = reconciling_pipeline().await;
    p.put(&p.name("a"), "v1", ParameterType::String, None).await;
    // Less time than the margin the reconcile keeps: nothing may start.
    let (summary, _) = reconcile(&p, 5);
    assert_eq!(
        (summary["incomplete"].clone(), summary["checked"].clone()),
        (true.into(), 0.into()),
        "{summary}"
    );
    assert!(
        p.logs().contains("\"ReconcileIncomplete\":1"),
        "{}",
        p.logs()
    );
}

/// Parameters removed by their Expiration policy: SSM sends a "Parameter Store Policy Action"
/// event, not a Delete change (SSM User Guide, Parameter Store events). moto runs no policies
/// and sends no events, so the test deletes the parameter and publishes the event as SSM would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn an_expiry_is_recorded_as_a_delete_once_ssm_confirms_it() {
    let p = pipeline!();
    let (expired, still_there) = (p.name("expired"), p.name("still-there"));
    backed_up(&p, &[&expired, &still_there]).await;
    p.delete(&expired).await;
    let t = now_secs();
    for name in [&expired, &still_there] {
        let detail = serde_json::json!({
            "parameter-name": name,
            "parameter-type": "String",
            "policy-type": "Expiration",
            "action-status": "Finished",
        });
        p.publish_event(
            "aws.ssm",
            "Parameter Store Policy Action",
            &detail.to_string(),
            t,
        )
        .await;
    }
    p.drain().await;

    let h = p.history(&expired).await;
    assert_eq!(h.tombstones().len(), 1, "{}", p.logs());
    assert_eq!(h.tombstones()[0].fields().deleted_at, Some(t));
    assert_eq!(h.value_at(t - 1).as_deref(), Some("v1"));
    assert_eq!(h.value_at(t), None);
    let h = p.history(&still_there).await;
    assert_eq!(
        h.tombstones().len(),
        0,
        "SSM still has it: nothing recorded"
    );
    assert!(p.logs().contains("still-exists"), "{}", p.logs());
}

/// Tags and labels are recorded with each version. A label move (a `LabelParameterVersion`
/// event) and a tag edit (no event: the reconcile finds it) each make a new backup of the same
/// SSM version; the same state again makes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn tags_and_labels_are_recorded_and_their_changes_too() {
    let p = reconciling_pipeline().await;
    let name = p.name("tagged");
    let v1 = p.put(&name, "v1", ParameterType::String, None).await;
    p.aws
        .tag_parameter(&name, &[("team", "core"), ("env", "prod")])
        .await;
    p.aws.label_parameter(&name, v1, &["stable"]).await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.drain().await;
    let recorded = |h: &History| -> Vec<(Option<i64>, Vec<(String, String)>, Vec<String>)> {
        h.values()
            .iter()
            .map(|v| {
                let a = v.fields().attributes;
                (
                    a.version,
                    a.tags.unwrap_or_default().into_iter().collect(),
                    a.labels.unwrap_or_default(),
                )
            })
            .collect()
    };
    let pairs = |t: &[(&str, &str)]| -> Vec<(String, String)> {
        t.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let both = pairs(&[("env", "prod"), ("team", "core")]);
    assert_eq!(
        recorded(&p.history(&name).await),
        [(Some(v1), both.clone(), vec!["stable".to_owned()])]
    );

    sleep_secs(1.1).await;
    p.aws.label_parameter(&name, v1, &["canary"]).await;
    p.publish(&name, "LabelParameterVersion", "String", now_secs())
        .await;
    p.drain().await;
    // Delivered again: the bucket already says so.
    p.publish(&name, "LabelParameterVersion", "String", now_secs())
        .await;
    p.drain().await;
    let relabelled = vec!["canary".to_owned(), "stable".to_owned()];
    assert_eq!(
        recorded(&p.history(&name).await)[1..],
        [(Some(v1), both.clone(), relabelled.clone())]
    );

    sleep_secs(1.1).await;
    p.aws.untag_parameter(&name, &["env"]).await;
    let (summary, _) = reconcile(&p, 60);
    assert_eq!(summary["repaired"], 1, "{summary}");
    let (summary, _) = reconcile(&p, 60);
    assert_eq!(summary["repaired"], 0, "{summary}");
    assert_eq!(
        recorded(&p.history(&name).await)[2..],
        [(Some(v1), pairs(&[("team", "core")]), relabelled)]
    );
}

/// Fifty tags do not fit in S3's 2 KB of metadata: they go, with the labels, to a sidecar
/// named by its content, which the newest backup names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn fifty_tags_go_to_a_sidecar() {
    let p = pipeline!();
    let name = p.name("many-tags");
    p.put(&name, "v1", ParameterType::String, None).await;
    let values: Vec<(String, String)> = (0..50)
        .map(|i| (format!("key{i:02}"), format!("{i:02}-{}", "x".repeat(200))))
        .collect();
    let tags: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    p.aws.tag_parameter(&name, &tags).await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.drain().await;
    let history = p.history(&name).await;
    let stored = history.values()[0];
    let fields = stored.fields();
    assert_eq!(fields.attributes.tags, None, "not in the metadata");
    let digest = fields.extras.expect("a sidecar named");
    let sidecar = p
        .aws
        .s3
        .get_object()
        .bucket(&p.bucket)
        .key(ssmbak_core::format::extras_key(&digest))
        .send()
        .await
        .expect("the sidecar")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    let extras = ssmbak_core::format::Extras::from_json(&sidecar).expect("sidecar JSON");
    assert_eq!(extras.tags.len(), 50);
    assert_eq!(extras.tags.into_iter().collect::<Vec<_>>(), values);
}

/// Every value and tombstone the Lambda puts gets its index entry (`ssmbak_core::index`),
/// naming the version id S3 gave it and its place in time: what lets a reader place it without
/// reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn every_version_the_lambda_puts_is_indexed() {
    use ssmbak_core::index;
    let p = Pipeline::start().await;
    let name = p.name("indexed");
    p.change(&name, "v1", ParameterType::String, None, "Create")
        .await;
    p.drain().await;
    sleep_secs(1.1).await;
    p.change(&name, "v2", ParameterType::String, None, "Update")
        .await;
    p.drain().await;
    sleep_secs(1.1).await;
    p.delete(&name).await;
    p.publish(&name, "Delete", "String", now_secs()).await;
    p.drain().await;

    let h = p.history(&name).await;
    let listed = p
        .aws
        .s3
        .list_objects_v2()
        .bucket(&p.bucket)
        .prefix(index::scope_prefix(&name))
        .send()
        .await
        .expect("list the index");
    let mut entries: Vec<_> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter_map(index::parse_entry_key)
        .filter(|(key, _)| *key == name)
        .map(|(_, e)| e)
        .collect();
    entries.sort_by_key(|e| e.time);
    assert_eq!(entries.len(), h.versions.len(), "{entries:?}\n{}", p.logs());
    for e in &entries {
        let version = h
            .versions
            .iter()
            .find(|v| v.version_id == e.version_id)
            .expect("an entry names a listed version");
        let f = version.fields();
        assert_eq!(e.deleted, f.deleted_at.is_some(), "{e:?}");
        assert_eq!(Some(e.time), f.deleted_at.or(f.event_time), "{e:?}");
        assert_eq!(e.ssm_version, f.attributes.version, "{e:?}");
        assert_eq!(e.modified_ms, f.attributes.last_modified_ms, "{e:?}");
    }
    assert_eq!(
        entries.iter().map(|e| e.deleted).collect::<Vec<_>>(),
        [false, false, true]
    );
}
