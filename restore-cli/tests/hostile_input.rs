//! Hostile and unusual input, end to end: through the real Lambda into the bucket and back out
//! through the real `ssmbak`.

use std::process::Command;
use std::time::Duration;

use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use ssmbak_tests::cli::run;
use ssmbak_tests::emulator::checktime as iso;
use ssmbak_tests::pipeline::{now_secs, Pipeline};

fn ssmbak(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = run(env!("CARGO_BIN_EXE_ssmbak"), args, env);
    (out.code, out.stdout, out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn unusual_names_big_values_and_odd_descriptions_round_trip() {
    let p = Pipeline::start().await;
    let deep = p.name("a_b/c.d/e-f/g/h/i/j/k/l/m/n");
    let four_kb = p.name("values/four-kb");
    let eight_kb = p.name("values/eight-kb");
    let empty_description = p.name("descriptions/empty");
    let dropped = p.name("descriptions/dropped");
    let weird = "(«ünïcødé» & <xml> \"quotes\" 'single' #hash% \\ back)";
    let big4 = "4".repeat(4096);
    let big8 = "8".repeat(8192);
    let ssm = &p.aws.ssm;
    ssm.put_parameter()
        .name(&deep)
        .value("deep")
        .r#type(ParameterType::String)
        .send()
        .await
        .expect("deep");
    ssm.put_parameter()
        .name(&four_kb)
        .value(&big4)
        .r#type(ParameterType::String)
        .send()
        .await
        .expect("4kb");
    ssm.put_parameter()
        .name(&eight_kb)
        .value(&big8)
        .r#type(ParameterType::SecureString)
        .tier(ParameterTier::Advanced)
        .send()
        .await
        .expect("8kb");
    ssm.put_parameter()
        .name(&empty_description)
        .value("e")
        .description("")
        .r#type(ParameterType::String)
        .send()
        .await
        .expect("empty description");
    ssm.put_parameter()
        .name(&dropped)
        .value("d")
        .description(weird)
        .r#type(ParameterType::StringList)
        .send()
        .await
        .expect("weird description");
    let names = [&deep, &four_kb, &eight_kb, &empty_description, &dropped];
    for n in names {
        p.publish(n, "Create", "String", now_secs()).await;
    }
    // A huge body (SQS allows 256 KB) in the same batch: it fails alone.
    p.send_raw(&format!("{{\"junk\": \"{}\"}}", "x".repeat(250_000)))
        .await;
    let batches = p.drain().await;
    let failed: usize = batches.iter().map(|b| b.failed.len()).sum();
    assert!(failed >= 1, "the huge junk record fails");
    for n in names {
        assert_eq!(p.history(n).await.values().len(), 1, "{n}\n{}", p.logs());
    }
    assert_eq!(p.history(&eight_kb).await.values()[0].body.len(), 8192);
    let tag = p.history(&dropped).await.values()[0]
        .tag("ssmbakDescription")
        .map(str::to_owned);
    assert_eq!(
        tag.as_deref(),
        Some("ncd  xml quotes single hash  back"),
        "sanitised like the original"
    );

    // Everything deleted, then restored from the backups exactly.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for n in names {
        p.delete(n).await;
    }
    let path = format!("{}/", p.prefix);
    let (code, out, err) = ssmbak(&["restore", &path, &then, "-R", "-b", &p.bucket], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("created 5"), "{out}");
    let ssm = p.aws.ssm.clone();
    let get = |n: String| {
        let ssm = ssm.clone();
        async move {
            let got = ssm
                .get_parameter()
                .name(&n)
                .with_decryption(true)
                .send()
                .await
                .expect("restored");
            got.parameter.expect("parameter")
        }
    };
    assert_eq!(get(deep.clone()).await.value(), Some("deep"));
    assert_eq!(get(four_kb.clone()).await.value().map(str::len), Some(4096));
    let restored8 = get(eight_kb.clone()).await;
    assert_eq!(restored8.value().map(str::len), Some(8192));
    assert_eq!(restored8.r#type(), Some(&ParameterType::SecureString));
    let described = ssmbak_tests::emulator::describe_parameter(&p.aws.ssm, &dropped).await;
    assert_eq!(
        described.description(),
        Some(weird),
        "the raw description, not the tag"
    );
    let (code, out, _) = ssmbak(&["preview", &path, &then, "-R", "-b", &p.bucket], &[]);
    assert_eq!((code, out.trim()), (0, ""), "nothing left to restore");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_path_that_matches_nothing_and_missing_credentials() {
    let p = Pipeline::start().await;
    let (code, out, err) = ssmbak(
        &["preview", "/nothing/here/", "now", "-R", "-b", &p.bucket],
        &[],
    );
    assert_eq!(
        (code, out.trim()),
        (0, ""),
        "nothing to do is success: {err}"
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssmbak"));
    let out = cmd
        .args(["preview", "/a/", "now", "-b", &p.bucket])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.to_lowercase().contains("credentials"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn reading_while_the_lambda_writes_gives_a_consistent_answer() {
    let p = Pipeline::start().await;
    let name = p.name("busy");
    p.put(&name, "v0", ParameterType::String, None).await;
    p.publish(&name, "Create", "String", now_secs()).await;
    p.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = iso(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Writers keep changing the parameter while previews of the earlier time run.
    let writer = async {
        for i in 1..=6 {
            p.put(&name, &format!("v{i}"), ParameterType::String, None)
                .await;
            p.publish(&name, "Update", "String", now_secs()).await;
            p.drain().await;
        }
    };
    let reader = async {
        let mut answers = Vec::new();
        for _ in 0..6 {
            let (code, out, err) = ssmbak(
                &["preview", &name, &then, "-b", &p.bucket, "--output", "json"],
                &[],
            );
            assert_eq!(code, 0, "{err}");
            let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
            answers.push(json["changes"][0]["value"].as_str().map(str::to_owned));
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        answers
    };
    let ((), answers) = tokio::join!(writer, reader);
    for a in &answers {
        // Either nothing to change yet (the first writes not landed) or back to v0: never a later value.
        assert!(a.is_none() || a.as_deref() == Some("v0"), "{answers:?}");
    }
}
