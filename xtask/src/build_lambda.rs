//! `cargo xtask build-lambda [--arch x86_64|arm64]`: the Lambda artifact.
//!
//! Cross-compiles `bootstrap` for `<arch>-unknown-linux-gnu` with glibc 2.34 as the ceiling
//! (Lambda's `provided.al2023` has glibc 2.34) through cargo-zigbuild ([`crate::zig`]), on any
//! Linux or macOS host, and packs it into `target/lambda/bootstrap.zip` (x86_64) or
//! `target/lambda/bootstrap-arm64.zip` with a fixed timestamp and mode (0755), so the same
//! source gives the same bytes and the deploy step can name the artifact by its content.
//! Before it packs, it reads the binary: an ELF file for that CPU, needing no glibc newer than
//! 2.34, or it refuses.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::elf::{self, Machine};
use crate::zig;

/// Names the arm64 artifact for the tests (`cargo xtask test` sets it when it could build it).
pub(crate) const ARM64_ZIP_VAR: &str = "SSMBAK_TEST_BOOTSTRAP_ZIP_ARM64";

/// The newest glibc on Lambda's `provided.al2023` runtime.
const GLIBC_CEILING: (u32, u32) = (2, 34);

/// A Lambda architecture (the template's `Architecture` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Arch {
    #[default]
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

impl Arch {
    /// The template's value: `x86_64` or `arm64`.
    pub(crate) fn parse(value: &str) -> anyhow::Result<Self> {
        match value {
            "x86_64" => Ok(Arch::X86_64),
            "arm64" => Ok(Arch::Arm64),
            other => bail!("Architecture {other:?}: the Lambda runs on x86_64 or arm64"),
        }
    }

    pub(crate) fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    fn machine(self) -> Machine {
        match self {
            Arch::X86_64 => Machine::X86_64,
            Arch::Arm64 => Machine::Aarch64,
        }
    }

    pub(crate) fn zip_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "bootstrap.zip",
            Arch::Arm64 => "bootstrap-arm64.zip",
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct BuildArgs {
    /// The Lambda's architecture.
    #[arg(long, value_enum, default_value_t = Arch::X86_64)]
    pub(crate) arch: Arch,
}

/// Builds the Lambda for `arch` and returns the zip's path.
pub(crate) fn run(root: &Path, arch: Arch) -> anyhow::Result<PathBuf> {
    zig::ensure_rust_target(arch.triple())?;
    let tools = zig::install(root)?;
    let target = format!("{}.{}.{}", arch.triple(), GLIBC_CEILING.0, GLIBC_CEILING.1);
    crate::util::run(
        std::process::Command::new(&tools.cargo_zigbuild)
            .current_dir(root)
            .args(["zigbuild", "--release", "--locked", "-p", "ssmbak-lambda"])
            .args(["--bin", "bootstrap", "--target", &target])
            .env("CARGO_ZIGBUILD_ZIG_PATH", &tools.zig),
    )?;
    let binary = root.join(format!("target/{}/release/bootstrap", arch.triple()));
    let bytes = fs::read(&binary).with_context(|| format!("cannot read {}", binary.display()))?;
    check(&bytes, arch)?;
    let out_dir = root.join("target/lambda");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let zip_path = out_dir.join(arch.zip_name());
    fs::write(&zip_path, pack(&bytes)?)
        .with_context(|| format!("cannot write {}", zip_path.display()))?;
    eprintln!(
        "built {} ({} bytes, bootstrap {} bytes)",
        zip_path.display(),
        fs::metadata(&zip_path).map(|m| m.len()).unwrap_or(0),
        bytes.len()
    );
    Ok(zip_path)
}

/// Refuses a binary that cannot start on Lambda's `provided.al2023` for `arch`.
pub(crate) fn check(binary: &[u8], arch: Arch) -> anyhow::Result<()> {
    elf::fits(binary, arch.machine(), GLIBC_CEILING).with_context(|| {
        format!("the bootstrap binary cannot start on provided.al2023 for {arch:?}")
    })
}

/// The binary inside an artifact zip.
pub(crate) fn unpack(zip: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).context("not a zip")?;
    let mut entry = archive
        .by_name("bootstrap")
        .context("the zip has no bootstrap")?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A zip holding one executable entry `bootstrap`, with nothing in it that depends on when
/// or where it was built.
fn pack(bootstrap: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(bootstrap)?;
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::pack;

    /// The binary of the artifact `cargo xtask test` built for `arch` (named by `var`).
    fn built(var: &str) -> Vec<u8> {
        let zip = std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} is not set: run `cargo xtask test`, which builds it")
        });
        let bytes = std::fs::read(&zip).expect("the artifact");
        super::unpack(&bytes).expect("bootstrap in the zip")
    }

    /// The artifact `cargo xtask test` built and the end-to-end tests run: the Lambda's
    /// architecture and glibc, read from the artifact, not the host.
    #[test]
    #[ignore = "needs the release zip: `cargo xtask test` builds it"]
    fn the_tested_artifact_starts_on_provided_al2023() {
        let binary = built("SSMBAK_TEST_BOOTSTRAP_ZIP");
        super::check(&binary, super::Arch::X86_64).expect("fits provided.al2023 on x86_64");
        assert!(
            super::check(&binary, super::Arch::Arm64).is_err(),
            "an x86_64 binary is refused for arm64"
        );
    }

    /// The same for Graviton: an AArch64 ELF needing no glibc newer than 2.34.
    #[test]
    #[ignore = "needs the arm64 release zip: `cargo xtask test` builds it"]
    fn the_arm64_artifact_starts_on_provided_al2023() {
        let binary = built(super::ARM64_ZIP_VAR);
        super::check(&binary, super::Arch::Arm64).expect("fits provided.al2023 on arm64");
        assert!(
            super::check(&binary, super::Arch::X86_64).is_err(),
            "an arm64 binary is refused for x86_64"
        );
    }

    #[test]
    fn zip_is_reproducible_and_executable() {
        let body = b"\x7fELF pretend binary".repeat(100);
        let first = pack(&body).expect("packs");
        assert_eq!(first, pack(&body).expect("packs"), "same input, same bytes");

        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(first)).expect("a zip");
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_name("bootstrap").expect("entry named bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut read = Vec::new();
        entry.read_to_end(&mut read).expect("reads");
        assert_eq!(read, body);
    }
}
