//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::auth::JwtKeys;
use common::contracts::order::OrderServiceClient;
use common::contracts::stock::StockServiceClient;
use common::contracts::user::UserServiceClient;
use deadpool_redis::Pool;
use metrics_exporter_prometheus::PrometheusHandle;
use rpc::Cluster;

use crate::captcha::Captchas;
use crate::goods_cache::GoodsCache;
use crate::limits::{LocalLimits, UserGate};
use crate::path_token::PathTokens;
use crate::sold_out::SoldOutFlags;

/// Shared state of one gateway process.
pub struct AppState {
    /// user-service.
    pub users: UserServiceClient<Cluster>,
    /// stock-service.
    pub stock: StockServiceClient<Cluster>,
    /// order-service.
    pub orders: OrderServiceClient<Cluster>,
    /// Redis.
    pub redis: Pool,
    /// JWT verification.
    pub jwt: JwtKeys,
    /// In-process rate limits.
    pub local_limits: LocalLimits,
    /// Per-user gate on the seckill endpoints.
    pub user_gate: UserGate,
    /// Captchas.
    pub captchas: Captchas,
    /// Hidden seckill paths.
    pub paths: PathTokens,
    /// Sold-out flags.
    pub sold_out: Arc<SoldOutFlags>,
    /// Cached goods.
    pub goods: GoodsCache,
    /// Counters that tests and /admin read.
    pub counters: Counters,
    /// Renders /metrics.
    pub metrics: PrometheusHandle,
    /// Largest body accepted.
    pub body_limit: usize,
}

/// Counters of what the order endpoint did, kept in process (and exported as metrics).
#[derive(Debug, Default)]
pub struct Counters {
    place_calls: AtomicU64,
    sold_out_answers: AtomicU64,
}

impl Counters {
    /// An order RPC is about to be sent.
    pub fn place_call(&self) {
        self.place_calls.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("gateway_place_calls_total").increment(1);
    }

    /// An order attempt was answered by the sold-out flag, without any RPC.
    pub fn sold_out_answer(&self) {
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
