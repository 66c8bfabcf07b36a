//! RabbitMQ: the order queue's depth and consumers by passive declare (AMQP, always there), and
//! its rates from the management HTTP API when that is enabled.

use contracts::keyspace::OrderQueues;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::snapshot::{QueuePanel, QueueRates, Source};

/// Reads the order queue.
pub(crate) struct QueueSource {
    url: SecretString,
    management: Option<(reqwest::Url, Option<String>, Option<String>)>,
    names: OrderQueues,
    /// Kept between reads, opened again after a failure.
    channel: Mutex<Option<(Connection, Channel)>>,
}

impl QueueSource {
    /// The queues named under `prefix` on the broker at `url`; rates from `management` if set.
    pub(crate) fn new(url: SecretString, management: Option<&SecretString>, prefix: &str) -> QueueSource {
        let management = management.and_then(|url| {
            let mut parsed = reqwest::Url::parse(url.expose_secret()).ok()?;
            let user = Some(parsed.username().to_owned()).filter(|user| !user.is_empty());
            let password = parsed.password().map(str::to_owned);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            Some((parsed, user, password))
        });
        QueueSource { url, management, names: OrderQueues::new(prefix), channel: Mutex::new(None) }
    }

    /// The order queue now.
    pub(crate) async fn read(&self, http: &reqwest::Client) -> Source<QueuePanel> {
        let depths = self.depths().await;
        let (depth, consumers, dead_letters) = match depths {
            Ok(depths) => depths,
            Err(err) => return Source::Unreachable(format!("RabbitMQ: {err}")),
        };
        let rates = match &self.management {
            None => Source::Unreachable("management API not configured (SECKILL_BROKER__MANAGEMENT_URL)".into()),
            Some(management) => Source::from_result(self.rates(http, management).await),
        };
        Source::Ok(QueuePanel { queue: self.names.queue.clone(), depth, consumers, dead_letters, rates })
    }

    async fn depths(&self) -> Result<(u32, u32, u32), lapin::Error> {
        let mut slot = self.channel.lock().await;
        if slot.as_ref().is_none_or(|(connection, _)| !connection.status().connected()) {
            let connection = Connection::connect(self.url.expose_secret(), ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            *slot = Some((connection, channel));
        }
        let Some((_, channel)) = slot.as_ref() else { unreachable!("just opened") };
        let read = async {
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            let queue = channel.queue_declare(self.names.queue.as_str().into(), passive, FieldTable::default()).await?;
            let dead =
                channel.queue_declare(self.names.dead_queue.as_str().into(), passive, FieldTable::default()).await?;
            Ok((queue.message_count(), queue.consumer_count(), dead.message_count()))
        };
        let result = read.await;
        if result.is_err() {
            // A failed passive declare (no such queue yet) closes the channel: open a new one next time.
            *slot = None;
        }
        result
    }

    async fn rates(
        &self,
        http: &reqwest::Client,
        (base, user, password): &(reqwest::Url, Option<String>, Option<String>),
    ) -> Result<QueueRates, String> {
        let vhost = self.vhost();
        let url = base
            .join(&format!("api/queues/{}/{}", encode(&vhost), encode(&self.names.queue)))
            .map_err(|err| err.to_string())?;
        let mut request = http.get(url).timeout(std::time::Duration::from_millis(800));
        if let Some(user) = user {
            request = request.basic_auth(user, password.as_deref());
        }
        let response = request.send().await.map_err(|err| format!("management API: {err}"))?;
        if !response.status().is_success() {
            return Err(format!("management API: HTTP {}", response.status()));
        }
        let queue: ManagementQueue = response.json().await.map_err(|err| format!("management API: {err}"))?;
        let stats = queue.message_stats.unwrap_or_default();
        Ok(QueueRates {
            publish: stats.publish_details.map_or(0.0, |d| d.rate),
            deliver: stats.deliver_get_details.map_or(0.0, |d| d.rate),
            ack: stats.ack_details.map_or(0.0, |d| d.rate),
            unacked: queue.messages_unacknowledged,
        })
    }

    /// The virtual host of the AMQP URL (`/` when it names none).
    fn vhost(&self) -> String {
        let url = self.url.expose_secret();
        let path = url.split_once("://").map_or("", |(_, rest)| rest).split_once('/').map_or("", |(_, path)| path);
        match path {
            "" | "%2f" | "%2F" => "/".to_owned(),
            other => other.to_owned(),
        }
    }
}

fn encode(segment: &str) -> String {
    segment.replace('%', "%25").replace('/', "%2F")
}

#[derive(Deserialize)]
struct ManagementQueue {
    #[serde(default)]
    messages_unacknowledged: u64,
    message_stats: Option<MessageStats>,
}

#[derive(Default, Deserialize)]
struct MessageStats {
    publish_details: Option<Rate>,
    deliver_get_details: Option<Rate>,
    ack_details: Option<Rate>,
}

#[derive(Deserialize)]
struct Rate {
    rate: f64,
}
