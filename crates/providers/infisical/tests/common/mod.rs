//! A local Infisical server per test (`eso-testserver-infisical`, on 127.0.0.1, stopped when
//! the test ends), the Secrets a store's credentials read, and store builders.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use eso_api::provider::{
    InfisicalAuth, InfisicalProvider as Spec, InfisicalSecretsScope, InfisicalUniversalAuth,
    SecretStoreProvider,
};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector, SecretStoreSpec, StoreKind};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo,
};
use eso_provider_infisical::{InfisicalConfig, InfisicalProvider};
use eso_testserver_infisical::{IdentityCredentials, InfisicalTestServer};

/// The namespace of the stores and ExternalSecrets.
pub const NS: &str = "apps";
/// The project every test reads.
pub const PROJECT: &str = "shop";
/// The environment every test reads.
pub const ENV: &str = "dev";

/// One test's world: a server with project `shop` (environments `dev` and `prod`), identity
/// `eso` whose Universal Auth credentials are in Secret `apps/infisical` (keys `clientId`,
/// `clientSecret`), and fast retries.
pub struct Env {
    pub server: InfisicalTestServer,
    pub identity: IdentityCredentials,
    pub secrets: StaticSecretReader,
    pub config_maps: StaticConfigMapReader,
    pub config: InfisicalConfig,
}

impl Env {
    pub async fn new() -> Self {
        let server = InfisicalTestServer::start().await.unwrap();
        server.project(PROJECT, &[ENV, "prod"]);
        let identity = server.identity("eso");
        let mut secrets = StaticSecretReader::new();
        secrets.insert(
            NS,
            "infisical",
            [
                (
                    "clientId".to_owned(),
                    identity.client_id.clone().into_bytes(),
                ),
                (
                    "clientSecret".to_owned(),
                    identity.client_secret.clone().into_bytes(),
                ),
            ]
            .into(),
        );
        let config = InfisicalConfig::default()
            .retry_base_delay(Duration::from_millis(20))
            .max_retry_wait(Duration::from_secs(2));
        Self {
            server,
            identity,
            secrets,
            config_maps: StaticConfigMapReader::new(),
            config,
        }
    }

    /// A store spec with Universal Auth, scoped to `shop`/`dev` at `path`.
    pub fn spec(&self, path: &str) -> Spec {
        Spec {
            auth: InfisicalAuth {
                universal_auth_credentials: Some(InfisicalUniversalAuth {
                    client_id: selector("infisical", "clientId"),
                    client_secret: selector("infisical", "clientSecret"),
                }),
                ..InfisicalAuth::default()
            },
            secrets_scope: InfisicalSecretsScope {
                secrets_path: Some(path.to_owned()),
                environment_slug: ENV.to_owned(),
                project_slug: PROJECT.to_owned(),
                ..InfisicalSecretsScope::default()
            },
            host_api: Some(self.server.api_url()),
            ..Spec::default()
        }
    }

    pub fn provider(&self) -> InfisicalProvider {
        InfisicalProvider::new().config(self.config.clone())
    }

    /// A client of SecretStore `apps/infisical` with `spec`.
    pub async fn client(&self, spec: Spec) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        self.client_for(&store(spec), NS).await
    }

    /// A client of the default spec at `/`.
    pub async fn root_client(&self) -> Arc<dyn SecretsClient> {
        self.client(self.spec("/")).await.unwrap()
    }

    /// The error building a client of SecretStore `apps/infisical` with `spec` gives.
    pub async fn client_error(&self, spec: Spec) -> ProviderError {
        match self.client(spec).await {
            Ok(_) => panic!("a client was built, an error was expected"),
            Err(e) => e,
        }
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

pub fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.to_owned()),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

/// A SecretStore `apps/infisical` with `spec`.
pub fn store(spec: Spec) -> StoreInfo {
    StoreInfo::secret_store(
        "infisical",
        NS,
        SecretStoreSpec {
            provider: SecretStoreProvider {
                infisical: Some(spec),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

/// A ClusterSecretStore `infisical` with `spec`.
pub fn cluster_store(spec: Spec) -> StoreInfo {
    let mut s = store(spec);
    s.kind = StoreKind::ClusterSecretStore;
    s.namespace = None;
    s
}

/// A `remoteRef` for `key`.
pub fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}

/// A `remoteRef` for `key` and `property`.
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
