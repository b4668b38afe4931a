//! `eso-providers`: the providers built into eso-rs, behind one registry.
//!
//! `eso-core` knows no concrete provider: whoever runs it (the operator, `sync-once`, an
//! embedding tool) hands it a [`ProviderRegistry`]. [`builtin()`] is the registry the binaries
//! use: every provider whose cargo feature is on (all by default), with default settings.
//!
//! | feature | store key(s) (`spec.provider.<key>`) | crate |
//! |---|---|---|
//! | `aws` | `aws` (Secrets Manager and Parameter Store) | [`aws`] |
//! | `azure` | `azurekv` | [`azure`] |
//! | `chef` | `chef` | [`chef`] |
//! | `conjur` | `conjur` | [`conjur`] |
//! | `doppler` | `doppler` | [`doppler`] |
//! | `fake` | `fake` | [`fake`] |
//! | `gcp` | `gcpsm` | [`gcp`] |
//! | `gitlab` | `gitlab` | [`gitlab`] |
//! | `infisical` | `infisical` | [`infisical`] |
//! | `kubernetes` | `kubernetes` | [`kubernetes`] |
//! | `onepassword` | `onepassword` | [`onepassword`] |
//! | `vault` | `vault`, `openBao` | [`vault`] |
//! | `webhook` | `webhook` | [`webhook`] |
//!
//! A provider that needs settings beyond its store spec (the AWS endpoint override, say)
//! replaces its default entry: a provider registered with a key already present replaces it.
//! [`builtin_from_env()`] does so for the endpoint variables the binaries read (Google's,
//! Azure's and Doppler's endpoints, which a store spec cannot name).
//!
//! ```
//! use std::sync::Arc;
//!
//! let registry = eso_providers::builtin()
//!     .with(Arc::new(eso_providers::aws::AwsProvider::new().config(
//!         eso_providers::aws::AwsConfig::default(),
//!     )));
//! assert!(registry.keys().any(|key| key == "aws"));
//! ```

pub use eso_generator::GeneratorRegistry;
pub use eso_provider::ProviderRegistry;

mod env;
pub use env::{EnvError, builtin_from_env};

#[cfg(feature = "aws")]
pub use eso_provider_aws as aws;
#[cfg(feature = "azure")]
pub use eso_provider_azure as azure;
#[cfg(feature = "chef")]
pub use eso_provider_chef as chef;
#[cfg(feature = "conjur")]
pub use eso_provider_conjur as conjur;
#[cfg(feature = "doppler")]
pub use eso_provider_doppler as doppler;
#[cfg(feature = "fake")]
pub use eso_provider_fake as fake;
#[cfg(feature = "gcp")]
pub use eso_provider_gcp as gcp;
#[cfg(feature = "gitlab")]
pub use eso_provider_gitlab as gitlab;
#[cfg(feature = "infisical")]
pub use eso_provider_infisical as infisical;
#[cfg(feature = "kubernetes")]
pub use eso_provider_kubernetes as kubernetes;
#[cfg(feature = "onepassword")]
pub use eso_provider_onepassword as onepassword;
#[cfg(feature = "vault")]
pub use eso_provider_vault as vault;
#[cfg(feature = "webhook")]
pub use eso_provider_webhook as webhook;

/// A registry with every provider whose cargo feature is on, with default settings
/// ([`ProviderRegistry::keys`] lists their store keys). Add or replace providers with
/// [`ProviderRegistry::with`].
#[must_use]
pub fn builtin() -> ProviderRegistry {
    #[allow(unused_mut)] // with no provider feature on, nothing is registered
    let mut registry = ProviderRegistry::new();
    #[cfg(feature = "aws")]
    registry.register(std::sync::Arc::new(aws::AwsProvider::new()));
    #[cfg(feature = "azure")]
    registry.register(std::sync::Arc::new(azure::AzureKvProvider::new()));
    #[cfg(feature = "chef")]
    registry.register(std::sync::Arc::new(chef::ChefProvider::new()));
    #[cfg(feature = "conjur")]
    registry.register(std::sync::Arc::new(conjur::ConjurProvider::new()));
    #[cfg(feature = "doppler")]
    registry.register(std::sync::Arc::new(doppler::DopplerProvider::new()));
    #[cfg(feature = "fake")]
    registry.register(std::sync::Arc::new(fake::FakeProvider));
    #[cfg(feature = "gcp")]
    registry.register(std::sync::Arc::new(gcp::GcpProvider::new()));
    #[cfg(feature = "gitlab")]
    registry.register(std::sync::Arc::new(gitlab::GitlabProvider::new()));
    #[cfg(feature = "infisical")]
    registry.register(std::sync::Arc::new(infisical::InfisicalProvider::new()));
    #[cfg(feature = "kubernetes")]
    registry.register(std::sync::Arc::new(kubernetes::KubernetesProvider::new()));
    #[cfg(feature = "onepassword")]
    registry.register(std::sync::Arc::new(onepassword::OnePasswordProvider::new()));
    #[cfg(feature = "vault")]
    {
        registry.register(std::sync::Arc::new(vault::VaultProvider::vault()));
        registry.register(std::sync::Arc::new(vault::VaultProvider::open_bao()));
    }
    #[cfg(feature = "webhook")]
    registry.register(std::sync::Arc::new(webhook::WebhookProvider::new()));
    registry
}

/// The generator kinds (`sourceRef.generatorRef`) built in: those of [`eso_generator::builtin`]
/// (`Password`, `UUID`, `SSHKey`, `Fake`) plus, under the same features as their providers,
/// `ECRAuthorizationToken` and `STSSessionToken` (`aws`), `VaultDynamicSecret` (`vault`) and
/// `Webhook` (`webhook`), with default settings. Replace a kind that needs settings (the AWS
/// endpoints) with [`GeneratorRegistry::with`].
///
/// ```
/// let kinds: Vec<_> = eso_providers::generators().kinds().map(|k| k.as_str()).collect();
/// assert!(kinds.contains(&"Password"));
/// ```
#[must_use]
pub fn generators() -> GeneratorRegistry {
    #[allow(unused_mut)] // with no provider feature on, only eso-generator's kinds
    let mut registry = eso_generator::builtin();
    #[cfg(feature = "aws")]
    {
        registry.register(std::sync::Arc::new(
            aws::generators::StsSessionTokenGenerator::new(),
        ));
        registry.register(std::sync::Arc::new(
            aws::generators::EcrAuthorizationTokenGenerator::new(),
        ));
    }
    #[cfg(feature = "vault")]
    registry.register(std::sync::Arc::new(
        vault::generators::VaultDynamicSecretGenerator::new(),
    ));
    #[cfg(feature = "webhook")]
    registry.register(std::sync::Arc::new(
        webhook::generators::WebhookGenerator::new(),
    ));
    registry
}

#[cfg(all(
    test,
    feature = "aws",
    feature = "azure",
    feature = "chef",
    feature = "conjur",
    feature = "doppler",
    feature = "fake",
    feature = "gcp",
    feature = "gitlab",
    feature = "infisical",
    feature = "kubernetes",
    feature = "onepassword",
    feature = "vault",
    feature = "webhook"
))]
mod tests {
    #[test]
    fn the_default_registry_serves_every_typed_store_key_of_the_api() {
        // The typed provider keys come from the JSON schema of the store spec's `provider`
        // field, so a provider added to the API but not registered here fails this test.
        let schema = schemars::schema_for!(eso_api::provider::SecretStoreProvider);
        let schema = serde_json::to_value(schema).unwrap_or_default();
        let api_keys: Vec<String> = schema["properties"]
            .as_object()
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default();
        assert!(
            api_keys.len() >= 14,
            "schema lists too few providers: {api_keys:?}"
        );
        let registered: Vec<&str> = super::builtin().keys().collect();
        for key in &api_keys {
            assert!(
                registered.contains(&key.as_str()),
                "store key {key} has no built-in provider; registered: {registered:?}"
            );
        }
    }

    #[test]
    fn the_default_generators_serve_every_kind_whose_crd_is_installed() {
        // Every generator kind with a CRD of its own (not ClusterGenerator or GeneratorState)
        // must have an implementation, or objects users can create would fail as unsupported.
        let registered: Vec<&str> = super::generators()
            .kinds()
            .map(eso_api::generators::GeneratorKind::as_str)
            .collect();
        let crds = eso_api::crds::generators();
        let kinds: Vec<String> = crds
            .iter()
            .map(|crd| crd.spec.names.kind.clone())
            .filter(|k| k != "ClusterGenerator" && k != "GeneratorState")
            .collect();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        for kind in &kinds {
            assert!(
                registered.contains(&kind.as_str()),
                "generator kind {kind} has a CRD but no built-in implementation; registered: {registered:?}"
            );
        }
    }
}
