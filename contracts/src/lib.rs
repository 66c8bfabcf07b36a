//! The contracts between Seckill's programs: what crosses a process boundary, and its names.
//!
//! # Layout
//!
//! - [`user`], [`stock`], [`order`]: each service's RPC trait (`#[rpc::service]`) with its
//!   messages and errors, used by the server that implements it and every client that calls it.
//! - [`audit`]: the invariants of a sale's figures (no oversell, no duplicate, stores agree).
//! - [`identity`]: who a call comes from ([`Principal`]: a user with a role, or a [`Service`])
//!   and what each may do.
//! - [`scenario`]: the scenario `loadtest` is running, as the dashboard shows it.
//! - [`names`]: the service names as registered and addressed on the wire.
//! - [`keyspace`]: every Redis key, pub/sub channel, PostgreSQL advisory lock and RabbitMQ name
//!   more than one place uses (the tables of `docs/data.md`).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod audit;
pub mod identity;
pub mod keyspace;
pub mod names;
pub mod order;
pub mod scenario;
pub mod stock;
pub mod user;

pub use self::identity::{Actor, Denied, Principal, Role, Service};
