//! Building and running the service, from tests as from `main`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use contracts::names::STOCK_SERVICE;
use contracts::stock::StockServiceServer;
use platform::node::Node;

use crate::sale::SaleStore;
use crate::scheduler::{RunningScheduler, WarmUpScheduler};
use crate::service::Stock;
use crate::settings::Settings;

/// A running stock-service.
#[derive(Debug)]
pub struct Application {
    node: Node,
    /// The warm-up scheduler, unless `SECKILL_WARM_UP__ENABLED=false`.
    scheduler: Option<RunningScheduler>,
    scheduled_warm_ups: Arc<AtomicU64>,
}

impl Application {
    /// Connects to PostgreSQL and Redis, migrates, and starts serving.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.node.secret_policy().enforce()?;
        // A zero period would panic the scheduler's ticker: refuse it before anything starts.
        let warm_up = &settings.warm_up;
        anyhow::ensure!(!warm_up.enabled || !warm_up.interval.is_zero(), "SECKILL_WARM_UP__INTERVAL must be above 0");
        let pool = settings.database.connect().await?;
        let identities = settings.node.rpc.security.identities();
        if settings.without.sale_state_rebuild {
            tracing::warn!(
                "SECKILL_WITHOUT__SALE_STATE_REBUILD: a sale whose state Redis lost stops until warmed up again"
            );
        }
        let redis = settings.redis.connect_shared().await?;
        let sales = SaleStore::new(redis, settings.redis.keyspace());
        let stock = Stock::new(pool.clone(), sales, identities, !settings.without.sale_state_rebuild);
        let server = settings.node.server()?.add_service(StockServiceServer::new(stock.clone()));
        let registry = settings.registry.connect().await?;
        let node = Node::start(&settings.node, server, &[STOCK_SERVICE], &registry)
            .await
            .context("starting the RPC server")?;
        let scheduled_warm_ups = Arc::new(AtomicU64::new(0));
        let scheduler = if settings.warm_up.enabled {
            Some(WarmUpScheduler::new(pool, stock, &settings.warm_up, scheduled_warm_ups.clone()).spawn())
        } else {
            tracing::info!("SECKILL_WARM_UP__ENABLED=false: sales are warmed up by the admin call only");
            None
        };
        Ok(Application { node, scheduler, scheduled_warm_ups })
    }

    /// The RPC address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// How many sales this process's warm-up scheduler warmed up first (the ones it found
    /// warmed by another instance or an admin do not count).
    pub fn scheduled_warm_ups(&self) -> u64 {
        self.scheduled_warm_ups.load(Ordering::Relaxed)
    }

    /// Serves until `shutdown` completes, then stops as [`Application::stop`] does.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }

    /// Stops now, gracefully: the warm-up scheduler first, then the RPC server drains
    /// in-flight calls.
    pub async fn stop(self) {
        if let Some(scheduler) = self.scheduler {
            scheduler.stop().await;
        }
        self.node.stop().await;
    }
}
