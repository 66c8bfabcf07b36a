//! Rate limits, cheapest first: [`LocalLimits`] (in-process, no I/O) on every request, then
//! [`UserGate`] (one Redis script per call, shared by all gateway instances) on the seckill
//! endpoints.

mod local;
mod user_gate;

pub use self::local::LocalLimits;
pub use self::user_gate::UserGate;
