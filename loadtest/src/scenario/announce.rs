//! Tells the dashboard which scenario runs and, once done, its figures: the scenario's status in
//! the system's Redis (`sk:scenario`, [`contracts::scenario::ScenarioStatus`]), for an hour. The
//! scenarios' own stacks are throwaway ones; this key is where a dashboard of the dev stack
//! looks. Without Redis the scenario runs all the same, unannounced.

use contracts::keyspace::{DEFAULT_PREFIX, Keyspace};
use contracts::scenario::{ScenarioStatus, VariantFigures};
use deadpool_redis::redis::AsyncCommands;

use super::{Outcome, Scenario};

/// How long an announcement stays.
const KEEP_SECS: u64 = 3_600;

/// Writes the announcements.
pub(super) struct Announcer {
    redis: Option<deadpool_redis::Pool>,
    key: String,
}

impl Announcer {
    /// An announcer on the default Redis (none if it does not answer).
    pub(super) async fn connect() -> Announcer {
        let settings = platform::redis::RedisSettings::default();
        let redis = platform::redis::connect(&settings.url, 1).await.ok();
        Announcer { redis, key: Keyspace::new(DEFAULT_PREFIX).scenario() }
    }

    /// `scenario` has started.
    pub(super) async fn started(&self, scenario: &Scenario) -> ScenarioStatus {
        let status = ScenarioStatus {
            name: scenario.name.into(),
            title: scenario.title.into(),
            phase: "running".into(),
            started_at_ms: chrono::Utc::now().timestamp_millis(),
            verdict: None,
            variants: Vec::new(),
        };
        self.write(&status).await;
        status
    }

    /// It ended with `outcome`.
    pub(super) async fn finished(&self, mut status: ScenarioStatus, outcome: &Outcome) {
        status.phase = if outcome.reproduced && outcome.fixed { "done" } else { "failed" }.into();
        status.verdict = Some(outcome.verdict.clone());
        status.variants = outcome
            .variants
            .iter()
            .map(|v| VariantFigures {
                variant: v.variant.clone(),
                orders: v.orders,
                oversold: v.oversold,
                accepted_rate: v.accepted_rate,
                p99_ms: v.p99_ms,
                own: v.own.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect(),
            })
            .collect();
        self.write(&status).await;
    }

    /// It could not run to the end.
    pub(super) async fn broke(&self, mut status: ScenarioStatus, err: &anyhow::Error) {
        status.phase = "failed".into();
        status.verdict = Some(format!("{err:#}"));
        self.write(&status).await;
    }

    async fn write(&self, status: &ScenarioStatus) {
        let Some(redis) = &self.redis else { return };
        let (Ok(mut conn), Ok(json)) = (redis.get().await, serde_json::to_string(status)) else { return };
        let written: Result<(), _> = conn.set_ex(&self.key, json, KEEP_SECS).await;
        if let Err(err) = written {
            tracing::debug!(%err, "scenario not announced");
        }
    }
}
