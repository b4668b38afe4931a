//! Vault's read cache: the shared [`eso_provider::cache::ReadCache`] (concurrent reads of one
//! (path, version) share one HTTP request; a read answered less than `ttl` ago is served again
//! without asking Vault), keyed by (path, version) and holding the parsed JSON answer.

use std::sync::Arc;
use std::time::Duration;

use eso_provider::ProviderError;
use serde_json::Value;

/// Which remote read a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadKey {
    pub(crate) path: String,
    pub(crate) version: Option<String>,
}

/// The read cache of one client.
#[derive(Debug)]
pub(crate) struct ReadCache(eso_provider::cache::ReadCache<ReadKey, Arc<Value>>);

impl ReadCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self(eso_provider::cache::ReadCache::new(ttl))
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
        self.0
            .get(key, move || async move { fetch().await.map(Arc::new) })
            .await
    }

    /// Forgets every answer for `path` (all versions), after a write or delete.
    pub(crate) fn invalidate(&self, path: &str) {
        self.0.invalidate_where(|k| k.path == path);
    }

    /// Forgets every answer whose path matches.
    pub(crate) fn invalidate_where(&self, matches: impl Fn(&str) -> bool) {
        self.0.invalidate_where(|k| matches(&k.path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(p: &str, version: Option<&str>) -> ReadKey {
        ReadKey {
            path: p.into(),
            version: version.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn invalidate_forgets_every_version_of_a_path_only() {
        let cache = ReadCache::new(Duration::from_secs(3600));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Value::from("v"))
        };
        for k in [key("a", None), key("a", Some("2")), key("b", None)] {
            cache.get(k.clone(), fetch).await.unwrap();
            cache.get(k, fetch).await.unwrap();
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        cache.invalidate("a");
        for k in [key("a", None), key("a", Some("2")), key("b", None)] {
            cache.get(k, fetch).await.unwrap();
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 5);
        cache.invalidate_where(|p| p.starts_with('b'));
        cache.get(key("b", None), fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 6);
    }
}
