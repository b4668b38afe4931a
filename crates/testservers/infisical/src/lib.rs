//! `eso-testserver-infisical`: a local Infisical API server for tests (test support, not
//! product; `publish = false`).
//!
//! Infisical cannot be installed on the build machines, so this crate serves, on `127.0.0.1`
//! over HTTP, the part of Infisical's REST API the `infisical` provider uses, written from
//! Infisical's public API reference and checked with Infisical's own Python SDK
//! (`infisicalsdk`, see `tests/oracle.rs`).
//!
//! # Use
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eso_testserver_infisical::{Fault, InfisicalTestServer, method};
//! let server = InfisicalTestServer::start().await?;
//! server.project("shop", &["dev", "prod"]);
//! server.secret("shop", "dev", "/", "DB_PASSWORD", "s3cret");
//! let creds = server.identity("eso");
//! server.inject(Fault::status(429).method(method::GET_SECRET).retry_after(3).times(1));
//! // ... point a client at server.api_url() and log in with creds.client_id / client_secret ...
//! assert_eq!(server.count(method::UNIVERSAL_AUTH_LOGIN), 0);
//! # let _ = creds; Ok(()) }
//! ```
//!
//! # What is served (under `/api`)
//! - Machine identity logins: `POST /v1/auth/universal-auth/login` (`clientId`,
//!   `clientSecret`), `/v1/auth/jwt-auth/login` and `/v1/auth/kubernetes-auth/login`
//!   (`identityId`, `jwt`), `/v1/auth/ldap-auth/login` (`identityId`, `username`,
//!   `password`); each answers `{accessToken, expiresIn, accessTokenMaxTTL, tokenType}`.
//!   `POST /v1/auth/token/revoke` revokes the caller's token.
//! - `GET /v1/projects/slug/{slug}`: the project (`id`, `slug`, ...).
//! - `GET /v3/secrets/raw`: list by `workspaceId` or `workspaceSlug`, `environment`,
//!   `secretPath`, `recursive`, `include_imports` (the folder's imports, as an `imports` list),
//!   `expandSecretReferences` (`${KEY}` and `${env.folder.KEY}`), `viewSecretValue`. No
//!   pagination: the real endpoint has none.
//! - `GET /v3/secrets/raw/{name}`: one secret, with the same parameters plus `version` and
//!   `type` (only `shared` secrets exist); with `include_imports` a secret missing from the
//!   folder is looked up in its imports.
//! - `POST`, `PATCH`, `DELETE /v3/secrets/raw/{name}` with a JSON body naming `workspaceId`
//!   (or `projectSlug`), `environment`, `secretPath`; `secretValue`, `secretComment`,
//!   `skipMultilineEncoding` for writes. Every new value is a new version.
//! - Errors in Infisical's shape, `{"reqId", "statusCode", "message", "error"}`: 401 without
//!   a live bearer token or with bad login credentials, 403 for an identity
//!   [`deny`](InfisicalTestServer::deny)ed a project, 404 for a missing project, environment,
//!   folder or secret (with Infisical's messages), 400 `Secret already exist`, 404 for unknown
//!   routes in Fastify's words.
//! - Faults: [`Fault`]s answer the next N matching requests with a status (and
//!   `Retry-After`); every request is counted per method ([`count`](InfisicalTestServer::count))
//!   with the identity that made it ([`calls`](InfisicalTestServer::calls)).
//!
//! # Knowingly simplified
//! Permissions are all or nothing per project; personal secrets, tags, secret metadata,
//! reminders and approval policies are not modelled; an unresolvable secret reference is left
//! as written; JWT, Kubernetes and LDAP logins compare the presented credential with one
//! registered for the identity instead of verifying signatures, calling a TokenReview or
//! binding to a directory.

mod server;
mod state;

pub use eso_testserver_kit::Fault;
pub use server::{IdentityCredentials, InfisicalTestServer};
pub use state::CallRecord;

/// The method names requests are counted and faults are matched under.
pub mod method {
    /// `POST /api/v1/auth/universal-auth/login`.
    pub const UNIVERSAL_AUTH_LOGIN: &str = "UniversalAuthLogin";
    /// `POST /api/v1/auth/jwt-auth/login`.
    pub const JWT_AUTH_LOGIN: &str = "JwtAuthLogin";
    /// `POST /api/v1/auth/kubernetes-auth/login`.
    pub const KUBERNETES_AUTH_LOGIN: &str = "KubernetesAuthLogin";
    /// `POST /api/v1/auth/ldap-auth/login`.
    pub const LDAP_AUTH_LOGIN: &str = "LdapAuthLogin";
    /// `POST /api/v1/auth/token/revoke`.
    pub const REVOKE_TOKEN: &str = "RevokeAccessToken";
    /// `GET /api/v1/projects/slug/{slug}`.
    pub const GET_PROJECT: &str = "GetProjectBySlug";
    /// `GET /api/v3/secrets/raw`.
    pub const LIST_SECRETS: &str = "ListSecretsRaw";
    /// `GET /api/v3/secrets/raw/{name}`.
    pub const GET_SECRET: &str = "GetSecretByNameRaw";
    /// `POST /api/v3/secrets/raw/{name}`.
    pub const CREATE_SECRET: &str = "CreateSecretRaw";
    /// `PATCH /api/v3/secrets/raw/{name}`.
    pub const UPDATE_SECRET: &str = "UpdateSecretRaw";
    /// `DELETE /api/v3/secrets/raw/{name}`.
    pub const DELETE_SECRET: &str = "DeleteSecretRaw";
    /// Any route the server does not serve.
    pub const UNKNOWN: &str = "Unknown";
}
