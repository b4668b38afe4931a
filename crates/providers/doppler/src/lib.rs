//! `eso-provider-doppler`: the Doppler provider (`spec.provider.doppler`), over Doppler's v3
//! REST API with reqwest + rustls (the workspace's one TLS stack) and small types of our own.
//!
//! It owns the Doppler client of a store: its token (from a Secret, or an OIDC exchange of a
//! ServiceAccount token), reads through the download endpoint, `find`, push, delete and
//! exists. It knows nothing of Kubernetes (credentials and ServiceAccount tokens come through
//! [`eso_provider::ClientContext`]) and never reads environment variables: upstream's
//! `DOPPLER_BASE_URL` and `DOPPLER_VERIFY_TLS` are [`DopplerConfig::base_url`] and
//! [`DopplerConfig::verify_tls`], which a binary fills from its flags or environment.
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_doppler::{DopplerConfig, DopplerProvider};
//!
//! let provider = DopplerProvider::new().config(DopplerConfig::default());
//! let registry = ProviderRegistry::new().with(Arc::new(provider));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["doppler"]);
//! // A local test server (eso-testserver-doppler) standing in for api.doppler.com:
//! let local = DopplerProvider::new()
//!     .config(DopplerConfig::default().base_url("http://127.0.0.1:8080").unwrap());
//! # let _ = local;
//! ```
//!
//! # Supported
//! - `auth.secretRef.dopplerToken` (a service, personal or service-account token; `key`
//!   defaults to `dopplerToken`; upstream's namespace rules, referent ones included), sent as
//!   the Basic user name as upstream does; `auth.oidcConfig`: a ServiceAccount token with the
//!   audiences upstream asks for (the API URL, the account's own `audiences`, then
//!   `secretStore:NAMESPACE:NAME` or `clusterSecretStore:NAME`) and `expirationSeconds`
//!   (default 600), exchanged at `POST /v3/auth/oidc` for a Doppler token that is renewed a
//!   minute before its `expires_at`.
//! - `project` and `config` (both optional with a service token, which is bound to a config).
//! - Reads (`data`, `dataFrom.extract`) download the one secret (`secrets=KEY`), with its
//!   computed value, as upstream; `property` is a gjson path in a JSON value; extract splits a
//!   JSON object into its keys.
//! - `find` downloads the whole config with the store's `nameTransformer` (the keys are
//!   Doppler's transformed names, `DOPPLER_PROJECT`, `DOPPLER_CONFIG` and
//!   `DOPPLER_ENVIRONMENT` included, as Doppler sends them) and keeps the keys matching
//!   `name.regexp` and starting with `path`. With `format`, the download is one file under the
//!   key `DOPPLER_SECRETS_FILE`.
//! - Push one Secret key to `remoteKey` (`POST /v3/configs/config/secrets`); delete (a change
//!   request with `shouldDelete`; a missing secret is already deleted); exists; validate
//!   (`GET /v3/projects`, upstream's authentication check). Like upstream, the provider
//!   declares itself `ReadOnly`, so a PushSecret is refused before it reaches it.
//!
//! # Economy
//! Every download carries `If-None-Match` with the `ETag` of the same download's last answer,
//! so an unchanged config costs a 304 and no body (upstream's ETag cache); concurrent
//! identical downloads are one request, and an answer less than
//! [`DopplerConfig::read_cache_ttl`] old (default 10 s) is served again. Writes forget every
//! cached read. An OIDC token is exchanged once per lifetime. Every API call counts once in
//! `externalsecret_provider_api_calls_count{provider="Doppler", call, status}` with `call`
//! `SecretsDownload`, `SecretsUpdate`, `ProjectsList` or `OidcAuth`.
//!
//! # Errors
//! A secret the download does not hold is [`ErrorKind::NotFound`](eso_provider::ErrorKind::NotFound) (so `deletionPolicy`
//! applies). A 404 (a missing project or config) is `InvalidStore`, never `NotFound`: a
//! misconfigured store must not read as missing secrets. 401 and 403 are `Auth`; a refused OIDC exchange is
//! `Auth`; 429 is `Throttled` with the `Retry-After` wait; 5xx, connection failures and
//! timeouts are `Unavailable`; other 4xx are `InvalidRequest`. Downloads are retried on 5xx
//! and connection failures, every call on 429 when the wait asked for is no longer than
//! [`DopplerConfig::max_retry_wait`].
//!
//! # Differences from upstream
//! - A missing secret is `NotFound`; upstream answers a plain error ("secret 'X' not found"),
//!   so `deletionPolicy` never applies there.
//! - `property` is honoured (upstream ignores it); `find.tags` and `metadataPolicy: Fetch` are
//!   refused (upstream ignores them); exists is implemented (upstream: "not implemented"); a
//!   whole-Secret push is refused (upstream pushes an empty value).
//! - An OIDC client requests its ServiceAccount token once; when both it and the Doppler
//!   token have expired the next call fails with `Auth` and the reconciler builds a new client
//!   (upstream requests one per client too, and builds a client per reconcile).
//! - Not counted upstream: the metric label `Doppler` is ours.
//!
//! # Verified against a local server
//! The integration tests run `eso-testserver-doppler`, whose REST surface and error bodies are
//! checked with Doppler's own Python SDK (`doppler-sdk`). The exact text of the `env`, `yaml`,
//! `docker` and `dotnet-json` formats comes from that server, not from Doppler; the provider
//! passes the body through unread.

mod auth;
mod client;
mod http;
mod metrics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eso_api::provider::{DopplerFormat, DopplerNameTransformer, DopplerProvider as DopplerSpec};
use eso_api::{SecretKeySelector, SecretStoreCapabilities, StoreKind};
use eso_provider::cache::ReadCache;
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};
use reqwest::Url;

pub use client::{DopplerClient, SECRETS_FILE_KEY};

use crate::auth::{Oidc, TokenSource};
use crate::http::{Http, RetryPolicy};
use eso_provider::http::HttpTuning;

/// Doppler's API.
const DEFAULT_BASE_URL: &str = "https://api.doppler.com";

/// Tuning of the clients a [`DopplerProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct DopplerConfig {
    base_url: Url,
    verify_tls: bool,
    read_cache_ttl: Duration,
    http: HttpTuning,
}

impl Default for DopplerConfig {
    fn default() -> Self {
        Self {
            #[allow(clippy::expect_used)] // A constant that parses.
            base_url: Url::parse(DEFAULT_BASE_URL).expect("the default Doppler URL"),
            verify_tls: true,
            read_cache_ttl: Duration::from_secs(10),
            http: HttpTuning {
                request_timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(250),
                    max_wait: Duration::from_secs(10),
                },
            },
        }
    }
}

/// A base URL that does not parse.
#[derive(Debug)]
pub struct InvalidBaseUrl(String);

impl std::fmt::Display for InvalidBaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid Doppler base URL {:?}", self.0)
    }
}

impl std::error::Error for InvalidBaseUrl {}

impl DopplerConfig {
    /// The API base URL (default `https://api.doppler.com`; upstream's `DOPPLER_BASE_URL`). A
    /// URL without a scheme gets `https://`, as upstream does.
    pub fn base_url(mut self, url: &str) -> Result<Self, InvalidBaseUrl> {
        let trimmed = url.trim().trim_end_matches('/');
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let parsed = Url::parse(&format!("{with_scheme}/"))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| InvalidBaseUrl(url.to_owned()))?;
        self.base_url = parsed;
        Ok(self)
    }

    /// Whether the server's certificate is checked (default true; upstream's
    /// `DOPPLER_VERIFY_TLS`).
    pub fn verify_tls(mut self, verify: bool) -> Self {
        self.verify_tls = verify;
        self
    }

    /// How long a download is served again without asking Doppler (default 10 s). Zero still
    /// shares one request between concurrent identical downloads.
    pub fn read_cache_ttl(mut self, ttl: Duration) -> Self {
        self.read_cache_ttl = ttl;
        self
    }

    eso_provider::http_tuning_setters! {
        field: http,
        request_timeout: "10 s, upstream's",
        connect_timeout: "5 s",
        max_attempts: "3",
        retry_base_delay: "250 ms",
        max_retry_wait: "10 s",
    }

    /// The API URL without a trailing slash, as upstream puts it into the OIDC audience.
    fn audience(&self) -> String {
        self.base_url.as_str().trim_end_matches('/').to_owned()
    }
}

/// The `doppler` provider.
#[derive(Debug, Clone, Default)]
pub struct DopplerProvider {
    config: DopplerConfig,
}

impl DopplerProvider {
    /// A provider talking to Doppler's API.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning (the base URL included).
    #[must_use]
    pub fn config(mut self, config: DopplerConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&DopplerSpec, ProviderError> {
    store.spec.provider.doppler.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.doppler is not set",
            store.describe()
        ))
    })
}

fn check_namespace(store: &StoreInfo, ns: Option<&str>, field: &str) -> Result<(), ProviderError> {
    if let (Some(own), Some(ns)) = (&store.namespace, ns)
        && store.kind == StoreKind::SecretStore
        && !ns.is_empty()
        && ns != own
    {
        return Err(ProviderError::invalid_store(format!(
            "{}: invalid store: {field}.namespace {ns:?} should either be empty or match the namespace of the SecretStore",
            store.describe()
        )));
    }
    Ok(())
}

/// Upstream's `ValidateStore`, and exactly one method as its CRD rule asks.
fn check_spec(spec: &DopplerSpec, store: &StoreInfo) -> Result<(), ProviderError> {
    let owner = store.describe();
    let invalid = |m: &str| ProviderError::invalid_store(format!("{owner}: invalid store: {m}"));
    let auth = &spec.auth;
    match (&auth.secret_ref, &auth.oidc_config) {
        (Some(_), Some(_)) => Err(invalid(
            "exactly one of 'secretRef' or 'oidcConfig' must be specified",
        )),
        (Some(s), None) => {
            check_namespace(
                store,
                s.doppler_token.namespace.as_deref(),
                "auth.secretRef.dopplerToken",
            )?;
            if s.doppler_token.name.as_deref().is_none_or(str::is_empty) {
                return Err(invalid("dopplerToken.name cannot be empty"));
            }
            Ok(())
        }
        (None, Some(o)) => {
            if o.identity.is_empty() {
                return Err(invalid("oidcConfig.identity cannot be empty"));
            }
            if o.service_account_ref.name.is_empty() {
                return Err(invalid("oidcConfig.serviceAccountRef.name cannot be empty"));
            }
            check_namespace(
                store,
                o.service_account_ref.namespace.as_deref(),
                "auth.oidcConfig.serviceAccountRef",
            )
        }
        (None, None) => Err(invalid(
            "either auth.secretRef or auth.oidcConfig must be specified",
        )),
    }
}

fn transformer(t: DopplerNameTransformer) -> &'static str {
    t.as_str()
}

fn format(f: DopplerFormat) -> &'static str {
    f.as_str()
}

impl DopplerProvider {
    async fn token(
        &self,
        ctx: &ClientContext<'_>,
        spec: &DopplerSpec,
        http: &Http,
    ) -> Result<TokenSource, ProviderError> {
        let store = ctx.store;
        let owner = store.describe();
        let auth = &spec.auth;
        if let Some(s) = &auth.secret_ref {
            // Upstream's default key.
            let selector = SecretKeySelector {
                key: s
                    .doppler_token
                    .key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .or_else(|| Some("dopplerToken".to_owned())),
                ..s.doppler_token.clone()
            };
            let token = ctx
                .read_secret_key(&selector, "auth.secretRef.dopplerToken")
                .await?;
            let token = String::from_utf8(token).map_err(|e| {
                ProviderError::invalid_store(format!("{owner}: the Doppler token is not UTF-8"))
                    .with_source(e)
            })?;
            return Ok(TokenSource::Static(token.trim().to_owned()));
        }
        let Some(oidc) = &auth.oidc_config else {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: either auth.secretRef or auth.oidcConfig must be specified"
            )));
        };
        let account = &oidc.service_account_ref;
        let tokens = ctx.tokens.ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{owner}: a token for ServiceAccount {:?} is needed for Doppler OIDC, and none can be requested here (no cluster)",
                account.name
            ))
        })?;
        let mut audiences = vec![self.config.audience()];
        audiences.extend(account.audiences.iter().cloned());
        let namespace = match store.kind {
            StoreKind::ClusterSecretStore => account
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(ctx.namespace),
            StoreKind::SecretStore => ctx.credential_namespace(None),
        };
        audiences.push(match store.kind {
            StoreKind::ClusterSecretStore => format!("clusterSecretStore:{}", store.name),
            StoreKind::SecretStore => format!("secretStore:{namespace}:{}", store.name),
        });
        let expiration = oidc.expiration_seconds();
        let asked = Instant::now();
        let subject = tokens
            .token(namespace, &account.name, &audiences, Some(expiration))
            .await?;
        Ok(TokenSource::Oidc(Box::new(Oidc {
            http: http.clone(),
            base: self.config.base_url.clone(),
            identity: oidc.identity.clone(),
            subject_token: subject,
            subject_expires: asked + Duration::from_secs(u64::try_from(expiration).unwrap_or(600)),
            held: tokio::sync::Mutex::new(None),
        })))
    }
}

/// Upstream's referent auth: a token Secret (or ServiceAccount) naming no namespace on a cluster
/// store resolves in the namespace of each ExternalSecret.
fn is_referent(spec: &DopplerSpec) -> bool {
    let auth = &spec.auth;
    auth.secret_ref
        .as_ref()
        .is_some_and(|s| s.doppler_token.namespace.is_none())
        || auth
            .oidc_config
            .as_ref()
            .is_some_and(|o| o.service_account_ref.namespace.is_none())
}

#[async_trait]
impl Provider for DopplerProvider {
    fn key(&self) -> &'static str {
        "doppler"
    }

    fn display_name(&self) -> &'static str {
        metrics::PROVIDER
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        // Upstream's: its client can push, but the provider declares itself read-only.
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
        check_spec(spec, store)?;
        let owner = store.describe();
        if store.kind == StoreKind::ClusterSecretStore
            && ctx.namespace.is_empty()
            && is_referent(spec)
        {
            return Ok(Arc::new(eso_provider::ReferentPlaceholder::new(format!(
                "{owner}: its Doppler credentials are referent (they name no namespace); they resolve only in the namespace of an ExternalSecret"
            ))));
        }
        let config = &self.config;
        let client = config
            .http
            .client()
            .owner(owner.as_str())
            .user_agent("doppler-external-secrets")
            .accept_json()
            .accept_invalid_certs(!config.verify_tls)
            .build()?;
        let http = Http::new(client, config.http.retry, "Doppler").errors(http::decode_error);
        let auth = self.token(&ctx, spec, &http).await?;
        // Exchange an OIDC token now, as upstream does, so a refused identity fails the client.
        auth.token(&owner).await?;
        Ok(Arc::new(DopplerClient {
            store: owner,
            http,
            base: config.base_url.clone(),
            auth,
            project: spec.project.clone().filter(|p| !p.is_empty()),
            config: spec.config.clone().filter(|c| !c.is_empty()),
            transformer: spec.name_transformer.map(transformer),
            format: spec.format.map(format),
            etags: Mutex::new(HashMap::new()),
            reads: ReadCache::new(config.read_cache_ttl),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_get_a_scheme_and_lose_the_slash() {
        let c = DopplerConfig::default();
        assert_eq!(c.audience(), "https://api.doppler.com");
        let c = c.base_url("doppler.internal/").unwrap();
        assert_eq!(c.audience(), "https://doppler.internal");
        let c = c.base_url("http://127.0.0.1:9").unwrap();
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:9/");
        assert!(DopplerConfig::default().base_url("ftp://x").is_err());
    }
}
