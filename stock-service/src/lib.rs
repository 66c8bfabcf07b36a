//! stock-service: the goods catalogue (PostgreSQL) and the sale state (Redis).
//!
//! # Layout
//!
//! - [`settings`]: configuration (`SECKILL_*`).
//! - `startup`: [`Application`]: pools, migrations, the RPC server, the warm-up scheduler.
//! - `service`: the `StockService` RPC implementation.
//! - `catalog`: the `goods` and `seckill_goods` tables, and the locked snapshot a sale state is
//!   built from.
//! - `sale`: the sale state in Redis and its five Lua scripts (`reserve`, `release`, `claim`,
//!   `build`, `take`), and the stock buckets; key names come from `contracts::keyspace`.
//! - `scheduler`: the warm-up scheduler: each sale warmed up a lead time before its start, once
//!   across every instance (the goods' advisory lock), and a lost sale state rebuilt.
//! - `single_flight`: one rebuild at a time per goods.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

mod catalog;
mod sale;
mod scheduler;
mod service;
pub mod settings;
mod single_flight;
mod startup;

pub use self::sale::RESERVE_SCRIPT;
pub use self::settings::Settings;
pub use self::startup::Application;
