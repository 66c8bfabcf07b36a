//! user-service: accounts with argon2id password hashes, and JWT sessions.
//!
//! # Layout
//!
//! - [`settings`]: configuration (`SECKILL_*`).
//! - `startup`: [`Application`]: pools, migrations, admin bootstrap, the RPC server.
//! - `service`: the `UserService` RPC implementation.
//! - `password`: argon2id hashing off the async threads.
//! - `username`: the validated `Username` newtype.
//! - `store`: the `users` table.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

mod password;
mod service;
pub mod settings;
mod startup;
mod store;
mod username;

pub use self::settings::Settings;
pub use self::startup::Application;
