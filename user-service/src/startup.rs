//! Building and running the service, from tests as from `main`.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use contracts::names::USER_SERVICE;
use contracts::user::UserServiceServer;
use platform::auth::JwtKeys;
use platform::node::Node;

use crate::service::Users;
use crate::settings::Settings;

/// A running user-service.
#[derive(Debug)]
pub struct Application {
    node: Node,
}

impl Application {
    /// Connects to PostgreSQL, migrates, ensures the admin, and starts serving.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = settings.database.connect().await?;
        if settings.jwt.is_development_secret() {
            tracing::warn!("JWT secret is the built-in development one: set SECKILL_JWT__SECRET outside development");
        }
        let users = Users::new(pool, JwtKeys::new(&settings.jwt));
        users.ensure_admin(&settings.admin).await.context("ensuring the admin account")?;
        let server = rpc::Server::new(settings.node.rpc.clone()).add_service(UserServiceServer::new(users));
        let registry = settings.registry.connect().await?;
        let node =
            Node::start(&settings.node, server, &[USER_SERVICE], &registry).await.context("starting the RPC server")?;
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
