use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use eso_api::{
    ExternalSecretDataRemoteRef, ExternalSecretFind, SecretKeySelector, SecretStoreCapabilities,
    SecretStoreSpec, StoreKind,
};

use crate::ProviderError;

/// Secret data as the Kubernetes API holds it: keys to raw bytes.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// A store as a provider sees it: identity (for caching and messages) and spec.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreInfo {
    /// `SecretStore` or `ClusterSecretStore`.
    pub kind: StoreKind,
    /// The store's name.
    pub name: String,
    /// The store's namespace (`None` for a ClusterSecretStore).
    pub namespace: Option<String>,
    /// The store's uid, when it came from an API server.
    pub uid: Option<String>,
    /// The store's generation, when it came from an API server.
    pub generation: Option<i64>,
    /// The store's spec.
    pub spec: SecretStoreSpec,
}

impl StoreInfo {
    /// A namespaced SecretStore that did not come from an API server (no uid, no generation),
    /// as offline tools and tests describe one.
    #[must_use]
    pub fn secret_store(
        name: impl Into<String>,
        namespace: impl Into<String>,
        spec: SecretStoreSpec,
    ) -> Self {
        Self {
            kind: StoreKind::SecretStore,
            name: name.into(),
            namespace: Some(namespace.into()),
            uid: None,
            generation: None,
            spec,
        }
    }

    /// `SecretStore "ns/name"` or `ClusterSecretStore "name"`, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} \"{ns}/{}\"", self.kind.as_str(), self.name),
            None => format!("{} \"{}\"", self.kind.as_str(), self.name),
        }
    }
}

/// Reads Kubernetes Secrets that a store's credentials refer to. The operator reads from the
/// API server; `sync-once render` from the manifests it was given.
#[async_trait]
pub trait SecretReader: Send + Sync {
    /// The data of the Secret `namespace/name`, or `None` when it does not exist.
    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ProviderError>;
}

/// A [`SecretReader`] over an in-memory set of Secrets keyed by (namespace, name).
#[derive(Debug, Clone, Default)]
pub struct StaticSecretReader {
    secrets: BTreeMap<(String, String), SecretData>,
}

impl StaticSecretReader {
    /// An empty reader.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a Secret.
    pub fn insert(&mut self, namespace: &str, name: &str, data: SecretData) {
        self.secrets
            .insert((namespace.to_owned(), name.to_owned()), data);
    }
}

#[async_trait]
impl SecretReader for StaticSecretReader {
    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ProviderError> {
        Ok(self
            .secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned())
    }
}

/// Reads Kubernetes ConfigMaps: a store's `caProvider` of type `ConfigMap` here, and
/// `templateFrom` ConfigMaps in eso-core. The operator reads from the API server;
/// `sync-once render` from the manifests it was given.
#[async_trait]
pub trait ConfigMapReader: Send + Sync {
    /// The `data` of ConfigMap `namespace/name`, or `None` when it does not exist.
    async fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError>;
}

/// A [`ConfigMapReader`] over an in-memory set of ConfigMaps keyed by (namespace, name).
#[derive(Debug, Clone, Default)]
pub struct StaticConfigMapReader {
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
}

impl StaticConfigMapReader {
    /// An empty reader.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a ConfigMap.
    pub fn insert(&mut self, namespace: &str, name: &str, data: BTreeMap<String, String>) {
        self.config_maps
            .insert((namespace.to_owned(), name.to_owned()), data);
    }
}

#[async_trait]
impl ConfigMapReader for StaticConfigMapReader {
    async fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        Ok(self
            .config_maps
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned())
    }
}

/// Issues ServiceAccount tokens (the Kubernetes TokenRequest API), for providers that log in
/// with a workload identity (Vault's Kubernetes and JWT auth, AWS web identity, ...).
#[async_trait]
pub trait ServiceAccountTokens: Send + Sync {
    /// A token for ServiceAccount `namespace/name` with the given audiences.
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError>;

    /// The annotations of ServiceAccount `namespace/name` (AWS web identity takes its role from
    /// `eks.amazonaws.com/role-arn`), or `None` when it does not exist. The default reads
    /// nothing and answers an empty map, for token sources that cannot read ServiceAccounts.
    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let _ = (namespace, name);
        Ok(Some(BTreeMap::new()))
    }
}

/// Everything a provider needs to build a client.
#[derive(Clone, Copy)]
pub struct ClientContext<'a> {
    /// The store.
    pub store: &'a StoreInfo,
    /// The namespace of the object using the store (for referent credentials on cluster
    /// stores).
    pub namespace: &'a str,
    /// Where credential Secrets are read from.
    pub secrets: &'a dyn SecretReader,
    /// Where ConfigMaps (a `caProvider` of type `ConfigMap`) are read from.
    pub config_maps: &'a dyn ConfigMapReader,
    /// Where ServiceAccount tokens come from; `None` offline (`sync-once render`).
    pub tokens: Option<&'a dyn ServiceAccountTokens>,
}

impl ClientContext<'_> {
    /// The namespace a credential reference resolves in, with upstream's rules: a SecretStore
    /// always uses its own namespace; a ClusterSecretStore the reference's namespace, or
    /// (referent auth) the namespace of the object using the store.
    #[must_use]
    pub fn credential_namespace<'b>(&'b self, requested: Option<&'b str>) -> &'b str {
        match (&self.store.namespace, requested) {
            (Some(own), _) => own.as_str(),
            (None, Some(ns)) if !ns.is_empty() => ns,
            (None, _) => self.namespace,
        }
    }

    /// A token for a ServiceAccount a store names, in the namespace the usual rules give.
    pub async fn service_account_token(
        &self,
        account: &eso_api::common::ServiceAccountSelector,
        default_audiences: &[String],
    ) -> Result<String, ProviderError> {
        let namespace = self.credential_namespace(account.namespace.as_deref());
        let tokens = self.tokens.ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{}: a token for ServiceAccount \"{namespace}/{}\" is needed, and none can be requested here (no cluster)",
                self.store.describe(),
                account.name
            ))
        })?;
        let mut audiences = account.audiences.clone();
        if audiences.is_empty() {
            audiences = default_audiences.to_vec();
        }
        tokens
            .token(namespace, &account.name, &audiences, None)
            .await
    }

    /// Reads the Secret key a store credential refers to, with upstream's namespace rules: a
    /// SecretStore always reads from its own namespace; a ClusterSecretStore reads from the
    /// selector's namespace, or (referent auth) from the namespace of the object using it.
    pub async fn read_secret_key(
        &self,
        selector: &SecretKeySelector,
        field: &str,
    ) -> Result<Vec<u8>, ProviderError> {
        let name = selector
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "{}: {field}.name is required",
                    self.store.describe()
                ))
            })?;
        let key = selector
            .key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "{}: {field}.key is required",
                    self.store.describe()
                ))
            })?;
        let namespace = self.credential_namespace(selector.namespace.as_deref());
        let data = self
            .secrets
            .secret_data(namespace, name)
            .await?
            .ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "{}: {field} refers to Secret \"{namespace}/{name}\", which does not exist",
                    self.store.describe()
                ))
            })?;
        data.get(key).cloned().ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{}: {field} refers to key {key:?} of Secret \"{namespace}/{name}\", which it does not have",
                self.store.describe()
            ))
        })
    }
}

/// The outcome of a live store check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationResult {
    /// The store works.
    Ready,
    /// The provider cannot tell (reported as Ready, as upstream does).
    Unknown,
}

/// Where a pushed value goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRemoteRef {
    /// The remote key.
    pub remote_key: String,
    /// A property inside the remote value, if any.
    pub property: Option<String>,
}

/// One value to push.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushRequest {
    /// The value (one Secret key's bytes, or the JSON of the whole Secret).
    pub value: Vec<u8>,
    /// The Secret key the value came from; `None` when the whole Secret is pushed.
    pub secret_key: Option<String>,
    /// Where it goes.
    pub remote: PushRemoteRef,
    /// Provider-specific metadata from the PushSecret.
    pub metadata: Option<serde_json::Value>,
}

/// A provider: one per backend (`fake`, `vault`, `aws`, ...).
#[async_trait]
pub trait Provider: Send + Sync {
    /// The store key this provider serves (`spec.provider.<key>`).
    fn key(&self) -> &'static str;

    /// A name for metrics and messages, e.g. `HashiCorp/Vault`.
    fn display_name(&self) -> &'static str {
        self.key()
    }

    /// What the provider can do.
    fn capabilities(&self) -> SecretStoreCapabilities;

    /// Static checks of the store's spec, without I/O. Returns warnings.
    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError>;

    /// Builds an authenticated client for the store.
    async fn new_client(
        &self,
        ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError>;
}

/// An authenticated client of one store.
#[async_trait]
pub trait SecretsClient: Send + Sync {
    /// One value, for `data[]`.
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError>;

    /// A map of values, for `dataFrom[].extract`.
    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError>;

    /// Every matching value, for `dataFrom[].find`.
    async fn get_all_secrets(&self, find: &ExternalSecretFind)
    -> Result<SecretData, ProviderError>;

    /// Writes one value.
    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let _ = request;
        Err(ProviderError::unsupported(
            "this provider cannot push secrets",
        ))
    }

    /// Deletes a pushed value.
    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let _ = remote;
        Err(ProviderError::unsupported(
            "this provider cannot delete secrets",
        ))
    }

    /// Whether a remote value exists.
    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        let _ = remote;
        Err(ProviderError::unsupported(
            "this provider cannot check for secrets",
        ))
    }

    /// A live check of the store.
    async fn validate(&self) -> Result<ValidationResult, ProviderError>;

    /// Whether [`SecretsClient::get_secret`] on a pushed remote key reads back what
    /// [`SecretsClient::push_secret`] wrote, without side effects, so that a push can compare
    /// before it writes. True for stores; false where reading and pushing are the same request
    /// to the same endpoint (the webhook provider), where a push is sent without comparing.
    fn reads_back_pushes(&self) -> bool {
        true
    }

    /// Releases resources.
    async fn close(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}
