//! `eso-provider-onepassword`: the 1Password Connect provider (`spec.provider.onepassword`),
//! over the Connect server's REST API with reqwest + rustls (the workspace's one TLS stack) and
//! small types of our own.
//!
//! It owns the Connect client of a store: vault lookup, item reads (fields and files), `find`,
//! push, delete and exists. It knows nothing of Kubernetes (the token comes through
//! [`eso_provider::ClientContext`]) and never reads environment variables: the server is the
//! store's `connectHost` and tuning comes from [`OnePasswordConfig`].
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_onepassword::{OnePasswordConfig, OnePasswordProvider};
//!
//! let provider = OnePasswordProvider::new().config(OnePasswordConfig::default());
//! let registry = ProviderRegistry::new().with(Arc::new(provider));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["onepassword"]);
//! ```
//!
//! # Supported
//! - A Connect token from a Secret (`auth.secretRef.connectTokenSecretRef`, upstream's
//!   namespace rules, referent ones included); `connectHost` over HTTP or HTTPS.
//! - Reads by item title, or by item ID (26 lowercase letters and digits, falling back to the
//!   title as the Connect SDKs do), in each of `vaults` by ascending priority; the first vault
//!   holding the item wins; several items with the title in one vault is an error. `property`
//!   names a field label (default `password`) or, with a `file/` prefix or in a `DOCUMENT`
//!   item, a file (default: the first); `field/` forces a field. `dataFrom.extract` returns
//!   every field (or every file) of the item by label (or name).
//! - `find` by `name.regexp` (over field labels and file names), `path` (an item's exact
//!   title) and `tags` (items carrying every tag key), over every vault in priority order; a
//!   key already taken by an earlier item or vault is kept.
//! - Push: one Secret key into the field labeled `property` (default `password`) of the item
//!   titled `remoteKey`, created (category `SERVER`, a concealed field) in the metadata's
//!   `spec.vault` or the first vault, with the metadata's `spec.tags`; an existing item's field
//!   is updated or added and its tags replaced. The push then waits until Connect shows the
//!   value, as upstream does. Delete removes the field, and the item once nothing remains;
//!   exists; validate (every vault is found).
//!
//! # Economy
//! A vault name is resolved to its ID at most once every five minutes per client. Concurrent
//! reads of one item are one lookup, and an item read less than
//! [`OnePasswordConfig::read_cache_ttl`] ago (default 10 s) is served again, so the several
//! `data` entries of one ExternalSecret that name fields of one item cost one lookup; file
//! contents are cached the same way. A push that changes nothing writes nothing. Every API
//! call counts once in `externalsecret_provider_api_calls_count{provider="1Password/Connect",
//! call, status}` with the Connect SDK's method names (`GetVault`, `GetVaultsByTitle`,
//! `GetItems`, `GetItemsByTitle`, `GetItemByUUID`, `GetFileContent`, `CreateItem`,
//! `UpdateItem`, `DeleteItem`).
//!
//! # Errors
//! An item no vault holds is [`ErrorKind::NotFound`](eso_provider::ErrorKind::NotFound) (so `deletionPolicy` applies). A vault
//! that cannot be found is `InvalidStore`, never `NotFound`. A missing or duplicated field
//! label, a missing file and several items with one title are `InvalidRequest`, as upstream's
//! plain errors are. 401 and 403 are `Auth` (a 403 `Authorization…` is retried a few times
//! first, as upstream does); 429 is `Throttled` with the `Retry-After` wait; 5xx, connection
//! failures and timeouts are `Unavailable`. Reads are retried on 5xx and connection failures,
//! and every call on 429 when the wait asked for is no longer than
//! [`OnePasswordConfig::max_retry_wait`].
//!
//! # Differences from upstream
//! - Upstream treats a key as an item ID only in RFC 4122 form, which 1Password IDs never
//!   have, so it always searches by title; here a key shaped like a 1Password ID is read by
//!   ID first.
//! - `find` with `tags` searches every vault (upstream stops after the first), and collects
//!   files too (upstream means to, but reads them from item summaries, which carry none).
//! - Delete without a `property` removes the `password` field, the one a push without a
//!   property writes (upstream removes a field with an empty label); exists is implemented
//!   (upstream answers "not implemented"); a push that changes nothing writes nothing
//!   (upstream rewrites the item every time); `metadataPolicy: Fetch` is refused.
//! - Not counted upstream: the metric label `1Password/Connect` is ours.
//!
//! # Verified against a local server
//! The integration tests run `eso-testserver-onepassword`, whose REST surface and error bodies
//! are checked with 1Password's own Python SDK (`onepasswordconnectsdk`).

mod client;
mod http;
mod item;
mod metrics;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::provider::OnePasswordProvider as OnePasswordSpec;
use eso_api::{SecretStoreCapabilities, StoreKind};
use eso_provider::cache::ReadCache;
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};
use reqwest::Url;

pub use client::OnePasswordClient;

use crate::http::{Http, RetryPolicy};
use eso_provider::http::HttpTuning;

/// Tuning of the clients a [`OnePasswordProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct OnePasswordConfig {
    read_cache_ttl: Duration,
    http: HttpTuning,
    settle_timeout: Duration,
    settle_interval: Duration,
}

impl Default for OnePasswordConfig {
    fn default() -> Self {
        Self {
            read_cache_ttl: Duration::from_secs(10),
            http: HttpTuning {
                request_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(100),
                    max_wait: Duration::from_secs(10),
                },
            },
            // Upstream's wait for Connect to show a write: every 0.5 s, up to 5 s.
            settle_timeout: Duration::from_secs(5),
            settle_interval: Duration::from_millis(500),
        }
    }
}

impl OnePasswordConfig {
    /// How long an item read is served again without asking Connect (default 10 s). Zero
    /// still shares one lookup between concurrent identical reads.
    pub fn read_cache_ttl(mut self, ttl: Duration) -> Self {
        self.read_cache_ttl = ttl;
        self
    }

    eso_provider::http_tuning_setters! {
        field: http,
        request_timeout: "30 s",
        connect_timeout: "5 s",
        max_attempts: "3",
        retry_base_delay: "100 ms",
        max_retry_wait: "10 s",
    }

    /// How long a push waits for Connect to show what it wrote (default 5 s), and how often
    /// it looks (default every 0.5 s).
    pub fn settle(mut self, timeout: Duration, interval: Duration) -> Self {
        self.settle_timeout = timeout;
        self.settle_interval = interval;
        self
    }
}

/// The `onepassword` provider.
#[derive(Debug, Clone, Default)]
pub struct OnePasswordProvider {
    config: OnePasswordConfig,
}

impl OnePasswordProvider {
    /// A provider with the default tuning.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: OnePasswordConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&OnePasswordSpec, ProviderError> {
    store.spec.provider.onepassword.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.onepassword is not set",
            store.describe()
        ))
    })
}

/// Upstream's `validateStore`.
fn check_spec(spec: &OnePasswordSpec, store: &StoreInfo) -> Result<Url, ProviderError> {
    let owner = store.describe();
    let invalid = |m: String| ProviderError::invalid_store(format!("{owner}: {m}"));
    let token = spec
        .auth
        .as_ref()
        .and_then(|a| a.secret_ref.as_ref())
        .map(|s| &s.connect_token)
        .ok_or_else(|| {
            invalid(
                "spec.provider.onepassword.auth.secretRef.connectTokenSecretRef is required".into(),
            )
        })?;
    if token.name.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(
            "missing: spec.provider.onepassword.auth.secretRef.connectTokenSecretRef.name".into(),
        ));
    }
    if token.key.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(
            "missing: spec.provider.onepassword.auth.secretRef.connectTokenSecretRef.key".into(),
        ));
    }
    if let (Some(own), Some(ns)) = (&store.namespace, token.namespace.as_deref())
        && store.kind == StoreKind::SecretStore
        && !ns.is_empty()
        && ns != own
    {
        return Err(invalid(format!(
            "auth.secretRef.connectTokenSecretRef.namespace {ns:?} should either be empty or match the namespace of the SecretStore"
        )));
    }
    if spec.vaults.is_empty() {
        return Err(invalid(
            "must be at least one vault: spec.provider.onepassword.vaults".into(),
        ));
    }
    let numbers: BTreeSet<i64> = spec.vaults.values().copied().collect();
    if numbers.len() != spec.vaults.len() {
        return Err(invalid("vault order numbers must be unique".into()));
    }
    let url = Url::parse(&spec.connect_host).map_err(|e| {
        invalid(format!(
            "unable to parse URL: spec.provider.onepassword.connectHost {:?}",
            spec.connect_host
        ))
        .with_source(e)
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "spec.provider.onepassword.connectHost {:?} is not an http(s) URL",
            spec.connect_host
        )));
    }
    Ok(url)
}

#[async_trait]
impl Provider for OnePasswordProvider {
    fn key(&self) -> &'static str {
        "onepassword"
    }

    fn display_name(&self) -> &'static str {
        metrics::PROVIDER
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadWrite
    }

    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        check_spec(spec_of(store)?, store)?;
        Ok(Vec::new())
    }

    async fn new_client(
        &self,
        ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = ctx.store;
        let spec = spec_of(store)?;
        let base = check_spec(spec, store)?;
        let owner = store.describe();
        let selector = spec
            .auth
            .as_ref()
            .and_then(|a| a.secret_ref.as_ref())
            .map(|s| &s.connect_token);
        let Some(selector) = selector else {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: spec.provider.onepassword.auth is required"
            )));
        };
        if store.kind == StoreKind::ClusterSecretStore
            && ctx.namespace.is_empty()
            && selector.namespace.is_none()
        {
            return Ok(Arc::new(eso_provider::ReferentPlaceholder::new(format!(
                "{owner}: its Connect token is referent (it names no namespace); it resolves only in the namespace of an ExternalSecret"
            ))));
        }
        let token = ctx
            .read_secret_key(selector, "auth.secretRef.connectTokenSecretRef")
            .await?;
        let token = String::from_utf8(token)
            .map_err(|e| {
                ProviderError::invalid_store(format!("{owner}: the Connect token is not UTF-8"))
                    .with_source(e)
            })?
            .trim()
            .to_owned();
        let config = &self.config;
        let client = config
            .http
            .client()
            .owner(owner.as_str())
            .user_agent("external-secrets")
            .accept_json()
            .build()?;
        let http = Http::new(client, config.http.retry, "1Password Connect")
            .errors(http::decode_error)
            .retry_also(http::retry_forbidden);
        Ok(Arc::new(OnePasswordClient {
            store: owner,
            http,
            base,
            token,
            vaults: spec
                .ordered_vaults()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            vault_ids: ReadCache::new(Duration::ZERO),
            items: ReadCache::new(config.read_cache_ttl),
            files: ReadCache::new(config.read_cache_ttl),
            settle_timeout: config.settle_timeout,
            settle_interval: config.settle_interval,
        }))
    }
}
