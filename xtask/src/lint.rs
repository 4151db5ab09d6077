//! External checkers, pinned and installed under `target/` like the emulator: cfn-lint on the
//! template (its registry schemas know each resource's properties and AWS's constraints) and
//! parliament on the IAM policies (privilege escalation, mismatched resources, bad conditions).
//! `cargo xtask test` runs them after the tests.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::util;

const CFN_LINT: &str = "cfn-lint==1.58.0";
const PARLIAMENT: &str = "parliament==1.6.4";

pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let venv = root.join("target/lint-venv");
    let present = venv.join("bin/parliament").exists() && venv.join("bin/cfn-lint").exists();
    util::pip_install(
        &venv,
        &[CFN_LINT, PARLIAMENT],
        present,
        "cfn-lint and parliament",
    )?;
    let template = root.join("cfn/template.yml");
    util::run(Command::new(venv.join("bin/cfn-lint")).arg(&template))
        .context("cfn-lint finds errors or warnings in cfn/template.yml")?;
    eprintln!("cfn-lint: cfn/template.yml is clean");
    crate::registry::check(root, &crate::registry::schemas_in(&venv)?)?;

    let mut findings = Vec::new();
    let dir = root.join("policies/iam");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = crate::iam::Placeholders::example().fill(&std::fs::read_to_string(&file)?);
        let out = Command::new(venv.join("bin/parliament"))
            .args(["--minimum_severity", "MEDIUM", "--string", &text])
            .stdin(std::process::Stdio::null())
            .output()
            .context("running parliament")?;
        let report = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || !report.is_empty() {
            findings.push(format!(
                "{name}: {report}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    if !findings.is_empty() {
        bail!("parliament: {}", findings.join("\n"));
    }
    eprintln!("parliament: nothing at MEDIUM or above in any policy");
    Ok(())
}
