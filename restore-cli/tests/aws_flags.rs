//! The flags AWS users type without thinking (issue 31): `--profile` takes a named profile's
//! credentials and region, `--endpoint-url` sends every request where the AWS CLI's would.
//! Runs the real binaries against a one-answer endpoint on loopback that records what each
//! request carried; needs no emulator and never reaches AWS.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

const SSMBAK: &str = env!("CARGO_BIN_EXE_ssmbak");
const S3BAK: &str = env!("CARGO_BIN_EXE_s3bak");

/// An endpoint that refuses every request (403, so nothing is retried) and keeps each
/// request's head.
fn refusing_endpoint() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0_u8; 16 * 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            keep.lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let request = String::from_utf8_lossy(&buf[..n]);
            // STS (query protocol, POST) wraps its error; S3 (REST-XML) does not.
            let error = "<Error><Type>Sender</Type><Code>AccessDenied</Code>\
                         <Message>refused by the test endpoint</Message></Error>";
            let body = match request.starts_with("POST") {
                true => format!("<ErrorResponse>{error}</ErrorResponse>"),
                false => error.to_owned(),
            };
            let answer = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, seen)
}

/// Runs `binary` with a config file holding only the profile `drill`, and none of the
/// environment's credentials, region, profile or endpoint: what works came from the flags.
fn run_with_profile_file(binary: &str, args: &[&str]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("ssmbak-aws-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config");
    std::fs::write(
        &config,
        "[profile drill]\nregion = eu-west-3\naws_access_key_id = AKIDDRILL\naws_secret_access_key = secret\n",
    )
    .expect("config");
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for unset in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "SSMBAK_BUCKET",
    ] {
        cmd.env_remove(unset);
    }
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

/// Whether a request was signed with the profile's key for its region.
fn signed_by_the_profile(request: &str) -> bool {
    request.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("authorization:")
            && l.contains("Credential=AKIDDRILL/")
            && l.contains("/eu-west-3/")
    })
}

#[test]
fn both_tools_take_the_profiles_credentials_and_region_and_the_endpoint_given() {
    let commands: [(&str, &[&str]); 2] = [
        (SSMBAK, &["preview", "/app/", "now", "-b", "bucket"]),
        (
            S3BAK,
            &[
                "preview",
                "k",
                "now",
                "-b",
                "bucket",
                "--bucket-owner",
                "111122223333",
            ],
        ),
    ];
    for (binary, command) in commands {
        let (url, seen) = refusing_endpoint();
        let mut args = command.to_vec();
        args.extend(["--profile", "drill", "--endpoint-url", &url]);
        let (code, stderr) = run_with_profile_file(binary, &args);
        assert_eq!(code, 1, "{binary}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        let seen = seen.lock().expect("lock");
        assert!(
            !seen.is_empty(),
            "{binary}: no request reached the endpoint"
        );
        assert!(
            seen.iter().all(|r| signed_by_the_profile(r)),
            "{binary}: a request not signed with the profile's key and region: {seen:?}"
        );
    }
}

#[test]
fn without_a_profile_or_region_the_error_says_how_to_give_one() {
    let (code, stderr) =
        run_with_profile_file(SSMBAK, &["preview", "/app/", "now", "-b", "bucket"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no AWS region"), "{stderr}");
}
