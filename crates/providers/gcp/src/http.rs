//! One HTTP exchange with a Google API: retries (idempotent calls on transient failures, any
//! call on 429 within the `Retry-After` the server asked for), Google's error bodies, and the
//! mapping of a failure to an [`ErrorKind`] by its cause.

use std::fmt;
use std::time::Duration;

use eso_provider::ErrorKind;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// How failed calls are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts per call, the first included.
    pub(crate) max_attempts: u32,
    /// The first backoff; doubled after each attempt.
    pub(crate) base_delay: Duration,
    /// The longest wait (backoff or `Retry-After`) spent inside one call; a longer
    /// `Retry-After` ends the call with the error, carrying the wait.
    pub(crate) max_wait: Duration,
}

/// Percent-encodes everything but RFC 3986's unreserved characters (form fields, and the AWS
/// subject token).
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

/// One request.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) bearer: Option<&'a str>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) payload: Payload,
    /// Whether repeating the request after a transient failure is harmless.
    pub(crate) idempotent: bool,
}

impl<'a> Call<'a> {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        let idempotent = matches!(method, Method::GET | Method::DELETE);
        Self {
            method,
            url,
            bearer: None,
            headers: Vec::new(),
            payload: Payload::None,
            idempotent,
        }
    }

    pub(crate) fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }

    pub(crate) fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn json(mut self, body: Value) -> Self {
        self.payload = Payload::Json(body);
        self
    }

    pub(crate) fn form(mut self, fields: Vec<(&'static str, String)>) -> Self {
        self.payload = Payload::Form(fields);
        self
    }

    pub(crate) fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// `GET https://host/path` without the query, for messages.
    pub(crate) fn describe(&self) -> String {
        let mut u = self.url.clone();
        u.set_query(None);
        format!("{} {u}", self.method)
    }
}

/// A failed exchange: the answer's status and Google's message, or the transport failure.
#[derive(Debug)]
pub(crate) struct HttpError {
    /// `None` when no answer came (connection refused, timeout).
    pub(crate) status: Option<StatusCode>,
    /// The gRPC status name of a Google error body (`NOT_FOUND`, ...), or OAuth2's `error`.
    pub(crate) code: Option<String>,
    /// Google's message (or OAuth2's `error_description`, or the transport failure).
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
    source: Option<reqwest::Error>,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, "{} {c}: {}", s.as_u16(), self.message),
            (Some(s), None) => write!(f, "{}: {}", s.as_u16(), self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl HttpError {
    /// A failure described by us, not by the server.
    pub(crate) fn local(message: impl Into<String>) -> Self {
        Self {
            status: None,
            code: None,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Whether Google said the version exists but is disabled or destroyed (upstream reads
    /// the same words to fall back to the newest enabled version).
    pub(crate) fn is_disabled_or_destroyed(&self) -> bool {
        self.code.as_deref() == Some("FAILED_PRECONDITION")
            && (self.message.contains("DISABLED state") || self.message.contains("DESTROYED state"))
    }

    /// The cause of a failed Secret Manager or IAM API call. Only 404 means "does not exist";
    /// 401 and 403 (which Google also answers for a secret the caller may not see) are
    /// authentication problems.
    pub(crate) fn api_kind(&self) -> ErrorKind {
        let Some(status) = self.status else {
            return ErrorKind::Unavailable;
        };
        match status.as_u16() {
            404 => ErrorKind::NotFound,
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::Throttled,
            // ABORTED (an etag race) and ALREADY_EXISTS (a concurrent create): a retry re-reads.
            408 | 409 => ErrorKind::Unavailable,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidRequest,
        }
    }

    /// The cause of a failed token request: any refusal is an authentication problem.
    pub(crate) fn token_kind(&self) -> ErrorKind {
        match self.status.map(|s| s.as_u16()) {
            None | Some(408 | 500..=599) => ErrorKind::Unavailable,
            Some(429) => ErrorKind::Throttled,
            Some(_) => ErrorKind::Auth,
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // An HTTP date.
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let wait = when.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

/// `retryDelay` of a `google.rpc.RetryInfo` detail (`"30s"`).
fn retry_info(body: &Value) -> Option<Duration> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .find(|d| {
            d.get("@type").and_then(Value::as_str)
                == Some("type.googleapis.com/google.rpc.RetryInfo")
        })?
        .get("retryDelay")?
        .as_str()?
        .strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

fn error_from(status: StatusCode, headers: &HeaderMap, bytes: &[u8]) -> HttpError {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    let (code, message) = match body.as_ref().and_then(|b| b.get("error")) {
        // Google's `{"error": {"code", "message", "status"}}`.
        Some(Value::Object(e)) => (
            e.get("status").and_then(Value::as_str).map(str::to_owned),
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
        // OAuth2's `{"error": "...", "error_description": "..."}`.
        Some(Value::String(code)) => (
            Some(code.clone()),
            body.as_ref()
                .and_then(|b| b.get("error_description"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => (
            None,
            String::from_utf8_lossy(bytes)
                .trim()
                .chars()
                .take(200)
                .collect(),
        ),
    };
    HttpError {
        status: Some(status),
        code,
        message,
        retry_after: retry_after(headers).or_else(|| body.as_ref().and_then(retry_info)),
        source: None,
    }
}

/// The HTTP client of one provider client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
}

/// A little jitter (0-25 %) from the clock, so that clients backing off together spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d + d.mul_f64(f64::from(nanos % 250) / 1000.0)
}

impl Http {
    pub(crate) fn new(
        request_timeout: Duration,
        connect_timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, retry })
    }

    /// Sends a request, retrying as the policy allows; the body of a 2xx answer.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<bytes::Bytes, HttpError> {
        let mut attempt = 1;
        loop {
            let result = self.once(call).await;
            let err = match result {
                Ok(b) => return Ok(b),
                Err(e) => e,
            };
            if attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let backoff = jitter(self.retry.base_delay * 2u32.saturating_pow(attempt - 1));
            let wait = match err.status.map(|s| s.as_u16()) {
                // Throttled: the request was not served, so any method may be repeated.
                Some(429) => match err.retry_after {
                    Some(w) if w > self.retry.max_wait => return Err(err),
                    Some(w) => w.max(backoff),
                    None => backoff,
                },
                Some(500 | 502 | 503 | 504) | None if call.idempotent => backoff,
                _ => return Err(err),
            };
            tracing::debug!(request = %call.describe(), error = %err, attempt, "retrying a Google API call");
            tokio::time::sleep(wait.min(self.retry.max_wait)).await;
            attempt += 1;
        }
    }

    async fn once(&self, call: &Call<'_>) -> Result<bytes::Bytes, HttpError> {
        let mut request = self
            .client
            .request(call.method.clone(), call.url.clone())
            .header(reqwest::header::USER_AGENT, "eso-rs");
        if let Some(token) = call.bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                HttpError::local("the access token holds characters a header cannot")
            })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        for (name, value) in &call.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = match &call.payload {
            Payload::None if call.method == Method::POST => {
                request.header(reqwest::header::CONTENT_LENGTH, "0")
            }
            Payload::None => request,
            Payload::Json(v) => request.json(v),
            Payload::Form(fields) => {
                let body: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                    .collect();
                request
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.join("&"))
            }
        };
        let response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            HttpError {
                status: None,
                code: None,
                message: format!("{} {what}", call.describe()),
                retry_after: None,
                source: Some(e),
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| HttpError {
            status: Some(status),
            code: None,
            message: format!("{}: reading the answer failed", call.describe()),
            retry_after: None,
            source: Some(e),
        })?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(error_from(status, &headers, &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(status: u16, body: Value) -> HttpError {
        error_from(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn classifies_by_cause() {
        let g = |s: u16, st: &str| {
            err(
                s,
                json!({"error": {"code": s, "status": st, "message": "m"}}),
            )
        };
        assert_eq!(g(404, "NOT_FOUND").api_kind(), ErrorKind::NotFound);
        assert_eq!(g(403, "PERMISSION_DENIED").api_kind(), ErrorKind::Auth);
        assert_eq!(g(401, "UNAUTHENTICATED").api_kind(), ErrorKind::Auth);
        assert_eq!(
            g(429, "RESOURCE_EXHAUSTED").api_kind(),
            ErrorKind::Throttled
        );
        assert_eq!(g(503, "UNAVAILABLE").api_kind(), ErrorKind::Unavailable);
        assert_eq!(g(409, "ABORTED").api_kind(), ErrorKind::Unavailable);
        assert_eq!(
            g(400, "INVALID_ARGUMENT").api_kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(HttpError::local("x").api_kind(), ErrorKind::Unavailable);
        // Token endpoints: a 404 or 400 is a refusal, never "not found".
        assert_eq!(g(404, "NOT_FOUND").token_kind(), ErrorKind::Auth);
        let oauth = err(
            400,
            json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
        );
        assert_eq!(oauth.token_kind(), ErrorKind::Auth);
        assert_eq!(
            oauth.to_string(),
            "400 invalid_grant: Invalid JWT Signature."
        );
        assert_eq!(g(503, "UNAVAILABLE").token_kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn reads_disabled_versions_and_retry_info() {
        let e = err(
            400,
            json!({"error": {"code": 400, "status": "FAILED_PRECONDITION",
            "message": "Secret Version [projects/1/secrets/s/versions/2] is in DISABLED state."}}),
        );
        assert!(e.is_disabled_or_destroyed());
        assert!(
            !err(
                400,
                json!({"error": {"status": "FAILED_PRECONDITION", "message": "other"}})
            )
            .is_disabled_or_destroyed()
        );
        let e = err(
            429,
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "m",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}}),
        );
        assert_eq!(e.retry_after, Some(Duration::from_millis(2500)));
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    }
}
