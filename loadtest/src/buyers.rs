//! `buyers`: creates load-test buyers on a running gateway and writes their tokens to a file that
//! `loadtest/seckill.js` loads once, in its init context, into a k6 `SharedArray`
//! (`-e BUYERS=<file>`): every VU reads the same copy, so k6's memory grows with the buyers, not
//! with buyers × VUs as it does when `setup()` hands the tokens out.
//!
//! ```text
//! cargo run --release -p loadtest -- buyers --count 100000 --out /tmp/buyers.json
//! k6 run -e BUYERS=/tmp/buyers.json -e STOCK=1000 loadtest/seckill.js
//! ```

use std::path::PathBuf;

use anyhow::Context;

use crate::audit::AdminLogin;

/// Options of `buyers`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    login: AdminLogin,
    /// Buyers to create (new users every run: nobody has bought before).
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// The file to write: `{"tokens": ["<jwt>", ...]}` (k6 reads a relative `BUYERS` path from
    /// the script's directory: pass it an absolute one).
    #[arg(long, default_value = "buyers.json")]
    out: PathBuf,
}

/// The file's shape, as `seckill.js` reads it.
#[derive(serde::Serialize)]
struct BuyersFile<'a> {
    tokens: &'a [String],
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let gateway = args.login.gateway().await?;
    let tokens = gateway.http().users(args.count).await?;
    anyhow::ensure!(tokens.len() == args.count as usize, "asked for {} buyers, got {}", args.count, tokens.len());
    let json = serde_json::to_vec(&BuyersFile { tokens: &tokens })?;
    std::fs::write(&args.out, json).with_context(|| format!("writing {}", args.out.display()))?;
    println!("buyers={} file={}", tokens.len(), args.out.display());
    Ok(())
}
