//! One HTTP exchange with Vault: URL building, the headers every request carries (namespace,
//! custom headers, replication state), the `externalsecret_provider_api_calls_count` metric,
//! and the mapping of every failure to an [`ErrorKind`] by its cause.

use std::sync::Mutex;
use std::time::Duration;

use eso_provider::http::ClientSettings;
use eso_provider::{ErrorKind, ProviderError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// The `call` label values of upstream's `externalsecret_provider_api_calls_count`
/// (`providers/v1/vault/constants.go`); upstream's names, plus `RenewSelf` (upstream never renews).
pub(crate) mod call {
    pub(crate) const LOGIN: &str = "Login";
    pub(crate) const RENEW_SELF: &str = "RenewSelf";
    pub(crate) const LOOKUP_SELF: &str = "LookupSelf";
    pub(crate) const REVOKE_SELF: &str = "RevokeSelf";
    pub(crate) const READ_SECRET_DATA: &str = "ReadSecretData";
    pub(crate) const WRITE_SECRET_DATA: &str = "WriteSecretData";
    pub(crate) const DELETE_SECRET: &str = "DeleteSecret";
    pub(crate) const LIST_SECRETS: &str = "ListSecrets";
}

const NAMESPACE_HEADER: &str = "x-vault-namespace";
const TOKEN_HEADER: &str = "x-vault-token";
const INDEX_HEADER: &str = "x-vault-index";

/// One request.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    /// The API path after `/v1/`, e.g. `secret/data/app/db`.
    pub(crate) path: &'a str,
    pub(crate) query: Vec<(std::borrow::Cow<'static, str>, String)>,
    pub(crate) body: Option<Value>,
    /// Overrides the store's namespace (logins use `auth.namespace`).
    pub(crate) namespace: Option<&'a str>,
    /// The metric's `call` label.
    pub(crate) label: &'static str,
}

impl<'a> Call<'a> {
    pub(crate) fn new(method: Method, path: &'a str, label: &'static str) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            body: None,
            namespace: None,
            label,
        }
    }

    pub(crate) fn query(
        mut self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn namespace(mut self, namespace: Option<&'a str>) -> Self {
        if namespace.is_some() {
            self.namespace = namespace;
        }
        self
    }

    fn describe(&self) -> String {
        let method = if self.query.iter().any(|(k, _)| k == "list") {
            "LIST"
        } else {
            self.method.as_str()
        };
        format!("{method} /v1/{}", self.path)
    }
}

/// Settings of the HTTP layer, resolved from the store spec.
#[derive(Debug, Clone)]
pub(crate) struct TransportSettings {
    pub(crate) server: String,
    pub(crate) namespace: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) read_your_writes: bool,
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain followed by the PEM key, for mutual TLS.
    pub(crate) identity_pem: Option<Vec<u8>>,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) provider_label: &'static str,
}

/// The HTTP client of one Vault client.
#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    base: Url,
    namespace: Option<String>,
    headers: HeaderMap,
    read_your_writes: bool,
    /// The newest `X-Vault-Index` seen, echoed back when `readYourWrites` is on (what Go's
    /// `api.Config.ReadYourWrites` does).
    index: Mutex<Option<HeaderValue>>,
    provider_label: &'static str,
}

impl Transport {
    pub(crate) fn new(settings: TransportSettings) -> Result<Self, ProviderError> {
        let base = Url::parse(&settings.server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "server {:?} is not an http(s) URL",
                    settings.server
                ))
            })?;
        let http = ClientSettings::new(settings.request_timeout, settings.connect_timeout)
            // Vault answers redirects from standbys with 307; the Go client follows them.
            .redirect(reqwest::redirect::Policy::limited(5))
            // Like Go's `api.Config.ConfigureTLS` with a CA: only these roots are trusted.
            .ca_pem(settings.ca_pem)
            .identity_pem(settings.identity_pem)
            .build()?;
        Ok(Self {
            http,
            base,
            namespace: settings.namespace.filter(|n| !n.is_empty()),
            headers: settings.headers,
            read_your_writes: settings.read_your_writes,
            index: Mutex::new(None),
            provider_label: settings.provider_label,
        })
    }

    fn url(&self, call: &Call<'_>) -> Result<Url, ProviderError> {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                ProviderError::invalid_store(format!("server {} cannot be a base URL", self.base))
            })?;
            segments.pop_if_empty().push("v1");
            segments.extend(call.path.split('/').filter(|s| !s.is_empty()));
        }
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (k.as_ref(), v.as_str())));
        }
        Ok(url)
    }

    /// Sends one request. `Ok(None)` for an empty answer (204); 404 is an error of kind
    /// [`ErrorKind::NotFound`].
    pub(crate) async fn send(
        &self,
        call: &Call<'_>,
        token: Option<&str>,
    ) -> Result<Option<Value>, ProviderError> {
        let result = self.exchange(call, token).await;
        // An answer that the key does not exist is a successful call (the Go client returns no
        // error for it either).
        let status = match &result {
            Ok(_) => true,
            Err(e) => e.kind() == ErrorKind::NotFound,
        };
        eso_provider::metrics::observe_status(self.provider_label, call.label, status);
        result
    }

    async fn exchange(
        &self,
        call: &Call<'_>,
        token: Option<&str>,
    ) -> Result<Option<Value>, ProviderError> {
        let url = self.url(call)?;
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .headers(self.headers.clone());
        if let Some(ns) = call.namespace.or(self.namespace.as_deref()) {
            request = request.header(NAMESPACE_HEADER, ns);
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                ProviderError::invalid_store("the Vault token holds characters a header cannot")
            })?;
            value.set_sensitive(true);
            request = request.header(TOKEN_HEADER, value);
        }
        if self.read_your_writes
            && let Some(index) = self.last_index()
        {
            request = request.header(INDEX_HEADER, index);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport_error(call, e))?;
        let status = response.status();
        if self.read_your_writes
            && let Some(index) = response.headers().get(INDEX_HEADER)
        {
            self.remember_index(index.clone());
        }
        let retry_after = eso_provider::http::retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(call, e))?;
        let body: Option<Value> = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if status.is_success() {
            if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                return Ok(None);
            }
            return body.map(Some).ok_or_else(|| {
                ProviderError::unavailable(format!(
                    "{} answered {status} with a body that is not JSON",
                    call.describe()
                ))
            });
        }
        let detail = error_detail(body.as_ref(), &bytes);
        let kind = classify(status, &detail);
        let message = if detail.is_empty() {
            format!("{} answered {status}", call.describe())
        } else {
            format!("{} answered {status}: {detail}", call.describe())
        };
        let mut err = ProviderError::new(kind, message);
        if let Some(wait) = retry_after {
            err = err.with_retry_after(wait);
        }
        Err(err)
    }

    fn last_index(&self) -> Option<HeaderValue> {
        self.index.lock().ok().and_then(|g| g.clone())
    }

    fn remember_index(&self, index: HeaderValue) {
        if let Ok(mut guard) = self.index.lock() {
            *guard = Some(index);
        }
    }
}

fn transport_error(call: &Call<'_>, e: reqwest::Error) -> ProviderError {
    let what = eso_provider::http::transport_failure(&e);
    ProviderError::unavailable(format!("{} {what}", call.describe())).with_source(e)
}

/// The `errors` of a Vault error body, joined; Go's multierror wrapping
/// (`1 error occurred:\n\t* permission denied\n\n`) is reduced to its items.
pub(crate) fn error_detail(body: Option<&Value>, raw: &[u8]) -> String {
    let Some(errors) = body.and_then(|b| b.get("errors")).and_then(Value::as_array) else {
        return eso_provider::http::body_text(raw);
    };
    let mut items = Vec::new();
    for e in errors.iter().filter_map(Value::as_str) {
        let bullets: Vec<&str> = e
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* "))
            .collect();
        if bullets.is_empty() {
            let t = e.trim();
            if !t.is_empty() {
                items.push(t.to_owned());
            }
        } else {
            items.extend(bullets.into_iter().map(str::to_owned));
        }
    }
    items.join("; ")
}

/// The cause of a failed answer. Only 404 means "does not exist"; 401/403 are always
/// authentication or authorization problems, whatever the path.
pub(crate) fn classify(status: StatusCode, detail: &str) -> ErrorKind {
    match status.as_u16() {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::Auth,
        429 => ErrorKind::Throttled,
        // A check-and-set conflict: someone wrote in between; a retry re-reads the version.
        400 if detail.contains("check-and-set") => ErrorKind::Unavailable,
        // 412: a standby has not caught up with the index we sent (readYourWrites).
        // 472/473: Vault Enterprise performance-standby and DR redirect codes.
        408 | 412 | 472 | 473 => ErrorKind::Unavailable,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidRequest,
    }
}

/// Builds the header map of `spec.headers` (plus `X-Vault-Inconsistent` when asked for).
pub(crate) fn header_map(
    headers: &std::collections::BTreeMap<String, String>,
    forward_inconsistent: bool,
) -> Result<HeaderMap, ProviderError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            ProviderError::invalid_store(format!("header name {name:?} is not valid"))
                .with_source(e)
        })?;
        let value = HeaderValue::from_str(value).map_err(|e| {
            ProviderError::invalid_store(format!("the value of header {name:?} is not valid"))
                .with_source(e)
        })?;
        map.insert(header, value);
    }
    if forward_inconsistent {
        map.insert(
            HeaderName::from_static("x-vault-inconsistent"),
            HeaderValue::from_static("forward-active-node"),
        );
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_by_cause() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert_eq!(classify(s(404), ""), ErrorKind::NotFound);
        assert_eq!(classify(s(403), "permission denied"), ErrorKind::Auth);
        assert_eq!(classify(s(401), ""), ErrorKind::Auth);
        assert_eq!(classify(s(429), ""), ErrorKind::Throttled);
        assert_eq!(classify(s(503), "Vault is sealed"), ErrorKind::Unavailable);
        assert_eq!(classify(s(500), ""), ErrorKind::Unavailable);
        assert_eq!(classify(s(412), ""), ErrorKind::Unavailable);
        assert_eq!(
            classify(
                s(400),
                "check-and-set parameter did not match the current version"
            ),
            ErrorKind::Unavailable
        );
        assert_eq!(classify(s(400), "bad"), ErrorKind::InvalidRequest);
    }

    #[test]
    fn error_detail_unwraps_multierror() {
        let body = json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]});
        assert_eq!(error_detail(Some(&body), b""), "permission denied");
        let body = json!({"errors": ["Vault is sealed", "other"]});
        assert_eq!(error_detail(Some(&body), b""), "Vault is sealed; other");
        assert_eq!(error_detail(None, b" plain text "), "plain text");
    }

    #[test]
    fn forward_inconsistent_adds_header() {
        let map = header_map(&[("X-Team".to_owned(), "a".to_owned())].into(), true).unwrap();
        assert_eq!(map["x-team"], "a");
        assert_eq!(map["x-vault-inconsistent"], "forward-active-node");
        assert!(header_map(&[("bad name".to_owned(), "a".to_owned())].into(), false).is_err());
    }

    #[test]
    fn urls_encode_segments_and_keep_base_path() {
        let t = Transport::new(TransportSettings {
            server: "https://vault.example:8200/proxy/".into(),
            namespace: None,
            headers: HeaderMap::new(),
            read_your_writes: false,
            ca_pem: None,
            identity_pem: None,
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            provider_label: "HashiCorp/Vault",
        })
        .unwrap();
        let call = Call::new(Method::GET, "secret/data/a b/c", call::READ_SECRET_DATA)
            .query("version", "2");
        assert_eq!(
            t.url(&call).unwrap().as_str(),
            "https://vault.example:8200/proxy/v1/secret/data/a%20b/c?version=2"
        );
    }
}
