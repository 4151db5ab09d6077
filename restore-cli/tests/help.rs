//! What a user reads before running anything: every command's `--help` ends with examples, and
//! both tools print completion scripts. Runs the real binaries; needs no emulator.

use ssmbak_tests::cli::run;

const SSMBAK: &str = env!("CARGO_BIN_EXE_ssmbak");
const S3BAK: &str = env!("CARGO_BIN_EXE_s3bak");

#[test]
fn every_command_help_ends_with_examples() {
    let commands = [
        (
            SSMBAK,
            &[
                "preview",
                "restore",
                "diff",
                "log",
                "grep",
                "export",
                "import",
                "completions",
            ][..],
        ),
        (S3BAK, &["preview", "body", "restore", "completions"][..]),
    ];
    for (binary, subcommands) in commands {
        for sub in subcommands {
            let help = run(binary, &[sub, "--help"], &[]);
            assert_eq!(help.code, 0, "{sub}: {}", help.stderr);
            let examples = help.stdout.rsplit("Examples:").next().unwrap_or_default();
            let tool = if binary == SSMBAK { "ssmbak" } else { "s3bak" };
            assert!(
                help.stdout.contains("Examples:") && examples.contains(&format!("{tool} {sub} ")),
                "{tool} {sub} --help:\n{}",
                help.stdout
            );
        }
    }
}

#[test]
fn completion_scripts_for_every_shell() {
    for (binary, tool) in [(SSMBAK, "ssmbak"), (S3BAK, "s3bak")] {
        for shell in ["bash", "zsh", "fish", "powershell"] {
            let script = run(binary, &["completions", shell], &[]);
            assert_eq!(script.code, 0, "{tool} {shell}: {}", script.stderr);
            assert!(
                script.stdout.contains(tool) && script.stdout.contains("restore"),
                "{tool} {shell}"
            );
        }
        let unknown = run(binary, &["completions", "tcsh"], &[]);
        assert_eq!(
            unknown.code, 2,
            "a shell clap_complete has no script for: usage error"
        );
    }
}

#[test]
fn a_bad_pattern_is_a_usage_error_in_one_line() {
    let bad = run(SSMBAK, &["grep", "(", "/app/", "-b", "bucket"], &[]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("PATTERN"), "{}", bad.stderr);
}
