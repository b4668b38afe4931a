//! `eso-core`: the reconciliation core of eso-rs, and the library other Rust tools embed.
//!
//! The path is the same for the operator, `sync-once` and embedding tools: fetch (I/O: resolve
//! stores, reuse provider clients, read and post-process data) → plan (pure: the desired
//! Secret, the `Ready` condition and events) → apply (server-side apply of the Secret and its
//! status). Offline rendering runs fetch and plan over manifests; a one-shot sync runs all
//! three against a cluster, once.
//!
//! # The stable surface
//!
//! Everything documented on this page is the embedding surface; `sync-once` uses exactly it and
//! nothing else. Semver applies to it once the crate is published (0.x today: a breaking change
//! bumps the minor version and is listed in the changelog).
//!
//! | task | items |
//! |---|---|
//! | read manifests | [`ManifestSet`] ([`ManifestSet::new`], [`ManifestSet::add_text`]), [`ManifestError`], [`Source`], [`Sourced`] |
//! | render offline | [`render_all`] (or [`render_all_with_generators`]) → [`Rendered`] (a Secret or a [`RenderError`], with [`FetchError`], [`PlanError`], [`StoreError`]) |
//! | sync a cluster once | [`sync_cluster`] with [`OneShotOptions`] and [`ControllerConfig`] (with [`ReadSharing`], [`RefreshTimeWrites`]) → [`OneShotResult`] with a [`SyncOutcome`], or a [`ListError`] |
//! | push a cluster's PushSecrets once | [`push_cluster`] with [`OneShotOptions`] → [`PushOneShotResult`] with a [`PushSyncOutcome`], or a [`ListError`] |
//! | run the controllers | [`Manager`] ([`Manager::new`], [`Manager::status`], [`Manager::run`]) with [`ManagerConfig`] ([`LeaseConfig`], [`PerObjectMetrics`]) → [`ManagerStatus`] for health and metrics endpoints, or a [`ManagerError`] |
//! | generators | [`GeneratorRegistry`] (set with [`ControllerConfig::generators`] or [`ManagerConfig::generators`]; `eso_providers::generators()` holds the built-in kinds), the [`generator`] contract (eso-generator) |
//! | providers | [`ProviderRegistry`] (filled by the caller: `eso_providers::builtin()` of the `eso-providers` crate holds the built-in ones), and the [`Provider`] / [`SecretsClient`] traits with [`ClientContext`], [`StoreInfo`], [`SecretData`], [`ValidationResult`], [`ProviderError`], [`ErrorKind`] |
//! | types and dependencies | [`api`] (eso-api: the `external-secrets.io` types), [`provider`] (eso-provider, the whole provider contract), [`kube`], [`k8s_openapi`], and [`async_trait`](macro@async_trait) for implementing the provider traits |
//!
//! The re-exported crates are part of the surface: a major-version change of `kube` or
//! `k8s-openapi` is a breaking change of `eso-core`. Use them through these re-exports
//! (`eso_core::kube::Client`) so that your tool always builds against the same versions.
//!
//! Not stable: the modules hidden from these docs (`controller`, `store_controller`,
//! `ces_controller`, `fetch`, `plan`, `apply`, `object_metrics`, `exposition`, `testing`,
//! ...). They are public only so that the operator binary and this workspace's tests can reach
//! them, and they change without notice. The test fixture builders of `testing` are compiled
//! only with the `test-util` feature (off by default). The long-lived controllers run in your
//! own process through the [`Manager`], the same one `eso-operator` runs. See
//! `docs/embedding.md` for when to embed.
//!
//! # Render offline
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//!
//! use eso_core::{ManifestSet, ProviderRegistry, render_all};
//!
//! let yaml = r#"
//! apiVersion: external-secrets.io/v1
//! kind: SecretStore
//! metadata: {name: store}
//! spec:
//!   provider:
//!     fake:
//!       data: [{key: db-password, value: s3cr3t}]
//! ---
//! apiVersion: external-secrets.io/v1
//! kind: ExternalSecret
//! metadata: {name: db}
//! spec:
//!   secretStoreRef: {name: store}
//!   data: [{secretKey: password, remoteRef: {key: db-password}}]
//! "#;
//! let mut set = ManifestSet::new("default");
//! assert!(set.add_text("inline.yaml", yaml).is_empty());
//! // The operator passes `eso_providers::builtin()` (every built-in provider); this example
//! // needs only the fake one.
//! let providers = ProviderRegistry::new().with(Arc::new(eso_provider_fake::FakeProvider));
//! let rendered = render_all(&set, &providers).await;
//! let secret = rendered[0].result.as_ref().ok().and_then(Option::as_ref);
//! let data = secret.and_then(|s| s.data.as_ref());
//! assert_eq!(data.map(|d| d["password"].0.as_slice()), Some(&b"s3cr3t"[..]));
//! # }
//! ```
//!
//! # Sync a cluster once
//!
//! ```no_run
//! # async fn demo(providers: eso_core::ProviderRegistry) -> Result<(), Box<dyn std::error::Error>> {
//! use eso_core::{OneShotOptions, sync_cluster};
//!
//! // `providers`: e.g. `eso_providers::builtin()`.
//!
//! let client = eso_core::kube::Client::try_default().await?; // KUBECONFIG or in-cluster
//! let options = OneShotOptions {
//!     namespace: Some("demo".to_owned()),
//!     ..OneShotOptions::default()
//! };
//! for result in sync_cluster(client, providers, options).await? {
//!     println!("{}: {:?}", result.external_secret, result.outcome);
//! }
//! # Ok(()) }
//! ```
//!
//! # Run the controllers in your own process
//!
//! The [`Manager`] is what `eso-operator` runs: the ExternalSecret, store and
//! ClusterExternalSecret controllers, while this process holds the leader election Lease.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use eso_core::{ControllerConfig, LeaseConfig, Manager, ManagerConfig, ProviderRegistry};
//!
//! let client = eso_core::kube::Client::try_default().await?;
//! // In a real tool: `eso_providers::builtin()` (crate eso-providers), plus your own.
//! let providers = ProviderRegistry::new();
//! let config = ManagerConfig::new("my-tool-7f3a") // unique per process: the Lease holder
//!     .controller(ControllerConfig::default().namespace(Some("team-a".to_owned())))
//!     .lease(LeaseConfig::default().name("my-tool-secrets"))
//!     .leader_election(Some("team-a".to_owned())); // None: always reconcile (one replica)
//! let manager = Manager::new(client, providers, config)?;
//! let status = manager.status(); // serve status.is_ready(), status.metrics_text(..)
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn(manager.run(async move {
//!     let _ = stopped.await;
//! }));
//! // ... on shutdown: stops the reconcilers, then releases the Lease.
//! let _ = stop.send(());
//! running.await?;
//! # Ok(()) }
//! ```
//!
//! # Add a provider
//!
//! Implement [`Provider`] (validates a store, builds a client) and [`SecretsClient`] (reads
//! values), and add it to a registry with [`ProviderRegistry::with`]. Stores select it with
//! its key, `spec.provider.<key>`; the key's value is available to the provider as JSON in
//! `store.spec.provider.other[key]`. The `custom_provider` example of the `eso-examples` crate
//! is a complete one.

#[doc(hidden)]
pub mod api_health;
#[doc(hidden)]
pub mod apply;
#[doc(hidden)]
pub mod ces_controller;
#[doc(hidden)]
pub mod controller;
#[doc(hidden)]
pub mod digests;
pub mod events;
#[doc(hidden)]
pub mod exposition;
#[doc(hidden)]
pub mod fan_out;
#[doc(hidden)]
pub mod fetch;
#[doc(hidden)]
pub mod generate;
#[doc(hidden)]
pub mod hash;
#[doc(hidden)]
pub mod kube_io;
#[doc(hidden)]
pub mod kube_metrics;
pub mod manager;
#[doc(hidden)]
pub mod manifests;
#[doc(hidden)]
pub mod object_metrics;
#[doc(hidden)]
pub mod oneshot;
#[doc(hidden)]
pub mod plan;
#[doc(hidden)]
pub mod push;
#[doc(hidden)]
pub mod render;
#[doc(hidden)]
pub mod retry;
pub mod runtime_metrics;
#[doc(hidden)]
pub mod schedule;
#[doc(hidden)]
pub mod selector;
#[doc(hidden)]
pub mod status;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod store_controller;
#[doc(hidden)]
pub mod sync_window;
#[doc(hidden)]
pub mod template;
#[doc(hidden)]
pub mod tenancy;
mod term;
#[cfg(any(test, feature = "test-util"))]
#[doc(hidden)]
pub mod testing;

/// Locks `m`; a poisoned lock only means a panic elsewhere mid-update, and what it guards
/// (counts, caches, ledgers) stays usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// Compiles the Rust examples of the embedding guide as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/embedding.md")]
struct EmbeddingGuide;

// Reading manifests and rendering offline.
pub use manifests::{ManifestError, ManifestSet, Source, Sourced};
pub use render::{RenderError, Rendered, render_all, render_all_with_generators};

// Why a render or a sync failed.
pub use fetch::FetchError;
pub use plan::PlanError;
pub use store::StoreError;

// One-shot sync against a cluster, and the settings of the controllers.
pub use controller::{ControllerConfig, SyncOutcome};
pub use fetch::ReadSharing;
pub use oneshot::{ListError, OneShotOptions, OneShotResult, sync_cluster};
pub use status::RefreshTimeWrites;

// The long-lived controllers, run while holding the leader election Lease.
pub use eso_leader::LeaseConfig;
pub use manager::{Manager, ManagerConfig, ManagerError, ManagerStatus, PerObjectMetrics};

// One-shot push of PushSecrets against a cluster.
pub use push::{PushOneShotResult, PushSyncOutcome, push_cluster};

// The provider contract, so that a provider written outside this workspace needs only eso-core.
pub use eso_provider::{
    ClientContext, ErrorKind, Provider, ProviderError, ProviderRegistry, SecretData, SecretsClient,
    StoreInfo, ValidationResult,
};

// Generators: the caller fills the registry (`eso_providers::generators()` holds the
// built-in kinds); `eso_generator` is the whole generator contract.
pub use eso_generator::GeneratorRegistry;

// Crates whose types appear in the surface.
pub use async_trait::async_trait;
pub use eso_api as api;
pub use eso_generator as generator;
pub use eso_provider as provider;
pub use k8s_openapi;
pub use kube;
