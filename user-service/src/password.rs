//! argon2id password hashes, computed on the blocking pool: a hash takes tens of milliseconds of
//! CPU and about 19 MiB of memory on purpose, which must not stall the async threads serving
//! other calls, and must not be multiplied without bound by a login flood. At most
//! `max_concurrent` hashes run at once; past that a sign-in is refused at once as busy (the
//! gateway answers 503 with `Retry-After`), instead of queueing memory.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// A hash of a fixed password, verified against when the username is unknown, so that unknown
/// and known usernames take the same time (no user enumeration by timing).
const DECOY_PASSWORD: &str = "decoy password for unknown users";

/// Why no hash was computed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    /// Every hashing slot is taken.
    #[error("too many password hashes at once")]
    Busy,
    /// argon2 or the blocking pool failed.
    #[error("hashing failed: {0}")]
    Failed(String),
}

/// Computes hashes, a bounded number at a time.
#[derive(Clone, Debug)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Hasher {
    /// A hasher running at most `max_concurrent` hashes at once.
    pub(crate) fn new(max_concurrent: usize) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            running: Arc::default(),
            peak: Arc::default(),
        }
    }

    /// Hashes a password (argon2id v19, default parameters, random salt) into a PHC string.
    pub(crate) async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|err| HashError::Failed(err.to_string()))
        })
        .await
    }

    /// Whether `password` matches `stored` (a PHC string). `None` checks against a decoy and fails.
    pub(crate) async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, HashError> {
        self.run(move || {
            let decoy = stored.is_none();
            let stored = stored.as_deref().unwrap_or_else(|| decoy_hash());
            let parsed = PasswordHash::new(stored).map_err(|err| HashError::Failed(format!("stored hash: {err}")))?;
            Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && !decoy)
        })
        .await
    }

    /// The most hashes that ever ran at once.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| HashError::Busy)?;
        let (running, peak) = (self.running.clone(), self.peak.clone());
        tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::AcqRel) + 1;
            peak.fetch_max(now, Ordering::AcqRel);
            let outcome = work();
            running.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
            outcome
        })
        .await
        .map_err(|err| HashError::Failed(err.to_string()))?
    }
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
        let hasher = Hasher::new(2);
        let stored = hasher.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
        assert!(hasher.verify("correct horse".into(), Some(stored.clone())).await.unwrap());
        assert!(!hasher.verify("wrong horse".into(), Some(stored)).await.unwrap());
        assert!(!hasher.verify(DECOY_PASSWORD.into(), None).await.unwrap(), "the decoy never logs anyone in");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_flood_never_runs_more_hashes_than_the_bound_and_the_rest_are_busy() {
        let hasher = Hasher::new(2);
        let flood: Vec<_> = (0..40)
            .map(|n| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(format!("password {n}")).await })
            })
            .collect();
        let (mut done, mut busy) = (0, 0);
        for attempt in flood {
            match attempt.await.unwrap() {
                Ok(_) => done += 1,
                Err(HashError::Busy) => busy += 1,
                Err(other) => panic!("{other}"),
            }
        }
        println!("40 concurrent hashes with a bound of 2: {done} computed, {busy} busy, peak {}", hasher.peak());
        assert!(hasher.peak() <= 2, "peak {} over the bound", hasher.peak());
        assert!(done >= 1 && busy >= 1 && done + busy == 40);
    }
}
