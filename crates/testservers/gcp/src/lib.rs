//! `eso-testserver-gcp`: a local Google Cloud server for tests (test support, not product;
//! `publish = false`).
//!
//! No Secret Manager emulator can be installed on the build machines, so this crate serves,
//! on `127.0.0.1` over HTTP, the subset of Google's REST APIs the `gcpsm` provider uses, written
//! from Google's public API reference and checked with Google's own clients (the
//! `google-cloud-secret-manager` and `google-auth` Python libraries and `gcloud`, see
//! `tests/oracle.rs`). One server answers every API under the paths the real services use, so
//! one base URL stands in for every Google endpoint:
//!
//! | Google endpoint | served here |
//! |---|---|
//! | `secretmanager.googleapis.com` (and the regional `secretmanager.{l}.rep.googleapis.com`) | `/v1/projects/{p}[/locations/{l}]/secrets...` |
//! | `oauth2.googleapis.com/token` (a service-account key's `token_uri`) | `/token` |
//! | `sts.googleapis.com/v1/token` | `/v1/token` |
//! | `securetoken.googleapis.com/v1/identitybindingtoken` (GKE Workload Identity) | `/v1/identitybindingtoken` |
//! | `iamcredentials.googleapis.com` | `/v1/projects/-/serviceAccounts/{email}:generateAccessToken` |
//! | the metadata server (`metadata.google.internal`) | `/` and `/computeMetadata/v1/...` |
//!
//! # Use
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use eso_testserver_gcp::{Fault, GcpTestServer, method};
//! let server = GcpTestServer::start().await?;
//! server.secret("p1", "db").label("env", "prod").version(b"s3cret").create();
//! let key_json = server.service_account_key("eso@p1.iam.gserviceaccount.com");
//! server.inject(Fault::status(503).method(method::ACCESS_SECRET_VERSION).times(1));
//! // ... point the client at server.url() and run it ...
//! assert_eq!(server.count(method::OAUTH2_TOKEN), 1);
//! # let _ = key_json; Ok(()) }
//! ```
//!
//! # What is served
//! - Secret Manager v1: secrets `create` (`?secretId=`, replication required for global and
//!   refused for regional secrets, label rules), `get`, `patch` (`updateMask` of `labels`,
//!   `annotations`, `topics`, `versionAliases`; `etag` checked), `delete` (`?etag=`), `list`
//!   (`filter`, `pageSize`, `pageToken`, `totalSize`); versions `addVersion` (checks
//!   `dataCrc32c`), `list` (newest first, `filter`), `get`, `:access` on GET (numbers, `latest`
//!   = the newest version whatever its state, aliases; `FAILED_PRECONDITION` for a disabled or
//!   destroyed version with Google's message), `:disable`, `:enable`, `:destroy`; the
//!   `locations/{l}` variants of all of these. Names in answers use the project number, as
//!   Google's do; requests may use the id or the number. Payloads carry `dataCrc32c`.
//! - List filters (Google's filter language): `name:`, `labels.k=v`, `labels.k:*`, `labels:k`,
//!   `state:`, `create_time<`/`>`, `replication.automatic:*`, `*` wildcards in values, `AND`,
//!   `OR`, `NOT`/`-`, parentheses, implicit `AND`. Any other field answers 400.
//! - Errors in Google's shape (`{"error": {"code", "message", "status"}}`) with Google's
//!   status names and messages; 401 `UNAUTHENTICATED` without a valid bearer token, 403
//!   `PERMISSION_DENIED` for a [`deny`](GcpTestServer::deny)ed principal.
//! - OAuth2 JWT bearer grant: the assertion's RS256 signature is checked with the public key of
//!   a key made by [`service_account_key`](GcpTestServer::service_account_key), as are `iss`,
//!   `aud` (the token URL), `scope`, `iat` and `exp`. Self-signed JWTs from such keys are also
//!   accepted as bearer tokens, as Google accepts them.
//! - STS token exchange (`urn:ietf:params:oauth:grant-type:token-exchange`, form or JSON) for
//!   JWT subject tokens (a Kubernetes ServiceAccount token; not signature-checked, like the
//!   test API server's unsigned tokens) and AWS `GetCallerIdentity` requests signed with SigV4
//!   (the signature is checked when the key was registered with
//!   [`aws_credentials`](GcpTestServer::aws_credentials)); GKE's identity binding token
//!   endpoint; IAM credentials `generateAccessToken`.
//! - The metadata server: the `Metadata-Flavor: Google` header is required and answered;
//!   project id and number, `cluster-name` and `cluster-location` attributes, the default
//!   service account's email, token and `?recursive=true` description.
//! - Faults: [`Fault`]s answer the next N matching requests with a status (and `Retry-After`);
//!   every request is counted per method ([`count`](GcpTestServer::count)) with the principal
//!   that made it ([`calls`](GcpTestServer::calls)).
//!
//! # Knowingly simplified
//! No IAM policies (every valid token may do everything unless its principal is denied), no
//! gRPC, no TLS, no CMEK or topic validation, no secret expiry (`ttl`, `expireTime`) or
//! version destruction delay, no rotation, no `tags`. Impersonation is allowed to any service
//! account of the form `*@*.iam.gserviceaccount.com`. Anything else answers 400 or 404 in
//! Google's shape, never a silently different answer.

mod auth;
mod aws;
mod crc32c;
mod filter;
mod http;
mod jwt;
mod kube_tokens;
mod secretmanager;
mod server;
mod state;

pub use eso_testserver_kit::Fault;
pub use kube_tokens::{FakeServiceAccountTokens, TokenRequestRecord};
pub use server::{GcpTestServer, SecretSeed};
pub use state::{CallRecord, MetadataConfig, SecretView, VersionState, VersionView};

/// The method names requests are counted and faults are matched under: Google's RPC names.
pub mod method {
    /// `GET .../secrets`.
    pub const LIST_SECRETS: &str = "ListSecrets";
    /// `POST .../secrets?secretId=`.
    pub const CREATE_SECRET: &str = "CreateSecret";
    /// `GET .../secrets/{s}`.
    pub const GET_SECRET: &str = "GetSecret";
    /// `PATCH .../secrets/{s}`.
    pub const UPDATE_SECRET: &str = "UpdateSecret";
    /// `DELETE .../secrets/{s}`.
    pub const DELETE_SECRET: &str = "DeleteSecret";
    /// `POST .../secrets/{s}:addVersion`.
    pub const ADD_SECRET_VERSION: &str = "AddSecretVersion";
    /// `GET .../secrets/{s}/versions`.
    pub const LIST_SECRET_VERSIONS: &str = "ListSecretVersions";
    /// `GET .../versions/{v}`.
    pub const GET_SECRET_VERSION: &str = "GetSecretVersion";
    /// `GET .../versions/{v}:access`.
    pub const ACCESS_SECRET_VERSION: &str = "AccessSecretVersion";
    /// `POST .../versions/{v}:disable`.
    pub const DISABLE_SECRET_VERSION: &str = "DisableSecretVersion";
    /// `POST .../versions/{v}:enable`.
    pub const ENABLE_SECRET_VERSION: &str = "EnableSecretVersion";
    /// `POST .../versions/{v}:destroy`.
    pub const DESTROY_SECRET_VERSION: &str = "DestroySecretVersion";
    /// `POST /token` (OAuth2 JWT bearer grant).
    pub const OAUTH2_TOKEN: &str = "OAuth2Token";
    /// `POST /v1/token` (STS token exchange).
    pub const STS_TOKEN: &str = "STSToken";
    /// `POST /v1/identitybindingtoken` (GKE Workload Identity).
    pub const IDENTITY_BINDING_TOKEN: &str = "IdentityBindingToken";
    /// `POST .../serviceAccounts/{email}:generateAccessToken`.
    pub const GENERATE_ACCESS_TOKEN: &str = "GenerateAccessToken";
    /// The metadata server's token of the default service account.
    pub const METADATA_TOKEN: &str = "MetadataToken";
    /// Any other metadata server read.
    pub const METADATA: &str = "Metadata";
}

/// The OAuth2 scope every Google client asks for.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
