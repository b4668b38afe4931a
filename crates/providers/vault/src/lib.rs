//! `eso-provider-vault`: the HashiCorp Vault provider (`spec.provider.vault`) and its OpenBao
//! alias (`spec.provider.openBao`), speaking Vault's HTTP API over reqwest + rustls.
//!
//! It owns the Vault client: logins, the token's lifetime, KV v1/v2 paths, reads, find, push
//! and delete. It knows nothing of Kubernetes: credentials come through
//! [`eso_provider::ClientContext`], and it never reads environment variables.
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_vault::{VaultConfig, VaultProvider};
//!
//! let config = VaultConfig::default().read_cache_ttl(Duration::from_secs(30));
//! let registry = ProviderRegistry::new()
//!     .with(Arc::new(VaultProvider::vault().config(config.clone())))
//!     .with(Arc::new(VaultProvider::open_bao().config(config)));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["openBao", "vault"]);
//! ```
//!
//! # Supported
//! - Store fields: `server`, `path`, `version` (v1, v2), `namespace` (`X-Vault-Namespace`),
//!   `headers`, `readYourWrites` (the newest `X-Vault-Index` is echoed back, as Go's client
//!   does), `forwardInconsistent` (`X-Vault-Inconsistent: forward-active-node`, only together
//!   with `readYourWrites`, as upstream), `caBundle` or (when no `caBundle` is set, as
//!   upstream) `caProvider` of type `Secret` or `ConfigMap`, `tls` client certificates, `checkAndSet.required`, `auth.namespace`.
//! - Login methods, with upstream's mount defaults: `tokenSecretRef`; `appRole` (`approle`,
//!   `roleId` or `roleRef`); `kubernetes` (`kubernetes`; a TokenRequest token for
//!   `serviceAccountRef`, a `secretRef`, or the pod's own token file); `jwt` (`jwt`; a
//!   `secretRef` or a `kubernetesServiceAccountToken`, audiences default `["vault"]`);
//!   `userPass` (`userpass`); `ldap` (`ldap`); `cert` (`cert`, the certificate is presented on
//!   every connection).
//! - Reads: `property` as a top-level key first, then as a gjson path; no property gives the
//!   data as Go's `json.Marshal` writes it (sorted keys, HTML-escaped); `version` (KV v2);
//!   `metadataPolicy: Fetch` (KV v2: `created_time`, `current_version`,
//!   `delete_version_after` and the custom metadata). `find` by path, name regexp and tags
//!   (custom metadata), listing recursively. Push with and without `property`, custom
//!   metadata and merge policy, check-and-set; delete (one property, or the whole secret);
//!   secret-exists; validate (`lookup-self`).
//!
//! # Economy
//! A client logs in once and keeps its token: it is renewed (`renew-self`) once two thirds of
//! its TTL have passed, or replaced by a new login when it is not renewable or a renewal ran
//! into `max_ttl`. Concurrent logins are one login. `validate` reuses the token. Concurrent
//! reads of one (path, version) are one request, and a read answered less than
//! [`VaultConfig::read_cache_ttl`] ago (default 10 s) is served from the client's cache; an
//! error is shared the same way, so a failing Vault sees one request per burst. Pushes and
//! deletes drop the key's cached answers and cached listings. With the cache window set to the
//! refresh interval, N ExternalSecrets reading K keys cost K reads per window (measured: 1,000
//! concurrent gets of 100 keys made 100 reads and 1 login). When Vault refuses a token the client logged in for, one
//! `lookup-self` tells a dead token (revoked) from a policy that forbids the path; a dead token
//! is replaced by one new login and the request is retried once. Every HTTP request counts in
//! `externalsecret_provider_api_calls_count{provider, call, status}` with upstream's `call`
//! names (`Login`, `LookupSelf`, `RevokeSelf`, `ReadSecretData`, `WriteSecretData`,
//! `DeleteSecret`, `ListSecrets`) plus `RenewSelf`; a 404 answer counts as a success, as in
//! upstream, where Go's client returns no error for it.
//!
//! # Errors
//! 404 and absent keys, versions and properties are [`eso_provider::ErrorKind::NotFound`].
//! 401, 403 (a missing policy, a revoked or expired token) and rejected logins are `Auth`,
//! never `NotFound`. 429 is `Throttled` (with `Retry-After`); 5xx (a sealed Vault answers
//! 503), 412, check-and-set conflicts, connection failures and timeouts are `Unavailable`.
//!
//! # Differences from upstream
//! - `openBao` is served by the same client as `vault`, with every Vault field (upstream has a
//!   smaller, read-only OpenBao type); its metric label is `OpenBao`.
//! - Keys without
//!   `/data/` on a store without `path` still have a metadata path (upstream refuses them).
//! - `find` with both `name` and `tags` applies both (upstream ignores `tags` then); a `find`
//!   under a path that does not exist returns nothing instead of an error.
//! - Deleting a whole KV v2 secret deletes its metadata (every version) in one request.
//! - Push compares custom metadata only (upstream also folds `created_time` and friends into
//!   the custom metadata it writes back).
//! - `close` revokes the token the client logged in for (upstream revokes only on token-cache
//!   eviction).
//! - The `iam` and `gcp` login methods are not supported.
//! - Credentials are read when the client is built. A ServiceAccount token requested then is
//!   reused for later logins; once it expires (10 minutes by default) a new login fails with
//!   `Auth` until the client is rebuilt. Renewal usually makes that login unnecessary.
//!
//! # Verified against a real server, and not
//! The integration tests run a real OpenBao 2.7 dev server (`bao server -dev`) and cover
//! token, AppRole, userpass, JWT, Kubernetes (against an in-test TokenReview endpoint) and cert
//! logins; KV v1 and v2, versions, properties, metadata, find, push and delete; namespaces;
//! TLS with a custom CA (`caBundle`, `caProvider`) and client certificates; renewal, re-login
//! and revoked tokens; a sealed, stopped and restarted server. Request counts are taken by a
//! counting proxy in front of the server. OpenBao ships no
//! LDAP plugin, so `ldap` is only checked for its request shape (Vault's
//! `POST auth/<mount>/login/<username>`). Vault Enterprise replication headers
//! (`readYourWrites`, `forwardInconsistent`) are sent but could not be observed on a server.

mod auth;
mod cache;
mod client;
pub mod generators;
mod kv;
mod token;
mod transport;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::SecretKeySelector;
use eso_api::SecretStoreCapabilities;
use eso_api::provider::{VaultKvVersion, VaultProvider as VaultSpec};
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo, tls};

pub use client::VaultClient;

use crate::cache::ReadCache;
use crate::kv::KvLayout;
use crate::transport::{Transport, TransportSettings};

/// Tuning of the clients a [`VaultProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct VaultConfig {
    read_cache_ttl: Duration,
    request_timeout: Duration,
    connect_timeout: Duration,
    service_account_token_file: PathBuf,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            read_cache_ttl: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            service_account_token_file: PathBuf::from(
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            ),
        }
    }
}

impl VaultConfig {
    /// How long a read answer is served again without asking Vault (default 10 s). Zero
    /// still shares one request between concurrent identical reads.
    pub fn read_cache_ttl(mut self, ttl: Duration) -> Self {
        self.read_cache_ttl = ttl;
        self
    }

    /// The timeout of one HTTP request (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The timeout of establishing a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Where `kubernetes` auth without a reference reads the pod's ServiceAccount token
    /// (default `/var/run/secrets/kubernetes.io/serviceaccount/token`).
    pub fn service_account_token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.service_account_token_file = path.into();
        self
    }
}

/// The `vault` provider, or its `openBao` alias.
#[derive(Debug, Clone)]
pub struct VaultProvider {
    key: &'static str,
    label: &'static str,
    config: VaultConfig,
}

impl VaultProvider {
    /// Serves `spec.provider.vault`.
    #[must_use]
    pub fn vault() -> Self {
        Self {
            key: "vault",
            label: "HashiCorp/Vault",
            config: VaultConfig::default(),
        }
    }

    /// Serves `spec.provider.openBao` with the same client.
    #[must_use]
    pub fn open_bao() -> Self {
        Self {
            key: "openBao",
            label: "OpenBao",
            config: VaultConfig::default(),
        }
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: VaultConfig) -> Self {
        self.config = config;
        self
    }

    fn spec_of<'s>(&self, store: &'s StoreInfo) -> Result<&'s VaultSpec, ProviderError> {
        let spec = match self.key {
            "openBao" => store.spec.provider.open_bao.as_ref(),
            _ => store.spec.provider.vault.as_ref(),
        };
        spec.ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{}: spec.provider.{} is not set",
                store.describe(),
                self.key
            ))
        })
    }

    fn field(&self) -> String {
        format!("spec.provider.{}", self.key)
    }
}

/// Static checks of a Vault spec; returns warnings.
fn check_spec(
    spec: &VaultSpec,
    store: &StoreInfo,
    field: &str,
) -> Result<Vec<String>, ProviderError> {
    let invalid =
        |msg: String| ProviderError::invalid_store(format!("{}: {field}.{msg}", store.describe()));
    let mut warnings = Vec::new();
    if spec.server.trim().is_empty() {
        return Err(invalid("server is required".into()));
    }
    let url = reqwest::Url::parse(&spec.server)
        .map_err(|e| invalid(format!("server {:?} is not a URL", spec.server)).with_source(e))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "server {:?} must be an http(s) URL",
            spec.server
        )));
    }
    if let Some(auth) = &spec.auth {
        let methods = auth.methods();
        if methods.len() > 1 {
            return Err(invalid(format!(
                "auth must name one login method, found {}",
                methods.join(", ")
            )));
        }
        if auth.iam.is_some() || auth.gcp.is_some() {
            return Err(ProviderError::unsupported(format!(
                "{}: {field}.auth: the {} login method is not supported by eso-rs",
                store.describe(),
                methods.join("")
            )));
        }
        if let Some(a) = &auth.app_role
            && a.role_id.as_deref().is_none_or(|r| r.trim().is_empty())
            && a.role_ref.is_none()
        {
            return Err(invalid("auth.appRole needs roleId or roleRef".into()));
        }
        if let Some(c) = &auth.cert
            && (c.client_cert.is_none() || c.secret_ref.is_none())
        {
            return Err(invalid("auth.cert needs clientCert and secretRef".into()));
        }
        if let Some(j) = &auth.jwt
            && j.secret_ref.is_none()
            && j.kubernetes_service_account_token.is_none()
        {
            return Err(invalid(
                "auth.jwt needs secretRef or kubernetesServiceAccountToken".into(),
            ));
        }
        if auth
            .user_pass
            .as_ref()
            .is_some_and(|u| u.secret_ref.is_none())
        {
            return Err(invalid("auth.userPass.secretRef is required".into()));
        }
        if auth.ldap.as_ref().is_some_and(|l| l.secret_ref.is_none()) {
            return Err(invalid("auth.ldap.secretRef is required".into()));
        }
    }
    if let Some(ca) = &spec.ca_provider {
        tls::check_ca_provider(ca, store.kind, "caProvider").map_err(invalid)?;
    }
    if let Some(tls) = &spec.tls
        && tls.cert_secret_ref.is_some() != tls.key_secret_ref.is_some()
    {
        return Err(invalid(
            "tls needs both certSecretRef and keySecretRef".into(),
        ));
    }
    if spec.version() == VaultKvVersion::V1
        && spec.check_and_set.as_ref().and_then(|c| c.required) == Some(true)
    {
        warnings.push(format!(
            "{field}.checkAndSet applies to KV version 2 only and is ignored on v1"
        ));
    }
    Ok(warnings)
}

fn key_or(selector: &SecretKeySelector, default: &str) -> SecretKeySelector {
    let mut s = selector.clone();
    if s.key.as_deref().is_none_or(str::is_empty) {
        s.key = Some(default.to_owned());
    }
    s
}

/// What a store's client and a `VaultDynamicSecret` generator's client share: the login
/// (`auth`) and the transport of `spec` at `field` (its CA roots, the client certificate, its
/// headers). Errors name the store and `field`.
pub(crate) async fn connect(
    config: &VaultConfig,
    ctx: &ClientContext<'_>,
    spec: &VaultSpec,
    field: &str,
    label: &'static str,
) -> Result<(auth::ResolvedAuth, Transport), ProviderError> {
    let store = ctx.store;
    let with_store = |e: ProviderError| {
        ProviderError::new(e.kind(), format!("{}: {field}", store.describe())).with_source(e)
    };
    let mut auth = auth::resolve(
        ctx,
        spec.auth.as_ref(),
        field,
        &config.service_account_token_file,
    )
    .await?;
    let ca_pem = tls::load_ca_bundle(
        ctx,
        spec.ca_bundle.as_deref(),
        spec.ca_provider.as_ref(),
        field,
    )
    .await?;
    // The cert login method's certificate wins over `tls`, as upstream replaces the
    // transport's client certificate for it.
    let mut identity_pem = auth.client_identity.take();
    if identity_pem.is_none()
        && let Some(tls) = &spec.tls
        && let (Some(cert), Some(key)) = (&tls.cert_secret_ref, &tls.key_secret_ref)
    {
        let mut pem = ctx
            .read_secret_key(
                &key_or(cert, "tls.crt"),
                &format!("{field}.tls.certSecretRef"),
            )
            .await?;
        pem.push(b'\n');
        pem.extend(
            ctx.read_secret_key(
                &key_or(key, "tls.key"),
                &format!("{field}.tls.keySecretRef"),
            )
            .await?,
        );
        identity_pem = Some(pem);
    }
    let read_your_writes = spec.read_your_writes.unwrap_or(false);
    let headers = transport::header_map(
        &spec.headers,
        read_your_writes && spec.forward_inconsistent.unwrap_or(false),
    )
    .map_err(with_store)?;
    let transport = Transport::new(TransportSettings {
        server: spec.server.clone(),
        namespace: spec.namespace.clone(),
        headers,
        read_your_writes,
        ca_pem,
        identity_pem,
        request_timeout: config.request_timeout,
        connect_timeout: config.connect_timeout,
        provider_label: label,
    })
    .map_err(with_store)?;
    Ok((auth, transport))
}

#[async_trait]
impl Provider for VaultProvider {
    fn key(&self) -> &'static str {
        self.key
    }

    fn display_name(&self) -> &'static str {
        self.label
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadWrite
    }

    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        check_spec(self.spec_of(store)?, store, &self.field())
    }

    async fn new_client(
        &self,
        ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = ctx.store;
        let spec = self.spec_of(store)?;
        let field = self.field();
        check_spec(spec, store, &field)?;

        let (auth, transport) = connect(&self.config, &ctx, spec, &field, self.label).await?;

        let client = VaultClient {
            transport,
            layout: KvLayout::new(spec.path.as_deref(), spec.version()),
            credentials: auth.credentials,
            auth_namespace: auth.namespace,
            token: tokio::sync::Mutex::new(None),
            reads: ReadCache::new(self.config.read_cache_ttl),
            check_and_set: spec.version() == VaultKvVersion::V2
                && spec.check_and_set.as_ref().and_then(|c| c.required) == Some(true),
            store: store.describe(),
        };
        client.login_now().await?;
        Ok(Arc::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::SecretStoreSpec;
    use eso_api::provider::{VaultAppRole, VaultAuth, VaultUserPassAuth};

    fn store(spec: VaultSpec) -> StoreInfo {
        let mut s = SecretStoreSpec::default();
        s.provider.vault = Some(spec);
        StoreInfo::secret_store("vault", "default", s)
    }

    fn spec() -> VaultSpec {
        VaultSpec {
            server: "http://127.0.0.1:8200".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validate_store_checks_server_and_auth() {
        let p = VaultProvider::vault();
        assert!(p.validate_store(&store(spec())).unwrap().is_empty());
        assert!(p.validate_store(&store(VaultSpec::default())).is_err());
        assert!(
            p.validate_store(&store(VaultSpec {
                server: "ftp://x".into(),
                ..spec()
            }))
            .is_err()
        );
        let two = VaultAuth {
            token_secret_ref: Some(SecretKeySelector::default()),
            user_pass: Some(VaultUserPassAuth {
                username: "u".into(),
                secret_ref: Some(SecretKeySelector::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = p
            .validate_store(&store(VaultSpec {
                auth: Some(two),
                ..spec()
            }))
            .unwrap_err();
        assert!(err.message().contains("one login method"), "{err}");
        let no_role = VaultAuth {
            app_role: Some(VaultAppRole::default()),
            ..Default::default()
        };
        assert!(
            p.validate_store(&store(VaultSpec {
                auth: Some(no_role),
                ..spec()
            }))
            .is_err()
        );
    }

    #[test]
    fn open_bao_reads_its_own_key() {
        let p = VaultProvider::open_bao();
        assert_eq!(p.key(), "openBao");
        assert!(p.validate_store(&store(spec())).is_err());
        let mut s = store(spec());
        s.spec.provider.open_bao = s.spec.provider.vault.take();
        assert!(p.validate_store(&s).is_ok());
    }
}
