//! What each selected key needs to be as it was: a copy of its version, a delete marker, or
//! nothing, read from the destination and, when the bytes match, from both versions'
//! descriptions.

use super::context::RestoreContext;
use super::describe::described;
use crate::s3bak::download::readable;
use crate::s3bak::objects::{self, Current, ObjectAction};
use crate::s3bak::selection::Selection;
use crate::s3bak::session::{s3_error, Selected, Session};

/// One key of the plan: what brings it back, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedObject {
    pub(crate) key: String,
    pub(crate) dest_key: String,
    /// How lines name the destination ([`Destination::written_to`]).
    pub(crate) written_to: String,
    pub(crate) action: ObjectAction,
}

/// The destination's current object, when it is not the source key itself.
pub(crate) async fn current_elsewhere(
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

/// What each selected key needs, read from the destination and, when the bytes match, from
/// both versions' metadata.
pub(crate) async fn plan(
    ctx: &RestoreContext<'_>,
    selected: &[Selected],
) -> anyhow::Result<Vec<PlannedObject>> {
    let RestoreContext {
        session,
        selection,
        dest,
        options,
    } = *ctx;
    let in_place_bucket = dest.bucket == selection.bucket && dest.prefix.is_none();
    let mut plan = Vec::new();
    for s in selected {
        let dest_key = dest.key(selection, &s.key);
        let current = if in_place_bucket {
            objects::current_of(&s.listed)
        } else {
            current_elsewhere(session, &dest.bucket, &dest_key).await?
        };
        let mut action = objects::plan(
            s.entry(),
            current.as_ref(),
            in_place_bucket,
            selection.is_tree(),
        );
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
                    described(
                        session,
                        &selection.bucket,
                        &s.key,
                        Some(&entry.version_id),
                        options
                    ),
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
        plan.push(PlannedObject {
            written_to: dest.written_to(&selection.bucket, &s.key, &dest_key),
            key: s.key.clone(),
            dest_key,
            action,
        });
    }
    Ok(plan)
}

/// A single key needs a version at or before the time; a tree may have none.
pub(crate) fn check_some_version(
    selection: &Selection,
    plan: &[PlannedObject],
) -> anyhow::Result<()> {
    let single_key_without_version =
        !selection.is_tree() && plan.iter().all(|p| p.action == ObjectAction::NoVersion);
    if single_key_without_version {
        return Err(selection.no_version());
    }
    Ok(())
}

/// Plans as the tests of the plan and of its report write them.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::PlannedObject;
    use crate::s3bak::objects::ObjectAction;

    pub(crate) fn planned(key: &str, action: ObjectAction) -> PlannedObject {
        PlannedObject {
            key: key.to_owned(),
            dest_key: key.to_owned(),
            written_to: format!("s3://elsewhere/{key}"),
            action,
        }
    }

    pub(crate) fn copy() -> ObjectAction {
        ObjectAction::Copy {
            version_id: "v1".to_owned(),
            size: 3,
        }
    }

    pub(crate) fn archived() -> ObjectAction {
        ObjectAction::Archived {
            version_id: "v2".to_owned(),
            storage_class: "GLACIER".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{copy, planned};
    use super::*;

    #[test]
    fn only_a_single_key_needs_a_version() {
        let none = [planned("k", ObjectAction::NoVersion)];
        let error = check_some_version(&Selection::for_test("k"), &none).expect_err("no version");
        assert_eq!(
            error.to_string(),
            "no version of k at or before 1970-01-01T00:00:00Z"
        );
        assert!(check_some_version(&Selection::for_test("d/"), &[]).is_ok());
        assert!(check_some_version(&Selection::for_test("k"), &[planned("k", copy())]).is_ok());
    }
}
