//! Issue 28's scenarios 1-3, end to end: the real release Lambda processes SSM's change events
//! in the order SQS may deliver them (late, out of order, some lost), and the real `ssmbak`
//! previews and restores from what it wrote, before any reconcile runs (a reconcile may repair
//! a record later; a restore in between must already be right). Each failed before the
//! writer decided by event time (`ssmbak_core::backup`'s decisions, simulated in
//! `ssmbak_core::sim`).
//!
//! moto emits no SSM events: the tests publish them as SSM would, holding some back to
//! publish later, or never.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::{run, Run};
use ssmbak_tests::emulator::checktime;
use ssmbak_tests::pipeline::{now_secs, Pipeline};

fn ssmbak(args: &[&str], env: &[(&str, &str)]) -> Run {
    run(env!("CARGO_BIN_EXE_ssmbak"), args, env)
}

async fn sleep_secs(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

fn json_of(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// What `ssmbak preview KEY WHEN` would change.
fn planned(p: &Pipeline, key: &str, when: &str) -> serde_json::Value {
    let env = [("SSMBAK_BUCKET", p.bucket.as_str())];
    json_of(&ssmbak(&["preview", key, when, "--output", "json"], &env))["changes"].clone()
}

/// A preview to now plans nothing for `key`, and a restore to now leaves SSM as it is.
async fn nothing_to_restore_now(p: &Pipeline, key: &str) {
    assert_eq!(
        planned(p, key, "now"),
        serde_json::json!([]),
        "{}",
        p.logs()
    );
    let before = p.aws.parameter_value(key).await;
    let env = [("SSMBAK_BUCKET", p.bucket.as_str())];
    let restore = ssmbak(&["restore", key, "now"], &env);
    assert_eq!(restore.code, 0, "{}\n{}", restore.stdout, restore.stderr);
    assert_eq!(p.aws.parameter_value(key).await, before);
}

/// Scenario 1: `/p` backed up at version 1, deleted and re-created (SSM starts it again at
/// version 1), the Create processed before the held Delete. It was dropped as a duplicate of
/// the old version 1: a restore to now deleted the live parameter, and with the Delete's event
/// lost, wrote the old value back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_re_created_parameter_processed_before_its_delete_is_kept() {
    let p = Pipeline::start().await;
    let (held, lost) = (p.name("held"), p.name("lost"));
    for key in [&held, &lost] {
        p.change(key, "old", ParameterType::String, None, "Create")
            .await;
    }
    p.drain().await;
    sleep_secs(1.1).await;
    for key in [&held, &lost] {
        p.delete(key).await;
    }
    let deleted = now_secs();
    sleep_secs(2.1).await;
    for key in [&held, &lost] {
        let version = p
            .change(key, "new", ParameterType::String, None, "Create")
            .await;
        assert_eq!(version, 1, "SSM numbers a re-created parameter from 1");
    }
    p.drain().await;
    nothing_to_restore_now(&p, &held).await;
    nothing_to_restore_now(&p, &lost).await;

    // The held Delete arrives: still nothing to restore, and the delete keeps its time.
    p.publish(&held, "Delete", "String", deleted).await;
    p.drain().await;
    nothing_to_restore_now(&p, &held).await;
    assert_eq!(p.aws.parameter_value(&held).await.as_deref(), Some("new"));
    let at_delete = planned(&p, &held, &checktime(deleted));
    assert_eq!(
        at_delete.as_array().map(Vec::len),
        Some(1),
        "at the delete's time it was deleted: {at_delete}"
    );
}

/// Scenario 2: `/q` deleted, re-created, the Create processed before the Delete (S3's newest
/// entry is then the delete marker while `/q` exists), then deleted again. The writer took the
/// marker for "already deleted" and wrote nothing: a restore to now brought `/q` back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_delete_after_an_out_of_order_delete_is_recorded() {
    let p = Pipeline::start().await;
    let key = p.name("q");
    for (value, op) in [("v1", "Create"), ("v2", "Update"), ("v3", "Update")] {
        p.change(&key, value, ParameterType::String, None, op).await;
        sleep_secs(1.1).await;
    }
    p.drain().await;
    p.delete(&key).await;
    let first_delete = now_secs();
    sleep_secs(2.1).await;
    p.change(&key, "again", ParameterType::String, None, "Create")
        .await;
    p.drain().await;
    p.publish(&key, "Delete", "String", first_delete).await;
    p.drain().await;
    nothing_to_restore_now(&p, &key).await;

    sleep_secs(1.1).await;
    p.delete(&key).await;
    p.publish(&key, "Delete", "String", now_secs()).await;
    p.drain().await;
    nothing_to_restore_now(&p, &key).await;
    assert_eq!(
        p.aws.parameter_value(&key).await,
        None,
        "never brought back"
    );
}

/// Scenario 3: v5 written, labelled 3 s later, the label's event processed first. v5 was then
/// recorded only from the label's time, the Update taken for a duplicate: a restore to a time
/// between the write and the label wrote v4 back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_version_labelled_before_its_update_is_processed_counts_from_its_write() {
    let p = Pipeline::start().await;
    let key = p.name("r");
    p.change(&key, "v4", ParameterType::String, None, "Create")
        .await;
    p.drain().await;
    sleep_secs(1.1).await;
    let version = p.put(&key, "v5", ParameterType::String, None).await;
    let written = now_secs();
    sleep_secs(3.1).await;
    p.aws.label_parameter(&key, version, &["prod"]).await;
    p.publish(&key, "LabelParameterVersion", "String", now_secs())
        .await;
    p.drain().await;
    p.publish(&key, "Update", "String", written).await;
    p.drain().await;

    let between = checktime(written + 1);
    assert_eq!(
        planned(&p, &key, &between),
        serde_json::json!([]),
        "v5 was current between its write and its label: {}",
        p.logs()
    );
    nothing_to_restore_now(&p, &key).await;
}
