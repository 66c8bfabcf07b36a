//! What the handlers share.

use std::sync::Arc;

use contracts::user::UserServiceClient;
use platform::auth::JwtKeys;
use platform::rules::RuleStore;
use rpc::Cluster;
use tokio::sync::watch;

use crate::demo::DemoRunner;
use crate::gather::Published;

/// Shared state of the dashboard.
pub(crate) struct AppState {
    /// user-service, for the admin's login.
    pub(crate) users: UserServiceClient<Cluster>,
    /// Verifies (and, for the development login, signs) session tokens.
    pub(crate) jwt: JwtKeys,
    /// The live rules.
    pub(crate) rules: RuleStore,
    /// The latest gathering.
    pub(crate) published: watch::Receiver<Arc<Published>>,
    /// The demo sale.
    pub(crate) demo: DemoRunner,
    /// Whether the development login is offered.
    pub(crate) development_login: bool,
}
