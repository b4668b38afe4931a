//! Read coalescing: concurrent reads of one remote value share one request, and a value read
//! less than `ttl` ago is served again without asking AWS (the same design as the Vault
//! provider's cache).
//!
//! Each key has a slot guarded by an async mutex. The first caller fetches while holding it;
//! callers that arrive meanwhile wait on the mutex and then take the stored answer, because it
//! was completed after they asked (so it is as fresh as a read of their own would have been).
//! Errors are shared the same way, so a failing or throttling AWS sees one request per burst,
//! not one per waiting caller.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eso_provider::{ErrorKind, ProviderError};
use tokio::time::Instant;

type Slot<V> = Arc<tokio::sync::Mutex<Option<Stored<V>>>>;

#[derive(Debug)]
struct Stored<V> {
    completed: Instant,
    result: Result<V, SharedError>,
}

/// Slots are swept once the map holds this many.
const SWEEP_AT: usize = 1024;

/// The read cache of one client, keyed by `K`, holding cheap-to-clone values `V`.
#[derive(Debug)]
pub(crate) struct ReadCache<K, V> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> ReadCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Slot<V>>> {
        // A poisoned map only means another caller panicked mid-insert; the map is still valid.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, key: &K) -> Slot<V> {
        let mut slots = self.lock();
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
    pub(crate) async fn get<F, Fut>(&self, key: K, fetch: F) -> Result<V, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, ProviderError>>,
    {
        let asked = Instant::now();
        let slot = self.slot(&key);
        let mut stored = slot.lock().await;
        if let Some(s) = stored.as_ref()
            && (s.completed >= asked || s.completed.elapsed() < self.ttl)
        {
            return s.result.clone().map_err(SharedError::into_error);
        }
        let (out, keep) = match fetch().await {
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

    /// Forgets every answer whose key matches, after a write or delete.
    pub(crate) fn invalidate_where(&self, matches: impl Fn(&K) -> bool) {
        self.lock().retain(|k, _| !matches(k));
    }
}

/// A [`ProviderError`] kept for several callers (it is not `Clone`: its source is boxed).
#[derive(Debug, Clone)]
pub(crate) struct SharedError {
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
    pub(crate) fn into_error(self) -> ProviderError {
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

    // Paused time on one thread: every task is parked on the slot before the fetch's sleep
    // ends, so the outcome does not depend on scheduling.
    #[tokio::test(start_paused = true)]
    async fn concurrent_reads_share_one_fetch_even_without_ttl() {
        let cache: Arc<ReadCache<String, u32>> = Arc::new(ReadCache::new(Duration::ZERO));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let cache = cache.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get("a".to_owned(), || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(1)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn ttl_serves_repeats_and_invalidate_forgets() {
        let cache: ReadCache<String, u32> = ReadCache::new(Duration::from_secs(3600));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        };
        cache.get("a".into(), fetch).await.unwrap();
        cache.get("a".into(), fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        cache.invalidate_where(|k| k == "a");
        cache.get("a".into(), fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn shared_errors_keep_kind_message_and_cause() {
        let cache: ReadCache<String, u32> = ReadCache::new(Duration::from_secs(3600));
        let err = cache
            .get("a".into(), || async {
                Err(ProviderError::throttled("slow down")
                    .with_source(std::io::Error::other("ThrottlingException")))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Throttled);
        let again = cache.get("a".into(), || async { Ok(1) }).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Throttled);
        assert_eq!(again.chain(), "slow down: ThrottlingException");
    }
}
