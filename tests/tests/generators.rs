//! Generators in ExternalSecrets end to end (`dataFrom[].sourceRef.generatorRef`), through the
//! harness (the in-process test API server, or a real cluster when ESO_TEST_KUBECONFIG names a
//! kubeconfig): a value is generated at the first sync and then only when the refresh policy
//! says a refresh is due, never on a restart, relist, label change, spec change elsewhere or a
//! change of the target Secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use eso_api::ExternalSecret;
use eso_api::generators::{GeneratorState, Password};
use eso_core::controller::{ControllerConfig, ExternalSecretController};
use eso_leader::{LeaseConfig, LeaseManager, run_terms};
use eso_tests::{RunningController, TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

async fn apply<K>(api: &Api<K>, obj: &K)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap();
}

fn password(ns: &str, name: &str, length: i64) -> Password {
    serde_json::from_value(json!({
        "apiVersion": "generators.external-secrets.io/v1alpha1",
        "kind": "Password",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"length": length, "digits": 4, "symbols": 0}
    }))
    .unwrap()
}

/// An ExternalSecret whose only entry is the Password generator `generator`, renamed by
/// `rewrite` to `db-password`.
fn external_secret(
    ns: &str,
    name: &str,
    generator: &str,
    extra: serde_json::Value,
) -> ExternalSecret {
    let mut spec = json!({
        "target": {"name": format!("{name}-target")},
        "dataFrom": [{
            "sourceRef": {"generatorRef": {
                "apiVersion": "generators.external-secrets.io/v1alpha1",
                "kind": "Password",
                "name": generator,
            }},
            "rewrite": [{"regexp": {"source": "^password$", "target": "db-password"}}],
        }],
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .unwrap()
}

struct Env {
    cluster: TestCluster,
    ns: String,
    passwords: Api<Password>,
    ess: Api<ExternalSecret>,
    secrets: Api<Secret>,
    states: Api<GeneratorState>,
}

async fn env() -> Env {
    let cluster = TestCluster::new().await.unwrap();
    install_crds(&cluster.client()).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let client = cluster.client();
    Env {
        passwords: Api::namespaced(client.clone(), &ns),
        ess: Api::namespaced(client.clone(), &ns),
        secrets: Api::namespaced(client.clone(), &ns),
        states: Api::namespaced(client, &ns),
        ns,
        cluster,
    }
}

impl Env {
    fn client(&self) -> Client {
        self.cluster.client()
    }

    async fn value(&self, secret: &str, key: &str) -> Option<String> {
        let s = self.secrets.get_opt(secret).await.ok()??;
        s.data?
            .get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    }

    async fn wait_value(&self, secret: &str, key: &str) -> String {
        eventually("the generated value in the target Secret", || async {
            self.value(secret, key).await.is_some()
        })
        .await
        .unwrap();
        self.value(secret, key).await.unwrap()
    }

    async fn synced_version(&self, es: &str) -> Option<String> {
        self.ess.get(es).await.ok()?.status?.synced_resource_version
    }

    /// Changes a label of the ExternalSecret and waits until a sync has seen it.
    async fn relabel(&self, es: &str, value: &str) {
        let before = self.synced_version(es).await;
        self.ess
            .patch(
                es,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"team": value}}})),
            )
            .await
            .unwrap();
        eventually("a sync after the label change", || async {
            self.synced_version(es).await != before
        })
        .await
        .unwrap();
    }

    /// Overwrites `key` of the target Secret and waits until the controller repaired it.
    async fn tamper(&self, secret: &str, key: &str) -> String {
        self.secrets
            .patch(
                secret,
                &PatchParams::default(),
                &Patch::Merge(json!({"stringData": {key: "tampered"}})),
            )
            .await
            .unwrap();
        eventually("the target Secret to be repaired", || async {
            self.value(secret, key)
                .await
                .is_some_and(|v| v != "tampered")
        })
        .await
        .unwrap();
        self.value(secret, key).await.unwrap()
    }

    /// The stored entry of the generated Secret of `es`, as JSON.
    async fn stored_entry(&self, es: &str) -> Option<serde_json::Value> {
        let s = self
            .secrets
            .get_opt(&format!("{es}-generated"))
            .await
            .ok()??;
        let (_, v) = s.data?.into_iter().next()?;
        serde_json::from_slice(&v.0).ok()
    }
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn ready(es: &ExternalSecret) -> Option<(String, String)> {
    let c = es
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        c.status.as_str().to_owned(),
        c.message.clone().unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_password_survives_restarts_relabels_other_spec_changes_and_target_edits() {
    let env = env().await;
    let ns = env.ns.clone();
    apply(&env.passwords, &password(&ns, "pw", 32)).await;
    apply(
        &env.ess,
        &external_secret(&ns, "app", "pw", json!({"refreshInterval": "1h"})),
    )
    .await;
    let controller = RunningController::start(env.client(), &ns);
    let first = env.wait_value("app-target", "db-password").await;
    assert_eq!(first.len(), 32, "{first:?}");

    // The value is kept in a Secret owned by the ExternalSecret, and nowhere in the CR.
    let es = env.ess.get("app").await.unwrap();
    let kept = env.secrets.get("app-generated").await.unwrap();
    assert!(
        kept.owner_references()
            .iter()
            .any(|o| Some(&o.uid) == es.uid().as_ref()),
        "{:?}",
        kept.metadata
    );
    assert!(!serde_json::to_string(&es).unwrap().contains(&first));
    // A stateless kind leaves no GeneratorState and no finalizer.
    assert!(
        env.states
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(es.finalizers().is_empty(), "{:?}", es.finalizers());

    env.relabel("app", "a").await;
    assert_eq!(env.value("app-target", "db-password").await.unwrap(), first);

    // An edit of the target Secret is repaired with the same value.
    assert_eq!(env.tamper("app-target", "db-password").await, first);

    // Under Periodic, a spec change that does not touch the generator entry keeps it.
    let before = env.synced_version("app").await;
    apply(
        &env.ess,
        &external_secret(&ns, "app", "pw", json!({"refreshInterval": "2h"})),
    )
    .await;
    eventually("a sync of the changed spec", || async {
        env.synced_version("app").await != before
    })
    .await
    .unwrap();
    assert_eq!(env.value("app-target", "db-password").await.unwrap(), first);

    // A restart (a new controller lists everything again) keeps it.
    controller.stop().await;
    let controller = RunningController::start(env.client(), &ns);
    env.relabel("app", "b").await;
    assert_eq!(env.tamper("app-target", "db-password").await, first);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_once_never_generates_again() {
    let env = env().await;
    let ns = env.ns.clone();
    apply(&env.passwords, &password(&ns, "pw", 20)).await;
    apply(
        &env.ess,
        &external_secret(
            &ns,
            "once",
            "pw",
            json!({"refreshPolicy": "CreatedOnce", "refreshInterval": "1s"}),
        ),
    )
    .await;
    let controller = RunningController::start(env.client(), &ns);
    let first = env.wait_value("once-target", "db-password").await;
    assert_eq!(env.tamper("once-target", "db-password").await, first);
    controller.stop().await;
    let controller = RunningController::start(env.client(), &ns);
    assert_eq!(env.tamper("once-target", "db-password").await, first);
    // Well past the (ignored) interval, it is still the first value.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.tamper("once-target", "db-password").await, first);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_refresh_generates_once_per_interval() {
    let env = env().await;
    let ns = env.ns.clone();
    apply(&env.passwords, &password(&ns, "pw", 24)).await;
    apply(
        &env.ess,
        &external_secret(&ns, "rot", "pw", json!({"refreshInterval": "3s"})),
    )
    .await;
    let controller = RunningController::start(env.client(), &ns);
    // (value, generatedAt) of each stored value, in the order they appeared.
    let mut seen: Vec<(String, Timestamp)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for three rotations: {seen:?}"
        );
        if let Some(entry) = env.stored_entry("rot").await {
            let value = entry["data"]["password"].as_str().unwrap().to_owned();
            let at: Timestamp = entry["generatedAt"].as_str().unwrap().parse().unwrap();
            if seen.last().is_none_or(|(v, _)| *v != value) {
                seen.push((value, at));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The target follows the stored value.
    eventually("the target to hold a stored value", || async {
        let Some(entry) = env.stored_entry("rot").await else {
            return false;
        };
        let stored = entry["data"]["password"].as_str().unwrap().to_owned();
        env.value("rot-target", "db-password")
            .await
            .is_some_and(|v| base64_of(&v) == stored)
    })
    .await
    .unwrap();
    controller.stop().await;
    // Every value was generated at its own refresh, each at least an interval (to the second)
    // after the one before: never twice for one due time.
    let times: Vec<Timestamp> = seen.iter().map(|(_, t)| *t).collect();
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]).as_secs();
        assert!(gap >= 2, "values generated {gap}s apart: {seen:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = seen.iter().map(|(v, _)| v).collect();
    assert_eq!(distinct.len(), seen.len(), "a value came back: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_generation_keeps_the_previous_secret_and_says_why() {
    let env = env().await;
    let ns = env.ns.clone();
    apply(&env.passwords, &password(&ns, "pw", 16)).await;
    apply(
        &env.ess,
        &external_secret(&ns, "app", "pw", json!({"refreshInterval": "1h"})),
    )
    .await;
    let controller = RunningController::start(env.client(), &ns);
    let first = env.wait_value("app-target", "db-password").await;

    // Point the entry at a generator that does not exist.
    apply(
        &env.ess,
        &external_secret(&ns, "app", "missing", json!({"refreshInterval": "1h"})),
    )
    .await;
    eventually("Ready=False naming the generator", || async {
        let es = env.ess.get("app").await.unwrap();
        ready(&es).is_some_and(|(status, m)| status == "False" && m.contains("missing"))
    })
    .await
    .unwrap();
    let (_, message) = ready(&env.ess.get("app").await.unwrap()).unwrap();
    assert!(message.contains("spec.dataFrom[0]"), "{message}");
    assert!(
        message.contains(&format!("Password \"{ns}/missing\"")),
        "{message}"
    );
    assert!(
        message.contains(&format!("ExternalSecret \"{ns}/app\"")),
        "{message}"
    );
    assert!(message.contains("does not exist"), "{message}");
    assert_eq!(env.value("app-target", "db-password").await.unwrap(), first);

    // Back to the first generator: its value was never superseded, so it is the same.
    apply(
        &env.ess,
        &external_secret(&ns, "app", "pw", json!({"refreshInterval": "1h"})),
    )
    .await;
    eventually("Ready=True again", || async {
        let es = env.ess.get("app").await.unwrap();
        ready(&es).is_some_and(|(s, _)| s == "True")
    })
    .await
    .unwrap();
    assert_eq!(env.value("app-target", "db-password").await.unwrap(), first);
    controller.stop().await;
}

/// One replica as the operator wires it: a Lease campaign, watches that always run, and
/// reconcilers per leadership term.
struct Replica {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    fn start(cluster: &TestCluster, identity: &str) -> Self {
        let config = LeaseConfig::default()
            .name("eso-test-generators")
            .lease_duration(Duration::from_secs(3))
            .renew_deadline(Duration::from_secs(2))
            .retry_period(Duration::from_millis(250));
        let manager =
            LeaseManager::new(cluster.client(), cluster.namespace(), identity, config).unwrap();
        let leading = manager.subscribe();
        let controller = ExternalSecretController::new(
            cluster.client(),
            ControllerConfig::default()
                .namespace(Some(cluster.namespace().to_owned()))
                .instance(Some(identity.to_owned())),
            eso_providers::builtin(),
        );
        let (stop, stop_rx) = watch::channel(false);
        let terms = leading.clone();
        let task = tokio::spawn(async move {
            controller.start_watches();
            let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
            let lease = tokio::spawn(manager.run(async move {
                let _ = release_rx.await;
            }));
            let controller = &controller;
            run_terms(terms, stop_rx, move |end| async move {
                controller
                    .reconcile_until(end, Some(Duration::from_millis(500)))
                    .await;
            })
            .await;
            let _ = release_tx.send(());
            lease.await.unwrap();
        });
        Self {
            leading,
            stop,
            task,
        }
    }

    fn leads(&self) -> bool {
        *self.leading.borrow()
    }

    async fn shutdown(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the replica shuts down")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_failover_keeps_the_generated_value() {
    let env = env().await;
    let ns = env.ns.clone();
    apply(&env.passwords, &password(&ns, "pw", 30)).await;
    apply(
        &env.ess,
        &external_secret(&ns, "app", "pw", json!({"refreshInterval": "1h"})),
    )
    .await;
    let mut replicas = vec![
        Replica::start(&env.cluster, "a"),
        Replica::start(&env.cluster, "b"),
    ];
    eventually("a leader", || async { replicas.iter().any(Replica::leads) })
        .await
        .unwrap();
    let first = env.wait_value("app-target", "db-password").await;
    let leader = replicas.iter().position(Replica::leads).unwrap();
    replicas.remove(leader).shutdown().await;
    eventually("the standby to lead", || async { replicas[0].leads() })
        .await
        .unwrap();
    // The new leader lists everything; a label change and an edit of the target make it sync.
    env.relabel("app", "after-failover").await;
    assert_eq!(env.value("app-target", "db-password").await.unwrap(), first);
    assert_eq!(env.tamper("app-target", "db-password").await, first);
    for r in replicas {
        r.shutdown().await;
    }
}

/// A one-route HTTP server answering every request with `{"auth": <its Authorization header>}`.
async fn echo_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let auth = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("authorization")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let body = json!({"auth": auth}).to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/issue")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_generator_reads_only_secrets_labelled_for_webhooks() {
    let env = env().await;
    let ns = env.ns.clone();
    let url = echo_server().await;
    let issuer = |labelled: bool| {
        let mut secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "issuer", "namespace": ns},
            "stringData": {"token": "s3cr3t"}});
        if labelled {
            secret["metadata"]["labels"] = json!({"external-secrets.io/type": "webhook"});
        }
        serde_json::from_value::<Secret>(secret).unwrap()
    };
    apply(&env.secrets, &issuer(false)).await;
    let webhooks: Api<eso_api::generators::Webhook> = Api::namespaced(env.client(), &ns);
    let webhook: eso_api::generators::Webhook = serde_json::from_value(json!({
        "apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Webhook",
        "metadata": {"name": "token", "namespace": ns},
        "spec": {"method": "POST", "url": url,
                 "headers": {"Authorization": "Bearer {{ .issuer.token }}"},
                 "result": {"jsonPath": "$"},
                 "secrets": [{"name": "issuer", "secretRef": {"name": "issuer"}}]}
    }))
    .unwrap();
    apply(&webhooks, &webhook).await;
    let es: ExternalSecret = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "hook", "namespace": ns},
        "spec": {"refreshInterval": "1h", "target": {"name": "hook-target"},
                 "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "Webhook", "name": "token"}}}]}
    }))
    .unwrap();
    apply(&env.ess, &es).await;
    let config = ControllerConfig::default().generators(eso_providers::generators());
    let controller = RunningController::start_with(env.client(), config, &ns);
    eventually("Ready=False naming the missing label", || async {
        let es = env.ess.get("hook").await.unwrap();
        ready(&es).is_some_and(|(status, m)| {
            status == "False" && m.contains("lacks the label external-secrets.io/type=webhook")
        })
    })
    .await
    .unwrap();
    assert!(env.secrets.get_opt("hook-target").await.unwrap().is_none());

    // Labelled, it is read and templated into the request.
    apply(&env.secrets, &issuer(true)).await;
    env.relabel("hook", "retry").await;
    let auth = env.wait_value("hook-target", "auth").await;
    assert_eq!(auth, "Bearer s3cr3t");
    controller.stop().await;
}
