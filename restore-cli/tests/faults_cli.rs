//! Restores under faults, through the loopback fault proxy: throttling is absorbed, a hard
//! failure is reported by name, and a re-run finishes the job.

use std::process::Command;
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::emulator::{self, unique, Clients};
use ssmbak_tests::fault_proxy::{Fault, FaultProxy};
use ssmbak_tests::pipeline::{now_secs, Pipeline};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(binary: &str, args: &[&str], endpoint: &str) -> Run {
    let out = Command::new(binary)
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env_remove("SSMBAK_BUCKET")
        .output()
        .expect("run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn iso(secs: i64) -> String {
    ssmbak_tests::emulator::checktime(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssmbak_restore_absorbs_throttling_and_reports_a_hard_failure_by_name() {
    let Some(p) = Pipeline::start().await else {
        return;
    };
    let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|l| p.name(l)).collect();
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
        let v = p
            .aws
            .ssm
            .get_parameter()
            .name(n)
            .send()
            .await
            .expect("get")
            .parameter
            .and_then(|p| p.value);
        assert_eq!(v.as_deref(), Some("good"), "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_s3bak_restore_is_finished_by_a_rerun() {
    let Some(endpoint) = emulator::endpoint() else {
        return;
    };
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
