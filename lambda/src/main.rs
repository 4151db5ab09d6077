//! `bootstrap`: the backup Lambda's entry point (runtime `provided.al2023`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use ssmbak_core::backup::Backup;
use ssmbak_core::client::{self, ClientOptions};
use ssmbak_lambda::config::Config;
use ssmbak_lambda::handler::handle_batch;
use tracing_subscriber::EnvFilter;

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

    let config = config.inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = client::load(&ClientOptions::default())
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let backup = Backup::new(client::ssm(&sdk), client::s3(&sdk), config.bucket);
    let backup = &backup;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response: SqsBatchResponse = handle_batch(backup, event.payload).await?;
        Ok::<_, Error>(response)
    }))
    .await
}
