//! `s3bak`: what to do with each object of a generic versioned bucket to bring it back to a
//! point in time, with the fewest operations and without ever deleting data permanently.

use ssmbak_core::reader::ListedVersion;

/// Storage classes whose versions must be restored (thawed) before they can be read or copied.
const ARCHIVED: [&str; 2] = ["GLACIER", "DEEP_ARCHIVE"];

/// Whether a version of this storage class needs a restore request before it can be read.
pub fn is_archived(storage_class: Option<&str>) -> bool {
    storage_class.is_some_and(|c| ARCHIVED.contains(&c))
}

/// Whether HeadObject's `x-amz-restore` says a restored copy of an archived version is ready
/// (`ongoing-request="false", expiry-date="..."`; S3 API reference, HeadObject `Restore`).
pub fn restored_copy_ready(restore: Option<&str>) -> bool {
    restore.is_some_and(|r| r.contains("ongoing-request=\"false\""))
}

/// A refusal that every key of the bucket would get alike: the run stops at the first one,
/// with one line, instead of failing key by key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BucketWide(pub String);

/// Whether `e` is bucket-wide.
pub fn is_bucket_wide(e: &anyhow::Error) -> bool {
    e.downcast_ref::<BucketWide>().is_some()
}

/// Whether S3 refused to read a version because it is encrypted with a customer-provided key
/// (SSE-C) the request did not carry: `400 InvalidRequest`, "The object was stored using a
/// form of Server Side Encryption. The correct parameters must be provided to retrieve the
/// object." (S3 User Guide, "Using server-side encryption with customer-provided keys
/// (SSE-C)"); a HEAD gets the 400 without a body, so without the message. The code is S3's
/// generic `InvalidRequest`: the message is the only thing that tells this refusal apart.
pub fn needs_customer_key(status: u16, code: Option<&str>, message: Option<&str>) -> bool {
    status == 400
        && match message {
            Some(m) => m.contains("Server Side Encryption"),
            None => code.is_none() || code == Some("BadRequest"),
        }
}

/// What a copy keeps of its source version beyond what CopyObject carries by itself. Without
/// them a copy is encrypted with the destination bucket's default and stored as STANDARD
/// (S3 API reference, CopyObject: "the Amazon S3 default encryption configuration of the
/// destination bucket is used", and `x-amz-storage-class` "By default, Amazon S3 uses the
/// STANDARD Storage Class"). The source's KMS key and storage class are set explicitly;
/// SSE-S3 needs nothing (every bucket encrypts at least so).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeptOnCopy {
    pub encryption: Option<aws_sdk_s3::types::ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub storage_class: Option<aws_sdk_s3::types::StorageClass>,
}

impl KeptOnCopy {
    /// From the source version's HeadObject answer.
    pub fn of(
        encryption: Option<&aws_sdk_s3::types::ServerSideEncryption>,
        kms_key_id: Option<&str>,
        storage_class: Option<&aws_sdk_s3::types::StorageClass>,
    ) -> Self {
        use aws_sdk_s3::types::{ServerSideEncryption as Sse, StorageClass};
        let kms = encryption.filter(|e| matches!(e, Sse::AwsKms | Sse::AwsKmsDsse));
        KeptOnCopy {
            encryption: kms.cloned(),
            kms_key_id: kms.and(kms_key_id).map(str::to_owned),
            // Only classes a copy may ask for (not Outposts, Express One Zone, Snow), and none
            // that archives: a version restored from Glacier is restored to be read, and
            // copied back into Glacier it could not be.
            storage_class: storage_class
                .filter(|c| {
                    matches!(
                        c,
                        StorageClass::StandardIa
                            | StorageClass::OnezoneIa
                            | StorageClass::IntelligentTiering
                            | StorageClass::GlacierIr
                            | StorageClass::ReducedRedundancy
                    )
                })
                .cloned(),
        }
    }
}

/// What restoring one key takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectAction {
    /// The destination already matches.
    Unchanged,
    /// Copy this source version (server-side).
    Copy { version_id: String, size: i64 },
    /// Add a delete marker: deleted (or not yet created) at the time, present now.
    Delete,
    /// The version is in an archive storage class: it needs a restore request first.
    Archived {
        version_id: String,
        storage_class: String,
    },
    /// A single key with no version at or before the time.
    NoVersion,
}

impl ObjectAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectAction::Unchanged => "unchanged",
            ObjectAction::Copy { .. } => "copy",
            ObjectAction::Delete => "delete",
            ObjectAction::Archived { .. } => "needs restore request",
            ObjectAction::NoVersion => "no version",
        }
    }
}

/// The destination's current object, if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub size: i64,
}

/// What to do for one key. `selected` is the entry in force at the time (`None`: nothing
/// then), `current` the destination's object now; `in_place` when the destination is the
/// source key itself; `tree` for a prefix restore (a key that did not exist then is deleted).
pub fn plan(
    selected: Option<&ListedVersion>,
    current: Option<&Current>,
    in_place: bool,
    tree: bool,
) -> ObjectAction {
    match selected {
        Some(v) if !v.is_delete_marker => {
            let same = current.is_some_and(|c| {
                (in_place && c.version_id.as_deref() == Some(v.version_id.as_str()))
                    || (c.etag.is_some() && c.etag == v.etag && c.size == v.size)
            });
            if same {
                ObjectAction::Unchanged
            } else if let Some(class) = v.storage_class.as_deref().filter(|c| is_archived(Some(c)))
            {
                ObjectAction::Archived {
                    version_id: v.version_id.clone(),
                    storage_class: class.to_owned(),
                }
            } else {
                ObjectAction::Copy {
                    version_id: v.version_id.clone(),
                    size: v.size,
                }
            }
        }
        // Deleted at the time.
        Some(_) => {
            if current.is_some() {
                ObjectAction::Delete
            } else {
                ObjectAction::Unchanged
            }
        }
        None if !tree => ObjectAction::NoVersion,
        None if current.is_some() => ObjectAction::Delete,
        None => ObjectAction::Unchanged,
    }
}

/// The current object of a key from its own listing (in-place restores need no other request).
pub fn current_of(listed: &[ListedVersion]) -> Option<Current> {
    listed
        .iter()
        .find(|l| l.is_latest && !l.is_delete_marker)
        .map(|l| Current {
            version_id: Some(l.version_id.clone()),
            etag: l.etag.clone(),
            size: l.size,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_the_kms_key_and_the_storage_class() {
        use aws_sdk_s3::types::{ServerSideEncryption as Sse, StorageClass};
        let kept = KeptOnCopy::of(
            Some(&Sse::AwsKms),
            Some("arn:aws:kms:us-east-1:1:key/k"),
            Some(&StorageClass::StandardIa),
        );
        assert_eq!(kept.encryption, Some(Sse::AwsKms));
        assert_eq!(
            kept.kms_key_id.as_deref(),
            Some("arn:aws:kms:us-east-1:1:key/k")
        );
        assert_eq!(kept.storage_class, Some(StorageClass::StandardIa));
        // SSE-S3 and STANDARD are what a copy gets anyway; Express One Zone cannot be asked.
        assert_eq!(
            KeptOnCopy::of(Some(&Sse::Aes256), None, Some(&StorageClass::Standard)),
            KeptOnCopy::default()
        );
        for class in [
            StorageClass::ExpressOnezone,
            StorageClass::DeepArchive,
            StorageClass::Glacier,
        ] {
            assert_eq!(
                KeptOnCopy::of(None, None, Some(&class)),
                KeptOnCopy::default()
            );
        }
    }

    #[test]
    fn a_finished_restore_request_makes_an_archived_version_readable() {
        assert!(is_archived(Some("DEEP_ARCHIVE")) && !is_archived(Some("STANDARD")));
        assert!(restored_copy_ready(Some(
            "ongoing-request=\"false\", expiry-date=\"Wed, 02 Dec 2026 16:54:10 GMT\""
        )));
        assert!(!restored_copy_ready(Some("ongoing-request=\"true\"")));
        assert!(!restored_copy_ready(None));
    }

    fn version(id: &str, etag: &str, latest: bool) -> ListedVersion {
        ListedVersion {
            version_id: id.to_owned(),
            etag: Some(etag.to_owned()),
            size: 3,
            is_latest: latest,
            ..ListedVersion::default()
        }
    }

    fn marker(id: &str) -> ListedVersion {
        ListedVersion {
            version_id: id.to_owned(),
            is_delete_marker: true,
            ..ListedVersion::default()
        }
    }

    #[test]
    fn fewest_operations() {
        let v1 = version("v1", "e1", false);
        let v2_latest = version("v2", "e2", true);
        let same_content = version("v3", "e2", false);
        let now = current_of(&[v2_latest.clone(), v1.clone()]);
        let deleted = marker("m");
        let glacier = ListedVersion {
            storage_class: Some("DEEP_ARCHIVE".to_owned()),
            ..v1.clone()
        };
        // (what, selected, current, in place, tree, expected)
        let cases: Vec<(
            &str,
            Option<&ListedVersion>,
            Option<Current>,
            bool,
            bool,
            &str,
        )> = vec![
            (
                "already that version",
                Some(&v2_latest),
                now.clone(),
                true,
                false,
                "unchanged",
            ),
            (
                "an older version: copy it back",
                Some(&v1),
                now.clone(),
                true,
                false,
                "copy",
            ),
            (
                "same bytes under another version",
                Some(&same_content),
                now.clone(),
                true,
                false,
                "unchanged",
            ),
            (
                "deleted then, present now",
                Some(&deleted),
                now.clone(),
                true,
                false,
                "delete",
            ),
            (
                "deleted then, deleted now",
                Some(&deleted),
                None,
                true,
                false,
                "unchanged",
            ),
            (
                "not created yet, in a tree",
                None,
                now.clone(),
                true,
                true,
                "delete",
            ),
            (
                "not created yet, a single key",
                None,
                now.clone(),
                true,
                false,
                "no version",
            ),
            (
                "not created yet, absent now",
                None,
                None,
                true,
                true,
                "unchanged",
            ),
            (
                "archived",
                Some(&glacier),
                now.clone(),
                true,
                false,
                "needs restore request",
            ),
            (
                "another bucket, nothing there",
                Some(&v1),
                None,
                false,
                false,
                "copy",
            ),
            (
                "another bucket, same version id but other bytes",
                Some(&v1),
                Some(Current {
                    version_id: Some("v1".to_owned()),
                    etag: Some("x".to_owned()),
                    size: 3,
                }),
                false,
                false,
                "copy",
            ),
        ];
        for (what, selected, current, in_place, tree, expected) in cases {
            assert_eq!(
                plan(selected, current.as_ref(), in_place, tree).as_str(),
                expected,
                "{what}"
            );
        }
    }
}
