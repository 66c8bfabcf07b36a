//! [`Registration`]: the handle that keeps an instance registered.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Instance;

/// Keeps one instance registered for as long as it lives.
///
/// A background task heartbeats the registration; [`Registration::deregister`] removes it at once
/// (graceful shutdown: deregister first, then drain the server, so callers stop sending before the
/// port closes). Dropping the handle also stops the heartbeat and deregisters in the background.
#[derive(Debug)]
pub struct Registration {
    instance: Instance,
    stop: CancellationToken,
    /// Heartbeats until `stop`, then deregisters. `None` for registries with nothing to keep alive.
    task: Option<JoinHandle<()>>,
}

impl Registration {
    /// A registration kept alive by `task`, which must deregister and return once `stop` is cancelled.
    pub(crate) fn new(instance: Instance, stop: CancellationToken, task: JoinHandle<()>) -> Registration {
        Registration { instance, stop, task: Some(task) }
    }

    /// A registration with nothing to keep alive (static configuration).
    pub(crate) fn fixed(instance: Instance) -> Registration {
        Registration { instance, stop: CancellationToken::new(), task: None }
    }

    /// The registered instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Stops heartbeating and removes the instance from the registry, telling discoverers at once.
    pub async fn deregister(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops heartbeating without deregistering, as a crash would: the entry disappears only when
    /// its TTL runs out. For tests and drills.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
