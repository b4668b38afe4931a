//! Google's side of the shared HTTP layer ([`eso_provider::http`]): Google's error bodies
//! (`{"error": {"code", "message", "status"}}` with a `RetryInfo` detail, or OAuth2's
//! `{"error", "error_description"}`), and the causes of a failed API or token call.

use std::time::Duration;

use eso_provider::ErrorKind;
use eso_provider::ProviderError;
pub(crate) use eso_provider::http::{Call, HttpError, RetryPolicy, form_encode};
use eso_provider::http::{ClientSettings, Http as Shared};
use reqwest::StatusCode;
use serde_json::Value;

/// The causes of a failed Google call.
pub(crate) trait GoogleError {
    /// Whether Google said the version exists but is disabled or destroyed (upstream reads
    /// the same words to fall back to the newest enabled version).
    fn is_disabled_or_destroyed(&self) -> bool;
    /// The cause of a failed Secret Manager or IAM API call: the shared mapping, but a 409
    /// (ABORTED: an etag race; ALREADY_EXISTS: a concurrent create) is transient, as a retry
    /// re-reads.
    fn api_kind(&self) -> ErrorKind;
    /// The cause of a failed token request: any refusal is an authentication problem.
    fn token_kind(&self) -> ErrorKind;
}

impl GoogleError for HttpError {
    fn is_disabled_or_destroyed(&self) -> bool {
        self.code.as_deref() == Some("FAILED_PRECONDITION")
            && (self.message.contains("DISABLED state") || self.message.contains("DESTROYED state"))
    }

    fn api_kind(&self) -> ErrorKind {
        if self.status_is(409) {
            return ErrorKind::Unavailable;
        }
        self.kind()
    }

    fn token_kind(&self) -> ErrorKind {
        match self.kind() {
            kind @ (ErrorKind::Unavailable | ErrorKind::Throttled) => kind,
            _ => ErrorKind::Auth,
        }
    }
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

/// Google's code and message; the `Retry-After` header wins over a `RetryInfo` detail.
fn decode_error(_: StatusCode, bytes: &[u8], err: &mut HttpError) {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    let Some(body) = body else { return };
    match body.get("error") {
        // Google's `{"error": {"code", "message", "status"}}`.
        Some(Value::Object(e)) => {
            err.code = e.get("status").and_then(Value::as_str).map(str::to_owned);
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .clone_into(&mut err.message);
        }
        // OAuth2's `{"error": "...", "error_description": "..."}`.
        Some(Value::String(code)) => {
            err.code = Some(code.clone());
            body.get("error_description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .clone_into(&mut err.message);
        }
        _ => {}
    }
    if err.retry_after.is_none() {
        err.retry_after = retry_info(&body);
    }
}

/// The HTTP client of one provider client: the body of a 2xx answer.
#[derive(Debug, Clone)]
pub(crate) struct Http(Shared);

impl Http {
    pub(crate) fn new(
        request_timeout: Duration,
        connect_timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ProviderError> {
        let client = ClientSettings::new(request_timeout, connect_timeout)
            .user_agent("eso-rs")
            .no_redirects()
            .build()?;
        Ok(Self(
            Shared::new(client, retry, "Google API").errors(decode_error),
        ))
    }

    /// Sends a request, retrying as the policy allows; the body of a 2xx answer.
    pub(crate) async fn send(&self, call: &Call) -> Result<bytes::Bytes, HttpError> {
        self.0.send(call).await.map(|answer| answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(status: u16, body: Value) -> HttpError {
        let status = StatusCode::from_u16(status).unwrap();
        let mut e = HttpError::answered(status, "raw");
        decode_error(status, body.to_string().as_bytes(), &mut e);
        e
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
        assert_eq!(
            g(408, "DEADLINE_EXCEEDED").token_kind(),
            ErrorKind::Unavailable
        );
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
    }
}
