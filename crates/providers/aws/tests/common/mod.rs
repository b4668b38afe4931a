//! A real moto server for the tests (`moto_server`, from `pip install 'moto[server]'`), an
//! SDK client to seed data, a metrics recorder, and store builders.
//!
//! Servers are started through a small `sh` watchdog that kills moto when its stdin closes:
//! when the test process exits (even on SIGKILL) the kernel closes the pipe, so no moto
//! outlives the tests, including the shared server held in a static.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use eso_api::provider::{AwsAuth, AwsAuthSecretRef, AwsProvider as AwsSpec, AwsService};
use eso_api::{SecretKeySelector, SecretStoreSpec};
use eso_provider::{
    ClientContext, Provider, ProviderError, SecretsClient, ServiceAccountTokens,
    StaticSecretReader, StoreInfo,
};
use eso_provider_aws::{AwsConfig, AwsProvider};
use eso_test_support::metrics::ApiCalls;
use eso_test_support::process::Watched;
use tokio::sync::OnceCell;

pub const NS: &str = "default";
pub const REGION: &str = "eu-west-1";
pub use eso_test_support::tools::free_port;

/// One running `moto_server`.
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    process: Watched,
}

impl Moto {
    /// Starts a server on a free port and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra environment variables (e.g. moto's auth mode).
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::start_on(free_port(), env)
    }

    fn start_on(port: u16, env: Vec<(String, String)>) -> Self {
        // Under target/tmp: the shared server lives in a static, which is never dropped, so
        // its log is not removed; this keeps it out of /tmp and available after a failure.
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{port}.log"));
        let process = eso_test_support::moto::start_moto(port, &env, &log);
        Self {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            env,
            log,
            process,
        }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// A server that records every request it serves (moto's recorder), for
    /// [`Moto::recorded`].
    pub async fn start_recording() -> Self {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("moto-recording-{}", unique("rec")));
        let path = path.to_str().unwrap().to_owned();
        Self::start_with(&[
            ("MOTO_ENABLE_RECORDING", "true"),
            ("MOTO_RECORDER_FILEPATH", &path),
        ])
        .await
    }

    /// The requests a [`Moto::start_recording`] server served: (operation, body), the
    /// operation from `X-Amz-Target` (JSON protocols) or the `Action` form field (query
    /// protocols such as STS).
    pub fn recorded(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        let path = self
            .env
            .iter()
            .find(|(k, _)| k == "MOTO_RECORDER_FILEPATH")
            .map(|(_, v)| v.clone())
            .unwrap();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                let raw = entry["body"].as_str().unwrap_or_default();
                let body = if entry["body_encoded"] == true {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap();
                    String::from_utf8_lossy(&bytes).into_owned()
                } else {
                    raw.to_owned()
                };
                let target = entry["headers"]["X-Amz-Target"]
                    .as_str()
                    .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
                    .or_else(|| {
                        body.split('&')
                            .find_map(|kv| kv.strip_prefix("Action="))
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                (target, body)
            })
            .collect()
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts a fresh (empty) server on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let fresh = Self::start_on(self.port, self.env.clone());
        *self = fresh;
    }

    /// An admin Secrets Manager client for seeding and checking.
    pub fn sm(&self) -> aws_sdk_secretsmanager::Client {
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("admin", "admin", None, None, "test"))
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    /// An admin SSM client for seeding and checking.
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("admin", "admin", None, None, "test"))
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

static SHARED: OnceCell<Moto> = OnceCell::const_new();

/// The server shared by a test binary (tests use unique names, so they never see each
/// other's data).
pub async fn moto() -> &'static Moto {
    SHARED.get_or_init(Moto::start).await
}

/// A unique name per test.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

// ----- metrics -----------------------------------------------------------------------------

fn api_calls() -> &'static ApiCalls {
    static CALLS: OnceLock<ApiCalls> = OnceLock::new();
    CALLS.get_or_init(|| {
        let calls = ApiCalls::new();
        calls.install_global();
        calls
    })
}

/// Installs the counting recorder (once per binary).
pub fn install_recorder() {
    let _ = api_calls();
}

/// How many calls were counted with these labels.
pub fn calls(provider: &str, call: &str, status: &str) -> u64 {
    api_calls().get(provider, call, status)
}

// ----- stores and clients ------------------------------------------------------------------

/// One TokenRequest: (namespace, name, audiences).
pub type TokenAsk = (String, String, Vec<String>);

/// ServiceAccount tokens for tests: always the same string (moto does not check it), and
/// one ServiceAccount's annotations.
#[derive(Default)]
pub struct FakeTokens {
    pub asked: Mutex<Vec<TokenAsk>>,
    pub annotations: BTreeMap<String, String>,
}

#[async_trait]
impl ServiceAccountTokens for FakeTokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        _expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError> {
        self.asked.lock().unwrap().push((
            namespace.to_owned(),
            name.to_owned(),
            audiences.to_vec(),
        ));
        Ok(
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDplc28ifQ.c2ln"
                .to_owned(),
        )
    }

    async fn service_account_annotations(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        Ok(Some(self.annotations.clone()))
    }
}

pub fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.to_owned()),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

/// A store, the Secrets its credentials live in, and optional ServiceAccount tokens.
pub struct TestStore {
    pub spec: AwsSpec,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub tokens: Option<Arc<FakeTokens>>,
    pub config: AwsConfig,
}

impl TestStore {
    /// A store of `service` on the server, with static credentials from a Secret.
    pub fn new(moto: &Moto, service: AwsService) -> Self {
        Self {
            spec: AwsSpec {
                service,
                region: REGION.to_owned(),
                ..Default::default()
            },
            secrets: BTreeMap::new(),
            tokens: None,
            config: AwsConfig::default()
                .endpoint_url(Some(moto.endpoint.clone()))
                .max_attempts(1),
        }
        .static_keys("AKIAEXAMPLE", "secret", None)
    }

    pub fn sm(moto: &Moto) -> Self {
        Self::new(moto, AwsService::SecretsManager)
    }

    pub fn ps(moto: &Moto) -> Self {
        Self::new(moto, AwsService::ParameterStore)
    }

    pub fn secret(mut self, name: &str, key: &str, value: &str) -> Self {
        self.secrets
            .entry(name.to_owned())
            .or_default()
            .insert(key.to_owned(), value.as_bytes().to_vec());
        self
    }

    pub fn static_keys(self, access_key: &str, secret_key: &str, token: Option<&str>) -> Self {
        let mut s = self.secret("aws-creds", "access-key", access_key).secret(
            "aws-creds",
            "secret-key",
            secret_key,
        );
        if let Some(t) = token {
            s = s.secret("aws-creds", "session-token", t);
        }
        s.spec.auth = Some(AwsAuth {
            secret_ref: Some(AwsAuthSecretRef {
                access_key_id_secret_ref: Some(selector("aws-creds", "access-key")),
                secret_access_key_secret_ref: Some(selector("aws-creds", "secret-key")),
                session_token_secret_ref: token.map(|_| selector("aws-creds", "session-token")),
            }),
            jwt: None,
        });
        s
    }

    pub fn config(mut self, f: impl FnOnce(AwsConfig) -> AwsConfig) -> Self {
        self.config = f(self.config);
        self
    }

    pub fn store_info(&self) -> StoreInfo {
        let mut spec = SecretStoreSpec::default();
        spec.provider.aws = Some(self.spec.clone());
        StoreInfo::secret_store("aws", NS, spec)
    }

    pub async fn try_client(&self) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let store = self.store_info();
        let mut reader = StaticSecretReader::new();
        for (name, data) in &self.secrets {
            reader.insert(NS, name, data.clone());
        }
        let provider = AwsProvider::new().config(self.config.clone());
        provider.validate_store(&store)?;
        provider
            .new_client(ClientContext {
                store: &store,
                namespace: NS,
                secrets: &reader,
                config_maps: &eso_provider::StaticConfigMapReader::new(),
                tokens: self
                    .tokens
                    .as_deref()
                    .map(|t| t as &dyn ServiceAccountTokens),
            })
            .await
    }

    pub async fn client(&self) -> Arc<dyn SecretsClient> {
        match self.try_client().await {
            Ok(c) => c,
            Err(e) => panic!("client: {}", e.chain()),
        }
    }
}
