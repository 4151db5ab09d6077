//! `cargo xtask seed-all`: back up the parameters that already exist (dry run unless
//! `--do-it`), through the same `ssmbak_core` code as the Lambda.
//!
//! Fixed from the original's `ssmbak-all`: the region of `-r` is used for reading and
//! writing alike; root-level names get their `/`; `-p /app` means the path `/app`, never
//! `/application`; each parameter is recorded at its own LastModifiedDate, not at "now"; and
//! what is already backed up is not written again.

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ssmbak_cli::common::bucket;
use ssmbak_core::backup::{Backup, Outcome};
use ssmbak_core::bounded::map_in_order;
use ssmbak_core::client;
use ssmbak_core::seed;

use crate::aws::Aws;

#[derive(clap::Args)]
pub(crate) struct SeedArgs {
    /// Only parameters under this path (repeatable).
    #[arg(short = 'p', long = "prefix")]
    pub(crate) prefixes: Vec<String>,
    /// The backup bucket (default: --stack's, else SSMBAK_BUCKET, else the stack's discovery
    /// parameter).
    #[arg(short, long)]
    pub(crate) bucket: Option<String>,
    /// Read the bucket from this stack's outputs.
    #[arg(long, conflicts_with = "bucket")]
    pub(crate) stack: Option<String>,
    /// AWS region (default: the standard chain).
    #[arg(short, long)]
    pub(crate) region: Option<String>,
    /// The account the bucket must belong to (default: your own); S3 refuses every request
    /// to a bucket of another, wherever its name came from.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub(crate) bucket_owner: Option<String>,
    /// Write the backups (without it, only list what would be backed up).
    #[arg(long)]
    pub(crate) do_it: bool,
}

/// As the least-privilege check knows it.
const COMPONENT: &str = "seed-all";

/// Parameters backed up at once: SSM's read rate is the limit.
const CONCURRENCY: usize = 8;

/// What a seed run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SeedSummary {
    pub(crate) to_back_up: Vec<String>,
    pub(crate) backed_up: usize,
    pub(crate) already: usize,
    pub(crate) failed: Vec<String>,
}

pub(crate) fn run(args: &SeedArgs) -> anyhow::Result<()> {
    let summary = crate::aws::block_on(seed_all(args))??;
    if !summary.failed.is_empty() {
        bail!(
            "{} parameter(s) could not be backed up",
            summary.failed.len()
        );
    }
    Ok(())
}

pub(crate) async fn seed_all(args: &SeedArgs) -> anyhow::Result<SeedSummary> {
    let aws = Aws::connect(args.region.clone(), COMPONENT).await?;
    let stack = args.stack.as_deref().map(|s| (&aws.cfn, s));
    let bucket = bucket::resolve(args.bucket.clone(), stack, &aws.ssm, true).await?;
    let owner = bucket::owner(&aws.config, args.bucket_owner.as_deref(), COMPONENT).await?;
    let s3 = client::owned_by(&aws.s3, &owner);
    bucket::check_versioned(&s3, &bucket, Some(&owner)).await?;
    let backup = Backup::new(aws.ssm.clone(), s3, bucket.clone());
    let params = seed::list(backup.parameters(), &args.prefixes).await?;
    let bar =
        ProgressBar::with_draw_target(Some(params.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results: Vec<(String, Result<Option<Outcome>, String>)> =
        map_in_order(&params, CONCURRENCY, |p| {
            let (backup, bar) = (&backup, &bar);
            async move {
                let result = seed::ensure(backup, p, !args.do_it)
                    .await
                    .map_err(|e| e.to_string());
                bar.inc(1);
                (p.name.clone(), result)
            }
        })
        .await;
    bar.finish_and_clear();

    let mut summary = SeedSummary::default();
    for (name, result) in results {
        match result {
            Ok(None) | Ok(Some(Outcome::Duplicate { .. })) => summary.already += 1,
            Ok(Some(Outcome::Stored { version })) => {
                println!("{name} (version {version})");
                summary.to_back_up.push(name);
                summary.backed_up += usize::from(args.do_it);
            }
            Ok(Some(other)) => println!("{name}: {}", other.as_str()),
            Err(e) => {
                eprintln!("failed: {name}: {e}");
                summary.failed.push(name);
            }
        }
    }
    println!();
    if args.do_it {
        println!(
            "Backed up {} into {bucket}; {} already backed up; {} failed.",
            summary.backed_up,
            summary.already,
            summary.failed.len()
        );
    } else {
        println!(
            "That is what would be backed up into {bucket} ({} already are). --do-it to do it.",
            summary.already
        );
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn seeds_what_is_missing_once() {
        let endpoint = ssmbak_tests::emulator::required_endpoint();
        crate::aws::block_on(async {
            let aws = ssmbak_tests::emulator::Clients::new(&endpoint).await;
            let id = ssmbak_tests::emulator::unique("seed");
            let bucket = id.to_ascii_lowercase();
            ssmbak_tests::emulator::versioned_bucket(&aws.s3, &bucket).await;
            let path = format!("/{id}");
            let names = [
                format!("{path}/a"),
                format!("{path}/c"),
                format!("{path}/deep/b"),
            ];
            for n in names.iter().chain([&format!("{path}x/outside")]) {
                aws.ssm
                    .put_parameter()
                    .name(n)
                    .value(format!("value of {n}"))
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .send()
                    .await
                    .expect("put");
            }
            let args = |do_it| SeedArgs {
                prefixes: vec![path.clone()],
                bucket: Some(bucket.clone()),
                stack: None,
                region: None,
                bucket_owner: None,
                do_it,
            };
            let dry = seed_all(&args(false)).await.expect("dry run");
            assert_eq!(
                dry.to_back_up,
                names.to_vec(),
                "the path, all depths, never {path}x"
            );
            assert_eq!(dry.backed_up, 0);
            let listed = aws
                .s3
                .list_object_versions()
                .bucket(&bucket)
                .send()
                .await
                .expect("list");
            assert!(listed.versions().is_empty(), "a dry run writes nothing");

            let done = seed_all(&args(true)).await.expect("seed");
            assert_eq!((done.backed_up, done.already, done.failed.len()), (3, 0, 0));
            let object = aws
                .s3
                .get_object()
                .bucket(&bucket)
                .key(&names[2])
                .send()
                .await
                .expect("backed up");
            let meta = object.metadata().cloned().unwrap_or_default();
            assert_eq!(meta.get("ssmbak-version").map(String::as_str), Some("1"));
            let body = object.body.collect().await.expect("body").into_bytes();
            assert_eq!(&body[..], format!("value of {}", names[2]).as_bytes());

            let again = seed_all(&args(true)).await.expect("re-run");
            assert_eq!(
                (again.backed_up, again.already),
                (0, 3),
                "a re-run writes nothing new"
            );

            // A delete marker put over a backup by hand (or by the original's Lambda): the
            // backup says deleted while SSM holds the parameter, so it is backed up again; the
            // writer looks behind the marker (ListObjectVersions, then the tags of the version
            // there) to tell it from one of our deletes.
            aws.s3
                .delete_object()
                .bucket(&bucket)
                .key(&names[0])
                .send()
                .await
                .expect("a delete marker");
            let behind = seed_all(&args(true)).await.expect("after a marker");
            assert_eq!((behind.backed_up, behind.already), (1, 2));
            let last = seed_all(&args(true)).await.expect("re-run");
            assert_eq!((last.backed_up, last.already), (0, 3));
        })
        .expect("runtime");
    }
}
