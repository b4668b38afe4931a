//! A local Doppler server per test (`eso-testserver-doppler`, on 127.0.0.1, stopped when the
//! test ends), the Secret holding the token, ServiceAccount tokens for OIDC, and stores.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eso_api::provider::{
    DopplerAuth, DopplerAuthSecretRef, DopplerProvider as Spec, SecretStoreProvider,
};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector, SecretStoreSpec, StoreKind};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, ServiceAccountTokens,
    StaticConfigMapReader, StaticSecretReader, StoreInfo,
};
use eso_provider_doppler::{DopplerConfig, DopplerProvider};
use eso_testserver_doppler::DopplerTestServer;

/// The namespace of the stores and ExternalSecrets.
pub const NS: &str = "apps";

/// ServiceAccount tokens that spell out what was asked for:
/// `sa:{namespace}:{name}:{audiences,…}:{expiration}`.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl Tokens {
    pub fn spell(namespace: &str, name: &str, audiences: &[String], expiration: i64) -> String {
        format!("sa:{namespace}:{name}:{}:{expiration}", audiences.join(","))
    }
}

#[async_trait]
impl ServiceAccountTokens for Tokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError> {
        let t = Self::spell(namespace, name, audiences, expiration_seconds.unwrap_or(0));
        self.asked.lock().unwrap().push(t.clone());
        Ok(t)
    }
}

/// One test's world: a server with config `backend`/`prd`, a service token for it in Secret
/// `apps/doppler` (key `dopplerToken`) and a personal token (key `personal`).
pub struct Env {
    pub server: DopplerTestServer,
    pub secrets: StaticSecretReader,
    pub config_maps: StaticConfigMapReader,
    pub tokens: Tokens,
    pub config: DopplerConfig,
}

impl Env {
    pub async fn new() -> Self {
        let server = DopplerTestServer::start().await.unwrap();
        server.config("backend", "prd");
        let mut secrets = StaticSecretReader::new();
        secrets.insert(
            NS,
            "doppler",
            [
                (
                    "dopplerToken".to_owned(),
                    server.service_token("backend", "prd").into_bytes(),
                ),
                ("personal".to_owned(), server.personal_token().into_bytes()),
            ]
            .into(),
        );
        let config = DopplerConfig::default()
            .base_url(&server.url())
            .unwrap()
            .retry_base_delay(Duration::from_millis(20))
            .max_retry_wait(Duration::from_secs(2));
        Self {
            server,
            secrets,
            config_maps: StaticConfigMapReader::new(),
            tokens: Tokens::default(),
            config,
        }
    }

    /// A spec with the service token (no project or config: the token names them).
    pub fn spec(&self) -> Spec {
        Spec {
            auth: DopplerAuth {
                secret_ref: Some(DopplerAuthSecretRef {
                    doppler_token: SecretKeySelector {
                        name: Some("doppler".into()),
                        namespace: None,
                        key: None,
                    },
                }),
                oidc_config: None,
            },
            ..Spec::default()
        }
    }

    /// A spec with the personal token and `project`/`config`.
    pub fn personal_spec(&self, project: &str, config: &str) -> Spec {
        let mut spec = self.spec();
        if let Some(s) = spec.auth.secret_ref.as_mut() {
            s.doppler_token.key = Some("personal".into());
        }
        spec.project = Some(project.into());
        spec.config = Some(config.into());
        spec
    }

    pub fn provider(&self) -> DopplerProvider {
        DopplerProvider::new().config(self.config.clone())
    }

    pub async fn client(&self) -> Arc<dyn SecretsClient> {
        self.client_with(self.spec()).await.unwrap()
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
                tokens: Some(&self.tokens),
            })
            .await
    }
}

/// A SecretStore `apps/doppler` with `spec`.
pub fn store(spec: Spec) -> StoreInfo {
    StoreInfo::secret_store(
        "doppler",
        NS,
        SecretStoreSpec {
            provider: SecretStoreProvider {
                doppler: Some(spec),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

/// A ClusterSecretStore `doppler` with `spec`.
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

pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}
