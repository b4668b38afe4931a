//! A local 1Password Connect server per test (`eso-testserver-onepassword`, on 127.0.0.1,
//! stopped when the test ends), the Secret holding the Connect token, and store builders.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use eso_api::provider::{
    OnePasswordAuth, OnePasswordAuthSecretRef, OnePasswordProvider as Spec, SecretStoreProvider,
};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector, SecretStoreSpec, StoreKind};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo,
};
use eso_provider_onepassword::{OnePasswordConfig, OnePasswordProvider};
use eso_testserver_onepassword::OnePasswordTestServer;

/// The namespace of the stores and ExternalSecrets.
pub const NS: &str = "apps";

/// One test's world: a server with vaults `prod` and `staging`, a token for both in Secret
/// `apps/op-token` (key `token`), fast retries and a short push settle wait.
pub struct Env {
    pub server: OnePasswordTestServer,
    pub secrets: StaticSecretReader,
    pub config_maps: StaticConfigMapReader,
    pub config: OnePasswordConfig,
}

impl Env {
    pub async fn new() -> Self {
        let server = OnePasswordTestServer::start().await.unwrap();
        server.vault("prod");
        server.vault("staging");
        let mut secrets = StaticSecretReader::new();
        secrets.insert(
            NS,
            "op-token",
            [("token".to_owned(), server.token().into_bytes())].into(),
        );
        let config = OnePasswordConfig::default()
            .retry_base_delay(Duration::from_millis(20))
            .max_retry_wait(Duration::from_secs(2))
            .settle(Duration::from_millis(500), Duration::from_millis(50));
        Self {
            server,
            secrets,
            config_maps: StaticConfigMapReader::new(),
            config,
        }
    }

    /// A spec searching `vaults` in the given order.
    pub fn spec(&self, vaults: &[&str]) -> Spec {
        Spec {
            auth: Some(OnePasswordAuth {
                secret_ref: Some(OnePasswordAuthSecretRef {
                    connect_token: SecretKeySelector {
                        name: Some("op-token".into()),
                        namespace: None,
                        key: Some("token".into()),
                    },
                }),
            }),
            connect_host: self.server.url(),
            vaults: vaults
                .iter()
                .zip(1..)
                .map(|(v, i)| ((*v).to_owned(), i))
                .collect(),
        }
    }

    pub fn provider(&self) -> OnePasswordProvider {
        OnePasswordProvider::new().config(self.config.clone())
    }

    /// A client of SecretStore `apps/op` searching `prod`, then `staging`.
    pub async fn client(&self) -> Arc<dyn SecretsClient> {
        self.client_with(self.spec(&["prod", "staging"]))
            .await
            .unwrap()
    }

    pub async fn client_with(&self, spec: Spec) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        self.client_for(&store(spec), NS).await
    }

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
                tokens: None,
            })
            .await
    }
}

/// A SecretStore `apps/op` with `spec`.
pub fn store(spec: Spec) -> StoreInfo {
    StoreInfo::secret_store(
        "op",
        NS,
        SecretStoreSpec {
            provider: SecretStoreProvider {
                onepassword: Some(spec),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

/// A ClusterSecretStore `op` with `spec`.
pub fn cluster_store(spec: Spec) -> StoreInfo {
    let mut s = store(spec);
    s.kind = StoreKind::ClusterSecretStore;
    s.namespace = None;
    s
}

pub fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}

pub fn remote_property(key: &str, property: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: Some(property.to_owned()),
        ..Default::default()
    }
}

pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}
