//! The in-process sold-out flag per goods: once stock-service answers "sold out", later order
//! attempts for that goods are answered here, with no RPC and no Redis call. Cleared on every
//! gateway when units come back (stock-service publishes on `{prefix}:restock`).

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rpc::Backoff;
use secrecy::{ExposeSecret, SecretString};

/// The flags.
#[derive(Debug, Default)]
pub(crate) struct SoldOutFlags {
    goods: RwLock<HashSet<i64>>,
    /// Bumped by every clear. A "sold out" answer only sets the flag if no restock was seen
    /// since its call began: a restock that overtook the answer must not be undone by it.
    epoch: AtomicU64,
}

impl SoldOutFlags {
    /// The epoch to pass to [`SoldOutFlags::mark_unless_restocked`], read before the call.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Marks `goods_id` sold out, unless a restock was seen since `epoch`.
    pub(crate) fn mark_unless_restocked(&self, goods_id: i64, epoch: u64) {
        let mut goods = self.goods.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) == epoch {
            goods.insert(goods_id);
        }
    }

    /// Whether `goods_id` is known to be sold out.
    pub(crate) fn is_sold_out(&self, goods_id: i64) -> bool {
        self.goods.read().unwrap_or_else(|p| p.into_inner()).contains(&goods_id)
    }

    /// Clears one flag.
    pub(crate) fn clear(&self, goods_id: i64) {
        let mut goods = self.goods.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        goods.remove(&goods_id);
    }

    /// Clears every flag (after missing notifications: the next attempt asks again).
    pub(crate) fn clear_all(&self) {
        let mut goods = self.goods.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        goods.clear();
    }

    /// Follows the restock channel until the process ends, reconnecting after failures.
    pub(crate) async fn follow_restocks(self: std::sync::Arc<Self>, redis_url: SecretString, channel: String) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.listen(&redis_url, &channel).await {
                Ok(()) => backoff.succeeded(),
                Err(err) => tracing::warn!(%err, "restock subscription failed; retrying"),
            }
            // Notifications may have been missed while disconnected.
            self.clear_all();
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn listen(&self, redis_url: &SecretString, channel: &str) -> Result<(), deadpool_redis::redis::RedisError> {
        let client = deadpool_redis::redis::Client::open(redis_url.expose_secret())?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else { continue };
            if let Ok(goods_id) = payload.parse() {
                self.clear(goods_id);
                tracing::info!(goods_id, "goods back in stock: sold-out flag cleared");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_per_goods() {
        let flags = SoldOutFlags::default();
        flags.mark_unless_restocked(1, flags.epoch());
        assert!(flags.is_sold_out(1) && !flags.is_sold_out(2));
        flags.clear(1);
        assert!(!flags.is_sold_out(1));
    }

    #[test]
    fn a_sold_out_answer_overtaken_by_a_restock_does_not_set_the_flag() {
        let flags = SoldOutFlags::default();
        let before_call = flags.epoch();
        flags.clear(3); // the restock arrives while the call is in flight
        flags.mark_unless_restocked(3, before_call);
        assert!(!flags.is_sold_out(3));
        flags.mark_unless_restocked(3, flags.epoch());
        assert!(flags.is_sold_out(3));
    }
}
