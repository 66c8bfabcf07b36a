//! Building and running the service, from tests as from `main`.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use contracts::names::STOCK_SERVICE;
use contracts::stock::StockServiceServer;
use platform::node::Node;

use crate::sale::SaleStore;
use crate::service::Stock;
use crate::settings::Settings;

/// A running stock-service.
#[derive(Debug)]
pub struct Application {
    node: Node,
}

impl Application {
    /// Connects to PostgreSQL and Redis, migrates, and starts serving.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.node.secret_policy().enforce()?;
        let pool = settings.database.connect().await?;
        let redis = settings.redis.connect().await?;
        let identities = settings.node.rpc.security.identities();
        if settings.without.sale_state_rebuild {
            tracing::warn!(
                "SECKILL_WITHOUT__SALE_STATE_REBUILD: a sale whose state Redis lost stops until warmed up again"
            );
        }
        let sales = SaleStore::new(redis, settings.redis.keyspace());
        let stock = Stock::new(pool, sales, identities, !settings.without.sale_state_rebuild);
        let server = settings.node.server()?.add_service(StockServiceServer::new(stock));
        let registry = settings.registry.connect().await?;
        let node = Node::start(&settings.node, server, &[STOCK_SERVICE], &registry)
            .await
            .context("starting the RPC server")?;
        Ok(Application { node })
    }

    /// The RPC address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        self.node.run_until(shutdown).await;
    }

    /// Stops now, gracefully.
    pub async fn stop(self) {
        self.node.stop().await;
    }
}
