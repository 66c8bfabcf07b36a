//! Building and running the dashboard, from tests as from `main`.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use contracts::Service;
use contracts::names::{ORDER_SERVICE, STOCK_SERVICE, USER_SERVICE};
use contracts::order::OrderServiceClient;
use contracts::stock::StockServiceClient;
use contracts::user::UserServiceClient;
use platform::auth::JwtKeys;
use platform::registry;
use platform::rules::RuleStore;
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::demo::DemoRunner;
use crate::gather::{Gatherer, Published};
use crate::problem::Problem;
use crate::settings::Settings;
use crate::sources::nodes::NodeSource;
use crate::sources::postgres::PostgresSource;
use crate::sources::queue::QueueSource;
use crate::sources::sale::SaleSource;
use crate::sources::scenario::ScenarioSource;
use crate::state::AppState;

/// A running dashboard.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects to Redis and the registry, starts gathering, and binds the HTTP listener. The
    /// other sources (services, PostgreSQL, RabbitMQ, metrics) may be down: they show as
    /// unreachable until they answer.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.check_secrets()?;
        if settings.development_login() {
            tracing::warn!("development mode: the page offers an admin login without a password");
        }
        let security = settings.rpc.load()?;
        let operator = settings.rpc.identities().service_credential(Service::Operator);
        let redis = settings.redis.connect().await?;
        let registry = settings.registry.connect().await?;
        let cluster = |service| registry::cluster(&registry, service, &rpc::ClusterConfig::default(), &security);
        let users = UserServiceClient::new(cluster(USER_SERVICE));
        let stock = StockServiceClient::new(cluster(STOCK_SERVICE)).with_credential(operator.clone());
        let orders = OrderServiceClient::new(cluster(ORDER_SERVICE)).with_credential(operator);
        let database = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy(settings.database.url.expose_secret())
            .context("the database URL")?;
        let rules = RuleStore::new(redis.clone(), settings.redis.keyspace().rules());
        let demo = DemoRunner::new(settings.gateway_url.clone());
        let http = reqwest::Client::builder().pool_max_idle_per_host(4).build()?;
        let interval = settings.interval.max(Duration::from_millis(100));
        let gatherer = Gatherer {
            http,
            scrape: settings.scrape.clone(),
            nodes: NodeSource::new(&registry),
            sale: SaleSource::new(stock, orders, settings.goods_shown.max(1)),
            queue: QueueSource::new(
                settings.broker.url.clone(),
                settings.broker.management_url.as_ref(),
                &settings.broker.prefix,
            ),
            postgres: PostgresSource::new(database),
            rules: rules.clone(),
            scenario: ScenarioSource::new(redis.clone(), settings.redis.keyspace().scenario()),
            demo: demo.state.clone(),
            interval,
            keep: (settings.history.as_millis() / interval.as_millis()).max(1) as usize,
        };
        let (sender, published) = watch::channel(Arc::new(Published::default()));
        tokio::spawn(gatherer.run(sender));
        let state = web::Data::new(AppState {
            users,
            jwt: JwtKeys::new(&settings.jwt),
            rules,
            published,
            demo,
            development_login: settings.development_login(),
        });
        let listener = TcpListener::bind(&settings.listen).with_context(|| format!("binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(16 * 1024)
                        .error_handler(|err, _| Problem::validation(err.to_string()).into()),
                )
                .configure(crate::routes::configure)
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(Problem::not_found("no such route"))
                }))
        })
        .listen(listener)?
        .workers(2)
        .disable_signals()
        .shutdown_timeout(5)
        .run();
        tracing::info!(port, "dashboard listening");
        Ok(Application { port, server })
    }

    /// The HTTP port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then stops (open streams are closed).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown.await;
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)?
    }

    /// Serves in the background (tests); the handle stops it.
    pub fn spawn(self) -> actix_web::dev::ServerHandle {
        let handle = self.server.handle();
        tokio::spawn(self.server);
        handle
    }
}
