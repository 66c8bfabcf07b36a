//! Building and running the service, from tests as from `main`.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use contracts::names::USER_SERVICE;
use contracts::user::UserServiceServer;
use platform::auth::JwtKeys;
use platform::node::Node;

use crate::password::Hasher;
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
        settings.check_secrets()?;
        let pool = settings.database.connect().await?;
        let hasher = Hasher::new(settings.password.max_concurrent_hashes);
        let users = Users::new(pool, JwtKeys::new(&settings.jwt), settings.node.rpc.security.identities(), hasher);
        users.ensure_admin(&settings.admin).await.context("ensuring the admin account")?;
        let server = settings.node.server()?.add_service(UserServiceServer::new(users));
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
