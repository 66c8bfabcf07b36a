//! user-service: accounts with argon2id password hashes, and JWT sessions.
//!
//! # Layout
//!
//! - [`settings`]: configuration (`SECKILL_*`).
//! - [`startup`]: [`Application`]: pools, migrations, admin bootstrap, the RPC server.
//! - [`service`]: the `UserService` RPC implementation.
//! - [`password`]: argon2id hashing off the async threads.
//! - [`username`]: the validated `Username` newtype.
//! - [`store`]: the `users` table.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod password;
pub mod service;
pub mod settings;
pub mod startup;
pub mod store;
pub mod username;

pub use self::settings::Settings;
pub use self::startup::Application;
