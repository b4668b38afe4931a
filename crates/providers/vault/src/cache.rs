//! Read coalescing: concurrent reads of one (path, version) share one HTTP request, and a read
//! answered less than `ttl` ago is served again without asking Vault.
//!
//! Each key has a slot guarded by an async mutex. The first caller fetches while holding it;
//! callers that arrive meanwhile wait on the mutex and then take the stored answer, because it
//! was completed after they asked (so it is as fresh as a read of their own would have been).
//! Errors are shared the same way, so a failing Vault sees one request per burst, not one per
//! waiting caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eso_provider::{ErrorKind, ProviderError};
use serde_json::Value;
use tokio::time::Instant;

/// Which remote read a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadKey {
    pub(crate) path: String,
    pub(crate) version: Option<String>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Stored>>>;

#[derive(Debug)]
struct Stored {
    completed: Instant,
    result: Result<Arc<Value>, SharedError>,
}

/// Slots are swept once the map holds this many.
const SWEEP_AT: usize = 1024;

/// The read cache of one client.
#[derive(Debug)]
pub(crate) struct ReadCache {
    ttl: Duration,
    slots: Mutex<HashMap<ReadKey, Slot>>,
}

impl ReadCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &ReadKey) -> Slot {
        // A poisoned map only means another caller panicked mid-insert; the map is still valid.
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slots.len() >= SWEEP_AT {
            let ttl = self.ttl;
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |s| {
                        s.as_ref().is_some_and(|s| s.completed.elapsed() < ttl)
                    })
            });
        }
        slots.entry(key.clone()).or_default().clone()
    }

    /// The answer for `key`: shared with a concurrent fetch, reused within the TTL, or fetched.
    pub(crate) async fn get<F, Fut>(
        &self,
        key: ReadKey,
        fetch: F,
    ) -> Result<Arc<Value>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Value, ProviderError>>,
    {
        let asked = Instant::now();
        let slot = self.slot(&key);
        let mut stored = slot.lock().await;
        if let Some(s) = stored.as_ref()
            && (s.completed >= asked || s.completed.elapsed() < self.ttl)
        {
            return s.result.clone().map_err(SharedError::into_error);
        }
        let result = fetch().await.map(Arc::new);
        let (out, keep) = match result {
            Ok(v) => (Ok(v.clone()), Ok(v)),
            Err(e) => {
                let shared = SharedError::from(&e);
                (Err(e), Err(shared))
            }
        };
        *stored = Some(Stored {
            completed: Instant::now(),
            result: keep,
        });
        out
    }

    /// Forgets every answer for `path` (all versions), after a write or delete.
    pub(crate) fn invalidate(&self, path: &str) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.retain(|k, _| k.path != path);
    }

    /// Forgets every answer whose path matches.
    pub(crate) fn invalidate_where(&self, matches: impl Fn(&str) -> bool) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.retain(|k, _| !matches(&k.path));
    }
}

/// A [`ProviderError`] kept for several callers (it is not `Clone`: its source is boxed).
#[derive(Debug, Clone)]
struct SharedError {
    kind: ErrorKind,
    message: String,
    retry_after: Option<Duration>,
    /// The rest of the chain, as text.
    cause: Option<String>,
}

impl From<&ProviderError> for SharedError {
    fn from(e: &ProviderError) -> Self {
        let chain = e.chain();
        let cause = chain
            .strip_prefix(e.message())
            .and_then(|rest| rest.strip_prefix(": "))
            .map(str::to_owned);
        Self {
            kind: e.kind(),
            message: e.message().to_owned(),
            retry_after: e.retry_after(),
            cause,
        }
    }
}

impl SharedError {
    fn into_error(self) -> ProviderError {
        let mut e = ProviderError::new(self.kind, self.message);
        if let Some(wait) = self.retry_after {
            e = e.with_retry_after(wait);
        }
        if let Some(cause) = self.cause {
            e = e.with_source(cause);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(p: &str) -> ReadKey {
        ReadKey {
            path: p.into(),
            version: None,
        }
    }

    // Paused time on one thread: every task is parked on the slot before the fetch's sleep
    // ends, so the outcome does not depend on scheduling.
    #[tokio::test(start_paused = true)]
    async fn concurrent_reads_share_one_fetch_even_without_ttl() {
        let cache = Arc::new(ReadCache::new(Duration::ZERO));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let cache = cache.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(key("a"), || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(Value::from(1))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(*t.await.unwrap().unwrap(), Value::from(1));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn ttl_serves_repeats_and_invalidate_forgets() {
        let cache = ReadCache::new(Duration::from_secs(3600));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Value::from("v"))
        };
        cache.get(key("a"), fetch).await.unwrap();
        cache.get(key("a"), fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        cache.invalidate("a");
        cache.get(key("a"), fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn zero_ttl_refetches_sequential_reads() {
        let cache = ReadCache::new(Duration::ZERO);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Value::from("v"))
        };
        cache.get(key("a"), fetch).await.unwrap();
        cache.get(key("a"), fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn shared_errors_keep_kind_message_and_cause() {
        let cache = ReadCache::new(Duration::from_secs(3600));
        let err = cache
            .get(key("a"), || async {
                Err(ProviderError::throttled("slow down")
                    .with_retry_after(Duration::from_secs(2))
                    .with_source(std::io::Error::other("429")))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Throttled);
        let again = cache
            .get(key("a"), || async { Ok(Value::Null) })
            .await
            .unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Throttled);
        assert_eq!(again.chain(), "slow down: 429");
        assert_eq!(again.retry_after(), Some(Duration::from_secs(2)));
    }
}
