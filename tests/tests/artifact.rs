//! The Lambda artifact itself: what `cargo xtask build-lambda` ships.

use std::time::Duration;

use ssmbak_tests::events::{change_event, sqs_event, sqs_record};
use ssmbak_tests::lambda::{extract_bootstrap, Bootstrap, ZIP_VAR};
use ssmbak_tests::runtime_api::RuntimeApi;

/// Amazon Linux 2023, the `provided.al2023` runtime, ships glibc 2.34.
const AL2023_GLIBC: (u32, u32) = (2, 34);

fn bootstrap_in(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let zip = std::env::var(ZIP_VAR).unwrap_or_else(|_| {
        panic!("{ZIP_VAR} is not set: this test needs the release zip; run `cargo xtask test`")
    });
    Some(extract_bootstrap(zip.as_ref(), dir))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ssmbak-artifact-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The versions named in `GLIBC_2.N[.M]` symbol-version strings of an ELF file.
fn glibc_versions(binary: &[u8]) -> Vec<(u32, u32)> {
    let needle = b"GLIBC_2.";
    let mut found = Vec::new();
    for (i, window) in binary.windows(needle.len()).enumerate() {
        if window != needle {
            continue;
        }
        let digits: String = binary[i + needle.len()..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .map(|b| char::from(*b))
            .collect();
        if let Ok(minor) = digits.parse() {
            found.push((2, minor));
        }
    }
    found
}

#[test]
#[ignore = "needs the release bootstrap zip: `cargo xtask test` builds it"]
fn bootstrap_runs_on_amazon_linux_2023() {
    let dir = temp_dir("glibc");
    let Some(binary) = bootstrap_in(&dir) else {
        return;
    };
    let bytes = std::fs::read(&binary).expect("read bootstrap");
    assert_eq!(&bytes[..4], b"\x7fELF", "an ELF executable");
    let versions = glibc_versions(&bytes);
    let newest = versions
        .iter()
        .max()
        .copied()
        .expect("a dynamically linked glibc binary");
    assert!(
        newest <= AL2023_GLIBC,
        "bootstrap needs GLIBC_{}.{}, newer than Amazon Linux 2023's {}.{}",
        newest.0,
        newest.1,
        AL2023_GLIBC.0,
        AL2023_GLIBC.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs the release bootstrap zip: `cargo xtask test` builds it"]
fn a_missing_bucket_is_a_clear_start_up_error() {
    let dir = temp_dir("nobucket");
    let Some(binary) = bootstrap_in(&dir) else {
        return;
    };
    let api = RuntimeApi::start();
    // The endpoint is never contacted: the configuration check comes first.
    let mut lambda = Bootstrap::spawn(&binary, &api, "http://127.0.0.1:9", &[]);
    let status = lambda
        .wait_exit(Duration::from_secs(10))
        .expect("exits by itself");
    assert!(!status.success());
    let logs = lambda.logs().join("\n");
    assert!(logs.contains("SSMBAK_BUCKET is not set"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn glibc_scan_reads_symbol_versions() {
    assert_eq!(
        glibc_versions(b"..GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE"),
        vec![(2, 2), (2, 34), (2, 17)]
    );
}

#[test]
#[ignore = "needs the release bootstrap zip: `cargo xtask test` builds it"]
fn unreachable_aws_fails_the_records_not_the_process() {
    let dir = temp_dir("unreachable");
    let Some(binary) = bootstrap_in(&dir) else {
        return;
    };
    // A loopback port nothing listens on: every AWS call is refused, and retried, then the
    // records must come back as batch item failures (SQS redelivers them; nothing is lost).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let api = RuntimeApi::start();
    let mut lambda = Bootstrap::spawn(
        &binary,
        &api,
        &endpoint,
        &[("SSMBAK_BUCKET", "some-bucket")],
    );
    let time = 1_704_067_200; // 2024-01-01T00:00:00Z
    let event = |op: &str| change_event("/a/b", "String", op, time);
    let payload = sqs_event(vec![
        sqs_record("m1", &event("Update")),
        sqs_record("m2", &event("Delete")),
        sqs_record("m3", "not an event"),
    ]);
    let result = api.invoke(payload, Duration::from_secs(90));
    let ssmbak_tests::runtime_api::Invocation::Response(body) = result else {
        panic!(
            "expected a batch response, got {result:?}\n{}",
            lambda.logs().join("\n")
        );
    };
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let mut failed: Vec<&str> = v["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, ["m1", "m2", "m3"]);
    assert!(
        lambda.wait_exit(Duration::from_millis(200)).is_none(),
        "the runtime keeps running"
    );
    let logs = lambda.logs().join("\n");
    assert!(logs.contains("SQS will redeliver"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
}
