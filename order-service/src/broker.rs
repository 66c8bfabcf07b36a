//! RabbitMQ: the topology (names from [`contracts::keyspace::OrderQueues`]), and a publisher that
//! reports success only on the broker's confirm.
//!
//! The order queue is declared with the arguments that never change (quorum, its dead-letter
//! exchange) and nothing else: its delivery limit is a policy (`seckill-orders`, set by the
//! `rabbitmq-policy` service of docker-compose.yml; dev-up leaves the machine's RabbitMQ as it
//! is), which an operator can change on a live queue. A queue argument, once
//! declared, can never change: a newer version declaring other arguments than the running queue
//! has would fail to start with PRECONDITION_FAILED. Should that happen anyway (a queue declared
//! by an older version, with `x-delivery-limit`), the queue is used as it is, with a warning.

use std::sync::Mutex;
use std::time::Duration;

use contracts::keyspace::OrderQueues;
use contracts::order::OrderMessage;
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
    /// Deletes the queues and exchanges.
    pub async fn delete(&self, channel: &Channel) -> lapin::Result<()> {
        for queue in [&self.names.queue, &self.names.dead_queue] {
            channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await?;
        }
        for exchange in [&self.names.exchange, &self.names.dead_exchange] {
            channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await?;
        }
        Ok(())
    }

    /// Deletes the queues and exchanges under `settings` from the broker, if it answers (tests
    /// and benchmarks clean up with this).
    pub async fn remove(settings: &BrokerSettings) {
        let topology = Topology::new(settings);
        if let Ok(connection) = connect(&settings.url).await {
            if let Ok(channel) = connection.create_channel().await {
                let _ = topology.delete(&channel).await;
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
        let properties = BasicProperties::default()
            .with_message_id(ShortString::from(message.ticket.to_string()))
            .with_content_type(ShortString::from("application/json"))
            .with_delivery_mode(2); // persistent
        let options = BasicPublishOptions { mandatory: true, ..Default::default() };
        let confirmed = tokio::time::timeout(timeout, async {
            let confirm = channel
                .basic_publish(
                    self.topology.names.exchange.as_str().into(),
                    ROUTING_KEY.into(),
                    options,
                    &payload,
                    properties,
                )
                .await
                .map_err(|e| PublishError::Unreachable(e.to_string()))?;
            confirm.await.map_err(|e| PublishError::Unreachable(e.to_string()))
        })
        .await
        .map_err(|_| PublishError::Unconfirmed(timeout))??;
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
