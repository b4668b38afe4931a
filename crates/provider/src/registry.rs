use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{Provider, ProviderError, StoreInfo};

/// Maps a store's provider key to its implementation. The operator and `sync-once` fill it
/// with the built-in providers; an embedding tool can add its own.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<&'static str, Arc<dyn Provider>>,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.keys()).finish()
    }
}

impl ProviderRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider, replacing any with the same key.
    #[must_use]
    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.register(provider);
        self
    }

    /// Adds a provider, replacing any with the same key.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.providers.insert(provider.key(), provider);
    }

    /// The keys of every registered provider.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.providers.keys().copied()
    }

    /// The provider for a store: an error when the store sets no provider, several, or one
    /// that is not registered.
    pub fn for_store(&self, store: &StoreInfo) -> Result<Arc<dyn Provider>, ProviderError> {
        let keys = store.spec.provider.keys();
        let key = match keys.as_slice() {
            [one] => *one,
            [] => {
                return Err(ProviderError::invalid_store(format!(
                    "{}: spec.provider sets no provider",
                    store.describe()
                )));
            }
            many => {
                return Err(ProviderError::invalid_store(format!(
                    "{}: spec.provider must set exactly one provider, found {}",
                    store.describe(),
                    many.join(", ")
                )));
            }
        };
        self.providers.get(key).cloned().ok_or_else(|| {
            ProviderError::unsupported(format!(
                "{}: provider {key:?} is not supported (supported: {})",
                store.describe(),
                self.providers
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}
