//! A connection's two halves once it is secured: plain TCP halves (lock-free), or the halves of a
//! TLS stream. Boxed, so the connection code is the same for both; the indirection is one call
//! per read or write syscall.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{Security, handshake};

/// The read half of a secured connection.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a secured connection.
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Which side of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// Secures a fresh connection as `security` says (TLS first, then the key handshake inside it)
/// and splits it. Fails with a message for the log or the caller.
pub(crate) async fn split(tcp: TcpStream, security: &Security, side: Side) -> Result<(Reader, Writer), String> {
    match &security.tls {
        None => {
            let mut tcp = tcp;
            shake(&mut tcp, security, side).await?;
            let (reader, writer) = tcp.into_split();
            Ok((Box::new(reader), Box::new(writer)))
        }
        Some(tls) if side == Side::Client => {
            let mut stream = tls.connect(tcp).await.map_err(|err| format!("TLS: {err}"))?;
            shake(&mut stream, security, side).await?;
            let (reader, writer) = tokio::io::split(stream);
            Ok((Box::new(reader), Box::new(writer)))
        }
        Some(tls) => {
            let mut stream = tls.accept(tcp).await.map_err(|err| format!("TLS: {err}"))?;
            shake(&mut stream, security, side).await?;
            let (reader, writer) = tokio::io::split(stream);
            Ok((Box::new(reader), Box::new(writer)))
        }
    }
}

async fn shake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    security: &Security,
    side: Side,
) -> Result<(), String> {
    let Some(key) = &security.key else { return Ok(()) };
    let outcome = match side {
        Side::Client => handshake::client(stream, key).await,
        Side::Server => handshake::server(stream, key).await,
    };
    outcome.map_err(|err| err.to_string())
}
