//! Connecting to the bucket (in its own region, versioned) and selecting each key's version in force at the time.

use super::selection::Selection;
use crate::common::bucket;
use crate::common::output::aws_error;
use crate::s3bak::objects::{self};
use ssmbak_core::aws_error::AwsError;
use ssmbak_core::bounded::map_in_order;
use ssmbak_core::client::{self, ClientOptions, ExpectedOwner, WithoutRetryQuota};
use ssmbak_core::index::Index;
use ssmbak_core::reader::{self, BucketReader, ListedVersion, Listing};

pub(crate) const COMPONENT: &str = "s3bak";

/// One key in scope and the entry of its listing in force at the time.
pub(crate) struct Selected {
    pub(crate) key: String,
    pub(crate) listed: Vec<ListedVersion>,
    pub(crate) index: Option<usize>,
}

impl Selected {
    pub(crate) fn entry(&self) -> Option<&ListedVersion> {
        self.index.and_then(|i| self.listed.get(i))
    }
}

pub(crate) struct Session {
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) reader: BucketReader,
    /// The account every bucket called must belong to, when one is expected.
    pub(crate) owner: Option<ExpectedOwner>,
}

pub(crate) async fn connect(selection: &Selection) -> anyhow::Result<Session> {
    let sdk = client::load(&ClientOptions {
        region: selection.region.clone(),
        profile: selection.profile.clone(),
        endpoint_url: selection.endpoint_url.clone(),
        max_attempts: 8,
        adaptive_retry: true,
        ..ClientOptions::default()
    })
    .await?;
    // An ssmbak bucket is checked to be the caller's own, like ssmbak checks it; any other
    // is the one named with -b, of whoever owns it (--bucket-owner to check).
    let owner = match (&selection.bucket_owner, selection.ssmbak_time) {
        (None, false) => None,
        (given, _) => Some(bucket::owner(&sdk, given.as_deref(), COMPONENT).await?),
    };
    let s3 = client::s3(&sdk, COMPONENT);
    let s3 = match &owner {
        Some(owner) => client::owned_by(&s3, owner),
        None => s3,
    };
    let s3 = bucket::client_in_region_of(s3, &selection.bucket)
        .await?
        .without_retry_quota();
    let s3 = if selection.request_payer {
        client::paying_requester(&s3)
    } else {
        s3
    };
    bucket::check_versioned(&s3, &selection.bucket, owner.as_ref())
        .await
        .map_err(|e| {
            let code = e.downcast_ref::<AwsError>().and_then(AwsError::code);
            match code == Some("AccessDenied") && !selection.request_payer {
                true => anyhow::anyhow!("{e:#} (a requester-pays bucket needs --request-payer)"),
                false => e,
            }
        })?;
    Ok(Session {
        reader: BucketReader::new(s3.clone(), selection.bucket.clone()),
        s3,
        owner,
    })
}

/// Every key in scope with its selected entry, sorted by key.
pub(crate) async fn select(
    session: &Session,
    selection: &Selection,
) -> anyhow::Result<Vec<Selected>> {
    // With --ssmbak-time, the bucket's index spares reading the versions it places (see
    // ssmbak_core::index); nothing is asked otherwise.
    let placed = async {
        match selection.ssmbak_time {
            true => session.reader.index(&selection.key).await,
            false => Ok(Index::none()),
        }
    };
    let (listing, placed): (Listing, Index) =
        tokio::try_join!(session.reader.list(&selection.key), placed)?;
    let placed = &placed;
    let tree = selection.is_tree();
    let keys: Vec<(String, Vec<ListedVersion>)> = listing
        .into_iter()
        .filter(|(k, _)| tree || *k == selection.key)
        .collect();
    let selected: Vec<anyhow::Result<Selected>> =
        map_in_order(keys, selection.concurrency, |(key, listed)| async move {
            let index = if selection.ssmbak_time {
                session
                    .reader
                    .select_by_event_time(&key, &listed, selection.checktime, placed)
                    .await?
            } else {
                reader::by_last_modified(&listed, selection.checktime)
            };
            Ok(Selected { key, listed, index })
        })
        .await;
    selected.into_iter().collect()
}

/// One line for a failed request on an object; a refusal that every key would get alike
/// (a version encrypted with a customer-provided key) is [`objects::BucketWide`].
pub(crate) fn s3_error<E>(
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
