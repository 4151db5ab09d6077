//! The pure selection path at scale, in-process (`cargo xtask bench` runs it): S3's version
//! listing of a million versions, as `ListObjectVersions` pages it (1,000 entries a page, a
//! key's versions split across pages anywhere), merged, then the point in time chosen for
//! every key: the lazy reader's first round and the choice by `pit::state_at`. No I/O, so its
//! cost is ours alone; listing must never be the bottleneck (the AWS rollback sample lists a
//! million versions in about five minutes).
//!
//! Prints a Markdown section with its targets: under 1 s of CPU, under 300 MB peak.

use ssmbak_core::pit::{self, VersionEntry};
use ssmbak_core::reader::{merge_pages, LazyRead, ListedVersion};

const KEYS: usize = 100_000;
const VERSIONS: usize = 10;
const PAGE: usize = 1_000;
const BASE_MS: i64 = 1_700_000_000_000;

/// One listed version as S3 gives it: 32-character version ids, quoted MD5 ETags.
fn listed(key: usize, v: usize) -> (String, ListedVersion) {
    (
        format!("/bench/app{:03}/param{key:06}", key % 1000),
        ListedVersion {
            version_id: format!("{key:016x}{v:016x}"),
            // Newest first; whole seconds, as listings give them.
            last_modified_ms: BASE_MS + ((VERSIONS - v) as i64) * 60_000,
            is_delete_marker: false,
            is_latest: v == 0,
            size: 24,
            etag: Some(format!("\"{:032x}\"", key * VERSIONS + v)),
            storage_class: Some("STANDARD".to_owned()),
        },
    )
}

/// User and system CPU seconds of this process so far, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the name and state.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// A `/proc/self/status` figure in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

fn main() {
    // The pages, one at a time as the SDK's paginator hands them over and as
    // `BucketReader::list` merges them. Making them is the network's part, not ours: its CPU
    // is measured alone first and taken off.
    let page = |p: usize| -> Vec<(String, ListedVersion)> {
        (p * PAGE..(p + 1) * PAGE)
            .map(|i| listed(i / VERSIONS, i % VERSIONS))
            .collect()
    };
    let pages = KEYS * VERSIONS / PAGE;
    let making_before = cpu_seconds();
    for p in 0..pages {
        drop(std::hint::black_box(page(p)));
    }
    let making = cpu_seconds() - making_before;

    let cpu_before = cpu_seconds();
    let start = std::time::Instant::now();
    let listing = merge_pages((0..pages).map(page));
    // Three versions back: the hardest point for the lazy reader.
    let at = BASE_MS / 1000 + (VERSIONS as i64 - 3) * 60;
    let mut chosen = 0_usize;
    let mut first_round = 0_usize;
    for listed in listing.values() {
        first_round += LazyRead::new(listed, at).first_round().len();
        let entries: Vec<VersionEntry> = listed
            .iter()
            .map(|l| VersionEntry {
                version_id: l.version_id.clone(),
                last_modified_ms: l.last_modified_ms,
                is_delete_marker: l.is_delete_marker,
                is_latest: l.is_latest,
                event_time: Some(l.last_modified_ms.div_euclid(1000)),
                deleted_at: None,
                ssm_version: None,
                ssm_modified_ms: None,
                unread: false,
            })
            .collect();
        if pit::state_at(&entries, at).index().is_some() {
            chosen += 1;
        }
    }
    let wall = start.elapsed().as_secs_f64() - making;
    let cpu = cpu_seconds() - cpu_before - making;
    let peak = status_mb("VmHWM:");
    assert_eq!(listing.len(), KEYS);
    assert_eq!(chosen, KEYS);

    let versions = KEYS * VERSIONS;
    println!("### Selection of {versions} listed versions ({KEYS} keys), in-process\n");
    println!("Merge of {pages} pages of {PAGE} as they arrive, then for every key the lazy reader's first round ({first_round} reads planned) and the point-in-time choice. Wall {wall:.2} s (making the pages, {making:.2} s of CPU, taken off).\n");
    println!("| target | measured | met |\n|---|---|---|");
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    println!(
        "| {versions} versions: under 1 s of CPU | {cpu:.2} s | {} |",
        met(cpu < 1.0)
    );
    println!(
        "| {versions} versions: under 300 MB peak (the listing itself included) | {peak:.0} MB | {} |",
        met(peak < 300.0)
    );
    println!();
}
