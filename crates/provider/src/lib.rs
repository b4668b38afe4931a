//! `eso-provider`: the contract between the reconciliation core and secret-store providers.
//!
//! It owns the [`Provider`] and [`SecretsClient`] traits (mirroring upstream ESO's `Provider` and
//! `SecretsClient`), the typed [`ProviderError`] whose [`ErrorKind`] decides what the reconciler
//! may do (only a confirmed [`ErrorKind::NotFound`] can ever lead to deleting data), the
//! [`ProviderRegistry`] that maps a store's provider key to an implementation, and helpers every
//! provider shares: value decoding and key conversion ([`convert`]), `find` matching ([`find`]),
//! `dataFrom.rewrite` ([`rewrite`]), gjson-style property paths ([`property`]) and the CA
//! roots a store trusts ([`tls`]). Behind cargo features, for the providers that talk to an
//! API: the HTTP layer of the REST providers (`http`: client, retries, status mapping,
//! `Retry-After`) and upstream's provider call metric (`metrics`).
//!
//! It knows nothing of the Kubernetes client: credentials a store references are read through
//! the [`SecretReader`] (ConfigMaps through the [`ConfigMapReader`]) the caller passes in, so
//! the same provider serves the operator (reading from the API server) and `sync-once render`
//! (reading from manifest files).
//!
//! # Use
//!
//! A provider is two small types: a [`Provider`] that validates stores and builds clients, and
//! a [`SecretsClient`] that reads values. This one serves a single fixed value under the store
//! key `constant` (`spec.provider.constant: {}`); a tool adds it to the registry the reconciler
//! uses (`eso_providers::builtin().with(...)` when embedding `eso-core`).
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, SecretStoreCapabilities};
//! use eso_provider::{
//!     ClientContext, ErrorKind, Provider, ProviderError, ProviderRegistry, SecretData,
//!     SecretsClient, StoreInfo, ValidationResult,
//! };
//!
//! struct Constant;
//!
//! #[async_trait]
//! impl Provider for Constant {
//!     fn key(&self) -> &'static str { "constant" }
//!     fn capabilities(&self) -> SecretStoreCapabilities { SecretStoreCapabilities::ReadOnly }
//!     fn validate_store(&self, _: &StoreInfo) -> Result<Vec<String>, ProviderError> {
//!         Ok(Vec::new())
//!     }
//!     async fn new_client(&self, _: ClientContext<'_>) -> Result<Arc<dyn SecretsClient>, ProviderError> {
//!         Ok(Arc::new(Constant))
//!     }
//! }
//!
//! #[async_trait]
//! impl SecretsClient for Constant {
//!     async fn get_secret(&self, remote: &ExternalSecretDataRemoteRef) -> Result<Vec<u8>, ProviderError> {
//!         match remote.key.as_str() {
//!             "answer" => Ok(b"42".to_vec()),
//!             // Typed by cause: only a confirmed NotFound may ever lead to deleting data.
//!             other => Err(ProviderError::not_found(other)),
//!         }
//!     }
//!     async fn get_secret_map(&self, _: &ExternalSecretDataRemoteRef) -> Result<SecretData, ProviderError> {
//!         Err(ProviderError::unsupported("constant cannot extract"))
//!     }
//!     async fn get_all_secrets(&self, _: &ExternalSecretFind) -> Result<SecretData, ProviderError> {
//!         Err(ProviderError::unsupported("constant cannot find"))
//!     }
//!     async fn validate(&self) -> Result<ValidationResult, ProviderError> {
//!         Ok(ValidationResult::Ready)
//!     }
//! }
//!
//! let registry = ProviderRegistry::new().with(Arc::new(Constant));
//! assert_eq!(registry.keys().collect::<Vec<_>>(), ["constant"]);
//!
//! let err = ProviderError::not_found("db");
//! assert_eq!((err.kind(), err.reason()), (ErrorKind::NotFound, "NotFound"));
//! assert!(ProviderError::throttled("slow down").kind().is_transient());
//! ```

pub mod cache;
pub mod convert;
mod error;
pub mod find;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
mod placeholder;
pub mod property;
pub mod proxy;
mod registry;
pub mod rewrite;
pub mod tls;
mod traits;

pub use error::{ErrorKind, ProviderError};
pub use placeholder::ReferentPlaceholder;
pub use registry::ProviderRegistry;
pub use traits::*;
