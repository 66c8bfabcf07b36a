//! The dashboard against a real stack: every service, a worker and two gateways in this process
//! on the real PostgreSQL, Redis and RabbitMQ (`loadtest::sandbox`), and the dashboard on top.

mod aggregation;
mod browser;
mod rules;
mod support;
