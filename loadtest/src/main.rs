//! `loadtest`: benchmarks and checks for Seckill.
//!
//! ```text
//! cargo run --release -p loadtest -- audit --gateway http://127.0.0.1:8080 --wait-drained 60
//! cargo run --release -p loadtest -- bench drain --orders 50000
//! cargo run --release -p loadtest -- bench reserve --requests 200000 --concurrency 64
//! cargo run --release -p loadtest -- buyers --count 100000 --out buyers.json
//! cargo run --release -p loadtest -- drill all
//! ```

mod audit;
mod bench;
mod buyers;
mod drill;
mod scenario;

// The parts other crates use too (the dashboard's demo sale, its tests): in the library.
use loadtest::{crowd, http, sandbox};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Seckill load and audit tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Asks a running gateway whether any sale broke an invariant; fails if one did.
    Audit(audit::Args),
    /// Benchmarks (programs that print their figures, not tests).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Creates load-test buyers on a running gateway and writes their tokens for k6 (`-e BUYERS=`).
    Buyers(buyers::Args),
    /// Kills a part of the system mid-sale on private infrastructure and says what buyers lost.
    Drill(drill::Args),
    /// A classic flash-sale problem on the real stack: the naive variant and the fix, measured.
    Scenario(scenario::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A scenario runs the services in this process and overloads some on purpose: their
    // per-request warnings are what the figures count, not news.
    let default_filter = if matches!(cli.command, Command::Scenario(_)) { "error" } else { "info,sqlx=warn" };
    platform::telemetry::init_with_default("loadtest", platform::telemetry::LogFormat::Pretty, default_filter);
    match cli.command {
        Command::Audit(args) => audit::run(args).await,
        Command::Bench(bench) => bench.run().await,
        Command::Buyers(args) => buyers::run(args).await,
        Command::Drill(args) => drill::run(args).await,
        Command::Scenario(args) => scenario::run(args).await,
    }
}
