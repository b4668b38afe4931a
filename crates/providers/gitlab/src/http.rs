//! One exchange with GitLab: retries (on 5xx and connection failures, and on 429 within the
//! `Retry-After` the server asked for), GitLab's error bodies (`{"message": "..."}`,
//! `{"message": {field: [...]}}` or `{"error": "..."}`) and the status of a failure.

use std::fmt;
use std::time::Duration;

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
    /// The longest wait spent inside one call; a longer `Retry-After` ends the call.
    pub(crate) max_wait: Duration,
}

/// One request.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Option<(&'static str, Vec<u8>)>,
}

impl Call {
    pub(crate) fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// `GET http://host/path` without the query, for messages.
    fn describe(&self) -> String {
        let mut u = self.url.clone();
        u.set_query(None);
        format!("{} {u}", self.method)
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) headers: HeaderMap,
    pub(crate) body: bytes::Bytes,
}

/// A failed exchange: the answer's status and GitLab's message, or the transport failure.
#[derive(Debug)]
pub(crate) struct HttpError {
    /// `None` when no answer came (connection refused, timeout).
    pub(crate) status: Option<StatusCode>,
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
    pub(crate) fn status_is(&self, code: u16) -> bool {
        self.status.is_some_and(|s| s.as_u16() == code)
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

/// GitLab's message: `message` (a string, or field errors), `error`, or the body's text.
fn gitlab_message(status: StatusCode, bytes: &[u8]) -> String {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    match body
        .as_ref()
        .and_then(|b| b.get("message").or_else(|| b.get("error")))
    {
        Some(Value::String(m)) => return m.clone(),
        Some(other) => return other.to_string(),
        None => {}
    }
    let text: String = String::from_utf8_lossy(bytes)
        .trim()
        .chars()
        .take(200)
        .collect();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        text
    }
}

/// A little jitter (0-25 %) from the clock, so that clients backing off together spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d + d.mul_f64(f64::from(nanos % 250) / 1000.0)
}

/// The HTTP client of one GitLab client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl Http {
    pub(crate) fn new(client: reqwest::Client, retry: RetryPolicy) -> Self {
        Self { client, retry }
    }

    /// Sends a request, retrying as the policy allows (every call the provider makes is a
    /// read, safe to repeat).
    pub(crate) async fn send(&self, call: &Call) -> Result<Answer, HttpError> {
        let mut attempt = 1;
        loop {
            let err = match self.once(call).await {
                Ok(a) => return Ok(a),
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
            tracing::debug!(request = %call.describe(), error = %err, attempt, "retrying a GitLab call");
            tokio::time::sleep(wait.min(self.retry.max_wait)).await;
            attempt += 1;
        }
    }

    async fn once(&self, call: &Call) -> Result<Answer, HttpError> {
        let mut request = self
            .client
            .request(call.method.clone(), call.url.clone())
            .header(reqwest::header::USER_AGENT, "eso-rs");
        for (name, value) in &call.headers {
            request = request.header(*name, value.as_str());
        }
        if let Some((content_type, body)) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(body.clone());
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
                message: format!("{} {what}", call.describe()),
                retry_after: None,
                source: Some(e),
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| HttpError {
            status: Some(status),
            message: format!("{}: reading the answer failed", call.describe()),
            retry_after: None,
            source: Some(e),
        })?;
        if status.is_success() {
            return Ok(Answer { headers, body });
        }
        Err(HttpError {
            status: Some(status),
            message: gitlab_message(status, &body),
            retry_after: retry_after(&headers),
            source: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gitlab_error_bodies() {
        assert_eq!(
            gitlab_message(
                StatusCode::NOT_FOUND,
                br#"{"message":"404 Variable Not Found"}"#
            ),
            "404 Variable Not Found"
        );
        assert_eq!(
            gitlab_message(
                StatusCode::BAD_REQUEST,
                br#"{"message":{"key":["(K) has already been taken"]}}"#
            ),
            r#"{"key":["(K) has already been taken"]}"#
        );
        assert_eq!(
            gitlab_message(StatusCode::BAD_REQUEST, br#"{"error":"key is missing"}"#),
            "key is missing"
        );
        assert_eq!(
            gitlab_message(StatusCode::TOO_MANY_REQUESTS, b"Retry later\n"),
            "Retry later"
        );
        assert_eq!(gitlab_message(StatusCode::BAD_GATEWAY, b""), "Bad Gateway");
    }
}
