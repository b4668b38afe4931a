//! `eso-provider-conjur`: the CyberArk Conjur provider (`spec.provider.conjur`) over Conjur's
//! REST API, with reqwest + rustls (the workspace's one TLS stack) and small types of our own.
//!
//! It owns the Conjur client of a store: logging in, variables by id, and `find`. It knows
//! nothing of Kubernetes (credentials and ServiceAccount tokens come through
//! [`eso_provider::ClientContext`]) and never reads environment variables: tuning comes from
//! [`ConjurConfig`].
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_conjur::ConjurProvider;
//!
//! let registry = ProviderRegistry::new().with(Arc::new(ConjurProvider::new()));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["conjur"]);
//! ```
//!
//! # Supported (as upstream)
//! - `url` (with a path prefix, e.g. Conjur Cloud's `/api`), `caBundle` (PEM, or base64 of
//!   PEM) or `caProvider`: only those roots are trusted.
//! - `auth.apikey`: the login (`userRef`) and API key (`apiKeyRef`) log in at
//!   `POST /authn/{account}/{login}/authenticate`.
//! - `auth.jwt`: a ServiceAccount token (`serviceAccountRef`, TokenRequest API with the
//!   selector's audiences) or a JWT kept in a Secret (`secretRef`, key `token` when none is
//!   named) logs in at `POST /authn-jwt/{serviceID}/{account}[/{hostId}]/authenticate`.
//! - Credentials on a ClusterSecretStore that name no namespace are read in the
//!   ExternalSecret's namespace (referent auth).
//! - `data[].remoteRef.key`: a variable id (`db/password`, or `account:variable:id`, qualified
//!   as `conjur-api-go` does); `property` picks a gjson path out of a JSON value.
//! - `dataFrom[].extract`: a variable holding a JSON object of strings, one key per field.
//! - `dataFrom[].find`: the variables the host may see, by `name.regexp` on the identifier and
//!   by `tags` (annotations); keys are the identifiers (`db/password`).
//! - No push, delete or exists (upstream neither).
//!
//! # Economy
//! A client logs in once and keeps its access token for 85 % of its lifetime (5 minutes when
//! the token states none), as `conjur-api-go` does; a 401 logs in again and repeats the call
//! once. `find` lists 100 resources per request and reads the matches in batches of 50. Every
//! call counts once in `externalsecret_provider_api_calls_count{provider="CyberArk/Conjur",
//! call, status}` with `call` one of `Authenticate`, `RetrieveSecret`, `RetrieveBatchSecrets`,
//! `Resources` (upstream counts no Conjur call; the names are `conjur-api-go`'s).
//!
//! # Errors
//! 404 is [`ErrorKind::NotFound`](eso_provider::ErrorKind::NotFound) (Conjur answers it for a
//! variable that does not exist, has no value, or that the host may not see), as is a missing
//! `property`; a refused login, 401 and 403 are `Auth`; 429 is `Throttled` with its
//! `Retry-After`; 408, 5xx, connection failures and timeouts are `Unavailable`. Calls are
//! retried on 5xx and connection failures, and on 429 when the server asks for a wait no longer
//! than [`ConjurConfig::max_retry_wait`], up to [`ConjurConfig::max_attempts`] attempts.
//!
//! # Differences from upstream
//! - The client logs in when it is made, so a store with wrong credentials is not Ready;
//!   upstream logs in at the first read and reports every Conjur store Ready.
//! - `remoteRef.version` reads that version (`?version=N`); upstream ignores it.
//! - `find.path` keeps identifiers under that prefix; upstream ignores it. Variables without a
//!   value are left out of `find` (upstream fails the whole `find` on them), and a variable
//!   that disappears during a `find` is `Unavailable`, never `NotFound`. Batch reads use
//!   `Accept-Encoding: base64`, so binary values work (upstream's fail with 406).
//! - A ServiceAccount token for `auth.jwt` is requested once per client, valid for
//!   [`ConjurConfig::service_account_token_lifetime`] (default 1 hour), and reused for every
//!   login until then; afterwards logins fail with `Auth` and the reconciler builds a new
//!   client (upstream requests a 10-minute token for every reconcile).
//! - Not supported: the `cert`, `iam`, `azure` and `gcp` authenticators of newer upstream
//!   versions.

mod auth;
mod client;
mod http;
mod metrics;
mod path;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::provider::ConjurProvider as ConjurSpec;
use eso_api::{SecretKeySelector, SecretStoreCapabilities, StoreKind};
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};
use reqwest::Url;

pub use client::ConjurClient;

use crate::auth::{Credentials, TokenSource};
use crate::http::{Http, RetryPolicy};
use eso_provider::http::HttpTuning;

/// Tuning of the clients a [`ConjurProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConjurConfig {
    http: HttpTuning,
    service_account_token_lifetime: Duration,
}

impl Default for ConjurConfig {
    fn default() -> Self {
        Self {
            http: HttpTuning {
                request_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(250),
                    max_wait: Duration::from_secs(10),
                },
            },
            service_account_token_lifetime: Duration::from_secs(3600),
        }
    }
}

impl ConjurConfig {
    eso_provider::http_tuning_setters! {
        field: http,
        request_timeout: "30 s",
        connect_timeout: "5 s",
        max_attempts: "3",
        retry_base_delay: "250 ms",
        max_retry_wait: "10 s",
    }

    /// How long the ServiceAccount tokens requested for `auth.jwt` are valid (default 1 hour,
    /// at least 10 minutes, the Kubernetes minimum).
    pub fn service_account_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.service_account_token_lifetime = lifetime.max(Duration::from_secs(600));
        self
    }
}

/// The `conjur` provider.
#[derive(Debug, Clone, Default)]
pub struct ConjurProvider {
    config: ConjurConfig,
}

impl ConjurProvider {
    /// A provider with the default tuning.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: ConjurConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&ConjurSpec, ProviderError> {
    store.spec.provider.conjur.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.conjur is not set",
            store.describe()
        ))
    })
}

/// Upstream's `ValidateReferentSecretSelector` / `...ServiceAccountSelector`: on a SecretStore
/// a reference may only name the store's own namespace.
fn check_namespace(store: &StoreInfo, ns: Option<&str>, field: &str) -> Result<(), String> {
    match (store.kind, ns.filter(|n| !n.is_empty())) {
        (StoreKind::SecretStore, Some(ns)) if Some(ns) != store.namespace.as_deref() => Err(
            format!("{field}.namespace must be empty or the SecretStore's own namespace"),
        ),
        _ => Ok(()),
    }
}

fn check_selector(store: &StoreInfo, s: &SecretKeySelector, field: &str) -> Result<(), String> {
    if s.name.as_deref().is_none_or(str::is_empty) {
        return Err(format!("{field}.name is required"));
    }
    check_namespace(store, s.namespace.as_deref(), field)
}

/// Upstream's `ValidateStore` checks; the parsed URL.
fn check_spec(spec: &ConjurSpec, store: &StoreInfo) -> Result<Url, ProviderError> {
    let invalid = |m: String| ProviderError::invalid_store(format!("{}: {m}", store.describe()));
    if spec.url.is_empty() {
        return Err(invalid("url is required".into()));
    }
    let url = Url::parse(&spec.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| invalid(format!("url {:?} is not an http(s) URL", spec.url)))?;
    let auth = &spec.auth;
    if usize::from(auth.api_key.is_some()) + usize::from(auth.jwt.is_some()) != 1 {
        return Err(invalid(
            "exactly one of auth.apikey and auth.jwt is required".into(),
        ));
    }
    if let Some(k) = &auth.api_key {
        if k.account.is_empty() {
            return Err(invalid("auth.apikey.account is required".into()));
        }
        check_selector(store, &k.user_ref, "auth.apikey.userRef").map_err(invalid)?;
        check_selector(store, &k.api_key_ref, "auth.apikey.apiKeyRef").map_err(invalid)?;
    }
    if let Some(j) = &auth.jwt {
        if j.account.is_empty() {
            return Err(invalid("auth.jwt.account is required".into()));
        }
        if j.service_id.is_empty() {
            return Err(invalid("auth.jwt.serviceID is required".into()));
        }
        if j.secret_ref.is_none() && j.service_account_ref.is_none() {
            return Err(invalid(
                "auth.jwt needs secretRef or serviceAccountRef".into(),
            ));
        }
        if let Some(s) = &j.secret_ref {
            check_selector(store, s, "auth.jwt.secretRef").map_err(invalid)?;
        }
        if let Some(sa) = &j.service_account_ref {
            if sa.name.is_empty() {
                return Err(invalid(
                    "auth.jwt.serviceAccountRef.name is required".into(),
                ));
            }
            check_namespace(store, sa.namespace.as_deref(), "auth.jwt.serviceAccountRef")
                .map_err(invalid)?;
        }
    }
    Ok(url)
}

/// Credentials that name no namespace on a ClusterSecretStore resolve in the namespace of each
/// ExternalSecret.
fn is_referent(spec: &ConjurSpec) -> bool {
    let unnamed = |s: &SecretKeySelector| s.namespace.as_deref().is_none_or(str::is_empty);
    if let Some(k) = &spec.auth.api_key {
        return unnamed(&k.user_ref) || unnamed(&k.api_key_ref);
    }
    spec.auth.jwt.as_ref().is_some_and(|j| {
        j.service_account_ref
            .as_ref()
            .map(|sa| sa.namespace.as_deref().is_none_or(str::is_empty))
            .or_else(|| j.secret_ref.as_ref().map(unnamed))
            .unwrap_or(false)
    })
}

fn utf8(bytes: Vec<u8>, what: &str, owner: &str) -> Result<String, ProviderError> {
    String::from_utf8(bytes).map_err(|e| {
        ProviderError::invalid_store(format!("{owner}: {what} is not UTF-8 text")).with_source(e)
    })
}

impl ConjurProvider {
    async fn credentials(
        &self,
        ctx: &ClientContext<'_>,
        spec: &ConjurSpec,
    ) -> Result<(String, Credentials), ProviderError> {
        let owner = ctx.store.describe();
        if let Some(k) = &spec.auth.api_key {
            let login = ctx
                .read_secret_key(&k.user_ref, "auth.apikey.userRef")
                .await?;
            let api_key = ctx
                .read_secret_key(&k.api_key_ref, "auth.apikey.apiKeyRef")
                .await?;
            return Ok((
                k.account.clone(),
                Credentials::ApiKey {
                    login: utf8(login, "auth.apikey.userRef", &owner)?,
                    api_key: utf8(api_key, "auth.apikey.apiKeyRef", &owner)?,
                },
            ));
        }
        let Some(j) = &spec.auth.jwt else {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: no authentication method is set"
            )));
        };
        let jwt = if let Some(sa) = &j.service_account_ref {
            let namespace = ctx.credential_namespace(sa.namespace.as_deref());
            let tokens = ctx.tokens.ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "{owner}: a token for ServiceAccount \"{namespace}/{}\" is needed, and none can be requested here (no cluster)",
                    sa.name
                ))
            })?;
            let lifetime =
                i64::try_from(self.config.service_account_token_lifetime.as_secs()).unwrap_or(3600);
            tokens
                .token(namespace, &sa.name, &sa.audiences, Some(lifetime))
                .await?
        } else if let Some(s) = &j.secret_ref {
            let mut selector = s.clone();
            if selector.key.as_deref().is_none_or(str::is_empty) {
                selector.key = Some("token".into());
            }
            let raw = ctx.read_secret_key(&selector, "auth.jwt.secretRef").await?;
            utf8(raw, "auth.jwt.secretRef", &owner)?
        } else {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: auth.jwt needs secretRef or serviceAccountRef"
            )));
        };
        Ok((
            j.account.clone(),
            Credentials::Jwt {
                service_id: j.service_id.clone(),
                host_id: j.host_id.clone().filter(|h| !h.is_empty()),
                jwt: jwt.trim().to_owned(),
            },
        ))
    }
}

#[async_trait]
impl Provider for ConjurProvider {
    fn key(&self) -> &'static str {
        "conjur"
    }

    fn display_name(&self) -> &'static str {
        metrics::PROVIDER
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
        if store.kind == StoreKind::ClusterSecretStore
            && ctx.namespace.is_empty()
            && is_referent(spec)
        {
            return Ok(Arc::new(eso_provider::ReferentPlaceholder::new(format!(
                "{owner}: its credentials are read in the namespace of each ExternalSecret (no namespace is named), so it cannot read without one"
            ))));
        }
        let ca = eso_provider::tls::load_ca_bundle(
            &ctx,
            spec.ca_bundle.as_deref(),
            spec.ca_provider.as_ref(),
            "spec.provider.conjur",
        )
        .await?;
        let config = &self.config;
        let client = config
            .http
            .client()
            .owner(owner.as_str())
            .user_agent("eso-rs")
            .no_redirects()
            .ca_pem(ca)
            .build()?;
        let http = Http::new(client, config.http.retry, "Conjur").errors(http::decode_error);
        let (account, credentials) = self.credentials(&ctx, spec).await?;
        let token = TokenSource::new(base.clone(), account.clone(), credentials, owner.clone());
        // Like the GCP provider, a client is only made with working credentials.
        token.header(&http).await?;
        Ok(Arc::new(ConjurClient::new(
            owner, base, account, http, token,
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use eso_api::SecretStoreSpec;
    use eso_api::common::ServiceAccountSelector;
    use eso_api::provider::{ConjurApiKey, ConjurAuth, ConjurJwt, SecretStoreProvider};

    fn sel(ns: Option<&str>) -> SecretKeySelector {
        SecretKeySelector {
            name: Some("creds".into()),
            namespace: ns.map(Into::into),
            key: Some("k".into()),
        }
    }

    fn store(kind: StoreKind, auth: ConjurAuth) -> StoreInfo {
        let mut s = StoreInfo::secret_store(
            "conjur",
            "apps",
            SecretStoreSpec {
                provider: SecretStoreProvider {
                    conjur: Some(ConjurSpec {
                        url: "https://conjur.example.com".into(),
                        auth,
                        ..Default::default()
                    }),
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

    fn apikey(ns: Option<&str>) -> ConjurAuth {
        ConjurAuth {
            api_key: Some(ConjurApiKey {
                account: "org".into(),
                user_ref: sel(ns),
                api_key_ref: sel(ns),
            }),
            ..Default::default()
        }
    }

    fn jwt(sa: Option<&str>, secret: bool) -> ConjurAuth {
        ConjurAuth {
            jwt: Some(ConjurJwt {
                account: "org".into(),
                service_id: "k8s".into(),
                service_account_ref: sa.map(|n| ServiceAccountSelector {
                    name: n.into(),
                    ..Default::default()
                }),
                secret_ref: secret.then(|| sel(None)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn validate_store_applies_upstreams_rules() {
        let p = ConjurProvider::new();
        let check = |s: StoreInfo| p.validate_store(&s).map(|_| ()).map_err(|e| e.to_string());
        assert!(check(store(StoreKind::SecretStore, apikey(None))).is_ok());
        assert!(check(store(StoreKind::SecretStore, apikey(Some("apps")))).is_ok());
        assert!(
            check(store(StoreKind::SecretStore, apikey(Some("other"))))
                .unwrap_err()
                .contains("own namespace")
        );
        assert!(check(store(StoreKind::ClusterSecretStore, apikey(Some("other")))).is_ok());
        assert!(check(store(StoreKind::SecretStore, jwt(Some("eso"), false))).is_ok());
        assert!(check(store(StoreKind::SecretStore, jwt(None, true))).is_ok());
        assert!(
            check(store(StoreKind::SecretStore, jwt(None, false)))
                .unwrap_err()
                .contains("secretRef or serviceAccountRef")
        );
        assert!(
            check(store(StoreKind::SecretStore, ConjurAuth::default()))
                .unwrap_err()
                .contains("exactly one")
        );
        let both = ConjurAuth {
            jwt: jwt(Some("eso"), false).jwt,
            ..apikey(None)
        };
        assert!(check(store(StoreKind::SecretStore, both)).is_err());
        let mut bad_url = store(StoreKind::SecretStore, apikey(None));
        if let Some(c) = bad_url.spec.provider.conjur.as_mut() {
            c.url = "conjur.example.com".into();
        }
        assert!(check(bad_url).unwrap_err().contains("not an http(s) URL"));
    }

    #[test]
    fn referent_specs_name_no_namespace() {
        assert!(is_referent(
            &spec_of(&store(StoreKind::ClusterSecretStore, apikey(None)))
                .unwrap()
                .clone()
        ));
        assert!(!is_referent(
            &spec_of(&store(StoreKind::ClusterSecretStore, apikey(Some("x"))))
                .unwrap()
                .clone()
        ));
        assert!(is_referent(
            &spec_of(&store(
                StoreKind::ClusterSecretStore,
                jwt(Some("eso"), false)
            ))
            .unwrap()
            .clone()
        ));
    }
}
