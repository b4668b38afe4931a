//! Requests read whole, query strings, and responses built whole.

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::Value;

/// The body of every response.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body read; a larger one is read as empty.
pub const MAX_BODY: usize = 1 << 20;

/// One request, read whole.
#[derive(Debug)]
pub struct Req {
    /// The method.
    pub method: Method,
    /// The raw (still percent-encoded) path.
    pub path: String,
    /// The decoded query parameters (later duplicates win).
    pub query: BTreeMap<String, String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (empty when larger than [`MAX_BODY`] or unreadable).
    pub body: Bytes,
}

impl Req {
    /// Reads `req` whole.
    pub async fn read(req: Request<Incoming>) -> Self {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::new(),
        };
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parse_pairs(parts.uri.query().unwrap_or_default()),
            headers: parts.headers,
            body,
        }
    }

    /// The bearer token of the `Authorization` header.
    #[must_use]
    pub fn bearer(&self) -> Option<&str> {
        let v = self
            .headers
            .get(hyper::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
            .filter(|t| !t.is_empty())
    }

    /// The body as JSON (`Null` when empty, `None` when not JSON).
    #[must_use]
    pub fn json(&self) -> Option<Value> {
        if self.body.is_empty() {
            return Some(Value::Null);
        }
        serde_json::from_slice(&self.body).ok()
    }
}

/// A response of status `code` (500 when not a status) with `body` of `content_type`.
#[must_use]
pub fn full(code: u16, body: Bytes, content_type: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON response (`application/json; charset=utf-8`).
#[must_use]
pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    full(
        code,
        Bytes::from(v.to_string()),
        "application/json; charset=utf-8",
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

/// Percent-decodes a URL component; `plus_is_space` for query strings and form bodies. A `%`
/// not followed by two hex digits stays as it is.
#[must_use]
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
            {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query or form value: RFC 3986's unreserved characters pass, every other
/// byte is `%XX`.
#[must_use]
pub fn percent_encode(s: &str) -> String {
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

/// Parses `a=1&b=2` (a query string or a form body). Later duplicates win.
#[must_use]
pub fn parse_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = parse_pairs("secretPath=%2Fa%2Fb&recursive=true&x&k=a+b&k2=1&k2=2");
        assert_eq!(q["secretPath"], "/a/b");
        assert_eq!(q["recursive"], "true");
        assert_eq!(q["x"], "");
        assert_eq!(q["k"], "a b");
        assert_eq!(q["k2"], "2");
        assert_eq!(percent_decode("a%2Fb%", false), "a/b%");
        assert_eq!(percent_decode("a+b%zz", false), "a+b%zz");
        let odd = "a b/c~ü";
        assert_eq!(percent_encode(odd), "a%20b%2Fc~%C3%BC");
        assert_eq!(percent_decode(&percent_encode(odd), false), odd);
    }

    #[test]
    fn json_responses_carry_status_and_type() {
        let r = json_response(404, &serde_json::json!({"a": 1}));
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.headers()[hyper::header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        assert_eq!(full(1000, Bytes::new(), "text/plain").status(), 500);
    }
}
