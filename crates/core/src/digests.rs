//! What the watch of managed Secrets last showed of each Secret, without its data: its
//! resourceVersion and whether it is still as an ExternalSecret left it (upstream's
//! `isSecretValid`: the managed label, and a data-hash annotation that matches the data).
//!
//! A look at an ExternalSecret whose refresh is not due then needs no GET of its target: the
//! watch already saw it. The watch may lag behind a change; the change's own event triggers
//! another look, which sees it. A Secret the watch has not shown (not managed, not yet seen,
//! or after a restart before the first list) has no digest, and the caller reads it.

use std::collections::HashMap;
use std::sync::Mutex;

use eso_api::labels::{LABEL_MANAGED, LABEL_MANAGED_VALUE};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::watcher;

use crate::schedule::is_secret_valid_data;

/// The watched managed Secrets, by `namespace/name`.
#[derive(Debug, Default)]
pub struct SecretDigests {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    current: HashMap<String, Digest>,
    /// Being rebuilt by a relist (between `Init` and `InitDone`).
    relist: Option<HashMap<String, Digest>>,
    /// A first list has completed: a Secret not in `current` is not a managed Secret (or one
    /// so new that its event is still on the way).
    listed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Digest {
    resource_version: String,
    valid: bool,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn digest(secret: &Secret) -> Option<(String, Digest)> {
    let meta = &secret.metadata;
    let entry = Digest {
        resource_version: meta.resource_version.clone()?,
        valid: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_MANAGED))
            .is_some_and(|v| v == LABEL_MANAGED_VALUE)
            && is_secret_valid_data(secret),
    };
    Some((
        key(meta.namespace.as_deref()?, meta.name.as_deref()?),
        entry,
    ))
}

impl SecretDigests {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one event of the watch of managed Secrets.
    pub fn observe(&self, event: &watcher::Event<Secret>) {
        let mut inner = crate::lock(&self.inner);
        match event {
            watcher::Event::Init => inner.relist = Some(HashMap::new()),
            watcher::Event::InitApply(secret) => {
                if let Some((k, d)) = digest(secret) {
                    inner.relist.get_or_insert_with(HashMap::new).insert(k, d);
                }
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = inner.relist.take() {
                    inner.current = fresh;
                }
                inner.listed = true;
            }
            watcher::Event::Apply(secret) => {
                if let Some((k, d)) = digest(secret) {
                    inner.current.insert(k, d);
                }
            }
            watcher::Event::Delete(secret) => {
                if let (Some(ns), Some(name)) = (
                    secret.metadata.namespace.as_deref(),
                    secret.metadata.name.as_deref(),
                ) {
                    inner.current.remove(&key(ns, name));
                }
            }
        }
    }

    /// `Some(true)` when the watch last showed this Secret managed and unchanged since an
    /// ExternalSecret wrote it; `Some(false)` when it showed it otherwise; `None` when the
    /// watch has not shown it.
    #[must_use]
    pub fn valid(&self, namespace: &str, name: &str) -> Option<bool> {
        let inner = crate::lock(&self.inner);
        inner.current.get(&key(namespace, name)).map(|d| d.valid)
    }

    /// Whether the watch has listed the managed Secrets at least once: only then does `None`
    /// from [`valid`](Self::valid) mean "no managed Secret of that name".
    #[must_use]
    pub fn listed(&self) -> bool {
        crate::lock(&self.inner).listed
    }

    /// How many Secrets are known.
    #[must_use]
    pub fn len(&self) -> usize {
        crate::lock(&self.inner).current.len()
    }

    /// Whether no Secret is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::secret;
    use eso_api::labels::ANNOTATION_DATA_HASH;

    fn managed(name: &str, rv: &str, value: &str, hash_of: &str) -> Secret {
        let mut s = secret(name, &[("k", value)]);
        s.metadata.resource_version = Some(rv.to_owned());
        s.metadata.labels =
            Some([(LABEL_MANAGED.to_owned(), LABEL_MANAGED_VALUE.to_owned())].into());
        let data = [("k".to_owned(), hash_of.as_bytes().to_vec())].into();
        s.metadata.annotations = Some(
            [(
                ANNOTATION_DATA_HASH.to_owned(),
                crate::hash::secret_data_hash(&data),
            )]
            .into(),
        );
        s
    }

    #[test]
    fn follows_the_watch_and_a_relist_drops_what_is_gone() {
        let digests = SecretDigests::new();
        assert_eq!(digests.valid("default", "a"), None);
        assert!(!digests.listed(), "nothing was listed yet");
        digests.observe(&watcher::Event::Apply(managed("a", "1", "v", "v")));
        assert_eq!(digests.valid("default", "a"), Some(true));
        // Someone edited the data: the hash no longer matches.
        digests.observe(&watcher::Event::Apply(managed("a", "2", "edited", "v")));
        assert_eq!(digests.valid("default", "a"), Some(false));
        digests.observe(&watcher::Event::Apply(managed("b", "3", "v", "v")));
        digests.observe(&watcher::Event::Delete(managed("b", "3", "v", "v")));
        assert_eq!(digests.valid("default", "b"), None);

        // A relist replaces everything at its end; until then the old view holds.
        digests.observe(&watcher::Event::Init);
        digests.observe(&watcher::Event::InitApply(managed("c", "4", "v", "v")));
        assert_eq!(digests.valid("default", "a"), Some(false));
        digests.observe(&watcher::Event::InitDone);
        assert!(digests.listed());
        assert_eq!(digests.valid("default", "a"), None);
        assert_eq!(digests.valid("default", "c"), Some(true));
        assert_eq!(digests.len(), 1);
    }

    #[test]
    fn an_unlabelled_secret_is_not_valid() {
        let digests = SecretDigests::new();
        let mut s = managed("a", "1", "v", "v");
        s.metadata.labels = None;
        digests.observe(&watcher::Event::Apply(s));
        assert_eq!(digests.valid("default", "a"), Some(false));
    }
}
