//! A provider written outside eso-rs, plugged into a render: it serves secrets from a
//! `HashMap`. Stores select it with `spec.provider.hashmap: {}`. The same registry works for
//! [`eso_core::sync_cluster`], so a tool can sync a cluster from its own secret source too.
//!
//! ```sh
//! cargo run -p eso-examples --example custom_provider
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use eso_core::api::{ExternalSecretDataRemoteRef, ExternalSecretFind, SecretStoreCapabilities};
use eso_core::{
    ClientContext, ManifestSet, Provider, ProviderError, SecretData, SecretsClient, StoreInfo,
    ValidationResult, async_trait, render_all,
};

/// The provider: one per backend. It validates stores and builds clients.
struct HashMapProvider {
    values: Arc<HashMap<String, String>>,
}

#[async_trait]
impl Provider for HashMapProvider {
    fn key(&self) -> &'static str {
        "hashmap"
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadOnly
    }

    fn validate_store(&self, _store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }

    async fn new_client(
        &self,
        _ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        Ok(Arc::new(HashMapClient(self.values.clone())))
    }
}

/// The client of one store: here, a view of the map.
struct HashMapClient(Arc<HashMap<String, String>>);

#[async_trait]
impl SecretsClient for HashMapClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        // Only a confirmed "not found" may ever lead to removing data; say so precisely.
        self.0
            .get(&remote.key)
            .map(|v| v.clone().into_bytes())
            .ok_or_else(|| ProviderError::not_found(&remote.key))
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let _ = remote;
        Err(ProviderError::unsupported("hashmap cannot extract"))
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let _ = find;
        Err(ProviderError::unsupported("hashmap cannot find"))
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        Ok(ValidationResult::Ready)
    }
}

const MANIFESTS: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: in-memory
spec:
  provider:
    hashmap: {}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: api
spec:
  secretStoreRef:
    name: in-memory
  data:
    - secretKey: token
      remoteRef:
        key: api-token
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let values = HashMap::from([("api-token".to_owned(), "from-my-hashmap".to_owned())]);
    // The built-in providers plus ours; a provider with the same key would be replaced.
    let registry = eso_providers::builtin().with(Arc::new(HashMapProvider {
        values: Arc::new(values),
    }));

    let mut set = ManifestSet::new("default");
    let errors = set.add_text("inline.yaml", MANIFESTS);
    if let Some(e) = errors.first() {
        bail!("{e}");
    }
    for rendered in render_all(&set, &registry).await {
        let secret = rendered
            .result
            .map_err(|e| anyhow::anyhow!("{}: {}", rendered.external_secret, e.chain()))?
            .context("the policies say no Secret is written")?;
        for (key, value) in secret.data.iter().flatten() {
            println!(
                "{} -> Secret {:?} key {key}: {}",
                rendered.external_secret,
                secret.metadata.name.as_deref().unwrap_or_default(),
                String::from_utf8_lossy(&value.0)
            );
        }
    }
    Ok(())
}
