//! `cargo xtask man [--out DIR]`: man pages for `ssmbak` and `s3bak` and for each of their
//! commands (`ssmbak-restore.1`, …), rendered by clap_mangen from the same definitions as
//! `--help`, so the two never disagree.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

#[derive(clap::Args)]
pub(crate) struct ManArgs {
    /// Where to write the pages (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub(crate) fn run(root: &Path, args: &ManArgs) -> anyhow::Result<()> {
    let dir = args.out.clone().unwrap_or_else(|| root.join("target/man"));
    let pages = write_pages(&dir)?;
    eprintln!(
        "wrote {} man pages to {} (try: man -l {})",
        pages.len(),
        dir.display(),
        dir.join("ssmbak.1").display()
    );
    Ok(())
}

/// Writes every page into `dir`; returns their paths, sorted.
pub(crate) fn write_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for command in [
        ssmbak_cli::ssmbak::Cli::command(),
        ssmbak_cli::s3bak::Cli::command(),
    ] {
        clap_mangen::generate_to(command, dir)
            .with_context(|| format!("writing man pages to {}", dir.display()))?;
    }
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_page() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pages = write_pages(dir.path()).expect("pages");
        let names: Vec<String> = pages
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
            .collect();
        for page in [
            "ssmbak.1",
            "ssmbak-preview.1",
            "ssmbak-restore.1",
            "ssmbak-diff.1",
            "ssmbak-log.1",
            "s3bak.1",
            "s3bak-preview.1",
            "s3bak-body.1",
            "s3bak-restore.1",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} in {names:?}");
        }
        let restore = std::fs::read_to_string(dir.path().join("ssmbak-restore.1")).expect("page");
        assert!(
            restore.starts_with(".ie") || restore.contains(".TH"),
            "roff"
        );
        assert!(restore.contains("keep\\-going"), "options documented");
    }
}
