//! Outbound proxies: `sync-once` sends provider requests through `HTTP_PROXY` /
//! `HTTPS_PROXY` unless `NO_PROXY` names the host, as upstream's Go clients do. The proxy here
//! is a recording HTTP proxy that answers as a Vault server would; the store names a host that
//! does not resolve (`.invalid`), so only a request sent through the proxy can succeed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::process::Output;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// The proxy variables, removed from the child's environment unless a test sets them.
const VARIABLES: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

const VAULT: &str = "http://vault.proxy-test.invalid:8200";

/// A forward proxy on a kernel-chosen port that records every request line it is sent and
/// answers as a Vault KV v2 engine holding `secret/app` = `{"password": "via-proxy"}`.
struct RecordingProxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let request_line = request_line.trim_end().to_owned();
                let (status, body) =
                    if request_line.starts_with(&format!("GET {VAULT}/v1/secret/data/app ")) {
                        (
                            "200 OK",
                            json!({"data": {"data": {"password": "via-proxy"},
                                        "metadata": {"version": 1}}}),
                        )
                    } else {
                        ("404 Not Found", json!({"errors": []}))
                    };
                record.lock().unwrap().push(request_line);
                let body = body.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// `sync-once render -o json` of a Vault store at [`VAULT`] and an ExternalSecret reading
/// `secret/app`'s password, with only `vars` of [`VARIABLES`] set.
fn render(vars: &[(&str, &str)]) -> Output {
    let docs = [
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "vault-token", "namespace": "default"},
               "stringData": {"token": "root"}}),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
               "metadata": {"name": "vault", "namespace": "default"},
               "spec": {"provider": {"vault": {
                   "server": VAULT, "path": "secret", "version": "v2",
                   "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}}),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": "app", "namespace": "default"},
               "spec": {"secretStoreRef": {"name": "vault"},
                        "target": {"name": "app"},
                        "data": [{"secretKey": "password",
                                  "remoteRef": {"key": "app", "property": "password"}}]}}),
    ];
    support::render_json(&docs, VARIABLES, vars)
}

fn password(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret: Value = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["password"].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn provider_requests_go_through_the_http_proxy_variable() {
    let proxy = RecordingProxy::start();
    let out = render(&[("HTTP_PROXY", &proxy.url)]);
    assert_eq!(password(&out), "via-proxy");
    assert!(
        proxy
            .seen()
            .contains(&format!("GET {VAULT}/v1/secret/data/app HTTP/1.1")),
        "{:?}",
        proxy.seen()
    );
    // The lower-case name, as Go reads it too.
    let lower = RecordingProxy::start();
    assert_eq!(
        password(&render(&[("http_proxy", &lower.url)])),
        "via-proxy"
    );
    assert!(!lower.seen().is_empty());
}

#[test]
fn no_proxy_hosts_and_https_only_proxies_are_not_used_for_them() {
    let proxy = RecordingProxy::start();
    // The store's domain is listed: the request goes straight to a host that does not resolve.
    let out = render(&[
        ("HTTP_PROXY", &proxy.url),
        ("NO_PROXY", "example.com, proxy-test.invalid"),
    ]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("vault.proxy-test.invalid"), "{stderr}");
    // An HTTPS proxy is not used for an http:// store.
    let out = render(&[("HTTPS_PROXY", &proxy.url)]);
    assert_ne!(out.status.code(), Some(0));
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
}

#[test]
fn a_proxy_variable_that_is_not_a_url_is_a_usage_error_naming_it() {
    let out = render(&[("HTTPS_PROXY", "socks5://proxy.corp:1080")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTPS_PROXY"), "{stderr}");
}
