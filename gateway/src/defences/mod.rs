//! The seckill defences, cheapest first: what turns a crowd (and its bots) away before it costs
//! the services anything.
//!
//! - [`LocalLimits`]: a global and a per-IP rate in this process (governor; no I/O).
//! - [`SoldOutFlags`]: the in-process sold-out flag per goods, cleared by restock notices.
//! - [`UserGate`]: per-user anti-brush window and token bucket (one Redis script, shared by every
//!   gateway).
//! - [`Captchas`]: a PNG per (user, goods), single-use answers, wrong answers counted.
//! - [`PathTokens`]: the hidden, single-use seckill path an order must carry.
//!
//! Each has its own small error type; `problem::defences` turns them into problems.

mod captcha;
mod local_limits;
mod path_token;
mod sold_out;
mod user_gate;

pub(crate) use self::captcha::{CaptchaError, Captchas};
pub(crate) use self::local_limits::LocalLimits;
pub(crate) use self::path_token::{PathError, PathTokens};
pub(crate) use self::sold_out::SoldOutFlags;
pub(crate) use self::user_gate::{GateError, UserGate};
