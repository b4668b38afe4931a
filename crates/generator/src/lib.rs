//! `eso-generator`: the contract between the reconciliation core and generators, the kinds of
//! `generators.external-secrets.io/v1alpha1` that create values instead of reading them.
//!
//! It owns the [`Generator`] trait (upstream's `Generate` / `Cleanup`), the [`GeneratorRegistry`]
//! that maps a [`GeneratorKind`] to an implementation, the typed [`GeneratorError`] whose
//! [`ErrorKind`] decides what the reconciler may do, and the kinds that need no remote service:
//! [`Password`], [`Uuid`], [`SshKey`] and [`Fake`] ([`builtin`] registers them). The kinds that
//! talk to a backend live next to the provider whose client and login they reuse:
//! `eso_provider_aws::generators` (`ECRAuthorizationToken`, `STSSessionToken`),
//! `eso_provider_vault::generators` (`VaultDynamicSecret`) and
//! `eso_provider_webhook::generators` (`Webhook`). It depends only on `eso-api` and
//! `eso-provider`, and knows nothing of the Kubernetes client: Secrets, ConfigMaps and
//! ServiceAccount tokens come through the same readers providers use.
//!
//! # What a generator returns, and what the caller keeps
//!
//! [`Generator::generate`] returns [`Generated`]: the data (key to bytes) and, for kinds that
//! leave something behind, a `state` (JSON) that [`Generator::cleanup`] needs later, e.g. the
//! Vault lease to revoke. A generator never remembers anything itself: calling `generate` twice
//! makes two different values. Deciding *when* to generate (first sync, then only when a
//! refresh is due) is the caller's job.
//!
//! # Wiring it into a reconciler (what eso-core does)
//!
//! 1. Build the registry once: `eso_generator::builtin()` plus the provider crates' kinds,
//!    e.g. `.with(Arc::new(eso_provider_vault::generators::VaultDynamicSecretGenerator::new()))`.
//! 2. For a `sourceRef.generatorRef {kind, name}`: read the object (`kind` in the
//!    generators group, in the ExternalSecret's namespace, or the cluster-scoped
//!    `ClusterGenerator`) as JSON and resolve it with
//!    [`eso_api::generators::ResolvedGenerator::from_object`] into the kind and spec.
//! 3. Call [`GeneratorRegistry::generate`] with a [`GeneratorContext`]: the ExternalSecret's
//!    namespace (credential references resolve there, for a ClusterGenerator too, as upstream),
//!    the [`GeneratorObject`] (for messages) and the readers.
//! 4. When [`Generated::state`] is `Some`, record a `GeneratorState` whose `spec.resource` is
//!    [`eso_api::generators::ResolvedGenerator::to_manifest`] and whose `spec.state` is the
//!    state, owned by the ExternalSecret. When the value is superseded or the ExternalSecret is
//!    deleted, call [`GeneratorRegistry::cleanup`] with the resolved manifest and the state,
//!    then delete the GeneratorState. Cleanup is idempotent: cleaning up twice is not an error.
//!
//! # Use
//!
//! ```
//! use eso_api::generators::GeneratorKind;
//! use eso_generator::{GeneratorContext, GeneratorObject};
//! use eso_provider::{StaticConfigMapReader, StaticSecretReader};
//!
//! # tokio_test(async {
//! let registry = eso_generator::builtin();
//! let (secrets, config_maps) = (StaticSecretReader::new(), StaticConfigMapReader::new());
//! let object = GeneratorObject::namespaced(GeneratorKind::Password, "db-password", "apps");
//! let ctx = GeneratorContext::new("apps", object, &secrets, &config_maps);
//! let spec = serde_json::json!({"length": 16, "secretKeys": ["password", "admin"]});
//! let generated = registry.generate(GeneratorKind::Password, ctx, &spec).await?;
//! assert_eq!(generated.data["password"].len(), 16);
//! assert_ne!(generated.data["password"], generated.data["admin"]);
//! assert!(generated.state.is_none(), "passwords leave nothing to clean up");
//! # Ok::<(), eso_generator::GeneratorError>(())
//! # });
//! # fn tokio_test<F: std::future::Future<Output = Result<(), eso_generator::GeneratorError>>>(f: F) {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap();
//! # }
//! ```

mod context;
mod error;
mod fake;
mod password;
mod random;
mod registry;
mod sshkey;
mod uuid;

use async_trait::async_trait;
use eso_api::generators::GeneratorKind;
use eso_provider::SecretData;

pub use context::{GeneratorContext, GeneratorObject};
pub use error::{ErrorKind, GeneratorError};
pub use fake::Fake;
pub use password::{MAX_PASSWORD_LENGTH, Password, PasswordParams};
pub use registry::{GeneratorRegistry, builtin};
pub use sshkey::{MIN_RSA_KEY_SIZE, SshKey};
pub use uuid::Uuid;

/// What a generation produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generated {
    /// The generated data, key to bytes, as it goes into a Secret.
    pub data: SecretData,
    /// What [`Generator::cleanup`] needs later (e.g. a Vault lease id); `None` when nothing
    /// has to be cleaned up.
    pub state: Option<serde_json::Value>,
}

impl Generated {
    /// Data with no state.
    #[must_use]
    pub fn data(data: SecretData) -> Self {
        Self { data, state: None }
    }
}

/// One generator kind.
///
/// `spec` is the kind's spec as JSON (what [`eso_api::generators::ResolvedGenerator`] gives,
/// also for a `ClusterGenerator`); each implementation parses it into its typed spec and
/// reports unknown or malformed fields as [`ErrorKind::InvalidSpec`].
#[async_trait]
pub trait Generator: Send + Sync {
    /// The kind this generator serves.
    fn kind(&self) -> GeneratorKind;

    /// Static checks of a spec, without I/O (for admission, `sync-once render --dry-run` and
    /// status messages before anything is generated); `object` names the generator in
    /// messages. The default checks nothing.
    fn validate(
        &self,
        object: GeneratorObject<'_>,
        spec: &serde_json::Value,
    ) -> Result<(), GeneratorError> {
        let _ = (object, spec);
        Ok(())
    }

    /// Generates new data. Every call makes a new value.
    async fn generate(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &serde_json::Value,
    ) -> Result<Generated, GeneratorError>;

    /// Releases what an earlier [`Generator::generate`] left behind, described by its `state`.
    /// Idempotent: what is already gone is not an error. The default does nothing.
    async fn cleanup(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &serde_json::Value,
        state: &serde_json::Value,
    ) -> Result<(), GeneratorError> {
        let _ = (ctx, spec, state);
        Ok(())
    }
}

/// Parses a kind's spec, naming the offending field in the error (`spec.length: invalid type:
/// string "x", expected i64`).
pub fn parse_spec<T: serde::de::DeserializeOwned>(
    object: &GeneratorObject<'_>,
    spec: &serde_json::Value,
) -> Result<T, GeneratorError> {
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            object.spec_path().to_owned()
        } else {
            format!("{}.{path}", object.spec_path())
        };
        GeneratorError::invalid_spec(format!(
            "{}: {field} is invalid: {}",
            object.describe(),
            e.inner()
        ))
    })
}

/// The same map with string values as bytes.
#[must_use]
pub fn string_data<I, K, V>(entries: I) -> SecretData
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<Vec<u8>>,
{
    entries
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}
