//! The write side of a connection: frames are appended to one shared buffer and a single writer
//! task flushes whatever has accumulated with one `write_all`.
//!
//! This is where write coalescing comes from: while the writer is in a syscall, every caller and
//! handler keeps appending, so under load one syscall carries hundreds of frames, and no frame is
//! ever copied into a per-frame allocation or sent through a channel.

use std::sync::Mutex;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use crate::sync::lock;

const INITIAL_CAPACITY: usize = 64 * 1024;

/// Shared write buffer of one connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    wake_writer: Notify,
    /// Bytes the buffer may hold waiting for the writer; past it the outbox closes itself.
    limit: usize,
}

#[derive(Debug)]
struct State {
    buf: BytesMut,
    closed: bool,
    overflowed: bool,
}

impl Outbox {
    /// An outbox without a limit (the client: its callers bound what it sends).
    pub(crate) fn new() -> Self {
        Outbox::with_limit(usize::MAX)
    }

    /// An outbox that overflows once `limit` bytes wait for a peer that does not read them.
    pub(crate) fn with_limit(limit: usize) -> Self {
        Outbox {
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(INITIAL_CAPACITY),
                closed: false,
                overflowed: false,
            }),
            wake_writer: Notify::new(),
            limit,
        }
    }

    /// Appends one or more frames written by `encode`. Returns `false` (and writes nothing) once the
    /// outbox is closed, or when this push found it over its limit (which closes it: see
    /// [`Outbox::overflowed`]). While the writer is in a syscall its batch is out of the buffer,
    /// so a connection holds at most twice the limit.
    pub(crate) fn push(&self, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut state = lock(&self.state);
        if state.closed {
            return false;
        }
        if state.buf.len() >= self.limit {
            state.closed = true;
            state.overflowed = true;
            return false;
        }
        let was_empty = state.buf.is_empty();
        encode(&mut state.buf);
        drop(state);
        // Only the first frame after a flush needs to wake the writer: later ones ride along.
        if was_empty {
            self.wake_writer.notify_one();
        }
        true
    }

    /// Whether the peer stopped reading: the buffer reached its limit and the outbox closed.
    pub(crate) fn overflowed(&self) -> bool {
        lock(&self.state).overflowed
    }

    /// Stops accepting frames; the writer flushes what is buffered, shuts the socket's write side
    /// down and exits.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.wake_writer.notify_one();
    }

    /// Runs the writer until the outbox is closed and drained, or the socket fails.
    pub(crate) async fn run_writer<W: AsyncWrite + Unpin>(&self, mut socket: W) -> std::io::Result<()> {
        let mut spare = BytesMut::with_capacity(INITIAL_CAPACITY);
        loop {
            // Decide under the lock, wait or write outside it.
            let swapped = {
                let mut state = lock(&self.state);
                if !state.buf.is_empty() {
                    std::mem::swap(&mut state.buf, &mut spare);
                    true
                } else if state.closed {
                    break;
                } else {
                    false
                }
            };
            if !swapped {
                self.wake_writer.notified().await;
                // Whoever woke us is usually one of many tasks about to push a frame, and tokio
                // runs a woken task next (its LIFO slot). Yielding once lets the others append
                // first, so one syscall carries the whole batch instead of one frame each.
                tokio::task::yield_now().await;
                continue;
            }
            let result = socket.write_all(&spare).await;
            spare.clear();
            if let Err(err) = result {
                self.close();
                return Err(err);
            }
        }
        socket.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_outbox_nobody_drains_overflows_at_its_limit_and_closes() {
        let outbox = Outbox::with_limit(100);
        let pushed = (0..50).take_while(|_| outbox.push(|buf| buf.extend_from_slice(&[0; 30]))).count();
        assert_eq!(pushed, 4, "pushes are refused once 100 bytes wait");
        assert!(outbox.overflowed());
        assert!(!outbox.push(|buf| buf.extend_from_slice(b"x")), "closed for good");
    }

    #[tokio::test]
    async fn frames_pushed_while_writing_are_coalesced_and_all_delivered() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let outbox = Arc::new(Outbox::new());
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.run_writer(client).await }
        });
        for i in 0..1000u32 {
            assert!(outbox.push(|buf| buf.extend_from_slice(&i.to_be_bytes())));
        }
        outbox.close();
        assert!(!outbox.push(|buf| buf.extend_from_slice(b"late")));
        writer.await.unwrap().unwrap();
        let mut received = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut server, &mut received).await.unwrap();
        let expected: Vec<u8> = (0..1000u32).flat_map(|i| i.to_be_bytes()).collect();
        assert_eq!(received, expected);
    }
}
