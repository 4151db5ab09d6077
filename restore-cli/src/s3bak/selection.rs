//! What a command works on: plain values, taken from the arguments once (`cli.rs`), so no
//! file below the command line depends on clap.

use crate::common::checktime;
use crate::common::output::Format;

pub(crate) struct Selection {
    /// An object key, or a prefix.
    pub(crate) key: String,
    /// The point in time, epoch seconds.
    pub(crate) checktime: i64,
    pub(crate) bucket: String,
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    /// KEY is a prefix even without a trailing `/`.
    pub(crate) recursive: bool,
    /// Versions are placed by their ssmbakTime tag (event time), not LastModified.
    pub(crate) ssmbak_time: bool,
    /// Keys worked on at once.
    pub(crate) concurrency: usize,
    pub(crate) output: Format,
    /// The bucket is requester-pays.
    pub(crate) request_payer: bool,
    /// The account the bucket must belong to.
    pub(crate) bucket_owner: Option<String>,
}

impl Selection {
    pub(crate) fn is_tree(&self) -> bool {
        self.recursive || self.key.ends_with('/') || self.key.is_empty()
    }

    /// A single key with no version at or before the time: what every command says then.
    pub(crate) fn no_version(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "no version of {} at or before {}",
            self.key,
            checktime::format(self.checktime)
        )
    }
}

#[cfg(test)]
impl Selection {
    /// `key` in bucket `source` at the epoch, as tests name it.
    pub(crate) fn for_test(key: &str) -> Self {
        Selection {
            key: key.to_owned(),
            checktime: 0,
            bucket: "source".to_owned(),
            region: None,
            profile: None,
            endpoint_url: None,
            recursive: false,
            ssmbak_time: false,
            concurrency: 8,
            output: Format::Table,
            request_payer: false,
            bucket_owner: None,
        }
    }
}
