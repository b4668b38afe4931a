//! `eso-provider-infisical`: the Infisical provider (`spec.provider.infisical`), over
//! Infisical's REST API with reqwest + rustls (the workspace's one TLS stack) and small types
//! of our own.
//!
//! It owns the Infisical client of a store: the machine-identity login and its access token,
//! reads, `find`, push, delete and exists. It knows nothing of Kubernetes (credentials come
//! through [`eso_provider::ClientContext`]) and never reads environment variables: the API
//! base URL is the store's `hostAPI` and tuning comes from [`InfisicalConfig`].
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_infisical::{InfisicalConfig, InfisicalProvider};
//!
//! let provider = InfisicalProvider::new()
//!     .config(InfisicalConfig::default().read_cache_ttl(Duration::from_secs(30)));
//! let registry = ProviderRegistry::new().with(Arc::new(provider));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["infisical"]);
//! ```
//!
//! # Supported
//! - Login methods, in upstream's order of precedence: `universalAuthCredentials` (client ID
//!   and secret), `jwtAuthCredentials`, `ldapAuthCredentials`, `kubernetesAuthCredentials`
//!   (the pod's ServiceAccount token file, at the path a Secret names or
//!   [`InfisicalConfig::service_account_token_path`]) and `tokenAuthCredentials` (a
//!   pre-issued access token). Credential Secrets follow upstream's namespace rules, referent
//!   ones included. `hostAPI` (with or without its `/api` suffix), `caBundle` and
//!   `caProvider`.
//! - Reads (`data`, `dataFrom.extract`) by key: a bare name in `secretsScope.secretsPath`, an
//!   absolute `/folder/name`, or a `folder/name` relative to it; `version`; `property` (a
//!   gjson path in a JSON value); secret references expanded when
//!   `secretsScope.expandSecretReferences` (default true); folder imports included. Extract
//!   splits a JSON object into its keys (strings unquoted).
//! - `find` by `name.regexp` and by `path` (a prefix of each secret's folder), over the
//!   store's folder (and, with `secretsScope.recursive`, every folder below it) and its
//!   imports; keys are returned as Infisical names them.
//! - Push: a missing secret is created, a different value updated (no write when it already
//!   holds the value); with a `property` the value is set inside the secret's JSON object.
//!   Delete (a `property` alone, the secret once no property remains, a missing one is already
//!   deleted), exists, validate (lists the scope).
//!
//! # Economy
//! One login when the client is built, its token reused until shortly before `expiresIn` runs
//! out (then one new login), and once more after a 401. Concurrent reads of one (folder, key,
//! version) are one request, and an answer less than [`InfisicalConfig::read_cache_ttl`] old
//! (default 10 s) is served again; writes forget the key's cached reads. The project ID that
//! writes need is resolved once per client. Every API call counts once in
//! `externalsecret_provider_api_calls_count{provider="infisical", call, status}` with
//! upstream's `call` names (`GetSecretByKeyV3`, `GetSecretsV3`, `CreateSecretV3`,
//! `UpdateSecretV3`, `DeleteSecretV3`, `GetWorkspaceBySlug`, `RevokeAccessToken` and the
//! `MachineIdentityLoginVia*Auth` logins).
//!
//! # Errors
//! 404 for a secret (or its folder) is [`ErrorKind::NotFound`](eso_provider::ErrorKind::NotFound) (so `deletionPolicy`
//! applies); a 404 for the store's project or environment, or for a route the server does not
//! have (a wrong `hostAPI`), is `InvalidStore`, so a misconfigured store never reads as
//! missing secrets. A `property` the value does not hold is `InvalidRequest`, as
//! upstream's plain error is. 401 and 403 are `Auth` (a 401 logs in again and retries once);
//! any refused login is `Auth`. 429 is `Throttled` with the `Retry-After` wait; 408, 5xx,
//! connection failures and timeouts are `Unavailable`; other 4xx are `InvalidRequest`.
//! Reads are retried on 5xx and connection failures, and every call on 429 when the wait
//! asked for is no longer than [`InfisicalConfig::max_retry_wait`], up to
//! [`InfisicalConfig::max_attempts`] attempts. A project slug that no project has is
//! `InvalidStore`, never `NotFound`.
//!
//! # Differences from upstream
//! - Only a 404 for a secret or folder is "does not exist"; upstream treats every 404 so, a
//!   missing project or environment included.
//! - `remoteRef.version` reads that version (upstream ignores it); `metadataPolicy: Fetch` is
//!   refused (upstream ignores it and returns the value).
//! - A `property` naming a number, boolean, object or array returns its JSON text (upstream
//!   returns an empty value for anything but a string).
//! - Clients are kept across reconciles (upstream logs in, and revokes the token, on every
//!   reconcile); `close` revokes a logged-in token.
//! - Not supported: `azureAuthCredentials`, `gcpIdTokenAuthCredentials`,
//!   `gcpIamAuthCredentials`, `ociAuthCredentials` and `awsAuthCredentials` (they need each
//!   cloud's instance identity, which cannot be tested here); a store using one fails
//!   validation with `Unsupported`.
//!
//! # Verified against a local server
//! The integration tests run `eso-testserver-infisical`, whose REST surface, login exchanges
//! and error bodies are checked with Infisical's own Python SDK (`infisicalsdk`).

mod auth;
mod client;
mod http;
mod json_path;
mod metrics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::provider::InfisicalProvider as InfisicalSpec;
use eso_api::{SecretKeySelector, SecretStoreCapabilities, StoreKind};
use eso_provider::cache::ReadCache;
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};
use reqwest::Url;

pub use client::InfisicalClient;

use crate::auth::{Credentials, TokenSource};
use crate::client::Scope;
use crate::http::{Http, RetryPolicy};
use eso_provider::http::HttpTuning;

/// Where the kubelet mounts a pod's ServiceAccount token (the Infisical SDK's default).
const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Tuning of the clients an [`InfisicalProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct InfisicalConfig {
    read_cache_ttl: Duration,
    http: HttpTuning,
    service_account_token_path: PathBuf,
}

impl Default for InfisicalConfig {
    fn default() -> Self {
        Self {
            read_cache_ttl: Duration::from_secs(10),
            http: HttpTuning {
                request_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(250),
                    max_wait: Duration::from_secs(10),
                },
            },
            service_account_token_path: PathBuf::from(DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH),
        }
    }
}

impl InfisicalConfig {
    /// How long a read answer is served again without asking Infisical (default 10 s). Zero
    /// still shares one request between concurrent identical reads.
    pub fn read_cache_ttl(mut self, ttl: Duration) -> Self {
        self.read_cache_ttl = ttl;
        self
    }

    eso_provider::http_tuning_setters! {
        field: http,
        request_timeout: "30 s",
        connect_timeout: "5 s",
        max_attempts: "3",
        retry_base_delay: "250 ms",
        max_retry_wait: "10 s",
    }

    /// The ServiceAccount token file `kubernetesAuthCredentials` reads when the store names
    /// none (default `/var/run/secrets/kubernetes.io/serviceaccount/token`).
    pub fn service_account_token_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.service_account_token_path = path.into();
        self
    }
}

/// The `infisical` provider.
#[derive(Debug, Clone, Default)]
pub struct InfisicalProvider {
    config: InfisicalConfig,
}

impl InfisicalProvider {
    /// A provider with the default tuning.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: InfisicalConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&InfisicalSpec, ProviderError> {
    store.spec.provider.infisical.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.infisical is not set",
            store.describe()
        ))
    })
}

/// The selectors a login method reads, with their field names.
fn selectors(spec: &InfisicalSpec) -> Vec<(&'static str, &SecretKeySelector)> {
    let a = &spec.auth;
    let mut out = Vec::new();
    if let Some(u) = &a.universal_auth_credentials {
        out.push(("auth.universalAuthCredentials.clientId", &u.client_id));
        out.push((
            "auth.universalAuthCredentials.clientSecret",
            &u.client_secret,
        ));
    }
    if let Some(j) = &a.jwt_auth_credentials {
        out.push(("auth.jwtAuthCredentials.identityId", &j.identity_id));
        out.push(("auth.jwtAuthCredentials.jwt", &j.jwt));
    }
    if let Some(l) = &a.ldap_auth_credentials {
        out.push(("auth.ldapAuthCredentials.identityId", &l.identity_id));
        out.push(("auth.ldapAuthCredentials.ldapUsername", &l.ldap_username));
        out.push(("auth.ldapAuthCredentials.ldapPassword", &l.ldap_password));
    }
    if let Some(k) = &a.kubernetes_auth_credentials {
        out.push(("auth.kubernetesAuthCredentials.identityId", &k.identity_id));
        if let Some(p) = &k.service_account_token_path {
            out.push(("auth.kubernetesAuthCredentials.serviceAccountTokenPath", p));
        }
    }
    if let Some(t) = &a.token_auth_credentials {
        out.push(("auth.tokenAuthCredentials.accessToken", &t.access_token));
    }
    out
}

fn check_spec(spec: &InfisicalSpec, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
    let owner = store.describe();
    let scope = &spec.secrets_scope;
    if scope.project_slug.is_empty() || scope.environment_slug.is_empty() {
        return Err(ProviderError::invalid_store(format!(
            "{owner}: secretsScope.projectSlug and secretsScope.environmentSlug cannot be empty"
        )));
    }
    if let Some(ca) = &spec.ca_provider {
        eso_provider::tls::check_ca_provider(ca, store.kind, "caProvider")
            .map_err(|m| ProviderError::invalid_store(format!("{owner}: {m}")))?;
    }
    let methods = spec.auth.methods();
    let Some(first) = methods.first() else {
        return Err(ProviderError::invalid_store(format!(
            "{owner}: spec.provider.infisical.auth sets no authentication method"
        )));
    };
    if matches!(
        *first,
        "azureAuthCredentials"
            | "gcpIdTokenAuthCredentials"
            | "gcpIamAuthCredentials"
            | "ociAuthCredentials"
            | "awsAuthCredentials"
    ) {
        return Err(ProviderError::unsupported(format!(
            "{owner}: infisical auth.{first} is not supported by eso-rs (supported: universalAuthCredentials, jwtAuthCredentials, ldapAuthCredentials, kubernetesAuthCredentials, tokenAuthCredentials)"
        )));
    }
    for (field, sel) in selectors(spec) {
        if sel.name.as_deref().is_none_or(str::is_empty)
            || sel.key.as_deref().is_none_or(str::is_empty)
        {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: {field} needs a name and a key"
            )));
        }
        if let (Some(own), Some(ns)) = (&store.namespace, sel.namespace.as_deref())
            && store.kind == StoreKind::SecretStore
            && !ns.is_empty()
            && ns != own
        {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: {field}.namespace {ns:?} should either be empty or match the namespace of the SecretStore"
            )));
        }
    }
    let mut warnings = Vec::new();
    if methods.len() > 1 {
        warnings.push(format!(
            "several infisical auth methods are set ({}); only {first} is used",
            methods.join(", ")
        ));
    }
    Ok(warnings)
}

/// Upstream's referent auth: credentials that name no namespace on a cluster store resolve in
/// the namespace of each ExternalSecret.
fn is_referent(spec: &InfisicalSpec) -> bool {
    selectors(spec).iter().any(|(_, s)| s.namespace.is_none())
}

/// The API root: `hostAPI` with `/api` appended unless it ends so (the SDK's rule), as a
/// directory URL that relative paths join onto.
fn api_base(host: &str, owner: &str) -> Result<Url, ProviderError> {
    let trimmed = host.trim_end_matches('/');
    let root = if trimmed.ends_with("/api") {
        format!("{trimmed}/")
    } else {
        format!("{trimmed}/api/")
    };
    let url = Url::parse(&root).map_err(|e| {
        ProviderError::invalid_store(format!("{owner}: hostAPI {host:?} is not a URL"))
            .with_source(e)
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::invalid_store(format!(
            "{owner}: hostAPI {host:?} is not an http(s) URL"
        )));
    }
    Ok(url)
}

async fn read_string(
    ctx: &ClientContext<'_>,
    selector: &SecretKeySelector,
    field: &str,
) -> Result<String, ProviderError> {
    let bytes = ctx.read_secret_key(selector, field).await?;
    String::from_utf8(bytes).map_err(|e| {
        ProviderError::invalid_store(format!(
            "{}: {field} is not UTF-8 text",
            ctx.store.describe()
        ))
        .with_source(e)
    })
}

async fn credentials(
    ctx: &ClientContext<'_>,
    spec: &InfisicalSpec,
    default_token_path: &std::path::Path,
) -> Result<Credentials, ProviderError> {
    let a = &spec.auth;
    if let Some(u) = &a.universal_auth_credentials {
        return Ok(Credentials::Universal {
            client_id: read_string(ctx, &u.client_id, "auth.universalAuthCredentials.clientId")
                .await?,
            client_secret: read_string(
                ctx,
                &u.client_secret,
                "auth.universalAuthCredentials.clientSecret",
            )
            .await?,
        });
    }
    if let Some(j) = &a.jwt_auth_credentials {
        return Ok(Credentials::Jwt {
            identity_id: read_string(ctx, &j.identity_id, "auth.jwtAuthCredentials.identityId")
                .await?,
            jwt: read_string(ctx, &j.jwt, "auth.jwtAuthCredentials.jwt").await?,
        });
    }
    if let Some(l) = &a.ldap_auth_credentials {
        return Ok(Credentials::Ldap {
            identity_id: read_string(ctx, &l.identity_id, "auth.ldapAuthCredentials.identityId")
                .await?,
            username: read_string(
                ctx,
                &l.ldap_username,
                "auth.ldapAuthCredentials.ldapUsername",
            )
            .await?,
            password: read_string(
                ctx,
                &l.ldap_password,
                "auth.ldapAuthCredentials.ldapPassword",
            )
            .await?,
        });
    }
    if let Some(k) = &a.kubernetes_auth_credentials {
        let token_path = match &k.service_account_token_path {
            Some(sel) => PathBuf::from(
                read_string(
                    ctx,
                    sel,
                    "auth.kubernetesAuthCredentials.serviceAccountTokenPath",
                )
                .await?
                .trim(),
            ),
            None => default_token_path.to_path_buf(),
        };
        return Ok(Credentials::Kubernetes {
            identity_id: read_string(
                ctx,
                &k.identity_id,
                "auth.kubernetesAuthCredentials.identityId",
            )
            .await?,
            token_path,
        });
    }
    if let Some(t) = &a.token_auth_credentials {
        return Ok(Credentials::Token {
            access_token: read_string(
                ctx,
                &t.access_token,
                "auth.tokenAuthCredentials.accessToken",
            )
            .await?,
        });
    }
    Err(ProviderError::invalid_store(format!(
        "{}: spec.provider.infisical.auth sets no supported authentication method",
        ctx.store.describe()
    )))
}

#[async_trait]
impl Provider for InfisicalProvider {
    fn key(&self) -> &'static str {
        "infisical"
    }

    fn display_name(&self) -> &'static str {
        // Upstream's metrics provider label (`constants.ProviderName`).
        "infisical"
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadWrite
    }

    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        check_spec(spec_of(store)?, store)
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
                "{owner}: its credentials are referent (they name no namespace); they resolve only in the namespace of an ExternalSecret"
            ))));
        }
        let base = api_base(spec.host_api(), &owner)?;
        let config = &self.config;
        let ca = eso_provider::tls::load_ca_bundle(
            &ctx,
            spec.ca_bundle.as_deref(),
            spec.ca_provider.as_ref(),
            "spec.provider.infisical",
        )
        .await?;
        let client = config
            .http
            .client()
            .owner(owner.as_str())
            .user_agent("eso-rs")
            .accept_json()
            .ca_pem(ca)
            .build()?;
        let http = Http::new(client, config.http.retry, "Infisical").errors(http::decode_error);
        let creds = credentials(&ctx, spec, &config.service_account_token_path).await?;
        let auth = TokenSource::new(http.clone(), base.clone(), owner.clone(), creds);
        // Log in now, as upstream does, so that bad credentials fail the client.
        auth.token().await?;
        let scope = &spec.secrets_scope;
        Ok(Arc::new(InfisicalClient {
            store: owner,
            http,
            base,
            auth,
            scope: Scope {
                project_slug: scope.project_slug.clone(),
                environment: scope.environment_slug.clone(),
                path: client::clean_scope_path(scope.secrets_path()),
                recursive: scope.recursive(),
                expand_references: scope.expand_secret_references(),
            },
            project_id: tokio::sync::Mutex::new(None),
            reads: ReadCache::new(config.read_cache_ttl),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_appends_api_once() {
        for (host, want) in [
            (
                "https://app.infisical.com/api",
                "https://app.infisical.com/api/",
            ),
            (
                "https://app.infisical.com",
                "https://app.infisical.com/api/",
            ),
            ("https://x.example/", "https://x.example/api/"),
            ("http://127.0.0.1:9/api/", "http://127.0.0.1:9/api/"),
        ] {
            assert_eq!(api_base(host, "s").unwrap().as_str(), want, "{host}");
        }
        assert!(api_base("ftp://x", "s").is_err());
        assert!(api_base("not a url", "s").is_err());
    }
}
