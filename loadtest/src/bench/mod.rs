//! Benchmarks. Each starts what it needs (a throwaway database, Redis prefix and queues, the
//! services in-process), prints its figures, and cleans up.

mod commandstats;
mod drain;
mod gateway;
mod processes;
mod reserve;

use clap::Subcommand;

/// The benchmarks.
#[derive(Subcommand)]
pub enum Bench {
    /// Order workers draining N order messages into PostgreSQL, against plain batched INSERTs.
    Drain(drain::Args),
    /// `stock.reserve` over our RPC, against redis-benchmark running the same script.
    Reserve(reserve::Args),
    /// The gateway (sale, sold out) against a bare actix-web handler.
    Gateway(gateway::Args),
    /// The bare handler `bench gateway` compares against, in a process of its own.
    #[command(hide = true)]
    Bare(gateway::BareArgs),
}

impl Bench {
    /// Runs the chosen benchmark.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Bench::Drain(args) => drain::run(args).await,
            Bench::Reserve(args) => reserve::run(args).await,
            Bench::Gateway(args) => gateway::run(args).await,
            Bench::Bare(args) => gateway::bare(args).await,
        }
    }
}
