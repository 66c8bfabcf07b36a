//! The scenario `loadtest scenario` announces in Redis (`{prefix}:scenario`): its name, phase,
//! and once done its before/after figures.

use contracts::scenario::ScenarioStatus;
use deadpool_redis::Pool;
use deadpool_redis::redis::AsyncCommands;

use crate::snapshot::Source;

/// Reads the announcement.
pub(crate) struct ScenarioSource {
    redis: Pool,
    key: String,
}

impl ScenarioSource {
    /// The announcement at `key`.
    pub(crate) fn new(redis: Pool, key: String) -> ScenarioSource {
        ScenarioSource { redis, key }
    }

    /// The scenario running or last run (within the hour), if any.
    pub(crate) async fn read(&self) -> Source<Option<ScenarioStatus>> {
        let read = async {
            let mut conn = self.redis.get().await.map_err(|err| err.to_string())?;
            let json: Option<String> = conn.get(&self.key).await.map_err(|err| err.to_string())?;
            json.map(|json| serde_json::from_str(&json).map_err(|err| err.to_string())).transpose()
        };
        Source::from_result(read.await.map_err(|err| format!("scenario: {err}")))
    }
}
