//! `eso-provider`: the contract between the reconciliation core and secret-store providers.
//!
//! It owns the [`Provider`] and [`SecretsClient`] traits (mirroring upstream ESO's `Provider` and
//! `SecretsClient`), the typed [`ProviderError`] whose [`ErrorKind`] decides what the reconciler
//! may do (only a confirmed [`ErrorKind::NotFound`] can ever lead to deleting data), the
//! [`ProviderRegistry`] that maps a store's provider key to an implementation, and helpers every
//! provider shares: value decoding and key conversion ([`convert`]), `find` matching ([`find`]),
//! `dataFrom.rewrite` ([`rewrite`]) and gjson-style property paths ([`property`]).
//!
//! It knows nothing of the Kubernetes client: credentials a store references are read through
//! the [`SecretReader`] the caller passes in, so the same provider serves the operator (reading
//! from the API server) and `sync-once render` (reading from manifest files).

pub mod convert;
mod error;
pub mod find;
pub mod property;
mod registry;
pub mod rewrite;
mod traits;

pub use error::{ErrorKind, ProviderError};
pub use registry::ProviderRegistry;
pub use traits::*;
