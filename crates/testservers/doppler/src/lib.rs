//! `eso-testserver-doppler`: a local Doppler API server for tests (test support, not product;
//! `publish = false`).
//!
//! Doppler is a hosted service, so this crate serves, on `127.0.0.1` over HTTP, the part of
//! Doppler's v3 REST API the `doppler` provider uses, written from Doppler's public API
//! reference and checked with Doppler's own Python SDK (`doppler-sdk`, see `tests/oracle.rs`).
//!
//! # Use
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eso_testserver_doppler::{DopplerTestServer, Fault, method};
//! let server = DopplerTestServer::start().await?;
//! server.secret("backend", "prd", "DB_PASSWORD", "s3cret");
//! let token = server.service_token("backend", "prd");
//! server.inject(Fault::status(429).method(method::DOWNLOAD).retry_after(2).times(1));
//! // ... point a client at server.url() with the token (Bearer, or Basic as user name) ...
//! # let _ = token; Ok(()) }
//! ```
//!
//! # What is served (under `/v3`)
//! - `GET /configs/config/secrets/download`: `project`, `config` (not needed with a service
//!   token, which is bound to one config), `format` (`json`, `env`, `env-no-quotes`, `yaml`,
//!   `docker`, `dotnet-json`), `name_transformer` (`camel`, `upper-camel`, `lower-snake`,
//!   `tf-var`, `dotnet`, `dotnet-env`, `lower-kebab`), `secrets` (a comma-separated filter).
//!   The body holds the computed values (`${NAME}` references expanded) plus
//!   `DOPPLER_PROJECT`, `DOPPLER_CONFIG` and `DOPPLER_ENVIRONMENT`, as Doppler's does; it
//!   carries an `ETag`, and `If-None-Match` with the same tag answers 304.
//! - `GET /configs/config/secrets` and `GET` / `DELETE /configs/config/secret?name=`.
//! - `POST /configs/config/secrets` with `secrets` (a name → value map) and/or
//!   `change_requests` (`name`, `originalName`, `value`, `shouldDelete`); names must be
//!   upper snake case.
//! - `GET /projects`, `GET /me`, `POST /auth/oidc` (`identity`, `token`: the exchange answers
//!   `{success, token, expires_at}` for a subject token the identity trusts).
//! - Tokens in `Authorization: Bearer` or as the Basic user name (how upstream sends them);
//!   errors in Doppler's shape `{"messages": [...], "success": false}`: 401 for an unknown or
//!   expired token, 403 for a service token naming another config or writing, 404 for a
//!   missing project, config or secret, 400 for missing parameters, bad names, formats or
//!   transformers. 429 answers carry `Retry-After` and `x-ratelimit-*`.
//! - Faults: [`Fault`]s answer the next N matching requests with a status; every request is
//!   counted per method ([`count`](DopplerTestServer::count)) with its auth scheme and
//!   `If-None-Match` ([`calls`](DopplerTestServer::calls)).
//!
//! # Knowingly simplified
//! The exact text of the `env`, `yaml`, `docker` and `dotnet-json` downloads (quoting and
//! escaping) is our reading of Doppler's documentation: Doppler's SDK passes the body through
//! unread, so no vendor client can confirm it. No dynamic secrets, branch-config inheritance,
//! cross-project references, visibility rules, personal-token scopes or real OIDC signature
//! checks (an identity trusts the subject tokens registered for it).

mod server;
mod transform;

pub use eso_testserver_kit::Fault;
pub use server::{CallRecord, DopplerTestServer};

/// The method names requests are counted and faults are matched under.
pub mod method {
    /// `GET /v3/configs/config/secrets/download`.
    pub const DOWNLOAD: &str = "SecretsDownload";
    /// `GET /v3/configs/config/secrets`.
    pub const LIST_SECRETS: &str = "SecretsList";
    /// `POST /v3/configs/config/secrets`.
    pub const UPDATE_SECRETS: &str = "SecretsUpdate";
    /// `GET /v3/configs/config/secret`.
    pub const GET_SECRET: &str = "SecretsGet";
    /// `DELETE /v3/configs/config/secret`.
    pub const DELETE_SECRET: &str = "SecretsDelete";
    /// `GET /v3/projects`.
    pub const LIST_PROJECTS: &str = "ProjectsList";
    /// `GET /v3/me`.
    pub const ME: &str = "Me";
    /// `POST /v3/auth/oidc`.
    pub const OIDC_AUTH: &str = "OidcAuth";
    /// Any route the server does not serve.
    pub const UNKNOWN: &str = "Unknown";
}
