//! `cargo xtask dist [--target T]...`: the release archives of `ssmbak` and `s3bak`, built and
//! checked on this machine: both Linux CPUs on Linux (or anywhere zig runs), both macOS CPUs
//! on macOS. The release workflow (`.github/workflows/release.yml`) runs the same command on
//! a Linux and a macOS runner.
//!
//! # glibc 2.17, not static musl
//!
//! The binaries are built with glibc 2.17 as the ceiling through cargo-zigbuild
//! ([`crate::zig`], the pinned toolchain that already builds the Lambda, aws-lc included, for
//! both CPUs on any host). glibc 2.17 is older than every Linux distribution still in support
//! (RHEL 7 and Amazon Linux 2 have 2.17, Ubuntu 16.04 2.23), so the binaries start on all of
//! them; static musl would too, but musl's allocator serialises the many threads a restore
//! runs, and it would be a second toolchain to keep.
//!
//! # Checked before it is packed
//!
//! Each Linux binary is read as the Lambda's is ([`crate::elf`]): an ELF file for the
//! archive's CPU needing no glibc newer than 2.17; a macOS binary must be a 64-bit Mach-O file
//! for its CPU. Where this host can run it, `--version` must name the release and the target.
//!
//! # The archives
//!
//! `target/dist/ssmbak-VERSION-TARGET.tar.gz`, holding `ssmbak-VERSION-TARGET/` with `ssmbak`,
//! `s3bak` (mode 0755), `README.md` and `LICENSE` (0644), owned by root, dated by the commit
//! (`SOURCE_DATE_EPOCH`), so one commit gives the same bytes; beside each, `NAME.sha256`
//! (`sha256sum` format), and `SHA256SUMS` for all of them. The layout is what the CLI crate's
//! `[package.metadata.binstall]` names and what `install.sh` unpacks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::elf::{self, Machine};
use crate::zig;

/// The newest glibc the release binaries may need (RHEL 7, Amazon Linux 2).
pub(crate) const GLIBC_CEILING: (u32, u32) = (2, 17);

/// The binaries each archive holds.
const BINARIES: [&str; 2] = ["ssmbak", "s3bak"];

/// The documents each archive holds beside them.
const DOCUMENTS: [&str; 2] = ["README.md", "LICENSE"];

/// A platform the release is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Cpu {
    #[value(name = "x86_64-unknown-linux-gnu")]
    X86_64,
    #[value(name = "aarch64-unknown-linux-gnu")]
    Aarch64,
    #[value(name = "x86_64-apple-darwin")]
    MacX86_64,
    #[value(name = "aarch64-apple-darwin")]
    MacAarch64,
}

impl Cpu {
    pub(crate) fn triple(self) -> &'static str {
        match self {
            Cpu::X86_64 => "x86_64-unknown-linux-gnu",
            Cpu::Aarch64 => "aarch64-unknown-linux-gnu",
            Cpu::MacX86_64 => "x86_64-apple-darwin",
            Cpu::MacAarch64 => "aarch64-apple-darwin",
        }
    }

    fn machine(self) -> Machine {
        match self {
            Cpu::X86_64 | Cpu::MacX86_64 => Machine::X86_64,
            Cpu::Aarch64 | Cpu::MacAarch64 => Machine::Aarch64,
        }
    }

    fn is_macos(self) -> bool {
        matches!(self, Cpu::MacX86_64 | Cpu::MacAarch64)
    }

    /// Whether this host can run the platform's binaries.
    fn runs_here(self) -> bool {
        let os = if self.is_macos() { "macos" } else { "linux" };
        let arch = match self.machine() {
            Machine::X86_64 => "x86_64",
            _ => "aarch64",
        };
        std::env::consts::OS == os && std::env::consts::ARCH == arch
    }
}

/// The release archive of `version` for `cpu`, `ssmbak-VERSION-TARGET.tar.gz`, and its top
/// folder (the name without `.tar.gz`): what install.sh, cargo-binstall and the formula fetch.
pub(crate) fn archive_name(version: &str, cpu: Cpu) -> (String, String) {
    let top = format!("ssmbak-{version}-{}", cpu.triple());
    (format!("{top}.tar.gz"), top)
}

#[derive(clap::Args)]
pub(crate) struct DistArgs {
    /// Only this target (repeatable; default: both Linux CPUs, or on macOS both macOS CPUs).
    #[arg(long, value_enum)]
    target: Vec<Cpu>,
}

pub(crate) fn run(root: &Path, args: &DistArgs) -> anyhow::Result<()> {
    let cpus = match (args.target.is_empty(), std::env::consts::OS) {
        (true, "macos") => vec![Cpu::MacX86_64, Cpu::MacAarch64],
        (true, _) => vec![Cpu::X86_64, Cpu::Aarch64],
        (false, _) => args.target.clone(),
    };
    if let Some(mac) = cpus.iter().find(|c| c.is_macos()) {
        if std::env::consts::OS != "macos" {
            bail!("{} is built on macOS (its SDK is Apple's)", mac.triple());
        }
    }
    let version = ssmbak_core::build_info::VERSION;
    let epoch = source_date_epoch(root)?;
    let out = root.join("target/dist");
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let tools = match cpus.iter().all(|c| c.is_macos()) {
        true => None,
        false => Some(zig::install(root)?),
    };
    for cpu in cpus {
        let bins = build(root, tools.as_ref(), cpu, epoch)?;
        let (file, top) = archive_name(version, cpu);
        let mut files = Vec::new();
        for (name, path) in BINARIES.iter().zip(&bins) {
            let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            fits(&bytes, cpu).with_context(|| {
                format!("{name} for {} would not start everywhere", cpu.triple())
            })?;
            if cpu.runs_here() {
                check_version(path, name, cpu)?;
            }
            files.push(((*name).to_owned(), bytes, 0o755));
        }
        for doc in DOCUMENTS {
            let bytes = fs::read(root.join(doc)).with_context(|| format!("reading {doc}"))?;
            files.push((doc.to_owned(), bytes, 0o644));
        }
        let bytes = archive(&top, &files, epoch)?;
        let line = checksum_line(&file, &bytes);
        fs::write(out.join(&file), &bytes).with_context(|| format!("writing {file}"))?;
        fs::write(out.join(format!("{file}.sha256")), &line)?;
        eprintln!(
            "dist: {} ({} bytes)",
            out.join(&file).display(),
            bytes.len()
        );
    }
    // Every archive in the folder, whichever runs made them (one target at a time, too).
    fs::write(out.join("SHA256SUMS"), sums_of(&out)?)?;
    Ok(())
}

/// The `.sha256` lines of every archive in `dir`, in name order.
fn sums_of(dir: &Path) -> anyhow::Result<String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz.sha256"))
        .collect();
    files.sort();
    let mut sums = String::new();
    for file in files {
        sums.push_str(&fs::read_to_string(&file)?);
    }
    Ok(sums)
}

/// The commit's time: what the binaries say they were built on and the archives' dates.
fn source_date_epoch(root: &Path) -> anyhow::Result<u64> {
    if let Ok(given) = std::env::var("SOURCE_DATE_EPOCH") {
        return given.parse().context("SOURCE_DATE_EPOCH is not a number");
    }
    let out = Command::new("git")
        .current_dir(root)
        .args(["log", "-1", "--format=%ct"])
        .output()
        .context("git log")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("the commit's time (set SOURCE_DATE_EPOCH outside a git checkout)")
}

/// Refuses a binary that cannot start on every machine of `cpu`'s platform.
fn fits(bytes: &[u8], cpu: Cpu) -> anyhow::Result<()> {
    if !cpu.is_macos() {
        return elf::fits(bytes, cpu.machine(), GLIBC_CEILING);
    }
    // A 64-bit Mach-O file (`MH_MAGIC_64`, little-endian) and its `cputype`.
    let cputype: u32 = match cpu.machine() {
        Machine::X86_64 => 0x0100_0007,
        _ => 0x0100_000c,
    };
    if bytes.get(..4) != Some(&[0xcf, 0xfa, 0xed, 0xfe][..]) {
        bail!("it is not a 64-bit Mach-O executable");
    }
    if bytes.get(4..8) != Some(&cputype.to_le_bytes()[..]) {
        bail!("it is not for {}", cpu.triple());
    }
    Ok(())
}

/// Builds both binaries for `cpu`; their paths, in [`BINARIES`]' order.
fn build(
    root: &Path,
    tools: Option<&zig::Zig>,
    cpu: Cpu,
    epoch: u64,
) -> anyhow::Result<Vec<PathBuf>> {
    zig::ensure_rust_target(cpu.triple())?;
    let mut cmd = match tools.filter(|_| !cpu.is_macos()) {
        Some(tools) => {
            let target = format!("{}.{}.{}", cpu.triple(), GLIBC_CEILING.0, GLIBC_CEILING.1);
            let mut cmd = Command::new(&tools.cargo_zigbuild);
            cmd.args(["zigbuild", "--target", &target])
                .env("CARGO_ZIGBUILD_ZIG_PATH", &tools.zig);
            cmd
        }
        None => {
            let mut cmd = Command::new("cargo");
            cmd.args(["build", "--target", cpu.triple()]);
            cmd
        }
    };
    cmd.current_dir(root)
        .args(["--release", "--locked", "-p", "ssmbak"])
        .env("SOURCE_DATE_EPOCH", epoch.to_string());
    for bin in BINARIES {
        cmd.args(["--bin", bin]);
    }
    crate::util::run(&mut cmd)?;
    let dir = root.join(format!("target/{}/release", cpu.triple()));
    Ok(BINARIES.iter().map(|b| dir.join(b)).collect())
}

/// Runs `binary --version`: it must name the release and `cpu`'s target.
fn check_version(binary: &Path, name: &str, cpu: Cpu) -> anyhow::Result<()> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let line = String::from_utf8_lossy(&out.stdout);
    let release = format!("{name} {}", ssmbak_core::build_info::VERSION);
    if !out.status.success() || !line.starts_with(&release) || !line.contains(cpu.triple()) {
        bail!(
            "{name} --version says {line:?}, not {release} for {}",
            cpu.triple()
        );
    }
    Ok(())
}

/// A gzipped tar of `files` (name, bytes, mode) under `top/`, in the given order, owned by root
/// and dated `mtime`: nothing in it depends on when, where or by whom it was built.
pub(crate) fn archive(
    top: &str,
    files: &[(String, Vec<u8>, u32)],
    mtime: u64,
) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let header = |kind: tar::EntryType, mode: u32, size: usize| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size as u64);
        h
    };
    let mut dir = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut dir, format!("{top}/"), std::io::empty())?;
    for (name, bytes, mode) in files {
        let mut file = header(tar::EntryType::Regular, *mode, bytes.len());
        tar.append_data(&mut file, format!("{top}/{name}"), bytes.as_slice())?;
    }
    Ok(tar.into_inner()?.finish()?)
}

/// One `sha256sum` line for `name`.
pub(crate) fn checksum_line(name: &str, bytes: &[u8]) -> String {
    let digest: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{digest}  {name}\n")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn files() -> Vec<(String, Vec<u8>, u32)> {
        vec![
            ("ssmbak".to_owned(), b"\x7fELF one".to_vec(), 0o755),
            ("s3bak".to_owned(), b"\x7fELF two".to_vec(), 0o755),
            ("README.md".to_owned(), b"# read me".to_vec(), 0o644),
        ]
    }

    #[test]
    fn an_archive_is_reproducible_and_laid_out_as_binstall_expects() {
        let top = "ssmbak-1.2.3-x86_64-unknown-linux-gnu";
        let a = archive(top, &files(), 1_765_000_000).expect("archive");
        let b = archive(top, &files(), 1_765_000_000).expect("archive");
        assert_eq!(a, b, "the same input gives the same bytes");
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(a.as_slice()));
        let mut seen = Vec::new();
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let header = entry.header().clone();
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).expect("body");
            assert_eq!(header.mtime().ok(), Some(1_765_000_000), "{path}");
            assert_eq!(header.uid().ok(), Some(0), "{path}");
            seen.push((path, header.mode().unwrap_or(0), body));
        }
        let names: Vec<&str> = seen.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("{top}/"),
                format!("{top}/ssmbak"),
                format!("{top}/s3bak"),
                format!("{top}/README.md"),
            ]
        );
        assert_eq!(seen[1].1 & 0o777, 0o755, "binaries are executable");
        assert_eq!(seen[3].1 & 0o777, 0o644);
        assert_eq!(seen[2].2, b"\x7fELF two");
        let other_time = archive(top, &files(), 1_765_000_001).expect("archive");
        assert_ne!(other_time, a, "dated by the commit");
    }

    #[test]
    fn checksum_lines_are_sha256sums() {
        assert_eq!(
            checksum_line("a.tar.gz", b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a.tar.gz\n"
        );
    }

    #[test]
    fn a_binary_needing_a_newer_glibc_or_another_cpu_is_refused() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18..20].copy_from_slice(&0xb7_u16.to_le_bytes());
        let mut old = elf.clone();
        old.extend_from_slice(b"GLIBC_2.17\0GLIBC_2.2.5\0");
        assert!(fits(&old, Cpu::Aarch64).is_ok());
        assert!(fits(&old, Cpu::X86_64).is_err());
        assert!(
            fits(&old, Cpu::MacAarch64).is_err(),
            "an ELF file is no macOS binary"
        );
        let mut newer = elf;
        newer.extend_from_slice(b"GLIBC_2.28\0");
        let refused = fits(&newer, Cpu::Aarch64);
        assert!(
            refused.is_err_and(|e| e.to_string().contains("glibc 2.28")),
            "a 2.28 symbol does not start on RHEL 7"
        );
    }

    #[test]
    fn a_macos_binary_is_a_mach_o_file_for_its_cpu() {
        let mut arm = vec![0xcf, 0xfa, 0xed, 0xfe];
        arm.extend_from_slice(&0x0100_000c_u32.to_le_bytes());
        assert!(fits(&arm, Cpu::MacAarch64).is_ok());
        assert!(fits(&arm, Cpu::MacX86_64).is_err());
        assert!(fits(&arm, Cpu::Aarch64).is_err(), "no ELF file");
    }

    #[test]
    fn the_sums_list_every_archive_whichever_run_made_it() {
        let dir = std::env::temp_dir().join(format!("ssmbak-sums-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        for name in ["b.tar.gz", "a.tar.gz"] {
            fs::write(
                dir.join(format!("{name}.sha256")),
                checksum_line(name, name.as_bytes()),
            )
            .expect("sum");
        }
        fs::write(dir.join("SHA256SUMS"), "stale").expect("old sums");
        let sums = sums_of(&dir).expect("sums");
        let names: Vec<&str> = sums.lines().filter_map(|l| l.split("  ").nth(1)).collect();
        assert_eq!(names, ["a.tar.gz", "b.tar.gz"]);
        let _ = fs::remove_dir_all(&dir);
    }
}
