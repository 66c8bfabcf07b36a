//! RabbitMQ: the topology (names from [`contracts::keyspace::OrderQueues`]), and a publisher that
//! reports success only on the broker's confirm.
//!
//! The order queue is declared with the arguments that never change (quorum, its dead-letter
//! exchange) and nothing else: its delivery limit is a policy (`seckill-orders`, set by the
//! `rabbitmq-policy` service of docker-compose.yml; dev-up leaves the machine's RabbitMQ as it
//! is), which an operator can change on a live queue.
//!
//! Payment timers: each written order's [`ExpiryMessage`] waits in a quorum queue of its goods'
//! payment window (`{p}.orders.unpaid.<window>s`) whose message TTL is that window, and is
//! dead-lettered (at least once) into `{p}.orders.expired` when it runs out. One queue per window,
//! because a queue expires only the message at its head: with mixed windows in one queue a
//! 15-minute timer would hold back every 5-second one behind it. A wait queue deletes itself when
//! unused for twice its window plus ten minutes (`x-expires`), and is declared again by a
//! publisher long before that, so windows no goods uses any more leave nothing behind. (The
//! delayed-message plugin would do with one exchange, but it is not part of RabbitMQ, not
//! installed here, and keeps its messages on one node only, unreplicated.) A queue argument, once
//! declared, can never change: a newer version declaring other arguments than the running queue
//! has would fail to start with PRECONDITION_FAILED. Should that happen anyway (a queue declared
//! by an older version, with `x-delivery-limit`), the queue is used as it is, with a warning.

use std::sync::Mutex;
use std::time::Duration;

use std::collections::HashMap;
use std::time::Instant;

use contracts::keyspace::OrderQueues;
use contracts::order::{ExpiryMessage, OrderMessage};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};

use crate::settings::BrokerSettings;

const ROUTING_KEY: &str = OrderQueues::ROUTING_KEY;

/// The exchanges and queues of the order pipeline, as the settings say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Their names.
    pub names: OrderQueues,
}

impl Topology {
    /// The topology the broker settings describe: every process of one system declares the same.
    pub fn new(settings: &BrokerSettings) -> Topology {
        Topology { names: OrderQueues::new(&settings.prefix) }
    }

    /// Declares everything (idempotent; safe from every process at start-up), on a channel of
    /// its own: a refused declaration closes its channel.
    pub async fn declare(&self, connection: &Connection) -> lapin::Result<()> {
        let channel = connection.create_channel().await?;
        let declared = self.declare_on(connection, &channel).await;
        let _ = channel.close(200, "declared".into()).await;
        declared
    }

    async fn declare_on(&self, connection: &Connection, channel: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        channel
            .exchange_declare(self.names.exchange.as_str().into(), ExchangeKind::Direct, durable, FieldTable::default())
            .await?;
        channel
            .exchange_declare(
                self.names.dead_exchange.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        let durable_queue = QueueDeclareOptions { durable: true, ..Default::default() };
        channel.queue_declare(self.names.dead_queue.as_str().into(), durable_queue, FieldTable::default()).await?;
        channel
            .queue_bind(
                self.names.dead_queue.as_str().into(),
                self.names.dead_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.names.expired_exchange.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel.queue_declare(self.names.expired_queue.as_str().into(), durable_queue, quorum()).await?;
        channel
            .queue_bind(
                self.names.expired_queue.as_str().into(),
                self.names.expired_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut arguments = FieldTable::default();
        // A quorum queue replicates across a cluster and counts deliveries itself.
        arguments.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(self.names.dead_exchange.as_str())),
        );
        let queue = self.names.queue.as_str();
        let channel = match channel.queue_declare(queue.into(), durable_queue, arguments).await {
            Ok(_) => channel.clone(),
            Err(err) if precondition_failed(&err) => {
                tracing::warn!(
                    queue,
                    %err,
                    "the order queue exists with other arguments (an earlier version declared it): using it as \
                     it is; set its delivery limit by policy, and recreate it when it is empty to drop the old ones"
                );
                let channel = connection.create_channel().await?;
                let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                channel.queue_declare(queue.into(), passive, FieldTable::default()).await?;
                channel
            }
            Err(err) => return Err(err),
        };
        channel
            .queue_bind(
                self.names.queue.as_str().into(),
                self.names.exchange.as_str().into(),
                ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

impl Topology {
    /// Declares the wait queue of a `window_secs` payment window (idempotent).
    pub async fn declare_unpaid_queue(&self, channel: &Channel, window_secs: u32) -> lapin::Result<String> {
        let queue = self.names.unpaid_queue(window_secs);
        let window_ms = i64::from(window_secs) * 1000;
        let mut arguments = quorum();
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(window_ms));
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(self.names.expired_exchange.as_str())),
        );
        // Kept by the queue until the expired queue has it: a timer is not lost between the two.
        arguments.insert("x-dead-letter-strategy".into(), AMQPValue::LongString(LongString::from("at-least-once")));
        arguments.insert("x-overflow".into(), AMQPValue::LongString(LongString::from("reject-publish")));
        arguments
            .insert("x-expires".into(), AMQPValue::LongLongInt(unpaid_queue_expiry(window_secs).as_millis() as i64));
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        channel.queue_declare(queue.as_str().into(), durable, arguments).await?;
        Ok(queue)
    }

    /// Deletes the queues and exchanges, and the wait queues of `windows` (seconds).
    pub async fn delete(&self, channel: &Channel, windows: &[u32]) -> lapin::Result<()> {
        let unpaid: Vec<String> = windows.iter().map(|window| self.names.unpaid_queue(*window)).collect();
        for queue in [&self.names.queue, &self.names.dead_queue, &self.names.expired_queue].into_iter().chain(&unpaid) {
            channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await?;
        }
        for exchange in [&self.names.exchange, &self.names.dead_exchange, &self.names.expired_exchange] {
            channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await?;
        }
        Ok(())
    }

    /// Deletes the queues and exchanges under `settings` from the broker, if it answers (tests
    /// and benchmarks clean up with this), with the wait queues of the payment windows in
    /// `windows` (seconds; any other deletes itself, unused, within twice its window plus ten
    /// minutes).
    pub async fn remove(settings: &BrokerSettings, windows: &[u32]) {
        let topology = Topology::new(settings);
        if let Ok(connection) = connect(&settings.url).await {
            if let Ok(channel) = connection.create_channel().await {
                let _ = topology.delete(&channel, windows).await;
                close(&connection, channel).await;
            }
        }
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letters(&self, channel: &Channel) -> lapin::Result<u32> {
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let queue =
            channel.queue_declare(self.names.dead_queue.as_str().into(), passive, FieldTable::default()).await?;
        Ok(queue.message_count())
    }
}

/// A publish the broker must route somewhere (else it comes back, and is not "stored").
fn mandatory() -> BasicPublishOptions {
    BasicPublishOptions { mandatory: true, ..Default::default() }
}

/// A persistent JSON message.
fn persistent(message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_message_id(ShortString::from(message_id))
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(2)
}

/// The arguments of a quorum queue.
fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
    arguments
}

/// How long a wait queue lives unused: twice its window plus ten minutes. Publishers declare it
/// again at a quarter of that, so it never goes while a timer waits in it (a timer waits at most
/// one window).
fn unpaid_queue_expiry(window_secs: u32) -> Duration {
    Duration::from_secs(2 * u64::from(window_secs) + 600)
}

/// Whether the broker refused a declaration because the object exists with other arguments.
fn precondition_failed(err: &lapin::Error) -> bool {
    matches!(err.kind(), ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

/// Closes a channel, then its connection. In that order, and each to completion: a channel
/// dropped while its connection closes tries to close itself too late and lapin logs an error.
pub async fn close(connection: &Connection, channel: Channel) {
    let _ = channel.close(200, "closing".into()).await;
    drop(channel);
    let _ = connection.close(200, "closing".into()).await;
}

/// Connects to the broker.
pub async fn connect(url: &SecretString) -> lapin::Result<Connection> {
    Connection::connect(url.expose_secret(), ConnectionProperties::default()).await
}

/// Why a message is not known to be safely with the broker.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Could not connect or send.
    #[error("broker unreachable: {0}")]
    Unreachable(String),
    /// The broker refused it (nack) or could not route it.
    #[error("broker refused the message: {0}")]
    Refused(String),
    /// No confirm within the timeout: the message may or may not be stored.
    #[error("no confirm from the broker within {0:?}")]
    Unconfirmed(Duration),
}

/// Publishes order messages on one confirm-mode channel, reconnecting on demand after a failure.
#[derive(Debug)]
pub struct Publisher {
    url: SecretString,
    topology: Topology,
    confirm_timeout: Duration,
    channel: Mutex<Option<(Connection, Channel)>>,
    /// Serialises reconnects so a broken broker is not dialled by every caller at once.
    reconnect: tokio::sync::Mutex<()>,
    /// Wait for the broker's confirm (off only with `SECKILL_WITHOUT__PUBLISHER_CONFIRMS`).
    confirms: bool,
    /// When each payment window's wait queue was last declared.
    unpaid_queues: Mutex<HashMap<u32, Instant>>,
}

impl Publisher {
    /// A publisher; connects (and declares the topology) at once, so start-up fails clearly when
    /// the broker is unreachable.
    pub async fn connect(settings: &BrokerSettings) -> lapin::Result<Publisher> {
        Publisher::connect_with(settings, true).await
    }

    /// [`Publisher::connect`]; with `confirms` false, fire and forget: a publish returns once the
    /// message is handed to the connection (`SECKILL_WITHOUT__PUBLISHER_CONFIRMS`, demonstrations
    /// only: messages in flight when the link fails are lost).
    pub async fn connect_with(settings: &BrokerSettings, confirms: bool) -> lapin::Result<Publisher> {
        let publisher = Publisher {
            url: settings.url.clone(),
            topology: Topology::new(settings),
            confirm_timeout: settings.confirm_timeout,
            channel: Mutex::new(None),
            reconnect: tokio::sync::Mutex::new(()),
            confirms,
            unpaid_queues: Mutex::new(HashMap::new()),
        };
        publisher.open().await?;
        Ok(publisher)
    }

    async fn open(&self) -> lapin::Result<Channel> {
        let connection = connect(&self.url).await?;
        self.topology.declare(&connection).await?;
        let channel = connection.create_channel().await?;
        if self.confirms {
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        *self.channel.lock().unwrap_or_else(|p| p.into_inner()) = Some((connection, channel.clone()));
        Ok(channel)
    }

    fn current(&self) -> Option<Channel> {
        let guard = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().filter(|(_, channel)| channel.status().connected()).map(|(_, channel)| channel.clone())
    }

    async fn channel(&self) -> Result<Channel, PublishError> {
        if let Some(channel) = self.current() {
            return Ok(channel);
        }
        let _one_at_a_time = self.reconnect.lock().await;
        if let Some(channel) = self.current() {
            return Ok(channel);
        }
        let reconnect = tokio::time::timeout(self.confirm_timeout, self.open());
        match reconnect.await {
            Ok(Ok(channel)) => {
                tracing::info!("reconnected to the broker");
                Ok(channel)
            }
            Ok(Err(err)) => Err(PublishError::Unreachable(err.to_string())),
            Err(_) => Err(PublishError::Unreachable(format!("no connection within {:?}", self.confirm_timeout))),
        }
    }

    /// Closes the connection cleanly (dropping it would make the broker log an abrupt close).
    pub async fn close(&self) {
        let open = self.channel.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((connection, channel)) = open {
            close(&connection, channel).await;
        }
    }

    /// Publishes one persistent order message (message id = ticket) and waits for the confirm.
    pub async fn publish(&self, message: &OrderMessage) -> Result<(), PublishError> {
        self.publish_within(message, None).await
    }

    /// [`Publisher::publish`], waiting at most `patience` (if shorter than the confirm timeout).
    pub async fn publish_within(&self, message: &OrderMessage, patience: Option<Duration>) -> Result<(), PublishError> {
        let timeout = patience.map_or(self.confirm_timeout, |patience| patience.min(self.confirm_timeout));
        let payload = serde_json::to_vec(message).map_err(|e| PublishError::Refused(e.to_string()))?;
        let channel = self.channel().await?;
        let exchange = self.topology.names.exchange.as_str();
        self.send(&channel, exchange, ROUTING_KEY, &message.ticket.to_string(), &payload, timeout).await
    }

    /// Starts payment timers, each (message, window in seconds): a message waits in its window's
    /// queue and reaches the workers when the window closes. All are sent before any confirm is
    /// awaited; returns once the broker confirmed every one.
    pub async fn publish_timers(&self, timers: &[(ExpiryMessage, u32)]) -> Result<(), PublishError> {
        if timers.is_empty() {
            return Ok(());
        }
        let channel = self.channel().await?;
        let timeout = self.confirm_timeout;
        tokio::time::timeout(timeout, async {
            let mut confirms = Vec::with_capacity(timers.len());
            for (message, window_secs) in timers {
                let queue = self.unpaid_queue(&channel, *window_secs).await?;
                let payload = serde_json::to_vec(message).map_err(|e| PublishError::Refused(e.to_string()))?;
                // The default exchange routes by queue name.
                let confirm = channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        mandatory(),
                        &payload,
                        persistent(&format!("timer-{}-{}", message.goods_id, message.order_ids.first().unwrap_or(&0))),
                    )
                    .await
                    .map_err(|e| PublishError::Unreachable(e.to_string()))?;
                confirms.push(confirm);
            }
            for confirm in confirms {
                self.check(confirm.await.map_err(|e| PublishError::Unreachable(e.to_string()))?)?;
            }
            Ok(())
        })
        .await
        .map_err(|_| PublishError::Unconfirmed(timeout))?
    }

    /// The wait queue of `window_secs`, declared if this publisher has not declared it lately.
    async fn unpaid_queue(&self, channel: &Channel, window_secs: u32) -> Result<String, PublishError> {
        let redeclare_after = unpaid_queue_expiry(window_secs) / 4;
        let fresh = {
            let declared = self.unpaid_queues.lock().unwrap_or_else(|p| p.into_inner());
            declared.get(&window_secs).is_some_and(|at| at.elapsed() < redeclare_after)
        };
        if fresh {
            return Ok(self.topology.names.unpaid_queue(window_secs));
        }
        let queue = self
            .topology
            .declare_unpaid_queue(channel, window_secs)
            .await
            .map_err(|e| PublishError::Unreachable(e.to_string()))?;
        self.unpaid_queues.lock().unwrap_or_else(|p| p.into_inner()).insert(window_secs, Instant::now());
        Ok(queue)
    }

    /// Publishes one persistent JSON message and waits up to `timeout` for the confirm.
    async fn send(
        &self,
        channel: &Channel,
        exchange: &str,
        routing_key: &str,
        message_id: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let started = std::time::Instant::now();
        let confirmed = tokio::time::timeout(timeout, async {
            let confirm = channel
                .basic_publish(exchange.into(), routing_key.into(), mandatory(), payload, persistent(message_id))
                .await
                .map_err(|e| PublishError::Unreachable(e.to_string()))?;
            confirm.await.map_err(|e| PublishError::Unreachable(e.to_string()))
        })
        .await
        .map_err(|_| PublishError::Unconfirmed(timeout))??;
        // Publish to confirm: what a purchase waits for the broker (a quorum queue confirms once
        // its log is synced on a majority).
        metrics::histogram!("broker_confirm_seconds").record(started.elapsed().as_secs_f64());
        self.check(confirmed)
    }

    /// What the broker's answer to one publish means.
    fn check(&self, confirmed: lapin::Confirmation) -> Result<(), PublishError> {
        match confirmed {
            lapin::Confirmation::Ack(None) => Ok(()),
            lapin::Confirmation::Ack(Some(_)) => Err(PublishError::Refused("unroutable".into())),
            lapin::Confirmation::Nack(_) => Err(PublishError::Refused("nack".into())),
            // Fire and forget: handed to the connection is all it knows.
            lapin::Confirmation::NotRequested if !self.confirms => Ok(()),
            lapin::Confirmation::NotRequested => Err(PublishError::Refused("confirms are off".into())),
        }
    }
}
