//! `ssmbak`: preview and restore SSM parameters as they were at a point in time.

use ssmbak_cli::common::exit;
use ssmbak_cli::ssmbak::{run, Cli};

fn main() {
    let cli = exit::parse_args::<Cli>();
    exit::run_to_exit(run(cli));
}
