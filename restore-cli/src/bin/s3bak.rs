//! `s3bak`: point-in-time preview, download and restore for any versioned bucket (in progress).

fn main() {
    eprintln!("s3bak: not yet available in this build");
    std::process::exit(ssmbak_cli::exit::ExitCode::Failure.code());
}
