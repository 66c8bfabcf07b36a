//! A process's copy of the live rules: loaded at start, then kept current by the change channel,
//! with a slow re-read for announcements missed while disconnected. While the store cannot be
//! reached, or after it lost its data, the last rules stay in force.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rpc::Backoff;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use super::{RuleSet, RuleStore};

/// How often the rules are re-read even without an announcement.
const RESYNC: Duration = Duration::from_secs(5);

/// The rules in force in this process (cheap to clone; every clone sees each change).
#[derive(Clone, Debug)]
pub struct LiveRules {
    current: watch::Receiver<Arc<RuleSet>>,
}

impl LiveRules {
    /// Loads the rules from `store` and follows its changes until the process ends; `redis_url`
    /// is where its channel is subscribed. Starts from [`RuleSet::initial`] (the configuration)
    /// if the store cannot be read now.
    pub async fn follow(store: RuleStore, redis_url: SecretString) -> LiveRules {
        let first = match store.current().await {
            Ok(rules) => rules,
            Err(err) => {
                tracing::warn!(%err, "live rules unreadable at start; the configuration is in force");
                RuleSet::initial()
            }
        };
        metrics::gauge!("seckill_rules_version").set(first.version as f64);
        let (sender, current) = watch::channel(Arc::new(first));
        tokio::spawn(follow(store, redis_url, sender));
        LiveRules { current }
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.borrow().clone()
    }

    /// Keeps the breaker settings and retry rules of each cluster as it was `configured`, with
    /// what the live rules override, from now until the returned handle is dropped.
    pub fn govern(&self, clusters: Vec<(rpc::Cluster, rpc::ClusterConfig)>) -> Following {
        self.apply(move |rules| {
            for (cluster, configured) in &clusters {
                cluster.set_breaker(&rules.rules.breaker.over(&configured.breaker));
                cluster.set_retry(&rules.rules.retry.over(&configured.retry));
            }
        })
    }

    /// Calls `apply` with the rules in force now, then after every change, until the returned
    /// handle is dropped: for settings held outside the rules (a rate limiter, a cluster).
    pub fn apply(&self, mut apply: impl FnMut(&RuleSet) + Send + 'static) -> Following {
        let mut current = self.current.clone();
        let task = tokio::spawn(async move {
            loop {
                let rules = current.borrow_and_update().clone();
                apply(&rules);
                if current.changed().await.is_err() {
                    return;
                }
            }
        });
        Following { _task: AbortOnDropHandle::new(task) }
    }

    /// Waits for the next change (tests and the dashboard).
    pub async fn changed(&mut self) -> Option<Arc<RuleSet>> {
        self.current.changed().await.ok()?;
        Some(self.current.borrow_and_update().clone())
    }
}

/// Settings following the live rules ([`LiveRules::apply`], [`LiveRules::govern`]); dropping it
/// stops that.
#[derive(Debug)]
#[must_use = "the settings stop following the rules when it is dropped"]
pub struct Following {
    _task: AbortOnDropHandle<()>,
}

async fn follow(store: RuleStore, redis_url: SecretString, sender: watch::Sender<Arc<RuleSet>>) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match listen(&store, &redis_url, &sender).await {
            Ok(()) => backoff.succeeded(),
            Err(err) => tracing::warn!(%err, "live rules channel lost; the last rules stay in force"),
        }
        if sender.is_closed() {
            return;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Subscribes, re-reads (an announcement may have been missed), then re-reads on every
/// announcement and every [`RESYNC`].
async fn listen(
    store: &RuleStore,
    redis_url: &SecretString,
    sender: &watch::Sender<Arc<RuleSet>>,
) -> Result<(), deadpool_redis::redis::RedisError> {
    let client = deadpool_redis::redis::Client::open(redis_url.expose_secret())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&store.keys().channel).await?;
    let mut messages = pubsub.on_message();
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        reload(store, sender).await;
        tokio::select! {
            message = messages.next() => if message.is_none() { return Ok(()) },
            _ = resync.tick() => {}
        }
        if sender.is_closed() {
            return Ok(());
        }
    }
}

async fn reload(store: &RuleStore, sender: &watch::Sender<Arc<RuleSet>>) {
    let following = sender.borrow().clone();
    match store.current().await {
        Ok(rules) if rules.version == 0 && following.version > 0 => {
            // The store lost its data (a Redis restart without persistence): that is not an
            // operator's change, so the last rules stay until someone changes them again.
            tracing::warn!(following = following.version, "the rule store is empty; the last rules stay in force");
        }
        // The whole set, not only its version: after the store lost its data, versions start
        // again from 1.
        Ok(rules) if rules != *following => {
            tracing::info!(version = rules.version, changed_by = %rules.changed_by, "following new live rules");
            metrics::gauge!("seckill_rules_version").set(rules.version as f64);
            sender.send_replace(Arc::new(rules));
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(%err, "live rules unreadable; the last rules stay in force"),
    }
}
