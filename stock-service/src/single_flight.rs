//! One at a time per key, within this process: the first caller works, the others wait for it
//! and then see its result (the caller re-checks before working again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// A lock per key, created on first use and dropped with its last holder.
#[derive(Clone, Debug, Default)]
pub(crate) struct SingleFlight {
    locks: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while the flight runs.
pub(crate) struct Flight {
    key: i64,
    guard: Option<OwnedMutexGuard<()>>,
    locks: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

impl SingleFlight {
    /// Waits for the flight of `key`, if one runs, and starts ours.
    pub(crate) async fn enter(&self, key: i64) -> Flight {
        let lock = self.locks.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().clone();
        let guard = lock.lock_owned().await;
        Flight { key, guard: Some(guard), locks: self.locks.clone() }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Nobody else holds or waits for it: forget the key.
        if locks.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flights_of_one_key_never_overlap_and_keys_are_forgotten() {
        let flights = SingleFlight::default();
        let (running, overlaps) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (flights, running, overlaps) = (flights.clone(), running.clone(), overlaps.clone());
                tokio::spawn(async move {
                    let _flight = flights.enter(7).await;
                    if running.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
        assert!(flights.locks.lock().unwrap().is_empty());
    }
}
