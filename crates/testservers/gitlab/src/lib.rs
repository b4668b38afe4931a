//! `eso-testserver-gitlab`: a local GitLab REST API for tests (test support, not product;
//! `publish = false`).
//!
//! GitLab cannot be installed on the build machines, so this crate serves, on `127.0.0.1` over
//! HTTP or HTTPS ([`GitlabTestServer::start_tls`]), the part of GitLab's REST API v4 the `gitlab` provider uses, written from GitLab's API
//! reference (project-level and group-level CI/CD variables, "list a project's groups",
//! pagination, rate limits) and checked with `python-gitlab`, the client GitLab documents
//! (`tests/python_client.rs`):
//!
//! | endpoint | served |
//! |---|---|
//! | `GET /api/v4/projects/{id}/variables[/{key}]` | a project's variables, paged; one by key, `filter[environment_scope]` exact; 409 when several scopes share the key and no filter is given |
//! | `POST /api/v4/projects/{id}/variables` | creates one (JSON or form); 400 when the key and scope are taken |
//! | `GET /api/v4/groups/{id}/variables[/{key}]` | the same for groups |
//! | `GET /api/v4/projects/{id}/groups` | the project's ancestor groups |
//! | `GET /api/v4/user` | the token's user |
//!
//! Projects and groups are addressed by number or by URL-encoded path (`group%2Fproject`).
//! Requests carry `PRIVATE-TOKEN` (or `Authorization: Bearer`); an unknown token answers 401
//! `{"message":"401 Unauthorized"}`, a project or group the token cannot see 404
//! `{"message":"404 Project Not Found"}`, one it sees without the Maintainer role 403
//! `{"message":"403 Forbidden"}`, a missing variable 404 `{"message":"404 Variable Not Found"}`.
//! Lists page with `page` and `per_page` (default 20, at most 100) and answer GitLab's
//! `X-Page`, `X-Per-Page`, `X-Total`, `X-Total-Pages`, `X-Next-Page`, `X-Prev-Page` and `Link`
//! headers.
//!
//! # Use
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eso_testserver_gitlab::{Fault, GitlabTestServer, Token, Variable, route};
//! let server = GitlabTestServer::start().await?;
//! let group = server.group(7, "acme");
//! server.project(42, "acme/app", &[group]);
//! server.project_variable(42, Variable::new("DB_PASSWORD", "s3cret").scope("production"));
//! server.token(Token::new("glpat-1"));
//! server.inject(Fault::status(429).route(route::PROJECT_VARIABLE_GET).retry_after(1).times(1));
//! // ... point the client at server.url() and run it ...
//! assert_eq!(server.count(route::PROJECT_VARIABLE_GET), 1);
//! # Ok(()) }
//! ```
//!
//! # Knowingly simplified
//! No users beyond the token's, no other resources; environment scopes are matched
//! exactly (as the variables API's filter does), never as wildcards.

mod server;

pub use server::{Fault, GitlabTestServer, Token, Variable};

/// The names requests are counted and faults are matched under (upstream's metric names).
pub mod route {
    /// `GET /projects/{id}/variables/{key}`.
    pub const PROJECT_VARIABLE_GET: &str = "ProjectVariableGet";
    /// `GET /projects/{id}/variables`.
    pub const PROJECT_VARIABLES_LIST: &str = "ProjectVariablesList";
    /// `POST /projects/{id}/variables`.
    pub const PROJECT_VARIABLE_CREATE: &str = "ProjectVariableCreate";
    /// `GET /groups/{id}/variables/{key}`.
    pub const GROUP_VARIABLE_GET: &str = "GroupVariableGet";
    /// `GET /groups/{id}/variables`.
    pub const GROUP_VARIABLES_LIST: &str = "GroupVariablesList";
    /// `POST /groups/{id}/variables`.
    pub const GROUP_VARIABLE_CREATE: &str = "GroupVariableCreate";
    /// `GET /projects/{id}/groups`.
    pub const LIST_PROJECTS_GROUPS: &str = "ListProjectsGroups";
    /// `GET /user`.
    pub const USER: &str = "User";
}
