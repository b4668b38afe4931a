//! One HTTP exchange with the Doppler API: the token as the Basic user name (as upstream sends
//! it), `If-None-Match` and 304 answers, retries (idempotent calls on transient failures, any
//! call on 429 within the `Retry-After` the server asked for), Doppler's error bodies, and the
//! mapping of a failure to an [`ErrorKind`] by its cause.

use std::fmt;
use std::time::Duration;

use eso_provider::ErrorKind;
use reqwest::header::HeaderMap;
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

/// One request. Not `Debug`: it holds a token.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// The Doppler token, sent as the Basic user name with an empty password.
    pub(crate) token: Option<String>,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Option<Value>,
    /// Whether repeating the request after a transient failure is harmless.
    pub(crate) idempotent: bool,
}

impl Call {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        let idempotent = matches!(method, Method::GET | Method::DELETE);
        Self {
            method,
            url,
            token: None,
            headers: Vec::new(),
            body: None,
            idempotent,
        }
    }

    pub(crate) fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// A failed exchange: the answer's status and Doppler's messages, or the transport failure.
#[derive(Debug)]
pub(crate) struct HttpError {
    /// `None` when no answer came (connection refused, timeout, unreadable body).
    pub(crate) status: Option<StatusCode>,
    /// Doppler's messages (or the transport failure).
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
    source: Option<reqwest::Error>,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{}: {}", s.as_u16(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl HttpError {
    /// The cause of a failed API call. Only 404 means "does not exist".
    pub(crate) fn kind(&self) -> ErrorKind {
        let Some(status) = self.status else {
            return ErrorKind::Unavailable;
        };
        match status.as_u16() {
            404 => ErrorKind::NotFound,
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::Throttled,
            408 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidRequest,
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
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let wait = when.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

/// Doppler's `{"messages": [...], "success": false}`, or the first bytes of any other body.
fn error_from(status: StatusCode, headers: &HeaderMap, bytes: &[u8]) -> HttpError {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    let message = match body.as_ref().and_then(|b| b.get("messages")) {
        Some(Value::Array(list)) => list
            .iter()
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(bytes)
            .trim()
            .chars()
            .take(200)
            .collect(),
    };
    HttpError {
        status: Some(status),
        message,
        retry_after: retry_after(headers),
        source: None,
    }
}

/// A successful answer: a 304 (`not_modified`) or a body, with the answer's `ETag`.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) not_modified: bool,
    pub(crate) etag: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// The HTTP client of one store.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl Http {
    pub(crate) fn new(client: reqwest::Client, retry: RetryPolicy) -> Self {
        Self { client, retry }
    }

    async fn once(&self, call: &Call) -> Result<Reply, HttpError> {
        let mut req = self
            .client
            .request(call.method.clone(), call.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &call.token {
            req = req.basic_auth(token, Some(""));
        }
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        let transport = |e: reqwest::Error, what: &str| HttpError {
            status: None,
            message: format!("{what} {} {}", call.method, redacted(&call.url)),
            retry_after: None,
            source: Some(e),
        };
        let resp = req.send().await.map_err(|e| transport(e, "no answer to"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(e, "unreadable answer to"))?;
        if !status.is_success() && status != StatusCode::NOT_MODIFIED {
            return Err(error_from(status, &headers, &bytes));
        }
        Ok(Reply {
            not_modified: status == StatusCode::NOT_MODIFIED,
            etag: headers
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: bytes.to_vec(),
        })
    }

    /// Sends `call` and reads a JSON answer.
    pub(crate) async fn json(&self, call: &Call) -> Result<Value, HttpError> {
        let reply = self.send(call).await?;
        if reply.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&reply.body).map_err(|e| HttpError {
            status: None,
            message: format!(
                "the answer to {} {} is not JSON: {e}",
                call.method,
                redacted(&call.url)
            ),
            retry_after: None,
            source: None,
        })
    }

    /// Sends `call`, retrying as the policy allows.
    pub(crate) async fn send(&self, call: &Call) -> Result<Reply, HttpError> {
        let mut attempt = 1;
        let mut delay = self.retry.base_delay;
        loop {
            let err = match self.once(call).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let wait = match err.kind() {
                // A throttled call was not carried out: any call may be repeated, after the
                // wait the server asked for when it is short enough.
                ErrorKind::Throttled => match err.retry_after {
                    Some(w) if w <= self.retry.max_wait => w.max(delay),
                    Some(_) => return Err(err),
                    None => delay,
                },
                ErrorKind::Unavailable if call.idempotent => delay,
                _ => return Err(err),
            };
            tracing::debug!(url = %redacted(&call.url), error = %err, ?wait, "retrying a Doppler call");
            tokio::time::sleep(wait).await;
            attempt += 1;
            delay = (delay * 2).min(self.retry.max_wait);
        }
    }
}

/// The URL without its query (which never holds credentials here, but keeps messages short).
pub(crate) fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_typed_by_status() {
        let e = |code: u16| HttpError {
            status: StatusCode::from_u16(code).ok(),
            message: String::new(),
            retry_after: None,
            source: None,
        };
        assert_eq!(e(404).kind(), ErrorKind::NotFound);
        assert_eq!(e(401).kind(), ErrorKind::Auth);
        assert_eq!(e(403).kind(), ErrorKind::Auth);
        assert_eq!(e(429).kind(), ErrorKind::Throttled);
        assert_eq!(e(503).kind(), ErrorKind::Unavailable);
        assert_eq!(e(400).kind(), ErrorKind::InvalidRequest);
        assert_eq!(
            HttpError {
                status: None,
                message: String::new(),
                retry_after: None,
                source: None
            }
            .kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn reads_doppler_error_bodies() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        let e = error_from(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            br#"{"messages":["Rate limit exceeded"],"success":false}"#,
        );
        assert_eq!(e.to_string(), "429: Rate limit exceeded");
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        let plain = error_from(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"bad gateway\n");
        assert_eq!(plain.message, "bad gateway");
    }
}
