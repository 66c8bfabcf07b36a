//! Error helpers shared by the binaries.

use std::error::Error;
use std::fmt::Write;

/// Formats an error and its sources on one line: `outer: middle: root cause`.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(line, ": {cause}");
        source = cause.source();
    }
    line
}

/// A dependency that could not be reached at start-up, named so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {dependency} at {address}: {reason}")]
pub struct DependencyError {
    /// What it is: "PostgreSQL", "Redis", "RabbitMQ", ...
    pub dependency: &'static str,
    /// Where we looked (credentials removed).
    pub address: String,
    /// What went wrong, with its causes.
    pub reason: String,
}

impl DependencyError {
    /// Wraps a connection failure.
    pub fn new(dependency: &'static str, address: impl Into<String>, err: &(dyn Error + 'static)) -> Self {
        DependencyError { dependency, address: redact_credentials(&address.into()), reason: chain(err) }
    }
}

/// Removes the password from a URL such as `amqp://guest:guest@host:5672/%2f`.
pub fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_lists_every_cause() {
        let err = Outer(std::io::Error::other("root cause"));
        assert_eq!(chain(&err), "outer: root cause");
    }

    #[test]
    fn dependency_errors_never_show_passwords() {
        let err = DependencyError::new(
            "RabbitMQ",
            "amqp://guest:hunter2@127.0.0.1:5672/%2f",
            &std::io::Error::other("refused"),
        );
        let text = err.to_string();
        assert_eq!(text, "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:5672/%2f: refused");
        assert_eq!(redact_credentials("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
