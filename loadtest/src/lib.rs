//! The parts of the load tool that other crates use as well: the gateway's HTTP API as a load
//! driver sees it ([`http`]), a crowd of buyers arriving at a steady rate ([`crowd`]), and a
//! whole Seckill stack inside one process ([`sandbox`]). The `loadtest` binary (audit,
//! benchmarks, drills, scenarios) is built on them; so are the dashboard's demo sale and its
//! tests.

#![forbid(unsafe_code)]

pub mod crowd;
pub mod http;
pub mod sandbox;
