//! `eso-testserver-conjur`: a local CyberArk Conjur server for tests (test support, not
//! product; `publish = false`).
//!
//! Conjur cannot be installed on the build machines (it is a Rails application shipped as
//! container images), so this crate serves, on `127.0.0.1` over HTTP or HTTPS
//! ([`ConjurTestServer::start_tls`]), the part of Conjur's REST
//! API the `conjur` provider and Conjur's clients use, written from Conjur's API reference, the
//! server's controllers and `conjur-api-go`, and checked with CyberArk's own Python client
//! (`tests/python_client.rs`):
//!
//! | endpoint | served |
//! |---|---|
//! | `POST /authn/{account}/{login}/authenticate` | the body is the API key; a v5 access token (base64 with `Accept-Encoding: base64`), or 401 with no body |
//! | `POST /authn-jwt/{service}/{account}[/{host}]/authenticate` | form `jwt=`: an RS256 JWT checked against the authenticator's issuer, audience and key; the host from the URL or from the `token-app-property` claim under `identity-path`; 401 otherwise |
//! | `GET /secrets/{account}/{kind}/{id}[?version=N]` | the value (`conjur/mime_type` or `application/octet-stream`); 404 `CONJ00076E` when missing, empty or invisible; 403 without `execute` |
//! | `GET /secrets?variable_ids=a:variable:x,...` | `{full id: value}`, values base64 (Ruby's 60-column `encode64`) with `Accept-Encoding: base64`; 404 on the first missing one, 403, 422 for empty or duplicate ids, 406 for binary values without base64 |
//! | `POST /secrets/{account}/variable/{id}` | adds a version (`update` needed); 422 when empty |
//! | `GET /resources/{account}` | visible resources sorted by id, `kind`, `search`, `limit`, `offset`, `count=true` |
//! | `GET /whoami` | the caller's account and login |
//!
//! Every request needs `Authorization: Token token="<base64 of the token>"` except the two
//! authenticators; a missing, forged or expired token answers 401 with no body, as Conjur does.
//!
//! # Use
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eso_testserver_conjur::{ConjurTestServer, Fault, Role, route};
//! let server = ConjurTestServer::start("myorg").await?;
//! server.role(Role::new("host/eso", "api-key-1"));
//! server.variable("db/password").value(b"s3cret").annotation("env", "prod");
//! server.inject(Fault::status(503).route(route::SECRET).times(1));
//! // ... point the client at server.url() and run it ...
//! assert_eq!(server.count(route::AUTHN), 1);
//! # Ok(()) }
//! ```
//!
//! # Knowingly simplified
//! No policies (roles and their privileges are set by the test), no client certificates, no other
//! authenticators, no host factories, no audit. Access tokens are HMAC-signed (clients never
//! check the signature).

mod server;
mod token;

pub use server::{ConjurTestServer, Fault, JwtAuthenticator, Role, Scope, VariableSeed};

/// The names requests are counted and faults are matched under.
pub mod route {
    /// `POST /authn/.../authenticate`.
    pub const AUTHN: &str = "authn";
    /// `POST /authn-jwt/.../authenticate`.
    pub const AUTHN_JWT: &str = "authn-jwt";
    /// `GET /secrets/{account}/{kind}/{id}`.
    pub const SECRET: &str = "secret";
    /// `GET /secrets?variable_ids=`.
    pub const BATCH: &str = "batch";
    /// `POST /secrets/{account}/{kind}/{id}`.
    pub const ADD_SECRET: &str = "add-secret";
    /// `GET /resources/{account}`.
    pub const RESOURCES: &str = "resources";
    /// `GET /whoami`.
    pub const WHOAMI: &str = "whoami";
}
