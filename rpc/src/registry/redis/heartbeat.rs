//! Registration: write, read back, then keep the entry alive until told to stop.

use std::time::Instant;

use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{Keys, RedisRegistryConfig, scripts, with_timeout};
use crate::backoff::Backoff;
use crate::registry::{Instance, Registration, RegistryError};

/// One instance's entry, encoded once.
#[derive(Clone, Debug)]
struct Entry {
    instance: Instance,
    json: String,
    nodes: String,
    info: String,
    changes: String,
}

/// Registers `instance`, retrying with backoff until the entry is written *and* read back, then
/// starts the heartbeat.
pub(super) async fn register(
    mut conn: ConnectionManager,
    keys: Keys,
    config: RedisRegistryConfig,
    instance: Instance,
) -> Result<Registration, RegistryError> {
    let service = &instance.service;
    let entry = Entry {
        // Strings and integers only: encoding cannot fail.
        json: serde_json::to_string(&instance).unwrap_or_default(),
        nodes: keys.nodes(service),
        info: keys.info(service),
        changes: keys.changes(),
        instance: instance.clone(),
    };
    let attempts = config.register_attempts.max(1);
    let mut backoff = Backoff::new(config.register_backoff, config.register_backoff * 16);
    let mut last_error = None;
    for attempt in 1..=attempts {
        match write_and_verify(&mut conn, &entry, &config).await {
            Ok(true) => {
                tracing::info!(service = %instance.service, addr = %instance.addr, attempt, "registered");
                let stop = CancellationToken::new();
                let task = tokio::spawn(keep_alive(conn, entry, config, stop.clone()));
                return Ok(Registration::new(instance, stop, task));
            }
            Ok(false) => last_error = None,
            Err(err) => last_error = Some(err),
        }
        tracing::warn!(addr = %instance.addr, attempt, error = ?last_error, "registration not confirmed; retrying");
        if attempt < attempts {
            tokio::time::sleep(backoff.failed(Instant::now())).await;
        }
    }
    Err(match last_error {
        Some(last) => RegistryError::Unreachable { attempts, last },
        None => RegistryError::NotVerified { addr: instance.addr, attempts },
    })
}

/// Writes the entry, then reads it back: `Ok(false)` if Redis said yes but does not list it.
async fn write_and_verify(
    conn: &mut ConnectionManager,
    entry: &Entry,
    config: &RedisRegistryConfig,
) -> Result<bool, String> {
    with_timeout(config, heartbeat(conn, entry, config)).await?;
    let stored: Option<String> =
        with_timeout(config, redis::cmd("HGET").arg(&entry.info).arg(&entry.instance.addr).query_async(conn)).await?;
    let expiry: Option<f64> =
        with_timeout(config, redis::cmd("ZSCORE").arg(&entry.nodes).arg(&entry.instance.addr).query_async(conn))
            .await?;
    Ok(stored.as_deref() == Some(entry.json.as_str()) && expiry.is_some())
}

/// Heartbeats every `heartbeat_interval` until `stop`, then deregisters. After a failed beat it
/// tries again soon (from 100 ms, backing off to the interval), so an entry that a restarted
/// Redis forgot is back within moments of Redis answering again.
async fn keep_alive(mut conn: ConnectionManager, entry: Entry, config: RedisRegistryConfig, stop: CancellationToken) {
    let addr = &entry.instance.addr;
    let mut healthy = true;
    let mut retry = Backoff::new(std::time::Duration::from_millis(100), config.heartbeat_interval);
    loop {
        let pause = if healthy {
            config.heartbeat_interval
        } else {
            retry.next_delay().max(std::time::Duration::from_millis(50))
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
        match with_timeout(&config, heartbeat(&mut conn, &entry, &config)).await {
            Ok(re_added) => {
                if !healthy || re_added {
                    tracing::info!(%addr, re_added, "heartbeat restored");
                }
                healthy = true;
                retry.succeeded();
            }
            Err(error) if healthy => {
                tracing::warn!(%addr, %error, "heartbeat failed; retrying until the registry is back");
                healthy = false;
            }
            Err(_) => {}
        }
    }
    let deregistered = with_timeout(
        &config,
        scripts::DEREGISTER
            .key(&entry.nodes)
            .key(&entry.info)
            .key(&entry.changes)
            .arg(addr)
            .arg(&entry.instance.service)
            .invoke_async::<i64>(&mut conn),
    )
    .await;
    match deregistered {
        Ok(_) => tracing::info!(%addr, "deregistered"),
        Err(error) => tracing::warn!(%addr, %error, "could not deregister; the entry expires with its TTL"),
    }
}

/// Runs the heartbeat script: `true` if the entry had to be added (it was missing).
async fn heartbeat(
    conn: &mut ConnectionManager,
    entry: &Entry,
    config: &RedisRegistryConfig,
) -> redis::RedisResult<bool> {
    let ttl_ms = config.ttl.as_millis() as u64;
    let added: i64 = scripts::HEARTBEAT
        .key(&entry.nodes)
        .key(&entry.info)
        .key(&entry.changes)
        .arg(&entry.instance.addr)
        .arg(&entry.json)
        .arg(ttl_ms)
        .arg(&entry.instance.service)
        .invoke_async(conn)
        .await?;
    Ok(added == 1)
}
