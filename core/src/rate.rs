//! A request-rate limit shared by every task of one process: each request waits for its own
//! slot, `1 / rate` apart, so a burst is spread out instead of throttled by the service.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most `per_second` requests a second, spaced evenly.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    pub fn per_second(per_second: f64) -> Self {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.01)),
            next: Mutex::new(None),
        }
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_rate_whatever_the_concurrency() {
        let limit = std::sync::Arc::new(RateLimit::per_second(20.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let limit = std::sync::Arc::clone(&limit);
                tokio::spawn(async move {
                    limit.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.expect("task").duration_since(start));
        }
        times.sort();
        // Ten requests at 20 a second: the first at once, the last 450 ms later.
        assert_eq!(times.first(), Some(&Duration::ZERO));
        assert_eq!(times.last(), Some(&Duration::from_millis(450)));
    }
}
