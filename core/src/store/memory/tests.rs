use super::objects::Bucket;
use super::*;
use crate::format::{self, ParameterType};
use crate::store::{Deleted, HistoryVersion, NewObject};
use crate::store::{ObjectStore, ParameterStore};

fn bucket(page_size: usize) -> MemoryStore {
    MemoryStore::new("b", Clock::at_ms(1_700_000_000_250)).with_page_size(page_size)
}

fn put(key: &str, body: &str) -> NewObject {
    NewObject {
        key: key.to_owned(),
        body: body.as_bytes().to_vec(),
        ..NewObject::default()
    }
}

fn marker(d: Deleted) -> String {
    match d {
        Deleted::Marker(Some(id)) => id,
        other => panic!("no marker: {other:?}"),
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[test]
fn a_delete_marker_answers_as_s3_does() {
    let s3 = bucket(1000);
    let v1 = block_on(s3.put(put("/a", "one")))
        .expect("answered")
        .version_id
        .expect("answered");
    let marker = marker(block_on(s3.delete("/a", None)).expect("answered"));
    assert_ne!(v1, marker);
    // The key: 404 (None). The marker's own version: 405, for reads and tags alike.
    assert_eq!(block_on(s3.head("/a", None)).expect("answered"), None);
    assert_eq!(block_on(s3.get("/a", None)).expect("answered"), None);
    for status in [
        block_on(s3.head("/a", Some(&marker)))
            .expect_err("refused")
            .status,
        block_on(s3.get("/a", Some(&marker)))
            .expect_err("refused")
            .status,
        block_on(s3.tags("/a", &marker))
            .expect_err("refused")
            .status,
    ] {
        assert_eq!(status, Some(405));
    }
    // The version behind it is still there.
    let (_, body) = block_on(s3.get("/a", Some(&v1)))
        .expect("answered")
        .expect("answered");
    assert_eq!(body, b"one");
    // A delete of a key that never existed makes a marker too.
    assert!(matches!(
        block_on(s3.delete("/never", None)).expect("answered"),
        Deleted::Marker(Some(_))
    ));
}

#[test]
fn a_conditional_delete_writes_a_marker_only_over_the_version_named() {
    let s3 = bucket(1000);
    let tombstone = block_on(s3.put(put("/a", "")))
        .expect("answered")
        .etag
        .expect("answered");
    // The first writer's marker: the tombstone is current.
    marker(block_on(s3.delete("/a", Some(&tombstone))).expect("answered"));
    // A second one for the same delete: a marker is current, nothing written.
    assert_eq!(
        block_on(s3.delete("/a", Some(&tombstone))).expect("answered"),
        Deleted::NotCurrent
    );
    // A value written since: not the tombstone, nothing written.
    block_on(s3.put(put("/a", "back"))).expect("answered");
    assert_eq!(
        block_on(s3.delete("/a", Some(&tombstone))).expect("answered"),
        Deleted::NotCurrent
    );
    assert_eq!(s3.dump()[0].1.len(), 3);
}

#[test]
fn listings_give_whole_seconds_two_lists_and_the_newest_entry() {
    let s3 = bucket(1000);
    block_on(s3.put(put("/a", "one"))).expect("answered");
    s3.clock().advance(500);
    block_on(s3.delete("/a", None)).expect("answered");
    s3.clock().advance(10);
    block_on(s3.put(put("/a", "two"))).expect("answered");
    let page = block_on(s3.list_versions("/a", None, None)).expect("answered");
    assert_eq!(page.versions.len(), 2);
    assert_eq!(page.markers.len(), 1);
    assert!(page.next.is_none());
    for (_, l) in page.versions.iter().chain(&page.markers) {
        assert_eq!(l.last_modified_ms % 1000, 0, "whole seconds");
    }
    let latest: Vec<bool> = page.versions.iter().map(|(_, l)| l.is_latest).collect();
    assert_eq!(latest, [true, false], "versions newest first");
    assert!(!page.markers[0].1.is_latest);
    assert_eq!(
        page.versions[0].1.etag.as_deref(),
        Some(format::plain_etag(b"two").as_str())
    );
}

#[test]
fn pages_split_anywhere_list_the_same_versions() {
    let whole = bucket(1000);
    let keys = ["/a", "/a/b", "/ab", "/b"];
    for round in 0..5 {
        for (i, key) in keys.iter().enumerate() {
            if (round + i) % 3 == 2 {
                block_on(whole.delete(key, None)).expect("answered");
            } else {
                block_on(whole.put(put(key, &format!("{round}")))).expect("answered");
            }
            whole.clock().advance(300);
        }
    }
    let all = |s3: &MemoryStore| {
        let mut entries = Vec::new();
        let mut from = None;
        loop {
            let page = block_on(s3.list_versions("/a", from, None)).expect("answered");
            entries.extend(page.versions.into_iter().chain(page.markers));
            from = page.next;
            if from.is_none() {
                break;
            }
        }
        entries.sort_by(|a, b| (&a.0, &a.1.version_id).cmp(&(&b.0, &b.1.version_id)));
        entries
    };
    let expected = all(&whole);
    assert_eq!(expected.len(), 15, "/a, /a/b and /ab, five entries each");
    for page_size in 1..8 {
        let split = MemoryStore {
            page_size,
            ..bucket(1)
        };
        *split.lock() = Bucket {
            keys: whole.lock().keys.clone(),
            written: 0,
        };
        assert_eq!(all(&split), expected, "pages of {page_size}");
    }
}

#[test]
fn metadata_and_tags_keep_to_s3s_limits() {
    let s3 = bucket(1000);
    let mut big = put("/a", "x");
    big.metadata = vec![("k".to_owned(), "v".repeat(2048))];
    assert_eq!(
        block_on(s3.put(big)).expect_err("refused").code.as_deref(),
        Some("MetadataTooLarge")
    );
    let mut tagged = put("/a", "x");
    tagged.tagging = (0..11)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        block_on(s3.put(tagged))
            .expect_err("refused")
            .code
            .as_deref(),
        Some("InvalidTag")
    );
    let mut upper = put("/a", "x");
    upper.metadata = vec![("Ssmbak-Time".to_owned(), "1".to_owned())];
    let id = block_on(s3.put(upper))
        .expect("answered")
        .version_id
        .expect("answered");
    let head = block_on(s3.head("/a", Some(&id)))
        .expect("answered")
        .expect("answered");
    assert_eq!(
        head.metadata.get("ssmbak-time").map(String::as_str),
        Some("1")
    );
}

#[test]
fn ssm_numbers_versions_from_1_again_after_a_delete() {
    let ssm = MemoryParameters::new(Clock::at_ms(1_700_000_000_000));
    assert_eq!(ssm.put_at("/p", "a", ParameterType::String, 1), 1);
    assert_eq!(ssm.put_at("/p", "b", ParameterType::String, 2), 2);
    assert!(ssm.delete("/p"));
    assert_eq!(block_on(ssm.history("/p")).expect("answered"), None);
    assert_eq!(block_on(ssm.tags("/p")).expect("answered"), None);
    assert_eq!(ssm.put_at("/p", "c", ParameterType::String, 3), 1);
    assert_eq!(ssm.current("/p"), Some((1, 3)));
}

#[test]
fn ssm_labels_move_and_history_keeps_100_versions() {
    let ssm = MemoryParameters::new(Clock::at_ms(0));
    for i in 0..105 {
        ssm.put_at("/p", &format!("{i}"), ParameterType::String, i);
    }
    let history = block_on(ssm.history("/p"))
        .expect("answered")
        .expect("answered");
    assert_eq!(history.len(), HISTORY_LIMIT);
    assert_eq!(history[0].version(), 6);
    assert!(ssm.label("/p", 100, "live"));
    assert!(ssm.label("/p", 105, "live"));
    let history = block_on(ssm.history("/p"))
        .expect("answered")
        .expect("answered");
    let labelled: Vec<i64> = history
        .iter()
        .filter(|h| h.labels.contains(&"live".to_owned()))
        .map(HistoryVersion::version)
        .collect();
    assert_eq!(labelled, [105], "a label is on one version");
    assert!(!ssm.label("/p", 1, "old"), "version 1 is no longer kept");
}

#[test]
fn describe_pages_list_a_path_and_not_its_neighbours() {
    let ssm = MemoryParameters {
        page_size: 2,
        ..MemoryParameters::new(Clock::at_ms(0))
    };
    for name in ["/app/a", "/app/b", "/app/c/d", "/application/x"] {
        ssm.put_at(name, "v", ParameterType::String, 1);
    }
    let paths = ["/app".to_owned()];
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = block_on(ssm.describe(&paths, token)).expect("answered");
        names.extend(page.parameters.into_iter().map(|p| p.name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["/app/a", "/app/b", "/app/c/d"]);
}
