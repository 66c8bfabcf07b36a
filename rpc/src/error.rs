//! What can go wrong with a call, as a typed enum callers can branch on.

use std::fmt;

use crate::codec::CodecError;
use crate::frame::Status;

/// The error of an RPC call. `E` is the service's own application error; transport-level code
/// (pools, balancers, retries) works with `Error<Never>`, which has no application variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error<E = Never> {
    /// The connection could not be made, or broke before the answer came.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// No answer within the call's timeout or its propagated deadline.
    #[error("timed out waiting for the answer")]
    Timeout,
    /// The server shed the call at once because it was at its in-flight limit; the handler did not run.
    #[error("the server is overloaded and did not run the call")]
    Overloaded,
    /// The request or the answer could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The server could not run the handler (unknown method, bad request, panic, deadline, draining).
    #[error("remote: {0}")]
    Remote(RemoteError),
    /// The handler ran and returned its own error.
    #[error("application error: {0:?}")]
    Application(E),
}

/// An application error type for methods that cannot fail: it has no values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Never {}

impl fmt::Display for Never {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl std::error::Error for Never {}

/// Why the transport failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Connecting failed (refused, unreachable, timed out), or we are backing off after failures.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The endpoint.
        addr: String,
        /// What the OS or the backoff said.
        reason: String,
    },
    /// The connection closed or was declared dead (heartbeat timeout, peer reset, protocol error)
    /// while the call was pending. The server may or may not have run it.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The caller asked for an endpoint that the client does not know or that has no nodes.
    #[error("no endpoint available for service {0}")]
    NoEndpoint(String),
    /// The connection closed before the request was written to it: the server never saw it.
    #[error("not sent: {0}")]
    NotSent(String),
}

/// A failure reported by the server with a non-application status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status:?}: {message}")]
pub struct RemoteError {
    /// The status the server answered with.
    pub status: Status,
    /// Server-provided detail (UTF-8 body), possibly empty.
    pub message: String,
}

impl<E> Error<E> {
    /// Whether the server certainly did not run the handler, so trying again cannot apply it twice.
    pub fn not_executed(&self) -> bool {
        match self {
            Error::Overloaded => true,
            Error::Transport(
                TransportError::Connect { .. } | TransportError::NoEndpoint(_) | TransportError::NotSent(_),
            ) => true,
            Error::Remote(remote) => matches!(
                remote.status,
                Status::ShuttingDown | Status::UnknownService | Status::UnknownMethod | Status::BadRequest
            ),
            _ => false,
        }
    }

    /// Whether the call never reached a server: no connection could be made (or secured), the
    /// request was never written, or the server was going away. Safe to send elsewhere even
    /// for a method that is not idempotent.
    pub fn never_reached_server(&self) -> bool {
        match self {
            Error::Transport(TransportError::Connect { .. } | TransportError::NotSent(_)) => true,
            Error::Remote(remote) => remote.status == Status::ShuttingDown,
            _ => false,
        }
    }

    /// Whether this failure says something about the health of the node that answered (breakers
    /// count these; application errors and codec errors are the caller's business, not the node's).
    pub fn is_node_failure(&self) -> bool {
        match self {
            // A request that was never sent says nothing about the node (an idle close, a GoAway).
            Error::Transport(TransportError::NotSent(_)) => false,
            Error::Transport(_) | Error::Timeout | Error::Overloaded => true,
            Error::Remote(remote) => {
                matches!(remote.status, Status::Internal | Status::ShuttingDown | Status::DeadlineExceeded)
            }
            Error::Codec(_) | Error::Application(_) => false,
        }
    }

    /// Maps the application error, keeping every other variant.
    pub fn map_app<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Transport(e) => Error::Transport(e),
            Error::Timeout => Error::Timeout,
            Error::Overloaded => Error::Overloaded,
            Error::Codec(e) => Error::Codec(e),
            Error::Remote(e) => Error::Remote(e),
            Error::Application(e) => Error::Application(f(e)),
        }
    }
}

impl Error<Never> {
    /// Widens a transport-level error into a call error for any application error type.
    pub fn widen<E>(self) -> Error<E> {
        self.map_app(|never| match never {})
    }
}
