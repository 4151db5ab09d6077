//! Small helpers shared by the commands.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The workspace root (the parent of this crate's directory).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs us, so toolchain overrides carry through.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd` to completion; an error names the command when it fails.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

/// Installs the PyPI `requirements` into the venv `venv` unless the venv says it has them and
/// `present` (what they install is there). `what` says what needs them, for the error.
pub(crate) fn pip_install(
    venv: &Path,
    requirements: &[&str],
    present: bool,
    what: &str,
) -> anyhow::Result<()> {
    let stamp = venv.join("ssmbak-installed.txt");
    let wanted = requirements.join(" ");
    if present && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted) {
        return Ok(());
    }
    eprintln!("installing {wanted} into {}", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(venv))
    .with_context(|| format!("python3 with the venv module is needed to install {what}"))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(requirements))?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}
