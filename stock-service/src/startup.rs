//! Building and running the service, from tests as from `main`.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use common::contracts::stock::StockServiceServer;
use common::node::Node;

use crate::sale::SaleStore;
use crate::service::Stock;
use crate::settings::Settings;

/// A running stock-service.
#[derive(Debug)]
pub struct Application {
    node: Node,
    stock: Stock,
}

impl Application {
    /// Connects to PostgreSQL and Redis, migrates, and starts serving.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = common::db::connect(&settings.database_url, settings.database_max_connections).await?;
        if settings.migrate {
            common::db::migrate(&pool).await.context("applying database migrations")?;
        }
        let redis = common::redis::connect(&settings.redis_url, settings.redis_max_connections).await?;
        let stock = Stock::new(pool, SaleStore::new(redis, settings.redis_prefix.clone()));
        let server = rpc::Server::new(settings.node.rpc.clone()).add_service(StockServiceServer::new(stock.clone()));
        let registry = settings.registry.connect().await?;
        let node = Node::start(&settings.node, server, &["StockService"], &registry)
            .await
            .context("starting the RPC server")?;
        Ok(Application { node, stock })
    }

    /// The RPC address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// The service itself, for tests.
    pub fn stock(&self) -> &Stock {
        &self.stock
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
