//! `eso-api`: the `external-secrets.io` API served by eso-rs, as Rust types.
//!
//! This crate owns the wire format only: the custom resources (`ExternalSecret`,
//! `ClusterExternalSecret`, `SecretStore`, `ClusterSecretStore` in `external-secrets.io/v1`,
//! `PushSecret` in `v1alpha1`), upstream's defaults (as accessor methods, so that a manifest
//! read and written back keeps exactly the fields it had), upstream's validation rules and the
//! generation of CRD YAML. It performs no I/O and depends on nothing but kube's derive macros
//! and the Kubernetes OpenAPI types.
//!
//! Field names, enum values and defaults follow upstream ESO's `external-secrets.io/v1` so that
//! existing manifests keep working unchanged.

pub mod common;
pub mod duration;
pub mod external_secret;
pub mod labels;
pub mod provider;
pub mod secret_store;

pub use common::{Condition, ConditionStatus, SecretKeySelector};
pub use external_secret::*;
pub use secret_store::*;

/// The API group of every eso-rs resource.
pub const GROUP: &str = "external-secrets.io";
/// The API version of ExternalSecret, ClusterExternalSecret, SecretStore and ClusterSecretStore.
pub const V1: &str = "external-secrets.io/v1";
