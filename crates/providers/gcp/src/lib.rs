//! `eso-provider-gcp`: the Google Cloud Secret Manager provider (`spec.provider.gcpsm`), over
//! Secret Manager's v1 REST API with reqwest + rustls (the workspace's one TLS stack) and small
//! types of our own.
//!
//! It owns the Secret Manager client of a store: credentials and their tokens, reads, `find`,
//! push, delete and exists. It knows nothing of Kubernetes (credentials come through
//! [`eso_provider::ClientContext`]) and never reads environment variables: endpoints come from
//! [`GcpEndpoints`] and tuning from [`GcpConfig`], which binaries fill from their flags or
//! environment.
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_gcp::{GcpConfig, GcpEndpoints, GcpProvider};
//!
//! // Google's endpoints:
//! let registry = ProviderRegistry::new().with(Arc::new(GcpProvider::new()));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["gcpsm"]);
//! // A local test server (eso-testserver-gcp) standing in for every Google endpoint:
//! let local = GcpProvider::with_endpoints(GcpEndpoints::all_at("http://127.0.0.1:8085"))
//!     .config(GcpConfig::default().read_cache_ttl(Duration::from_secs(30)));
//! # let _ = local;
//! ```
//!
//! # Supported
//! - Credentials, in upstream's order: `auth.secretRef.secretAccessKeySecretRef` (a
//!   service-account JSON key; an RS256 JWT exchanged at the key's `token_uri`);
//!   `auth.workloadIdentity` (GKE: a ServiceAccount token with the pool `PROJECT.svc.id.goog`
//!   as audience exchanged at GKE's identity binding token endpoint, then, when the
//!   ServiceAccount carries `iam.gke.io/gcp-service-account`, IAM credentials'
//!   `generateAccessToken`; `clusterProjectID`, `clusterLocation` and `clusterName` default to
//!   the metadata server's); `auth.workloadIdentityFederation` (STS token exchange of a
//!   `serviceAccountRef` token, of a SigV4-signed AWS `GetCallerIdentity` request from
//!   `awsSecurityCredentials`, or of the `file` / `url` subject token of a `credConfig`
//!   external-account file, with upstream's checks; then impersonation of
//!   `gcpServiceAccountEmail`, the ServiceAccount's annotation or the file's
//!   `service_account_impersonation_url`); no `auth`: the pod's default credentials (the
//!   metadata server's token, or the key file given to
//!   [`GcpConfig::application_credentials`]). `projectID` defaults to
//!   `workloadIdentity.clusterProjectID`, then to the metadata server's project (not with a
//!   key, as upstream).
//! - `location`: regional secrets (`projects/P/locations/L/secrets/...`) at the regional
//!   endpoint (`secretmanager.L.rep.googleapis.com`).
//! - Reads: `version` (`latest` by default, numbers, aliases), `secretVersionSelectionPolicy:
//!   LatestOrFetch` (a disabled or destroyed `latest` falls back to the newest enabled version
//!   by creation time), `property` (a dotted property is first one literal key, then a gjson
//!   path, as upstream), `metadataPolicy: Fetch` (`labels`, `annotations`, `labels.K`,
//!   `annotations.K`, or both maps as Go JSON), get map (`dataFrom.extract`).
//! - `find`: by `name.regexp` and by `tags` (labels; Secret Manager's `labels.K=V` list
//!   filter), with `path` as a `name:` filter and a key prefix; keys are returned as the
//!   secrets are named.
//! - Push: a missing secret is created with `managed-by: external-secrets` (plus the metadata's
//!   `labels`, `annotations`, `topics`) and its replication (automatic, or user-managed in
//!   `replicationLocations` / `replicationLocation`, with `cmekKeyName`; none for regional
//!   secrets); labels and annotations are updated when they differ (`mergePolicy: Merge` keeps
//!   the existing labels); a whole-value push refuses secrets without the label; a version is
//!   added only when the value (or the `property` inside the JSON document) changed. Delete
//!   (only labelled secrets), exists (an enabled version exists), validate.
//!
//! # Economy
//! A client fetches a token once and reuses it until shortly before it expires (a fifth of its
//! lifetime, at most five minutes, before); concurrent callers share the one fetch in flight,
//! so a credential costs one token request per token lifetime, not one per read. A ServiceAccount
//! token for Workload Identity is requested once per client. Concurrent reads of one (secret,
//! version) are one request, and a read answered less than [`GcpConfig::read_cache_ttl`] ago
//! (default 10 s) is served again; errors are shared only with concurrent readers. `find`
//! lists once and reads the matches concurrently. Writes forget the key's cached reads. Every
//! API call counts once in `externalsecret_provider_api_calls_count{provider="GCP/SecretManager",
//! call, status}` with upstream's `call` names (`AccessSecretVersion`, `GetSecret`,
//! `ListSecrets`, `CreateSecret`, `UpdateSecret`, `AddSecretVersion`, `DeleteSecret`,
//! `GenerateServiceAccountToken`, `GenerateIDBindToken`, `GenerateAccessToken`) plus the calls
//! upstream leaves uncounted (`ListSecretVersions`, `OAuth2Token`, `STSToken`,
//! `MetadataToken`, `Metadata`, `ExternalToken`).
//!
//! # Errors
//! 404 is [`ErrorKind::NotFound`](eso_provider::ErrorKind::NotFound), as are an absent
//! `property`, label or annotation. 401 and 403 (which Google also answers for a secret the
//! caller may not see) and every refused token request are `Auth`, never `NotFound`; a 401
//! fetches a new token and retries once. 429 is `Throttled` with the `Retry-After` (or
//! `RetryInfo`) wait; 408, 409 (etag races), 5xx, connection failures and timeouts are
//! `Unavailable`; other 4xx (a disabled or destroyed version's `FAILED_PRECONDITION` among
//! them) are `InvalidRequest`. Reads and other idempotent calls are retried on 5xx and
//! connection failures, and every call on 429 when the server asked for a wait no longer than
//! [`GcpConfig::max_retry_wait`], with exponential backoff, up to
//! [`GcpConfig::max_attempts`] attempts. Payload checksums (`dataCrc32c`) are checked on read
//! and sent on write.
//!
//! # Differences from upstream
//! - `find` with both `name` and `tags` applies both (upstream ignores `tags` then), and lists
//!   regional secrets for `tags` too (upstream lists the global ones). A listed secret whose
//!   `latest` cannot be found is left out instead of failing the whole `find`.
//! - Deleting a pushed `property` removes just that property (a new version) while others
//!   remain; upstream deletes the whole secret.
//! - A push creates the secret with its labels, annotations and topics in one call (upstream
//!   creates it, then updates it). Topics are not compared afterwards (upstream compares them
//!   but never writes them, which updates the secret on every push when they differ).
//! - `secret_exists` is true when an enabled version exists (upstream also reads it, and fails
//!   when only disabled versions exist).
//! - An empty payload reads as an empty value (upstream: an error).
//! - The ServiceAccount token of `workloadIdentity` and of a federation `serviceAccountRef` is
//!   requested once per client, valid for [`GcpConfig::service_account_token_lifetime`]
//!   (default 24 h), and exchanged again whenever the Google token nears expiry; once it has
//!   expired the next call fails with `Auth` and the reconciler builds a new client (upstream
//!   builds a client, with 15-minute tokens, on every reconcile).
//! - Not supported: a `credConfig` with an AWS `credential_source` (`environment_id`; use
//!   `awsSecurityCredentials`), `universe_domain` other than `googleapis.com`, the
//!   `GOOGLE_APPLICATION_CREDENTIALS` lookup of Go's default credentials (a binary can pass the
//!   file's content to [`GcpConfig::application_credentials`]).
//!
//! # Verified against a local server, and not
//! The integration tests run `eso-testserver-gcp`, whose REST surface, error bodies and token
//! endpoints are checked with Google's own Python clients and `gcloud`. Not verifiable there:
//! Google's IAM policies, real STS attribute conditions, GKE's identity binding token endpoint
//! (no public client exercises it; its request shape follows upstream's Go code), CMEK and
//! Pub/Sub topics (accepted, not enforced).

mod auth;
mod client;
mod crc32c;
mod endpoints;
mod http;
mod metrics;
mod push;
mod token;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::provider::GcpsmProvider;
use eso_api::{SecretStoreCapabilities, StoreKind};
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo};
use reqwest::Url;

pub use client::GcpClient;
pub use endpoints::GcpEndpoints;

use crate::auth::metadata::Metadata;
use crate::client::ClientSettings;
use crate::http::{Http, RetryPolicy};
use crate::token::TokenSource;
use eso_provider::http::HttpTuning;

/// The OAuth2 scope every token is requested for.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Tuning of the clients a [`GcpProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct GcpConfig {
    pub(crate) endpoints: GcpEndpoints,
    read_cache_ttl: Duration,
    http: HttpTuning,
    pub(crate) service_account_token_lifetime: Duration,
    pub(crate) application_credentials: Option<String>,
    find_concurrency: usize,
}

impl Default for GcpConfig {
    fn default() -> Self {
        Self {
            endpoints: GcpEndpoints::google(),
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
            service_account_token_lifetime: Duration::from_secs(24 * 3600),
            application_credentials: None,
            find_concurrency: 8,
        }
    }
}

impl GcpConfig {
    /// The endpoints (default: Google's).
    pub fn endpoints(mut self, endpoints: GcpEndpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// How long a read answer is served again without asking Secret Manager (default 10 s).
    /// Zero still shares one request between concurrent identical reads.
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

    /// How long the ServiceAccount tokens requested for Workload Identity and federation are
    /// valid (default 24 h); a client re-exchanges its token for Google tokens until then.
    pub fn service_account_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.service_account_token_lifetime = lifetime.max(Duration::from_secs(600));
        self
    }

    /// A service-account key file (JSON) used as the default credentials of stores without
    /// `auth`, instead of the metadata server (what Go's default credentials read from
    /// `GOOGLE_APPLICATION_CREDENTIALS`; the binary reads the file).
    pub fn application_credentials(mut self, key_json: Option<String>) -> Self {
        self.application_credentials = key_json;
        self
    }

    /// How many values a `find` reads at once (default 8).
    pub fn find_concurrency(mut self, n: usize) -> Self {
        self.find_concurrency = n.max(1);
        self
    }
}

/// The `gcpsm` provider.
#[derive(Debug, Clone, Default)]
pub struct GcpProvider {
    config: GcpConfig,
}

impl GcpProvider {
    /// A provider talking to Google's endpoints.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider talking to `endpoints` (a local test server, a private endpoint).
    #[must_use]
    pub fn with_endpoints(endpoints: GcpEndpoints) -> Self {
        Self {
            config: GcpConfig::default().endpoints(endpoints),
        }
    }

    /// Replaces the client tuning (endpoints included).
    #[must_use]
    pub fn config(mut self, config: GcpConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&GcpsmProvider, ProviderError> {
    store.spec.provider.gcpsm.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.gcpsm is not set",
            store.describe()
        ))
    })
}

/// Upstream's rule for a namespaced store: a credential reference may name no other namespace.
fn check_namespace(
    store: &StoreInfo,
    requested: Option<&str>,
    field: &str,
) -> Result<(), ProviderError> {
    if let (Some(own), Some(ns)) = (&store.namespace, requested)
        && store.kind == StoreKind::SecretStore
        && !ns.is_empty()
        && ns != own
    {
        return Err(ProviderError::invalid_store(format!(
            "{}: {field}.namespace {ns:?} should either be empty or match the namespace of the SecretStore",
            store.describe()
        )));
    }
    Ok(())
}

fn check_spec(spec: &GcpsmProvider, store: &StoreInfo) -> Result<(), ProviderError> {
    let owner = store.describe();
    let Some(auth) = &spec.auth else {
        return Ok(());
    };
    if let Some(sr) = &auth.secret_ref {
        let field = "auth.secretRef.secretAccessKeySecretRef";
        let selector = sr
            .secret_access_key_secret_ref
            .as_ref()
            .ok_or_else(|| ProviderError::invalid_store(format!("{owner}: {field} is required")))?;
        if selector.name.as_deref().is_none_or(str::is_empty)
            || selector.key.as_deref().is_none_or(str::is_empty)
        {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: {field} needs a name and a key"
            )));
        }
        check_namespace(store, selector.namespace.as_deref(), field)?;
    }
    if let Some(wi) = &auth.workload_identity {
        let field = "auth.workloadIdentity.serviceAccountRef";
        if wi.service_account_ref.name.is_empty() {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: {field}.name is required"
            )));
        }
        check_namespace(store, wi.service_account_ref.namespace.as_deref(), field)?;
    }
    if let Some(wif) = &auth.workload_identity_federation {
        let count = [
            wif.cred_config.is_some(),
            wif.service_account_ref.is_some(),
            wif.aws_security_credentials.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if count != 1 {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: auth.workloadIdentityFederation needs exactly one of credConfig, awsSecurityCredentials or serviceAccountRef"
            )));
        }
        if (wif.service_account_ref.is_some() || wif.aws_security_credentials.is_some())
            && wif.audience.as_deref().is_none_or(str::is_empty)
        {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: auth.workloadIdentityFederation.audience is required with serviceAccountRef or awsSecurityCredentials"
            )));
        }
        if let Some(sa) = &wif.service_account_ref {
            check_namespace(
                store,
                sa.namespace.as_deref(),
                "auth.workloadIdentityFederation.serviceAccountRef",
            )?;
        }
    }
    Ok(())
}

/// Upstream's `isReferentSpec`: credentials that name no namespace on a cluster store resolve
/// in the namespace of each ExternalSecret.
fn is_referent(spec: &GcpsmProvider) -> bool {
    let Some(auth) = &spec.auth else {
        return false;
    };
    auth.secret_ref.as_ref().is_some_and(|s| {
        s.secret_access_key_secret_ref
            .as_ref()
            .is_none_or(|k| k.namespace.is_none())
    }) || auth
        .workload_identity
        .as_ref()
        .is_some_and(|w| w.service_account_ref.namespace.is_none())
}

impl GcpProvider {
    async fn project(
        &self,
        spec: &GcpsmProvider,
        http: &Http,
        metadata: &Metadata,
        owner: &str,
    ) -> Result<String, ProviderError> {
        if let Some(p) = spec.project_id.as_deref().filter(|p| !p.is_empty()) {
            return Ok(p.to_owned());
        }
        let auth = spec.auth.clone().unwrap_or_default();
        if let Some(p) = auth
            .workload_identity
            .as_ref()
            .and_then(|w| w.cluster_project_id.as_deref())
            .filter(|p| !p.is_empty())
        {
            return Ok(p.to_owned());
        }
        if auth.secret_ref.is_some() {
            return Err(ProviderError::invalid_store(format!(
                "{owner}: projectID is required with a service-account key"
            )));
        }
        metadata
            .value(http, "project/project-id")
            .await
            .map_err(|e| {
                ProviderError::new(
                    e.kind(),
                    format!(
                        "{owner}: projectID is not set and the metadata server did not tell it"
                    ),
                )
                .with_source(e)
            })
    }
}

#[async_trait]
impl Provider for GcpProvider {
    fn key(&self) -> &'static str {
        "gcpsm"
    }

    fn display_name(&self) -> &'static str {
        // Upstream's providerName.
        "GCPSecretManager"
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
        let owner = store.describe();
        if store.kind == StoreKind::ClusterSecretStore
            && ctx.namespace.is_empty()
            && is_referent(spec)
        {
            return Ok(Arc::new(eso_provider::ReferentPlaceholder::new(format!(
                "{owner}: its credentials are referent (they name no namespace); they resolve only in the namespace of an ExternalSecret"
            ))));
        }
        let config = &self.config;
        let http = Http::new(
            config.http.request_timeout,
            config.http.connect_timeout,
            config.http.retry,
        )?;
        let metadata = Metadata::new(&config.endpoints.metadata, &owner);
        let project = self.project(spec, &http, &metadata, &owner).await?;
        let location = spec.location.clone().filter(|l| !l.is_empty());
        let base_text = config.endpoints.secret_manager_for(location.as_deref());
        let base = Url::parse(&base_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "{owner}: the Secret Manager endpoint {base_text:?} is not an http(s) URL"
                ))
            })?;
        let fetch = auth::resolve(&ctx, spec, config, &http, &metadata).await?;
        let token = TokenSource::new(fetch);
        // Like upstream, a client is only made with working credentials; the token is kept.
        token.token(&http).await?;
        Ok(Arc::new(GcpClient::new(
            ClientSettings {
                store: owner,
                project,
                location,
                policy: spec.secret_version_selection_policy(),
                base,
                read_cache_ttl: config.read_cache_ttl,
                find_concurrency: config.find_concurrency,
            },
            http,
            token,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::SecretKeySelector;
    use eso_api::SecretStoreSpec;
    use eso_api::common::ServiceAccountSelector;
    use eso_api::provider::{
        GcpWorkloadIdentity, GcpWorkloadIdentityFederation, GcpsmAuth, GcpsmAuthSecretRef,
    };

    fn store(kind: StoreKind, spec: GcpsmProvider) -> StoreInfo {
        let mut s = StoreInfo::secret_store(
            "gcp",
            "ns1",
            SecretStoreSpec {
                provider: eso_api::provider::SecretStoreProvider {
                    gcpsm: Some(spec),
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

    fn key_auth(namespace: Option<&str>) -> GcpsmProvider {
        GcpsmProvider {
            project_id: Some("p".into()),
            auth: Some(GcpsmAuth {
                secret_ref: Some(GcpsmAuthSecretRef {
                    secret_access_key_secret_ref: Some(SecretKeySelector {
                        name: Some("gcp".into()),
                        namespace: namespace.map(Into::into),
                        key: Some("key.json".into()),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn validate_store_applies_upstreams_rules() {
        let p = GcpProvider::new();
        assert!(
            p.validate_store(&store(StoreKind::SecretStore, key_auth(None)))
                .is_ok()
        );
        assert!(
            p.validate_store(&store(StoreKind::SecretStore, key_auth(Some("ns1"))))
                .is_ok()
        );
        let err = p
            .validate_store(&store(StoreKind::SecretStore, key_auth(Some("other"))))
            .unwrap_err();
        assert!(err.to_string().contains("should either be empty"), "{err}");
        assert!(
            p.validate_store(&store(
                StoreKind::ClusterSecretStore,
                key_auth(Some("other"))
            ))
            .is_ok()
        );
        let wif = |f: GcpWorkloadIdentityFederation| GcpsmProvider {
            auth: Some(GcpsmAuth {
                workload_identity_federation: Some(f),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sa = Some(ServiceAccountSelector {
            name: "app".into(),
            ..Default::default()
        });
        assert!(
            p.validate_store(&store(
                StoreKind::SecretStore,
                wif(GcpWorkloadIdentityFederation::default())
            ))
            .is_err()
        );
        assert!(
            p.validate_store(&store(
                StoreKind::SecretStore,
                wif(GcpWorkloadIdentityFederation {
                    service_account_ref: sa.clone(),
                    ..Default::default()
                })
            ))
            .is_err(),
            "audience is required"
        );
        assert!(
            p.validate_store(&store(
                StoreKind::SecretStore,
                wif(GcpWorkloadIdentityFederation {
                    service_account_ref: sa,
                    audience: Some("//iam.googleapis.com/x".into()),
                    ..Default::default()
                })
            ))
            .is_ok()
        );
        let no_sa = GcpsmProvider {
            auth: Some(GcpsmAuth {
                workload_identity: Some(GcpWorkloadIdentity::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            p.validate_store(&store(StoreKind::SecretStore, no_sa))
                .is_err()
        );
        let mut no_provider = store(StoreKind::SecretStore, GcpsmProvider::default());
        no_provider.spec.provider.gcpsm = None;
        assert!(p.validate_store(&no_provider).is_err());
    }

    #[test]
    fn referent_specs_name_no_namespace() {
        assert!(is_referent(&key_auth(None)));
        assert!(!is_referent(&key_auth(Some("ns"))));
        assert!(!is_referent(&GcpsmProvider::default()));
    }
}
