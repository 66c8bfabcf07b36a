//! The discovery watcher: one task per registry keeps every discovered service's list fresh.
//!
//! It re-reads a service's list when a change is published, when the earliest entry it knows of
//! is due to expire (so a crashed server leaves every client's list within the TTL, without any
//! notification), and every `resync_interval` in any case (pub/sub may lose messages, and that
//! tick also re-subscribes after an outage). A failed read leaves the cached list in place.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubStream};
use tokio::sync::mpsc;

use super::{Keys, RedisRegistryConfig, scripts, with_timeout};
use crate::registry::Instance;
use crate::registry::discovery::Feed;

/// Read a list again this long after its earliest entry expires, so Redis surely sees it expired.
const EXPIRY_MARGIN: Duration = Duration::from_millis(5);

/// What the watcher task owns.
pub(super) struct Watcher {
    conn: ConnectionManager,
    client: redis::Client,
    keys: Keys,
    config: RedisRegistryConfig,
    watched: HashMap<String, Watched>,
    changes: Option<PubSubStream>,
}

/// One discovered service.
struct Watched {
    feed: Arc<Feed>,
    /// When the earliest listed entry expires, if the last read succeeded.
    next_expiry: Option<Instant>,
}

impl Watcher {
    pub(super) fn new(conn: ConnectionManager, client: redis::Client, keys: Keys, config: RedisRegistryConfig) -> Self {
        Watcher { conn, client, keys, config, watched: HashMap::new(), changes: None }
    }
}

/// Runs until the registry is dropped (the feed channel closes).
pub(super) async fn run(mut watcher: Watcher, mut new_feeds: mpsc::UnboundedReceiver<Arc<Feed>>) {
    let mut next_full_sync = Instant::now();
    loop {
        if Instant::now() >= next_full_sync {
            watcher.full_sync().await;
            next_full_sync = Instant::now() + watcher.config.resync_interval;
        }
        let next_expiry = watcher.watched.values().filter_map(|w| w.next_expiry).min();
        let wake = next_expiry.map_or(next_full_sync, |at| at.min(next_full_sync));
        tokio::select! {
            feed = new_feeds.recv() => {
                let Some(feed) = feed else { return };
                let mut watched = Watched { feed, next_expiry: None };
                watcher.sync(&mut watched).await;
                watcher.watched.insert(watched.feed.service().to_owned(), watched);
            }
            change = next_change(&mut watcher.changes) => match change {
                Some(service) => watcher.sync_service(&service).await,
                None => {
                    tracing::warn!("registry subscription lost; re-reading the lists every resync interval until it is back");
                    watcher.changes = None;
                }
            },
            () = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                let due: Vec<String> = watcher
                    .watched
                    .iter()
                    .filter(|(_, w)| w.next_expiry.is_some_and(|at| at <= now))
                    .map(|(service, _)| service.clone())
                    .collect();
                for service in due {
                    watcher.sync_service(&service).await;
                }
            }
        }
    }
}

/// The next service named on the changes channel; `None` once the subscription broke. Never
/// completes while there is no subscription.
async fn next_change(changes: &mut Option<PubSubStream>) -> Option<String> {
    match changes {
        Some(stream) => stream.next().await.map(|msg| msg.get_payload().unwrap_or_default()),
        None => std::future::pending().await,
    }
}

impl Watcher {
    /// (Re)subscribes if needed, then re-reads every list: changes published while the
    /// subscription was down are not lost.
    async fn full_sync(&mut self) {
        if self.changes.is_none() {
            match with_timeout(&self.config, self.subscribe()).await {
                Ok(stream) => self.changes = Some(stream),
                Err(error) => tracing::debug!(%error, "cannot subscribe to registry changes yet"),
            }
        }
        let services: Vec<String> = self.watched.keys().cloned().collect();
        for service in services {
            self.sync_service(&service).await;
        }
    }

    async fn subscribe(&self) -> redis::RedisResult<PubSubStream> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.keys.changes()).await?;
        Ok(pubsub.into_on_message())
    }

    async fn sync_service(&mut self, service: &str) {
        if let Some(mut watched) = self.watched.remove(service) {
            self.sync(&mut watched).await;
            self.watched.insert(service.to_owned(), watched);
        }
    }

    /// Re-reads one list into its feed; on failure the feed keeps its cache.
    async fn sync(&mut self, watched: &mut Watched) {
        let service = watched.feed.service();
        let listed = with_timeout(
            &self.config,
            scripts::LIST
                .key(self.keys.nodes(service))
                .key(self.keys.info(service))
                .invoke_async::<(i64, Vec<String>)>(&mut self.conn),
        )
        .await;
        match listed {
            Ok((now_ms, entries)) => {
                let (instances, next_expiry) = parse_listing(service, now_ms, &entries);
                watched.next_expiry = next_expiry;
                watched.feed.publish(instances);
            }
            Err(error) => {
                watched.next_expiry = None;
                watched.feed.failed(&error);
            }
        }
    }
}

/// Decodes `[json, expiry_ms, ...]` as read at Redis time `now_ms`: the instances, and when the
/// earliest of them expires on this host's clock.
fn parse_listing(service: &str, now_ms: i64, entries: &[String]) -> (Vec<Instance>, Option<Instant>) {
    let read_at = Instant::now();
    let mut instances = Vec::with_capacity(entries.len() / 2);
    let mut next_expiry: Option<Instant> = None;
    for pair in entries.chunks_exact(2) {
        let (json, expiry) = (&pair[0], &pair[1]);
        let instance = match serde_json::from_str::<Instance>(json) {
            Ok(instance) if instance.service == service => instance,
            Ok(_) | Err(_) => {
                tracing::warn!(%service, entry = %json, "ignoring a malformed registry entry");
                continue;
            }
        };
        let left_ms = expiry.parse::<f64>().map_or(0, |expiry| (expiry as i64).saturating_sub(now_ms).max(0));
        let expires = read_at + Duration::from_millis(left_ms as u64) + EXPIRY_MARGIN;
        next_expiry = Some(next_expiry.map_or(expires, |earliest| earliest.min(expires)));
        instances.push(instance);
    }
    (instances, next_expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_decode_skip_garbage_and_report_the_earliest_expiry() {
        let good = serde_json::to_string(&Instance::new("Lab", "127.0.0.1:1")).unwrap();
        let other = serde_json::to_string(&Instance::new("Lab", "127.0.0.1:2")).unwrap();
        let entries = [good, "10500".into(), "{not json".into(), "10900".into(), other, "11000".into()];
        let before = Instant::now();
        let (instances, next_expiry) = parse_listing("Lab", 10_000, &entries.map(String::from));
        assert_eq!(instances.len(), 2);
        let next_expiry = next_expiry.expect("two live entries");
        assert!(next_expiry >= before + Duration::from_millis(500));
        assert!(next_expiry <= Instant::now() + Duration::from_millis(500) + EXPIRY_MARGIN);
    }
}
