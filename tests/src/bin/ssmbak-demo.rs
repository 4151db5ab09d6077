//! The second half of `cargo xtask demo`: with the stack deployed into the emulator, change
//! parameters, back them up through the real Lambda, then preview and restore the tree with
//! the real `ssmbak`. Narrates every step.

use std::process::Command;
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::emulator::{self, Clients, REGION};
use ssmbak_tests::lambda::{extract_bootstrap, Bootstrap, ZIP_VAR};
use ssmbak_tests::pipeline::{now_secs, EventSource};
use ssmbak_tests::runtime_api::RuntimeApi;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set: run `cargo xtask demo`");
        std::process::exit(2);
    })
}

fn step(text: &str) {
    println!("\n== {text}");
}

async fn publish(aws: &Clients, name: &str, operation: &str, ty: &str) {
    let detail = serde_json::json!({"name": name, "type": ty, "operation": operation});
    let entry = PutEventsRequestEntry::builder()
        .source("aws.ssm")
        .detail_type("Parameter Store Change")
        .detail(detail.to_string())
        .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
            now_secs(),
        ))
        .resources(format!("arn:aws:ssm:{REGION}:123456789012:parameter{name}"))
        .build();
    aws.events
        .put_events()
        .entries(entry)
        .send()
        .await
        .expect("put events");
}

async fn change(aws: &Clients, name: &str, value: &str, ty: ParameterType) {
    let shown = if ty == ParameterType::SecureString {
        "********"
    } else {
        value
    };
    println!("  put {name} = {shown} ({})", ty.as_str());
    let type_name = ty.as_str().to_owned();
    aws.ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ty)
        .overwrite(true)
        .send()
        .await
        .expect("put");
    publish(aws, name, "Update", &type_name).await;
}

async fn delete(aws: &Clients, name: &str) {
    println!("  delete {name}");
    aws.ssm
        .delete_parameter()
        .name(name)
        .send()
        .await
        .expect("delete");
    publish(aws, name, "Delete", "String").await;
}

fn ssmbak(binary: &str, args: &[&str], bucket: &str) {
    println!("$ ssmbak {}", args.join(" "));
    let out = Command::new(binary)
        .args(args)
        .args(["-b", bucket])
        .output()
        .expect("run ssmbak");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ssmbak failed");
}

async fn show_values(aws: &Clients, names: &[&str]) {
    for name in names {
        let got = aws
            .ssm
            .get_parameter()
            .name(*name)
            .with_decryption(true)
            .send()
            .await;
        match got.ok().and_then(|o| o.parameter) {
            Some(p) if p.r#type() == Some(&ParameterType::SecureString) => {
                println!("  {name} = ******** (SecureString)")
            }
            Some(p) => println!("  {name} = {}", p.value().unwrap_or_default()),
            None => println!("  {name}: (absent)"),
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(endpoint) = emulator::endpoint() else {
        eprintln!(
            "{} is not set: run `cargo xtask demo`",
            emulator::ENDPOINT_VAR
        );
        std::process::exit(2);
    };
    let (bucket, queue_url, queue_arn) = (
        var("SSMBAK_DEMO_BUCKET"),
        var("SSMBAK_DEMO_QUEUE_URL"),
        var("SSMBAK_DEMO_QUEUE_ARN"),
    );
    let ssmbak_binary = var("SSMBAK_DEMO_SSMBAK");
    let aws = Clients::new(&endpoint).await;

    // moto creates the bucket from the template but does not apply its VersioningConfiguration.
    emulator::enable_versioning(&aws.s3, &bucket).await;

    step("The Lambda: the real release bootstrap, fed by this demo through a local Lambda Runtime API");
    println!("  (moto runs no Lambda code, so the demo does what the event source mapping does:");
    println!("   receive a batch from the stack's queue, invoke, delete what the batch response says succeeded)");
    let dir = std::env::temp_dir().join(format!("ssmbak-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = extract_bootstrap(var(ZIP_VAR).as_ref(), &dir);
    let api = RuntimeApi::start();
    let _lambda = Bootstrap::spawn(
        &binary,
        &api,
        &endpoint,
        &[("SSMBAK_BUCKET", bucket.as_str())],
    );
    let source = EventSource {
        sqs: &aws.sqs,
        queue_url: &queue_url,
        queue_arn: &queue_arn,
        api: &api,
        timeout: Duration::from_secs(60),
    };
    let names = [
        "/demo/app/db-host",
        "/demo/app/db-password",
        "/demo/app/feature-flags",
    ];

    step("Parameters are created; each change is an event on the default bus (published by the demo: moto emits none)");
    change(&aws, names[0], "db-1.internal", ParameterType::String).await;
    change(
        &aws,
        names[1],
        "correct horse battery staple",
        ParameterType::SecureString,
    )
    .await;
    change(&aws, names[2], "search,checkout", ParameterType::StringList).await;
    for batch in source.drain().await {
        println!(
            "  the Lambda backed up a batch of {} record(s), {} failed",
            batch.message_ids.len(),
            batch.failed.len()
        );
    }

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let good = now_secs();
    let good_time = time::OffsetDateTime::from_unix_timestamp(good)
        .expect("time")
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .expect("format");
    println!("\n  everything is fine at {good_time}Z");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    step("A bad deploy: the host changes, the password is rotated wrongly, the feature flags are deleted");
    change(&aws, names[0], "db-2.internal", ParameterType::String).await;
    change(&aws, names[1], "wrong", ParameterType::SecureString).await;
    delete(&aws, names[2]).await;
    for batch in source.drain().await {
        println!(
            "  the Lambda backed up a batch of {} record(s), {} failed",
            batch.message_ids.len(),
            batch.failed.len()
        );
    }
    show_values(&aws, &names).await;

    step("What would a restore to the good time change? (secrets masked unless --show-secrets)");
    ssmbak(
        &ssmbak_binary,
        &["preview", "/demo/app/", &good_time, "-R"],
        &bucket,
    );

    step("Restore the tree");
    ssmbak(
        &ssmbak_binary,
        &["restore", "/demo/app/", &good_time, "-R"],
        &bucket,
    );
    show_values(&aws, &names).await;

    step("Every backed-up version of the host, deletes included");
    ssmbak(&ssmbak_binary, &["log", "/demo/app/db-host"], &bucket);
    ssmbak(&ssmbak_binary, &["log", "/demo/app/feature-flags"], &bucket);

    step("Done. The restore's own writes are SSM changes too: in AWS the Lambda backs them up, so a restore can be undone.");
    let _ = std::fs::remove_dir_all(&dir);
}
