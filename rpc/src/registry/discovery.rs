//! [`Discovery`]: the client-side cache of one service's instance list, kept up to date by a registry.
//!
//! The cache is a `watch` channel: readers get the latest list without locking for long, and a
//! cluster wakes up only when it changes. When the registry cannot be reached, the registry keeps
//! the last list it had (and says so once in the log): calls go on over the cached nodes, and the
//! breakers deal with any that died meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use super::Instance;

/// A live view of one service's instances.
///
/// It keeps the registry that feeds it running: a cluster built from it goes on following the
/// list even if the code that made the registry dropped its handle.
#[derive(Clone)]
pub struct Discovery {
    feed: Arc<Feed>,
    rx: watch::Receiver<Option<Arc<[Instance]>>>,
    _registry: Option<Arc<dyn Send + Sync>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").field("service", &self.feed.service).field("instances", &self.rx.borrow()).finish()
    }
}

impl Discovery {
    /// The service this view lists.
    pub fn service(&self) -> &str {
        &self.feed.service
    }

    /// The current instances, sorted by address (empty before the registry first answered).
    pub fn instances(&self) -> Arc<[Instance]> {
        self.rx.borrow().clone().unwrap_or_else(|| Arc::from([]))
    }

    /// Whether the list comes from the registry as of its last check, rather than from the cache
    /// kept through a registry outage.
    pub fn is_live(&self) -> bool {
        !self.feed.on_cache.load(Ordering::Relaxed)
    }

    /// Waits until the registry answered (or failed) once, so the list means something.
    pub async fn ready(&mut self) {
        // Only fails when the registry is gone, and then there is nothing to wait for.
        let _ = self.rx.wait_for(Option::is_some).await;
    }

    /// Waits for the next change of the list. Fails when the registry that fed it is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.rx.changed().await
    }
}

/// The registry's side of a [`Discovery`]: where fresh lists and failures are reported.
#[derive(Debug)]
pub(crate) struct Feed {
    service: String,
    tx: watch::Sender<Option<Arc<[Instance]>>>,
    on_cache: AtomicBool,
}

impl Feed {
    /// A feed with no list yet.
    pub(crate) fn new(service: &str) -> Arc<Feed> {
        let (tx, _) = watch::channel(None);
        Arc::new(Feed { service: service.to_owned(), tx, on_cache: AtomicBool::new(false) })
    }

    /// A feed that lists `instances` for ever (static configuration).
    pub(crate) fn fixed(service: &str, instances: Vec<Instance>) -> Arc<Feed> {
        let feed = Feed::new(service);
        feed.publish(instances);
        feed
    }

    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// A view of this feed that keeps `registry` (whatever keeps the feed fed) alive.
    pub(crate) fn subscribe(self: &Arc<Self>, registry: Option<Arc<dyn Send + Sync>>) -> Discovery {
        Discovery { feed: self.clone(), rx: self.tx.subscribe(), _registry: registry }
    }

    /// Reports the registry's current list. Readers wake only if it differs from the cached one.
    ///
    /// An empty list never replaces a non-empty one ("empty protection"): a registry that lost its
    /// data (a Redis restart without persistence) answers empty until the servers' next heartbeats,
    /// and believing it would black out every caller. Keeping nodes that really left costs little:
    /// their calls fail fast and their breakers open.
    pub(crate) fn publish(&self, mut instances: Vec<Instance>) {
        instances.sort_by(|a, b| a.addr.cmp(&b.addr));
        instances.dedup_by(|a, b| a.addr == b.addr);
        if self.on_cache.swap(false, Ordering::Relaxed) {
            tracing::info!(service = %self.service, nodes = instances.len(), "registry reachable again; list refreshed");
        }
        self.tx.send_if_modified(|current| {
            let cached = current.as_deref().unwrap_or_default();
            if instances.is_empty() && !cached.is_empty() {
                tracing::warn!(service = %self.service, kept = cached.len(), "registry lists no instance; keeping the cached list");
                return false;
            }
            if current.is_some() && *cached == *instances {
                return false;
            }
            *current = Some(instances.into());
            true
        });
    }

    /// Reports that the registry could not be read: the cached list stays in use.
    pub(crate) fn failed(&self, error: &dyn std::fmt::Display) {
        if !self.on_cache.swap(true, Ordering::Relaxed) {
            let cached = self.tx.borrow().as_deref().map_or(0, <[Instance]>::len);
            tracing::warn!(service = %self.service, %error, cached, "registry unreachable; running on the cached instance list");
        }
        // Unblock `ready()` even if the registry never answered.
        self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(Arc::from([]));
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(addr: &str) -> Instance {
        Instance::new("Lab", addr).started_at(0)
    }

    #[tokio::test]
    async fn lists_are_sorted_deduplicated_and_only_changes_wake_readers() {
        let feed = Feed::new("Lab");
        let mut discovery = feed.subscribe(None);
        feed.publish(vec![instance("b:1"), instance("a:1"), instance("b:1")]);
        discovery.ready().await;
        let addrs: Vec<_> = discovery.instances().iter().map(|i| i.addr.clone()).collect();
        assert_eq!(addrs, ["a:1", "b:1"]);
        discovery.rx.mark_unchanged();
        feed.publish(vec![instance("a:1"), instance("b:1")]);
        assert!(!discovery.rx.has_changed().unwrap(), "the same list must not wake readers");
    }

    #[tokio::test]
    async fn an_outage_keeps_the_cache_and_an_empty_answer_never_erases_it() {
        let feed = Feed::new("Lab");
        let discovery = feed.subscribe(None);
        feed.publish(vec![instance("a:1")]);
        feed.failed(&"connection refused");
        assert!(!discovery.is_live());
        assert_eq!(discovery.instances().len(), 1);
        feed.publish(Vec::new());
        assert!(discovery.is_live());
        assert_eq!(discovery.instances().len(), 1, "empty protection");
    }

    #[tokio::test]
    async fn a_failure_before_any_answer_unblocks_ready_with_an_empty_list() {
        let feed = Feed::new("Lab");
        let mut discovery = feed.subscribe(None);
        feed.failed(&"connection refused");
        discovery.ready().await;
        assert!(discovery.instances().is_empty());
    }
}
