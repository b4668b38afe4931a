//! One signed exchange with a Chef server: signing (again on every attempt, so timestamps stay
//! fresh), retries (on 5xx and connection failures, and on 429 within the `Retry-After` the
//! server asked for), Chef's error bodies (`{"error": ["..."]}`) and the cause of a failure.

use std::fmt;
use std::time::Duration;

use eso_provider::ErrorKind;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::sign::{self, RequestSigner};

/// How failed calls are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts per call, the first included.
    pub(crate) max_attempts: u32,
    /// The first backoff; doubled after each attempt.
    pub(crate) base_delay: Duration,
    /// The longest wait spent inside one call; a longer `Retry-After` ends the call.
    pub(crate) max_wait: Duration,
}

/// A failed exchange: the answer's status and Chef's message, or the transport failure.
#[derive(Debug)]
pub(crate) struct HttpError {
    /// `None` when no answer came (connection refused, timeout) or the request was not sent.
    pub(crate) status: Option<StatusCode>,
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
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
        self.source.as_deref().map(|e| e as _)
    }
}

impl HttpError {
    /// The cause. Only 404 means "does not exist"; 401 (unknown user, bad signature, clock
    /// skew) and 403 are authentication problems.
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

/// Chef's message: the strings of `{"error": [...]}` (or `{"error": "..."}`), else the text.
fn chef_message(bytes: &[u8]) -> String {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    match body.as_ref().and_then(|b| b.get("error")) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::String(s)) => s.clone(),
        _ => String::from_utf8_lossy(bytes)
            .trim()
            .chars()
            .take(200)
            .collect(),
    }
}

/// A little jitter (0-25 %) from the clock, so that clients backing off together spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d + d.mul_f64(f64::from(nanos % 250) / 1000.0)
}

/// The signed HTTP client of one Chef client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    signer: RequestSigner,
    retry: RetryPolicy,
}

impl Http {
    pub(crate) fn new(client: reqwest::Client, signer: RequestSigner, retry: RetryPolicy) -> Self {
        Self {
            client,
            signer,
            retry,
        }
    }

    /// GETs `url` and returns the JSON of a 2xx answer, retrying as the policy allows.
    pub(crate) async fn get_json(&self, url: &Url) -> Result<Value, HttpError> {
        let mut attempt = 1;
        loop {
            let err = match self.once(url).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let backoff = jitter(self.retry.base_delay * 2u32.saturating_pow(attempt - 1));
            let wait = match err.status.map(|s| s.as_u16()) {
                Some(429) => match err.retry_after {
                    Some(w) if w > self.retry.max_wait => return Err(err),
                    Some(w) => w.max(backoff),
                    None => backoff,
                },
                Some(500 | 502 | 503 | 504) | None => backoff,
                _ => return Err(err),
            };
            tracing::debug!(url = %url, error = %err, attempt, "retrying a Chef server call");
            tokio::time::sleep(wait.min(self.retry.max_wait)).await;
            attempt += 1;
        }
    }

    async fn once(&self, url: &Url) -> Result<Value, HttpError> {
        let headers = self
            .signer
            .headers(
                "GET",
                url.path(),
                b"",
                &sign::timestamp(jiff::Timestamp::now()),
            )
            .map_err(|e| HttpError {
                status: None,
                message: "cannot sign the request".to_owned(),
                retry_after: None,
                source: Some(Box::new(e)),
            })?;
        let mut request = self
            .client
            .get(url.clone())
            .header(reqwest::header::USER_AGENT, "eso-rs");
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
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
                message: format!("GET {url} {what}"),
                retry_after: None,
                source: Some(Box::new(e)),
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| HttpError {
            status: Some(status),
            message: format!("GET {url}: reading the answer failed"),
            retry_after: None,
            source: Some(Box::new(e)),
        })?;
        if !status.is_success() {
            return Err(HttpError {
                status: Some(status),
                message: chef_message(&bytes),
                retry_after: retry_after(&headers),
                source: None,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| HttpError {
            status: Some(status),
            message: format!("GET {url}: the answer is not JSON"),
            retry_after: None,
            source: Some(Box::new(e)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn err(status: u16) -> HttpError {
        HttpError {
            status: Some(StatusCode::from_u16(status).unwrap()),
            message: String::new(),
            retry_after: None,
            source: None,
        }
    }

    #[test]
    fn classifies_by_cause() {
        assert_eq!(err(404).kind(), ErrorKind::NotFound);
        assert_eq!(err(401).kind(), ErrorKind::Auth);
        assert_eq!(err(403).kind(), ErrorKind::Auth);
        assert_eq!(err(429).kind(), ErrorKind::Throttled);
        assert_eq!(err(503).kind(), ErrorKind::Unavailable);
        assert_eq!(err(400).kind(), ErrorKind::InvalidRequest);
        let mut none = err(500);
        none.status = None;
        assert_eq!(none.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn reads_chef_error_bodies() {
        assert_eq!(
            chef_message(br#"{"error":["Cannot load data bag item x for data bag y"]}"#),
            "Cannot load data bag item x for data bag y"
        );
        assert_eq!(chef_message(br#"{"error":"nope"}"#), "nope");
        assert_eq!(chef_message(b" plain \n"), "plain");
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("3"),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    }
}
