//! A local Google Cloud server per test (`eso-testserver-gcp`, on 127.0.0.1, stopped when the
//! test ends), the Secrets, ConfigMaps and ServiceAccount tokens a store's credentials read,
//! and store builders.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use eso_api::provider::{GcpsmAuth, GcpsmAuthSecretRef, GcpsmProvider, SecretStoreProvider};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector, SecretStoreSpec, StoreKind};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo,
};
use eso_provider_gcp::{GcpConfig, GcpEndpoints, GcpProvider};
use eso_testserver_gcp::{FakeServiceAccountTokens, GcpTestServer};

/// The namespace of the stores and ExternalSecrets.
pub const NS: &str = "apps";
/// The project secrets live in.
pub const PROJECT: &str = "p1";
/// The service account whose key the default store uses.
pub const SA_EMAIL: &str = "eso@p1.iam.gserviceaccount.com";

/// One test's world.
pub struct Env {
    pub server: GcpTestServer,
    pub secrets: StaticSecretReader,
    pub config_maps: StaticConfigMapReader,
    pub tokens: FakeServiceAccountTokens,
    pub config: GcpConfig,
}

impl Env {
    /// A server, a service-account key in Secret `apps/gcp-key` (key `key.json`), and fast
    /// retries.
    pub async fn new() -> Self {
        let server = GcpTestServer::start().await.unwrap();
        let key = server.service_account_key(SA_EMAIL);
        let mut secrets = StaticSecretReader::new();
        secrets.insert(
            NS,
            "gcp-key",
            [("key.json".to_owned(), key.into_bytes())].into(),
        );
        let config = GcpConfig::default()
            .endpoints(GcpEndpoints::all_at(&server.url()))
            .retry_base_delay(Duration::from_millis(20))
            .max_retry_wait(Duration::from_secs(2));
        Self {
            server,
            secrets,
            config_maps: StaticConfigMapReader::new(),
            tokens: FakeServiceAccountTokens::new(),
            config,
        }
    }

    pub fn provider(&self) -> GcpProvider {
        GcpProvider::new().config(self.config.clone())
    }

    /// A client of SecretStore `apps/gcp` with `spec`.
    pub async fn client(
        &self,
        spec: GcpsmProvider,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        self.client_for(&store(spec), NS).await
    }

    /// The error building a client of SecretStore `apps/gcp` with `spec` gives.
    pub async fn client_error(&self, spec: GcpsmProvider) -> ProviderError {
        match self.client(spec).await {
            Ok(_) => panic!("a client was built, an error was expected"),
            Err(e) => e,
        }
    }

    /// A client of `store`, used from `namespace`.
    pub async fn client_for(
        &self,
        store: &StoreInfo,
        namespace: &str,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        self.provider()
            .new_client(ClientContext {
                store,
                namespace,
                secrets: &self.secrets,
                config_maps: &self.config_maps,
                tokens: Some(&self.tokens),
            })
            .await
    }
}

/// A SecretStore `apps/gcp` with `spec`.
pub fn store(spec: GcpsmProvider) -> StoreInfo {
    StoreInfo::secret_store(
        "gcp",
        NS,
        SecretStoreSpec {
            provider: SecretStoreProvider {
                gcpsm: Some(spec),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

/// A ClusterSecretStore `gcp` with `spec`.
pub fn cluster_store(spec: GcpsmProvider) -> StoreInfo {
    let mut s = store(spec);
    s.kind = StoreKind::ClusterSecretStore;
    s.namespace = None;
    s
}

/// Project `p1`, the service-account key in Secret `gcp-key`.
pub fn key_spec() -> GcpsmProvider {
    GcpsmProvider {
        project_id: Some(PROJECT.into()),
        auth: Some(GcpsmAuth {
            secret_ref: Some(GcpsmAuthSecretRef {
                secret_access_key_secret_ref: Some(SecretKeySelector {
                    name: Some("gcp-key".into()),
                    namespace: None,
                    key: Some("key.json".into()),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `remoteRef.key`.
pub fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.into(),
        ..Default::default()
    }
}

/// `remoteRef.key` with a property.
pub fn property(key: &str, property: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.into(),
        property: Some(property.into()),
        ..Default::default()
    }
}

/// `remoteRef.key` at a version.
pub fn version(key: &str, version: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.into(),
        version: Some(version.into()),
        ..Default::default()
    }
}

/// Text of a value.
pub fn text(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap()
}
