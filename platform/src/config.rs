//! Typed configuration: `SECKILL_` environment variables over built-in defaults.
//!
//! Nested fields use `__`: `SECKILL_RPC__DEFAULT_TIMEOUT=500ms` sets `rpc.default_timeout`.
//! Defaults point at the standard local ports, so a machine running PostgreSQL, Redis and
//! RabbitMQ on localhost needs no settings at all. Settings types derive `Deserialize` only and
//! take their defaults from `#[serde(default)]`: nothing can serialize them, so a secret in a
//! [`secrecy::SecretString`] field can neither print nor leak through a `to_string`.

use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::de::DeserializeOwned;

/// The environment variable prefix of every setting.
pub const PREFIX: &str = "SECKILL_";

/// Settings that could not be loaded; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

/// Loads `T`: `SECKILL_*` variables over `T`'s `#[serde(default)]`s.
pub fn load<T: DeserializeOwned>() -> Result<T, ConfigError> {
    load_with(&[])
}

/// Loads `T` as [`load`] does, with `defaults` (`(key, value)`, keys as the environment names them
/// without the prefix, lowercase: `("listen", "0.0.0.0:7002")`) between the two: for defaults that
/// depend on the binary rather than on the settings type (two binaries share one type, or one
/// type is flattened into several).
pub fn load_with<T: DeserializeOwned>(defaults: &[(&str, &str)]) -> Result<T, ConfigError> {
    let base =
        defaults.iter().fold(Figment::new(), |figment, (key, value)| figment.merge(Serialized::default(key, value)));
    base.merge(Env::prefixed(PREFIX).split("__")).extract().map_err(|err| ConfigError(Box::new(err)))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error by design
mod tests {
    use std::time::Duration;

    use secrecy::{ExposeSecret, SecretString};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(default)]
    struct Settings {
        port: u16,
        listen: String,
        database_url: String,
        jwt_secret: SecretString,
        rpc: Rpc,
    }

    #[derive(Debug, Deserialize)]
    #[serde(default)]
    struct Rpc {
        #[serde(with = "humantime_serde")]
        default_timeout: Duration,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                port: 8080,
                listen: "127.0.0.1:0".into(),
                database_url: "postgres://postgres@127.0.0.1:5432/seckill".into(),
                jwt_secret: SecretString::from("dev-only"),
                rpc: Rpc::default(),
            }
        }
    }

    impl Default for Rpc {
        fn default() -> Self {
            Rpc { default_timeout: Duration::from_secs(5) }
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
    fn binary_defaults_sit_between_the_type_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            let settings: Settings = load_with(&[("listen", "0.0.0.0:7002")]).map_err(|e| e.to_string())?;
            assert_eq!((settings.listen.as_str(), settings.port), ("0.0.0.0:7002", 8080));
            jail.set_env("SECKILL_LISTEN", "127.0.0.1:9");
            let settings: Settings = load_with(&[("listen", "0.0.0.0:7002")]).map_err(|e| e.to_string())?;
            assert_eq!(settings.listen, "127.0.0.1:9", "an explicit setting always wins");
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
