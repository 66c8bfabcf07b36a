//! The measurement loop the RPC benchmarks share: `concurrency` tasks call in a loop; calls that
//! start after the warm-up and end before the window closes are counted and their latencies
//! recorded.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What one run measured.
pub struct Outcome {
    pub qps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
}

/// The window of one run.
#[derive(Clone, Copy)]
pub struct Window {
    pub concurrency: usize,
    pub warmup: Duration,
    pub measured: Duration,
}

/// Runs `window.concurrency` tasks; task `t`'s `n`-th call is `call(t, n)`, which answers whether
/// the call succeeded.
pub async fn measure<F, Fut>(window: Window, call: F) -> Outcome
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + window.warmup;
    let end = start + window.measured;
    let tasks: Vec<_> = (0..window.concurrency)
        .map(|task| {
            let (call, stop, errors) = (call.clone(), stop.clone(), errors.clone());
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 2).expect("valid bounds");
                let (mut count, mut sequence) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    sequence += 1;
                    let began = Instant::now();
                    let succeeded = call(task, sequence).await;
                    let done = Instant::now();
                    if !succeeded {
                        errors.fetch_add(1, Ordering::Relaxed);
                    } else if began >= start && done <= end {
                        count += 1;
                        histogram.saturating_record((done - began).as_micros() as u64);
                    }
                }
                (count, histogram)
            })
        })
        .collect();
    tokio::time::sleep_until((end + Duration::from_millis(50)).into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0u64;
    let mut merged = Histogram::<u64>::new_with_bounds(1, 10_000_000, 2).expect("valid bounds");
    for task in tasks {
        let (count, histogram) = task.await.expect("load task panicked");
        total += count;
        merged.add(histogram).expect("same bounds");
    }
    Outcome {
        qps: total as f64 / window.measured.as_secs_f64(),
        p50_us: merged.value_at_quantile(0.50),
        p99_us: merged.value_at_quantile(0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}
