//! The eight newer providers end to end (issues 21 and 22): for each of `gcpsm`, `azurekv`,
//! `onepassword`, `doppler`, `infisical`, `gitlab`, `conjur` and `chef`, a local server of the
//! vendor's API (Chef: the real Chef server `goiardi`) holds a secret, and the ExternalSecret
//! controller, on the harness (the in-process test API server, or a real cluster when
//! ESO_TEST_KUBECONFIG names a kubeconfig), syncs it through a SecretStore whose credentials
//! are a Kubernetes Secret. Then the provider fails (a revoked credential, or the server
//! gone): the ExternalSecret turns Ready=False naming the provider and the Secret keeps its
//! data.
//!
//! The controller runs in the test process, so the servers on 127.0.0.1 are reachable on both
//! lanes. Providers whose endpoints are not in the store spec (Google's, Azure's login host
//! and CA, Doppler's API) are registered with the server's endpoint, as the operator's
//! environment variables do (`docs/providers.md`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use eso_api::provider::{
    AzureKvAuth, AzureKvProvider as AzureSpec, ChefAuth, ChefAuthSecretRef,
    ChefProvider as ChefSpec, ConjurApiKey, ConjurAuth, ConjurProvider as ConjurSpec, DopplerAuth,
    DopplerAuthSecretRef, DopplerProvider as DopplerSpec, GcpsmAuth, GcpsmAuthSecretRef,
    GcpsmProvider, GitlabAuth, GitlabProvider as GitlabSpec, GitlabSecretRef, InfisicalAuth,
    InfisicalProvider as InfisicalSpec, InfisicalSecretsScope, InfisicalUniversalAuth,
    OnePasswordAuth, OnePasswordAuthSecretRef, OnePasswordProvider as OnePasswordSpec,
    SecretStoreProvider,
};
use eso_api::{ExternalSecret, SecretKeySelector, SecretStore};
use eso_core::ProviderRegistry;
use eso_core::controller::{ControllerConfig, ExternalSecretController};
use eso_provider::Provider;
use eso_tests::{TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

/// The JSON document every provider serves (where the provider stores JSON values).
const DB_JSON: &str = r#"{"user":"app","password":"pw"}"#;

/// Fast retries, no read cache: a failure shows on the next refresh.
const RETRY: Duration = Duration::from_millis(20);
const MAX_WAIT: Duration = Duration::from_secs(2);

/// One test's cluster namespace, APIs and running controller.
struct Env {
    cluster: TestCluster,
    stores: Api<SecretStore>,
    ess: Api<ExternalSecret>,
    secrets: Api<Secret>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The harness with the CRDs and an ExternalSecret controller whose registry is the built-in
/// one with `provider` replacing its default entry (configured with a test server's endpoint).
async fn env(provider: Option<Arc<dyn Provider>>) -> Env {
    let cluster = TestCluster::new().await.unwrap();
    install_crds(&cluster.client()).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let client = cluster.client();
    let mut registry: ProviderRegistry = eso_providers::builtin();
    if let Some(provider) = provider {
        registry = registry.with(provider);
    }
    let config = ControllerConfig::default()
        .namespace(Some(ns.clone()))
        .concurrency(2);
    let controller = ExternalSecretController::new(client.clone(), config, registry);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(controller.run(async move {
        let _ = rx.await;
    }));
    Env {
        stores: Api::namespaced(client.clone(), &ns),
        ess: Api::namespaced(client.clone(), &ns),
        secrets: Api::namespaced(client, &ns),
        cluster,
        _stop: tx,
    }
}

impl Env {
    fn ns(&self) -> &str {
        self.cluster.namespace()
    }

    async fn apply<K>(&self, api: &Api<K>, obj: Value)
    where
        K: kube::Resource
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        api.patch(
            &name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
    }

    /// The store's credentials: Secret `name` with `data` (as `stringData`).
    async fn credentials(&self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        self.apply(
            &self.secrets,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": self.ns()},
                   "stringData": data}),
        )
        .await;
    }

    /// SecretStore `store` with `provider` (the typed spec, serialized as users write it).
    async fn store(&self, provider: SecretStoreProvider) {
        self.apply(
            &self.stores,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                   "metadata": {"name": "store", "namespace": self.ns()},
                   "spec": {"provider": serde_json::to_value(provider).unwrap()}}),
        )
        .await;
    }

    /// ExternalSecret `app` from SecretStore `store` into Secret `app-secret`, refreshed every
    /// second, with `data` and `data_from`.
    async fn external_secret(&self, data: Value, data_from: Value) {
        self.apply(
            &self.ess,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "app", "namespace": self.ns()},
            "spec": {
                "secretStoreRef": {"name": "store", "kind": "SecretStore"},
                "refreshInterval": "1s",
                "target": {"name": "app-secret"},
                "data": data,
                "dataFrom": data_from,
            }}),
        )
        .await;
    }

    async fn secret_data(&self) -> Option<BTreeMap<String, String>> {
        let secret = self.secrets.get_opt("app-secret").await.ok()??;
        Some(
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
        )
    }

    async fn ready(&self) -> Option<(String, String, String)> {
        let es = self.ess.get_opt("app").await.ok()??;
        let c = es
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        Some((
            c.status.as_str().to_owned(),
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default(),
        ))
    }

    /// Waits for Secret `app-secret` to hold exactly `expected` and Ready=True.
    async fn synced(&self, expected: &[(&str, &str)]) {
        let expected: BTreeMap<String, String> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let ok = eventually("the Secret synced and Ready=True", || async {
            self.secret_data().await.as_ref() == Some(&expected)
                && self.ready().await.is_some_and(|(s, _, _)| s == "True")
        })
        .await;
        if ok.is_err() {
            panic!(
                "never synced: Secret data {:?}, Ready {:?}",
                self.secret_data().await,
                self.ready().await
            );
        }
    }

    /// After the provider broke: Ready=False with reason SecretSyncedError naming the
    /// provider `key`, and the Secret still holds `expected`.
    async fn failed_keeping(&self, key: &str, expected: &[(&str, &str)]) -> String {
        let ok = eventually("Ready=False", || async {
            self.ready().await.is_some_and(|(s, _, _)| s == "False")
        })
        .await;
        let ready = self.ready().await;
        if ok.is_err() {
            panic!("never Ready=False: {ready:?}");
        }
        let (_, reason, message) = ready.unwrap();
        assert_eq!(reason, "SecretSyncedError", "{message}");
        assert!(
            message.contains(&format!("(provider {key})")),
            "the message names the provider {key}: {message}"
        );
        let expected: BTreeMap<String, String> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(
            self.secret_data().await,
            Some(expected),
            "a provider failure keeps the Secret's data"
        );
        message
    }
}

fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: Some(name.to_owned()),
        namespace: None,
        key: Some(key.to_owned()),
    }
}

/// `data`: `pw` from `key`'s property `password`.
fn password_of(key: &str) -> Value {
    json!([{"secretKey": "pw", "remoteRef": {"key": key, "property": "password"}}])
}

/// `dataFrom`: every property of the JSON at `key`.
fn extract(key: &str) -> Value {
    json!([{"extract": {"key": key}}])
}

/// `dataFrom`: every secret whose name matches `regexp`.
fn find(regexp: &str) -> Value {
    json!([{"find": {"name": {"regexp": regexp}}}])
}

/// What `password_of` + `extract` of [`DB_JSON`] give.
const DB_SYNCED: &[(&str, &str)] = &[("pw", "pw"), ("user", "app"), ("password", "pw")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_secret_manager_syncs_and_a_denied_service_account_keeps_the_secret() {
    use eso_providers::gcp::{GcpConfig, GcpEndpoints, GcpProvider};
    use eso_testserver_gcp::GcpTestServer;

    const SA: &str = "eso@p1.iam.gserviceaccount.com";
    let server = GcpTestServer::start().await.unwrap();
    server
        .secret("p1", "db")
        .version(DB_JSON.as_bytes())
        .create();
    let provider = GcpProvider::new().config(
        GcpConfig::default()
            .endpoints(GcpEndpoints::all_at(&server.url()))
            .read_cache_ttl(Duration::ZERO)
            .retry_base_delay(RETRY)
            .max_retry_wait(MAX_WAIT),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials("gcp-key", &[("key.json", &server.service_account_key(SA))])
        .await;
    env.store(SecretStoreProvider {
        gcpsm: Some(GcpsmProvider {
            project_id: Some("p1".into()),
            auth: Some(GcpsmAuth {
                secret_ref: Some(GcpsmAuthSecretRef {
                    secret_access_key_secret_ref: Some(selector("gcp-key", "key.json")),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    env.external_secret(password_of("db"), extract("db")).await;
    env.synced(DB_SYNCED).await;

    server.deny(SA);
    let message = env.failed_keeping("gcpsm", DB_SYNCED).await;
    assert!(message.contains("db"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_key_vault_syncs_and_a_forbidden_service_principal_keeps_the_secret() {
    use eso_providers::azure::{AzureConfig, AzureKvProvider};
    use eso_testserver_azure::AzureTestServer;

    let server = AzureTestServer::start().unwrap();
    server.add_client_secret("sp-app", "s3cret");
    server.set_secret("db", DB_JSON);
    let provider = AzureKvProvider::new().config(
        AzureConfig::default()
            .authority_host(&server.authority_host())
            .extra_roots_pem(server.ca_pem().as_bytes().to_vec())
            .read_cache_ttl(Duration::ZERO)
            .retries(2, RETRY),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials(
        "azure-creds",
        &[("client-id", "sp-app"), ("client-secret", "s3cret")],
    )
    .await;
    env.store(SecretStoreProvider {
        azurekv: Some(AzureSpec {
            vault_url: server.vault_url().to_owned(),
            tenant_id: Some(server.tenant()),
            auth_secret_ref: Some(AzureKvAuth {
                client_id: Some(selector("azure-creds", "client-id")),
                client_secret: Some(selector("azure-creds", "client-secret")),
                ..AzureKvAuth::default()
            }),
            ..AzureSpec::default()
        }),
        ..Default::default()
    })
    .await;
    env.external_secret(password_of("db"), extract("db")).await;
    env.synced(DB_SYNCED).await;

    server.forbid("sp-app");
    env.failed_keeping("azurekv", DB_SYNCED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onepassword_connect_syncs_and_a_revoked_token_keeps_the_secret() {
    use eso_providers::onepassword::{OnePasswordConfig, OnePasswordProvider};
    use eso_testserver_onepassword::OnePasswordTestServer;

    let server = OnePasswordTestServer::start().await.unwrap();
    server.vault("prod");
    server
        .item("prod", "db")
        .field("user", "app")
        .field("password", "pw")
        .create();
    let provider = OnePasswordProvider::new().config(
        OnePasswordConfig::default()
            .read_cache_ttl(Duration::ZERO)
            .retry_base_delay(RETRY)
            .max_retry_wait(MAX_WAIT),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials("op-token", &[("token", &server.token())])
        .await;
    env.store(SecretStoreProvider {
        onepassword: Some(OnePasswordSpec {
            auth: Some(OnePasswordAuth {
                secret_ref: Some(OnePasswordAuthSecretRef {
                    connect_token: selector("op-token", "token"),
                }),
            }),
            connect_host: server.url(),
            vaults: [("prod".to_owned(), 1)].into_iter().collect(),
        }),
        ..Default::default()
    })
    .await;
    // An item's fields by label: `property` picks one, `extract` takes them all.
    env.external_secret(password_of("db"), extract("db")).await;
    env.synced(DB_SYNCED).await;

    server.revoke_tokens();
    env.failed_keeping("onepassword", DB_SYNCED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doppler_syncs_and_a_revoked_service_token_keeps_the_secret() {
    use eso_providers::doppler::{DopplerConfig, DopplerProvider};
    use eso_testserver_doppler::DopplerTestServer;

    let server = DopplerTestServer::start().await.unwrap();
    server.config("backend", "prd");
    server.secret("backend", "prd", "DB_USER", "app");
    server.secret("backend", "prd", "DB_PASSWORD", "pw");
    server.secret("backend", "prd", "OTHER", "x");
    let provider = DopplerProvider::new().config(
        DopplerConfig::default()
            .base_url(&server.url())
            .unwrap()
            .read_cache_ttl(Duration::ZERO)
            .retry_base_delay(RETRY)
            .max_retry_wait(MAX_WAIT),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials(
        "doppler",
        &[("dopplerToken", &server.service_token("backend", "prd"))],
    )
    .await;
    env.store(SecretStoreProvider {
        doppler: Some(DopplerSpec {
            auth: DopplerAuth {
                secret_ref: Some(DopplerAuthSecretRef {
                    doppler_token: selector("doppler", "dopplerToken"),
                }),
                oidc_config: None,
            },
            ..DopplerSpec::default()
        }),
        ..Default::default()
    })
    .await;
    env.external_secret(
        json!([{"secretKey": "password", "remoteRef": {"key": "DB_PASSWORD"}}]),
        find("^DB_"),
    )
    .await;
    let synced = &[
        ("password", "pw"),
        ("DB_USER", "app"),
        ("DB_PASSWORD", "pw"),
    ];
    env.synced(synced).await;

    server.revoke_tokens();
    env.failed_keeping("doppler", synced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infisical_syncs_and_a_denied_identity_keeps_the_secret() {
    use eso_providers::infisical::{InfisicalConfig, InfisicalProvider};
    use eso_testserver_infisical::InfisicalTestServer;

    let server = InfisicalTestServer::start().await.unwrap();
    server.project("shop", &["dev"]);
    server.secret("shop", "dev", "/", "DB_USER", "app");
    server.secret("shop", "dev", "/", "DB_PASSWORD", "pw");
    server.secret("shop", "dev", "/", "OTHER", "x");
    let identity = server.identity("eso");
    let provider = InfisicalProvider::new().config(
        InfisicalConfig::default()
            .read_cache_ttl(Duration::ZERO)
            .retry_base_delay(RETRY)
            .max_retry_wait(MAX_WAIT),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials(
        "infisical",
        &[
            ("clientId", &identity.client_id),
            ("clientSecret", &identity.client_secret),
        ],
    )
    .await;
    env.store(SecretStoreProvider {
        infisical: Some(InfisicalSpec {
            auth: InfisicalAuth {
                universal_auth_credentials: Some(InfisicalUniversalAuth {
                    client_id: selector("infisical", "clientId"),
                    client_secret: selector("infisical", "clientSecret"),
                }),
                ..InfisicalAuth::default()
            },
            secrets_scope: InfisicalSecretsScope {
                secrets_path: Some("/".into()),
                environment_slug: "dev".into(),
                project_slug: "shop".into(),
                ..InfisicalSecretsScope::default()
            },
            host_api: Some(server.api_url()),
            ..InfisicalSpec::default()
        }),
        ..Default::default()
    })
    .await;
    env.external_secret(
        json!([{"secretKey": "password", "remoteRef": {"key": "DB_PASSWORD"}}]),
        find("^DB_"),
    )
    .await;
    let synced = &[
        ("password", "pw"),
        ("DB_USER", "app"),
        ("DB_PASSWORD", "pw"),
    ];
    env.synced(synced).await;

    server.deny(&identity.identity_id, "shop");
    env.failed_keeping("infisical", synced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_syncs_project_variables_and_a_rejected_token_keeps_the_secret() {
    use eso_providers::gitlab::{GitlabConfig, GitlabProvider};
    use eso_testserver_gitlab::{Fault, GitlabTestServer, Token, Variable};

    let server = GitlabTestServer::start().await.unwrap();
    let group = server.group(7, "acme");
    server.project(42, "acme/app", &[group]);
    server.project_variable(42, Variable::new("CONFIG", DB_JSON));
    server.project_variable(42, Variable::new("DB_PASSWORD", "pw"));
    server.project_variable(42, Variable::new("OTHER", "x"));
    server.token(Token::new("glpat-good"));
    let provider = GitlabProvider::new().config(
        GitlabConfig::default()
            .retry_base_delay(RETRY)
            .max_retry_wait(MAX_WAIT),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials("gitlab", &[("token", "glpat-good")]).await;
    env.store(SecretStoreProvider {
        gitlab: Some(GitlabSpec {
            url: Some(server.url()),
            project_id: Some("42".into()),
            auth: GitlabAuth {
                secret_ref: GitlabSecretRef {
                    access_token: selector("gitlab", "token"),
                },
            },
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    env.external_secret(
        json!([{"secretKey": "user", "remoteRef": {"key": "CONFIG", "property": "user"}}]),
        find("^DB_"),
    )
    .await;
    let synced = &[("user", "app"), ("DB_PASSWORD", "pw")];
    env.synced(synced).await;

    // The token is revoked: GitLab answers 401 to every request.
    server.inject(Fault::status(401));
    env.failed_keeping("gitlab", synced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conjur_syncs_variables_and_a_rejected_host_keeps_the_secret() {
    use eso_providers::conjur::{ConjurConfig, ConjurProvider};
    use eso_testserver_conjur::{ConjurTestServer, Fault, Role};

    let server = ConjurTestServer::start("myorg").await.unwrap();
    server.role(Role::new("host/apps/eso", "key-1"));
    server.variable("db/config").value(DB_JSON.as_bytes());
    let provider = ConjurProvider::new().config(
        ConjurConfig::default()
            .retry_base_delay(RETRY)
            .max_retry_wait(MAX_WAIT),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials(
        "conjur-creds",
        &[("login", "host/apps/eso"), ("apikey", "key-1")],
    )
    .await;
    env.store(SecretStoreProvider {
        conjur: Some(ConjurSpec {
            url: server.url(),
            auth: ConjurAuth {
                api_key: Some(ConjurApiKey {
                    account: "myorg".into(),
                    user_ref: selector("conjur-creds", "login"),
                    api_key_ref: selector("conjur-creds", "apikey"),
                }),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    env.external_secret(password_of("db/config"), extract("db/config"))
        .await;
    env.synced(DB_SYNCED).await;

    // The host's API key is rotated away: Conjur answers 401 to every request.
    server.inject(Fault::status(401));
    env.failed_keeping("conjur", DB_SYNCED).await;
}

/// The real Chef server `goiardi` with signed-request checking, on a free port, with its
/// `admin` client's key. `ESO_GOIARDI_BIN` names the binary, else `goiardi` on PATH.
struct Goiardi {
    url: String,
    admin_pem: String,
    process: eso_test_support::process::Watched,
    _dir: tempfile::TempDir,
}

impl Goiardi {
    async fn start() -> Self {
        const INSTALL: &str = "install it with: apt-get install goiardi";
        let bin = eso_test_support::tools::Tool {
            env: "ESO_GOIARDI_BIN",
            name: "goiardi",
            what: "the Chef server `goiardi`",
            also: &[],
            install: INSTALL,
        }
        .find();
        let dir = tempfile::tempdir().unwrap();
        let port = eso_test_support::tools::free_port();
        let args = [
            "-I".to_owned(),
            "127.0.0.1".to_owned(),
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-P".to_owned(),
            port.to_string(),
            "--use-auth".to_owned(),
            format!("--conf-root={}", dir.path().display()),
        ];
        let mut process = eso_test_support::process::Watched::spawn(
            "goiardi",
            &bin,
            args,
            &[],
            &dir.path().join("goiardi.log"),
            INSTALL,
        );
        let url = format!("http://127.0.0.1:{port}/");
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let admin_pem = loop {
            let pem = std::fs::read_to_string(dir.path().join("admin.pem")).ok();
            let up = http.get(&url).send().await.is_ok();
            if let (Some(pem), true) = (pem, up) {
                break pem;
            }
            process.assert_starting(deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self {
            url,
            admin_pem,
            process,
            _dir: dir,
        }
    }

    /// A signed request as `admin` (the seeding API of a Chef server).
    async fn admin(&self, method: &str, path: &str, body: &Value) {
        use eso_providers::chef::{RequestSigner, timestamp};
        let signer = RequestSigner::from_pem("admin", &self.admin_pem).unwrap();
        let body = body.to_string();
        let headers = signer
            .headers(
                method,
                path,
                body.as_bytes(),
                &timestamp(jiff::Timestamp::now()),
            )
            .unwrap();
        let url = format!("{}{}", self.url, path.trim_start_matches('/'));
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), &url)
            .header("Content-Type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "{method} {path}: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chef_syncs_a_data_bag_item_and_a_stopped_server_keeps_the_secret() {
    use eso_providers::chef::{ChefConfig, ChefProvider};

    let mut chef = Goiardi::start().await;
    chef.admin("POST", "/data", &json!({"name": "creds"})).await;
    chef.admin(
        "POST",
        "/data/creds",
        &json!({"id": "db", "user": "app", "password": "pw"}),
    )
    .await;
    let provider = ChefProvider::new().config(
        ChefConfig::default()
            .retry_base_delay(RETRY)
            .max_retry_wait(MAX_WAIT)
            .request_timeout(Duration::from_secs(5)),
    );
    let env = env(Some(Arc::new(provider))).await;
    env.credentials("chef-key", &[("key.pem", &chef.admin_pem)])
        .await;
    env.store(SecretStoreProvider {
        chef: Some(ChefSpec {
            username: "admin".into(),
            server_url: chef.url.clone(),
            auth: ChefAuth {
                secret_ref: ChefAuthSecretRef {
                    private_key_secret_ref: selector("chef-key", "key.pem"),
                },
            },
        }),
        ..Default::default()
    })
    .await;
    // An item's value by property; `extract` of the bag takes every item, as the JSON
    // upstream writes (keys sorted).
    env.external_secret(password_of("creds/db"), extract("creds"))
        .await;
    let synced = &[
        ("pw", "pw"),
        ("db", r#"{"id":"db","password":"pw","user":"app"}"#),
    ];
    env.synced(synced).await;

    chef.process.stop();
    env.failed_keeping("chef", synced).await;
}
