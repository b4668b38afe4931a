//! `eso-provider-chef`: the Chef Infra Server provider (`spec.provider.chef`): data bag items
//! over Chef's signed REST API, with reqwest + rustls (the workspace's one TLS stack).
//!
//! It owns the Chef client of a store and the request-signing protocol ([`RequestSigner`]). It
//! knows nothing of Kubernetes (the key comes through [`eso_provider::ClientContext`]) and
//! never reads environment variables: tuning comes from [`ChefConfig`].
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_chef::ChefProvider;
//!
//! let registry = ProviderRegistry::new().with(Arc::new(ChefProvider::new()));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["chef"]);
//! ```
//!
//! # Supported (as upstream)
//! - Auth: `auth.secretRef.privateKeySecretRef`, the PEM key (PKCS#1 or PKCS#8) of `username`,
//!   which signs every request (protocol 1.0, SHA-1, as go-chef). On a ClusterSecretStore the
//!   reference must name its namespace. `serverUrl` must end in `/` (with organizations, the
//!   organization's URL).
//! - `data[].remoteRef.key`: `DATABAG/ITEM`; the value is the item's JSON (keys sorted, Go's
//!   escaping, so the bytes match upstream's); `property` picks a gjson path out of it.
//! - `dataFrom[].extract.key`: `DATABAG`; one key per item, each the item's JSON.
//! - `dataFrom[].find`: not supported (upstream neither). No push, delete or exists.
//! - `validate`: reads the user (`GET users/NAME`), as upstream.
//!
//! # Economy
//! One signed GET per item; `extract` lists the bag once and reads its items concurrently
//! ([`ChefConfig::item_concurrency`]). Every call counts once in
//! `externalsecret_provider_api_calls_count{provider="Chef", call, status}` with upstream's
//! `call` names (`GetDataBagItem`, `ListDataBagItems`, `GetUser`).
//!
//! # Errors
//! 404 is [`ErrorKind::NotFound`](eso_provider::ErrorKind::NotFound) (a missing bag or item),
//! as is a property the item lacks; 401 and 403 (unknown user, bad signature, clock skew) are
//! `Auth`; 429 is `Throttled` with its `Retry-After`; 408, 5xx, connection failures and
//! timeouts are `Unavailable`. Reads are retried on 5xx and connection failures, and on 429
//! when the server asks for a wait no longer than [`ChefConfig::max_retry_wait`], up to
//! [`ChefConfig::max_attempts`] attempts, signed afresh each time.
//!
//! # Differences from upstream
//! - Upstream reports every failed item read as "not found" text (and no error of its is typed,
//!   so `deletionPolicy: Delete` never applies); here only a 404 is `NotFound`.
//! - A `property` that is a number, boolean, object or array reads as its JSON text (gjson's
//!   `String()`); upstream takes gjson's `Str`, which is empty for anything but a string.
//! - A key with more than one `/` is refused; upstream silently reads its first two parts.

mod client;
mod gojson;
mod http;
mod metrics;
mod sign;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::provider::ChefProvider as ChefSpec;
use eso_api::{SecretStoreCapabilities, StoreKind};
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};
use reqwest::Url;

pub use client::ChefClient;
pub use sign::{KeyError, RequestSigner, timestamp};

use crate::http::{Http, RetryPolicy};
use eso_provider::http::HttpTuning;

/// Tuning of the clients a [`ChefProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct ChefConfig {
    http: HttpTuning,
    item_concurrency: usize,
}

impl Default for ChefConfig {
    fn default() -> Self {
        Self {
            http: HttpTuning {
                // Upstream's `contextTimeout`.
                request_timeout: Duration::from_secs(25),
                connect_timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(250),
                    max_wait: Duration::from_secs(10),
                },
            },
            item_concurrency: 8,
        }
    }
}

impl ChefConfig {
    eso_provider::http_tuning_setters! {
        field: http,
        request_timeout: "25 s, upstream's",
        connect_timeout: "5 s",
        max_attempts: "3",
        retry_base_delay: "250 ms",
        max_retry_wait: "10 s",
    }

    /// How many items of a data bag `dataFrom.extract` reads at once (default 8).
    pub fn item_concurrency(mut self, n: usize) -> Self {
        self.item_concurrency = n.max(1);
        self
    }
}

/// The `chef` provider.
#[derive(Debug, Clone, Default)]
pub struct ChefProvider {
    config: ChefConfig,
}

impl ChefProvider {
    /// A provider with the default tuning.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: ChefConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&ChefSpec, ProviderError> {
    store.spec.provider.chef.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.chef is not set",
            store.describe()
        ))
    })
}

/// Upstream's `getChefProvider` and `ValidateSecretSelector` checks; the parsed server URL.
fn check_spec(spec: &ChefSpec, store: &StoreInfo) -> Result<Url, ProviderError> {
    let owner = store.describe();
    let invalid = |m: &str| ProviderError::invalid_store(format!("{owner}: {m}"));
    if spec.username.is_empty() {
        return Err(invalid("username is required"));
    }
    if spec.server_url.is_empty() {
        return Err(invalid("serverUrl is required"));
    }
    if !spec.server_url.ends_with('/') {
        return Err(invalid("serverUrl must end with a slash (/)"));
    }
    let url = Url::parse(&spec.server_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            invalid(&format!(
                "serverUrl {:?} is not an http(s) URL",
                spec.server_url
            ))
        })?;
    let selector = &spec.auth.secret_ref.private_key_secret_ref;
    let field = "auth.secretRef.privateKeySecretRef";
    if selector.name.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(&format!("{field}.name is required")));
    }
    if selector.key.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(&format!("{field}.key is required")));
    }
    let ns = selector.namespace.as_deref();
    match store.kind {
        StoreKind::ClusterSecretStore if ns.is_none_or(str::is_empty) => Err(invalid(&format!(
            "{field}.namespace is required on a ClusterSecretStore"
        ))),
        StoreKind::SecretStore if ns.is_some_and(|n| Some(n) != store.namespace.as_deref()) => {
            Err(invalid(&format!(
                "{field}.namespace must be empty or the SecretStore's own namespace"
            )))
        }
        _ => Ok(url),
    }
}

#[async_trait]
impl Provider for ChefProvider {
    fn key(&self) -> &'static str {
        "chef"
    }

    fn display_name(&self) -> &'static str {
        // Upstream's `ProviderChef`, the metrics label.
        "Chef"
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadOnly
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
        let pem = ctx
            .read_secret_key(
                &spec.auth.secret_ref.private_key_secret_ref,
                "auth.secretRef.privateKeySecretRef",
            )
            .await?;
        if pem.is_empty() {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: the private key in auth.secretRef.privateKeySecretRef is empty"
            )));
        }
        let pem = String::from_utf8_lossy(&pem);
        let signer = RequestSigner::from_pem(spec.username.clone(), &pem).map_err(|e| {
            ProviderError::invalid_store(format!(
                "{owner}: the key in auth.secretRef.privateKeySecretRef cannot sign requests"
            ))
            .with_source(e)
        })?;
        let config = &self.config;
        let client = config
            .http
            .client()
            .owner(owner.as_str())
            .user_agent("eso-rs")
            .no_redirects()
            .build()?;
        let http = Http::new(client, signer, config.http.retry);
        Ok(Arc::new(ChefClient::new(
            owner,
            base,
            spec.username.clone(),
            http,
            config.item_concurrency,
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use eso_api::SecretKeySelector;
    use eso_api::SecretStoreSpec;
    use eso_api::provider::{ChefAuth, ChefAuthSecretRef, SecretStoreProvider};

    fn store(kind: StoreKind, url: &str, ns: Option<&str>) -> StoreInfo {
        let spec = ChefSpec {
            username: "eso".into(),
            server_url: url.into(),
            auth: ChefAuth {
                secret_ref: ChefAuthSecretRef {
                    private_key_secret_ref: SecretKeySelector {
                        name: Some("chef".into()),
                        namespace: ns.map(Into::into),
                        key: Some("key.pem".into()),
                    },
                },
            },
        };
        let mut s = StoreInfo::secret_store(
            "chef",
            "apps",
            SecretStoreSpec {
                provider: SecretStoreProvider {
                    chef: Some(spec),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        if kind == StoreKind::ClusterSecretStore {
            s.kind = kind;
            s.namespace = None;
        }
        s
    }

    #[test]
    fn validate_store_applies_upstreams_rules() {
        let p = ChefProvider::new();
        let ok = |s: StoreInfo| p.validate_store(&s).map(|_| ()).map_err(|e| e.to_string());
        assert!(ok(store(StoreKind::SecretStore, "https://chef/", None)).is_ok());
        assert!(ok(store(StoreKind::SecretStore, "https://chef/", Some("apps"))).is_ok());
        assert!(
            ok(store(
                StoreKind::SecretStore,
                "https://chef/",
                Some("other")
            ))
            .unwrap_err()
            .contains("own namespace")
        );
        assert!(
            ok(store(StoreKind::SecretStore, "https://chef", None))
                .unwrap_err()
                .contains("end with a slash")
        );
        assert!(
            ok(store(StoreKind::SecretStore, "chef/", None))
                .unwrap_err()
                .contains("not an http(s) URL")
        );
        assert!(
            ok(store(StoreKind::ClusterSecretStore, "https://chef/", None))
                .unwrap_err()
                .contains("namespace is required")
        );
        assert!(
            ok(store(
                StoreKind::ClusterSecretStore,
                "https://chef/",
                Some("x")
            ))
            .is_ok()
        );
        let mut no_user = store(StoreKind::SecretStore, "https://chef/", None);
        if let Some(c) = no_user.spec.provider.chef.as_mut() {
            c.username.clear();
        }
        assert!(ok(no_user).unwrap_err().contains("username is required"));
        let mut none = store(StoreKind::SecretStore, "https://chef/", None);
        none.spec.provider.chef = None;
        assert!(p.validate_store(&none).is_err());
    }
}
