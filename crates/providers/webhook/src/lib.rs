//! `eso-provider-webhook`: upstream's generic `webhook` provider (`spec.provider.webhook`):
//! any HTTP API as a secret source, with the request written as Go templates.
//!
//! It owns the templated request, the HTTP exchange (reqwest + rustls) and the reading of
//! the answer (JSONPath). It knows nothing of Kubernetes: the Secrets a store references come
//! through [`eso_provider::ClientContext`], and it never reads environment variables.
//!
//! # Use
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use eso_provider::ProviderRegistry;
//! use eso_provider_webhook::{WebhookConfig, WebhookProvider};
//!
//! let config = WebhookConfig::default().max_response_bytes(1 << 20);
//! let registry = ProviderRegistry::new().with(Arc::new(WebhookProvider::new().config(config)));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["webhook"]);
//! ```
//!
//! # Supported
//! - `url`, `body` and `headers` values are Go templates (eso-template, with ESO's function
//!   set) over `.remoteRef.key`, `.remoteRef.property`, `.remoteRef.version` and, for each
//!   `secrets[]` entry, `.<name>.<key>` with every key of that Secret. In the URL the
//!   `remoteRef` values are query-escaped (Go's `url.QueryEscape`), as upstream does.
//!   `result.jsonPath` is a template too.
//! - `method` (default GET), `timeout` (a Go duration; default [`WebhookConfig::timeout`]),
//!   `caBundle` and `caProvider` of type `Secret` (only those roots are trusted, as
//!   upstream).
//! - get: the whole body, or the first JSONPath match formatted as upstream's
//!   `extractSecretData` (strings raw, numbers as Go's `FormatFloat(v, 'f', 0)`, lists give
//!   their first element, objects their JSON). get map: the body or the match must be a JSON
//!   object, or a string holding one; non-string values are given as JSON.
//! - push: `method` (default POST), `url` and `body` rendered over `.remoteRef.remoteKey`
//!   (query-escaped) and `.remoteRef.<secretKey>` holding the value (`.remoteRef.<remoteKey>`
//!   when a whole Secret is pushed), plus the `secrets[]`; without `body` the raw value is
//!   sent, as upstream.
//! - validate reports `Unknown` without a request, as upstream.
//!
//! # Limits
//! Answers larger than [`WebhookConfig::max_response_bytes`] (default 4 MiB) are refused;
//! redirects are followed (up to 10) within the same origin only, unless
//! [`WebhookConfig::cross_host_redirects`] allows others; TLS is always verified. Error
//! messages name the method and URL (without user info or query string, which may carry
//! credentials), the status, and the JSONPath; never header values.
//!
//! # Errors
//! 404 is [`eso_provider::ErrorKind::NotFound`]; 401 and 403 `Auth`; 429 `Throttled` (with
//! `Retry-After`); 408, 5xx, connection failures, timeouts and bodies that are not JSON when
//! JSON is needed are `Unavailable`; a JSONPath that matches nothing, a value of the wrong
//! type, an oversized answer and other statuses are `InvalidRequest` (upstream treats a
//! missing path as a generic error, never as "does not exist"); bad templates and JSONPaths
//! are `InvalidStore`. Every request counts in
//! `externalsecret_provider_api_calls_count{provider="Webhook", call, status}` with `call`
//! `GetWebhookData` or `PushWebhookData`.
//!
//! # Not supported, and differences from upstream
//! - `auth.ntlm`: NTLM needs a three-message handshake on one kept-alive connection, which
//!   reqwest does not expose, and no lean, maintained Rust crate does it; a store with it is
//!   refused as `Unsupported`.
//! - `caProvider` of type `ConfigMap`: eso-provider has no ConfigMap reader yet.
//! - `find` (`dataFrom.find`), delete and secret-exists are unsupported, as upstream.
//! - The `secrets[]` are read when the client is built (upstream reads them on every call), so
//!   a rotated credential is seen once the client is rebuilt.
//! - JSONPath is RFC 9535 (`jsonpath-rust`), not `PaesslerAG/jsonpath`: the forms upstream's
//!   documentation uses (`$.a.b`, `['a']`, `[0]`, `[*]`, `..`, filters like
//!   `[?(@.name == "x")]`) read the same; exotic Paessler extensions (script expressions) do
//!   not. A get map with a JSONPath matching one object inside a filter is accepted (upstream
//!   refuses its one-element list).

mod client;
mod request;
mod result;
mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use eso_api::provider::{CaProviderType, WebhookProvider as WebhookSpec};
use eso_api::{SecretKeySelector, SecretStoreCapabilities, StoreKind};
use eso_provider::{ClientContext, Provider, ProviderError, SecretData, SecretsClient, StoreInfo};
use reqwest::Method;

pub use client::WebhookClient;

use crate::request::Templates;
use crate::transport::{Transport, TransportSettings};

const FIELD: &str = "spec.provider.webhook";

/// Tuning of the clients a [`WebhookProvider`] builds.
#[derive(Debug, Clone)]
#[must_use]
pub struct WebhookConfig {
    timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: usize,
    cross_host_redirects: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_response_bytes: 4 << 20,
            cross_host_redirects: false,
        }
    }
}

impl WebhookConfig {
    /// The request timeout when the store sets none (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout of establishing a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest answer read (default 4 MiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Whether redirects to another scheme, host or port are followed (default no).
    pub fn cross_host_redirects(mut self, allow: bool) -> Self {
        self.cross_host_redirects = allow;
        self
    }
}

/// The `webhook` provider.
#[derive(Debug, Clone, Default)]
pub struct WebhookProvider {
    config: WebhookConfig,
}

impl WebhookProvider {
    /// The provider with the default [`WebhookConfig`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning.
    #[must_use]
    pub fn config(mut self, config: WebhookConfig) -> Self {
        self.config = config;
        self
    }
}

fn spec_of(store: &StoreInfo) -> Result<&WebhookSpec, ProviderError> {
    store.spec.provider.webhook.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!("{}: {FIELD} is not set", store.describe()))
    })
}

/// Everything that can be checked without I/O; returns the parsed templates, method and
/// timeout.
fn check_spec(
    spec: &WebhookSpec,
    store: &StoreInfo,
) -> Result<(Templates, Method, Option<Duration>), ProviderError> {
    let invalid =
        |msg: String| ProviderError::invalid_store(format!("{}: {FIELD}.{msg}", store.describe()));
    if spec.url.trim().is_empty() {
        return Err(invalid("url is required".into()));
    }
    if spec.auth.as_ref().is_some_and(|a| a.ntlm.is_some()) {
        return Err(ProviderError::unsupported(format!(
            "{}: {FIELD}.auth.ntlm is not supported by eso-rs",
            store.describe()
        )));
    }
    let method =
        Method::from_bytes(spec.method().to_ascii_uppercase().as_bytes()).map_err(|e| {
            invalid(format!("method {:?} is not an HTTP method", spec.method())).with_source(e)
        })?;
    let timeout = match spec.timeout.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => {
            let d = eso_api::duration::parse_go_duration(t)
                .map_err(|e| invalid(format!("timeout {t:?} is not a duration")).with_source(e))?;
            (!d.is_zero()).then_some(d)
        }
        None => None,
    };
    for (i, s) in spec.secrets.iter().enumerate() {
        if s.name.is_empty() {
            return Err(invalid(format!("secrets[{i}].name is required")));
        }
        if s.secret_ref.name.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(format!("secrets[{i}].secretRef.name is required")));
        }
    }
    if let Some(ca) = &spec.ca_provider {
        if ca.type_ == CaProviderType::ConfigMap {
            return Err(ProviderError::unsupported(format!(
                "{}: {FIELD}.caProvider of type ConfigMap is not supported yet; use type Secret or caBundle",
                store.describe()
            )));
        }
        if ca.key.as_deref().is_none_or(str::is_empty) {
            return Err(invalid("caProvider.key is required".into()));
        }
        match (store.kind, &ca.namespace) {
            (StoreKind::ClusterSecretStore, None) => {
                return Err(invalid(
                    "caProvider.namespace is required on a ClusterSecretStore".into(),
                ));
            }
            (StoreKind::SecretStore, Some(_)) => {
                return Err(invalid(
                    "caProvider.namespace is not allowed on a SecretStore".into(),
                ));
            }
            _ => {}
        }
    }
    let templates = Templates::parse(spec, FIELD).map_err(|e| {
        ProviderError::new(e.kind(), format!("{}: {}", store.describe(), e.message()))
            .with_source(e)
    })?;
    Ok((templates, method, timeout))
}

fn decode_ca_bundle(bundle: &str) -> Result<Vec<u8>, ProviderError> {
    let trimmed = bundle.trim();
    if trimmed.starts_with("-----BEGIN") {
        // Not the base64 the CRD asks for, but unambiguous.
        return Ok(trimmed.as_bytes().to_vec());
    }
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| ProviderError::invalid_store("caBundle is not base64").with_source(e))
}

/// Reads every Secret of `secrets[]`, with the usual credential-namespace rules.
async fn read_secrets(
    ctx: &ClientContext<'_>,
    spec: &WebhookSpec,
) -> Result<BTreeMap<String, SecretData>, ProviderError> {
    let mut out: BTreeMap<String, SecretData> = BTreeMap::new();
    for (i, s) in spec.secrets.iter().enumerate() {
        let name = s.secret_ref.name.as_deref().unwrap_or_default();
        let namespace = ctx.credential_namespace(s.secret_ref.namespace.as_deref());
        let data = ctx
            .secrets
            .secret_data(namespace, name)
            .await?
            .ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "{}: {FIELD}.secrets[{i}] refers to Secret \"{namespace}/{name}\", which does not exist",
                    ctx.store.describe()
                ))
            })?;
        out.entry(s.name.clone()).or_default().extend(data);
    }
    Ok(out)
}

#[async_trait]
impl Provider for WebhookProvider {
    fn key(&self) -> &'static str {
        "webhook"
    }

    fn display_name(&self) -> &'static str {
        "Webhook"
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadWrite
    }

    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        check_spec(spec_of(store)?, store).map(|_| Vec::new())
    }

    async fn new_client(
        &self,
        ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = ctx.store;
        let spec = spec_of(store)?;
        let (templates, method, timeout) = check_spec(spec, store)?;
        let with_store = |e: ProviderError| {
            ProviderError::new(e.kind(), format!("{}: {FIELD}", store.describe())).with_source(e)
        };
        let mut ca_pem = match spec.ca_bundle.as_deref().filter(|b| !b.trim().is_empty()) {
            Some(bundle) => Some(decode_ca_bundle(bundle).map_err(with_store)?),
            None => None,
        };
        if let Some(ca) = &spec.ca_provider {
            let selector = SecretKeySelector {
                name: Some(ca.name.clone()),
                namespace: ca.namespace.clone(),
                key: ca.key.clone(),
            };
            let pem = ctx
                .read_secret_key(&selector, &format!("{FIELD}.caProvider"))
                .await?;
            let bundle = ca_pem.get_or_insert_with(Vec::new);
            bundle.push(b'\n');
            bundle.extend(pem);
        }
        let secrets = read_secrets(&ctx, spec).await?;
        let transport = Transport::new(TransportSettings {
            ca_pem,
            timeout: timeout.unwrap_or(self.config.timeout),
            connect_timeout: self.config.connect_timeout,
            max_response_bytes: self.config.max_response_bytes,
            cross_host_redirects: self.config.cross_host_redirects,
        })
        .map_err(with_store)?;
        Ok(Arc::new(WebhookClient {
            transport,
            templates,
            method,
            method_set: spec.method.as_deref().is_some_and(|m| !m.is_empty()),
            secrets,
            store: store.describe(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::SecretStoreSpec;
    use eso_api::provider::{CaProvider, WebhookAuth, WebhookNtlmAuth};

    fn store(spec: WebhookSpec) -> StoreInfo {
        let mut s = SecretStoreSpec::default();
        s.provider.webhook = Some(spec);
        StoreInfo {
            kind: StoreKind::SecretStore,
            name: "hook".into(),
            namespace: Some("default".into()),
            uid: None,
            generation: None,
            spec: s,
        }
    }

    fn spec() -> WebhookSpec {
        WebhookSpec {
            url: "http://127.0.0.1:1/{{ .remoteRef.key }}".into(),
            ..WebhookSpec::default()
        }
    }

    #[test]
    fn validate_store_checks_url_method_timeout_and_templates() {
        let p = WebhookProvider::new();
        assert!(p.validate_store(&store(spec())).unwrap().is_empty());
        let bad = |s: WebhookSpec| p.validate_store(&store(s)).unwrap_err();
        assert!(
            bad(WebhookSpec::default())
                .message()
                .contains("url is required")
        );
        let e = bad(WebhookSpec {
            method: Some("GE T".into()),
            ..spec()
        });
        assert!(e.message().contains("method"), "{e}");
        let e = bad(WebhookSpec {
            timeout: Some("soon".into()),
            ..spec()
        });
        assert!(e.message().contains("timeout"), "{e}");
        let e = bad(WebhookSpec {
            body: Some("{{ if }}".into()),
            ..spec()
        });
        assert!(e.message().contains("spec.provider.webhook.body"), "{e}");
        let e = bad(WebhookSpec {
            body: Some("{{ nosuchfunc }}".into()),
            ..spec()
        });
        assert_eq!(e.kind(), eso_provider::ErrorKind::InvalidStore);
    }

    #[test]
    fn ntlm_and_configmap_ca_are_unsupported() {
        let p = WebhookProvider::new();
        let e = p
            .validate_store(&store(WebhookSpec {
                auth: Some(WebhookAuth {
                    ntlm: Some(WebhookNtlmAuth::default()),
                }),
                ..spec()
            }))
            .unwrap_err();
        assert_eq!(e.kind(), eso_provider::ErrorKind::Unsupported);
        let e = p
            .validate_store(&store(WebhookSpec {
                ca_provider: Some(CaProvider {
                    type_: CaProviderType::ConfigMap,
                    name: "ca".into(),
                    key: Some("ca.crt".into()),
                    namespace: None,
                }),
                ..spec()
            }))
            .unwrap_err();
        assert_eq!(e.kind(), eso_provider::ErrorKind::Unsupported);
    }

    #[test]
    fn method_is_case_insensitive_and_defaults_to_get() {
        let s = store(spec());
        let (_, m, t) = check_spec(s.spec.provider.webhook.as_ref().unwrap(), &s).unwrap();
        assert_eq!(m, Method::GET);
        assert_eq!(t, None);
        let s = store(WebhookSpec {
            method: Some("post".into()),
            timeout: Some("1500ms".into()),
            ..spec()
        });
        let (_, m, t) = check_spec(s.spec.provider.webhook.as_ref().unwrap(), &s).unwrap();
        assert_eq!(m, Method::POST);
        assert_eq!(t, Some(Duration::from_millis(1500)));
    }
}
