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

/// `--version` says what the binary is: its release, the commit, the target it was built for
/// and the day, so a restore's output can be traced to a build (issue 31).
#[test]
fn version_names_the_release_commit_target_and_date() {
    for (binary, tool) in [(SSMBAK, "ssmbak"), (S3BAK, "s3bak")] {
        for flag in ["--version", "-V"] {
            let out = run(binary, &[flag], &[]);
            assert_eq!(out.code, 0, "{tool} {flag}: {}", out.stderr);
            let line = out.stdout.trim();
            let expected = format!("{tool} {}", env!("CARGO_PKG_VERSION"));
            assert!(line.starts_with(&expected), "{tool} {flag}: {line}");
            assert!(line.contains(" (commit "), "{line}");
            assert!(line.contains(", built "), "{line}");
            let target = line.split(", ").nth(1).unwrap_or_default();
            assert!(target.split('-').count() >= 3, "a target triple: {line}");
        }
    }
}

/// `--color WHEN` on every command, and `NO_COLOR`: help is styled only when asked for (the
/// tests' output is no terminal, so `auto` is plain here), and an explicit `--color` wins
/// over `NO_COLOR`.
#[test]
fn color_follows_the_flag_then_no_color() {
    const ESC: char = '\u{1b}';
    for binary in [SSMBAK, S3BAK] {
        for (args, env, styled) in [
            (&["preview", "--help"][..], &[][..], false),
            (&["preview", "--help", "--color", "always"], &[], true),
            (
                &["--color=always", "preview", "--help"],
                &[("NO_COLOR", "1")],
                true,
            ),
            (&["preview", "--help", "--color=never"], &[], false),
            (&["preview", "--help"], &[("NO_COLOR", "1")], false),
        ] {
            let out = run(binary, args, env);
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            assert_eq!(
                out.stdout.contains(ESC),
                styled,
                "{binary} {args:?} {env:?}"
            );
        }
        let bad = run(binary, &["preview", "--color", "sometimes"], &[]);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
    }
}
