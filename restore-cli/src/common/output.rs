//! What both tools print the same way: the output format, AWS errors, tables.

use aws_sdk_s3::error::ProvideErrorMetadata;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use ssmbak_core::aws_error::AwsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One line for an AWS error: what we were doing, the service's code and message (an
/// [`AwsError`], for callers that branch on its code).
pub fn aws_error<E>(
    doing: &str,
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    AwsError::doing(doing, e).into()
}

/// A line of a command's report, on the stream it goes to: reports are built by pure
/// functions and printed in one go, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Stdout(String),
    Stderr(String),
}

pub fn print_lines(lines: &[Line]) {
    for line in lines {
        match line {
            Line::Stdout(text) => println!("{text}"),
            Line::Stderr(text) => eprintln!("{text}"),
        }
    }
}

pub(crate) fn new_table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    table
}
