//! Project automation, in the cargo-xtask style: `cargo xtask <command>`.
//!
//! One file per command. Everything the project needs (the emulator included) is installed
//! by these commands under `target/`, so a fresh machine needs only cargo and python3.

mod apply;
mod artifacts;
mod aws;
mod bench;
mod build_lambda;
mod checkov;
mod ci_role;
mod container;
mod data;
mod demo;
mod deploy;
mod dist;
mod elf;
mod formula;
mod iam;
mod installer;
mod least_privilege;
mod lint;
mod man;
mod moto;
mod parliament;
#[cfg(test)]
mod policy_sim;
mod registry;
mod seed_all;
mod sim;
mod stack;
mod template;
mod test;
mod tidy;
mod util;
mod validate;
mod values;
mod workflow;
mod zig;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ssmbak project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// A named AWS profile (credentials and region) for the commands that call AWS
    /// (default: AWS_PROFILE, else the standard chain).
    #[arg(long, global = true, value_name = "PROFILE")]
    profile: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Cross-build the Lambda for provided.al2023 (glibc 2.34) into target/lambda/bootstrap.zip
    /// (x86_64) or bootstrap-arm64.zip, byte-for-byte reproducible, whatever the host.
    BuildLambda(build_lambda::BuildArgs),
    /// Build and check the Linux release archives of ssmbak and s3bak (x86_64, aarch64; glibc
    /// 2.17) into target/dist, with their SHA-256 sums.
    Dist(dist::DistArgs),
    /// Write the Homebrew formula of a release from its SHA256SUMS (default:
    /// target/dist/SHA256SUMS into target/dist/ssmbak.rb); every platform's archive is needed.
    Formula(formula::FormulaArgs),
    /// Run every test: build the Lambda, start the moto emulator on loopback, cargo test, stop it.
    Test(test::TestArgs),
    /// Run a moto server on loopback in the foreground, for manual work against the emulator.
    Moto,
    /// Show the whole pipeline working against the local emulator.
    Demo,
    /// Check cfn/template.yml and cfn/data.yml against every cfn-guard rule in policies/.
    Validate,
    /// Run cfn-lint on the template and parliament on the IAM policies (pinned, under target/).
    Lint,
    /// Build, validate, upload and create or update the stack; follow it; print its outputs.
    Deploy(deploy::DeployArgs),
    /// The same as deploy (a stack that exists is updated).
    Update(deploy::DeployArgs),
    /// Print the stack's outputs.
    Outputs(stack::StackArgs),
    /// Print the stack's backup bucket.
    Bucketname(stack::StackArgs),
    /// Print the stack's Lambda function.
    Lambdaname(stack::StackArgs),
    /// Print the stack's status.
    Status(stack::StackArgs),
    /// Delete the stack (the backup bucket is retained).
    Delete(stack::StackArgs),
    /// Create or update the data stack (bucket, its policy, key, function role) as an
    /// administrator (dry run unless --do-it).
    Data(data::DataArgs),
    /// Apply policies/iam/*.json as the account's managed policies and create the
    /// CloudFormation service role (dry run unless --do-it).
    Iam(iam::IamArgs),
    /// Set up GitHub Actions deploys: iam, the artifact bucket, GitHub's OIDC provider and a
    /// role only that repository's branch can assume (dry run unless --do-it).
    CiRole(ci_role::CiRoleArgs),
    /// Back up the parameters that exist now (dry run unless --do-it).
    SeedAll(seed_all::SeedArgs),
    /// Run the delivery-order simulation over many seeds (see ssmbak_core::sim).
    Sim(sim::SimArgs),
    /// Benchmark ours against the original ssmbak 0.5.2 on the emulator (see BENCHMARKS.md).
    Bench,
    /// Write man pages for ssmbak, s3bak and each of their commands (default: target/man).
    Man(man::ManArgs),
}

fn main() {
    // One line per error (with its causes), never a backtrace: CI pipelines read this.
    if let Err(e) = run(Cli::parse()) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let root = util::project_root();
    aws::use_profile(cli.profile);
    match cli.command {
        Command::BuildLambda(args) => build_lambda::run(&root, args.arch).map(|_| ()),
        Command::Test(args) => test::run(&root, &args),
        Command::Moto => moto::run_foreground(&root),
        Command::Demo => demo::run(&root),
        Command::Validate => validate::run(&root),
        Command::Lint => lint::check(&root),
        Command::Deploy(args) | Command::Update(args) => deploy::run(&root, &args),
        Command::Outputs(args) => stack::run(stack::Query::Outputs, &args),
        Command::Bucketname(args) => stack::run(stack::Query::Bucketname, &args),
        Command::Lambdaname(args) => stack::run(stack::Query::Lambdaname, &args),
        Command::Status(args) => stack::run(stack::Query::Status, &args),
        Command::Delete(args) => stack::run(stack::Query::Delete, &args),
        Command::Data(args) => data::run(&root, &args),
        Command::Iam(args) => iam::run(&root, &args),
        Command::CiRole(args) => ci_role::run(&root, &args),
        Command::SeedAll(args) => seed_all::run(&args),
        Command::Sim(args) => sim::run(&args),
        Command::Dist(args) => dist::run(&root, &args),
        Command::Formula(args) => formula::run(&root, &args),
        Command::Bench => bench::run(&root),
        Command::Man(args) => man::run(&root, &args),
    }
}
