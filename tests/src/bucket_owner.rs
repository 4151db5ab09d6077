//! S3's bucket owner condition, which moto does not check: a request carrying
//! `x-amz-expected-bucket-owner` (or `x-amz-source-expected-bucket-owner`) that names another
//! account than the bucket's is refused with `403 AccessDenied` (S3 User Guide, "Verifying
//! bucket ownership with bucket owner condition"). CreateBucket and ListBuckets ignore the
//! header: the first has no owner yet, the second no bucket.
//!
//! Modelled on a [`FaultProxy`]: each bucket is given an owner; requests to it naming another
//! are refused, and requests naming none are recorded, so a test can require that every
//! request to the backup bucket was conditioned.

use std::sync::{Arc, Mutex};

use crate::fault_proxy::{Fault, FaultProxy, Seen};

/// The account moto answers STS's GetCallerIdentity with and owns every bucket by.
pub const EMULATOR_ACCOUNT: &str = "123456789012";
/// An account that is not the emulator's: the owner of a "foreign" bucket.
pub const OTHER_ACCOUNT: &str = "999999999999";

/// What [`OwnerCheck::install`] saw.
pub struct OwnerCheck {
    unconditioned: Arc<Mutex<Vec<String>>>,
}

/// The bucket a path-style request is for (`/bucket/key?query` → `bucket`).
fn bucket_of(seen: &Seen) -> &str {
    seen.path_only()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
}

/// A CreateBucket: `PUT /bucket` with no sub-resource.
fn is_create_bucket(seen: &Seen) -> bool {
    let query = seen.path.split_once('?').map_or("", |(_, q)| q);
    seen.target.is_none()
        && seen.method == "PUT"
        && !seen.path_only().trim_matches('/').contains('/')
        && query
            .split('&')
            .all(|p| p.is_empty() || p.starts_with("x-id="))
}

impl OwnerCheck {
    /// Gives each of `owners`' buckets its owner on `proxy`.
    pub fn install(proxy: &FaultProxy, owners: &[(&str, &str)]) -> Self {
        let owners: Vec<(String, String)> = owners
            .iter()
            .map(|(b, o)| (b.to_string(), o.to_string()))
            .collect();
        let unconditioned = Arc::new(Mutex::new(Vec::new()));
        let seen_by = Arc::clone(&unconditioned);
        proxy.inject(usize::MAX, Fault::Denied, move |s| {
            if s.target.is_some() || is_create_bucket(s) {
                return false;
            }
            let Some((_, owner)) = owners.iter().find(|(b, _)| b == bucket_of(s)) else {
                return false;
            };
            let named = [
                "x-amz-expected-bucket-owner",
                "x-amz-source-expected-bucket-owner",
            ]
            .iter()
            .filter_map(|h| s.headers.get(*h))
            .collect::<Vec<_>>();
            if !s.headers.contains_key("x-amz-expected-bucket-owner") {
                seen_by.lock().expect("lock").push(s.operation());
            }
            named.iter().any(|n| *n != owner)
        });
        OwnerCheck { unconditioned }
    }

    /// The requests to a listed bucket that named no expected owner.
    pub fn unconditioned(&self) -> Vec<String> {
        self.unconditioned.lock().expect("lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn seen(method: &str, path: &str) -> Seen {
        Seen {
            method: method.into(),
            path: path.into(),
            target: None,
            body: String::new(),
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn create_bucket_is_told_from_the_bucket_s_other_puts() {
        assert!(is_create_bucket(&seen("PUT", "/b")));
        assert!(is_create_bucket(&seen("PUT", "/b/?x-id=CreateBucket")));
        assert!(!is_create_bucket(&seen("PUT", "/b?versioning")));
        assert!(!is_create_bucket(&seen("PUT", "/b/key?x-id=PutObject")));
        assert_eq!(bucket_of(&seen("GET", "/b/a/key?versionId=1")), "b");
    }
}
