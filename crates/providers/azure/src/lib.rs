//! `eso-provider-azure`: the Azure Key Vault provider (`spec.provider.azurekv`), speaking Key
//! Vault's REST API (version 7.4) and Entra ID's OAuth 2.0 token endpoint over reqwest +
//! rustls, with small types of its own instead of the Azure SDK crates.
//!
//! It owns the Key Vault client of a store: logins and their tokens, reads of secrets, keys
//! and certificates, `find`, push, delete and exists. It knows nothing of Kubernetes
//! (credentials come through [`eso_provider::ClientContext`]) and reads no environment
//! variable: endpoints and the mounted workload identity come from [`AzureConfig`], which
//! binaries fill (from `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_AUTHORITY_HOST` or flags).
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_azure::{AzureConfig, AzureKvProvider};
//!
//! let config = AzureConfig::default()
//!     .authority_host("https://127.0.0.1:8443/")
//!     .imds_endpoint("http://127.0.0.1:8080/metadata/identity/oauth2/token");
//! let registry = ProviderRegistry::new().with(Arc::new(AzureKvProvider::new().config(config)));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["azurekv"]);
//! ```
//!
//! # Supported (upstream's feature set)
//! - Logins (`authType`): `ServicePrincipal` with `authSecretRef.clientId` and either
//!   `clientSecret` or `clientCertificate` (PEM certificate and RSA key; a client assertion
//!   signed RS256 with the certificate's `x5t`), tenant from `tenantId`; `WorkloadIdentity`
//!   with `serviceAccountRef` (a TokenRequest token with audience `api://AzureADTokenExchange`
//!   plus the ref's audiences, exchanged as a client assertion; client and tenant from
//!   `authSecretRef`, `tenantId` or the ServiceAccount's `azure.workload.identity/client-id`
//!   and `/tenant-id` annotations, both places at once being an error, as upstream) or without
//!   it (the mounted token of [`WorkloadIdentityEnv`]); `ManagedIdentity` through IMDS, with
//!   `identityId` as the client id.
//! - `environmentType`: `PublicCloud`, `USGovernmentCloud`, `ChinaCloud`, `GermanCloud` set the
//!   Entra ID authority and the Key Vault token audience; `AzureStackCloud` and
//!   `customCloudConfig` (which, as upstream, need `useAzureSDK: true`) take the authority from
//!   `activeDirectoryEndpoint` and the audience from `keyVaultEndpoint`, else from the vault
//!   URL's domain.
//! - Keys `name`, `secret/name`, `key/name`, `cert/name`: a secret's value, a key's public JWK
//!   (fields in the order upstream's SDK type marshals them), a certificate's DER (`cer`, as
//!   upstream returns it, not PEM). `version`, `property` (gjson path, then the property with
//!   literal dots). `metadataPolicy: Fetch` gives the tags plus `attribute.created`,
//!   `.updated`, `.expires`, `.notBefore` (RFC 3339): all as JSON, or one tag (or a path inside
//!   a JSON tag) with `property`. `dataFrom.extract` splits a JSON secret; with `Fetch` it gives
//!   `<name>_<tag>` entries (JSON tags expanded) as upstream.
//! - `dataFrom.find` by name regexp and tags over every enabled secret (`nextLink` paging),
//!   keys as the vault names them; `path` is ignored, as upstream.
//! - Push: secrets (with the `managed-by: external-secrets` tag, metadata `expirationDate`,
//!   `contentType`, `tags`; no write when value, expiry and content type are unchanged; a
//!   soft-deleted name is recovered, then written), keys (`ImportKey` of a PEM RSA or EC
//!   private key, or of other bytes as an `oct` key; no import when the public key is
//!   unchanged), certificates (`ImportCertificate` of the value, a password-less PKCS#12 bundle
//!   as upstream; no import when the certificate is unchanged). An existing object without the
//!   `managed-by` tag is never overwritten or deleted. Delete, exists.
//!
//! # Economy
//! Tokens are cached by credential in the provider, shared by every client built from it,
//! and renewed five minutes before they expire (halfway through a shorter lifetime):
//! one credential costs one token request per token lifetime. A token the vault refuses is
//! replaced once and the request retried. Concurrent reads of one (object, version) are one
//! request, and a read answered less than [`AzureConfig::read_cache_ttl`] ago (default 10 s)
//! is served again; pushes and deletes drop the object's cached reads.
//!
//! # Errors
//! 404 is [`eso_provider::ErrorKind::NotFound`], as are a missing property or tag. 401 and 403
//! (and refused logins, with Entra ID's `AADSTS` cause) are `Auth`; 429 is `Throttled` with
//! `Retry-After`; 5xx and connection failures are retried twice, then `Unavailable`. Every
//! vault request counts in `externalsecret_provider_api_calls_count{provider="Azure/KeyVault"}`
//! with upstream's `call` names; an error answer (404 included, as upstream's SDK reports it)
//! counts as `error`.
//!
//! # Differences from upstream
//! - `useAzureSDK` selects nothing: one client serves both settings, with the behaviour of
//!   upstream's default (legacy) client, plus a token cache; it is only checked against
//!   `customCloudConfig` as upstream does.
//! - Key push compares EC keys by curve and point (upstream compares nothing usable and
//!   imports again every time).
//! - A ServiceAccount token for `WorkloadIdentity` is requested when the client is built; a
//!   new login after it expired fails with `Auth` until the client is rebuilt.

mod auth;
mod client;
mod crypto;
mod value;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::SecretStoreCapabilities;
use eso_api::provider::{AzureAuthType, AzureEnvironmentType, AzureKvProvider as AzureSpec};
use eso_api::{SecretKeySelector, StoreKind};
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};

pub use client::AzureKvClient;

use crate::auth::{Credential, FederatedToken, TokenCache, TokenSource};
use crate::client::ClientTuning;

/// The audience ServiceAccount tokens get for the exchange (`AzureDefaultAudience`).
const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
const ANNOTATION_CLIENT_ID: &str = "azure.workload.identity/client-id";
const ANNOTATION_TENANT_ID: &str = "azure.workload.identity/tenant-id";
const FIELD: &str = "spec.provider.azurekv";

/// The workload identity mounted into the operator's pod by Azure's webhook
/// (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`), used by
/// `WorkloadIdentity` stores without `serviceAccountRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentityEnv {
    /// The client (application) ID.
    pub client_id: Option<String>,
    /// The tenant ID.
    pub tenant_id: Option<String>,
    /// The projected ServiceAccount token file.
    pub token_file: Option<PathBuf>,
}

/// Endpoints and tuning of the clients an [`AzureKvProvider`] builds. The defaults are
/// Azure's real endpoints.
#[derive(Debug, Clone)]
#[must_use]
pub struct AzureConfig {
    authority_host: Option<String>,
    imds_endpoint: String,
    extra_roots_pem: Option<Vec<u8>>,
    workload_identity: Option<WorkloadIdentityEnv>,
    request_timeout: Duration,
    connect_timeout: Duration,
    read_cache_ttl: Duration,
    retries: u32,
    retry_backoff: Duration,
    recovery_poll_interval: Duration,
    recovery_timeout: Duration,
    token_refresh_margin: Duration,
}

impl Default for AzureConfig {
    fn default() -> Self {
        Self {
            authority_host: None,
            imds_endpoint: "http://169.254.169.254/metadata/identity/oauth2/token".to_owned(),
            extra_roots_pem: None,
            workload_identity: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            read_cache_ttl: Duration::from_secs(10),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            recovery_poll_interval: Duration::from_secs(2),
            recovery_timeout: Duration::from_secs(120),
            token_refresh_margin: Duration::from_secs(300),
        }
    }
}

impl AzureConfig {
    /// Replaces the Entra ID authority host of every environment (e.g.
    /// `https://login.microsoftonline.com/`, or a local test server).
    pub fn authority_host(mut self, url: &str) -> Self {
        let mut url = url.to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        self.authority_host = Some(url);
        self
    }

    /// The IMDS token endpoint managed identities use (default
    /// `http://169.254.169.254/metadata/identity/oauth2/token`).
    pub fn imds_endpoint(mut self, url: &str) -> Self {
        url.clone_into(&mut self.imds_endpoint);
        self
    }

    /// Extra trusted CA certificates (PEM), added to the platform's roots for the vault and
    /// the authority (a test server's CA, a TLS-inspecting proxy's).
    pub fn extra_roots_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem = Some(pem.into());
        self
    }

    /// The pod's mounted workload identity.
    pub fn workload_identity(mut self, env: WorkloadIdentityEnv) -> Self {
        self.workload_identity = Some(env);
        self
    }

    /// The timeout of one HTTP request (default 30 s).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// How long a read answer is served again (default 10 s). Zero still shares one request
    /// between concurrent identical reads.
    pub fn read_cache_ttl(mut self, ttl: Duration) -> Self {
        self.read_cache_ttl = ttl;
        self
    }

    /// How often a 5xx answer or a connection failure is retried (default 2), and the first
    /// pause (default 200 ms, growing linearly; a `Retry-After` wins).
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.retry_backoff = backoff;
        self
    }

    /// How often and how long a recovered soft-deleted secret is polled (default 2 s, 2 min,
    /// as upstream).
    pub fn recovery_polling(mut self, interval: Duration, timeout: Duration) -> Self {
        self.recovery_poll_interval = interval;
        self.recovery_timeout = timeout;
        self
    }

    /// How long before expiry a token is renewed (default 5 min).
    pub fn token_refresh_margin(mut self, margin: Duration) -> Self {
        self.token_refresh_margin = margin;
        self
    }
}

/// The `azurekv` provider.
#[derive(Debug, Clone)]
pub struct AzureKvProvider {
    config: AzureConfig,
    tokens: Arc<TokenCache>,
}

impl Default for AzureKvProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl AzureKvProvider {
    /// The provider with Azure's real endpoints.
    #[must_use]
    pub fn new() -> Self {
        Self {
            config: AzureConfig::default(),
            tokens: Arc::new(TokenCache::default()),
        }
    }

    /// Replaces the endpoints and tuning.
    #[must_use]
    pub fn config(mut self, config: AzureConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&AzureSpec, ProviderError> {
    store.spec.provider.azurekv.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!("{}: {FIELD} is not set", store.describe()))
    })
}

/// Entra ID authority and Key Vault audience of an environment
/// (go-autorest's `azure.Environment` tables).
fn environment(t: AzureEnvironmentType) -> Option<(&'static str, &'static str)> {
    match t {
        AzureEnvironmentType::PublicCloud => Some((
            "https://login.microsoftonline.com/",
            "https://vault.azure.net",
        )),
        AzureEnvironmentType::UsGovernmentCloud => Some((
            "https://login.microsoftonline.us/",
            "https://vault.usgovcloudapi.net",
        )),
        AzureEnvironmentType::ChinaCloud => {
            Some(("https://login.chinacloudapi.cn/", "https://vault.azure.cn"))
        }
        AzureEnvironmentType::GermanCloud => Some((
            "https://login.microsoftonline.de/",
            "https://vault.microsoftazure.de",
        )),
        AzureEnvironmentType::AzureStackCloud => None,
    }
}

/// (authority ending in `/`, Key Vault audience) of a store.
fn endpoints(spec: &AzureSpec, config: &AzureConfig) -> Result<(String, String), String> {
    let (mut authority, mut resource) = match (
        environment(spec.environment_type()),
        &spec.custom_cloud_config,
    ) {
        (_, Some(custom)) => {
            let resource = match (&custom.key_vault_endpoint, &custom.key_vault_dns_suffix) {
                (Some(e), _) if !e.is_empty() => e.trim_end_matches('/').to_owned(),
                (_, Some(s)) if !s.is_empty() => format!("https://{}", s.trim_start_matches('.')),
                _ => {
                    let url = reqwest::Url::parse(&spec.vault_url).map_err(|e| e.to_string())?;
                    let host = url.host_str().unwrap_or_default();
                    let domain = host.split_once('.').map_or(host, |(_, d)| d);
                    format!("https://{domain}")
                }
            };
            (custom.active_directory_endpoint.clone(), resource)
        }
        (Some((a, r)), None) => (a.to_owned(), r.to_owned()),
        (None, None) => {
            return Err(
                "customCloudConfig is required when environmentType is AzureStackCloud".into(),
            );
        }
    };
    if let Some(host) = &config.authority_host {
        authority.clone_from(host);
    }
    if !authority.ends_with('/') {
        authority.push('/');
    }
    resource = resource.trim_end_matches('/').to_owned();
    Ok((authority, resource))
}

/// Static checks, with upstream's rules.
fn check_spec(spec: &AzureSpec, store: &StoreInfo) -> Result<(), ProviderError> {
    let invalid =
        |m: String| ProviderError::invalid_store(format!("{}: {FIELD}: {m}", store.describe()));
    let url = reqwest::Url::parse(spec.vault_url.trim()).map_err(|e| {
        invalid(format!("vaultUrl {:?} is not a URL", spec.vault_url)).with_source(e)
    })?;
    if !matches!(url.scheme(), "https" | "http") || !url.has_host() {
        return Err(invalid(format!(
            "vaultUrl {:?} must be an https URL",
            spec.vault_url
        )));
    }
    if let Some(custom) = &spec.custom_cloud_config {
        if !spec.use_azure_sdk.unwrap_or(false) {
            return Err(invalid(
                "customCloudConfig requires useAzureSDK to be set to true, as upstream (its legacy SDK does not support custom clouds)".into(),
            ));
        }
        if custom.active_directory_endpoint.trim().is_empty() {
            return Err(invalid(
                "activeDirectoryEndpoint is required in customCloudConfig".into(),
            ));
        }
    }
    if spec.environment_type() == AzureEnvironmentType::AzureStackCloud
        && spec.custom_cloud_config.is_none()
    {
        return Err(invalid(
            "customCloudConfig is required when environmentType is AzureStackCloud".into(),
        ));
    }
    if spec.environment_type() == AzureEnvironmentType::GermanCloud
        && spec.use_azure_sdk == Some(true)
    {
        return Err(invalid(
            "Azure Germany (Microsoft Cloud Deutschland) was discontinued on October 29, 2021; with useAzureSDK it is refused, as upstream".into(),
        ));
    }
    if let Some(auth) = &spec.auth_secret_ref {
        for (sel, name) in [
            (&auth.client_id, "authSecretRef.clientId"),
            (&auth.client_secret, "authSecretRef.clientSecret"),
        ] {
            if let Some(sel) = sel
                && store.kind == StoreKind::SecretStore
                && sel
                    .namespace
                    .as_deref()
                    .is_some_and(|ns| Some(ns) != store.namespace.as_deref())
            {
                return Err(invalid(format!(
                    "{name}.namespace is not allowed on a SecretStore"
                )));
            }
        }
    }
    if let Some(sa) = &spec.service_account_ref
        && store.kind == StoreKind::SecretStore
        && sa
            .namespace
            .as_deref()
            .is_some_and(|ns| Some(ns) != store.namespace.as_deref())
    {
        return Err(invalid(
            "serviceAccountRef.namespace is not allowed on a SecretStore".into(),
        ));
    }
    Ok(())
}

async fn read_string(
    ctx: &ClientContext<'_>,
    sel: &SecretKeySelector,
    field: &str,
) -> Result<String, ProviderError> {
    let bytes = ctx
        .read_secret_key(sel, &format!("{FIELD}.{field}"))
        .await?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
}

impl AzureKvProvider {
    async fn credential(
        &self,
        ctx: &ClientContext<'_>,
        spec: &AzureSpec,
    ) -> Result<Credential, ProviderError> {
        let store = ctx.store;
        let invalid =
            |m: &str| ProviderError::invalid_store(format!("{}: {FIELD}: {m}", store.describe()));
        match spec.auth_type() {
            AzureAuthType::ManagedIdentity => Ok(Credential::ManagedIdentity {
                client_id: spec.identity_id.clone().filter(|s| !s.is_empty()),
            }),
            AzureAuthType::ServicePrincipal => {
                let tenant = spec
                    .tenant_id
                    .clone()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| invalid("missing tenantID in store config"))?;
                let auth = spec
                    .auth_secret_ref
                    .as_ref()
                    .ok_or_else(|| invalid("missing secretRef in provider config"))?;
                let client = auth
                    .client_id
                    .as_ref()
                    .ok_or_else(|| invalid("missing clientID/clientSecret in store config"))?;
                let client_id = read_string(ctx, client, "authSecretRef.clientId").await?;
                match (&auth.client_secret, &auth.client_certificate) {
                    (Some(_), Some(_)) => {
                        Err(invalid("both clientSecret and clientCertificate set"))
                    }
                    (Some(secret), None) => Ok(Credential::ClientSecret {
                        tenant,
                        client_id,
                        secret: read_string(ctx, secret, "authSecretRef.clientSecret").await?,
                    }),
                    (None, Some(cert)) => {
                        let pem = ctx
                            .read_secret_key(
                                cert,
                                &format!("{FIELD}.authSecretRef.clientCertificate"),
                            )
                            .await?;
                        Credential::client_certificate(tenant, client_id, &pem)
                            .map_err(|m| invalid(&format!("authSecretRef.clientCertificate: {m}")))
                    }
                    (None, None) => Err(invalid("missing clientID/clientSecret in store config")),
                }
            }
            AzureAuthType::WorkloadIdentity => self.workload_identity(ctx, spec).await,
        }
    }

    async fn workload_identity(
        &self,
        ctx: &ClientContext<'_>,
        spec: &AzureSpec,
    ) -> Result<Credential, ProviderError> {
        let store = ctx.store;
        let invalid =
            |m: String| ProviderError::invalid_store(format!("{}: {FIELD}: {m}", store.describe()));
        let env = self.config.workload_identity.clone();
        let Some(account) = &spec.service_account_ref else {
            // The identity mounted into the operator's pod by Azure's webhook.
            let env = env.unwrap_or(WorkloadIdentityEnv {
                client_id: None,
                tenant_id: None,
                token_file: None,
            });
            let (Some(client_id), Some(tenant), Some(file)) =
                (env.client_id, env.tenant_id, env.token_file)
            else {
                return Err(invalid(
                    "missing environment variables. AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE must be set".into(),
                ));
            };
            return Ok(Credential::Federated {
                tenant,
                client_id,
                assertion: FederatedToken::File(file),
            });
        };
        let namespace = ctx
            .credential_namespace(account.namespace.as_deref())
            .to_owned();
        let tokens = ctx.tokens.ok_or_else(|| {
            invalid(format!(
                "a token for ServiceAccount \"{namespace}/{}\" is needed, and none can be requested here (no cluster)",
                account.name
            ))
        })?;
        let annotations = tokens
            .service_account_annotations(&namespace, &account.name)
            .await?
            .ok_or_else(|| {
                invalid(format!(
                    "ServiceAccount \"{namespace}/{}\" does not exist",
                    account.name
                ))
            })?;

        let mut client_id = None;
        if let Some(auth) = &spec.auth_secret_ref {
            let sel = auth.client_id.as_ref().ok_or_else(|| {
                invalid("missing accessKeyID/secretAccessKey in store config".into())
            })?;
            client_id = Some(read_string(ctx, sel, "authSecretRef.clientId").await?);
        }
        if let Some(v) = annotations.get(ANNOTATION_CLIENT_ID) {
            if client_id.is_some() {
                return Err(invalid(
                    "multiple clientID found. Check secretRef and serviceAccountRef".into(),
                ));
            }
            client_id = Some(v.clone());
        }
        let client_id = client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
            invalid(format!(
                "missing clientID: either serviceAccountRef or service account annotation '{ANNOTATION_CLIENT_ID}' is missing"
            ))
        })?;

        let mut tenant = None;
        if let Some(sel) = spec
            .auth_secret_ref
            .as_ref()
            .and_then(|a| a.tenant_id.as_ref())
        {
            tenant = Some(read_string(ctx, sel, "authSecretRef.tenantId").await?);
        }
        if tenant.as_deref().is_none_or(str::is_empty) {
            tenant = spec.tenant_id.clone().filter(|t| !t.is_empty());
        }
        if let Some(v) = annotations.get(ANNOTATION_TENANT_ID) {
            if tenant.as_deref().is_some_and(|t| !t.is_empty()) {
                return Err(invalid(
                    "multiple tenantID found. Check secretRef, 'spec.provider.azurekv.tenantId', and serviceAccountRef".into(),
                ));
            }
            tenant = Some(v.clone());
        }
        if tenant.as_deref().is_none_or(str::is_empty) {
            tenant = env.and_then(|e| e.tenant_id);
        }
        let tenant = tenant
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("missing tenantID in store config".into()))?;

        let mut audiences = vec![EXCHANGE_AUDIENCE.to_owned()];
        audiences.extend(account.audiences.iter().cloned());
        let token = tokens
            .token(&namespace, &account.name, &audiences, None)
            .await?;
        Ok(Credential::Federated {
            tenant,
            client_id,
            assertion: FederatedToken::Fixed(token),
        })
    }

    fn http(&self) -> Result<reqwest::Client, ProviderError> {
        let mut builder = eso_provider::proxy::Proxies::use_installed(
            reqwest::Client::builder()
                .timeout(self.config.request_timeout)
                .connect_timeout(self.config.connect_timeout),
        )
        .map_err(|e| {
            ProviderError::invalid_store("the installed proxy cannot be used").with_source(e)
        })?;
        if let Some(pem) = &self.config.extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ProviderError::invalid_store("the extra CA roots are not valid PEM").with_source(e)
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        builder.build().map_err(|e| {
            ProviderError::invalid_store("cannot set up the HTTP client").with_source(e)
        })
    }
}

#[async_trait]
impl Provider for AzureKvProvider {
    fn key(&self) -> &'static str {
        "azurekv"
    }

    fn display_name(&self) -> &'static str {
        "Azure/KeyVault"
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
        check_spec(spec, store)?;
        let (authority, resource) = endpoints(spec, &self.config).map_err(|m| {
            ProviderError::invalid_store(format!("{}: {FIELD}: {m}", store.describe()))
        })?;
        let credential = self.credential(&ctx, spec).await?;
        let http = self.http()?;
        let mut vault = reqwest::Url::parse(spec.vault_url.trim()).map_err(|e| {
            ProviderError::invalid_store(format!(
                "{}: {FIELD}.vaultUrl is not a URL",
                store.describe()
            ))
            .with_source(e)
        })?;
        vault.set_query(None);
        let tokens = TokenSource::new(
            credential,
            authority,
            resource,
            self.config.imds_endpoint.clone(),
            http.clone(),
            self.tokens.clone(),
            self.config.token_refresh_margin,
        );
        let tuning = ClientTuning {
            retries: self.config.retries,
            retry_backoff: self.config.retry_backoff,
            recovery_poll_interval: self.config.recovery_poll_interval,
            recovery_timeout: self.config.recovery_timeout,
            read_cache_ttl: self.config.read_cache_ttl,
        };
        let client = AzureKvClient::new(http, vault, tokens, tuning, store.describe());
        // Log in now, as upstream builds its authorizer with the client: a bad credential
        // fails the store, not the first read.
        client.tokens.token().await.map_err(|e| {
            let mut out = ProviderError::new(
                e.kind(),
                format!("{}: {FIELD}: login failed", store.describe()),
            );
            if let Some(d) = e.retry_after() {
                out = out.with_retry_after(d);
            }
            out.with_source(e)
        })?;
        Ok(Arc::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::SecretStoreSpec;
    use eso_api::provider::AzureCustomCloudConfig;

    fn store(spec: AzureSpec) -> StoreInfo {
        let mut s = SecretStoreSpec::default();
        s.provider.azurekv = Some(spec);
        StoreInfo::secret_store("azure", "apps", s)
    }

    fn spec() -> AzureSpec {
        AzureSpec {
            vault_url: "https://my-vault.vault.azure.net".into(),
            ..AzureSpec::default()
        }
    }

    #[test]
    fn environments_pick_authority_and_audience() {
        let c = AzureConfig::default();
        let mut s = spec();
        assert_eq!(
            endpoints(&s, &c).unwrap(),
            (
                "https://login.microsoftonline.com/".into(),
                "https://vault.azure.net".into()
            )
        );
        for (env, authority, resource) in [
            (
                AzureEnvironmentType::ChinaCloud,
                "https://login.chinacloudapi.cn/",
                "https://vault.azure.cn",
            ),
            (
                AzureEnvironmentType::UsGovernmentCloud,
                "https://login.microsoftonline.us/",
                "https://vault.usgovcloudapi.net",
            ),
            (
                AzureEnvironmentType::GermanCloud,
                "https://login.microsoftonline.de/",
                "https://vault.microsoftazure.de",
            ),
        ] {
            s.environment_type = Some(env);
            assert_eq!(
                endpoints(&s, &c).unwrap(),
                (authority.into(), resource.into())
            );
        }
        // The configured authority host wins; the audience stays the environment's.
        let local = AzureConfig::default().authority_host("https://127.0.0.1:9");
        assert_eq!(
            endpoints(&s, &local).unwrap(),
            (
                "https://127.0.0.1:9/".into(),
                "https://vault.microsoftazure.de".into()
            )
        );
    }

    #[test]
    fn custom_clouds_need_the_sdk_flag_and_an_authority() {
        let p = AzureKvProvider::new();
        let mut s = spec();
        s.environment_type = Some(AzureEnvironmentType::AzureStackCloud);
        let err = p.validate_store(&store(s.clone())).unwrap_err();
        assert!(
            err.message().contains("customCloudConfig is required"),
            "{err}"
        );
        s.custom_cloud_config = Some(AzureCustomCloudConfig {
            active_directory_endpoint: "https://login.stack.local/".into(),
            ..Default::default()
        });
        let err = p.validate_store(&store(s.clone())).unwrap_err();
        assert!(err.message().contains("useAzureSDK"), "{err}");
        s.use_azure_sdk = Some(true);
        assert!(p.validate_store(&store(s.clone())).is_ok());
        s.vault_url = "https://kv1.vault.local.azurestack.external/".into();
        assert_eq!(
            endpoints(&s, &AzureConfig::default()).unwrap(),
            (
                "https://login.stack.local/".into(),
                "https://vault.local.azurestack.external".into()
            )
        );
    }

    #[test]
    fn vault_url_must_be_a_url() {
        let p = AzureKvProvider::new();
        let err = p.validate_store(&store(AzureSpec::default())).unwrap_err();
        assert_eq!(err.kind(), eso_provider::ErrorKind::InvalidStore);
        assert!(err.message().contains("vaultUrl"), "{err}");
    }
}
