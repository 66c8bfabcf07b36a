//! Echo benchmark: our RPC against tarpc, same process layout, same parameters, same run.
//!
//! ```text
//! cargo run --release -p rpc --example echo_bench -- --conns 4 --concurrency 500 --seconds 10 --payload 64 --compare tarpc
//! ```
//!
//! For each system: one echo server and its load share a tokio runtime in this process and talk
//! over loopback TCP. `--conns` connections, `--concurrency` tasks each calling in a loop
//! (task i uses connection i mod conns). After `--warmup` seconds, calls are counted and their
//! latencies recorded for `--seconds`. One line per system, then the ratios.
//!
//! `--auth` adds a run with the production setup of the system's own calls: connections opened
//! with the cluster-key handshake, and every call carrying a 51-byte identity credential.
//! `--tls` adds the same inside mutual TLS (a development CA made for the run).

mod measure;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use serde_bytes::ByteBuf;

use self::measure::{Outcome, Window, measure};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// TCP connections from the client to the server.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Calls in flight at once (one task each).
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Measured seconds per system.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Payload bytes per call (echoed back).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Also run this system in the same run (`tarpc`).
    #[arg(long)]
    compare: Option<String>,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Also run with authenticated connections and a credential on every call.
    #[arg(long)]
    auth: bool,
    /// Also run with authenticated connections inside mutual TLS.
    #[arg(long)]
    tls: bool,
}

/// How our RPC's connections are set up in one run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    Plain,
    Auth,
    Tls,
}

#[rpc::service]
trait Echo {
    async fn echo(&self, payload: ByteBuf) -> ByteBuf;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, payload: ByteBuf) -> ByteBuf {
        payload
    }
}

#[tarpc::service]
trait TarpcEcho {
    async fn echo(payload: ByteBuf) -> ByteBuf;
}

#[derive(Clone)]
struct TarpcEchoImpl;

impl TarpcEcho for TarpcEchoImpl {
    async fn echo(self, _: tarpc::context::Context, payload: ByteBuf) -> ByteBuf {
        payload
    }
}

/// One system's client, as the load tasks see it.
trait Caller: Send + Sync + 'static {
    fn echo(&self, payload: ByteBuf) -> impl std::future::Future<Output = Result<ByteBuf, String>> + Send + '_;
}

impl Caller for EchoClient {
    async fn echo(&self, payload: ByteBuf) -> Result<ByteBuf, String> {
        EchoClient::echo(self, payload).await.map_err(|e| e.to_string())
    }
}

impl Caller for TarpcEchoClient {
    async fn echo(&self, payload: ByteBuf) -> Result<ByteBuf, String> {
        TarpcEchoClient::echo(self, tarpc::context::current(), payload).await.map_err(|e| e.to_string())
    }
}

impl Args {
    fn window(&self) -> Window {
        Window {
            concurrency: self.concurrency,
            warmup: Duration::from_secs(self.warmup),
            measured: Duration::from_secs(self.seconds),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        let mut runs = vec![("seckill-rpc", run_seckill(&args, Setup::Plain).await?)];
        report(runs[0].0, &runs[0].1);
        for (wanted, setup, name) in
            [(args.auth, Setup::Auth, "seckill-rpc-auth"), (args.tls, Setup::Tls, "seckill-rpc-tls")]
        {
            if wanted {
                let outcome = run_seckill(&args, setup).await?;
                report(name, &outcome);
                runs.push((name, outcome));
            }
        }
        if let Some(other) = &args.compare {
            anyhow::ensure!(other == "tarpc", "--compare only knows tarpc");
            let theirs = run_tarpc(&args).await?;
            report("tarpc", &theirs);
            for (name, ours) in &runs {
                let setup = name.strip_prefix("seckill-rpc-").map(|setup| format!("{setup}_")).unwrap_or_default();
                println!("ratio_{setup}qps_vs_tarpc={:.2}", ours.qps / theirs.qps);
            }
        }
        Ok(())
    })
}

fn report(system: &str, outcome: &Outcome) {
    println!("system={system} qps={:.0} p50_us={} p99_us={}", outcome.qps, outcome.p50_us, outcome.p99_us);
    if outcome.errors > 0 {
        eprintln!("system={system} errors={}", outcome.errors);
    }
}

async fn run_seckill(args: &Args, setup: Setup) -> anyhow::Result<Outcome> {
    let key = rpc::ClusterKey::new("the echo benchmark's cluster key, 32+ bytes");
    let security = match setup {
        Setup::Plain => rpc::Security::default(),
        Setup::Auth => rpc::Security::with_key(key),
        Setup::Tls => {
            let ca = rpc::DevelopmentCa::new("echo bench CA")?;
            rpc::Security { key: Some(key), tls: Some(ca.tls()?) }
        }
    };
    let server_config = rpc::ServerConfig { security: security.clone(), ..Default::default() };
    let server = rpc::Server::new(server_config).add_service(EchoServer::new(EchoImpl)).spawn("127.0.0.1:0").await?;
    let config = rpc::ClientConfig { connections: args.conns, security, ..Default::default() };
    let channel = rpc::Channel::new(server.local_addr().to_string(), config);
    // One channel with `conns` connections: calls are spread over them round robin.
    let mut client = EchoClient::new(channel);
    if setup != Setup::Plain {
        // The size of the identity token the services' calls carry.
        client = client.with_credential(rpc::Credential::Fixed(bytes::Bytes::from(vec![0x5a; 51])));
    }
    let client = Arc::new(client);
    let outcome = drive(args, |_task| client.clone()).await;
    server.shutdown().await;
    Ok(outcome)
}

async fn run_tarpc(args: &Args) -> anyhow::Result<Outcome> {
    use tarpc::server::Channel as _;
    use tarpc::tokio_serde::formats::Bincode;

    let listener = tarpc::serde_transport::tcp::listen("127.0.0.1:0", Bincode::default).await?;
    let addr = listener.local_addr();
    let server = tokio::spawn(
        listener
            .filter_map(|conn| futures::future::ready(conn.ok()))
            .map(tarpc::server::BaseChannel::with_defaults)
            .map(|channel| {
                channel.execute(TarpcEchoImpl.serve()).for_each(|fut| async {
                    tokio::spawn(fut);
                })
            })
            .buffer_unordered(usize::MAX)
            .for_each(|()| async {}),
    );
    let mut clients = Vec::new();
    for _ in 0..args.conns {
        let transport = tarpc::serde_transport::tcp::connect(addr, Bincode::default).await?;
        clients.push(TarpcEchoClient::new(tarpc::client::Config::default(), transport).spawn());
    }
    let clients: Vec<_> = clients.into_iter().map(Arc::new).collect();
    let outcome = drive(args, |task| clients[task % clients.len()].clone()).await;
    server.abort();
    Ok(outcome)
}

/// Runs the measurement loop over `client_for_task(t)` for task t.
async fn drive<C: Caller>(args: &Args, client_for_task: impl Fn(usize) -> Arc<C>) -> Outcome {
    let clients: Arc<Vec<Arc<C>>> = Arc::new((0..args.concurrency).map(client_for_task).collect());
    let payload = ByteBuf::from(vec![0xAB; args.payload]);
    measure(args.window(), move |task, _| {
        let (client, payload) = (clients[task].clone(), payload.clone());
        async move { client.echo(payload.clone()).await.is_ok_and(|echoed| echoed.len() == payload.len()) }
    })
    .await
}
