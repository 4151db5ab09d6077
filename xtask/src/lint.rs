//! External checkers, pinned and installed under `target/` like the emulator: cfn-lint on the
//! templates (its registry schemas know each resource's properties and AWS's constraints) and
//! parliament on the IAM policies (privilege escalation, mismatched resources, bad conditions),
//! checkov on the templates (its own venv: its pins are not cfn-lint's).
//! `cargo xtask test` runs them after the tests.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::{parliament, util};

const CFN_LINT: &str = "cfn-lint==1.58.0";
const PARLIAMENT: &str = parliament::PINNED;

pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let venv = root.join("target/lint-venv");
    let present = venv.join("bin/parliament").exists() && venv.join("bin/cfn-lint").exists();
    util::pip_install(
        &venv,
        &[CFN_LINT, PARLIAMENT],
        present,
        "cfn-lint and parliament",
    )?;
    for template in crate::validate::TEMPLATES {
        util::run(Command::new(venv.join("bin/cfn-lint")).arg(root.join(template)))
            .with_context(|| format!("cfn-lint finds errors or warnings in {template}"))?;
        eprintln!("cfn-lint: {template} is clean");
    }
    crate::registry::check(root, &crate::registry::schemas_in(&venv)?)?;
    crate::checkov::check(root)?;

    let problems = parliament::check(&venv.join("bin/parliament"), root)?;
    if !problems.is_empty() {
        bail!("parliament:\n{}", problems.join("\n"));
    }
    eprintln!(
        "parliament (community auditors on): every action known, nothing at MEDIUM or above beyond the {} justified (policies/iam and the template's inline policies)",
        parliament::JUSTIFIED.len()
    );
    Ok(())
}
