//! Whether the API server answers, and how watches retry when it does not.
//!
//! An unreachable API server is not a fault of any object: a reconcile that fails because the
//! server is away must not grow that object's backoff (after a one-minute outage every object
//! would otherwise wait up to another minute, or more, before its next try). Instead the first
//! such failure starts one prober; every reconcile waits for the prober to see the server back,
//! then runs at once, so all due objects converge as soon as the server returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use kube::runtime::utils::Backoff;
use tokio::sync::watch;

/// How often the prober asks an unreachable API server for `/version`.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Whether this error says the API server could not be reached or could not serve anyone
/// (connection refused or reset, timeouts, 429 / 502 / 503 / 504), as opposed to an answer
/// about the object.
#[must_use]
pub fn is_unreachable(error: &kube::Error) -> bool {
    match error {
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        kube::Error::Api(status) => matches!(status.code, 429 | 502 | 503 | 504),
        _ => false,
    }
}

/// The API server's reachability as the reconcilers saw it, shared by all of them.
#[derive(Clone)]
pub struct ApiHealth {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    reachable: watch::Sender<bool>,
    probing: AtomicBool,
}

impl std::fmt::Debug for ApiHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiHealth")
            .field("reachable", &self.is_reachable())
            .finish_non_exhaustive()
    }
}

impl ApiHealth {
    /// Starts out reachable.
    #[must_use]
    pub fn new(client: Client) -> Self {
        let (reachable, _) = watch::channel(true);
        Self {
            inner: Arc::new(Inner {
                client,
                reachable,
                probing: AtomicBool::new(false),
            }),
        }
    }

    /// Whether the last word was that the server answers.
    #[must_use]
    pub fn is_reachable(&self) -> bool {
        *self.inner.reachable.borrow()
    }

    /// Records that a call could not reach the server and, unless one already runs, starts a
    /// prober that marks it reachable again once `/version` answers. Must be called inside a
    /// Tokio runtime.
    pub fn report_unreachable(&self) {
        self.inner.reachable.send_replace(false);
        if self.inner.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("the API server cannot be reached; reconciles wait for it");
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                if inner.client.apiserver_version().await.is_ok() {
                    break;
                }
            }
            inner.probing.store(false, Ordering::Release);
            inner.reachable.send_replace(true);
            tracing::info!("the API server answers again");
        });
    }

    /// Returns once the server is reachable (at once when nothing said otherwise).
    pub async fn wait_reachable(&self) {
        let mut rx = self.inner.reachable.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|reachable| *reachable).await;
    }
}

/// The retry policy of every watch the operator runs: exponential from 250 ms, capped at
/// 4 s, reset after a minute without errors. kube's default (client-go's: capped at 30 s)
/// would leave caches stale for up to half a minute after an API server returns; a handful
/// of watches per process retrying every few seconds costs the server nothing.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
    last_error: Option<tokio::time::Instant>,
}

const WATCH_BACKOFF_MIN: Duration = Duration::from_millis(250);
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(4);
const WATCH_BACKOFF_RESET: Duration = Duration::from_secs(60);

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: WATCH_BACKOFF_MIN,
            last_error: None,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = tokio::time::Instant::now();
        if self
            .last_error
            .is_some_and(|t| now.duration_since(t) > WATCH_BACKOFF_RESET)
        {
            self.next = WATCH_BACKOFF_MIN;
        }
        self.last_error = Some(now);
        let delay = self.next;
        self.next = (self.next * 2).min(WATCH_BACKOFF_MAX);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_BACKOFF_MIN;
        self.last_error = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn watch_backoff_doubles_to_its_cap_and_starts_over_after_a_quiet_minute() {
        let mut b = WatchBackoff::default();
        let first: Vec<u64> = (0..7)
            .map(|_| b.next().map_or(0, |d| d.as_millis() as u64))
            .collect();
        assert_eq!(first, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(b.next(), Some(WATCH_BACKOFF_MIN));
        b.next();
        b.reset();
        assert_eq!(b.next(), Some(WATCH_BACKOFF_MIN));
    }

    #[test]
    fn only_transport_failures_and_server_wide_statuses_count_as_unreachable() {
        let status = |code| {
            kube::Error::Api(
                kube::core::Status::failure("x", "y")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(is_unreachable(&status(503)));
        assert!(is_unreachable(&status(429)));
        assert!(!is_unreachable(&status(404)));
        assert!(!is_unreachable(&status(409)));
        assert!(!is_unreachable(&status(500)));
    }
}
