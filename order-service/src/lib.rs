//! order-service and the order workers.
//!
//! # Layout
//!
//! - [`settings`]: configuration of both binaries (`SECKILL_*`).
//! - `startup`: [`Application`] (the RPC service) and [`WorkerApplication`] (consumers and the
//!   reconciler).
//! - `service`: `OrderService`: `place` = reserve + publisher-confirmed message, `result`, `get_order`.
//! - [`broker`]: the RabbitMQ topology (quorum queue, dead-letter exchange and queue) and the
//!   confirm-mode publisher.
//! - `worker`: consumers that write orders in batches and settle messages.
//! - [`snowflake`] and [`worker_lease`]: order ids, unique across workers through worker ids
//!   leased from Redis.
//! - [`results`]: order outcomes in Redis, for polling.
//! - [`reconciler`]: rebuilds lost sale states, releases orphaned reservations.
//! - [`store`]: the `orders` table and the stock guard.
//! - [`lifecycle`]: cancelling unpaid orders (by the buyer, by the payment timer) with their
//!   units returned to both stores; the safety sweep.
//! - [`payment`]: paying through a payment provider (the interface, the sandbox simulator, the
//!   signed callbacks).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod broker;
pub mod lifecycle;
pub mod payment;
pub mod reconciler;
pub mod results;
mod service;
pub mod settings;
pub mod snowflake;
mod startup;
pub mod store;
mod strategy;
mod worker;
pub mod worker_lease;

pub use self::settings::Settings;
pub use self::startup::{Application, WorkerApplication};
