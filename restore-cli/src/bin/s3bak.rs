//! `s3bak`: point-in-time preview, download and restore for any versioned S3 bucket.

use ssmbak_cli::common::exit;
use ssmbak_cli::s3bak::{run, Cli};

fn main() {
    let cli = exit::parse_args::<Cli>();
    exit::run_to_exit(run(cli));
}
