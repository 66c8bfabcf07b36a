//! The environment a process runs in, and the secrets it refuses outside development.
//!
//! Every built-in secret (the JWT secret, the RPC cluster key) and every development shortcut
//! (the known admin password of `scripts/dev-up`, captcha test mode) is accepted only when
//! `SECKILL_ENV=development` says so explicitly; otherwise the process refuses to start and
//! names the setting to give. Development is never the default.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Shortest secret accepted outside development, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Where a process runs (`SECKILL_ENV`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Anything real: no built-in secret, no shortcut.
    #[default]
    Production,
    /// A developer's machine, CI, the compose demo: built-in secrets allowed, with a warning.
    Development,
}

/// Settings a process would start with that are only fit for development.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to start outside development (SECKILL_ENV=development allows these for local use only):\n  - {}",
    .0.join("\n  - ")
)]
pub struct InsecureSettings(pub Vec<String>);

/// Collects what is wrong with a process's secrets, then refuses or warns.
#[derive(Debug)]
pub struct SecretPolicy {
    env: Environment,
    problems: Vec<String>,
}

impl SecretPolicy {
    /// A policy for `env`.
    pub fn new(env: Environment) -> SecretPolicy {
        SecretPolicy { env, problems: Vec::new() }
    }

    /// `secret` must not be `development_value` and must have at least [`MIN_SECRET_LEN`] bytes.
    pub fn secret(&mut self, setting: &str, secret: &SecretString, development_value: &str) -> &mut Self {
        let value = secret.expose_secret();
        if value == development_value {
            self.problems.push(format!(
                "{setting} is the built-in development value; give a random secret of at least {MIN_SECRET_LEN} bytes"
            ));
        } else if value.len() < MIN_SECRET_LEN {
            self.problems.push(format!("{setting} is shorter than {MIN_SECRET_LEN} bytes"));
        }
        self
    }

    /// A development shortcut that must be off: `problem` says what it is and how to turn it off.
    pub fn shortcut(&mut self, in_use: bool, problem: impl Into<String>) -> &mut Self {
        if in_use {
            self.problems.push(problem.into());
        }
        self
    }

    /// Outside development: an error listing every problem, if there is one. In development:
    /// each problem is logged as a warning.
    pub fn enforce(&self) -> Result<(), InsecureSettings> {
        match self.env {
            Environment::Development => {
                for problem in &self.problems {
                    tracing::warn!("development only: {problem}");
                }
                Ok(())
            }
            Environment::Production if self.problems.is_empty() => Ok(()),
            Environment::Production => Err(InsecureSettings(self.problems.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_and_short_secrets_are_refused_outside_development_only() {
        let dev = SecretString::from("dev-value");
        let short = SecretString::from("short");
        let good = SecretString::from("x".repeat(MIN_SECRET_LEN));
        let mut policy = SecretPolicy::new(Environment::Production);
        policy.secret("SECKILL_A", &dev, "dev-value").secret("SECKILL_B", &short, "dev-value");
        policy.secret("SECKILL_C", &good, "dev-value").shortcut(true, "SECKILL_D is on");
        let err = policy.enforce().unwrap_err().to_string();
        for named in ["SECKILL_A", "SECKILL_B", "SECKILL_D"] {
            assert!(err.contains(named), "{err}");
        }
        assert!(!err.contains("SECKILL_C"), "{err}");
        assert!(!err.contains("dev-value"), "a refusal never prints the secret: {err}");

        let mut policy = SecretPolicy::new(Environment::Development);
        policy.secret("SECKILL_A", &dev, "dev-value");
        assert!(policy.enforce().is_ok());
    }
}
