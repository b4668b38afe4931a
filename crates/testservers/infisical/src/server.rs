//! The server handle, request dispatch, and the seeding and inspection API tests use.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::{Method, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::method;
use crate::state::{
    CallRecord, FolderKey, Identity, Project, Secret, SecretKey, State, is_under, normalize_path,
};
use eso_testserver_kit::{Body, Fault, Faults, Req, json_response, percent_decode, serve};

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

/// A local Infisical server on `127.0.0.1` (HTTP). Dropping it stops it.
pub struct InfisicalTestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for InfisicalTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfisicalTestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for InfisicalTestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The credentials of a machine identity, as [`InfisicalTestServer::identity`] made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCredentials {
    /// The identity's ID (what every login method but Universal Auth names).
    pub identity_id: String,
    /// The Universal Auth client ID.
    pub client_id: String,
    /// The Universal Auth client secret.
    pub client_secret: String,
}

impl InfisicalTestServer {
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

    /// The site URL (`http://127.0.0.1:PORT`); the API is under `{url}/api`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API base URL (`{url}/api`), what a store's `hostAPI` names.
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url())
    }

    /// Creates a project with the given environments (each with its root folder); returns its
    /// ID.
    pub fn project(&self, slug: &str, environments: &[&str]) -> String {
        let mut st = self.shared.state();
        let id = st.uuid();
        for env in environments {
            st.folders
                .insert((id.clone(), (*env).to_owned(), "/".to_owned()));
        }
        st.projects.insert(
            id.clone(),
            Project {
                id: id.clone(),
                slug: slug.to_owned(),
                environments: environments.iter().map(|e| (*e).to_owned()).collect(),
            },
        );
        id
    }

    fn project_id(st: &State, slug: &str) -> String {
        st.project_by_slug(slug)
            .map(|p| p.id.clone())
            .unwrap_or_else(|| slug.to_owned())
    }

    /// Creates a folder (and its parents) in a project's environment.
    pub fn folder(&self, project_slug: &str, env: &str, path: &str) {
        let mut st = self.shared.state();
        let id = Self::project_id(&st, project_slug);
        let path = normalize_path(path);
        let mut current = String::new();
        st.folders
            .insert((id.clone(), env.to_owned(), "/".to_owned()));
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            current.push('/');
            current.push_str(segment);
            st.folders
                .insert((id.clone(), env.to_owned(), current.clone()));
        }
    }

    /// Sets a secret (creating its folder; a new value is a new version).
    pub fn secret(&self, project_slug: &str, env: &str, path: &str, key: &str, value: &str) {
        self.folder(project_slug, env, path);
        let mut st = self.shared.state();
        let id = Self::project_id(&st, project_slug);
        let now = jiff::Timestamp::now().to_string();
        let key = (id, env.to_owned(), normalize_path(path), key.to_owned());
        if let Some(s) = st.secrets.get_mut(&key) {
            s.values.push(value.to_owned());
            s.updated_at = now;
            return;
        }
        let secret_id = st.uuid();
        st.secrets.insert(
            key,
            Secret {
                id: secret_id,
                values: vec![value.to_owned()],
                comment: String::new(),
                skip_multiline_encoding: false,
                created_at: now.clone(),
                updated_at: now,
            },
        );
    }

    /// The current value of a secret, for assertions.
    #[must_use]
    pub fn value(&self, project_slug: &str, env: &str, path: &str, key: &str) -> Option<String> {
        let st = self.shared.state();
        let id = Self::project_id(&st, project_slug);
        st.secrets
            .get(&(id, env.to_owned(), normalize_path(path), key.to_owned()))
            .map(|s| s.value().to_owned())
    }

    /// The number of versions of a secret (0 when it does not exist).
    #[must_use]
    pub fn versions(&self, project_slug: &str, env: &str, path: &str, key: &str) -> usize {
        let st = self.shared.state();
        let id = Self::project_id(&st, project_slug);
        st.secrets
            .get(&(id, env.to_owned(), normalize_path(path), key.to_owned()))
            .map_or(0, |s| s.values.len())
    }

    /// Makes folder `path` of `env` import folder `from_path` of `from_env` (same project).
    pub fn import(
        &self,
        project_slug: &str,
        env: &str,
        path: &str,
        from_env: &str,
        from_path: &str,
    ) {
        let mut st = self.shared.state();
        let id = Self::project_id(&st, project_slug);
        st.imports
            .entry((id, env.to_owned(), normalize_path(path)))
            .or_default()
            .push((from_env.to_owned(), normalize_path(from_path)));
    }

    /// Creates a machine identity with Universal Auth credentials; other login methods are
    /// added with [`allow_jwt`](Self::allow_jwt), [`allow_kubernetes_token`](Self::allow_kubernetes_token)
    /// and [`allow_ldap`](Self::allow_ldap).
    pub fn identity(&self, name: &str) -> IdentityCredentials {
        let mut st = self.shared.state();
        let identity_id = st.uuid();
        let client_id = st.uuid();
        let n = st.next();
        let client_secret = format!("{:064x}", u128::from(n) * 0x5851_f42d_4c95_7f2d);
        st.identities.insert(
            identity_id.clone(),
            Identity {
                name: name.to_owned(),
                client_id: Some(client_id.clone()),
                client_secret: Some(client_secret.clone()),
                ..Identity::default()
            },
        );
        IdentityCredentials {
            identity_id,
            client_id,
            client_secret,
        }
    }

    fn with_identity(&self, identity_id: &str, f: impl FnOnce(&mut Identity)) {
        if let Some(i) = self.shared.state().identities.get_mut(identity_id) {
            f(i);
        }
    }

    /// Lets `jwt` log in as the identity through JWT auth.
    pub fn allow_jwt(&self, identity_id: &str, jwt: &str) {
        self.with_identity(identity_id, |i| {
            i.jwts.insert(jwt.to_owned());
        });
    }

    /// Lets a ServiceAccount token log in as the identity through Kubernetes auth.
    pub fn allow_kubernetes_token(&self, identity_id: &str, token: &str) {
        self.with_identity(identity_id, |i| {
            i.kubernetes_tokens.insert(token.to_owned());
        });
    }

    /// Lets a directory user log in as the identity through LDAP auth.
    pub fn allow_ldap(&self, identity_id: &str, username: &str, password: &str) {
        self.with_identity(identity_id, |i| {
            i.ldap = Some((username.to_owned(), password.to_owned()));
        });
    }

    /// Denies the identity every secret operation on a project (403).
    pub fn deny(&self, identity_id: &str, project_slug: &str) {
        let id = Self::project_id(&self.shared.state(), project_slug);
        self.with_identity(identity_id, |i| {
            i.denied_projects.insert(id);
        });
    }

    /// An access token for the identity, as token auth uses one.
    #[must_use]
    pub fn access_token(&self, identity_id: &str) -> String {
        self.shared.state().issue_token(identity_id).0
    }

    /// The lifetime of tokens issued from now on (default two hours).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.shared.state().token_ttl = ttl;
    }

    /// Invalidates every access token issued so far (as if they had expired).
    pub fn expire_tokens(&self) {
        self.shared.state().tokens.clear();
    }

    /// The number of live access tokens.
    #[must_use]
    pub fn live_tokens(&self) -> usize {
        self.shared.state().tokens.len()
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

/// A failed request, answered in Infisical's error shape.
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

    fn name(status: u16) -> &'static str {
        match status {
            400 => "BadRequest",
            401 => "UnauthorizedError",
            403 => "PermissionDenied",
            404 => "NotFound",
            422 => "ValidationFailure",
            429 => "Too Many Requests",
            503 => "ServiceUnavailable",
            _ => "InternalServerError",
        }
    }

    fn response(self, req_id: u64) -> Response<Body> {
        let mut r = json_response(
            self.status,
            &json!({
                "reqId": format!("req-{req_id:016x}"),
                "statusCode": self.status,
                "message": self.message,
                "error": Self::name(self.status),
            }),
        );
        if let Some(secs) = self.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        r
    }
}

type Answer = Result<Value, ApiError>;

/// The route a request takes: its method name and, for secret routes, the secret name.
fn route(req: &Req) -> (&'static str, Option<String>) {
    let path = req.path.trim_end_matches('/');
    let m = &req.method;
    if let Some(name) = path.strip_prefix("/api/v3/secrets/raw/") {
        let name = percent_decode(name, false);
        let method = match *m {
            Method::GET => method::GET_SECRET,
            Method::POST => method::CREATE_SECRET,
            Method::PATCH => method::UPDATE_SECRET,
            Method::DELETE => method::DELETE_SECRET,
            _ => method::UNKNOWN,
        };
        return (method, Some(name));
    }
    let method = match (m, path) {
        (&Method::GET, "/api/v3/secrets/raw") => method::LIST_SECRETS,
        (&Method::POST, "/api/v1/auth/universal-auth/login") => method::UNIVERSAL_AUTH_LOGIN,
        (&Method::POST, "/api/v1/auth/jwt-auth/login") => method::JWT_AUTH_LOGIN,
        (&Method::POST, "/api/v1/auth/kubernetes-auth/login") => method::KUBERNETES_AUTH_LOGIN,
        (&Method::POST, "/api/v1/auth/ldap-auth/login") => method::LDAP_AUTH_LOGIN,
        (&Method::POST, "/api/v1/auth/token/revoke") => method::REVOKE_TOKEN,
        (&Method::GET, p) if p.starts_with("/api/v1/projects/slug/") => method::GET_PROJECT,
        _ => method::UNKNOWN,
    };
    let slug = path
        .strip_prefix("/api/v1/projects/slug/")
        .map(|s| percent_decode(s, false));
    (method, slug)
}

fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    let (method, name) = route(req);
    let req_id = shared.state().next();
    let identity = req.bearer().and_then(|t| {
        let st = shared.state();
        let id = st.identity_of(t)?;
        st.identities.get(&id).map(|i| i.name.clone())
    });
    let answer = match shared.faults().take(method, |r| Some(r) == name.as_deref()) {
        Some(fault) => Err(ApiError {
            status: fault.status_code(),
            message: fault.message_text().map_or_else(
                || match fault.status_code() {
                    429 => "Rate limit exceeded. Please try again in 1 minute".to_owned(),
                    503 => "Service Unavailable".to_owned(),
                    s => format!("Injected fault {s} for {method}"),
                },
                str::to_owned,
            ),
            retry_after: fault.retry_after_secs(),
        }),
        None => dispatch(shared, req, method, name.as_deref()),
    };
    let response = match answer {
        Ok(v) => json_response(200, &v),
        Err(e) => e.response(req_id),
    };
    shared.state().calls.push(CallRecord {
        method: method.to_owned(),
        status: response.status().as_u16(),
        identity,
    });
    response
}

fn dispatch(shared: &Shared, req: &Req, method: &'static str, name: Option<&str>) -> Answer {
    let mut st = shared.state();
    match method {
        method::UNIVERSAL_AUTH_LOGIN
        | method::JWT_AUTH_LOGIN
        | method::KUBERNETES_AUTH_LOGIN
        | method::LDAP_AUTH_LOGIN => login(&mut st, req, method),
        method::UNKNOWN => Err(ApiError {
            status: 404,
            message: format!("Route {}:{} not found", req.method, req.path),
            retry_after: None,
        }),
        _ => {
            let identity = authenticate(&st, req)?;
            match method {
                method::REVOKE_TOKEN => {
                    let named = req
                        .json()
                        .and_then(|b| body_str(&b, "accessToken").map(str::to_owned));
                    if let Some(t) = named.as_deref().or(req.bearer()) {
                        st.tokens.remove(t);
                    }
                    Ok(json!({"message": "Successfully revoked access token"}))
                }
                method::GET_PROJECT => get_project(&st, &identity, name.unwrap_or_default()),
                method::LIST_SECRETS => list_secrets(&st, &identity, req),
                method::GET_SECRET => get_secret(&st, &identity, req, name.unwrap_or_default()),
                _ => write_secret(&mut st, &identity, req, method, name.unwrap_or_default()),
            }
        }
    }
}

fn body_str<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn login(st: &mut State, req: &Req, method: &str) -> Answer {
    let body = req
        .json()
        .ok_or_else(|| ApiError::new(400, "Body is not valid JSON"))?;
    let found = st.identities.iter().find_map(|(id, i)| {
        let ok = match method {
            method::UNIVERSAL_AUTH_LOGIN => {
                i.client_id.as_deref() == body_str(&body, "clientId")
                    && i.client_secret.as_deref() == body_str(&body, "clientSecret")
                    && i.client_id.is_some()
            }
            _ if body_str(&body, "identityId") != Some(id.as_str()) => false,
            method::JWT_AUTH_LOGIN => body_str(&body, "jwt").is_some_and(|j| i.jwts.contains(j)),
            method::KUBERNETES_AUTH_LOGIN => {
                body_str(&body, "jwt").is_some_and(|j| i.kubernetes_tokens.contains(j))
            }
            _ => i.ldap.as_ref().is_some_and(|(u, p)| {
                body_str(&body, "username") == Some(u.as_str())
                    && body_str(&body, "password") == Some(p.as_str())
            }),
        };
        ok.then(|| id.clone())
    });
    let Some(identity) = found else {
        return Err(ApiError::new(401, "Invalid credentials"));
    };
    let (token, ttl) = st.issue_token(&identity);
    Ok(json!({
        "accessToken": token,
        "expiresIn": ttl,
        "accessTokenMaxTTL": ttl,
        "tokenType": "Bearer",
    }))
}

fn authenticate(st: &State, req: &Req) -> Result<String, ApiError> {
    let token = req
        .bearer()
        .ok_or_else(|| ApiError::new(401, "Missing Authorization Header in the request header."))?;
    st.identity_of(token)
        .ok_or_else(|| ApiError::new(401, "Invalid token: token has expired or was revoked"))
}

fn check_access(
    st: &State,
    identity: &str,
    project: &Project,
    action: &str,
) -> Result<(), ApiError> {
    let denied = st
        .identities
        .get(identity)
        .is_some_and(|i| i.denied_projects.contains(&project.id));
    if denied {
        return Err(ApiError::new(
            403,
            format!("You are not allowed to {action} on secrets"),
        ));
    }
    Ok(())
}

fn get_project(st: &State, identity: &str, slug: &str) -> Answer {
    let project = st
        .project_by_slug(slug)
        .ok_or_else(|| ApiError::new(404, format!("Project with slug '{slug}' not found")))?;
    check_access(st, identity, project, "read")?;
    Ok(json!({
        "id": project.id,
        "name": project.slug,
        "slug": project.slug,
        "environments": project.environments.iter().map(|e| json!({"name": e, "slug": e})).collect::<Vec<_>>(),
    }))
}

/// The project a request names by `workspaceId`, or by `workspaceSlug` / `projectSlug`.
fn project_of<'a>(
    st: &'a State,
    id: Option<&str>,
    slug: Option<&str>,
) -> Result<&'a Project, ApiError> {
    if let Some(id) = id {
        return st
            .projects
            .get(id)
            .ok_or_else(|| ApiError::new(404, format!("Project with ID '{id}' not found")));
    }
    if let Some(slug) = slug {
        return st
            .project_by_slug(slug)
            .ok_or_else(|| ApiError::new(404, format!("Project with slug '{slug}' not found")));
    }
    Err(ApiError::new(
        422,
        "Either workspaceId or workspaceSlug is required",
    ))
}

fn environment<'a>(project: &Project, env: Option<&'a str>) -> Result<&'a str, ApiError> {
    let env = env.ok_or_else(|| ApiError::new(422, "environment is required"))?;
    if !project.environments.iter().any(|e| e == env) {
        return Err(ApiError::new(
            404,
            format!(
                "Environment with slug '{env}' in project with ID '{}' not found",
                project.id
            ),
        ));
    }
    Ok(env)
}

fn query<'a>(req: &'a Req, key: &str) -> Option<&'a str> {
    req.query
        .get(key)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

fn flag(req: &Req, key: &str, default: bool) -> bool {
    query(req, key).map_or(default, |v| v == "true")
}

fn secret_json(
    project: &Project,
    env: &str,
    path: &str,
    key: &str,
    secret: &Secret,
    value: &str,
    version: usize,
) -> Value {
    json!({
        "id": secret.id,
        "_id": secret.id,
        "workspace": project.id,
        "environment": env,
        "version": version,
        "type": "shared",
        "secretKey": key,
        "secretValue": value,
        "secretComment": secret.comment,
        "secretPath": path,
        "skipMultilineEncoding": secret.skip_multiline_encoding,
        "secretReminderNote": null,
        "secretReminderRepeatDays": null,
        "secretValueHidden": false,
        "secretMetadata": [],
        "tags": [],
        "createdAt": secret.created_at,
        "updatedAt": secret.updated_at,
    })
}

/// Expands `${KEY}` (same environment and folder) and `${env.folder.sub.KEY}` references,
/// recursively up to a depth; an unresolvable reference is left as written.
fn expand(st: &State, project: &str, env: &str, path: &str, value: &str, depth: u8) -> String {
    if depth > 5 || !value.contains("${") {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let reference = &after[..end];
        let parts: Vec<&str> = reference.split('.').collect();
        let target = match parts.as_slice() {
            [key] => Some((env.to_owned(), path.to_owned(), (*key).to_owned())),
            [target_env, folders @ .., key] => Some((
                (*target_env).to_owned(),
                normalize_path(&folders.join("/")),
                (*key).to_owned(),
            )),
            [] => None,
        };
        let resolved = target.and_then(|(e, p, k)| {
            st.secrets
                .get(&(project.to_owned(), e.clone(), p.clone(), k))
                .map(|s| expand(st, project, &e, &p, s.value(), depth + 1))
        });
        match resolved {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn folder_missing(path: &str, env: &str) -> ApiError {
    ApiError::new(
        404,
        format!("Folder with path '{path}' in environment with slug '{env}' not found"),
    )
}

fn list_secrets(st: &State, identity: &str, req: &Req) -> Answer {
    let project = project_of(st, query(req, "workspaceId"), query(req, "workspaceSlug"))?;
    check_access(st, identity, project, "readValue")?;
    let env = environment(project, query(req, "environment"))?;
    let base = normalize_path(query(req, "secretPath").unwrap_or("/"));
    let recursive = flag(req, "recursive", false);
    let expand_refs = flag(req, "expandSecretReferences", false);
    let hidden = !flag(req, "viewSecretValue", true);
    let render = |(p, e, path, key): &SecretKey, s: &Secret| {
        let value = if hidden {
            "<hidden-by-infisical>".to_owned()
        } else if expand_refs {
            expand(st, p, e, path, s.value(), 0)
        } else {
            s.value().to_owned()
        };
        let mut v = secret_json(project, e, path, key, s, &value, s.values.len());
        if hidden {
            v["secretValueHidden"] = json!(true);
        }
        v
    };
    let secrets: Vec<Value> = st
        .secrets
        .iter()
        .filter(|((p, e, path, _), _)| {
            p == &project.id && e == env && (path == &base || (recursive && is_under(path, &base)))
        })
        .map(|(k, s)| render(k, s))
        .collect();
    let mut imports = Vec::new();
    if flag(req, "include_imports", false) {
        let folder: FolderKey = (project.id.clone(), env.to_owned(), base.clone());
        for (from_env, from_path) in st.imports.get(&folder).into_iter().flatten() {
            let secrets: Vec<Value> = st
                .secrets
                .iter()
                .filter(|((p, e, path, _), _)| {
                    p == &project.id && e == from_env && path == from_path
                })
                .map(|(k, s)| render(k, s))
                .collect();
            imports.push(json!({
                "secretPath": from_path,
                "environment": from_env,
                "folderId": format!("folder:{from_env}:{from_path}"),
                "secrets": secrets,
            }));
        }
    }
    Ok(json!({"secrets": secrets, "imports": imports}))
}

fn get_secret(st: &State, identity: &str, req: &Req, name: &str) -> Answer {
    let project = project_of(st, query(req, "workspaceId"), query(req, "workspaceSlug"))?;
    check_access(st, identity, project, "readValue")?;
    let env = environment(project, query(req, "environment"))?;
    let path = normalize_path(query(req, "secretPath").unwrap_or("/"));
    if query(req, "type").is_some_and(|t| t != "shared") {
        return Err(ApiError::new(
            404,
            format!("Secret with name '{name}' not found"),
        ));
    }
    if !st
        .folders
        .contains(&(project.id.clone(), env.to_owned(), path.clone()))
    {
        return Err(folder_missing(&path, env));
    }
    let mut candidates = vec![(env.to_owned(), path.clone())];
    if flag(req, "include_imports", false) {
        let folder: FolderKey = (project.id.clone(), env.to_owned(), path.clone());
        candidates.extend(st.imports.get(&folder).into_iter().flatten().cloned());
    }
    let found = candidates.into_iter().find_map(|(e, p)| {
        st.secrets
            .get(&(project.id.clone(), e.clone(), p.clone(), name.to_owned()))
            .map(|s| (e, p, s))
    });
    let Some((e, p, secret)) = found else {
        return Err(ApiError::new(
            404,
            format!("Secret with name '{name}' not found"),
        ));
    };
    let version = match query(req, "version") {
        None => secret.values.len(),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1 && *n <= secret.values.len())
            .ok_or_else(|| {
                ApiError::new(404, format!("Secret version {v} of '{name}' not found"))
            })?,
    };
    let raw = &secret.values[version - 1];
    let value = if flag(req, "expandSecretReferences", false) {
        expand(st, &project.id, &e, &p, raw, 0)
    } else {
        raw.clone()
    };
    Ok(json!({"secret": secret_json(project, &e, &p, name, secret, &value, version)}))
}

fn write_secret(st: &mut State, identity: &str, req: &Req, method: &str, name: &str) -> Answer {
    let body = req
        .json()
        .ok_or_else(|| ApiError::new(400, "Body is not valid JSON"))?;
    let project = project_of(
        st,
        body_str(&body, "workspaceId"),
        body_str(&body, "projectSlug").or_else(|| body_str(&body, "workspaceSlug")),
    )?
    .clone();
    let action = match method {
        method::CREATE_SECRET => "create",
        method::UPDATE_SECRET => "edit",
        _ => "delete",
    };
    check_access(st, identity, &project, action)?;
    let env = environment(&project, body_str(&body, "environment"))?.to_owned();
    let path = normalize_path(body_str(&body, "secretPath").unwrap_or("/"));
    if !st
        .folders
        .contains(&(project.id.clone(), env.clone(), path.clone()))
    {
        return Err(folder_missing(&path, &env));
    }
    let key: SecretKey = (
        project.id.clone(),
        env.clone(),
        path.clone(),
        name.to_owned(),
    );
    let now = jiff::Timestamp::now().to_string();
    let value = body.get("secretValue").and_then(Value::as_str);
    let skip = body.get("skipMultilineEncoding").and_then(Value::as_bool);
    match method {
        method::CREATE_SECRET => {
            if st.secrets.contains_key(&key) {
                return Err(ApiError::new(400, "Secret already exist"));
            }
            let value = value.ok_or_else(|| ApiError::new(422, "secretValue is required"))?;
            let id = st.uuid();
            let secret = Secret {
                id,
                values: vec![value.to_owned()],
                comment: body_str(&body, "secretComment")
                    .unwrap_or_default()
                    .to_owned(),
                skip_multiline_encoding: skip.unwrap_or(false),
                created_at: now.clone(),
                updated_at: now,
            };
            let out = secret_json(&project, &env, &path, name, &secret, value, 1);
            st.secrets.insert(key, secret);
            Ok(json!({"secret": out}))
        }
        method::UPDATE_SECRET => {
            let secret = st.secrets.get_mut(&key).ok_or_else(|| {
                ApiError::new(404, format!("Secret with name '{name}' not found"))
            })?;
            if let Some(v) = value {
                secret.values.push(v.to_owned());
            }
            if let Some(s) = skip {
                secret.skip_multiline_encoding = s;
            }
            secret.updated_at = now;
            let secret = secret.clone();
            Ok(
                json!({"secret": secret_json(&project, &env, &path, name, &secret, secret.value(), secret.values.len())}),
            )
        }
        _ => {
            let secret = st.secrets.remove(&key).ok_or_else(|| {
                ApiError::new(404, format!("Secret with name '{name}' not found"))
            })?;
            Ok(
                json!({"secret": secret_json(&project, &env, &path, name, &secret, secret.value(), secret.values.len())}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_locally_and_across_environments() {
        let mut st = State::default();
        let now = String::new();
        let mk = |v: &str| Secret {
            id: "i".into(),
            values: vec![v.into()],
            comment: String::new(),
            skip_multiline_encoding: false,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        st.secrets.insert(
            ("p".into(), "dev".into(), "/".into(), "HOST".into()),
            mk("db"),
        );
        st.secrets.insert(
            ("p".into(), "prod".into(), "/a/b".into(), "PORT".into()),
            mk("5432"),
        );
        assert_eq!(
            expand(
                &st,
                "p",
                "dev",
                "/",
                "${HOST}:${prod.a.b.PORT}/${MISSING}",
                0
            ),
            "db:5432/${MISSING}"
        );
    }
}
