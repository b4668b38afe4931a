//! One HTTP exchange with the webhook: the client (CA, timeouts, redirect rule), the
//! response-size cap, the `externalsecret_provider_api_calls_count` metric and the mapping of
//! every failure to an [`ErrorKind`] by its cause.

use std::time::Duration;

use eso_provider::{ErrorKind, ProviderError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

/// Upstream's metric name and labels (`runtime/metrics`).
const API_CALLS: &str = "externalsecret_provider_api_calls_count";
/// The metric's `provider` label.
const PROVIDER_LABEL: &str = "Webhook";

/// The `call` label values.
pub(crate) mod call {
    pub(crate) const GET: &str = "GetWebhookData";
    pub(crate) const PUSH: &str = "PushWebhookData";
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub(crate) struct TransportSettings {
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) cross_host_redirects: bool,
}

/// One request, rendered.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) label: &'static str,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

/// The HTTP client of one webhook client.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
}

/// A URL for messages: no user info, no query (either may carry credentials), no fragment.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot have credentials (`cannot-be-a-base`).
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    text
}

impl Transport {
    pub(crate) fn new(settings: TransportSettings) -> Result<Self, ProviderError> {
        let cross_host = settings.cross_host_redirects;
        // Go's client follows up to 10 redirects. We follow them only within the same origin
        // unless allowed: a redirect to another host would carry our templated request (and
        // its secrets) to a server the store does not name.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("stopped after 10 redirects");
            }
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin || cross_host {
                attempt.follow()
            } else {
                let to = redact(attempt.url());
                attempt.error(format!(
                    "refused a redirect to another host ({to}); cross-host redirects are not allowed"
                ))
            }
        });
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .redirect(policy)
            // Libraries read no environment, and reqwest would read proxy variables.
            .no_proxy();
        if let Some(pem) = &settings.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ProviderError::invalid_store("the CA bundle is not valid PEM").with_source(e)
            })?;
            if certs.is_empty() {
                return Err(ProviderError::invalid_store(
                    "the CA bundle holds no certificate",
                ));
            }
            // Like upstream's `tls.Config{RootCAs: pool}`: only these roots are trusted.
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| {
            ProviderError::invalid_store("cannot set up the HTTP client").with_source(e)
        })?;
        Ok(Self {
            http,
            timeout: settings.timeout,
            max_response_bytes: settings.max_response_bytes,
        })
    }

    /// Sends one request; any status outside 2xx is an error.
    pub(crate) async fn send(&self, call: Call) -> Result<Answer, ProviderError> {
        let label = call.label;
        let result = self.exchange(call).await;
        let status = match &result {
            Ok(_) => "success",
            Err(_) => "error",
        };
        metrics::counter!(
            API_CALLS,
            "provider" => PROVIDER_LABEL,
            "call" => label,
            "status" => status,
        )
        .increment(1);
        result
    }

    async fn exchange(&self, call: Call) -> Result<Answer, ProviderError> {
        let what = format!("{} {}", call.method, redact(&call.url));
        let mut request = self
            .http
            .request(call.method, call.url)
            .headers(call.headers);
        if let Some(body) = call.body {
            request = request.body(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&what, e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let too_big = |limit: usize| {
            ProviderError::invalid_request(format!(
                "{what} answered {status} with a body larger than the {limit}-byte limit"
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(too_big(self.max_response_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&what, e))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_big(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(Answer { status, body });
        }
        let kind = classify(status);
        let detail: String = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(200)
            .collect();
        // Bodies of auth failures can echo what was sent; keep them out of messages.
        let message = if detail.is_empty() || kind == ErrorKind::Auth {
            format!("{what} answered {status}")
        } else {
            format!("{what} answered {status}: {detail}")
        };
        let mut err = ProviderError::new(kind, message);
        if let Some(wait) = retry_after {
            err = err.with_retry_after(wait);
        }
        Err(err)
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> ProviderError {
        let reason = if e.is_timeout() {
            format!("timed out after {:?}", self.timeout)
        } else if e.is_connect() {
            "could not connect".to_owned()
        } else if e.is_redirect() {
            "was redirected where it may not go".to_owned()
        } else {
            "failed".to_owned()
        };
        let kind = if e.is_redirect() {
            ErrorKind::InvalidRequest
        } else {
            ErrorKind::Unavailable
        };
        ProviderError::new(kind, format!("{what} {reason}")).with_source(e)
    }
}

/// The cause of a failed answer: only 404 means "does not exist".
pub(crate) fn classify(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::Auth,
        429 => ErrorKind::Throttled,
        408 | 500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidRequest,
    }
}

/// Builds a header map from rendered `(name, value)` pairs.
pub(crate) fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, ProviderError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            ProviderError::invalid_store(format!("header name {name:?} is not valid"))
                .with_source(e)
        })?;
        // The message never shows the value: it is usually a rendered credential.
        let mut value = HeaderValue::from_str(value).map_err(|e| {
            ProviderError::invalid_request(format!(
                "the rendered value of header {name:?} holds characters a header cannot"
            ))
            .with_source(e)
        })?;
        value.set_sensitive(true);
        map.append(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_cause() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert_eq!(classify(s(404)), ErrorKind::NotFound);
        assert_eq!(classify(s(401)), ErrorKind::Auth);
        assert_eq!(classify(s(403)), ErrorKind::Auth);
        assert_eq!(classify(s(429)), ErrorKind::Throttled);
        assert_eq!(classify(s(500)), ErrorKind::Unavailable);
        assert_eq!(classify(s(503)), ErrorKind::Unavailable);
        assert_eq!(classify(s(400)), ErrorKind::InvalidRequest);
    }

    #[test]
    fn redact_drops_credentials_and_query() {
        let url = Url::parse("https://user:pw@api.example/v1/s?token=abc#x").unwrap();
        assert_eq!(redact(&url), "https://api.example/v1/s?…");
        let url = Url::parse("http://127.0.0.1:8080/a").unwrap();
        assert_eq!(redact(&url), "http://127.0.0.1:8080/a");
    }

    #[test]
    fn header_values_are_checked() {
        assert!(header_map(&[("X-A".into(), "ok".into())]).is_ok());
        assert!(header_map(&[("bad name".into(), "ok".into())]).is_err());
        let err = header_map(&[("X-A".into(), "line\nbreak".into())]).unwrap_err();
        assert!(!err.message().contains("line"), "{err}");
    }
}
