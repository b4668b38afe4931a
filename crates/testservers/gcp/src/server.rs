//! The server handle, request dispatch, and the seeding and inspection API tests use.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http::{ApiError, Body, full, json_response, parse_pairs, percent_decode};
use crate::jwt;
use crate::secretmanager;
use crate::state::{
    CallRecord, MetadataConfig, RegisteredKey, Secret, SecretKey, SecretView, State, Version,
    VersionState,
};
use crate::{auth, method};
use eso_testserver_kit::{Fault, Faults, accept_loop};

/// The largest request body served (Secret Manager's payload limit is 64 KiB).
const MAX_BODY: usize = 1 << 20;

pub(crate) struct Shared {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    base_url: String,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A local Google Cloud server on `127.0.0.1` (HTTP). Dropping it stops it.
pub struct GcpTestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for GcpTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpTestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for GcpTestServer {
    fn drop(&mut self) {
        // The accept task owns every connection task; aborting it drops them all.
        self.accept.abort();
    }
}

impl GcpTestServer {
    /// Starts a server on a free port of `127.0.0.1`.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            faults: Mutex::new(Faults::default()),
            base_url: format!("http://{addr}"),
        });
        let handler_shared = shared.clone();
        let accept = tokio::spawn(accept_loop(listener, None, move |req| {
            handle(handler_shared.clone(), req)
        }));
        Ok(Self {
            shared,
            addr,
            accept,
        })
    }

    /// The base URL (`http://127.0.0.1:PORT`) every Google endpoint is served under.
    #[must_use]
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The OAuth2 token URL (`{url}/token`), which service-account keys name as `token_uri`.
    #[must_use]
    pub fn token_url(&self) -> String {
        format!("{}/token", self.shared.base_url)
    }

    /// The STS token URL (`{url}/v1/token`).
    #[must_use]
    pub fn sts_url(&self) -> String {
        format!("{}/v1/token", self.shared.base_url)
    }

    /// The number of a project (assigned on first use), as names in answers carry it.
    #[must_use]
    pub fn project_number(&self, project_id: &str) -> u64 {
        self.shared.state().project_number(project_id)
    }

    /// A valid access token for `principal` (for clients that take a token, such as `gcloud`).
    #[must_use]
    pub fn access_token(&self, principal: &str) -> String {
        self.shared.state().issue_token(principal).0
    }

    /// Makes a service-account key for `email` and returns its JSON key file, whose
    /// `token_uri` is this server's token URL. Each call makes a new key id; the RSA key of an
    /// account is generated once per process (a fraction of a second) and reused.
    ///
    /// # Panics
    /// When the operating system's random generator fails (tests only).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn service_account_key(&self, email: &str) -> String {
        let (key, pem) = jwt::key_for(email).expect("RSA key generation");
        let mut st = self.shared.state();
        let n = st.next();
        let kid = format!("{:040x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15);
        st.keys.insert(
            kid.clone(),
            RegisteredKey {
                email: email.to_owned(),
                public: key.to_public_key(),
                revoked: false,
            },
        );
        let project = email
            .split_once('@')
            .and_then(|(_, d)| d.split('.').next())
            .unwrap_or("project");
        json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": kid,
            "private_key": pem,
            "client_email": email,
            "client_id": format!("{}", 100_000_000_000_000_000_000u128 + u128::from(n)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{email}"),
            "universe_domain": "googleapis.com",
        })
        .to_string()
    }

    /// A Kubernetes Secret manifest (`v1`, `stringData`) holding a new service-account key of
    /// `email` under `key`: what a store's `auth.secretRef.secretAccessKeySecretRef` names, for
    /// `sync-once render` inputs and cluster tests.
    #[must_use]
    pub fn service_account_key_secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        email: &str,
    ) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "stringData": {key: self.service_account_key(email)},
        })
    }

    /// Deletes every key of `email`: their assertions are rejected from now on.
    pub fn revoke_keys(&self, email: &str) {
        for k in self.shared.state().keys.values_mut() {
            if k.email == email {
                k.revoked = true;
            }
        }
    }

    /// Invalidates every access token issued so far (as if they had expired).
    pub fn revoke_tokens(&self) {
        self.shared.state().tokens.clear();
    }

    /// The lifetime of tokens issued from now on (default one hour).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.state().token_lifetime = lifetime;
    }

    /// Makes every call of `principal` answer 403 `PERMISSION_DENIED`.
    pub fn deny(&self, principal: &str) {
        self.shared.state().denied.insert(principal.to_owned());
    }

    /// What the metadata server answers.
    pub fn set_metadata(&self, metadata: MetadataConfig) {
        self.shared.state().metadata = metadata;
    }

    /// Registers an AWS access key, so that AWS subject tokens signed with it are checked.
    pub fn aws_credentials(&self, access_key_id: &str, secret_access_key: &str) {
        self.shared
            .state()
            .aws_keys
            .insert(access_key_id.to_owned(), secret_access_key.to_owned());
    }

    /// The page size of list calls that ask for none (default 25,000, Google's maximum); a
    /// small one makes clients page.
    pub fn set_default_page_size(&self, size: usize) {
        self.shared.state().default_page_size = size.max(1);
    }

    /// Serves `token` at `GET {url}/external/token` (as text) and
    /// `GET {url}/external/token.json` (as `{"id_token": token}`): an external identity
    /// provider for a federation `credConfig` with a `credential_source.url`.
    pub fn set_external_token(&self, token: &str) {
        self.shared.state().external_token = Some(token.to_owned());
    }

    /// Starts describing a secret to create in `project` (id or number).
    pub fn secret(&self, project: &str, id: &str) -> SecretSeed<'_> {
        SecretSeed {
            server: self,
            project: project.to_owned(),
            location: None,
            id: id.to_owned(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            aliases: BTreeMap::new(),
            replication: json!({"automatic": {}}),
            versions: Vec::new(),
        }
    }

    fn key(&self, project: &str, location: Option<&str>, id: &str) -> SecretKey {
        SecretKey {
            project: self.shared.state().project_number(project),
            location: location.map(str::to_owned),
            id: id.to_owned(),
        }
    }

    /// Adds a version to an existing secret; returns its number (`None` without the secret).
    pub fn add_version(
        &self,
        project: &str,
        location: Option<&str>,
        id: &str,
        data: &[u8],
    ) -> Option<u64> {
        let key = self.key(project, location, id);
        let mut st = self.shared.state();
        let create_time = st.now();
        let etag = st.next();
        let s = st.secrets.get_mut(&key)?;
        let number = s.versions.len() as u64 + 1;
        s.versions.push(Version {
            number,
            state: VersionState::Enabled,
            data: data.to_vec(),
            create_time,
            destroy_time: None,
            etag,
        });
        Some(number)
    }

    /// Sets a version's state (destroying clears its data). `false` when there is no such
    /// version.
    pub fn set_version_state(
        &self,
        project: &str,
        location: Option<&str>,
        id: &str,
        version: u64,
        state: VersionState,
    ) -> bool {
        let key = self.key(project, location, id);
        let mut st = self.shared.state();
        let now = st.now();
        let Some(v) = st
            .secrets
            .get_mut(&key)
            .and_then(|s| s.versions.iter_mut().find(|v| v.number == version))
        else {
            return false;
        };
        v.state = state;
        if state == VersionState::Destroyed {
            v.data.clear();
            v.destroy_time = Some(now);
        }
        true
    }

    /// A secret as stored, for assertions.
    #[must_use]
    pub fn get(&self, project: &str, location: Option<&str>, id: &str) -> Option<SecretView> {
        let key = self.key(project, location, id);
        self.shared.state().view(&key)
    }

    /// How many requests of `method` ([`crate::method`]) were answered.
    #[must_use]
    pub fn count(&self, method: &str) -> usize {
        self.shared
            .state()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// How many requests were answered, per method.
    #[must_use]
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for c in &self.shared.state().calls {
            *out.entry(c.method.clone()).or_insert(0) += 1;
        }
        out
    }

    /// Every request answered so far, oldest first.
    #[must_use]
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.state().calls.clone()
    }

    /// Forgets the request log (counts start again from zero).
    pub fn reset_counts(&self) {
        self.shared.state().calls.clear();
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults().push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }
}

/// A secret to create; [`create`](Self::create) stores it (replacing one of the same name).
#[derive(Debug)]
#[must_use]
pub struct SecretSeed<'a> {
    server: &'a GcpTestServer,
    project: String,
    location: Option<String>,
    id: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    aliases: BTreeMap<String, u64>,
    replication: Value,
    versions: Vec<Vec<u8>>,
}

impl SecretSeed<'_> {
    /// Makes it a regional secret of `location`.
    pub fn location(mut self, location: &str) -> Self {
        self.location = Some(location.to_owned());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Adds an enabled version with `data` (versions are numbered 1, 2, ... in order).
    pub fn version(mut self, data: &[u8]) -> Self {
        self.versions.push(data.to_vec());
        self
    }

    /// Adds a version alias.
    pub fn alias(mut self, alias: &str, version: u64) -> Self {
        self.aliases.insert(alias.to_owned(), version);
        self
    }

    /// User-managed replication in these locations (default: automatic).
    pub fn replicas(mut self, locations: &[&str]) -> Self {
        let replicas: Vec<Value> = locations.iter().map(|l| json!({"location": l})).collect();
        self.replication = json!({"userManaged": {"replicas": replicas}});
        self
    }

    /// Stores the secret; returns its full name (with the project number).
    pub fn create(self) -> String {
        let key = self
            .server
            .key(&self.project, self.location.as_deref(), &self.id);
        let mut st = self.server.shared.state();
        let create_time = st.now();
        let etag = st.next();
        let mut versions = Vec::new();
        for (i, data) in self.versions.into_iter().enumerate() {
            let t = st.now();
            let e = st.next();
            versions.push(Version {
                number: i as u64 + 1,
                state: VersionState::Enabled,
                data,
                create_time: t,
                destroy_time: None,
                etag: e,
            });
        }
        let name = key.name();
        st.secrets.insert(
            key,
            Secret {
                labels: self.labels,
                annotations: self.annotations,
                topics: Vec::new(),
                version_aliases: self.aliases,
                replication: self.location.is_none().then_some(self.replication),
                create_time,
                etag,
                versions,
            },
        );
        name
    }
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Parameters of a token endpoint: a form body, or a JSON object of strings.
fn params(headers: &HeaderMap, body: &Bytes) -> Result<BTreeMap<String, String>, ApiError> {
    if is_json(headers) {
        let v = body_json(body)?;
        Ok(v.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default())
    } else {
        Ok(parse_pairs(&String::from_utf8_lossy(body)))
    }
}

struct Outcome {
    method: &'static str,
    resource: String,
    principal: Option<String>,
    response: Response<Body>,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = parse_pairs(req.uri().query().unwrap_or_default());
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(
                ApiError::invalid_argument("Request body too large or unreadable.").into_response(),
            );
        }
    };
    let outcome = dispatch(&shared, &method, &path, &query, &headers, &body);
    let status = outcome.response.status().as_u16();
    shared.state().calls.push(CallRecord {
        method: outcome.method.to_owned(),
        resource: outcome.resource,
        principal: outcome.principal,
        status,
    });
    Ok(outcome.response)
}

fn dispatch(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Outcome {
    let outcome = |m: &'static str, resource: &str, principal: Option<String>, r| Outcome {
        method: m,
        resource: resource.to_owned(),
        principal,
        response: r,
    };
    let fault = |m: &'static str, resource: &str| {
        shared
            .faults()
            .take(m, |r| resource.contains(r))
            .map(|f| ApiError::injected(m, &f))
    };

    // The metadata server.
    if path == "/" || path.starts_with("/computeMetadata/") {
        let m = if path.ends_with("/token") {
            method::METADATA_TOKEN
        } else {
            method::METADATA
        };
        if let Some(e) = fault(m, path) {
            return outcome(m, path, None, e.into_response());
        }
        let a = auth::metadata(&mut shared.state(), path, query, headers);
        let ct = if a.json {
            "application/json"
        } else {
            "application/text"
        };
        let mut r = full(a.status, Bytes::from(a.body), ct);
        r.headers_mut().insert(
            "metadata-flavor",
            hyper::header::HeaderValue::from_static("Google"),
        );
        return outcome(m, path, a.principal, r);
    }

    // A stand-in external identity provider.
    if *method == Method::GET && (path == "/external/token" || path == "/external/token.json") {
        let m = "ExternalToken";
        if let Some(e) = fault(m, path) {
            return outcome(m, path, None, e.into_response());
        }
        let token = shared.state().external_token.clone();
        let r = match token {
            None => ApiError::not_found("No external token is configured.").into_response(),
            Some(t) if path.ends_with(".json") => json_response(200, &json!({"id_token": t})),
            Some(t) => full(200, Bytes::from(t), "text/plain"),
        };
        return outcome(m, path, None, r);
    }

    // Token endpoints.
    let token_endpoint = match (method, path) {
        (&Method::POST, "/token") => Some(method::OAUTH2_TOKEN),
        (&Method::POST, "/v1/token") => Some(method::STS_TOKEN),
        (&Method::POST, "/v1/identitybindingtoken") => Some(method::IDENTITY_BINDING_TOKEN),
        _ => None,
    };
    if let Some(m) = token_endpoint {
        if let Some(e) = fault(m, path) {
            return outcome(m, path, None, e.into_response());
        }
        let result = match m {
            method::OAUTH2_TOKEN => params(headers, body).and_then(|p| {
                auth::oauth2_token(
                    &mut shared.state(),
                    &format!("{}/token", shared.base_url),
                    &p,
                )
            }),
            method::STS_TOKEN => {
                params(headers, body).and_then(|p| auth::sts_token(&mut shared.state(), &p))
            }
            _ => {
                body_json(body).and_then(|b| auth::identity_binding_token(&mut shared.state(), &b))
            }
        };
        return match result {
            Ok((v, principal)) => outcome(m, path, Some(principal), json_response(200, &v)),
            Err(e) => outcome(m, path, None, e.into_response()),
        };
    }

    let caller = auth::authenticate(&shared.state(), headers);

    // IAM credentials.
    if let Some(email) = path
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|r| r.strip_suffix(":generateAccessToken"))
    {
        let m = method::GENERATE_ACCESS_TOKEN;
        let email = percent_decode(email, false);
        if let Some(e) = fault(m, &email) {
            return outcome(m, &email, caller, e.into_response());
        }
        if *method != Method::POST {
            return outcome(
                m,
                &email,
                caller,
                ApiError::not_found("Requested entity was not found.").into_response(),
            );
        }
        let result = body_json(body).and_then(|b| {
            auth::generate_access_token(&mut shared.state(), caller.as_deref(), &email, &b)
        });
        return match result {
            Ok((v, _)) => outcome(m, &email, caller, json_response(200, &v)),
            Err(e) => outcome(m, &email, caller, e.into_response()),
        };
    }

    // Secret Manager.
    if let Some(rest) = path.strip_prefix("/v1/") {
        let segments: Vec<String> = rest.split('/').map(|s| percent_decode(s, false)).collect();
        if let Some(routed) = secretmanager::route(method, &segments) {
            let req = match routed {
                Ok(r) => r,
                Err(e) => return outcome("Unknown", path, caller, e.into_response()),
            };
            let m = req.method();
            let resource = req.resource();
            if let Some(e) = fault(m, &resource) {
                return outcome(m, &resource, caller, e.into_response());
            }
            let Some(principal) = caller else {
                return outcome(
                    m,
                    &resource,
                    None,
                    ApiError::unauthenticated().into_response(),
                );
            };
            let mut st = shared.state();
            if st.denied.contains(&principal) {
                return outcome(
                    m,
                    &resource,
                    Some(principal),
                    ApiError::permission_denied(req.permission(), &resource).into_response(),
                );
            }
            let result =
                body_json(body).and_then(|b| secretmanager::execute(&mut st, &req, query, &b));
            drop(st);
            let response = match result {
                Ok(v) => json_response(200, &v),
                Err(e) => e.into_response(),
            };
            return outcome(m, &resource, Some(principal), response);
        }
    }
    outcome(
        "Unknown",
        path,
        caller,
        ApiError::not_found(format!(
            "The requested URL {path} was not found on this server."
        ))
        .into_response(),
    )
}
