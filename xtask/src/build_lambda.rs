//! `cargo xtask build-lambda`: the Lambda artifact.
//!
//! Builds `bootstrap` in release mode and packs it into `target/lambda/bootstrap.zip` with a
//! fixed timestamp and mode (0755), so the same source gives the same bytes and the deploy
//! step can name the artifact by its content.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::util;

/// Builds the Lambda and returns the zip's path.
pub(crate) fn run(root: &Path) -> anyhow::Result<PathBuf> {
    util::run(util::cargo().current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "ssmbak-lambda",
        "--bin",
        "bootstrap",
    ]))?;
    let binary = root.join("target/release/bootstrap");
    let out_dir = root.join("target/lambda");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let zip_path = out_dir.join("bootstrap.zip");
    let bytes = fs::read(&binary).with_context(|| format!("cannot read {}", binary.display()))?;
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
