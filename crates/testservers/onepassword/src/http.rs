//! HTTP plumbing: the accept loop, request parsing (path segments, query strings, JSON bodies)
//! and responses.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body served.
const MAX_BODY: usize = 1 << 20;

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    /// The raw (still percent-encoded) path.
    pub(crate) path: String,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    /// The bearer token of the `Authorization` header.
    pub(crate) fn bearer(&self) -> Option<&str> {
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
    pub(crate) fn json(&self) -> Option<Value> {
        if self.body.is_empty() {
            return Some(Value::Null);
        }
        serde_json::from_slice(&self.body).ok()
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

/// Percent-decodes a URL component; `plus_is_space` for query strings.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
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

/// Parses `a=1&b=2`. Later duplicates win.
pub(crate) fn parse_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Serves `handler` on a free port of `127.0.0.1` until the returned task is aborted.
pub(crate) async fn serve<F>(handler: F) -> std::io::Result<(SocketAddr, JoinHandle<()>)>
where
    F: Fn(Req) -> Response<Body> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    let accept = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let handler = handler.clone();
                    conns.spawn(async move {
                        let service = service_fn(move |req: hyper::Request<Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = match Limited::new(body, MAX_BODY).collect().await {
                                    Ok(b) => b.to_bytes(),
                                    Err(_) => Bytes::new(),
                                };
                                let req = Req {
                                    method: parts.method,
                                    path: parts.uri.path().to_owned(),
                                    query: parse_pairs(parts.uri.query().unwrap_or_default()),
                                    headers: parts.headers,
                                    body,
                                };
                                Ok::<_, Infallible>(handler(req))
                            }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    Ok((addr, accept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let q = parse_pairs("secretPath=%2Fa%2Fb&recursive=true&x&k=a+b");
        assert_eq!(q["secretPath"], "/a/b");
        assert_eq!(q["recursive"], "true");
        assert_eq!(q["x"], "");
        assert_eq!(q["k"], "a b");
        assert_eq!(percent_decode("a%2Fb%", false), "a/b%");
    }
}
