//! HTTP plumbing: bodies, query strings, form bodies and the two error shapes Google's APIs
//! answer with (the `google.rpc.Status` JSON of Secret Manager and IAM, and OAuth2's
//! `{"error", "error_description"}` of the token endpoints).

use bytes::Bytes;
use eso_testserver_kit::Fault;
#[cfg(test)]
pub(crate) use eso_testserver_kit::percent_encode as form_encode;
pub(crate) use eso_testserver_kit::{Body, full, parse_pairs, percent_decode};
use hyper::Response;
use serde_json::{Value, json};

/// A failed request, in the shape the answering API uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// `{"error": {"code", "message", "status"}}`.
    Google {
        code: u16,
        status: &'static str,
        message: String,
        retry_after: Option<u64>,
    },
    /// `{"error": "...", "error_description": "..."}` (OAuth2 and STS).
    OAuth {
        code: u16,
        error: &'static str,
        description: String,
    },
}

impl ApiError {
    pub(crate) fn google(code: u16, status: &'static str, message: impl Into<String>) -> Self {
        Self::Google {
            code,
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::google(400, "INVALID_ARGUMENT", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::google(404, "NOT_FOUND", message)
    }

    pub(crate) fn failed_precondition(message: impl Into<String>) -> Self {
        Self::google(400, "FAILED_PRECONDITION", message)
    }

    pub(crate) fn already_exists(message: impl Into<String>) -> Self {
        Self::google(409, "ALREADY_EXISTS", message)
    }

    pub(crate) fn aborted(message: impl Into<String>) -> Self {
        Self::google(409, "ABORTED", message)
    }

    /// Google's answer to a missing or invalid bearer token.
    pub(crate) fn unauthenticated() -> Self {
        Self::google(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
    }

    pub(crate) fn permission_denied(permission: &str, resource: &str) -> Self {
        Self::google(
            403,
            "PERMISSION_DENIED",
            format!(
                "Permission '{permission}' denied for resource '{resource}' (or it may not exist)."
            ),
        )
    }

    pub(crate) fn oauth(code: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self::OAuth {
            code,
            error,
            description: description.into(),
        }
    }

    /// The error an injected `fault` answers to a request of `method`.
    pub(crate) fn injected(method: &str, fault: &Fault) -> Self {
        let code = fault.status_code();
        let message = fault.message_text().map_or_else(
            || match code {
                429 => format!(
                    "Quota exceeded for quota metric '{method} requests' and limit '{method} requests per minute' of service 'secretmanager.googleapis.com'."
                ),
                503 => "The service is currently unavailable.".to_owned(),
                _ => format!("Injected fault for {method}."),
            },
            str::to_owned,
        );
        Self::Google {
            code,
            status: Self::status_name(code),
            message,
            retry_after: fault.retry_after_secs(),
        }
    }

    /// The gRPC status name of an HTTP status, as Google maps them.
    pub(crate) fn status_name(code: u16) -> &'static str {
        match code {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ABORTED",
            429 => "RESOURCE_EXHAUSTED",
            499 => "CANCELLED",
            501 => "UNIMPLEMENTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        match self {
            Self::Google {
                code,
                status,
                message,
                retry_after,
            } => {
                let mut r = json_response(
                    code,
                    &json!({"error": {"code": code, "message": message, "status": status}}),
                );
                if code == 401 {
                    r.headers_mut().insert(
                        hyper::header::WWW_AUTHENTICATE,
                        hyper::header::HeaderValue::from_static(
                            "Bearer realm=\"https://accounts.google.com/\"",
                        ),
                    );
                }
                if let Some(secs) = retry_after
                    && let Ok(v) = hyper::header::HeaderValue::from_str(&secs.to_string())
                {
                    r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
                }
                r
            }
            Self::OAuth {
                code,
                error,
                description,
            } => json_response(
                code,
                &json!({"error": error, "error_description": description}),
            ),
        }
    }
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    full(
        code,
        Bytes::from(v.to_string()),
        "application/json; charset=UTF-8",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = parse_pairs("filter=labels.env%3Dprod+name%3Aa&pageSize=2&x");
        assert_eq!(q["filter"], "labels.env=prod name:a");
        assert_eq!(q["pageSize"], "2");
        assert_eq!(q["x"], "");
        assert_eq!(percent_decode("a%2Fb%", false), "a/b%");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(form_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn injected_faults_answer_in_googles_shape() {
        let e = ApiError::injected("M", &Fault::status(429).retry_after(3));
        let ApiError::Google {
            code,
            status,
            message,
            retry_after,
        } = e
        else {
            panic!("not a Google error: {e:?}")
        };
        assert_eq!(
            (code, status, retry_after),
            (429, "RESOURCE_EXHAUSTED", Some(3))
        );
        assert!(message.contains("'M requests'"), "{message}");
        let e = ApiError::injected("M", &Fault::status(500).message("boom"));
        assert!(matches!(e, ApiError::Google { message, .. } if message == "boom"));
    }
}
