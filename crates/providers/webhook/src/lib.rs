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
//!   `caBundle`, or (without `caBundle`, as upstream) `caProvider` of type `Secret` or
//!   `ConfigMap`: only those roots are trusted, as upstream.
//! - `auth.ntlm` (`usernameSecret`, `passwordSecret`; the user may be `DOMAIN\user` or a
//!   UPN): each request goes first without credentials, and a 401 offering `NTLM` or
//!   `Negotiate` starts the NTLMv2 handshake (negotiate, challenge, authenticate) on the same
//!   kept-alive connection, as upstream's go-ntlmssp does. A client's requests then take
//!   turns on that one authenticated connection. Rejected credentials are `Auth`.
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
//! - NTLM never falls back to Basic credentials when a server does not offer NTLM (upstream
//!   does), and supports neither NTLMv1 nor a MIC, like upstream.
//! - `find` (`dataFrom.find`), delete and secret-exists are unsupported, as upstream.
//! - The `secrets[]` are read when the client is built (upstream reads them on every call), so
//!   a rotated credential is seen once the client is rebuilt.
//! - JSONPath is RFC 9535 (`jsonpath-rust`), not `PaesslerAG/jsonpath`: the forms upstream's
//!   documentation uses (`$.a.b`, `['a']`, `[0]`, `[*]`, `..`, filters like
//!   `[?(@.name == "x")]`) read the same; exotic Paessler extensions (script expressions) do
//!   not. A get map with a JSONPath matching one object inside a filter is accepted (upstream
//!   refuses its one-element list).

mod client;
pub mod generators;
mod ntlm;
mod request;
mod result;
mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eso_api::SecretStoreCapabilities;
use eso_api::provider::{WebhookNtlmAuth, WebhookProvider as WebhookSpec};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretData, SecretsClient, StoreInfo, tls,
};
use reqwest::Method;

pub use client::WebhookClient;

use crate::ntlm::Credentials;
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
    if let Some(ntlm) = spec.auth.as_ref().and_then(|a| a.ntlm.as_ref()) {
        for (field, selector) in [
            ("usernameSecret", &ntlm.username_secret),
            ("passwordSecret", &ntlm.password_secret),
        ] {
            if selector.name.as_deref().is_none_or(str::is_empty)
                || selector.key.as_deref().is_none_or(str::is_empty)
            {
                return Err(invalid(format!("auth.ntlm.{field} needs name and key")));
            }
        }
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
        tls::check_ca_provider(ca, store.kind, "caProvider").map_err(invalid)?;
    }
    let templates = Templates::parse(spec, FIELD).map_err(|e| {
        ProviderError::new(e.kind(), format!("{}: {}", store.describe(), e.message()))
            .with_source(e)
    })?;
    Ok((templates, method, timeout))
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

/// Reads `auth.ntlm`'s user and password, with the usual credential-namespace rules.
async fn ntlm_credentials(
    ctx: &ClientContext<'_>,
    ntlm: &WebhookNtlmAuth,
) -> Result<Credentials, ProviderError> {
    let text = |field: &'static str, value: Vec<u8>| {
        String::from_utf8(value).map_err(|e| {
            ProviderError::invalid_store(format!(
                "{}: {FIELD}.auth.ntlm.{field} is not UTF-8 text",
                ctx.store.describe()
            ))
            .with_source(e)
        })
    };
    let username = ctx
        .read_secret_key(
            &ntlm.username_secret,
            &format!("{FIELD}.auth.ntlm.usernameSecret"),
        )
        .await?;
    let password = ctx
        .read_secret_key(
            &ntlm.password_secret,
            &format!("{FIELD}.auth.ntlm.passwordSecret"),
        )
        .await?;
    // A value written with `echo` ends with a newline that is not part of the user name;
    // the password is used as stored.
    let username = text("usernameSecret", username)?;
    Ok(Credentials::new(
        username.trim(),
        &text("passwordSecret", password)?,
    ))
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
        let ca_pem = tls::load_ca_bundle(
            &ctx,
            spec.ca_bundle.as_deref(),
            spec.ca_provider.as_ref(),
            FIELD,
        )
        .await?;
        let secrets = read_secrets(&ctx, spec).await?;
        let ntlm = match spec.auth.as_ref().and_then(|a| a.ntlm.as_ref()) {
            Some(ntlm) => Some(ntlm_credentials(&ctx, ntlm).await?),
            None => None,
        };
        let transport = Transport::new(TransportSettings {
            ca_pem,
            timeout: timeout.unwrap_or(self.config.timeout),
            connect_timeout: self.config.connect_timeout,
            max_response_bytes: self.config.max_response_bytes,
            cross_host_redirects: self.config.cross_host_redirects,
            ntlm,
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
    use eso_api::provider::{CaProvider, CaProviderType, WebhookAuth};

    fn store(spec: WebhookSpec) -> StoreInfo {
        let mut s = SecretStoreSpec::default();
        s.provider.webhook = Some(spec);
        StoreInfo::secret_store("hook", "default", s)
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
    fn ntlm_needs_both_selectors_and_configmap_ca_is_accepted() {
        let p = WebhookProvider::new();
        let e = p
            .validate_store(&store(WebhookSpec {
                auth: Some(WebhookAuth {
                    ntlm: Some(WebhookNtlmAuth::default()),
                }),
                ..spec()
            }))
            .unwrap_err();
        assert_eq!(e.kind(), eso_provider::ErrorKind::InvalidStore);
        assert!(
            e.message()
                .ends_with("spec.provider.webhook.auth.ntlm.usernameSecret needs name and key"),
            "{e}"
        );
        let selector = |name: &str| eso_api::SecretKeySelector {
            name: Some(name.into()),
            namespace: None,
            key: Some("v".into()),
        };
        let ok = store(WebhookSpec {
            auth: Some(WebhookAuth {
                ntlm: Some(WebhookNtlmAuth {
                    username_secret: selector("user"),
                    password_secret: selector("pass"),
                }),
            }),
            ca_provider: Some(CaProvider {
                type_: CaProviderType::ConfigMap,
                name: "ca".into(),
                key: Some("ca.crt".into()),
                namespace: None,
            }),
            ..spec()
        });
        assert!(p.validate_store(&ok).is_ok());
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
