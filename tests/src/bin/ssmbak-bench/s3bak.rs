//! `s3bak preview PREFIX/ T` over a prefix of 100,000 versions (#15 part 4).
//!
//! moto's `ListObjectVersions` does work in proportion to the whole bucket on every page
//! (0.63 s a page at 5,000 versions), so listing 100,000 would take it about 20 minutes and
//! measure moto, not us. The proxy answers the listing itself instead, from a generated
//! history, as S3 pages it: 1,000 entries a page, by key, each key's versions newest first,
//! resumed from the request's key and version markers. Everything else (the bucket's checks)
//! goes to moto, where the bucket exists and is versioned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ssmbak_tests::emulator::{checktime, rfc3339, Clients};
use ssmbak_tests::fault_proxy::{Fault, FaultProxy, Seen};

use crate::run::{median, run, Tool};
use crate::Config;

const KEYS: usize = 10_000;
const VERSIONS: usize = 10;
const PREFIX: &str = "big/";
const PAGE: usize = 1000;
/// When the first version of the first key was written (epoch seconds).
const START: i64 = 1_780_000_000;
/// Between two versions of one key.
const EVERY: i64 = 3600;

pub(crate) const HEADER: &str = "| versions | keys | round trip | median s | CPU s | peak RSS MB | requests | by operation |\n|---|---|---|---|---|---|---|---|";

fn key(i: usize) -> String {
    format!("{PREFIX}k{i:06}")
}

/// The `n`-th entry of the listing (`key index`, `version`, newest first): version `v` of a key
/// was written `v` hours after the start, plus a second per key; every tenth key's newest entry
/// is a delete marker.
fn entry_xml(n: usize) -> String {
    let (k, newest_first) = (n / VERSIONS, n % VERSIONS);
    let v = VERSIONS - 1 - newest_first;
    let modified = rfc3339(START + v as i64 * EVERY + k as i64);
    let latest = newest_first == 0;
    let (key, id) = (key(k), format!("v{k:06}-{v:02}"));
    if latest && k % 10 == 0 {
        format!("<DeleteMarker><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>true</IsLatest><LastModified>{modified}</LastModified></DeleteMarker>")
    } else {
        format!("<Version><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>{latest}</IsLatest><LastModified>{modified}</LastModified><ETag>\"{:032x}\"</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Version>", n, 100 + v)
    }
}

/// A query parameter's value, percent-decoded (the markers are keys and version ids).
fn query(seen: &Seen, name: &str) -> Option<String> {
    let query = seen.path.split_once('?')?.1;
    let value = query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))?;
    let mut out = Vec::new();
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// Where the page after the markers starts.
fn resume_at(seen: &Seen) -> usize {
    let Some(marker) = query(seen, "key-marker").filter(|m| !m.is_empty()) else {
        return 0;
    };
    let k: usize = marker
        .trim_start_matches(PREFIX)
        .trim_start_matches('k')
        .parse()
        .unwrap_or(KEYS);
    match query(seen, "version-id-marker").filter(|m| !m.is_empty()) {
        // After every version of that key.
        None => (k + 1) * VERSIONS,
        Some(id) => {
            let v: usize = id
                .rsplit('-')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            k * VERSIONS + (VERSIONS - 1 - v) + 1
        }
    }
}

/// The modelled round trip of a listing page, ms: the proxy applies one rule a request, so the
/// page's own answer waits it out.
static LISTING_DELAY_MS: AtomicU64 = AtomicU64::new(0);

/// S3's answer to the listing request `seen`, whatever moto said.
fn listing_page(seen: &Seen, _moto: &[u8]) -> Vec<u8> {
    std::thread::sleep(Duration::from_millis(
        LISTING_DELAY_MS.load(Ordering::Relaxed),
    ));
    let total = KEYS * VERSIONS;
    let start = resume_at(seen).min(total);
    let end = (start + PAGE).min(total);
    let bucket = seen.path_only().trim_matches('/');
    let truncated = end < total;
    let mut xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name><Prefix>{PREFIX}</Prefix><MaxKeys>{PAGE}</MaxKeys><IsTruncated>{truncated}</IsTruncated>");
    if truncated {
        let (k, v) = ((end - 1) / VERSIONS, VERSIONS - 1 - (end - 1) % VERSIONS);
        xml.push_str(&format!(
            "<NextKeyMarker>{}</NextKeyMarker><NextVersionIdMarker>v{k:06}-{v:02}</NextVersionIdMarker>",
            key(k)
        ));
    }
    for n in start..end {
        xml.push_str(&entry_xml(n));
    }
    xml.push_str("</ListVersionsResult>");
    xml.into_bytes()
}

/// Times `s3bak preview` of the prefix at a point among the middle versions, raw and with the
/// round trip.
pub(crate) async fn measure(config: &Config, aws: &Clients) {
    let bucket = ssmbak_tests::emulator::unique("s3bak-bench").to_ascii_lowercase();
    ssmbak_tests::emulator::versioned_bucket(&aws.s3, &bucket).await;
    let s3bak = std::path::Path::new(&config.ours).with_file_name("s3bak");
    let s3bak = s3bak.to_str().expect("utf-8 path");
    let at = checktime(START + (VERSIONS as i64 / 2) * EVERY);
    for delay in config.delays() {
        LISTING_DELAY_MS.store(delay, Ordering::Relaxed);
        let proxy = FaultProxy::start(&config.endpoint);
        proxy.inject(usize::MAX, Fault::Rewrite(listing_page), |s| {
            s.operation() == "S3 ListObjectVersions"
        });
        if delay > 0 {
            proxy.inject(
                usize::MAX,
                Fault::Delay(Duration::from_millis(delay)),
                |_| true,
            );
        }
        let args = ["preview", PREFIX, &at, "-b", &bucket, "--output", "json"];
        let runs: Vec<_> = (0..config.runs)
            .map(|_| run(Tool::Ours, s3bak, &args, &proxy))
            .collect();
        let listed = serde_json::from_str::<serde_json::Value>(&runs[0].stdout)
            .ok()
            .and_then(|v| v["keys"].as_array().map(Vec::len))
            .unwrap_or(0);
        assert_eq!(listed, KEYS, "s3bak listed {listed} keys, not {KEYS}");
        let seconds = median(runs.iter().map(|m| m.seconds).collect());
        let m = &runs[0];
        println!(
            "| {} | {KEYS} | {delay} ms | {seconds:.2} | {} | {} | {} | {} |",
            KEYS * VERSIONS,
            m.cpu(),
            m.peak_rss_mb(),
            m.total_requests(),
            m.by_operation()
        );
    }
}
