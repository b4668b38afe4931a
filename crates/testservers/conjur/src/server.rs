//! The server: state, routing and Conjur's answers.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use rsa::RsaPublicKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use eso_testserver_kit::{accept_loop, parse_pairs, percent_decode, tls_acceptor};

use crate::route;
use crate::token::{self, TokenKey};

const MAX_BODY: usize = 1 << 20;

/// Which variables a privilege covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every variable.
    All,
    /// These variable identifiers only.
    Only(BTreeSet<String>),
    /// No variable.
    None,
}

impl Scope {
    fn covers(&self, id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(ids) => ids.contains(id),
            Self::None => false,
        }
    }

    fn only<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        Self::Only(ids.into_iter().map(Into::into).collect())
    }
}

/// A user or host: its login (`host/apps/eso`, `alice`), API key and privileges on variables.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Role {
    login: String,
    api_key: String,
    read: Scope,
    execute: Scope,
    update: Scope,
}

impl Role {
    /// A role that may see and fetch every variable, and change none.
    pub fn new(login: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            login: login.into(),
            api_key: api_key.into(),
            read: Scope::All,
            execute: Scope::All,
            update: Scope::None,
        }
    }

    /// Sees only these variables (others are "not found" to it).
    pub fn visible<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.read = Scope::only(ids);
        self
    }

    /// May fetch only these variables (others it sees answer 403).
    pub fn executable<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.execute = Scope::only(ids);
        self
    }

    /// May add values to every variable.
    pub fn writer(mut self) -> Self {
        self.update = Scope::All;
        self
    }
}

/// An `authn-jwt` authenticator (`conjur/authn-jwt/{service}` with its variables).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct JwtAuthenticator {
    service_id: String,
    issuer: Option<String>,
    audience: Option<String>,
    token_app_property: Option<String>,
    identity_path: String,
}

impl JwtAuthenticator {
    /// An authenticator whose JWTs are signed with [`ConjurTestServer::issue_jwt`]'s key; the
    /// host comes from the URL.
    pub fn new(service_id: impl Into<String>) -> Self {
        Self {
            service_id: service_id.into(),
            issuer: None,
            audience: None,
            token_app_property: None,
            identity_path: String::new(),
        }
    }

    /// The required `iss` (`issuer`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The required `aud` (`audience`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The claim naming the host (`token-app-property`) and the policy path it is under
    /// (`identity-path`); the URL then must not name a host.
    pub fn token_app_property(
        mut self,
        claim: impl Into<String>,
        identity_path: impl Into<String>,
    ) -> Self {
        self.token_app_property = Some(claim.into());
        self.identity_path = identity_path.into();
        self
    }
}

/// A fault: the next `times` matching requests answer `status` instead of being served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Fault {
    status: u16,
    route: Option<&'static str>,
    times: Option<u32>,
    retry_after: Option<u64>,
}

impl Fault {
    /// Answers `status` to every request until limited with [`times`](Self::times).
    pub fn status(status: u16) -> Self {
        Self {
            status,
            route: None,
            times: None,
            retry_after: None,
        }
    }

    /// Only requests of this route ([`crate::route`]).
    pub fn route(mut self, route: &'static str) -> Self {
        self.route = Some(route);
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Adds `Retry-After: <seconds>`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

#[derive(Debug, Default)]
struct Variable {
    values: Vec<Vec<u8>>,
    annotations: BTreeMap<String, String>,
}

struct State {
    roles: BTreeMap<String, Role>,
    variables: BTreeMap<String, Variable>,
    jwt: BTreeMap<String, JwtAuthenticator>,
    faults: Vec<Fault>,
    counts: BTreeMap<String, u64>,
    token_ttl: i64,
}

struct Shared {
    account: String,
    key: Mutex<TokenKey>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(&self) -> MutexGuard<'_, TokenKey> {
        self.key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running server; stopped when dropped.
pub struct ConjurTestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    scheme: &'static str,
    accept: JoinHandle<()>,
}

impl Drop for ConjurTestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Adds values and annotations to one variable.
pub struct VariableSeed {
    shared: Arc<Shared>,
    id: String,
}

impl VariableSeed {
    /// Adds a version.
    pub fn value(self, value: &[u8]) -> Self {
        self.shared
            .lock()
            .variables
            .entry(self.id.clone())
            .or_default()
            .values
            .push(value.to_vec());
        self
    }

    /// Sets an annotation.
    pub fn annotation(self, name: &str, value: &str) -> Self {
        self.shared
            .lock()
            .variables
            .entry(self.id.clone())
            .or_default()
            .annotations
            .insert(name.to_owned(), value.to_owned());
        self
    }
}

impl ConjurTestServer {
    /// Starts a server for `account` on a free port of `127.0.0.1`, over HTTP.
    pub async fn start(account: &str) -> std::io::Result<Self> {
        Self::start_with(account, None).await
    }

    /// Starts a server for `account` over HTTPS with this certificate chain and key (PEM).
    pub async fn start_tls(account: &str, cert_pem: &str, key_pem: &str) -> std::io::Result<Self> {
        Self::start_with(account, Some(tls_acceptor(cert_pem, key_pem)?)).await
    }

    async fn start_with(
        account: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            account: account.to_owned(),
            key: Mutex::new(TokenKey::new()),
            state: Mutex::new(State {
                roles: BTreeMap::new(),
                variables: BTreeMap::new(),
                jwt: BTreeMap::new(),
                faults: Vec::new(),
                counts: BTreeMap::new(),
                // Conjur's default access-token lifetime: 8 minutes.
                token_ttl: 480,
            }),
        });
        let handler_shared = shared.clone();
        let accept = tokio::spawn(accept_loop(listener, tls, move |req| {
            handle(handler_shared.clone(), req)
        }));
        Ok(Self {
            shared,
            addr,
            scheme,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT` (`https` when started with TLS).
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Adds (or replaces) a role.
    pub fn role(&self, role: Role) {
        self.shared.lock().roles.insert(role.login.clone(), role);
    }

    /// Declares a variable (without a value until [`VariableSeed::value`]).
    pub fn variable(&self, id: &str) -> VariableSeed {
        self.shared
            .lock()
            .variables
            .entry(id.to_owned())
            .or_default();
        VariableSeed {
            shared: self.shared.clone(),
            id: id.to_owned(),
        }
    }

    /// Enables an `authn-jwt` authenticator.
    pub fn jwt_authenticator(&self, authenticator: JwtAuthenticator) {
        self.shared
            .lock()
            .jwt
            .insert(authenticator.service_id.clone(), authenticator);
    }

    /// An RS256 JWT with these claims, signed with the key every [`JwtAuthenticator`] trusts.
    pub fn issue_jwt(&self, claims: &Value) -> Result<String, String> {
        Ok(token::sign_jwt(&token::jwt_key()?, claims))
    }

    /// How long access tokens are valid (default 8 minutes, Conjur's).
    pub fn token_ttl(&self, ttl: Duration) {
        self.shared.lock().token_ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    }

    /// Invalidates every access token issued so far (as a restarted Conjur with a new signing
    /// key would).
    pub fn revoke_tokens(&self) {
        *self.shared.key() = TokenKey::new();
    }

    /// Queues a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// How many requests of this route arrived (faulted ones included).
    #[must_use]
    pub fn count(&self, route: &str) -> u64 {
        self.shared.lock().counts.get(route).copied().unwrap_or(0)
    }
}

// ----- HTTP helpers ------------------------------------------------------------------------

fn respond(status: u16, content_type: Option<&str>, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn json_response(status: u16, value: &Value) -> Response<Full<Bytes>> {
    respond(
        status,
        Some("application/json"),
        value.to_string().into_bytes(),
    )
}

/// Conjur's `head :unauthorized` / `head :forbidden`: a status and no body.
fn empty(status: u16) -> Response<Full<Bytes>> {
    respond(status, None, Vec::new())
}

fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// `Errors::Conjur::MissingSecretValue`.
fn missing_value(full_id: &str) -> Response<Full<Bytes>> {
    error(
        404,
        "not_found",
        &format!("CONJ00076E Variable {full_id} is empty or not found."),
    )
}

/// Ruby's `Base64.encode64`: 60 characters a line, each line ended by a newline.
fn encode64(data: &[u8]) -> String {
    let b64 = STANDARD.encode(data);
    let mut out = String::with_capacity(b64.len() + b64.len() / 60 + 1);
    for chunk in b64.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

// ----- routing -----------------------------------------------------------------------------

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_owned();
    let query = parse_pairs(req.uri().query().unwrap_or_default());
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(error(413, "payload_too_large", "request body too large")),
    };
    let segments: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    let route = match (&method, segments.as_slice()) {
        (&Method::POST, ["authn", _, _, "authenticate"]) => route::AUTHN,
        (
            &Method::POST,
            ["authn-jwt", _, _, "authenticate"] | ["authn-jwt", _, _, _, "authenticate"],
        ) => route::AUTHN_JWT,
        (&Method::GET, ["secrets"]) => route::BATCH,
        (&Method::GET, ["secrets", _, _, _, ..]) => route::SECRET,
        (&Method::POST, ["secrets", _, _, _, ..]) => route::ADD_SECRET,
        (&Method::GET, ["resources", _]) => route::RESOURCES,
        (&Method::GET, ["whoami"]) => route::WHOAMI,
        _ => {
            return Ok(error(
                404,
                "not_found",
                &format!("No route matches [{method}] \"{raw_path}\""),
            ));
        }
    };
    {
        let mut st = shared.lock();
        *st.counts.entry(route.to_owned()).or_default() += 1;
        if let Some(i) = st
            .faults
            .iter()
            .position(|f| f.route.is_none_or(|r| r == route))
        {
            let fault = st.faults[i].clone();
            match fault.times {
                Some(1) => {
                    let _ = st.faults.remove(i);
                }
                Some(n) => st.faults[i].times = Some(n - 1),
                None => {}
            }
            let mut resp = error(fault.status, "injected", "injected fault");
            if let Some(secs) = fault.retry_after
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            return Ok(resp);
        }
    }
    let now = jiff::Timestamp::now().as_second();
    let resp = match route {
        route::AUTHN => authn(&shared, &segments, &headers, &body, now),
        route::AUTHN_JWT => authn_jwt(&shared, &segments, &headers, &body, now),
        _ => {
            let Some(login) = headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|h| shared.key().check(h, now))
            else {
                return Ok(empty(401));
            };
            let st = shared.lock();
            let Some(role) = st.roles.get(&login).cloned() else {
                return Ok(empty(401));
            };
            drop(st);
            match route {
                route::SECRET => secret(&shared, &role, &segments, &query),
                route::ADD_SECRET => add_secret(&shared, &role, &segments, &body),
                route::BATCH => batch(&shared, &role, &query, &headers),
                route::RESOURCES => resources(&shared, &role, &segments, &query),
                _ => json_response(
                    200,
                    &json!({"client_ip": "127.0.0.1", "account": shared.account,
                            "username": role.login, "token_issued_at": now}),
                ),
            }
        }
    };
    Ok(resp)
}

fn issue(shared: &Shared, login: &str, headers: &HeaderMap, now: i64) -> Response<Full<Bytes>> {
    let ttl = shared.lock().token_ttl;
    let token = shared.key().issue(login, now, now + ttl);
    let base64 = headers
        .get(hyper::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    if base64 {
        let mut resp = respond(200, Some("text/plain"), STANDARD.encode(token).into_bytes());
        resp.headers_mut().insert(
            hyper::header::CONTENT_ENCODING,
            HeaderValue::from_static("base64"),
        );
        resp
    } else {
        respond(200, Some("application/json"), token.into_bytes())
    }
}

fn authn(
    shared: &Shared,
    segments: &[&str],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Response<Full<Bytes>> {
    let account = percent_decode(segments[1], false);
    let login = percent_decode(segments[2], false);
    let ok = account == shared.account
        && shared
            .lock()
            .roles
            .get(&login)
            .is_some_and(|r| r.api_key.as_bytes() == body);
    if ok {
        issue(shared, &login, headers, now)
    } else {
        empty(401)
    }
}

fn authn_jwt(
    shared: &Shared,
    segments: &[&str],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Response<Full<Bytes>> {
    let service = percent_decode(segments[1], false);
    let account = percent_decode(segments[2], false);
    let url_host = (segments.len() == 5).then(|| percent_decode(segments[3], false));
    let form = parse_pairs(&String::from_utf8_lossy(body));
    let Some(jwt) = form.get("jwt").filter(|j| !j.is_empty()) else {
        return empty(401);
    };
    let Some(authenticator) = shared.lock().jwt.get(&service).cloned() else {
        return empty(401);
    };
    if account != shared.account {
        return empty(401);
    }
    let Ok(key) = token::jwt_key() else {
        return error(500, "internal_error", "no JWT key");
    };
    let Some(claims) = token::verify_jwt(&RsaPublicKey::from(&key), jwt) else {
        return empty(401);
    };
    let exp_ok = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| now < exp);
    let iss_ok = authenticator
        .issuer
        .as_deref()
        .is_none_or(|iss| claims.get("iss").and_then(Value::as_str) == Some(iss));
    let aud_ok = authenticator
        .audience
        .as_deref()
        .is_none_or(|aud| match claims.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        });
    if !(exp_ok && iss_ok && aud_ok) {
        return empty(401);
    }
    let host = match (&authenticator.token_app_property, url_host) {
        // With token-app-property the host comes from the token, never from the URL.
        (Some(_), Some(_)) => return empty(401),
        (Some(claim), None) => {
            let Some(value) = claims.get(claim).and_then(Value::as_str) else {
                return empty(401);
            };
            let path = authenticator.identity_path.trim_matches('/');
            if path.is_empty() {
                format!("host/{value}")
            } else {
                format!("host/{path}/{value}")
            }
        }
        (None, Some(host)) => host,
        (None, None) => return empty(401),
    };
    if !shared.lock().roles.contains_key(&host) {
        return empty(401);
    }
    issue(shared, &host, headers, now)
}

/// The variable identifier of `/secrets/{account}/{kind}/{id...}`, if the route names one of
/// this account's variables.
fn variable_id(shared: &Shared, segments: &[&str]) -> Option<String> {
    let account = percent_decode(segments[1], false);
    let kind = percent_decode(segments[2], false);
    (account == shared.account && kind == "variable")
        .then(|| percent_decode(&segments[3..].join("/"), false))
}

fn secret(
    shared: &Shared,
    role: &Role,
    segments: &[&str],
    query: &BTreeMap<String, String>,
) -> Response<Full<Bytes>> {
    let full = format!(
        "{}:{}:{}",
        percent_decode(segments[1], false),
        percent_decode(segments[2], false),
        percent_decode(&segments[3..].join("/"), false)
    );
    let Some(id) = variable_id(shared, segments) else {
        return missing_value(&full);
    };
    let st = shared.lock();
    let Some(variable) = st.variables.get(&id).filter(|_| role.read.covers(&id)) else {
        return missing_value(&full);
    };
    if !role.execute.covers(&id) {
        return empty(403);
    }
    let value = match query.get("version") {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .and_then(|n| variable.values.get(n - 1)),
        None => variable.values.last(),
    };
    let Some(value) = value else {
        return missing_value(&full);
    };
    let mime = variable
        .annotations
        .get("conjur/mime_type")
        .map_or("application/octet-stream", String::as_str);
    respond(200, Some(mime), value.clone())
}

fn add_secret(
    shared: &Shared,
    role: &Role,
    segments: &[&str],
    body: &[u8],
) -> Response<Full<Bytes>> {
    let Some(id) = variable_id(shared, segments) else {
        return error(404, "not_found", "Variable not found");
    };
    let mut st = shared.lock();
    let Some(variable) = st.variables.get_mut(&id).filter(|_| role.read.covers(&id)) else {
        return error(
            404,
            "not_found",
            &format!("Variable '{id}' not found in account '{}'", shared.account),
        );
    };
    if !role.update.covers(&id) {
        return empty(403);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return error(422, "argument_error", "'value' may not be empty");
    }
    variable.values.push(body.to_vec());
    empty(201)
}

fn batch(
    shared: &Shared,
    role: &Role,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let ids: Vec<&str> = query
        .get("variable_ids")
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.iter().any(|i| i.is_empty()) {
        return error(422, "argument_error", "variable_ids");
    }
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    if unique.len() != ids.len() {
        let dups: BTreeSet<&str> = ids
            .iter()
            .copied()
            .filter(|i| ids.iter().filter(|j| *j == i).count() > 1)
            .collect();
        return error(
            422,
            "duplicate_variable",
            &format!(
                "CONJ00039E Variable ID(s) {} appear more than once in the request.",
                dups.into_iter().collect::<Vec<_>>().join(",")
            ),
        );
    }
    let base64 = headers
        .get(hyper::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    let prefix = format!("{}:variable:", shared.account);
    let st = shared.lock();
    let mut found = Vec::new();
    for full in &ids {
        let variable = full
            .strip_prefix(&prefix)
            .filter(|id| role.read.covers(id))
            .and_then(|id| st.variables.get(id).map(|v| (id, v)));
        match variable {
            Some(v) => found.push((*full, v)),
            None => return missing_value(full),
        }
    }
    if found.iter().any(|(_, (id, _))| !role.execute.covers(id)) {
        return empty(403);
    }
    let mut result = serde_json::Map::new();
    for (full, (_, variable)) in found {
        let Some(value) = variable.values.last() else {
            return missing_value(full);
        };
        let text = if base64 {
            encode64(value)
        } else {
            match String::from_utf8(value.clone()) {
                Ok(s) => s,
                Err(_) => {
                    return error(
                        406,
                        "not_acceptable",
                        "CONJ00085E Issue encoding secret into JSON format, try including 'Accept-Encoding: base64' header in request.",
                    );
                }
            }
        };
        result.insert(full.to_owned(), Value::String(text));
    }
    let mut resp = json_response(200, &Value::Object(result));
    if base64 {
        resp.headers_mut().insert(
            hyper::header::CONTENT_ENCODING,
            HeaderValue::from_static("base64"),
        );
    }
    resp
}

fn resources(
    shared: &Shared,
    role: &Role,
    segments: &[&str],
    query: &BTreeMap<String, String>,
) -> Response<Full<Bytes>> {
    if percent_decode(segments[1], false) != shared.account {
        return json_response(200, &json!([]));
    }
    let kind_ok = query.get("kind").is_none_or(|k| k == "variable");
    let search = query.get("search").map(|s| s.to_lowercase());
    let st = shared.lock();
    let policy = format!("{}:policy:root", shared.account);
    let matching: Vec<Value> = st
        .variables
        .iter()
        .filter(|(id, _)| kind_ok && role.read.covers(id))
        .filter(|(id, v)| {
            search.as_deref().is_none_or(|s| {
                id.to_lowercase().contains(s)
                    || v.annotations.values().any(|a| a.to_lowercase().contains(s))
            })
        })
        .map(|(id, v)| {
            json!({
                "created_at": "2026-01-01T00:00:00.000+00:00",
                "id": format!("{}:variable:{id}", shared.account),
                "owner": policy,
                "policy": policy,
                "permissions": [],
                "annotations": v.annotations.iter().map(|(name, value)| {
                    json!({"name": name, "value": value, "policy": policy})
                }).collect::<Vec<_>>(),
                "secrets": (1..=v.values.len()).map(|n| json!({"version": n, "expires_at": null}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    if query.get("count").is_some_and(|c| c == "true") {
        return json_response(200, &json!({"count": matching.len()}));
    }
    let offset: usize = query
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    // Conjur pages by 10 when only an offset is given.
    let limit: Option<usize> = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .or_else(|| query.contains_key("offset").then_some(10));
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    json_response(200, &Value::Array(page))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("host%2Fapps%2Feso", false), "host/apps/eso");
        assert_eq!(percent_decode("a+b%20c", true), "a b c");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
    }

    #[test]
    fn encode64_wraps_like_ruby() {
        let long = vec![b'x'; 50];
        let text = encode64(&long);
        assert!(text.lines().all(|l| l.len() <= 60));
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 2);
    }
}
