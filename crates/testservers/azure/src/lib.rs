//! `eso-testserver-azure`: a local stand-in for the parts of Azure that the `azurekv` provider
//! talks to, for tests only (`publish = false`).
//!
//! No Key Vault emulator can be installed from the registries we reach, so this crate
//! implements, from Microsoft's public REST reference, the subset the provider uses:
//!
//! - **Key Vault data plane** over TLS (a CA made with `openssl` at start): secrets (get by
//!   name and version, set, list with `nextLink` paging and `maxresults`, versions, delete,
//!   soft-deleted state, recover, purge), keys (import, get, list, delete) and certificates
//!   (import of PKCS#12 or PEM, get, list, delete), the `api-version` query parameter, the
//!   JSON field names, error bodies `{"error":{"code","message"}}` and status codes, and the
//!   bearer challenge `401 WWW-Authenticate: Bearer authorization="…", resource="…"` that the
//!   real service sends to a request without a token.
//! - **Entra ID** (`https://<authority>/<tenant>/oauth2/v2.0/token` and the OpenID discovery
//!   document) over TLS: client credentials with a client secret, a certificate-signed client
//!   assertion (RS256 with `x5t`, or PS256 with `x5t#S256`, verified against the registered
//!   certificate), or a federated ServiceAccount token (issuer, subject and audience checked;
//!   the issuer's signature is not, as no OIDC issuer runs here).
//! - **IMDS** (`http://…/metadata/identity/oauth2/token`, header `Metadata: true`) over plain
//!   HTTP, for managed identities.
//!
//! Tokens are opaque, expire (configurable lifetime), and are checked by the vault for their
//! audience. Tests inject faults (status codes, `429` with `Retry-After`) and count requests.
//! The server runs on its own thread and runtime, so it serves sync and async tests alike,
//! and stops when dropped.
//!
//! Its fidelity is checked with Microsoft's own Python clients (`tests/python_clients.rs`:
//! azure-identity 1.27 with every credential above, azure-keyvault-secrets 4.12, -keys 4.11
//! and -certificates 4.12). Those clients need two settings to talk to 127.0.0.1, both
//! honest about what they relax: `verify_challenge_resource=False` (the clients require the
//! challenge's resource, `https://vault.azure.net`, to be a parent domain of the vault host)
//! and `disable_instance_discovery=True` (MSAL would ask the public cloud about the
//! authority). TLS is verified against the test CA (`REQUESTS_CA_BUNDLE`).
//!
//! # Where it differs from the service
//! - Any `api-version` is accepted (the Python clients send `2025-07-01`/`2026-04-01`, the
//!   provider `7.4`); none is a 400.
//! - Importing a certificate stores the certificate and its backing secret, not its key;
//!   certificate `nbf`/`exp` and most of the policy are not filled in.
//! - Federated tokens are checked for issuer, subject, audience and expiry, not signature.
//! - Soft-deleted objects stay until purged (no scheduled purge); recovery is immediate.
//! - No RBAC model: every identity may do everything, except those [`AzureTestServer::forbid`]
//!   names.
//!
//! # Use
//! ```no_run
//! use eso_testserver_azure::{AzureTestServer, Fault, SecretSeed};
//!
//! let server = AzureTestServer::start()?;
//! server.add_client_secret("app", "s3cret");
//! server.set_secret_with("db", SecretSeed::new("hunter2").tag("env", "prod"));
//! server.inject(Fault::vault("/secrets/db", 429).retry_after(1));
//! // ... point the provider at server.vault_url(), server.authority_host(),
//! // server.imds_endpoint() and trust server.ca_pem() ...
//! assert_eq!(server.token_requests(), 0);
//! # Ok::<(), eso_testserver_azure::Error>(())
//! ```

mod entra;
mod http;
pub mod pki;
mod state;
mod vault;

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

use state::State;
pub use state::{Fault, Kind, Listener, Recorded, SecretSeed};

/// The tenant the server serves unless told otherwise.
pub const TENANT: &str = "72f988bf-0000-4000-8000-00000000e5e5";
/// The Key Vault token audience of Azure's public cloud.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";

/// Why the server could not start or a helper failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `openssl` failed or is missing.
    #[error("{0}")]
    Openssl(String),
    /// A socket could not be bound or the runtime not built.
    #[error("cannot start the server")]
    Io(#[from] std::io::Error),
    /// The TLS configuration was refused.
    #[error("cannot configure TLS")]
    Tls(#[from] rustls::Error),
}

/// How the server starts.
#[derive(Debug, Clone)]
#[must_use]
pub struct Config {
    tenant: String,
    vault_resource: String,
    page_size: usize,
    token_lifetime_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tenant: TENANT.to_owned(),
            vault_resource: VAULT_RESOURCE.to_owned(),
            page_size: 25,
            token_lifetime_secs: 3599,
        }
    }
}

impl Config {
    /// The tenant (directory) ID tokens are issued for.
    pub fn tenant(mut self, tenant: &str) -> Self {
        tenant.clone_into(&mut self.tenant);
        self
    }

    /// The audience the vault accepts and announces in its challenge (default
    /// `https://vault.azure.net`; `https://vault.azure.cn` for China, ...).
    pub fn vault_resource(mut self, resource: &str) -> Self {
        resource.clone_into(&mut self.vault_resource);
        self
    }

    /// Items per list page when the client does not ask for fewer (default 25, as Key Vault).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Lifetime of issued access tokens (default 3599 s).
    pub fn token_lifetime_secs(mut self, secs: u64) -> Self {
        self.token_lifetime_secs = secs;
        self
    }
}

/// A running server; stops when dropped.
pub struct AzureTestServer {
    shared: Arc<Mutex<State>>,
    vault_url: String,
    login_url: String,
    imds_url: String,
    ca_pem: String,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AzureTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureTestServer")
            .field("vault_url", &self.vault_url)
            .field("login_url", &self.login_url)
            .field("imds_url", &self.imds_url)
            .finish_non_exhaustive()
    }
}

impl Drop for AzureTestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> Result<tokio_rustls::TlsAcceptor, Error> {
    eso_testserver_kit::tls_acceptor(cert_pem, key_pem).map_err(|e| Error::Openssl(e.to_string()))
}

impl AzureTestServer {
    /// Starts a server with the default [`Config`].
    pub fn start() -> Result<Self, Error> {
        Self::start_with(Config::default())
    }

    /// Starts a server: the vault and the login endpoint on two TLS listeners, IMDS on a plain
    /// HTTP one, all on 127.0.0.1 with free ports.
    pub fn start_with(config: Config) -> Result<Self, Error> {
        let dir = tempfile::tempdir()?;
        let pki = pki::server_pki(dir.path())?;
        let ca_file = pki.ca_file.clone();
        let acceptor = tls_acceptor(&pki.cert_pem, &pki.key_pem)?;

        let vault_l = StdListener::bind("127.0.0.1:0")?;
        let login_l = StdListener::bind("127.0.0.1:0")?;
        let imds_l = StdListener::bind("127.0.0.1:0")?;
        for l in [&vault_l, &login_l, &imds_l] {
            l.set_nonblocking(true)?;
        }
        let vault_url = format!("https://127.0.0.1:{}", vault_l.local_addr()?.port());
        let login_url = format!("https://127.0.0.1:{}", login_l.local_addr()?.port());
        let imds_url = format!("http://127.0.0.1:{}", imds_l.local_addr()?.port());

        let shared = Arc::new(Mutex::new(State::new(
            &config,
            vault_url.clone(),
            login_url.clone(),
        )));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stop_rx) = watch::channel(false);
        let (vs, ls, is) = (shared.clone(), shared.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("azure-testserver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let (Ok(v), Ok(l), Ok(i)) = (
                        tokio::net::TcpListener::from_std(vault_l),
                        tokio::net::TcpListener::from_std(login_l),
                        tokio::net::TcpListener::from_std(imds_l),
                    ) else {
                        return;
                    };
                    let vault: http::Handler = Arc::new(move |r| vault::handle(&vs, r));
                    let login: http::Handler = Arc::new(move |r| entra::handle_login(&ls, r));
                    let imds: http::Handler = Arc::new(move |r| entra::handle_imds(&is, r));
                    tokio::join!(
                        http::serve(v, Some(acceptor.clone()), vault, stop_rx.clone()),
                        http::serve(l, Some(acceptor), login, stop_rx.clone()),
                        http::serve(i, None, imds, stop_rx),
                    );
                });
            })?;
        Ok(Self {
            shared,
            vault_url,
            login_url,
            imds_url,
            ca_pem: pki.ca_pem,
            ca_file,
            _dir: dir,
            stop,
            thread: Some(thread),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The vault's URL, `https://127.0.0.1:PORT` (no trailing slash).
    #[must_use]
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// The Entra ID authority host, `https://127.0.0.1:PORT/` (with the trailing slash Azure's
    /// endpoint tables use).
    #[must_use]
    pub fn authority_host(&self) -> String {
        format!("{}/", self.login_url)
    }

    /// The token endpoint of the tenant.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_url,
            self.state().tenant
        )
    }

    /// The IMDS token endpoint, `http://127.0.0.1:PORT/metadata/identity/oauth2/token`.
    #[must_use]
    pub fn imds_endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.imds_url)
    }

    /// The IMDS base URL, `http://127.0.0.1:PORT` (what azure-identity's
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` takes).
    #[must_use]
    pub fn imds_base(&self) -> &str {
        &self.imds_url
    }

    /// The CA that signed the TLS certificate, PEM.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA as a file (for `SSL_CERT_FILE` / `REQUESTS_CA_BUNDLE`).
    #[must_use]
    pub fn ca_file(&self) -> &std::path::Path {
        &self.ca_file
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> String {
        self.state().tenant.clone()
    }

    /// Registers an application that logs in with a client secret.
    pub fn add_client_secret(&self, client_id: &str, secret: &str) {
        self.state().app(client_id).secrets.push(secret.to_owned());
    }

    /// Registers an application that logs in with a certificate (PEM; the first certificate
    /// counts).
    pub fn add_client_certificate(&self, client_id: &str, cert_pem: &str) {
        if let Some(der) = pki::pem_blocks(cert_pem, "CERTIFICATE").into_iter().next() {
            self.state().app(client_id).certificates.push(der);
        }
    }

    /// Registers a federated identity credential: tokens from `issuer` for `subject` (e.g.
    /// `system:serviceaccount:ns:name`) with audience `api://AzureADTokenExchange`.
    pub fn add_federated_credential(&self, client_id: &str, issuer: &str, subject: &str) {
        self.state()
            .app(client_id)
            .federated
            .push((issuer.to_owned(), subject.to_owned()));
    }

    /// Assigns a managed identity to the "pod". The first one assigned is the one IMDS uses
    /// when a request names none.
    pub fn add_managed_identity(&self, client_id: &str) {
        self.state().managed_identities.push(client_id.to_owned());
    }

    /// Makes the vault answer 403 to every request of `client_id`.
    pub fn forbid(&self, client_id: &str) {
        self.state().forbidden.insert(client_id.to_owned());
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_lifetime_secs(&self, secs: u64) {
        self.state().token_lifetime_secs = secs;
    }

    /// Expires every token issued so far (the next vault request with one gets 401).
    pub fn expire_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Answers the next matching requests with a fault.
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push(fault);
    }

    /// Sets a secret (a new version); returns the version.
    pub fn set_secret(&self, name: &str, value: &str) -> String {
        self.set_secret_with(name, SecretSeed::new(value))
    }

    /// Sets a secret with tags, content type and attributes; returns the version.
    pub fn set_secret_with(&self, name: &str, seed: SecretSeed) -> String {
        self.state().seed_secret(name, seed)
    }

    /// Stores a key (a JWK, private parts are dropped as the service does) with tags; returns
    /// the version.
    pub fn set_key(&self, name: &str, jwk: serde_json::Value, tags: &[(&str, &str)]) -> String {
        let tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.state().seed_key(name, &jwk, tags)
    }

    /// Stores a certificate (DER) with tags; returns the version.
    pub fn set_certificate(&self, name: &str, der: &[u8], tags: &[(&str, &str)]) -> String {
        let tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.state()
            .seed_certificate(name, der.to_vec(), tags, None)
    }

    /// The latest value of a live secret.
    #[must_use]
    pub fn secret_value(&self, name: &str) -> Option<String> {
        self.state().latest_secret_value(name)
    }

    /// The tags of the latest version of a live object.
    #[must_use]
    pub fn tags(&self, kind: Kind, name: &str) -> Option<BTreeMap<String, String>> {
        self.state().latest(kind, name).map(|v| v.tags.clone())
    }

    /// The content type of the latest version of a live secret.
    #[must_use]
    pub fn content_type(&self, name: &str) -> Option<String> {
        self.state()
            .latest(Kind::Secret, name)
            .and_then(|v| v.content_type.clone())
    }

    /// The expiry (`exp`, Unix seconds) of the latest version of a live secret.
    #[must_use]
    pub fn expires(&self, name: &str) -> Option<i64> {
        self.state().latest(Kind::Secret, name).and_then(|v| v.exp)
    }

    /// How many versions a live object has.
    #[must_use]
    pub fn version_count(&self, kind: Kind, name: &str) -> usize {
        self.state()
            .collection(kind)
            .live
            .get(name)
            .map_or(0, Vec::len)
    }

    /// The public JWK of the latest version of a key.
    #[must_use]
    pub fn key_jwk(&self, name: &str) -> Option<serde_json::Value> {
        self.state().latest_key_jwk(name)
    }

    /// The DER of the latest version of a certificate.
    #[must_use]
    pub fn certificate_der(&self, name: &str) -> Option<Vec<u8>> {
        self.state().latest_certificate_der(name)
    }

    /// Whether a live object exists.
    #[must_use]
    pub fn exists(&self, kind: Kind, name: &str) -> bool {
        self.state().collection(kind).live.contains_key(name)
    }

    /// Whether an object is soft-deleted (deleted, not purged).
    #[must_use]
    pub fn is_deleted(&self, kind: Kind, name: &str) -> bool {
        self.state().collection(kind).deleted.contains_key(name)
    }

    /// Every request so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().log.clone()
    }

    /// How many requests one listener got whose method is `method` (any when empty) and whose
    /// path starts with `path_prefix`.
    #[must_use]
    pub fn count(&self, listener: Listener, method: &str, path_prefix: &str) -> usize {
        self.state()
            .log
            .iter()
            .filter(|r| {
                r.listener == listener
                    && (method.is_empty() || r.method == method)
                    && r.path.starts_with(path_prefix)
            })
            .count()
    }

    /// Token requests so far, at the login endpoint and IMDS together.
    #[must_use]
    pub fn token_requests(&self) -> usize {
        self.state()
            .log
            .iter()
            .filter(|r| {
                (r.listener == Listener::Login && r.path.ends_with("/oauth2/v2.0/token"))
                    || (r.listener == Listener::Imds && r.path.ends_with("/oauth2/token"))
            })
            .count()
    }

    /// Vault requests so far that carried a token (the challenge round trips excluded).
    #[must_use]
    pub fn vault_requests(&self) -> usize {
        self.state()
            .log
            .iter()
            .filter(|r| r.listener == Listener::Vault && r.authorized)
            .count()
    }

    /// Forgets the request log.
    pub fn reset_counts(&self) {
        self.state().log.clear();
    }
}

/// A ServiceAccount-token-shaped JWT (issuer, subject `system:serviceaccount:NS:NAME`,
/// audiences, one hour of validity) for federated logins. Its signature is a placeholder: the
/// server checks issuer, subject, audience and expiry of federated tokens, not the signature
/// (no OIDC issuer runs here).
#[must_use]
pub fn service_account_jwt(
    issuer: &str,
    namespace: &str,
    name: &str,
    audiences: &[String],
) -> String {
    use base64::Engine;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let exp = state::now() + 3600;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "test"});
    let claims = serde_json::json!({
        "iss": issuer,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "aud": audiences,
        "exp": exp,
        "iat": exp - 3600,
        "nbf": exp - 3600,
    });
    format!("{}.{}.c2lnbmF0dXJl", b64(&header), b64(&claims))
}
