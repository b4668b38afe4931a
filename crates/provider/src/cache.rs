//! Read coalescing for provider clients: concurrent reads of one remote value share one
//! request, and a value read less than a TTL ago is served again without asking the backend.
//! The Vault and AWS providers keep one [`ReadCache`] per client; this is how "one remote read
//! per unique (store, identity, key, version) per refresh window" is implemented.
//!
//! Each key has a slot guarded by an async mutex. The first caller fetches while holding it;
//! callers that arrive meanwhile wait on the mutex and then take the stored answer, because it
//! was completed after they asked (so it is as fresh as a read of their own would have been).
//! Errors are shared the same way ([`SharedError`]), so a failing or throttling backend sees
//! one request per burst, not one per waiting caller.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use eso_provider::cache::ReadCache;
//!
//! let cache: ReadCache<String, u32> = ReadCache::new(Duration::from_secs(10));
//! let first = cache.get("db".into(), || async { Ok(1) }).await;
//! // Within the TTL the stored answer is served; this fetch never runs.
//! let again = cache.get("db".into(), || async { Ok(2) }).await;
//! assert_eq!((first.ok(), again.ok()), (Some(1), Some(1)));
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::{ErrorKind, ProviderError};

type Slot<V> = Arc<tokio::sync::Mutex<Option<Stored<V>>>>;

#[derive(Debug)]
struct Stored<V> {
    completed: Instant,
    result: Result<V, SharedError>,
}

/// Slots are swept once the map holds this many.
const SWEEP_AT: usize = 1024;

/// The read cache of one client, keyed by `K`, holding cheap-to-clone answers `V` (wrap large
/// values in an `Arc`).
#[derive(Debug)]
pub struct ReadCache<K, V> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> ReadCache<K, V> {
    /// A cache that serves an answer again for `ttl` after it was read. Zero still shares one
    /// fetch between concurrent callers.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Slot<V>>> {
        // A poisoned map only means another caller panicked mid-insert; the map is still valid.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// The answer for `key`: shared with a concurrent fetch, reused within the TTL, or fetched
    /// with `fetch`. A shared error keeps its kind, message, retry-after and cause (as text).
    pub async fn get<F, Fut>(&self, key: K, fetch: F) -> Result<V, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ProviderError>>,
    {
        let ttl = self.ttl;
        self.lookup(key, |s| s.completed.elapsed() < ttl, fetch)
            .await
    }

    /// Like [`get`](Self::get), with the freshness chosen by the caller: a successful answer
    /// completed less than `max_age` ago is served again. An error is shared only with callers
    /// that asked while it was being fetched, never reused later, so a transient failure is
    /// not replayed for a long window.
    pub async fn get_within<F, Fut>(
        &self,
        key: K,
        max_age: Duration,
        fetch: F,
    ) -> Result<V, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ProviderError>>,
    {
        self.lookup(
            key,
            |s| s.result.is_ok() && s.completed.elapsed() < max_age,
            fetch,
        )
        .await
    }

    /// The stored answer if it completed after the caller asked (a concurrent fetch) or is
    /// `reusable`, else a fresh fetch, stored for the next caller.
    async fn lookup<F, Fut>(
        &self,
        key: K,
        reusable: impl Fn(&Stored<V>) -> bool,
        fetch: F,
    ) -> Result<V, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ProviderError>>,
    {
        let asked = Instant::now();
        let slot = self.slot(&key);
        let mut stored = slot.lock().await;
        if let Some(s) = stored.as_ref()
            && (s.completed >= asked || reusable(s))
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
    pub fn invalidate_where(&self, matches: impl Fn(&K) -> bool) {
        self.lock().retain(|k, _| !matches(k));
    }
}

/// A [`ProviderError`] kept for several callers ([`ProviderError`] is not `Clone`: its source
/// is boxed). The source chain is kept as text.
#[derive(Debug, Clone)]
pub struct SharedError {
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
    /// A [`ProviderError`] with the same kind, message, retry-after and chain text.
    #[must_use]
    pub fn into_error(self) -> ProviderError {
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
    async fn zero_ttl_refetches_sequential_reads() {
        let cache: ReadCache<String, u32> = ReadCache::new(Duration::ZERO);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        };
        cache.get("a".into(), fetch).await.unwrap();
        cache.get("a".into(), fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn get_within_reuses_successes_for_the_callers_window_but_never_old_errors() {
        let cache: ReadCache<&str, u32> = ReadCache::new(Duration::ZERO);
        let calls = AtomicUsize::new(0);
        let ok = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        };
        let hour = Duration::from_secs(3600);
        assert_eq!(cache.get_within("k", hour, ok).await.unwrap(), 7);
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert_eq!(cache.get_within("k", hour, ok).await.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "within the window");
        assert_eq!(
            cache
                .get_within("k", Duration::from_secs(60), ok)
                .await
                .unwrap(),
            7
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "a shorter window reads again"
        );

        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<u32, _>(ProviderError::new(ErrorKind::Unavailable, "down"))
        };
        assert!(cache.get_within("e", hour, failing).await.is_err());
        // (Paused time: a read that asks at the very instant the last one completed would
        // count as concurrent with it.)
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(cache.get_within("e", hour, failing).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4, "an error is not reused");
    }

    #[tokio::test]
    async fn shared_errors_keep_kind_message_retry_after_and_cause() {
        let cache: ReadCache<String, u32> = ReadCache::new(Duration::from_secs(3600));
        let err = cache
            .get("a".into(), || async {
                Err(ProviderError::throttled("slow down")
                    .with_retry_after(Duration::from_secs(2))
                    .with_source(std::io::Error::other("ThrottlingException")))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Throttled);
        let again = cache.get("a".into(), || async { Ok(1) }).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Throttled);
        assert_eq!(again.chain(), "slow down: ThrottlingException");
        assert_eq!(again.retry_after(), Some(Duration::from_secs(2)));
    }
}
