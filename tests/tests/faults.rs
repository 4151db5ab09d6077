//! Faults real accounts see, injected on loopback between the real Lambda and the emulator:
//! nothing is lost and nothing is recorded twice.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::bucket_owner::{OwnerCheck, EMULATOR_ACCOUNT};
use ssmbak_tests::fault_proxy::Fault;
use ssmbak_tests::pipeline::{now_secs, Pipeline, VISIBILITY_TIMEOUT};

async fn after_visibility_timeout() {
    tokio::time::sleep(Duration::from_secs_f64(f64::from(VISIBILITY_TIMEOUT) + 0.5)).await;
}

/// Creates the parameters and publishes their events.
async fn changes(p: &Pipeline, leaves: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for leaf in leaves {
        let name = p.name(leaf);
        p.put(
            &name,
            &format!("value of {leaf}"),
            ParameterType::String,
            None,
        )
        .await;
        p.publish(&name, "Create", "String", now_secs()).await;
        names.push(name);
    }
    names
}

async fn assert_exactly_once(p: &Pipeline, names: &[String]) {
    for name in names {
        let values = p.history(name).await;
        assert_eq!(
            values.values().len(),
            1,
            "{name}: exactly one version\n{}",
            p.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn throttling_and_5xx_fail_only_their_records_and_redelivery_completes() {
    let p = Pipeline::start_with_proxy().await;
    let proxy = p.proxy.as_ref().expect("a proxy");
    let names = changes(&p, &["a", "throttled", "broken", "d"]).await;
    // One throttle on a: the SDK's retry absorbs it.
    let a = names[0].clone();
    proxy.inject(1, Fault::Throttle, move |s| {
        s.operation() == "AmazonSSM.GetParameterHistory" && s.body.contains(&a)
    });
    // More failures than the SDK retries (5 attempts): those records fail and come back.
    let throttled = names[1].clone();
    proxy.inject(6, Fault::Throttle, move |s| {
        s.operation() == "AmazonSSM.GetParameterHistory" && s.body.contains(&throttled)
    });
    let broken = names[2].clone();
    proxy.inject(6, Fault::ServerError, move |s| s.is_s3("PUT", &broken));

    let first = p.pump_once().await.expect("a batch");
    assert_eq!(first.message_ids.len(), 4);
    assert_eq!(
        first.failed.len(),
        2,
        "only the two records past their retries: {first:?}\n{}",
        p.logs()
    );
    after_visibility_timeout().await;
    let second = p.pump_once().await.expect("the failed records come back");
    let mut again = second.message_ids.clone();
    again.sort();
    let mut failed = first.failed.clone();
    failed.sort();
    assert_eq!(again, failed, "the others are not repeated");
    assert!(second.failed.is_empty(), "{second:?}\n{}", p.logs());
    assert!(p.pump_once().await.is_none(), "the queue is empty");
    assert_exactly_once(&p, &names).await;
    assert!(proxy.injected() >= 13, "{}", proxy.injected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_lambda_killed_mid_batch_loses_nothing_and_duplicates_nothing() {
    let mut p = Pipeline::start_with_proxy().await;
    let names = changes(&p, &["one", "slow", "three"]).await;
    // The write of "slow" hangs; the process is killed meanwhile, after the others were written.
    let slow = names[1].clone();
    p.proxy
        .as_ref()
        .expect("a proxy")
        .inject(1, Fault::Delay(Duration::from_secs(6)), move |s| {
            s.is_s3("PUT", &slow)
        });
    let pid = p.lambda_pid();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    // The function has 8 s: it would give the hung write up at 5 s, but is killed at 3 s.
    let lost = p
        .pump_once_within(Duration::from_secs(8))
        .await
        .expect("a batch");
    killer.await.expect("killer");
    assert!(
        matches!(
            lost.invocation,
            ssmbak_tests::runtime_api::Invocation::TimedOut
        ),
        "{:?}",
        lost.invocation
    );
    p.restart_lambda();
    after_visibility_timeout().await;
    tokio::time::sleep(Duration::from_secs(4)).await; // the hung write lands (or not) meanwhile
    let batches = p.drain().await;
    assert!(
        batches.iter().all(|b| b.failed.is_empty()),
        "{batches:?}\n{}",
        p.logs()
    );
    assert_exactly_once(&p, &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_poison_record_ends_in_the_dead_letter_queue_and_the_rest_flows() {
    let p = Pipeline::start_with_dead_letters(2).await;
    p.send_raw("{\"poison\": true}").await;
    let names = changes(&p, &["good"]).await;
    let first = p.pump_once().await.expect("a batch");
    assert_eq!(first.failed.len(), 1);
    assert_exactly_once(&p, &names).await;
    for _ in 0..3 {
        after_visibility_timeout().await;
        let _ = p.pump_once().await;
    }
    let dlq = p.dead_letter_url.as_deref().expect("a dead-letter queue");
    let dead = p
        .aws
        .sqs
        .receive_message()
        .queue_url(dlq)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    let bodies: Vec<String> = dead
        .messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect();
    assert_eq!(
        bodies,
        ["{\"poison\": true}"],
        "after its receives the poison record waits in the DLQ"
    );
    assert!(
        p.pump_once().await.is_none(),
        "and the source queue is clear"
    );
}

/// A record still in flight near the deadline (a slow SSM answer, retries and all) is given up
/// and reported failed: the invocation answers in time, and the records already done are not
/// received again. A function that timed out instead would count a receive against every
/// record of the batch (Lambda developer guide, "Using Lambda with Amazon SQS": a timed-out
/// invocation returns the whole batch to the queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_slow_record_is_given_up_before_the_deadline_and_the_rest_are_done() {
    let p = Pipeline::start_with_proxy().await;
    let proxy = p.proxy.as_ref().expect("a proxy");
    let names = changes(&p, &["quick", "slow"]).await;
    let slow = names[1].clone();
    proxy.inject(1, Fault::Delay(Duration::from_secs(40)), move |s| {
        s.operation() == "AmazonSSM.GetParameterHistory" && s.body.contains(&slow)
    });
    let started = std::time::Instant::now();
    // A function with a 10 s timeout: the batch gives up 3 s before it.
    let batch = p
        .pump_once_within(Duration::from_secs(10))
        .await
        .expect("a batch");
    assert!(
        matches!(
            batch.invocation,
            ssmbak_tests::runtime_api::Invocation::Response(_)
        ),
        "answered, not timed out: {:?}\n{}",
        batch.invocation,
        p.logs()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(batch.failed.len(), 1, "{}", p.logs());
    assert_eq!(p.history(&names[0]).await.values().len(), 1);
    assert_eq!(p.history(&names[1]).await.values().len(), 0);
    assert!(p.logs().contains("out of time"), "{}", p.logs());
}

/// The Lambda names its own account (from its ARN, the Runtime API's
/// `Lambda-Runtime-Invoked-Function-Arn`) as the expected owner of every S3 request, so a
/// bucket of another account behind `SSMBAK_BUCKET` is refused by S3 and receives nothing.
/// moto checks no owner: `OwnerCheck` plays S3's bucket owner condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn every_s3_request_of_the_lambda_names_its_own_account_as_the_bucket_owner() {
    let p = Pipeline::start_with_proxy().await;
    let proxy = p.proxy.as_ref().expect("a proxy");
    let check = OwnerCheck::install(proxy, &[(&p.bucket, EMULATOR_ACCOUNT)]);
    let names = changes(&p, &["a", "b"]).await;
    let batch = p.pump_once().await.expect("a batch");
    assert!(batch.failed.is_empty(), "{batch:?}\n{}", p.logs());
    assert_exactly_once(&p, &names).await;
    assert!(
        proxy.counts().keys().any(|op| op.starts_with("S3 ")),
        "the Lambda's S3 calls went through the proxy: {:?}",
        proxy.counts()
    );
    assert_eq!(check.unconditioned(), Vec::<String>::new());
}
