//! `bootstrap`: the backup Lambda's entry point (runtime `provided.al2023`).
//!
//! Two kinds of invocation: an SQS batch of change events (the event source mapping), and
//! `{"ssmbak": "reconcile"}` from the schedule.

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use ssmbak_core::backup::Backup;
use ssmbak_core::build_info;
use ssmbak_core::client::{self, ClientOptions, ExpectedOwner};
use ssmbak_lambda::config::Config;
use ssmbak_lambda::handler::handle_batch;
use ssmbak_lambda::reconcile::reconcile;
use tracing_subscriber::EnvFilter;

/// A reconcile starts no new work this close to the invocation's deadline.
const RECONCILE_MARGIN: Duration = Duration::from_secs(10);
/// A batch gives up what is still running this close to the deadline, to answer in time.
const BATCH_MARGIN: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_vars(|k| std::env::var(k).ok());
    let level = config.as_ref().map_or("info", |c| c.log_level.as_str());
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_target(false)
        .with_env_filter(EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    // Which build runs, traceable to a release and a commit.
    tracing::info!(
        version = build_info::VERSION,
        commit = build_info::COMMIT,
        target = build_info::TARGET,
        built = build_info::BUILD_DATE,
        "cold start"
    );

    let config = config.inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = client::load(&ClientOptions::default())
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    // The bucket must be this account's: no environment variable names the account, the
    // function's own ARN does (every invocation carries it).
    let owner = ExpectedOwner::to_be_learned();
    let backup = Backup::new(
        client::ssm(&sdk, "lambda"),
        client::owned_by(&client::s3(&sdk, "lambda"), &owner),
        config.bucket.clone(),
    )
    .with_ssm_rate(config.ssm_reads_per_invocation());
    let (backup, config, owner) = (&backup, &config, &owner);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let (payload, context) = (event.payload, event.context);
            owner
                .learn_from_arn(&context.invoked_function_arn)
                .inspect_err(|e| tracing::error!(error = %e, "cannot tell the bucket's owner"))?;
            let left = context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            if payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(payload)?;
                let stop_by = tokio::time::Instant::now() + left.saturating_sub(BATCH_MARGIN);
                let response = handle_batch(backup, batch, stop_by).await?;
                return Ok::<_, Error>(serde_json::to_value(response)?);
            }
            if payload.get("ssmbak").and_then(|v| v.as_str()) == Some("reconcile") {
                let left = left.saturating_sub(RECONCILE_MARGIN);
                let summary =
                    reconcile(backup, &config.reconcile_paths, Some(Instant::now() + left)).await?;
                return Ok(serde_json::to_value(summary)?);
            }
            tracing::error!(
                outcome = "failed",
                "not an SQS batch nor a reconcile request"
            );
            Err("unrecognised event: expected an SQS batch or {\"ssmbak\": \"reconcile\"}".into())
        },
    ))
    .await
}
