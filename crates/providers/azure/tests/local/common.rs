//! A started server, the provider pointed at it, store builders, a ServiceAccount token
//! source and a metrics recorder.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eso_api::common::ServiceAccountSelector;
use eso_api::provider::{AzureAuthType, AzureKvAuth, AzureKvProvider as AzureSpec};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector, SecretStoreSpec};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, ServiceAccountTokens,
    StaticConfigMapReader, StaticSecretReader, StoreInfo,
};
use eso_provider_azure::{AzureConfig, AzureKvProvider};
use eso_testserver_azure::AzureTestServer;

pub const NS: &str = "apps";
pub const ISSUER: &str = "https://oidc.cluster.test";
pub const SP: &str = "sp-app";
pub const SP_SECRET: &str = "s3cret";

/// ServiceAccount tokens as the cluster would issue them, with annotations.
#[derive(Default)]
pub struct Tokens {
    pub annotations: Mutex<HashMap<(String, String), BTreeMap<String, String>>>,
    pub requests: Mutex<Vec<(String, String, Vec<String>)>>,
}

#[async_trait]
impl ServiceAccountTokens for Tokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        _: Option<i64>,
    ) -> Result<String, ProviderError> {
        self.requests
            .lock()
            .unwrap()
            .push((namespace.into(), name.into(), audiences.to_vec()));
        Ok(eso_testserver_azure::service_account_jwt(
            ISSUER, namespace, name, audiences,
        ))
    }

    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        Ok(self
            .annotations
            .lock()
            .unwrap()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned())
    }
}

pub struct Env {
    pub server: AzureTestServer,
    pub provider: AzureKvProvider,
    pub secrets: StaticSecretReader,
    pub tokens: Tokens,
}

pub fn config(server: &AzureTestServer) -> AzureConfig {
    AzureConfig::default()
        .authority_host(&server.authority_host())
        .imds_endpoint(&server.imds_endpoint())
        .extra_roots_pem(server.ca_pem().as_bytes().to_vec())
        .retries(2, Duration::from_millis(10))
        .recovery_polling(Duration::from_millis(20), Duration::from_secs(5))
}

impl Env {
    pub fn new() -> Self {
        let server = AzureTestServer::start().unwrap();
        server.add_client_secret(SP, SP_SECRET);
        let provider = AzureKvProvider::new().config(config(&server));
        let mut secrets = StaticSecretReader::new();
        secrets.insert(
            NS,
            "azure-creds",
            [
                ("client-id".to_owned(), SP.as_bytes().to_vec()),
                ("client-secret".to_owned(), SP_SECRET.as_bytes().to_vec()),
            ]
            .into(),
        );
        Self {
            server,
            provider,
            secrets,
            tokens: Tokens::default(),
        }
    }

    /// A store spec for this server: service principal with a client secret.
    pub fn spec(&self) -> AzureSpec {
        AzureSpec {
            vault_url: self.server.vault_url().to_owned(),
            tenant_id: Some(self.server.tenant()),
            auth_secret_ref: Some(AzureKvAuth {
                client_id: Some(sel("azure-creds", "client-id")),
                client_secret: Some(sel("azure-creds", "client-secret")),
                ..AzureKvAuth::default()
            }),
            ..AzureSpec::default()
        }
    }

    pub fn store(spec: AzureSpec) -> StoreInfo {
        let mut s = SecretStoreSpec::default();
        s.provider.azurekv = Some(spec);
        StoreInfo::secret_store("azure", NS, s)
    }

    pub async fn client_for(
        &self,
        spec: AzureSpec,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = Self::store(spec);
        let config_maps = StaticConfigMapReader::new();
        self.provider
            .new_client(ClientContext {
                store: &store,
                namespace: NS,
                secrets: &self.secrets,
                config_maps: &config_maps,
                tokens: Some(&self.tokens),
            })
            .await
    }

    pub async fn client(&self) -> Arc<dyn SecretsClient> {
        self.client_for(self.spec()).await.unwrap()
    }
}

pub fn sel(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.to_owned()),
        key: Some(key.to_owned()),
        namespace: None,
    }
}

pub fn workload_spec(env: &Env, account: &str) -> AzureSpec {
    AzureSpec {
        auth_type: Some(AzureAuthType::WorkloadIdentity),
        auth_secret_ref: None,
        service_account_ref: Some(ServiceAccountSelector {
            name: account.to_owned(),
            ..ServiceAccountSelector::default()
        }),
        ..env.spec()
    }
}

pub fn remote(key: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        ..ExternalSecretDataRemoteRef::default()
    }
}

// ----- metrics -----------------------------------------------------------------------------

pub type Counts = Arc<Mutex<BTreeMap<(String, String, String), u64>>>;

struct Count(Counts, (String, String, String));

impl metrics::CounterFn for Count {
    fn increment(&self, value: u64) {
        *self.0.lock().unwrap().entry(self.1.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.0.lock().unwrap().insert(self.1.clone(), value);
    }
}

/// Counts `externalsecret_provider_api_calls_count` by (provider, call, status).
#[derive(Default)]
pub struct Recorder(pub Counts);

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        if key.name() != "externalsecret_provider_api_calls_count" {
            return metrics::Counter::noop();
        }
        let label = |n: &str| {
            key.labels()
                .find(|l| l.key() == n)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        metrics::Counter::from_arc(Arc::new(Count(
            self.0.clone(),
            (label("provider"), label("call"), label("status")),
        )))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}
