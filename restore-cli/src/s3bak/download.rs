//! `s3bak body`: a version's exact bytes, to a file, stdout or a directory tree.

use super::selection::Selection;
use super::session::{s3_error, Selected, Session};
use crate::common::checktime;
use crate::common::execute::{Attempt, Executor};
use crate::common::exit::{ExitCode, UsageError};
use crate::common::output::{print_lines, Line};
use crate::s3bak::objects::{self};
use crate::s3bak::paths as download;
use anyhow::Context;
use ssmbak_core::reader::ListedVersion;
use std::path::Path;

/// Streams one version's bytes into `out`, never holding it in memory.
pub(crate) async fn stream_version(
    session: &Session,
    key: &str,
    version_id: &str,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<u64> {
    let object = session
        .s3
        .get_object()
        .bucket(session.reader.bucket())
        .key(key)
        .version_id(version_id)
        .send()
        .await
        .map_err(|e| s3_error(&format!("reading {key} version {version_id}"), &e))?;
    let mut body = object.body;
    let mut written = 0;
    while let Some(chunk) = body
        .try_next()
        .await
        .with_context(|| format!("reading {key}"))?
    {
        out.write_all(&chunk)
            .with_context(|| format!("writing {key}"))?;
        written += chunk.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

/// Whether a version's bytes can be read now: not archived, or archived with a finished
/// restore request (the version keeps its archive class; a temporary copy serves reads).
pub(crate) async fn readable(
    session: &Session,
    key: &str,
    entry: &ListedVersion,
) -> anyhow::Result<bool> {
    if !objects::is_archived(entry.storage_class.as_deref()) {
        return Ok(true);
    }
    let head = session
        .s3
        .head_object()
        .bucket(session.reader.bucket())
        .key(key)
        .version_id(&entry.version_id)
        .send()
        .await
        .map_err(|e| s3_error(&format!("reading {key} version {}", entry.version_id), &e))?;
    Ok(objects::restored_copy_ready(head.restore()))
}

/// Writes through a temporary file next to `path`, renamed into place when complete.
///
/// The temporary file's name is unique (`.NAME.XXXXXX.s3bak-partial`, created 0600): keys such
/// as `d/index.html`, `d/index.js` and `d/index` download side by side without sharing one.
/// It is removed when the download fails or the command is interrupted (the file goes with
/// the dropped future).
pub(crate) async fn download_to_file(
    session: &Session,
    key: &str,
    version_id: &str,
    path: &Path,
) -> anyhow::Result<u64> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".s3bak-partial")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let written = stream_version(session, key, version_id, partial.as_file_mut()).await?;
    // The finished file is readable as any other download, not private like the partial one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        partial
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    partial
        .persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(written)
}

pub(crate) async fn download_one(
    session: &Session,
    selection: &Selection,
    selected: &[Selected],
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let when = checktime::format(selection.checktime);
    let Some(entry) = selected.first().and_then(Selected::entry) else {
        return Err(selection.no_version());
    };
    if entry.is_delete_marker {
        anyhow::bail!(
            "{} was deleted at {when} (delete marker {})",
            selection.key,
            entry.version_id
        );
    }
    if !readable(session, &selection.key, entry).await? {
        anyhow::bail!(
            "{} version {} is archived ({}): request a restore first (or wait for the one under way)",
            selection.key,
            entry.version_id,
            entry.storage_class.clone().unwrap_or_default()
        );
    }
    eprintln!(
        "Found version {} from {} ({} bytes)",
        entry.version_id,
        checktime::format(entry.last_modified_ms.div_euclid(1000)),
        entry.size
    );
    if out == Path::new("-") {
        // Stdout (not its lock, which cannot cross threads), with no newline added.
        let mut stdout = std::io::stdout();
        stream_version(session, &selection.key, &entry.version_id, &mut stdout).await?;
    } else {
        download_to_file(session, &selection.key, &entry.version_id, out).await?;
    }
    Ok(ExitCode::Success)
}

pub(crate) async fn download_tree(
    session: &Session,
    selection: &Selection,
    selected: &[Selected],
    dir: &Path,
    flat: bool,
) -> anyhow::Result<ExitCode> {
    if dir == Path::new("-") {
        return Err(
            UsageError("a prefix downloads to a directory, not to stdout".to_owned()).into(),
        );
    }
    let present: Vec<(&str, &ListedVersion)> = selected
        .iter()
        .filter_map(|s| Some((s.key.as_str(), s.entry().filter(|e| !e.is_delete_marker)?)))
        .collect();
    let (placeholders, files): (Vec<_>, Vec<_>) = present
        .into_iter()
        .partition(|(key, entry)| download::is_placeholder(key, entry.size));
    if !placeholders.is_empty() {
        eprintln!(
            "skipped {} folder placeholder(s) (empty keys ending in /)",
            placeholders.len()
        );
    }
    // Where every key goes, all checked before anything is written.
    let targets: Vec<(String, std::path::PathBuf)> = files
        .iter()
        .filter_map(|(key, _)| {
            Some((
                (*key).to_owned(),
                download::target(dir, &selection.key, key, flat).ok()?,
            ))
        })
        .collect();
    let clashes = download::collisions(&targets);
    if !clashes.is_empty() {
        let shown: Vec<String> = clashes.iter().take(5).map(ToString::to_string).collect();
        anyhow::bail!(
            "{} key(s) cannot be written side by side, nothing downloaded: {}{}",
            clashes.len(),
            shown.join("; "),
            if clashes.len() > 5 { "; ..." } else { "" }
        );
    }
    // Every key is tried (a failed download is reported and the others go on), but a
    // refusal every key would get alike stops the downloads not yet started.
    let executor = Executor::new(true)
        .stopping_everything_on(objects::is_bucket_wide)
        .with_progress();
    let attempts = executor
        .run(&files, selection.concurrency, |&(key, entry)| async move {
            let path = download::target(dir, &selection.key, key, flat)?;
            if !readable(session, key, entry).await? {
                anyhow::bail!(
                    "archived ({}): request a restore first (or wait for the one under way)",
                    entry.storage_class.clone().unwrap_or_default()
                );
            }
            download_to_file(session, key, &entry.version_id, &path).await
        })
        .await;
    if let Some(refusal) = executor.stopped_everything_by(&attempts) {
        anyhow::bail!("{refusal}");
    }
    let keys: Vec<&str> = files.iter().map(|&(key, _)| key).collect();
    let (lines, exit) = tree_report(&keys, &attempts, dir);
    print_lines(&lines);
    Ok(exit)
}

/// What a prefix download prints and how it exits, from what became of each key (`attempts`,
/// in the order of `keys`): its failures, then how many were downloaded.
fn tree_report(
    keys: &[&str],
    attempts: &[Attempt<u64, anyhow::Error>],
    dir: &Path,
) -> (Vec<Line>, ExitCode) {
    let mut lines = Vec::new();
    let mut failed = 0;
    let mut bytes = 0;
    for (key, attempt) in keys.iter().zip(attempts) {
        match attempt {
            Attempt::Succeeded(n) => bytes += n,
            Attempt::Failed(e) => {
                failed += 1;
                lines.push(Line::Stderr(format!("failed: {key}: {e:#}")));
            }
            // Only after a refusal that stops everything, which ends the command before this.
            Attempt::NotAttempted => {
                failed += 1;
                lines.push(Line::Stderr(format!("failed: {key}: not attempted")));
            }
        }
    }
    lines.push(Line::Stdout(format!(
        "downloaded {} of {} keys ({bytes} bytes) into {}",
        attempts.len() - failed,
        attempts.len(),
        dir.display()
    )));
    let exit = if failed > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Success
    };
    (lines, exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_download_names_its_failures_and_counts_the_rest() {
        let dir = Path::new("out");
        let (lines, exit) = tree_report(
            &["d/a", "d/b", "d/c"],
            &[
                Attempt::Succeeded(3),
                Attempt::Failed(anyhow::anyhow!("AccessDenied: no").context("reading d/b")),
                Attempt::Succeeded(4),
            ],
            dir,
        );
        assert_eq!(
            lines,
            [
                Line::Stderr("failed: d/b: reading d/b: AccessDenied: no".to_owned()),
                Line::Stdout("downloaded 2 of 3 keys (7 bytes) into out".to_owned()),
            ]
        );
        assert_eq!(exit, ExitCode::Partial);
        let (lines, exit) = tree_report(&[], &[], dir);
        assert_eq!(
            lines,
            [Line::Stdout(
                "downloaded 0 of 0 keys (0 bytes) into out".to_owned()
            )]
        );
        assert_eq!(exit, ExitCode::Success);
    }
}
