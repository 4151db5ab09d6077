//! The CLIs run as a user runs them, for the end-to-end tests.

use std::process::Command;

/// What a run left: its exit code and its output.
pub struct Run {
    pub code: i32,
    /// Standard output as text (lossy).
    pub stdout: String,
    /// Standard output, byte for byte.
    pub bytes: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON, after checking the run succeeded.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "{}\n{}", self.stdout, self.stderr);
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs `binary` with `args`: `SSMBAK_BUCKET` unset (a test names its bucket), then `env`.
pub fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary);
    cmd.args(args).env_remove("SSMBAK_BUCKET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {binary}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        bytes: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `binary` against `endpoint` (a fault proxy) instead of the emulator itself.
pub fn run_at(binary: &str, args: &[&str], endpoint: &str) -> Run {
    run(binary, args, &[("AWS_ENDPOINT_URL", endpoint)])
}
