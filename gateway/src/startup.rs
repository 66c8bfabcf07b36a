//! Building and running the gateway, from tests as from `main`.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::error::{JsonPayloadError, PathError};
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use contracts::names::{ORDER_SERVICE, STOCK_SERVICE, USER_SERVICE};
use contracts::order::OrderServiceClient;
use contracts::stock::StockServiceClient;
use contracts::user::UserServiceClient;
use platform::auth::JwtKeys;
use platform::registry;
use platform::rules::{LiveRules, RuleStore};

use crate::defences::{Blacklist, Captchas, GateParts, LocalLimits, SignInGuard, SoldOutFlags, UserGate};
use crate::goods_cache::GoodsCache;
use crate::middleware::request_context;
use crate::problem::Problem;
use crate::settings::Settings;
use crate::state::{AppState, Counters};
use crate::{openapi, routes};

/// A running gateway.
pub struct Application {
    port: u16,
    server: Server,
    /// The `/metrics` listener, separate from the public one.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

impl Application {
    /// Connects to Redis and the registry, finds the services, and binds the HTTP listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.check_secrets()?;
        // The recorder first: what is recorded before it is installed is lost (the rules version).
        let metrics = platform::metrics::prometheus_handle()?;
        let security = settings.rpc.load()?;
        // The hot paths share one multiplexed connection; the rule store keeps a small pool.
        let redis = settings.redis.connect_shared().await?;
        let pool = settings.redis.connect().await?;
        let registry = settings.registry.connect().await?;
        let users = UserServiceClient::new(registry::cluster(&registry, USER_SERVICE, &settings.users, &security));
        let stock = StockServiceClient::new(registry::cluster(&registry, STOCK_SERVICE, &settings.stock, &security));
        let orders = OrderServiceClient::new(registry::cluster(&registry, ORDER_SERVICE, &settings.orders, &security));
        for mut discovery in [
            users.transport().discovery().clone(),
            stock.transport().discovery().clone(),
            orders.transport().discovery().clone(),
        ] {
            // Serve even if a service is not there yet: /readyz says so, calls answer 503.
            let _ = tokio::time::timeout(Duration::from_secs(2), discovery.ready()).await;
        }
        let keys = settings.redis.keyspace();
        let blacklist = Blacklist::new(redis.clone(), keys.clone());
        let sold_out = Arc::new(SoldOutFlags::default());
        if settings.without.single_flight {
            tracing::warn!("SECKILL_WITHOUT__SINGLE_FLIGHT: every request finding the goods cache expired reloads it");
        }
        if settings.without.captcha_and_path {
            tracing::warn!("SECKILL_WITHOUT__CAPTCHA_AND_PATH: orders are accepted without a captcha or a path");
        }
        tokio::spawn(sold_out.clone().follow_restocks(settings.redis.url.clone(), keys.restock_channel()));
        let rules = LiveRules::follow(RuleStore::new(pool, keys.rules()), settings.redis.url.clone()).await;
        let local_limits = LocalLimits::new(&settings.limits);
        let following = vec![
            rules.govern(vec![
                (users.transport().clone(), settings.users.clone()),
                (stock.transport().clone(), settings.stock.clone()),
                (orders.transport().clone(), settings.orders.clone()),
            ]),
            rules.apply({
                let (local_limits, configured) = (local_limits.clone(), settings.limits.clone());
                move |rules| {
                    let limits = &rules.rules.limits;
                    local_limits.set(
                        limits.global_per_sec.unwrap_or(configured.global_per_sec),
                        limits.per_ip_per_sec.unwrap_or(configured.per_ip_per_sec),
                    );
                }
            }),
        ];
        let state = web::Data::new(AppState {
            goods: GoodsCache::new(stock.clone(), settings.goods_cache_ttl, !settings.without.single_flight),
            users,
            stock,
            orders,
            identities: settings.rpc.identities(),
            jwt: JwtKeys::new(&settings.jwt),
            local_limits,
            user_gate: UserGate::new(
                redis.clone(),
                GateParts {
                    keys: keys.clone(),
                    limits: settings.limits.clone(),
                    captcha: settings.captcha.clone(),
                    path_ttl: settings.path_ttl,
                    rules: rules.clone(),
                    blacklist: blacklist.clone(),
                },
            ),
            blacklist,
            sign_in: SignInGuard::new(redis.clone(), keys.clone(), settings.sign_in.clone()),
            captchas: Captchas::new(redis.clone(), keys, settings.captcha.clone()),
            redis,
            sold_out,
            without: settings.without.clone(),
            rules,
            _following: following,
            counters: Counters::default(),
            metrics,
        });
        tokio::spawn(forget_idle_clients(state.local_limits.clone()));
        let listener = TcpListener::bind(&settings.listen).with_context(|| format!("binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let server_state = state.clone();
        let body_limit = settings.body_limit;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(server_state.clone())
                .app_data(json_config(body_limit))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|err: PathError, _| Problem::not_found(err.to_string()).into()),
                )
                .wrap(from_fn(request_context))
                .wrap(Compress::default())
                .configure(routes::configure)
                .configure(openapi::configure)
                .default_service(web::to(|| async { Problem::not_found("no such route") }))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(30);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        tracing::info!(port, "gateway listening");
        let metrics = settings.metrics_listen.map(|listen| metrics_server(listen, state.clone())).transpose()?;
        Ok(Application { port, server: server.run(), metrics, state })
    }

    /// The HTTP port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, if it is.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The shared state (tests read its counters).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then stops gracefully (in-flight requests finish).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        let metrics = self.metrics.map(|(_, metrics)| {
            let handle = metrics.handle();
            tokio::spawn(metrics);
            handle
        });
        shutdown.await;
        handle.stop(true).await;
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        server.await.map_err(std::io::Error::other)?
    }

    /// Starts serving in the background and returns a handle to stop it (tests).
    pub fn spawn(self) -> Running {
        let public = self.server.handle();
        tokio::spawn(self.server);
        let metrics = self.metrics.map(|(_, metrics)| {
            let handle = metrics.handle();
            tokio::spawn(metrics);
            handle
        });
        Running { public, metrics, rules: self.state.rules.clone() }
    }
}

/// A gateway serving in the background (see [`Application::spawn`]).
pub struct Running {
    public: ServerHandle,
    metrics: Option<ServerHandle>,
    rules: LiveRules,
}

impl Running {
    /// The version of the live rules this gateway follows now.
    pub fn rules_version(&self) -> u64 {
        self.rules.current().version
    }

    /// Stops both listeners; `graceful` lets requests in flight finish.
    pub async fn stop(&self, graceful: bool) {
        self.public.stop(graceful).await;
        if let Some(metrics) = &self.metrics {
            metrics.stop(graceful).await;
        }
    }
}

/// `GET /metrics` on its own listener (one worker: Prometheus scrapes it a few times a minute).
fn metrics_server(listen: std::net::SocketAddr, state: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(listen).with_context(|| format!("binding the metrics listener {listen}"))?;
    let port = listener.local_addr()?.port();
    let server =
        HttpServer::new(move || App::new().app_data(state.clone()).route("/metrics", web::get().to(routes::metrics)))
            .listen(listener)?
            .workers(1)
            .disable_signals()
            .run();
    tracing::info!(%listen, "serving Prometheus metrics at /metrics");
    Ok((port, server))
}

/// JSON bodies: size-limited (413), and malformed ones are a 400 problem, never a 500.
fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(move |err, _| {
        let problem = match &err {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                Problem::too_large(limit)
            }
            JsonPayloadError::ContentType => Problem::validation("expected Content-Type: application/json"),
            other => Problem::validation(other.to_string()),
        };
        problem.into()
    })
}

/// Forgets per-IP limiter entries of clients that went quiet.
async fn forget_idle_clients(local_limits: LocalLimits) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticker.tick().await;
        local_limits.forget_idle();
    }
}
