//! The cross-compiling toolchain for the Lambda: cargo-zigbuild with zig, both pinned and
//! installed under `target/` by the xtask itself (zig from PyPI's `ziglang` wheel,
//! cargo-zigbuild from crates.io), so any Linux or macOS host with cargo and python3 builds a
//! binary for Lambda's `provided.al2023` (glibc 2.34), whatever glibc the host has.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::util;

/// Pinned: the artifact's bytes depend on them.
const ZIGLANG_REQUIREMENT: &str = "ziglang==0.14.1";
const CARGO_ZIGBUILD_VERSION: &str = "0.24.1";

/// The toolchain: `cargo-zigbuild`, and the zig it must use.
pub(crate) struct Zig {
    pub(crate) cargo_zigbuild: PathBuf,
    pub(crate) zig: PathBuf,
}

/// Installs (once) and returns the pinned toolchain.
pub(crate) fn install(root: &Path) -> anyhow::Result<Zig> {
    Ok(Zig {
        zig: install_zig(root)?,
        cargo_zigbuild: install_cargo_zigbuild(root)?,
    })
}

fn install_zig(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target/zig-venv");
    util::pip_install(
        &venv,
        &[ZIGLANG_REQUIREMENT],
        find_zig(&venv).is_ok(),
        "zig",
    )?;
    find_zig(&venv)
}

/// The `zig` executable inside the wheel (`site-packages/ziglang/zig`).
fn find_zig(venv: &Path) -> anyhow::Result<PathBuf> {
    let lib = venv.join("lib");
    for entry in fs::read_dir(&lib).with_context(|| lib.display().to_string())? {
        let zig = entry?.path().join("site-packages/ziglang/zig");
        if zig.is_file() {
            return Ok(zig);
        }
    }
    bail!("no zig in {}", venv.display())
}

fn install_cargo_zigbuild(root: &Path) -> anyhow::Result<PathBuf> {
    let tools = root.join("target/tools");
    let binary = tools.join("bin/cargo-zigbuild");
    let stamp = tools.join("cargo-zigbuild-version.txt");
    if binary.is_file()
        && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == CARGO_ZIGBUILD_VERSION)
    {
        return Ok(binary);
    }
    eprintln!(
        "installing cargo-zigbuild {CARGO_ZIGBUILD_VERSION} into {}",
        tools.display()
    );
    util::run(
        util::cargo()
            .args([
                "install",
                "--locked",
                "--quiet",
                "cargo-zigbuild",
                "--version",
            ])
            .arg(CARGO_ZIGBUILD_VERSION)
            .arg("--root")
            .arg(&tools),
    )?;
    fs::write(&stamp, CARGO_ZIGBUILD_VERSION)?;
    Ok(binary)
}

/// Makes sure the Rust standard library for `triple` is there (rustup adds it when missing).
pub(crate) fn ensure_rust_target(triple: &str) -> anyhow::Result<()> {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", triple])
        .output()
        .context("rustc is needed")?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let installed =
        output.status.success() && fs::read_dir(&libdir).is_ok_and(|mut d| d.any(|e| e.is_ok()));
    if installed {
        return Ok(());
    }
    eprintln!("adding the Rust standard library for {triple}");
    util::run(Command::new("rustup").args(["target", "add", triple])).with_context(|| {
        format!(
            "the Rust standard library for {triple} is not installed and rustup could not add it"
        )
    })
}
