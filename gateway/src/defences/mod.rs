//! The seckill defences, cheapest first: what turns a crowd (and its bots) away before it costs
//! the services anything.
//!
//! - [`LocalLimits`]: a global and a per-IP rate in this process (governor; no I/O).
//! - [`SoldOutFlags`]: the in-process sold-out flag per goods, cleared by restock notices.
//! - [`UserGate`]: per-user (and optionally per-IP) anti-brush window and token bucket, and the
//!   blacklist for repeat offenders (one Redis script, shared by every gateway, that also runs
//!   the route's own Redis step in the same round trip); [`Blacklist`]:
//!   listing and lifting its entries.
//! - [`SignInGuard`]: attempts per IP and failed logins per username on `register` and `login`.
//! - [`Captchas`]: a PNG per (user, goods), single-use answers, wrong answers counted.
//! - hidden paths ([`PathError`]): the single-use seckill path an order must carry, stored and
//!   used up by the gate's scripts ([`Then`]).
//!
//! Each has its own small error type; `problem::defences` turns them into problems.

mod blacklist;
mod captcha;
mod local_limits;
mod path_token;
mod sign_in;
mod sold_out;
mod user_gate;

pub(crate) use self::blacklist::{Blacklist, Entry};
pub(crate) use self::captcha::{CaptchaError, Captchas};
pub(crate) use self::local_limits::LocalLimits;
pub(crate) use self::path_token::PathError;
pub(crate) use self::sign_in::{SignInError, SignInGuard};
pub(crate) use self::sold_out::SoldOutFlags;
pub(crate) use self::user_gate::{GateError, GateParts, Refused, Then, UserGate};
