//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use contracts::Actor;
use contracts::order::OrderServiceClient;
use contracts::stock::StockServiceClient;
use contracts::user::UserServiceClient;
use metrics_exporter_prometheus::PrometheusHandle;
use platform::auth::JwtKeys;
use platform::identity::Identities;
use platform::redis::Shared;
use rpc::Cluster;

use crate::defences::{Blacklist, Captchas, LocalLimits, SignInGuard, SoldOutFlags, UserGate};
use crate::goods_cache::GoodsCache;

/// Shared state of one gateway process.
pub struct AppState {
    /// user-service, anonymously (register, login).
    pub(crate) users: UserServiceClient<Cluster>,
    /// stock-service, anonymously (the catalogue).
    pub(crate) stock: StockServiceClient<Cluster>,
    /// order-service (always used for a caller: see [`AppState::orders_for`]).
    pub(crate) orders: OrderServiceClient<Cluster>,
    /// Mints the identity tokens of the users whose JWTs this gateway verified.
    pub(crate) identities: Identities,
    /// The shared Redis connection.
    pub(crate) redis: Shared,
    /// JWT verification.
    pub(crate) jwt: JwtKeys,
    /// In-process rate limits.
    pub(crate) local_limits: LocalLimits,
    /// Per-user gate on the seckill endpoints.
    pub(crate) user_gate: UserGate,
    /// Who is blacklisted, for the admin API.
    pub(crate) blacklist: Blacklist,
    /// Limits on register and login.
    pub(crate) sign_in: SignInGuard,
    /// Captchas.
    pub(crate) captchas: Captchas,
    /// Sold-out flags.
    pub(crate) sold_out: Arc<SoldOutFlags>,
    /// Defences turned off (demonstrations only).
    pub(crate) without: crate::settings::Without,
    /// Cached goods.
    pub(crate) goods: GoodsCache,
    /// The live rules (limits, degrade switches) this gateway follows.
    pub(crate) rules: platform::rules::LiveRules,
    /// The RPC clients and the local limits following the rules, for as long as the state lives.
    pub(crate) _following: Vec<platform::rules::Following>,
    /// Counters that tests and /admin read.
    pub counters: Counters,
    /// Renders /metrics (on the metrics listener, not the public one).
    pub(crate) metrics: PrometheusHandle,
}

impl AppState {
    /// order-service, the calls carrying `actor`'s identity (verified from a JWT just now).
    pub(crate) fn orders_for(&self, actor: Actor) -> OrderServiceClient<Cluster> {
        self.orders.clone().with_credential(self.identities.user_credential(actor))
    }

    /// order-service, the calls carrying the gateway's own identity (for what no user asks: the
    /// payment provider's callbacks).
    pub(crate) fn orders_as_gateway(&self) -> OrderServiceClient<Cluster> {
        self.orders.clone().with_credential(self.identities.service_credential(contracts::Service::Gateway))
    }

    /// stock-service, the calls carrying `actor`'s identity.
    pub(crate) fn stock_for(&self, actor: Actor) -> StockServiceClient<Cluster> {
        self.stock.clone().with_credential(self.identities.user_credential(actor))
    }

    /// user-service, the calls carrying `actor`'s identity.
    pub(crate) fn users_for(&self, actor: Actor) -> UserServiceClient<Cluster> {
        self.users.clone().with_credential(self.identities.user_credential(actor))
    }

    /// Whether this gateway currently answers orders for `goods_id` with its sold-out flag
    /// (never while the live rule `switches.sold_out_flag_off` is on).
    pub fn is_sold_out(&self, goods_id: i64) -> bool {
        !self.rules.current().rules.switches.sold_out_flag_off && self.sold_out.is_sold_out(goods_id)
    }

    /// The version of the live rules this gateway follows now.
    pub fn rules_version(&self) -> u64 {
        self.rules.current().version
    }

    /// Refuses the purchase steps while an operator has closed the sales.
    pub(crate) fn check_sales_open(&self) -> Result<(), crate::problem::Problem> {
        match self.rules.current().rules.switches.sales_closed {
            true => Err(crate::problem::Problem::sale_closed()),
            false => Ok(()),
        }
    }
}

/// Counters of what the order endpoint did, kept in process (and exported as metrics).
#[derive(Debug, Default)]
pub struct Counters {
    place_calls: AtomicU64,
    sold_out_answers: AtomicU64,
}

impl Counters {
    /// An order RPC is about to be sent.
    pub(crate) fn place_call(&self) {
        self.place_calls.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("gateway_place_calls_total").increment(1);
    }

    /// An order attempt was answered by the sold-out flag, without any RPC.
    pub(crate) fn sold_out_answer(&self) {
        self.sold_out_answers.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("gateway_sold_out_flag_answers_total").increment(1);
    }

    /// Order RPCs sent so far.
    pub fn place_calls(&self) -> u64 {
        self.place_calls.load(Ordering::Relaxed)
    }

    /// Attempts answered by the flag so far.
    pub fn sold_out_answers(&self) -> u64 {
        self.sold_out_answers.load(Ordering::Relaxed)
    }
}
