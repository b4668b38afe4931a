//! A real OpenBao dev server for the tests, plus fixtures: keys and certificates made with
//! `openssl` at test time, a TokenReview endpoint for Kubernetes auth, a counting proxy, and
//! store builders.
//!
//! Servers are started through a small `sh` watchdog that kills `bao` when its stdin closes:
//! when the test process exits (even on SIGKILL) the kernel closes the pipe, so no `bao`
//! outlives the tests, including the shared server held in a static.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use eso_api::provider::{VaultAuth, VaultProvider as VaultSpec};
use eso_api::{SecretKeySelector, SecretStoreSpec};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, ServiceAccountTokens,
    StaticSecretReader, StoreInfo,
};
use eso_provider_vault::{VaultConfig, VaultProvider};
use eso_test_support::tls;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

pub const NS: &str = "default";

// ----- running bao: eso-test-support's launcher ----------------------------------------------

pub use eso_test_support::bao::Bao;

// ----- openssl fixtures --------------------------------------------------------------------

fn openssl(args: &[&str], dir: &Path) {
    let _ = tls::openssl(dir, args);
}

/// An RSA key pair for signing JWTs.
pub struct JwtSigner {
    dir: TempDir,
    pub public_pem: String,
}

impl JwtSigner {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        openssl(&["genrsa", "-out", "jwt.key", "2048"], dir.path());
        openssl(
            &["rsa", "-in", "jwt.key", "-pubout", "-out", "jwt.pub"],
            dir.path(),
        );
        let public_pem = std::fs::read_to_string(dir.path().join("jwt.pub")).unwrap();
        Self { dir, public_pem }
    }

    /// An RS256 JWT with the given claims (`iat`/`nbf`/`exp` added).
    pub fn sign(&self, claims: &Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = claims.clone();
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now - 5);
        claims["exp"] = json!(now + 600);
        let input = format!(
            "{}.{}",
            b64.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string()),
            b64.encode(claims.to_string())
        );
        let signature = tls::openssl_with_input(
            self.dir.path(),
            &["dgst", "-sha256", "-sign", "jwt.key"],
            input.as_bytes(),
        );
        format!("{input}.{}", b64.encode(signature))
    }
}

/// A CA and a client certificate it signed.
pub struct ClientCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl ClientCerts {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=eso-test-ca",
            ],
            d,
        );
        openssl(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
                "-subj",
                "/CN=eso-client",
            ],
            d,
        );
        std::fs::write(d.join("ext.cnf"), "extendedKeyUsage=clientAuth\n").unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.pem",
                "-days",
                "1",
                "-extfile",
                "ext.cnf",
            ],
            d,
        );
        let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        Self {
            ca_pem: read("ca.pem"),
            cert_pem: read("client.pem"),
            key_pem: read("client.key"),
        }
    }
}

// ----- a TokenReview endpoint for Kubernetes auth -------------------------------------------

/// Answers every TokenReview with `authenticated: true` for `system:serviceaccount:default:eso`.
/// Runs on its own thread for the life of the process.
pub fn token_review_endpoint() -> String {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers, then the body by Content-Length.
                loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            let Ok(n) = stream.read(&mut chunk) else {
                                return;
                            };
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break;
                    }
                }
                let body = json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": {
                        "authenticated": true,
                        // Vault checks that the review confirms the JWT's audiences.
                        "audiences": ["vault"],
                        "user": {
                            "username": "system:serviceaccount:default:eso",
                            "uid": "0b0e0a0d-0000-4000-8000-000000000001",
                            "groups": ["system:serviceaccounts", "system:serviceaccounts:default"]
                        }
                    }
                })
                .to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ----- a counting proxy --------------------------------------------------------------------

/// A TCP proxy in front of a plain-HTTP server that records every request line it forwards
/// (`GET /v1/secret/data/x`), so a test can count what the client really sent.
pub struct CountingProxy {
    pub addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl CountingProxy {
    pub async fn start(upstream_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut parser = RequestParser::default();
                        let mut chunk = vec![0u8; 16384];
                        loop {
                            let n = match cr.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            for line in parser.feed(&chunk[..n]) {
                                log.lock().unwrap().push(line);
                            }
                            if sw.write_all(&chunk[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self { addr, requests }
    }

    /// Every request line so far, e.g. `GET /v1/secret/data/a`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// How many request lines were exactly `line` (method and target, query included).
    pub fn count(&self, line: &str) -> usize {
        self.requests().iter().filter(|r| *r == line).count()
    }

    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

/// Splits an HTTP/1.1 request stream (Content-Length bodies) into request lines.
#[derive(Default)]
struct RequestParser {
    buf: Vec<u8>,
    body_left: usize,
}

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        self.buf.extend_from_slice(bytes);
        loop {
            if self.body_left > 0 {
                let take = self.body_left.min(self.buf.len());
                self.buf.drain(..take);
                self.body_left -= take;
                if self.body_left > 0 {
                    break;
                }
            }
            let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                break;
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end + 4);
            let mut it = head.lines();
            let first = it.next().unwrap_or_default();
            let mut parts = first.split(' ');
            let method = parts.next().unwrap_or_default();
            let target = parts.next().unwrap_or_default();
            lines.push(format!("{method} {target}"));
            self.body_left = it
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
        }
        lines
    }
}

// ----- the shared, configured server -------------------------------------------------------

/// The shared server with every engine and auth method the tests use.
pub struct Fixture {
    pub bao: Bao,
    pub role_id: String,
    pub secret_id: String,
    pub jwt: JwtSigner,
    /// A JWT the `jwt` and `kubernetes` roles accept.
    pub sa_jwt: String,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

pub const RW_POLICY: &str = r#"
path "secret/*" { capabilities = ["create", "read", "update", "delete", "list", "patch"] }
path "kv1/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
"#;

pub const NARROW_POLICY: &str = r#"
path "secret/data/open/*" { capabilities = ["read"] }
"#;

pub async fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(setup).await
}

async fn setup() -> Fixture {
    let bao = Bao::start(false).await;
    bao.api(
        "PUT",
        "sys/policies/acl/eso-rw",
        Some(json!({"policy": RW_POLICY})),
    )
    .await;
    bao.api(
        "PUT",
        "sys/policies/acl/eso-narrow",
        Some(json!({"policy": NARROW_POLICY})),
    )
    .await;
    bao.api(
        "POST",
        "sys/mounts/kv1",
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await;

    // AppRole: a renewable token with an ordinary TTL.
    bao.api("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
        .await;
    bao.api(
        "POST",
        "auth/approle/role/eso",
        Some(json!({"token_policies": ["eso-rw"], "token_ttl": "1h", "token_max_ttl": "4h"})),
    )
    .await;
    let role_id = bao.api("GET", "auth/approle/role/eso/role-id", None).await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = bao
        .api("POST", "auth/approle/role/eso/secret-id", Some(json!({})))
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // userpass
    bao.api(
        "POST",
        "sys/auth/userpass",
        Some(json!({"type": "userpass"})),
    )
    .await;
    bao.api(
        "POST",
        "auth/userpass/users/alice",
        Some(json!({"password": "wonderland", "token_policies": ["eso-rw"]})),
    )
    .await;

    // JWT with a key pair made now.
    let jwt = JwtSigner::new();
    bao.api("POST", "sys/auth/jwt", Some(json!({"type": "jwt"})))
        .await;
    bao.api(
        "POST",
        "auth/jwt/config",
        Some(json!({"jwt_validation_pubkeys": [jwt.public_pem], "bound_issuer": "eso-test"})),
    )
    .await;
    bao.api(
        "POST",
        "auth/jwt/role/eso",
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": ["vault"],
            "user_claim": "sub",
            "bound_subject": "system:serviceaccount:default:eso",
            "token_policies": ["eso-rw"]
        })),
    )
    .await;
    let sa_jwt = jwt.sign(&json!({
        "iss": "eso-test",
        "sub": "system:serviceaccount:default:eso",
        "aud": ["vault"],
        "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "eso", "uid": "0b0e0a0d-0000-4000-8000-000000000001"}},
        // The legacy claims, which OpenBao's Kubernetes auth reads the account's uid from.
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/service-account.name": "eso",
        "kubernetes.io/serviceaccount/service-account.uid": "0b0e0a0d-0000-4000-8000-000000000001"
    }));

    // Kubernetes auth against an in-test TokenReview endpoint.
    let reviewer = token_review_endpoint();
    bao.api(
        "POST",
        "sys/auth/kubernetes",
        Some(json!({"type": "kubernetes"})),
    )
    .await;
    bao.api(
        "POST",
        "auth/kubernetes/config",
        Some(json!({
            "kubernetes_host": reviewer,
            "disable_local_ca_jwt": true,
            // Required with disable_local_ca_jwt even over plain HTTP; any PEM certificate.
            "kubernetes_ca_cert": ClientCerts::new().ca_pem,
            "token_reviewer_jwt": sa_jwt,
        })),
    )
    .await;
    bao.api(
        "POST",
        "auth/kubernetes/role/eso",
        Some(json!({
            "bound_service_account_names": ["eso"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": ["eso-rw"]
        })),
    )
    .await;

    Fixture {
        bao,
        role_id,
        secret_id,
        jwt,
        sa_jwt,
    }
}

/// A unique name per test, so tests sharing the server never see each other's data.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

// ----- stores and clients ------------------------------------------------------------------

/// One TokenRequest: (namespace, name, audiences, expiration seconds).
pub type TokenAsk = (String, String, Vec<String>, Option<i64>);

/// ServiceAccount tokens for tests: always the given JWT; remembers what was asked.
pub struct FakeTokens {
    pub jwt: String,
    pub asked: Mutex<Vec<TokenAsk>>,
}

#[async_trait]
impl ServiceAccountTokens for FakeTokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError> {
        self.asked.lock().unwrap().push((
            namespace.to_owned(),
            name.to_owned(),
            audiences.to_vec(),
            expiration_seconds,
        ));
        Ok(self.jwt.clone())
    }
}

pub fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.to_owned()),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

/// A store, the Secrets its credentials live in, and optional ServiceAccount tokens.
pub struct TestStore {
    pub spec: VaultSpec,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub tokens: Option<FakeTokens>,
    pub config: VaultConfig,
}

impl TestStore {
    pub fn new(server: &str) -> Self {
        Self {
            spec: VaultSpec {
                server: server.to_owned(),
                path: Some("secret".to_owned()),
                ..Default::default()
            },
            secrets: BTreeMap::new(),
            tokens: None,
            config: VaultConfig::default(),
        }
    }

    pub fn secret(mut self, name: &str, key: &str, value: &str) -> Self {
        self.secrets
            .entry(name.to_owned())
            .or_default()
            .insert(key.to_owned(), value.as_bytes().to_vec());
        self
    }

    pub fn auth(mut self, auth: VaultAuth) -> Self {
        self.spec.auth = Some(auth);
        self
    }

    /// Token auth with `token`.
    pub fn token(self, token: &str) -> Self {
        self.secret("vault-token", "token", token).auth(VaultAuth {
            token_secret_ref: Some(selector("vault-token", "token")),
            ..Default::default()
        })
    }

    pub fn store_info(&self) -> StoreInfo {
        let mut spec = SecretStoreSpec::default();
        spec.provider.vault = Some(self.spec.clone());
        StoreInfo::secret_store("vault", NS, spec)
    }

    pub async fn try_client(&self) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = self.store_info();
        let mut reader = StaticSecretReader::new();
        for (name, data) in &self.secrets {
            reader.insert(NS, name, data.clone());
        }
        let provider = VaultProvider::vault().config(self.config.clone());
        provider.validate_store(&store)?;
        provider
            .new_client(ClientContext {
                store: &store,
                namespace: NS,
                secrets: &reader,
                config_maps: &eso_provider::StaticConfigMapReader::new(),
                tokens: self.tokens.as_ref().map(|t| t as &dyn ServiceAccountTokens),
            })
            .await
    }

    pub async fn client(&self) -> Arc<dyn SecretsClient> {
        match self.try_client().await {
            Ok(c) => c,
            Err(e) => panic!("client: {}", e.chain()),
        }
    }
}

/// A token with the read-write policy and the given options (`ttl`, `renewable`, ...).
pub async fn child_token(bao: &Bao, options: Value) -> String {
    let mut body = json!({"policies": ["eso-rw"], "no_parent": true});
    if let (Some(b), Some(o)) = (body.as_object_mut(), options.as_object()) {
        b.extend(o.clone());
    }
    bao.api("POST", "auth/token/create", Some(body)).await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Writes KV v2 data with the root token.
pub async fn put_v2(bao: &Bao, key: &str, data: Value) {
    bao.api(
        "POST",
        &format!("secret/data/{key}"),
        Some(json!({"data": data})),
    )
    .await;
}
