//! Where a restore writes and how it copies: what every request of one restore works with.

use crate::s3bak::selection::Selection;
use crate::s3bak::session::Session;

pub(crate) struct Destination {
    pub(crate) bucket: String,
    pub(crate) prefix: Option<String>,
}

pub(crate) struct CopyOptions {
    pub(crate) no_tags: bool,
    pub(crate) multipart_threshold: i64,
}

impl Destination {
    /// The destination key of `key` (in scope `selection`).
    pub(crate) fn key(&self, selection: &Selection, key: &str) -> String {
        match &self.prefix {
            None => key.to_owned(),
            Some(p) if selection.is_tree() => {
                format!(
                    "{p}{}",
                    key.strip_prefix(selection.key.as_str()).unwrap_or(key)
                )
            }
            Some(p) => format!("{p}{}", key.rsplit('/').next().unwrap_or(key)),
        }
    }

    /// How lines name where `key` (of `source_bucket`) goes: the key itself when it is
    /// restored in place, else the destination's URL.
    pub(crate) fn written_to(&self, source_bucket: &str, key: &str, dest_key: &str) -> String {
        if key == dest_key && self.bucket == source_bucket {
            key.to_owned()
        } else {
            format!("s3://{}/{dest_key}", self.bucket)
        }
    }
}

/// What every request of one restore works with: where from, where to, and how it copies.
pub(crate) struct RestoreContext<'a> {
    pub(crate) session: &'a Session,
    pub(crate) selection: &'a Selection,
    pub(crate) dest: &'a Destination,
    pub(crate) options: &'a CopyOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_a_key_restored_in_place_by_itself_and_any_other_by_its_url() {
        let in_place = Destination {
            bucket: "source".to_owned(),
            prefix: None,
        };
        assert_eq!(in_place.written_to("source", "d/a", "d/a"), "d/a");
        let other_bucket = Destination {
            bucket: "other".to_owned(),
            prefix: None,
        };
        assert_eq!(
            other_bucket.written_to("source", "d/a", "d/a"),
            "s3://other/d/a"
        );
        let other_prefix = Destination {
            bucket: "source".to_owned(),
            prefix: Some("e/".to_owned()),
        };
        let tree = Selection::for_test("d/");
        let dest_key = other_prefix.key(&tree, "d/x/a");
        assert_eq!(dest_key, "e/x/a");
        assert_eq!(
            other_prefix.written_to("source", "d/x/a", &dest_key),
            "s3://source/e/x/a"
        );
    }
}
