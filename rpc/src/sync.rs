//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning. Every critical section in this crate leaves its state
/// consistent (an insert, a swap, a counter), so a panic in one caller's task must not take a
/// connection, a pool or a balancer down for every other caller too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
