//! Sending SDK requests at the pace the service allows ([`AdaptiveRate`]): every attempt waits
//! for its slot, a refusal for the rate is sent again at the pace (not by the SDK beside it),
//! and every answer tells the pace what the service admitted.

use std::future::Future;

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::{ErrorKind, RetryConfig};

use crate::rate::AdaptiveRate;

/// How many times one request is sent while the service refuses it for its rate, in all. Each
/// attempt waits for the pace, behind the requests already waiting, so this is as many turns
/// as the SDK's standard retries would give it (`RetryConfig::standard` with 10 attempts).
pub const THROTTLED_ATTEMPTS: u32 = 10;

/// The first retry's back-off, doubling with each attempt up to 16 times it: 10 attempts span
/// at least 9 s.
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// What an answer says of the service's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It passed the limit (whatever the service then made of it, an error included).
    Admitted,
    /// Refused for the rate.
    Throttled,
    /// No answer came (a timeout, a connection lost): nothing learnt.
    Unanswered,
}

/// An answer, as the pace sees it.
pub trait Answer {
    fn verdict(&self) -> Verdict;
}

/// The error codes AWS services answer a request over their rate with.
const THROTTLING_CODES: [&str; 3] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
];

impl<T, E: ProvideErrorMetadata, R> Answer for Result<T, SdkError<E, R>> {
    fn verdict(&self) -> Verdict {
        match self {
            Ok(_) => Verdict::Admitted,
            Err(e) if e.code().is_some_and(|c| THROTTLING_CODES.contains(&c)) => Verdict::Throttled,
            Err(SdkError::ServiceError(_)) => Verdict::Admitted,
            Err(_) => Verdict::Unanswered,
        }
    }
}

/// Sends `call` at `pace`'s rate: again, at the pace, while the service refuses it for its
/// rate, at most [`THROTTLED_ATTEMPTS`] times in all. The client `call` uses must leave
/// refusals for the rate to this loop ([`NoThrottlingRetries`]); the SDK still retries other
/// transient errors itself.
pub async fn send<A: Answer, F: Future<Output = A>>(
    pace: &AdaptiveRate,
    mut call: impl FnMut() -> F,
) -> A {
    let mut attempt = 1;
    loop {
        if attempt > 1 {
            // Each request's own back-off, beside the pace: however fast the pace, a request
            // refused while the service's bucket is empty is not sent again at once.
            let backoff = RETRY_BACKOFF * (1 << (attempt - 2).min(4));
            tokio::time::sleep(backoff).await;
        }
        let ticket = pace.acquire().await;
        let answer = call().await;
        match answer.verdict() {
            Verdict::Throttled => {
                pace.throttled(ticket);
                if attempt < THROTTLED_ATTEMPTS {
                    attempt += 1;
                    continue;
                }
            }
            Verdict::Admitted => pace.admitted(ticket),
            Verdict::Unanswered => {}
        }
        return answer;
    }
}

/// SSM's default ("standard") throughput: 40 transactions a second per account and Region,
/// shared by `GetParameter`, `GetParameters` and `GetParametersByPath`, and the setting
/// `PutParameter` falls under too ("Parameter Store throughput", SSM User Guide; PutParameter
/// API reference). Where a pace starts.
pub const SSM_DEFAULT_TPS: f64 = 40.0;

/// An SSM client whose calls go at a pace of their own ([`send`]), learnt from SSM's answers.
pub struct PacedSsm {
    client: aws_sdk_ssm::Client,
    pace: AdaptiveRate,
}

impl PacedSsm {
    /// `ssm`, paced from SSM's default throughput. The SDK retries what it retries (10
    /// attempts in standard mode; its adaptive mode would pace a second time) except refusals
    /// for the rate, which [`send`] sends again at the pace.
    pub fn new(ssm: &aws_sdk_ssm::Client) -> Self {
        let config = ssm
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(10))
            .retry_classifier(NoThrottlingRetries)
            .build();
        PacedSsm {
            client: aws_sdk_ssm::Client::from_conf(config),
            pace: AdaptiveRate::starting_at(SSM_DEFAULT_TPS, 1.0),
        }
    }

    /// Sends `call` when its turn comes, again while SSM refuses it for the rate (at most
    /// [`THROTTLED_ATTEMPTS`] times).
    pub async fn send<A: Answer, F: Future<Output = A>>(
        &self,
        call: impl Fn(aws_sdk_ssm::Client) -> F,
    ) -> A {
        // A client is a handle: cloning it is cheap.
        send(&self.pace, || call(self.client.clone())).await
    }
}

/// A retry classifier that forbids the SDK's own retries of a refusal for the rate: [`send`]
/// sends it again at the pace. A retry the SDK sent after its back-off would go beside the
/// pace, and with many requests in flight those retries alone can keep the service over its
/// limit. It runs after the SDK's classifiers and only overrides their throttling verdict.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoThrottlingRetries;

impl ClassifyRetry for NoThrottlingRetries {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    fn classify_retry_v2(&self, _ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        match previous {
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: ErrorKind::ThrottlingError,
                ..
            }) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "ssmbak-no-throttling-retries"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests;
