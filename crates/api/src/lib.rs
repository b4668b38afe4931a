//! `eso-api`: the `external-secrets.io` API served by eso-rs, as Rust types.
//!
//! This crate owns the wire format only: the custom resources (`ExternalSecret`,
//! `ClusterExternalSecret`, `SecretStore`, `ClusterSecretStore` in `external-secrets.io/v1`,
//! `PushSecret` and `ClusterPushSecret` in `v1alpha1`, the generators of
//! `generators.external-secrets.io/v1alpha1`), upstream's defaults (as accessor
//! methods, so that a manifest read and written back keeps exactly the fields it had),
//! upstream's validation rules and the generation of CRD YAML. It performs no I/O and depends on
//! nothing but kube's derive macros and the Kubernetes OpenAPI types.
//!
//! Field names, enum values and defaults follow upstream ESO's `external-secrets.io/v1` so that
//! existing manifests keep working unchanged.
//!
//! Modules:
//! - [`external_secret`]: `ExternalSecret`, its spec (data, dataFrom, rewrite, target,
//!   template) and status, and upstream's condition and event reasons.
//! - [`cluster_external_secret`]: `ClusterExternalSecret`, fanned out to namespaces.
//! - [`secret_store`]: `SecretStore` and `ClusterSecretStore` (one shared spec), conditions and
//!   status.
//! - [`provider`]: `spec.provider` of a store, with typed `kubernetes`, `vault`, `openBao`, `aws`,
//!   `webhook`, `gcpsm`, `azurekv` and `fake` providers; other provider keys are kept as JSON.
//! - [`push_secret`]: `PushSecret` and `ClusterPushSecret` (`v1alpha1`).
//! - [`generators`]: `generators.external-secrets.io/v1alpha1`: `Password`, `UUID`, `SSHKey`,
//!   `Fake`, `ECRAuthorizationToken`, `STSSessionToken`, `VaultDynamicSecret`, `Webhook`,
//!   `ClusterGenerator` and `GeneratorState`.
//! - [`common`]: references to Secrets and ServiceAccounts, and status conditions.
//! - [`validate`]: admission-style validation returning every violation with its field path.
//! - [`crds`]: the CustomResourceDefinitions and their YAML as checked in under `deploy/crds/`.
//! - [`duration`]: Go `time.Duration` strings.
//! - [`labels`]: well-known labels, annotations, finalizers and field managers.
//!
//! # Use
//!
//! Read a manifest, apply upstream's defaults through the accessors, and validate it:
//!
//! ```
//! use std::time::Duration;
//! use eso_api::{CreationPolicy, ExternalSecret, validate::validate_external_secret};
//!
//! let es: ExternalSecret = serde_saphyr::from_str(
//!     r#"
//! apiVersion: external-secrets.io/v1
//! kind: ExternalSecret
//! metadata: {name: db, namespace: apps}
//! spec:
//!   secretStoreRef: {name: vault}
//!   data: [{secretKey: password, remoteRef: {key: db, property: password}}]
//! "#,
//! )?;
//! assert_eq!(es.target_name(), "db"); // spec.target.name, else the ExternalSecret's name
//! assert_eq!(es.spec.refresh_interval()?, Duration::from_secs(3600)); // upstream's 1h
//! assert_eq!(es.spec.creation_policy(), CreationPolicy::Owner);
//! assert!(validate_external_secret(&es.spec).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cluster_external_secret;
pub mod common;
pub mod crds;
pub mod duration;
pub mod external_secret;
pub mod generators;
pub mod labels;
pub mod provider;
pub mod push_secret;
pub mod secret_store;
pub mod validate;

pub use cluster_external_secret::*;
pub use common::{Condition, ConditionStatus, SecretKeySelector, ServiceAccountSelector};
pub use external_secret::*;
pub use push_secret::*;
pub use secret_store::*;

/// The API group of every eso-rs resource.
pub const GROUP: &str = "external-secrets.io";
/// The API version of ExternalSecret, ClusterExternalSecret, SecretStore and ClusterSecretStore.
pub const V1: &str = "external-secrets.io/v1";
/// The API version of PushSecret and ClusterPushSecret.
pub const V1ALPHA1: &str = "external-secrets.io/v1alpha1";
