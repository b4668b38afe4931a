//! The server: state, routing and GitLab's answers.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use eso_testserver_kit::{accept_loop, parse_pairs, percent_decode, tls_acceptor};

use crate::route;

const MAX_BODY: usize = 1 << 20;

/// A CI/CD variable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Variable {
    key: String,
    value: String,
    scope: String,
    protected: bool,
    masked: bool,
}

impl Variable {
    /// A variable of every environment (`environment_scope: "*"`).
    pub fn new(key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            scope: "*".to_owned(),
            protected: false,
            masked: false,
        }
    }

    /// Its `environment_scope`.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_owned();
        self
    }

    /// Marks it protected and masked (only changes what the API reports).
    pub fn protected(mut self) -> Self {
        self.protected = true;
        self.masked = true;
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "variable_type": "env_var",
            "key": self.key,
            "value": self.value,
            "protected": self.protected,
            "masked": self.masked,
            "hidden": false,
            "raw": false,
            "environment_scope": self.scope,
            "description": null,
        })
    }
}

/// An access token and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Token {
    value: String,
    projects: Option<BTreeSet<u64>>,
    groups: Option<BTreeSet<u64>>,
    maintainer: bool,
}

impl Token {
    /// A token that sees every project and group as a Maintainer.
    pub fn new(value: &str) -> Self {
        Self {
            value: value.to_owned(),
            projects: None,
            groups: None,
            maintainer: true,
        }
    }

    /// Sees only these projects (others are "not found" to it).
    pub fn projects(mut self, ids: &[u64]) -> Self {
        self.projects = Some(ids.iter().copied().collect());
        self
    }

    /// Sees only these groups.
    pub fn groups(mut self, ids: &[u64]) -> Self {
        self.groups = Some(ids.iter().copied().collect());
        self
    }

    /// Sees what it sees with the Reporter role: variables answer 403.
    pub fn reporter(mut self) -> Self {
        self.maintainer = false;
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

#[derive(Debug)]
struct Group {
    full_path: String,
    variables: Vec<Variable>,
}

#[derive(Debug)]
struct Project {
    path: String,
    ancestors: Vec<u64>,
    variables: Vec<Variable>,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<u64, Group>,
    projects: BTreeMap<u64, Project>,
    tokens: BTreeMap<String, Token>,
    faults: Vec<Fault>,
    counts: BTreeMap<String, u64>,
}

struct Shared {
    base_url: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running server; stopped when dropped.
pub struct GitlabTestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    scheme: &'static str,
    accept: JoinHandle<()>,
}

impl Drop for GitlabTestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl GitlabTestServer {
    /// Starts a server on a free port of `127.0.0.1`, over HTTP.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts a server over HTTPS with this certificate chain and key (PEM).
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> std::io::Result<Self> {
        Self::start_with(Some(tls_acceptor(cert_pem, key_pem)?)).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            base_url: format!("{scheme}://{addr}"),
            state: Mutex::new(State::default()),
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

    /// `http://127.0.0.1:PORT` (`https` when started with TLS; the API is under `/api/v4`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Adds a group; returns its id.
    pub fn group(&self, id: u64, full_path: &str) -> u64 {
        self.shared.lock().groups.insert(
            id,
            Group {
                full_path: full_path.to_owned(),
                variables: Vec::new(),
            },
        );
        id
    }

    /// Adds a project under these ancestor groups (root first).
    pub fn project(&self, id: u64, path: &str, ancestors: &[u64]) {
        self.shared.lock().projects.insert(
            id,
            Project {
                path: path.to_owned(),
                ancestors: ancestors.to_vec(),
                variables: Vec::new(),
            },
        );
    }

    /// Adds a variable to a project (which must exist).
    pub fn project_variable(&self, project: u64, variable: Variable) {
        if let Some(p) = self.shared.lock().projects.get_mut(&project) {
            p.variables.push(variable);
        }
    }

    /// Adds a variable to a group (which must exist).
    pub fn group_variable(&self, group: u64, variable: Variable) {
        if let Some(g) = self.shared.lock().groups.get_mut(&group) {
            g.variables.push(variable);
        }
    }

    /// Adds (or replaces) an access token.
    pub fn token(&self, token: Token) {
        self.shared.lock().tokens.insert(token.value.clone(), token);
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

type Resp = Response<Full<Bytes>>;

fn json_response(status: u16, value: &Value) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn message(status: u16, text: &str) -> Resp {
    json_response(status, &json!({ "message": text }))
}

fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// One page of `items` with GitLab's paging headers.
fn paged(base: &str, path: &str, query: &BTreeMap<String, String>, items: Vec<Value>) -> Resp {
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(20)
        .min(100);
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let body: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut resp = json_response(200, &Value::Array(body));
    let link = |p: usize| {
        let mut q: Vec<String> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "page" && k.as_str() != "per_page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("page={p}"));
        q.push(format!("per_page={per_page}"));
        format!("{base}{path}?{}", q.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link(page - 1)));
    }
    if page < total_pages {
        links.push(format!("<{}>; rel=\"next\"", link(page + 1)));
    }
    links.push(format!("<{}>; rel=\"first\"", link(1)));
    links.push(format!("<{}>; rel=\"last\"", link(total_pages)));
    set_header(&mut resp, "link", &links.join(", "));
    set_header(&mut resp, "x-page", &page.to_string());
    set_header(&mut resp, "x-per-page", &per_page.to_string());
    set_header(&mut resp, "x-total", &total.to_string());
    set_header(&mut resp, "x-total-pages", &total_pages.to_string());
    let next = if page < total_pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    set_header(&mut resp, "x-next-page", &next);
    let prev = if page > 1 {
        (page - 1).to_string()
    } else {
        String::new()
    };
    set_header(&mut resp, "x-prev-page", &prev);
    resp
}

// ----- routing -----------------------------------------------------------------------------

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_owned();
    let query = parse_pairs(req.uri().query().unwrap_or_default());
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(message(413, "413 Request Entity Too Large")),
    };
    let Some(rest) = raw_path.strip_prefix("/api/v4/") else {
        return Ok(message(404, "404 Not Found"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let route = match (&method, segments.as_slice()) {
        (&Method::GET, ["projects", _, "variables"]) => route::PROJECT_VARIABLES_LIST,
        (&Method::POST, ["projects", _, "variables"]) => route::PROJECT_VARIABLE_CREATE,
        (&Method::GET, ["projects", _, "variables", _]) => route::PROJECT_VARIABLE_GET,
        (&Method::GET, ["groups", _, "variables"]) => route::GROUP_VARIABLES_LIST,
        (&Method::POST, ["groups", _, "variables"]) => route::GROUP_VARIABLE_CREATE,
        (&Method::GET, ["groups", _, "variables", _]) => route::GROUP_VARIABLE_GET,
        (&Method::GET, ["projects", _, "groups"]) => route::LIST_PROJECTS_GROUPS,
        (&Method::GET, ["user"]) => route::USER,
        _ => return Ok(message(404, "404 Not Found")),
    };
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
        let text = if fault.status == 429 {
            "Retry later".to_owned()
        } else {
            format!("{} injected", fault.status)
        };
        let mut resp = message(fault.status, &text);
        if let Some(secs) = fault.retry_after {
            set_header(&mut resp, "retry-after", &secs.to_string());
        }
        return Ok(resp);
    }
    let Some(token) = token_of(&headers).and_then(|t| st.tokens.get(&t).cloned()) else {
        return Ok(message(401, "401 Unauthorized"));
    };
    if route == route::USER {
        return Ok(json_response(
            200,
            &json!({"id": 1, "username": "eso", "name": "eso", "state": "active"}),
        ));
    }
    let owner = percent_decode(segments[1], false);
    let is_project = segments[0] == "projects";
    let resp = if is_project {
        let found = st
            .projects
            .iter()
            .find(|(id, p)| id.to_string() == owner || p.path == owner)
            .map(|(id, _)| *id)
            .filter(|id| token.projects.as_ref().is_none_or(|s| s.contains(id)));
        let Some(id) = found else {
            return Ok(message(404, "404 Project Not Found"));
        };
        if route == route::LIST_PROJECTS_GROUPS {
            let ancestors = st
                .projects
                .get(&id)
                .map(|p| p.ancestors.clone())
                .unwrap_or_default();
            // Nearest parent first: callers must not rely on the order.
            let groups: Vec<Value> = ancestors
                .iter()
                .rev()
                .filter_map(|g| st.groups.get(g).map(|group| (g, group)))
                .map(|(g, group)| {
                    let name = group.full_path.rsplit('/').next().unwrap_or_default();
                    json!({"id": g, "name": name, "full_name": group.full_path,
                           "full_path": group.full_path, "avatar_url": null,
                           "web_url": format!("{}/groups/{}", shared.base_url, group.full_path)})
                })
                .collect();
            return Ok(paged(&shared.base_url, &raw_path, &query, groups));
        }
        if !token.maintainer {
            return Ok(message(403, "403 Forbidden"));
        }
        let Some(project) = st.projects.get_mut(&id) else {
            return Ok(message(404, "404 Project Not Found"));
        };
        variables(
            &shared.base_url,
            &raw_path,
            route,
            &segments,
            &query,
            &headers,
            &body,
            &mut project.variables,
        )
    } else {
        let found = st
            .groups
            .iter()
            .find(|(id, g)| id.to_string() == owner || g.full_path == owner)
            .map(|(id, _)| *id)
            .filter(|id| token.groups.as_ref().is_none_or(|s| s.contains(id)));
        let Some(id) = found else {
            return Ok(message(404, "404 Group Not Found"));
        };
        if !token.maintainer {
            return Ok(message(403, "403 Forbidden"));
        }
        let Some(group) = st.groups.get_mut(&id) else {
            return Ok(message(404, "404 Group Not Found"));
        };
        variables(
            &shared.base_url,
            &raw_path,
            route,
            &segments,
            &query,
            &headers,
            &body,
            &mut group.variables,
        )
    };
    Ok(resp)
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("private-token").and_then(|v| v.to_str().ok()) {
        return Some(t.to_owned());
    }
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

#[allow(clippy::too_many_arguments)]
fn variables(
    base: &str,
    path: &str,
    route: &str,
    segments: &[&str],
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
    vars: &mut Vec<Variable>,
) -> Resp {
    match route {
        route::PROJECT_VARIABLES_LIST | route::GROUP_VARIABLES_LIST => paged(
            base,
            path,
            query,
            vars.iter().map(Variable::to_json).collect(),
        ),
        route::PROJECT_VARIABLE_GET | route::GROUP_VARIABLE_GET => {
            let key = percent_decode(segments[3], false);
            let filter = query.get("filter[environment_scope]");
            let matching: Vec<&Variable> = vars
                .iter()
                .filter(|v| v.key == key && filter.is_none_or(|f| *f == v.scope))
                .collect();
            match matching.as_slice() {
                [] => message(404, "404 Variable Not Found"),
                [one] => json_response(200, &one.to_json()),
                _ => message(
                    409,
                    "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'",
                ),
            }
        }
        _ => {
            let is_json = headers
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("application/json"));
            let fields: BTreeMap<String, String> = if is_json {
                serde_json::from_slice::<BTreeMap<String, Value>>(body)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        (k, text)
                    })
                    .collect()
            } else {
                parse_pairs(&String::from_utf8_lossy(body))
            };
            let Some(key) = fields.get("key").filter(|k| !k.is_empty()) else {
                return json_response(400, &json!({"error": "key is missing"}));
            };
            let Some(value) = fields.get("value") else {
                return json_response(400, &json!({"error": "value is missing"}));
            };
            let scope = fields
                .get("environment_scope")
                .cloned()
                .unwrap_or_else(|| "*".to_owned());
            if vars.iter().any(|v| &v.key == key && v.scope == scope) {
                return json_response(
                    400,
                    &json!({"message": {"key": [format!("({key}) has already been taken")]}}),
                );
            }
            let mut variable = Variable::new(key, value).scope(&scope);
            variable.protected = fields.get("protected").is_some_and(|p| p == "true");
            variable.masked = fields.get("masked").is_some_and(|p| p == "true");
            let out = variable.to_json();
            vars.push(variable);
            json_response(201, &out)
        }
    }
}
