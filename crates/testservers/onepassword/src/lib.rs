//! `eso-testserver-onepassword`: a local 1Password Connect server for tests (test support,
//! not product; `publish = false`).
//!
//! The Connect server is a 1Password container image that needs a 1Password account, so it
//! cannot run on the build machines. This crate serves, on `127.0.0.1` over HTTP, the Connect
//! REST API the `onepassword` provider uses, written from 1Password's public Connect API
//! reference and checked with 1Password's own Python SDK (`onepasswordconnectsdk`, see
//! `tests/oracle.rs`).
//!
//! # Use
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eso_testserver_onepassword::{Fault, OnePasswordTestServer, method};
//! let server = OnePasswordTestServer::start().await?;
//! server.vault("prod");
//! server.item("prod", "db").field("username", "admin").field("password", "s3cret").create();
//! let token = server.token();
//! server.inject(Fault::status(429).method(method::GET_ITEM).retry_after(2).times(1));
//! // ... point a client at server.url() with `Authorization: Bearer {token}` ...
//! # let _ = token; Ok(()) }
//! ```
//!
//! # What is served
//! - `GET /v1/vaults` (with `filter=name eq "…"`), `GET /v1/vaults/{id}`.
//! - `GET /v1/vaults/{id}/items` (item summaries, without fields or files; `filter=title eq
//!   "…"` or `tag eq "…"`), `GET /v1/vaults/{id}/items/{id}` (fields, sections and files with
//!   their `content_path`), `POST` (create: category checked, IDs and timestamps assigned),
//!   `PUT` (replace: the body's ID must match; the version goes up), `DELETE` (204).
//! - `GET …/items/{id}/files`, `…/files/{id}`, `…/files/{id}/content` (the raw bytes).
//! - `GET /heartbeat`, `GET /health`.
//! - Bearer tokens from [`token`](OnePasswordTestServer::token) (every vault) or
//!   [`scoped_token`](OnePasswordTestServer::scoped_token); errors in Connect's shape
//!   `{"status", "message"}`: 401 without a known token, 403 for a vault the token may not
//!   use, 404 for a missing vault, item or file, 400 for a bad filter or item.
//! - Faults: [`Fault`]s answer the next N matching requests with a status (and
//!   `Retry-After`); every request is counted per method
//!   ([`count`](OnePasswordTestServer::count)).
//!
//! # Knowingly simplified
//! No item generators (`generate`/`recipe` are stored, no value is generated), no OTP
//! computation, no `PATCH`, no inline file content, no eventual consistency (Connect answers
//! writes before its cache syncs; here a write is visible at once).

mod server;

pub use eso_testserver_kit::Fault;
pub use server::{CallRecord, ItemSeed, OnePasswordTestServer};

/// The method names requests are counted and faults are matched under (the Connect SDKs'
/// names).
pub mod method {
    /// `GET /v1/vaults`.
    pub const LIST_VAULTS: &str = "GetVaults";
    /// `GET /v1/vaults/{id}`.
    pub const GET_VAULT: &str = "GetVault";
    /// `GET /v1/vaults/{id}/items`.
    pub const LIST_ITEMS: &str = "GetItems";
    /// `GET /v1/vaults/{id}/items/{id}`.
    pub const GET_ITEM: &str = "GetItem";
    /// `POST /v1/vaults/{id}/items`.
    pub const CREATE_ITEM: &str = "CreateItem";
    /// `PUT /v1/vaults/{id}/items/{id}`.
    pub const UPDATE_ITEM: &str = "UpdateItem";
    /// `DELETE /v1/vaults/{id}/items/{id}`.
    pub const DELETE_ITEM: &str = "DeleteItem";
    /// `GET …/items/{id}/files`.
    pub const LIST_FILES: &str = "GetFiles";
    /// `GET …/files/{id}`.
    pub const GET_FILE: &str = "GetFile";
    /// `GET …/files/{id}/content`.
    pub const GET_FILE_CONTENT: &str = "GetFileContent";
    /// `GET /heartbeat`.
    pub const HEARTBEAT: &str = "Heartbeat";
    /// `GET /health`.
    pub const HEALTH: &str = "Health";
    /// Any route the server does not serve.
    pub const UNKNOWN: &str = "Unknown";
}
