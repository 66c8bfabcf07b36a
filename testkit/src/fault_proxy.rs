//! A TCP fault proxy, toxiproxy-style (toxiproxy itself is not packaged here): put it between a
//! client and one node, then make that link slow, refusing, resetting or silent, and back.
//! Faults are injected from outside the programs: no "make me slow" switch in any request path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the proxy does to the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything as it comes.
    None,
    /// Hold every chunk, in both directions, this long before forwarding it.
    Latency(Duration),
    /// Reset new connections at once (as a closed port would) and keep existing ones.
    Refuse,
    /// Reset every connection, existing and new.
    Reset,
    /// Forward nothing, answer nothing, lose nothing: a link that hangs. What was sent waits (as
    /// TCP would retransmit it) and arrives once healed, or never if the link is then reset. It
    /// never drops bytes from the middle of a live stream, which no real network can do: a gap
    /// would silently shift the peer's sequence numbers (AMQP's publisher confirm tags).
    Blackhole,
}

/// A running proxy to one upstream address.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

/// What went through.
#[derive(Debug, Default)]
pub struct Stats {
    connections: std::sync::atomic::AtomicU64,
}

impl FaultProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (fault, watcher) = watch::channel(Fault::None);
        let stats = Arc::new(Stats::default());
        let counted = stats.clone();
        let task = tokio::spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                counted.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let watcher = watcher.clone();
                links.spawn(link(inbound, upstream, watcher));
                while links.try_join_next().is_some() {}
            }
        });
        FaultProxy { addr, fault, stats, task }
    }

    /// Where clients connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Injects `fault` (or, with [`Fault::None`], heals the link) for every connection.
    pub fn set(&self, fault: Fault) {
        let _ = self.fault.send(fault);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One proxied connection, until either side closes or a fault ends it.
async fn link(inbound: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    if matches!(*fault.borrow(), Fault::Refuse | Fault::Reset) {
        return reset(inbound);
    }
    let Ok(outbound) = TcpStream::connect(upstream).await else { return reset(inbound) };
    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let up = pipe(&mut in_read, &mut out_write, fault.clone());
    let down = pipe(&mut out_read, &mut in_write, fault.clone());
    tokio::select! {
        _ = up => {}
        _ = down => {}
        () = async { while fault.changed().await.is_ok() { if *fault.borrow() == Fault::Reset { return; } } } => {}
    }
    // A reset fault (or either side leaving) ends the link; linger 0 makes the close a reset.
    if let Ok(inbound) = in_read.reunite(in_write) {
        reset(inbound);
    }
}

async fn pipe(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut fault: watch::Receiver<Fault>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        // Held while the link is silent (reading no more meanwhile, so the sender's buffers
        // fill as they would), then forwarded, or gone with the link if it is reset.
        loop {
            let current = *fault.borrow_and_update();
            match current {
                Fault::Blackhole => {}
                Fault::Reset => return Ok(()),
                Fault::Latency(delay) => {
                    tokio::time::sleep(delay).await;
                    break;
                }
                Fault::None | Fault::Refuse => break,
            }
            if fault.changed().await.is_err() {
                return Ok(());
            }
        }
        to.write_all(&buf[..n]).await?;
    }
}

fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"ping").await?;
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).await?;
        Ok(answer.to_vec())
    }

    #[tokio::test]
    async fn forwards_then_refuses_then_heals() {
        let proxy = FaultProxy::start(echo_server().await).await;
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
        proxy.set(Fault::Refuse);
        assert!(round_trip(proxy.addr()).await.is_err());
        proxy.set(Fault::None);
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
        assert_eq!(proxy.connections(), 3);
    }

    #[tokio::test]
    async fn a_blackhole_holds_what_was_sent_and_delivers_it_in_order_once_healed() {
        let proxy = FaultProxy::start(echo_server().await).await;
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        live.write_all(b"a").await.unwrap();
        let mut answer = [0u8; 3];
        live.read_exact(&mut answer[..1]).await.unwrap();
        proxy.set(Fault::Blackhole);
        live.write_all(b"b").await.unwrap();
        let silent = tokio::time::timeout(Duration::from_millis(200), live.read_exact(&mut answer[1..2])).await;
        assert!(silent.is_err(), "a blackhole answers nothing");
        proxy.set(Fault::None);
        live.write_all(b"c").await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), live.read_exact(&mut answer[1..])).await.unwrap().unwrap();
        assert_eq!(&answer, b"abc", "nothing lost from the middle of the stream");
    }

    #[tokio::test]
    async fn a_blackhole_answers_nothing_and_a_reset_cuts_live_connections() {
        let proxy = FaultProxy::start(echo_server().await).await;
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        live.write_all(b"ping").await.unwrap();
        let mut answer = [0u8; 4];
        live.read_exact(&mut answer).await.unwrap();
        proxy.set(Fault::Blackhole);
        live.write_all(b"ping").await.unwrap();
        let silent = tokio::time::timeout(Duration::from_millis(200), live.read_exact(&mut answer)).await;
        assert!(silent.is_err(), "a blackhole answers nothing");
        proxy.set(Fault::Reset);
        let cut = tokio::time::timeout(Duration::from_secs(2), live.read(&mut answer)).await.unwrap();
        assert!(matches!(cut, Ok(0) | Err(_)), "the live connection was cut: {cut:?}");
    }
}
