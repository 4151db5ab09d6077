//! `s3bak`: point-in-time preview, download and restore for any versioned S3 bucket.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget};
use ssmbak_cli::exit::{self, ExitCode, UsageError};
use ssmbak_cli::objects::{self, Current, ObjectAction};
use ssmbak_cli::output::{aws_error, Format};
use ssmbak_cli::{bucket, checktime, download};
use ssmbak_core::aws_error::AwsError;
use ssmbak_core::bounded::map_in_order;
use ssmbak_core::client::{self, ClientOptions};
use ssmbak_core::reader::{self, BucketReader, Listed, Listing};

const COMPONENT: &str = "s3bak";
/// Versions above this size are copied in parts. CopyObject takes up to 5 GiB, but one request
/// copying gigabytes runs for minutes and is all lost to one failure; parts are retried alone.
const MULTIPART_COPY_THRESHOLD: i64 = 512 * 1024 * 1024;
/// Part size for multipart copies, unless the object needs larger parts to fit S3's 10,000.
const PART_SIZE: i64 = 128 * 1024 * 1024;
/// S3's limit on the parts of one upload.
const MAX_PARTS: i64 = 10_000;
/// How long one copy request may run: server-side copies move data at S3's pace, far longer
/// than the 10 s other requests get (a part of 128 MiB, or a whole object up to the threshold).
const COPY_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Parser)]
#[command(
    name = "s3bak",
    version,
    about = "Preview, download and restore any versioned S3 bucket as it was at a point in time",
    after_help = "CHECKTIME: YYYY-MM-DDTHH:MM:SS (UTC), RFC 3339 (…Z, …+01:00), \"2h ago\", \"now\".\n\
                  A KEY ending in / (or --recursive) covers every key under it.\n\
                  Exit codes: 0 done, 1 AWS or runtime failure, 2 usage, 3 only part done, 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The version each key had at CHECKTIME.
    Preview(Target),
    /// Download the version(s) of CHECKTIME: one key to a file (or - for stdout), a prefix to a directory.
    Body {
        #[command(flatten)]
        target: Target,
        /// Destination file, `-` for stdout, or a directory for a prefix.
        #[arg(short, long = "outfile")]
        outfile: Option<PathBuf>,
        /// Put every file directly in the directory (the key's last component), not under its key path.
        #[arg(long)]
        flat: bool,
    },
    /// Make the current state equal to the state at CHECKTIME (delete markers, never permanent deletes).
    Restore {
        #[command(flatten)]
        target: Target,
        /// Restore into this bucket instead.
        #[arg(long)]
        to_bucket: Option<String>,
        /// Restore under this prefix instead (replacing the KEY/prefix part).
        #[arg(long)]
        to_prefix: Option<String>,
        /// Show what would be done, do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Go on with the other keys when one fails (exit code 3 then).
        #[arg(long)]
        keep_going: bool,
        /// Do not copy the versions' tags.
        #[arg(long)]
        no_tags: bool,
        /// Copies above this size (bytes) are multipart.
        #[arg(long, default_value_t = MULTIPART_COPY_THRESHOLD, hide = true)]
        multipart_threshold: i64,
    },
}

#[derive(Args)]
struct Target {
    /// An object key, or a prefix ending in `/`.
    key: String,
    /// The point in time (see below).
    #[arg(value_parser = exit::parse_checktime)]
    checktime: i64,
    /// The versioned bucket.
    #[arg(short, long)]
    bucket: String,
    /// AWS region (default: the standard chain).
    #[arg(short, long)]
    region: Option<String>,
    /// Treat KEY as a prefix even without a trailing `/`.
    #[arg(long)]
    recursive: bool,
    /// Use the ssmbakTime tag (event time) instead of LastModified.
    #[arg(long)]
    ssmbak_time: bool,
    /// Keys worked on at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Output format for listings.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Pay for the requests: the bucket is requester-pays (`x-amz-request-payer: requester`).
    #[arg(long)]
    request_payer: bool,
}

impl Target {
    fn is_tree(&self) -> bool {
        self.recursive || self.key.ends_with('/') || self.key.is_empty()
    }
}

fn main() {
    let cli = exit::parse_args::<Cli>();
    exit::run_to_exit(run(cli));
}

/// One key in scope and the entry of its listing in force at the time.
struct Selected {
    key: String,
    listed: Vec<Listed>,
    index: Option<usize>,
}

impl Selected {
    fn entry(&self) -> Option<&Listed> {
        self.index.and_then(|i| self.listed.get(i))
    }
}

struct Session {
    s3: aws_sdk_s3::Client,
    reader: BucketReader,
}

async fn connect(t: &Target) -> anyhow::Result<Session> {
    let sdk = client::load(&ClientOptions {
        region: t.region.clone(),
        max_attempts: 8,
        adaptive_retry: true,
        ..ClientOptions::default()
    })
    .await?;
    let s3 = client::s3(&sdk, COMPONENT);
    let s3 = bucket::client_in_region_of(&sdk, s3, &t.bucket, COMPONENT).await?;
    let s3 = if t.request_payer {
        client::paying_requester(&s3)
    } else {
        s3
    };
    bucket::check_versioned(&s3, &t.bucket).await.map_err(|e| {
        let code = e.downcast_ref::<AwsError>().and_then(AwsError::code);
        match code == Some("AccessDenied") && !t.request_payer {
            true => anyhow::anyhow!("{e:#} (a requester-pays bucket needs --request-payer)"),
            false => e,
        }
    })?;
    Ok(Session {
        reader: BucketReader::new(s3.clone(), t.bucket.clone()),
        s3,
    })
}

/// Every key in scope with its selected entry, sorted by key.
async fn select(session: &Session, t: &Target) -> anyhow::Result<Vec<Selected>> {
    let listing: Listing = session.reader.list(&t.key).await?;
    let tree = t.is_tree();
    let keys: Vec<(String, Vec<Listed>)> = listing
        .into_iter()
        .filter(|(k, _)| tree || *k == t.key)
        .collect();
    let selected: Vec<anyhow::Result<Selected>> =
        map_in_order(keys, t.concurrency, |(key, listed)| async move {
            let index = if t.ssmbak_time {
                session
                    .reader
                    .select_by_event_time(&key, &listed, t.checktime)
                    .await?
            } else {
                reader::by_last_modified(&listed, t.checktime)
            };
            Ok(Selected { key, listed, index })
        })
        .await;
    selected.into_iter().collect()
}

fn progress(len: usize) -> ProgressBar {
    // Drawn only on a terminal.
    ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Preview(t) => {
            let session = connect(&t).await?;
            let selected = select(&session, &t).await?;
            preview(&t, &selected)?;
            let nothing = !t.is_tree() && selected.iter().all(|s| s.entry().is_none());
            if nothing {
                anyhow::bail!(
                    "no version of {} at or before {}",
                    t.key,
                    checktime::format(t.checktime)
                );
            }
            Ok(ExitCode::Success)
        }
        Command::Body {
            target,
            outfile,
            flat,
        } => {
            let Some(out) = outfile else {
                return Err(UsageError(
                    "body needs -o/--outfile (a file, - for stdout, or a directory for a prefix)"
                        .to_owned(),
                )
                .into());
            };
            let session = connect(&target).await?;
            let selected = select(&session, &target).await?;
            if target.is_tree() {
                download_tree(&session, &target, &selected, &out, flat).await
            } else {
                download_one(&session, &target, &selected, &out).await
            }
        }
        Command::Restore {
            target,
            to_bucket,
            to_prefix,
            dry_run,
            keep_going,
            no_tags,
            multipart_threshold,
        } => {
            let session = connect(&target).await?;
            let dest = Destination {
                bucket: to_bucket.clone().unwrap_or_else(|| target.bucket.clone()),
                prefix: to_prefix,
            };
            if to_bucket.is_some() {
                bucket::check_versioned(&session.s3, &dest.bucket).await?;
            }
            let selected = select(&session, &target).await?;
            let options = CopyOptions {
                no_tags,
                multipart_threshold,
            };
            restore(
                &session, &target, &selected, &dest, dry_run, keep_going, &options,
            )
            .await
        }
    }
}

fn preview(t: &Target, selected: &[Selected]) -> anyhow::Result<()> {
    let rows: Vec<(String, Option<&Listed>)> = selected
        .iter()
        .map(|s| (s.key.clone(), s.entry()))
        .collect();
    match t.output {
        Format::Json => {
            let keys: Vec<serde_json::Value> = rows
                .iter()
                .map(|(key, e)| {
                    serde_json::json!({
                        "key": key,
                        "version_id": e.map(|e| e.version_id.clone()),
                        "last_modified": e.map(|e| checktime::format(e.last_modified_ms.div_euclid(1000))),
                        "size": e.filter(|e| !e.is_delete_marker).map(|e| e.size),
                        "deleted": e.is_some_and(|e| e.is_delete_marker),
                        "exists": e.is_some_and(|e| !e.is_delete_marker),
                        "storage_class": e.and_then(|e| e.storage_class.clone()),
                    })
                })
                .collect();
            let doc = serde_json::json!({"bucket": t.bucket, "time": checktime::format(t.checktime), "keys": keys});
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).context("JSON output")?
            );
        }
        Format::Table => {
            let mut table = comfy_table::Table::new();
            table
                .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
                .set_header([
                    "Key",
                    "Version",
                    "Last modified",
                    "Size",
                    "State",
                    "Storage class",
                ]);
            for (key, e) in rows {
                let state = match e {
                    None => "not yet created",
                    Some(e) if e.is_delete_marker => "deleted",
                    Some(_) => "present",
                };
                table.add_row([
                    key,
                    e.map(|e| e.version_id.clone()).unwrap_or_default(),
                    e.map(|e| checktime::format(e.last_modified_ms.div_euclid(1000)))
                        .unwrap_or_default(),
                    e.filter(|e| !e.is_delete_marker)
                        .map(|e| e.size.to_string())
                        .unwrap_or_default(),
                    state.to_owned(),
                    e.and_then(|e| e.storage_class.clone()).unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}

/// Streams one version's bytes into `out`, never holding it in memory.
async fn stream_version(
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
async fn readable(session: &Session, key: &str, entry: &Listed) -> anyhow::Result<bool> {
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
async fn download_to_file(
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

async fn download_one(
    session: &Session,
    t: &Target,
    selected: &[Selected],
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let when = checktime::format(t.checktime);
    let Some(entry) = selected.first().and_then(Selected::entry) else {
        anyhow::bail!("no version of {} at or before {when}", t.key);
    };
    if entry.is_delete_marker {
        anyhow::bail!(
            "{} was deleted at {when} (delete marker {})",
            t.key,
            entry.version_id
        );
    }
    if !readable(session, &t.key, entry).await? {
        anyhow::bail!(
            "{} version {} is archived ({}): request a restore first (or wait for the one under way)",
            t.key,
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
        stream_version(session, &t.key, &entry.version_id, &mut stdout).await?;
    } else {
        download_to_file(session, &t.key, &entry.version_id, out).await?;
    }
    Ok(ExitCode::Success)
}

async fn download_tree(
    session: &Session,
    t: &Target,
    selected: &[Selected],
    dir: &Path,
    flat: bool,
) -> anyhow::Result<ExitCode> {
    if dir == Path::new("-") {
        return Err(
            UsageError("a prefix downloads to a directory, not to stdout".to_owned()).into(),
        );
    }
    let present: Vec<(&str, &Listed)> = selected
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
                download::target(dir, &t.key, key, flat).ok()?,
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
    let bar = progress(files.len());
    // A refusal every key would get alike stops the downloads not yet started.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<(String, anyhow::Result<u64>)> = stream::iter(files)
        .map(|(key, entry)| {
            let (bar, stop) = (&bar, &stop);
            async move {
                let result = async {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        anyhow::bail!("not attempted");
                    }
                    let path = download::target(dir, &t.key, key, flat)?;
                    if !readable(session, key, entry).await? {
                        anyhow::bail!(
                            "archived ({}): request a restore first (or wait for the one under way)",
                            entry.storage_class.clone().unwrap_or_default()
                        );
                    }
                    download_to_file(session, key, &entry.version_id, &path).await
                }
                .await;
                if result.as_ref().is_err_and(objects::is_bucket_wide) {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                bar.inc(1);
                (key.to_owned(), result)
            }
        })
        .buffer_unordered(t.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    if let Some((_, Err(refusal))) = results
        .iter()
        .find(|(_, r)| r.as_ref().is_err_and(objects::is_bucket_wide))
    {
        anyhow::bail!("{refusal}");
    }
    let mut failed = 0;
    let mut bytes = 0;
    for (key, r) in &results {
        match r {
            Ok(n) => bytes += n,
            Err(e) => {
                failed += 1;
                eprintln!("failed: {key}: {e:#}");
            }
        }
    }
    println!(
        "downloaded {} of {} keys ({bytes} bytes) into {}",
        results.len() - failed,
        results.len(),
        dir.display()
    );
    Ok(if failed > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Success
    })
}

struct Destination {
    bucket: String,
    prefix: Option<String>,
}

struct CopyOptions {
    no_tags: bool,
    multipart_threshold: i64,
}

impl Destination {
    /// The destination key of `key` (in scope `t`).
    fn key(&self, t: &Target, key: &str) -> String {
        match &self.prefix {
            None => key.to_owned(),
            Some(p) if t.is_tree() => {
                format!("{p}{}", key.strip_prefix(t.key.as_str()).unwrap_or(key))
            }
            Some(p) => format!("{p}{}", key.rsplit('/').next().unwrap_or(key)),
        }
    }
}

/// The destination's current object, when it is not the source key itself.
async fn current_elsewhere(
    session: &Session,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<Current>> {
    match session
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(h) => Ok(Some(Current {
            version_id: h.version_id().map(str::to_owned),
            etag: h.e_tag().map(str::to_owned),
            size: h.content_length().unwrap_or_default(),
        })),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
        Err(e) => Err(s3_error(&format!("checking s3://{bucket}/{key}"), &e)),
    }
}

/// What serves with an object besides its bytes: user metadata, content headers, and its tags
/// unless tags are not copied.
#[derive(Debug, PartialEq, Eq)]
struct Described {
    metadata: std::collections::BTreeMap<String, String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    website_redirect_location: Option<String>,
    /// Sorted; empty with `--no-tags`.
    tags: Vec<(String, String)>,
}

/// What a copy of this version must be told to keep (see [`objects::KeptOnCopy`]).
async fn kept_on_copy(
    session: &Session,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> anyhow::Result<objects::KeptOnCopy> {
    let head = session
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .version_id(version_id)
        .send()
        .await
        .map_err(|e| s3_error(&format!("reading {key} version {version_id}"), &e))?;
    Ok(objects::KeptOnCopy::of(
        head.server_side_encryption(),
        head.ssekms_key_id(),
        head.storage_class(),
    ))
}

/// What an object (a version of it, with `version_id`) serves with besides its bytes.
async fn described(
    session: &Session,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    options: &CopyOptions,
) -> anyhow::Result<Described> {
    let head = session
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| s3_error(&format!("reading s3://{bucket}/{key}"), &e))?;
    let mut tags = Vec::new();
    if !options.no_tags {
        let set = session
            .s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| s3_error(&format!("reading the tags of s3://{bucket}/{key}"), &e))?;
        tags = set
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        tags.sort();
    }
    let text = |v: Option<&str>| v.map(str::to_owned);
    Ok(Described {
        metadata: head
            .metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        content_type: text(head.content_type()),
        cache_control: text(head.cache_control()),
        content_disposition: text(head.content_disposition()),
        content_encoding: text(head.content_encoding()),
        content_language: text(head.content_language()),
        website_redirect_location: text(head.website_redirect_location()),
        tags,
    })
}

#[allow(clippy::too_many_arguments)]
async fn restore(
    session: &Session,
    t: &Target,
    selected: &[Selected],
    dest: &Destination,
    dry_run: bool,
    keep_going: bool,
    options: &CopyOptions,
) -> anyhow::Result<ExitCode> {
    let in_place_bucket = dest.bucket == t.bucket && dest.prefix.is_none();
    let mut plan = Vec::new();
    for s in selected {
        let dest_key = dest.key(t, &s.key);
        let current = if in_place_bucket {
            objects::current_of(&s.listed)
        } else {
            current_elsewhere(session, &dest.bucket, &dest_key).await?
        };
        let mut action = objects::plan(s.entry(), current.as_ref(), in_place_bucket, t.is_tree());
        // An archived version whose restore request has finished is copied like any other.
        if let (ObjectAction::Archived { .. }, Some(entry)) = (&action, s.entry()) {
            if readable(session, &s.key, entry).await? {
                action = ObjectAction::Copy {
                    version_id: entry.version_id.clone(),
                    size: entry.size,
                };
            }
        }
        // The same bytes are not the same object: a version is left alone only when its
        // metadata, content headers and tags are the current object's too.
        if let (ObjectAction::Unchanged, Some(entry), Some(c)) = (&action, s.entry(), &current) {
            let same_version = c.version_id.as_deref() == Some(entry.version_id.as_str());
            let already_it = in_place_bucket && same_version;
            if !entry.is_delete_marker && !already_it {
                let (source, now) = futures::try_join!(
                    described(session, &t.bucket, &s.key, Some(&entry.version_id), options),
                    described(session, &dest.bucket, &dest_key, None, options),
                )?;
                if source != now {
                    action = ObjectAction::Copy {
                        version_id: entry.version_id.clone(),
                        size: entry.size,
                    };
                }
            }
        }
        plan.push((s.key.clone(), dest_key, action));
    }
    let single_key_without_version =
        !t.is_tree() && plan.iter().all(|(_, _, a)| *a == ObjectAction::NoVersion);
    if single_key_without_version {
        anyhow::bail!(
            "no version of {} at or before {}",
            t.key,
            checktime::format(t.checktime)
        );
    }
    let bar = progress(plan.len());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<(String, String, ObjectAction, Option<anyhow::Result<()>>)> =
        map_in_order(plan, t.concurrency, |(key, dest_key, action)| {
            let (bar, stop) = (&bar, &stop);
            async move {
                let result = if dry_run || stop.load(std::sync::atomic::Ordering::Relaxed) {
                    None
                } else {
                    let r = apply(session, t, dest, &key, &dest_key, &action, options).await;
                    let bucket_wide = r.as_ref().is_err_and(objects::is_bucket_wide);
                    if r.is_err() && (!keep_going || bucket_wide) {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Some(r)
                };
                bar.inc(1);
                (key, dest_key, action, result)
            }
        })
        .await;
    bar.finish_and_clear();
    if let Some(refusal) = results.iter().find_map(|(_, _, _, r)| {
        r.as_ref()?
            .as_ref()
            .err()
            .filter(|e| objects::is_bucket_wide(e))
    }) {
        anyhow::bail!("{refusal}");
    }

    let (mut copied, mut deleted, mut unchanged, mut archived, mut failed, mut skipped) =
        (0, 0, 0, 0, 0, 0);
    for (key, dest_key, action, result) in &results {
        let target = if key == dest_key && dest.bucket == t.bucket {
            key.clone()
        } else {
            format!("s3://{}/{dest_key}", dest.bucket)
        };
        match (action, result) {
            (ObjectAction::Unchanged, _) => unchanged += 1,
            (
                ObjectAction::Archived {
                    version_id,
                    storage_class,
                },
                _,
            ) => {
                archived += 1;
                eprintln!("needs a restore request: {key} version {version_id} is {storage_class}");
            }
            (ObjectAction::NoVersion, _) => {}
            (_, None) if dry_run => println!("would {}: {key} -> {target}", action.as_str()),
            (_, None) => skipped += 1,
            (_, Some(Err(e))) => {
                failed += 1;
                eprintln!("failed: {key}: {e:#}");
            }
            (ObjectAction::Copy { .. }, Some(Ok(()))) => copied += 1,
            (ObjectAction::Delete, Some(Ok(()))) => {
                deleted += 1;
                if t.is_tree() {
                    println!("deleted (delete marker): {target}");
                }
            }
        }
    }
    if dry_run {
        println!("dry run: nothing written");
    } else {
        let mut line =
            format!("copied {copied}, deleted {deleted}, unchanged {unchanged}, failed {failed}");
        if archived > 0 {
            line.push_str(&format!(", needing a restore request {archived}"));
        }
        if skipped > 0 {
            line.push_str(&format!(", not attempted {skipped}"));
        }
        println!("{line}");
    }
    Ok(if failed + archived + skipped > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Success
    })
}

/// One line for a failed request on an object; a refusal that every key would get alike
/// (a version encrypted with a customer-provided key) is [`objects::BucketWide`].
fn s3_error<E>(
    doing: &str,
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> anyhow::Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    if objects::needs_customer_key(status, e.code(), e.message()) {
        return objects::BucketWide(format!(
            "{doing}: the object is encrypted with a customer-provided key (SSE-C), which s3bak does not take; nothing more was attempted"
        ))
        .into();
    }
    aws_error(doing, e)
}

/// The part size for a multipart copy of `size` bytes: [`PART_SIZE`], or larger when that
/// would take more than S3's 10,000 parts (5 TiB objects need about 525 MiB parts).
fn part_size(size: i64) -> i64 {
    const MIB: i64 = 1024 * 1024;
    // Signed integers have no stable div_ceil.
    let ceil = |a: i64, b: i64| (a + b - 1) / b;
    PART_SIZE.max(ceil(ceil(size, MAX_PARTS), MIB) * MIB)
}

/// The configuration of a copy request: its own long attempt timeout.
fn long_copy() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(COPY_ATTEMPT_TIMEOUT)
            .build(),
    )
}

/// `bucket/key?versionId=v`, the key percent-encoded as CopySource wants it.
fn copy_source(bucket: &str, key: &str, version_id: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{bucket}/{}?versionId={version_id}",
        percent_encoding::utf8_percent_encode(key, KEEP)
    )
}

async fn apply(
    session: &Session,
    t: &Target,
    dest: &Destination,
    key: &str,
    dest_key: &str,
    action: &ObjectAction,
    options: &CopyOptions,
) -> anyhow::Result<()> {
    let s3 = &session.s3;
    match action {
        ObjectAction::Delete => {
            s3.delete_object()
                .bucket(&dest.bucket)
                .key(dest_key)
                .send()
                .await
                .map_err(|e| aws_error(&format!("deleting {dest_key}"), &e))?;
        }
        ObjectAction::Copy { version_id, size } if *size > options.multipart_threshold => {
            multipart_copy(session, t, dest, key, dest_key, version_id, *size, options).await?;
        }
        ObjectAction::Copy { version_id, .. } => {
            // Metadata and content headers are copied with the object; tags too unless asked;
            // its KMS key and storage class when set.
            let kept = kept_on_copy(session, &t.bucket, key, version_id).await?;
            let mut copy = s3
                .copy_object()
                .bucket(&dest.bucket)
                .key(dest_key)
                .copy_source(copy_source(&t.bucket, key, version_id))
                .set_server_side_encryption(kept.encryption)
                .set_ssekms_key_id(kept.kms_key_id)
                .set_storage_class(kept.storage_class);
            if options.no_tags {
                copy = copy.tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace);
            }
            copy.customize()
                .config_override(long_copy())
                .send()
                .await
                .map_err(|e| s3_error(&format!("copying {key} version {version_id}"), &e))?;
        }
        ObjectAction::Unchanged | ObjectAction::Archived { .. } | ObjectAction::NoVersion => {}
    }
    Ok(())
}

/// Copies a version too large for CopyObject in parts, keeping its headers, metadata and tags.
#[allow(clippy::too_many_arguments)]
async fn multipart_copy(
    session: &Session,
    t: &Target,
    dest: &Destination,
    key: &str,
    dest_key: &str,
    version_id: &str,
    size: i64,
    options: &CopyOptions,
) -> anyhow::Result<()> {
    let s3 = &session.s3;
    let source = described(session, &t.bucket, key, Some(version_id), options).await?;
    let kept = kept_on_copy(session, &t.bucket, key, version_id).await?;
    let mut create = s3
        .create_multipart_upload()
        .bucket(&dest.bucket)
        .key(dest_key)
        .set_server_side_encryption(kept.encryption)
        .set_ssekms_key_id(kept.kms_key_id)
        .set_storage_class(kept.storage_class)
        .set_metadata(Some(source.metadata.into_iter().collect()))
        .set_content_type(source.content_type)
        .set_content_encoding(source.content_encoding)
        .set_content_disposition(source.content_disposition)
        .set_content_language(source.content_language)
        .set_cache_control(source.cache_control);
    if !source.tags.is_empty() {
        let pairs = source.tags.iter().map(|(k, v)| (k.as_str(), v.clone()));
        create = create.tagging(ssmbak_core::format::encode_tagging(pairs));
    }
    let upload = create
        .send()
        .await
        .map_err(|e| aws_error(&format!("starting the copy of {key}"), &e))?;
    let upload_id = upload.upload_id().context("no upload id")?.to_owned();
    let result = async {
        let mut parts = Vec::new();
        let mut start = 0;
        let mut number = 1;
        let part_size = part_size(size);
        while start < size {
            let end = (start + part_size).min(size) - 1;
            let part = s3
                .upload_part_copy()
                .bucket(&dest.bucket)
                .key(dest_key)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(copy_source(&t.bucket, key, version_id))
                .copy_source_range(format!("bytes={start}-{end}"))
                .customize()
                .config_override(long_copy())
                .send()
                .await
                .map_err(|e| s3_error(&format!("copying part {number} of {key}"), &e))?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(
                        part.copy_part_result()
                            .and_then(|r| r.e_tag())
                            .map(str::to_owned),
                    )
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        s3.complete_multipart_upload()
            .bucket(&dest.bucket)
            .key(dest_key)
            .upload_id(&upload_id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(&format!("finishing the copy of {key}"), &e))?;
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = s3
            .abort_multipart_upload()
            .bucket(&dest.bucket)
            .key(dest_key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fit_s3s_limits_for_any_size() {
        const MIB: i64 = 1024 * 1024;
        assert_eq!(part_size(MULTIPART_COPY_THRESHOLD + 1), PART_SIZE);
        // S3's largest object, 5 TiB, in at most 10,000 parts of at most 5 GiB.
        for size in [
            MULTIPART_COPY_THRESHOLD + 1,
            100 * 1024 * MIB,
            5 * 1024 * 1024 * MIB,
        ] {
            let part = part_size(size);
            assert!((size + part - 1) / part <= MAX_PARTS, "{size}");
            assert!(part <= 5 * 1024 * MIB && part % MIB == 0, "{size}");
        }
    }
}
