//! The access token of one client: fetched once, reused until shortly before it expires, then
//! fetched again. Concurrent callers wait for the one fetch in flight, so a credential costs one
//! token request per token lifetime however many reads share it.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use eso_provider::ProviderError;
use tokio::time::Instant;

use crate::http::Http;

/// Google's default access-token lifetime, assumed when an answer does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The most a token is refreshed ahead of its expiry.
const MAX_MARGIN: Duration = Duration::from_secs(300);

/// A fetched access token.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: String,
    /// How long it is valid from now, when the issuer said.
    pub(crate) lifetime: Option<Duration>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// A way to obtain access tokens (one credential).
#[async_trait]
pub(crate) trait TokenFetch: Send + Sync + fmt::Debug {
    async fn fetch(&self, http: &Http) -> Result<AccessToken, ProviderError>;
}

struct Cached {
    value: String,
    refresh_at: Instant,
}

/// The cached token of one credential.
pub(crate) struct TokenSource {
    fetch: Box<dyn TokenFetch>,
    slot: tokio::sync::Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("fetch", &self.fetch)
            .finish_non_exhaustive()
    }
}

/// When a token valid for `lifetime` should be replaced: a fifth of its lifetime, at most five
/// minutes, before it expires.
fn refresh_at(now: Instant, lifetime: Duration) -> Instant {
    let margin = (lifetime / 5).min(MAX_MARGIN);
    now + lifetime.saturating_sub(margin)
}

impl TokenSource {
    pub(crate) fn new(fetch: Box<dyn TokenFetch>) -> Self {
        Self {
            fetch,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid token: the cached one, or a new one.
    pub(crate) async fn token(&self, http: &Http) -> Result<String, ProviderError> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.value.clone());
        }
        let fetched = self.fetch.fetch(http).await?;
        let lifetime = fetched.lifetime.unwrap_or(DEFAULT_LIFETIME);
        *slot = Some(Cached {
            value: fetched.value.clone(),
            refresh_at: refresh_at(Instant::now(), lifetime),
        });
        Ok(fetched.value)
    }

    /// Forgets `stale` (a token the API refused), so that the next call fetches a new one.
    pub(crate) async fn invalidate(&self, stale: &str) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|c| c.value == stale) {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>, Duration);

    #[async_trait]
    impl TokenFetch for Counting {
        async fn fetch(&self, _: &Http) -> Result<AccessToken, ProviderError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(AccessToken {
                value: format!("t{n}"),
                lifetime: Some(self.1),
            })
        }
    }

    fn http() -> Http {
        Http::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            crate::http::RetryPolicy {
                max_attempts: 1,
                base_delay: Duration::from_millis(1),
                max_wait: Duration::from_millis(1),
            },
        )
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn one_fetch_per_lifetime_for_concurrent_callers() {
        let n = Arc::new(AtomicUsize::new(0));
        let source = TokenSource::new(Box::new(Counting(n.clone(), Duration::from_secs(3600))));
        let http = http();
        let all = futures::future::join_all((0..50).map(|_| source.token(&http))).await;
        assert!(all.iter().all(|t| t.as_deref().ok() == Some("t0")));
        assert_eq!(n.load(Ordering::SeqCst), 1);
        // Still fresh 54 minutes later; replaced within the last five minutes.
        tokio::time::advance(Duration::from_secs(54 * 60)).await;
        assert_eq!(source.token(&http).await.unwrap(), "t0");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(source.token(&http).await.unwrap(), "t1");
        // A refused token is fetched again at once.
        source.invalidate("t1").await;
        assert_eq!(source.token(&http).await.unwrap(), "t2");
        source.invalidate("t0").await;
        assert_eq!(source.token(&http).await.unwrap(), "t2");
    }

    #[test]
    fn short_lifetimes_refresh_at_four_fifths() {
        let now = Instant::now();
        assert_eq!(
            refresh_at(now, Duration::from_secs(10)) - now,
            Duration::from_secs(8)
        );
        assert_eq!(
            refresh_at(now, Duration::from_secs(3600)) - now,
            Duration::from_secs(3300)
        );
    }
}
