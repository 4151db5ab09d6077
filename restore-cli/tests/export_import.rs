//! `ssmbak export` and `ssmbak import` end to end: a tree as it was, written to a file and
//! applied elsewhere through the restore planner, against backups the real Lambda wrote.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use ssmbak_tests::cli::{run, Run};
use ssmbak_tests::emulator::{checktime, unique};
use ssmbak_tests::pipeline::{now_secs, Pipeline};

fn ssmbak(args: &[&str]) -> Run {
    run(env!("CARGO_BIN_EXE_ssmbak"), args, &[])
}

async fn change(p: &Pipeline, name: &str, value: &str, ty: ParameterType, op: &str) {
    p.change(name, value, ty, Some("exported (desc)"), op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
async fn a_tree_as_it_was_exports_and_imports_elsewhere() {
    let p = Pipeline::start().await;
    let secret = ssmbak_tests::sentinel::secret();
    let (db, token) = (p.name("app/db"), p.name("app/token"));
    change(&p, &db, "then", ParameterType::String, "Create").await;
    change(&p, &token, &secret, ParameterType::SecureString, "Create").await;
    p.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let then = checktime(now_secs());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    change(&p, &db, "now", ParameterType::String, "Update").await;
    p.delete(&token).await;
    p.publish(&token, "Delete", "SecureString", now_secs())
        .await;
    p.drain().await;

    let path = format!("{}/app/", p.prefix);
    let b = ["-b", p.bucket.as_str()];
    let export =
        |extra: &[&str]| ssmbak(&[&["export", &path, &then, "-R"][..], extra, &b].concat());

    // JSON by default: the tree as it was, the secret masked.
    let masked = export(&[]);
    assert_eq!(masked.code, 0, "{}", masked.stderr);
    let json: serde_json::Value = serde_json::from_str(&masked.stdout).expect("JSON");
    let values: Vec<(&str, &serde_json::Value, &serde_json::Value)> = json["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                &p["value"],
                &p["masked"],
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            (
                db.as_str(),
                &serde_json::json!("then"),
                &serde_json::Value::Null
            ),
            (
                token.as_str(),
                &serde_json::Value::Null,
                &serde_json::json!(true)
            ),
        ]
    );
    assert!(!masked.stdout.contains(&secret));
    assert_eq!(json["parameters"][0]["description"], "exported (desc)");
    // dotenv cannot say "masked": refused, not a placeholder.
    let dotenv = export(&["--format", "dotenv"]);
    assert_eq!(dotenv.code, 2, "{}", dotenv.stderr);
    assert!(dotenv.stdout.is_empty() && dotenv.stderr.contains("--show-secrets"));
    let dotenv = export(&["--format", "dotenv", "--show-secrets"]);
    assert_eq!(dotenv.stdout, format!("DB='then'\nTOKEN='{secret}'\n"));

    // A masked file is refused by import before anything is written.
    let dir = std::env::temp_dir().join(unique("ssmbak-export"));
    std::fs::create_dir_all(&dir).expect("dir");
    let masked_file = dir.join("masked.json");
    std::fs::write(&masked_file, &masked.stdout).expect("write");
    let staging = format!("{}/staging/", p.prefix);
    let refused = ssmbak(&[
        "import",
        masked_file.to_str().expect("utf-8"),
        "--to",
        &staging,
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert_eq!(p.aws.parameter_value(&format!("{staging}db")).await, None);

    // With the secrets, as YAML into a file only its owner reads; imported under staging/.
    let file = dir.join("app.yaml");
    let file_arg = file.to_str().expect("utf-8");
    let written = export(&["--format", "yaml", "--show-secrets", "-o", file_arg]);
    assert_eq!(written.code, 0, "{}", written.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let dry = ssmbak(&["import", file_arg, "--to", &staging, "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("create"), "{}", dry.stdout);
    assert_eq!(
        p.aws.parameter_value(&format!("{staging}db")).await,
        None,
        "dry run"
    );
    let import = ssmbak(&["import", file_arg, "--to", &staging]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert!(import.stdout.contains("created 2"), "{}", import.stdout);
    assert_eq!(
        p.aws
            .parameter_value(&format!("{staging}db"))
            .await
            .as_deref(),
        Some("then")
    );
    assert_eq!(
        p.aws.parameter_value(&format!("{staging}token")).await,
        Some(secret.clone())
    );
    assert!(!import.stdout.contains(&secret) && !import.stderr.contains(&secret));
    // Idempotent: nothing left to do.
    let again = ssmbak(&["import", file_arg, "--to", &staging]);
    assert!(again.stdout.contains("unchanged 2"), "{}", again.stdout);
    // The source tree is left as it is now.
    assert_eq!(p.aws.parameter_value(&db).await.as_deref(), Some("now"));
    let _ = std::fs::remove_dir_all(&dir);
}
