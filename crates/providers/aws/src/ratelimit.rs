//! A per-client request pacer (GCRA): at most `rate` requests per second on average, with a
//! burst of one second's worth, so a refresh storm stays under Parameter Store's quota instead
//! of being throttled and retried.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    burst: Duration,
    /// The theoretical arrival time of the next request.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: f64) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_second);
        Self {
            interval,
            burst: Duration::from_secs(1).saturating_sub(interval),
            next: Mutex::new(None),
        }
    }

    /// When a request asked for at `now` may go, and books its slot.
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = next.map_or(now, |t| t.max(now));
        let go = tat
            .checked_sub(self.burst)
            .map_or(now, |earliest| earliest.max(now));
        *next = Some(tat + self.interval);
        go
    }

    /// Waits for this request's slot.
    pub(crate) async fn acquire(&self) {
        let go = self.reserve(Instant::now());
        tokio::time::sleep_until(go).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(10.0);
        let start = Instant::now();
        // One second's worth goes at once.
        for _ in 0..10 {
            assert_eq!(limiter.reserve(start), start);
        }
        // Then one every 100 ms.
        let eleventh = limiter.reserve(start);
        assert_eq!(eleventh - start, Duration::from_millis(100));
        let later = start + Duration::from_secs(10);
        assert_eq!(limiter.reserve(later), later);
    }
}
