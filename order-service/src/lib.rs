//! order-service and the order workers.
//!
//! # Layout
//!
//! - [`settings`]: configuration of both binaries (`SECKILL_*`).
//! - [`startup`]: [`Application`] (the RPC service) and [`WorkerApplication`] (consumers and the
//!   reconciler).
//! - [`service`]: `OrderService`: `place` = reserve + publisher-confirmed message, `result`, `get_order`.
//! - [`broker`]: the RabbitMQ topology (quorum queue, dead-letter exchange and queue) and the
//!   confirm-mode publisher.
//! - [`worker`]: consumers that write orders in batches (`worker::writer`) and settle messages.
//! - [`results`]: order outcomes in Redis, for polling.
//! - [`reconciler`]: rebuilds lost sale states, releases orphaned reservations.
//! - [`store`]: the `orders` table and the stock guard.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod broker;
pub mod reconciler;
pub mod results;
pub mod service;
pub mod settings;
pub mod startup;
pub mod store;
pub mod worker;

pub use self::settings::Settings;
pub use self::startup::{Application, WorkerApplication};
