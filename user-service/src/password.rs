//! argon2id password hashes, computed on the blocking pool: a hash takes tens of milliseconds of
//! CPU on purpose, which must not stall the async threads serving other calls.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// A hash of a fixed password, verified against when the username is unknown, so that unknown
/// and known usernames take the same time (no user enumeration by timing).
const DECOY_PASSWORD: &str = "decoy password for unknown users";

/// Hashes a password (argon2id v19, default parameters, random salt) into a PHC string.
pub(crate) async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("hashing failed: {err}"))
    })
    .await?
}

/// Whether `password` matches `stored` (a PHC string). `None` checks against a decoy and fails.
pub(crate) async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let decoy = stored.is_none();
        let stored = stored.as_deref().unwrap_or_else(|| decoy_hash());
        let parsed = PasswordHash::new(stored).map_err(|err| anyhow::anyhow!("stored hash unreadable: {err}"))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && !decoy)
    })
    .await?
}

/// The decoy's hash, computed once per process.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        Argon2::default().hash_password(DECOY_PASSWORD.as_bytes()).map(|hash| hash.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
        assert!(verify("correct horse".into(), Some(stored.clone())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(stored)).await.unwrap());
        assert!(!verify(DECOY_PASSWORD.into(), None).await.unwrap(), "the decoy never logs anyone in");
    }
}
