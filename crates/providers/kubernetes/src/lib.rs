//! `eso-provider-kubernetes`: upstream's `kubernetes` provider (`spec.provider.kubernetes`):
//! Secrets of the same or another cluster as a secret store.
//!
//! It owns the client of the remote API server (kube-rs + rustls): building it from the
//! store's `server`, `auth` or `authRef`, reading, finding, pushing and deleting Secrets of the
//! one remote namespace, and checking the credentials. Credentials come through
//! [`eso_provider::ClientContext`]; it never reads environment variables.
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_kubernetes::{KubernetesConfig, KubernetesProvider};
//!
//! let config = KubernetesConfig::default().request_timeout(Duration::from_secs(10));
//! let registry = ProviderRegistry::new().with(Arc::new(KubernetesProvider::new().config(config)));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["kubernetes"]);
//! ```
//!
//! # Supported
//! - `remoteNamespace` (default `default`), `server.url` (default `kubernetes.default`, read as
//!   `https://kubernetes.default`), `server.caBundle` or (when no `caBundle` is set, as upstream)
//!   `server.caProvider` of type `Secret` or `ConfigMap`.
//! - `auth.token.bearerToken`, `auth.cert` (`clientCert` + `clientKey`), `auth.serviceAccount`
//!   (a TokenRequest token for that ServiceAccount, in the namespace
//!   [`eso_provider::ClientContext::credential_namespace`] gives), and `authRef` (a kubeconfig
//!   in a Secret; its current context's cluster and user are used, `remoteNamespace` still
//!   decides the namespace).
//! - get: without `property` the Secret's data as a JSON object of strings, written as Go's
//!   `json.Marshal` (sorted keys, HTML-escaped), as upstream; with `property` that key, or a
//!   gjson path inside the key before the first dot (`config.db.port`). `metadataPolicy:
//!   Fetch` reads `labels`, `annotations`, `labels.<name>`, `annotations.<name>`, or both maps
//!   without a property. get map: the data, or with `property` that key parsed as a JSON
//!   object; with `Fetch`, `labels`/`annotations`.
//! - find: by `name.regexp` and by `tags` (a label selector; with both, both apply). Each
//!   match gives `<secret name>: <data as JSON>`, as upstream.
//! - push: `remoteRef.property` names the key written (a whole-Secret value pushed with a
//!   property is written there as its JSON); a whole Secret without a property writes every
//!   key; one key without a property is refused, as upstream. Writes are server-side apply with the field manager
//!   [`FIELD_MANAGER`] (forced, as upstream overwrites), creating the Secret when needed; a
//!   push that changes nothing writes nothing.
//! - delete: only keys this provider's field manager owns (from `managedFields`); other keys
//!   are left alone. When nothing else is left, the Secret is deleted (with a resourceVersion
//!   precondition), as upstream.
//! - secret-exists, and validate: a SelfSubjectAccessReview for `get secrets` in the remote
//!   namespace; on an API server that does not serve the authorization API (the in-process
//!   test server), a `list` of one Secret instead.
//!
//! # Namespace safety
//! Every read and write goes to `Api::namespaced(remoteNamespace)`; Secret names are checked
//! to be DNS subdomains before a request, so a key like `../../other/secrets/x` is refused
//! rather than sent. Credentials are only those the store names: a store without `auth` or
//! `authRef` is refused (`InvalidStore`) and never falls back to the operator's own identity;
//! a SecretStore's references resolve in its own namespace whatever namespace they name; a
//! kubeconfig from `authRef` may not use token or certificate files, `exec` or
//! `auth-provider` plugins, or a proxy, and must carry credentials.
//!
//! # Errors
//! 404 is [`eso_provider::ErrorKind::NotFound`] (also a missing key or metadata entry); 401
//! and 403 `Auth`; 429 `Throttled`; 408, 409, 5xx, connection failures and timeouts
//! `Unavailable`. kube's own retry layer is off: one request per call, the reconciler backs
//! off. Every call counts in `externalsecret_provider_api_calls_count{provider="Kubernetes",
//! call, status}` with `GetSecret`, `ListSecrets`, `ApplySecret`, `DeleteSecret` and
//! `CreateSelfSubjectAccessReview`.
//!
//! # Not supported, and differences from upstream
//! - PushSecret `metadata` (labels, annotations, merge policies) is ignored; pushed Secrets
//!   are created as `Opaque`.
//! - A plain `http://` server URL needs no CA (upstream demands one whatever the scheme).
//! - `auth` and `authRef` together: `authRef` wins, as upstream, with a warning.
//! - Credentials are read when the client is built; a ServiceAccount token is not renewed
//!   until the client is rebuilt.

mod auth;
mod client;
mod value;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::SecretStoreCapabilities;
use eso_api::provider::KubernetesProvider as KubernetesSpec;
use eso_provider::{ClientContext, Provider, ProviderError, SecretsClient, StoreInfo, tls};
use kube::Api;

pub use client::{FIELD_MANAGER, KubernetesClient};

use crate::auth::Timeouts;

const FIELD: &str = "spec.provider.kubernetes";

/// Tuning of the clients a [`KubernetesProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct KubernetesConfig {
    request_timeout: Duration,
    connect_timeout: Duration,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl KubernetesConfig {
    /// The read and write timeout of one request (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The timeout of establishing a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// The `kubernetes` provider.
#[derive(Debug, Clone, Default)]
pub struct KubernetesProvider {
    config: KubernetesConfig,
}

impl KubernetesProvider {
    /// The provider with the default [`KubernetesConfig`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: KubernetesConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&KubernetesSpec, ProviderError> {
    store.spec.provider.kubernetes.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!("{}: {FIELD} is not set", store.describe()))
    })
}

fn check_spec(spec: &KubernetesSpec, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
    let invalid =
        |msg: String| ProviderError::invalid_store(format!("{}: {FIELD}.{msg}", store.describe()));
    let mut warnings = Vec::new();
    let namespace = spec.remote_namespace();
    if !value::is_valid_name(namespace) || namespace.contains('.') || namespace.len() > 63 {
        return Err(invalid(format!(
            "remoteNamespace {namespace:?} is not a valid namespace name"
        )));
    }
    if spec.auth_ref.is_some() {
        if spec.auth.is_some() {
            warnings.push(format!("{FIELD}: authRef is used and auth is ignored"));
        }
        return Ok(warnings);
    }
    let Some(auth) = &spec.auth else {
        return Err(invalid(
            "auth or authRef is required (the operator's own identity is never used)".into(),
        ));
    };
    let methods = [
        auth.token.is_some(),
        auth.cert.is_some(),
        auth.service_account.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if methods != 1 {
        return Err(invalid(
            "auth must set exactly one of token, cert and serviceAccount".into(),
        ));
    }
    if let Some(token) = &auth.token
        && (token.bearer_token.name.as_deref().is_none_or(str::is_empty)
            || token.bearer_token.key.as_deref().is_none_or(str::is_empty))
    {
        return Err(invalid("auth.token.bearerToken needs name and key".into()));
    }
    if let Some(cert) = &auth.cert {
        for (field, sel) in [
            ("clientCert", &cert.client_cert),
            ("clientKey", &cert.client_key),
        ] {
            if sel.name.as_deref().is_none_or(str::is_empty)
                || sel.key.as_deref().is_none_or(str::is_empty)
            {
                return Err(invalid(format!("auth.cert.{field} needs name and key")));
            }
        }
    }
    if auth
        .service_account
        .as_ref()
        .is_some_and(|sa| sa.name.is_empty())
    {
        return Err(invalid("auth.serviceAccount.name is required".into()));
    }
    let server = spec.server.clone().unwrap_or_default();
    if let Some(ca) = &server.ca_provider {
        tls::check_ca_provider(ca, store.kind, "server.caProvider").map_err(invalid)?;
    }
    let url = auth::server_url(server.url());
    if url.starts_with("https://") && server.ca_bundle.is_none() && server.ca_provider.is_none() {
        return Err(invalid("server needs caBundle or caProvider".into()));
    }
    if url.starts_with("http://") {
        warnings.push(format!(
            "{FIELD}.server.url {url} is plain HTTP: credentials travel unencrypted"
        ));
    }
    Ok(warnings)
}

#[async_trait]
impl Provider for KubernetesProvider {
    fn key(&self) -> &'static str {
        "kubernetes"
    }

    fn display_name(&self) -> &'static str {
        "Kubernetes"
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
        let namespace = spec.remote_namespace().to_owned();
        let kubeconfig = auth::kubeconfig(&ctx, spec).await?;
        let config = auth::kube_config(
            kubeconfig,
            &namespace,
            Timeouts {
                connect: self.config.connect_timeout,
                request: self.config.request_timeout,
            },
            &store.describe(),
        )
        .await?;
        let client = kube::Client::try_from(config).map_err(|e| {
            ProviderError::invalid_store(format!(
                "{}: {FIELD}: cannot build the Kubernetes client",
                store.describe()
            ))
            .with_source(e)
        })?;
        Ok(Arc::new(KubernetesClient {
            secrets: Api::namespaced(client.clone(), &namespace),
            reviews: Api::all(client),
            namespace,
            store: store.describe(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::provider::{KubernetesAuth, KubernetesServer, KubernetesTokenAuth};
    use eso_api::{SecretKeySelector, SecretStoreSpec};
    use eso_provider::ErrorKind;

    fn store(spec: KubernetesSpec) -> StoreInfo {
        let mut s = SecretStoreSpec::default();
        s.provider.kubernetes = Some(spec);
        StoreInfo::secret_store("k8s", "apps", s)
    }

    fn token_auth() -> KubernetesAuth {
        KubernetesAuth {
            token: Some(KubernetesTokenAuth {
                bearer_token: SecretKeySelector {
                    name: Some("t".into()),
                    key: Some("token".into()),
                    namespace: None,
                },
            }),
            ..KubernetesAuth::default()
        }
    }

    #[test]
    fn stores_need_credentials_and_a_ca_for_https() {
        let p = KubernetesProvider::new();
        let err = p
            .validate_store(&store(KubernetesSpec::default()))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore);
        assert!(err.message().contains("never used"), "{err}");
        let err = p
            .validate_store(&store(KubernetesSpec {
                auth: Some(token_auth()),
                ..KubernetesSpec::default()
            }))
            .unwrap_err();
        assert!(err.message().contains("caBundle"), "{err}");
        let ok = KubernetesSpec {
            auth: Some(token_auth()),
            server: Some(KubernetesServer {
                url: Some("http://127.0.0.1:1".into()),
                ..KubernetesServer::default()
            }),
            ..KubernetesSpec::default()
        };
        let warnings = p.validate_store(&store(ok.clone())).unwrap();
        assert!(warnings[0].contains("plain HTTP"), "{warnings:?}");
        let two = KubernetesSpec {
            auth: Some(KubernetesAuth {
                service_account: Some(eso_api::ServiceAccountSelector {
                    name: "sa".into(),
                    ..Default::default()
                }),
                ..token_auth()
            }),
            ..ok.clone()
        };
        assert!(p.validate_store(&store(two)).is_err());
        let bad_ns = KubernetesSpec {
            remote_namespace: Some("../kube-system".into()),
            ..ok
        };
        assert!(p.validate_store(&store(bad_ns)).is_err());
    }
}
