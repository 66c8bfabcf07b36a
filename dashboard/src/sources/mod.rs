//! Where the figures come from, one file per source: the programs' Prometheus endpoints
//! ([`prometheus`]), the registry and the nodes' ports ([`nodes`]), stock- and order-service
//! ([`sale`]), the scenario `loadtest` announces ([`scenario`]), RabbitMQ ([`queue`]), PostgreSQL ([`postgres`]). Each read either returns its
//! figures or says why it could not: a source that is down never stops the others.

pub(crate) mod nodes;
pub(crate) mod postgres;
pub(crate) mod prometheus;
pub(crate) mod queue;
pub(crate) mod sale;
pub(crate) mod scenario;
