//! HTTP plumbing: bodies, query strings, form bodies and the two error shapes Google's APIs
//! answer with (the `google.rpc.Status` JSON of Secret Manager and IAM, and OAuth2's
//! `{"error", "error_description"}` of the token endpoints).

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

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

pub(crate) fn full(code: u16, body: Bytes, content_type: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    full(
        code,
        Bytes::from(v.to_string()),
        "application/json; charset=UTF-8",
    )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a URL component; `plus_is_space` for query strings and form bodies.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` (a query string or a form body). Later duplicates win.
pub(crate) fn parse_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Percent-encodes a form value (RFC 3986 unreserved characters pass).
#[cfg(test)]
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
}
