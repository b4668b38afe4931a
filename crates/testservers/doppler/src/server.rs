//! The server handle, its state, request dispatch, and the seeding and inspection API tests
//! use.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hyper::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::method;
use crate::transform;
use eso_testserver_kit::{Body, Fault, Faults, Req, full, json_response, serve};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The method name ([`crate::method`]).
    pub method: String,
    /// The answer's status.
    pub status: u16,
    /// How the token came: `Bearer` or `Basic` (`None` without one).
    pub auth_scheme: Option<String>,
    /// The `If-None-Match` header, if sent.
    pub if_none_match: Option<String>,
}

#[derive(Debug, Clone)]
enum Token {
    /// A personal or service-account token: any project and config, which must be named.
    Personal,
    /// A service token, bound to one config.
    Service { project: String, config: String },
    /// A token from an OIDC exchange.
    Oidc { identity: String, expires: Instant },
}

/// A config: its environment and its secrets (name -> raw value).
type Config = (String, BTreeMap<String, String>);

#[derive(Debug, Default)]
struct State {
    /// project -> config name -> config.
    projects: BTreeMap<String, BTreeMap<String, Config>>,
    tokens: BTreeMap<String, Token>,
    /// OIDC identity -> the subject tokens it accepts.
    identities: BTreeMap<String, Vec<String>>,
    oidc_ttl: Option<Duration>,
    calls: Vec<CallRecord>,
    counter: u64,
}

struct Shared {
    state: Mutex<State>,
    faults: Mutex<Faults>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A local Doppler API server on `127.0.0.1` (HTTP). Dropping it stops it.
pub struct DopplerTestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for DopplerTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DopplerTestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for DopplerTestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl DopplerTestServer {
    /// Starts a server on a free port of `127.0.0.1`.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            faults: Mutex::new(Faults::default()),
        });
        let handler_shared = shared.clone();
        let (addr, accept) = serve(move |req| handle(&handler_shared, &req)).await?;
        Ok(Self {
            shared,
            addr,
            accept,
        })
    }

    /// The API base URL (`http://127.0.0.1:PORT`), what `api.doppler.com` stands for.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a config (and its project); its environment is the config name up to the first
    /// `_` (`prd_backend` is in `prd`).
    pub fn config(&self, project: &str, config: &str) {
        let env = config.split('_').next().unwrap_or(config).to_owned();
        self.shared
            .state()
            .projects
            .entry(project.to_owned())
            .or_default()
            .entry(config.to_owned())
            .or_insert_with(|| (env, BTreeMap::new()));
    }

    /// Sets a secret (creating the config).
    pub fn secret(&self, project: &str, config: &str, name: &str, value: &str) {
        self.config(project, config);
        if let Some((_, s)) = self
            .shared
            .state()
            .projects
            .get_mut(project)
            .and_then(|p| p.get_mut(config))
        {
            s.insert(name.to_owned(), value.to_owned());
        }
    }

    /// A secret's raw value, for assertions.
    #[must_use]
    pub fn value(&self, project: &str, config: &str, name: &str) -> Option<String> {
        self.shared
            .state()
            .projects
            .get(project)
            .and_then(|p| p.get(config))
            .and_then(|(_, s)| s.get(name).cloned())
    }

    fn issue(&self, prefix: &str, token: Token) -> String {
        let mut st = self.shared.state();
        st.counter += 1;
        let t = format!(
            "dp.{prefix}.{:040x}",
            u128::from(st.counter) * 0x9e37_79b9_7f4a_7c15
        );
        st.tokens.insert(t.clone(), token);
        t
    }

    /// A service token for one config (`dp.st.…`).
    pub fn service_token(&self, project: &str, config: &str) -> String {
        self.issue(
            "st",
            Token::Service {
                project: project.to_owned(),
                config: config.to_owned(),
            },
        )
    }

    /// A personal token (`dp.pt.…`), which must name project and config.
    pub fn personal_token(&self) -> String {
        self.issue("pt", Token::Personal)
    }

    /// Registers an OIDC service account identity that accepts `subject_token`.
    pub fn oidc_identity(&self, identity: &str, subject_token: &str) {
        self.shared
            .state()
            .identities
            .entry(identity.to_owned())
            .or_default()
            .push(subject_token.to_owned());
    }

    /// The lifetime of tokens the OIDC exchange issues (default one hour).
    pub fn set_oidc_ttl(&self, ttl: Duration) {
        self.shared.state().oidc_ttl = Some(ttl);
    }

    /// Revokes every token.
    pub fn revoke_tokens(&self) {
        self.shared.state().tokens.clear();
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults().push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// How many requests of `method` were made.
    #[must_use]
    pub fn count(&self, method: &str) -> usize {
        self.shared
            .state()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Every request so far.
    #[must_use]
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.state().calls.clone()
    }
}

/// A failed request, answered in Doppler's error shape `{"messages": [...], "success": false}`.
#[derive(Debug)]
struct ApiError {
    status: u16,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn response(self) -> Response<Body> {
        let mut r = json_response(
            self.status,
            &json!({"messages": [self.message], "success": false}),
        );
        if self.status == 429 {
            let h = r.headers_mut();
            h.insert(
                "x-ratelimit-limit",
                hyper::header::HeaderValue::from_static("240"),
            );
            h.insert(
                "x-ratelimit-remaining",
                hyper::header::HeaderValue::from_static("0"),
            );
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        r
    }
}

enum Answer {
    Json(Value),
    Download {
        body: String,
        content_type: &'static str,
        etag: String,
    },
    NotModified(String),
}

fn route(req: &Req) -> &'static str {
    match (&req.method, req.path.trim_end_matches('/')) {
        (&Method::GET, "/v3/configs/config/secrets/download") => method::DOWNLOAD,
        (&Method::GET, "/v3/configs/config/secrets") => method::LIST_SECRETS,
        (&Method::POST, "/v3/configs/config/secrets") => method::UPDATE_SECRETS,
        (&Method::GET, "/v3/configs/config/secret") => method::GET_SECRET,
        (&Method::DELETE, "/v3/configs/config/secret") => method::DELETE_SECRET,
        (&Method::GET, "/v3/projects") => method::LIST_PROJECTS,
        (&Method::GET, "/v3/me") => method::ME,
        (&Method::POST, "/v3/auth/oidc") => method::OIDC_AUTH,
        _ => method::UNKNOWN,
    }
}

/// The token of a request: `Authorization: Bearer T`, or Basic with `T` as user name.
fn token_of(req: &Req) -> Option<(String, &'static str)> {
    let v = req
        .headers
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((rest.trim().to_owned(), "Bearer"));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
        return Some((user.to_owned(), "Basic"));
    }
    None
}

fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    let name = route(req);
    let resource = req
        .query
        .get("secrets")
        .or_else(|| req.query.get("name"))
        .or_else(|| req.query.get("config"))
        .cloned();
    let if_none_match = req
        .headers
        .get(hyper::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let auth_scheme = token_of(req).map(|(_, s)| s.to_owned());
    let answer = match shared
        .faults()
        .take(name, |r| Some(r) == resource.as_deref())
    {
        Some(fault) => Err(ApiError {
            status: fault.status_code(),
            message: fault.message_text().map_or_else(
                || match fault.status_code() {
                    429 => "Rate limit exceeded".to_owned(),
                    401 => "Invalid Auth token".to_owned(),
                    s => format!("Injected fault {s}"),
                },
                str::to_owned,
            ),
            retry_after: fault.retry_after_secs(),
        }),
        None => dispatch(&mut shared.state(), req, name),
    };
    let response = match answer {
        Ok(Answer::Json(v)) => json_response(200, &v),
        Ok(Answer::Download {
            body,
            content_type,
            etag,
        }) => {
            let mut r = full(200, Bytes::from(body), content_type);
            if let Ok(v) = etag.parse() {
                r.headers_mut().insert(hyper::header::ETAG, v);
            }
            r
        }
        Ok(Answer::NotModified(etag)) => {
            let mut r = full(304, Bytes::new(), "application/json");
            if let Ok(v) = etag.parse() {
                r.headers_mut().insert(hyper::header::ETAG, v);
            }
            r
        }
        Err(e) => e.response(),
    };
    shared.state().calls.push(CallRecord {
        method: name.to_owned(),
        status: response.status().as_u16(),
        auth_scheme,
        if_none_match,
    });
    response
}

fn now_plus(ttl: Duration) -> String {
    let secs = i64::try_from(ttl.as_secs()).unwrap_or(3600);
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn dispatch(st: &mut State, req: &Req, name: &str) -> Result<Answer, ApiError> {
    if name == method::UNKNOWN {
        return Err(ApiError::new(404, "Not Found"));
    }
    if name == method::OIDC_AUTH {
        let body = req
            .json()
            .ok_or_else(|| ApiError::new(400, "Invalid JSON body"))?;
        let identity = body
            .get("identity")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let subject = body
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let accepted = st
            .identities
            .get(identity)
            .is_some_and(|tokens| tokens.iter().any(|t| t == subject));
        if !accepted {
            return Err(ApiError::new(
                401,
                "Unable to authenticate: the identity does not trust this token",
            ));
        }
        let ttl = st.oidc_ttl.unwrap_or(Duration::from_secs(3600));
        st.counter += 1;
        let token = format!(
            "dp.said.{:040x}",
            u128::from(st.counter) * 0x5851_f42d_4c95_7f2d
        );
        st.tokens.insert(
            token.clone(),
            Token::Oidc {
                identity: identity.to_owned(),
                expires: Instant::now() + ttl,
            },
        );
        return Ok(Answer::Json(
            json!({"success": true, "token": token, "expires_at": now_plus(ttl)}),
        ));
    }
    let (token, _) = token_of(req).ok_or_else(|| ApiError::new(401, "Invalid Auth token"))?;
    let kind = st
        .tokens
        .get(&token)
        .cloned()
        .filter(|t| !matches!(t, Token::Oidc { expires, .. } if *expires <= Instant::now()))
        .ok_or_else(|| ApiError::new(401, "Invalid Auth token"))?;
    if name == method::ME {
        let (kind_name, extra) = match &kind {
            Token::Personal => ("personal_token", json!(null)),
            Token::Service { project, config } => (
                "service_token",
                json!({"project": project, "config": config}),
            ),
            Token::Oidc { identity, .. } => ("service_account", json!({"identity": identity})),
        };
        return Ok(Answer::Json(json!({
            "workplace": {"slug": "eso-test", "name": "eso-test"},
            "type": kind_name,
            "token_preview": format!("{}…", &token[..token.len().min(10)]),
            "name": "eso-rs test token",
            "detail": extra,
        })));
    }
    if name == method::LIST_PROJECTS {
        let list: Vec<Value> = st
            .projects
            .keys()
            .filter(|p| match &kind {
                Token::Service { project, .. } => project == *p,
                _ => true,
            })
            .map(|p| {
                json!({"id": p, "slug": p, "name": p, "description": "", "created_at": "2026-01-01T00:00:00.000Z"})
            })
            .collect();
        return Ok(Answer::Json(
            json!({"projects": list, "page": 1, "success": true}),
        ));
    }
    // Every other route is about one config: named, or the service token's.
    let body = if req.method == Method::POST {
        req.json()
            .ok_or_else(|| ApiError::new(400, "Invalid JSON body"))?
    } else {
        Value::Null
    };
    let param = |k: &str| {
        req.query
            .get(k)
            .cloned()
            .or_else(|| body.get(k).and_then(Value::as_str).map(str::to_owned))
            .filter(|v| !v.is_empty())
    };
    let (project, config) = match &kind {
        Token::Service { project, config } => {
            let (p, c) = (param("project"), param("config"));
            if p.as_ref().is_some_and(|p| p != project) || c.as_ref().is_some_and(|c| c != config) {
                return Err(ApiError::new(
                    403,
                    format!(
                        "This token does not have access to requested config '{}'",
                        c.unwrap_or_else(|| config.clone())
                    ),
                ));
            }
            (project.clone(), config.clone())
        }
        _ => (
            param("project").ok_or_else(|| ApiError::new(400, "You must specify a project"))?,
            param("config").ok_or_else(|| ApiError::new(400, "You must specify a config"))?,
        ),
    };
    let Some(project_configs) = st.projects.get_mut(&project) else {
        return Err(ApiError::new(404, "Could not find requested project"));
    };
    let Some((environment, secrets)) = project_configs.get_mut(&config) else {
        return Err(ApiError::new(
            404,
            format!("Could not find requested config '{config}'"),
        ));
    };
    match name {
        method::DOWNLOAD => {
            let transformer = req.query.get("name_transformer").filter(|t| !t.is_empty());
            let format = req
                .query
                .get("format")
                .map_or("json", String::as_str)
                .to_owned();
            let wanted: Option<Vec<&str>> = req
                .query
                .get("secrets")
                .filter(|s| !s.is_empty())
                .map(|s| s.split(',').map(str::trim).collect());
            let mut out: BTreeMap<String, String> = BTreeMap::new();
            let with_meta = secrets.iter().map(|(k, v)| (k.clone(), v.clone())).chain([
                ("DOPPLER_CONFIG".to_owned(), config.clone()),
                ("DOPPLER_ENVIRONMENT".to_owned(), environment.clone()),
                ("DOPPLER_PROJECT".to_owned(), project.clone()),
            ]);
            for (k, v) in with_meta {
                if wanted.as_ref().is_some_and(|w| !w.contains(&k.as_str())) {
                    continue;
                }
                let computed = expand(secrets, &v, 0);
                let key = match transformer {
                    Some(t) => transform::transform(&k, t).ok_or_else(|| {
                        ApiError::new(400, format!("Invalid name transformer: {t}"))
                    })?,
                    None => k,
                };
                out.insert(key, computed);
            }
            let (body, content_type) = transform::render(&out, &format)
                .ok_or_else(|| ApiError::new(400, format!("Invalid format: {format}")))?;
            let digest = Sha256::digest(body.as_bytes());
            let etag = format!(
                "W/\"{}\"",
                digest
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            let sent = req
                .headers
                .get(hyper::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok());
            if sent == Some(etag.as_str()) {
                return Ok(Answer::NotModified(etag));
            }
            Ok(Answer::Download {
                body,
                content_type,
                etag,
            })
        }
        method::LIST_SECRETS => Ok(Answer::Json(json!({
            "success": true,
            "secrets": secrets.iter().map(|(k, v)| (k.clone(), secret_json(secrets, v))).collect::<serde_json::Map<_, _>>(),
        }))),
        method::GET_SECRET => {
            let n = param("name").ok_or_else(|| ApiError::new(400, "You must specify a name"))?;
            let v = secrets
                .get(&n)
                .ok_or_else(|| ApiError::new(404, "Could not find requested secret"))?;
            Ok(Answer::Json(
                json!({"success": true, "name": n, "value": secret_json(secrets, v)}),
            ))
        }
        method::DELETE_SECRET => {
            let n = param("name").ok_or_else(|| ApiError::new(400, "You must specify a name"))?;
            if matches!(kind, Token::Service { .. }) {
                return Err(ApiError::new(403, "Service tokens are read-only"));
            }
            secrets
                .remove(&n)
                .ok_or_else(|| ApiError::new(404, "Could not find requested secret"))?;
            Ok(Answer::Json(json!({"success": true})))
        }
        _ => {
            // UPDATE_SECRETS
            if matches!(kind, Token::Service { .. }) {
                return Err(ApiError::new(403, "Service tokens are read-only"));
            }
            if let Some(map) = body.get("secrets").and_then(Value::as_object) {
                for (k, v) in map {
                    let Some(v) = v.as_str() else {
                        return Err(ApiError::new(400, format!("Secret '{k}' must be a string")));
                    };
                    check_name(k)?;
                    secrets.insert(k.clone(), v.to_owned());
                }
            }
            for change in body
                .get("change_requests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let n = change
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let original = change
                    .get("originalName")
                    .and_then(Value::as_str)
                    .unwrap_or(n);
                if change.get("shouldDelete").and_then(Value::as_bool) == Some(true) {
                    if secrets.remove(original).is_none() {
                        return Err(ApiError::new(
                            400,
                            format!("Secret '{original}' does not exist and cannot be deleted"),
                        ));
                    }
                    continue;
                }
                check_name(n)?;
                let value = match change.get("value") {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => secrets.get(original).cloned(),
                };
                if original != n {
                    secrets.remove(original);
                }
                if let Some(v) = value {
                    secrets.insert(n.to_owned(), v);
                }
            }
            Ok(Answer::Json(json!({
                "success": true,
                "secrets": secrets.iter().map(|(k, v)| (k.clone(), secret_json(secrets, v))).collect::<serde_json::Map<_, _>>(),
            })))
        }
    }
}

/// Doppler's rule: names are upper-case letters, digits and underscores, not starting with a
/// digit.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            format!(
                "Secret name '{name}' must only contain uppercase letters, numbers, and underscores"
            ),
        ))
    }
}

fn secret_json(all: &BTreeMap<String, String>, raw: &str) -> Value {
    json!({
        "raw": raw,
        "computed": expand(all, raw, 0),
        "note": "",
        "rawVisibility": "masked",
        "computedVisibility": "masked",
    })
}

/// Doppler's `${NAME}` references to secrets of the same config (others are left as written).
fn expand(all: &BTreeMap<String, String>, value: &str, depth: u8) -> String {
    if depth > 5 || !value.contains("${") {
        return value.to_owned();
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        match all.get(&after[..end]) {
            Some(v) => out.push_str(&expand(all, v, depth + 1)),
            None => out.push_str(&rest[start..start + end + 3]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_names() {
        let all: BTreeMap<String, String> = [
            ("HOST".to_owned(), "db".to_owned()),
            ("URL".to_owned(), "pg://${HOST}/${X}".to_owned()),
        ]
        .into();
        assert_eq!(expand(&all, "pg://${HOST}/${X}", 0), "pg://db/${X}");
        assert!(check_name("API_KEY_2").is_ok());
        assert!(check_name("api_key").is_err());
        assert!(check_name("2FA").is_err());
    }
}
