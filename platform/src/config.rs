//! Typed configuration: built-in defaults, overridden by `SECKILL_` environment variables.
//!
//! Nested fields use `__`: `SECKILL_RPC__DEFAULT_TIMEOUT=500ms` sets `rpc.default_timeout`.
//! Defaults point at the standard local ports, so a machine running PostgreSQL, Redis and
//! RabbitMQ on localhost needs no settings at all. Secrets belong in [`secrecy::SecretString`]
//! fields, which never print.

use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The environment variable prefix of every setting.
pub const PREFIX: &str = "SECKILL_";

/// Settings that could not be loaded; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

/// Serializes a secret in clear. Only for building the defaults layer that [`load`] merges the
/// environment over; never use it to print or log settings.
pub fn expose<S: serde::Serializer>(secret: &secrecy::SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    serializer.serialize_str(secret.expose_secret())
}

/// Loads `T`: its `Default`, overridden by `SECKILL_*` variables.
pub fn load<T: Default + Serialize + DeserializeOwned>() -> Result<T, ConfigError> {
    Figment::from(Serialized::defaults(T::default()))
        .merge(Env::prefixed(PREFIX).split("__"))
        .extract()
        .map_err(|err| ConfigError(Box::new(err)))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error by design
mod tests {
    use std::time::Duration;

    use secrecy::{ExposeSecret, SecretString};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Settings {
        port: u16,
        database_url: String,
        #[serde(serialize_with = "expose")]
        jwt_secret: SecretString,
        rpc: Rpc,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Rpc {
        #[serde(with = "humantime_serde")]
        default_timeout: Duration,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                port: 8080,
                database_url: "postgres://postgres@127.0.0.1:5432/seckill".into(),
                jwt_secret: SecretString::from("dev-only"),
                rpc: Rpc { default_timeout: Duration::from_secs(5) },
            }
        }
    }

    #[test]
    fn environment_overrides_defaults_including_nested_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SECKILL_PORT", "9000");
            jail.set_env("SECKILL_RPC__DEFAULT_TIMEOUT", "250ms");
            jail.set_env("SECKILL_JWT_SECRET", "s3cr3t-from-env");
            let settings: Settings = load().map_err(|e| e.to_string())?;
            assert_eq!(settings.port, 9000);
            assert_eq!(settings.rpc.default_timeout, Duration::from_millis(250));
            assert_eq!(settings.database_url, Settings::default().database_url);
            assert_eq!(settings.jwt_secret.expose_secret(), "s3cr3t-from-env");
            assert!(!format!("{settings:?}").contains("s3cr3t"), "secrets must never print");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SECKILL_PORT", "eighty");
            let err = load::<Settings>().unwrap_err().to_string();
            assert!(err.contains("SECKILL_") && err.to_lowercase().contains("port"), "{err}");
            Ok(())
        });
    }
}
