//! The ExternalSecret controller end to end, through the harness (the in-process test API
//! server, or a real cluster when ESO_TEST_KUBECONFIG names a kubeconfig).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use eso_api::labels::{ANNOTATION_DATA_HASH, LABEL_MANAGED};
use eso_api::{ExternalSecret, SecretStore};
use eso_tests::{
    RunningController, TEST_MANAGER, TestCluster, eventually, eventually_for, install_crds,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

fn store(ns: &str, data: serde_json::Value) -> SecretStore {
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": ns},
        "spec": {"provider": {"fake": {"data": data}}}
    }))
    .unwrap()
}

fn external_secret(ns: &str, name: &str, spec: serde_json::Value) -> ExternalSecret {
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .unwrap()
}

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

/// An ExternalSecret spec syncing key `token` of the fake store every `refresh`.
fn token_spec(refresh: &str) -> serde_json::Value {
    json!({
        "secretStoreRef": {"name": "fake"},
        "refreshInterval": refresh,
        "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
    })
}

fn data_of(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

fn ready(es: &ExternalSecret) -> Option<(String, String, String)> {
    let c = es
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

struct Env {
    cluster: TestCluster,
    stores: Api<SecretStore>,
    ess: Api<ExternalSecret>,
    secrets: Api<Secret>,
}

impl Env {
    /// The fake store `fake` holding `data` (`[{"key": .., "value": ..}]`).
    async fn seed(&self, data: serde_json::Value) {
        apply(&self.stores, &store(self.cluster.namespace(), data)).await;
    }

    /// ExternalSecret `name` with this spec.
    async fn es(&self, name: &str, spec: serde_json::Value) {
        apply(
            &self.ess,
            &external_secret(self.cluster.namespace(), name, spec),
        )
        .await;
    }
}

async fn env() -> Env {
    env_on(TestCluster::new().await.unwrap()).await
}

async fn env_on(cluster: TestCluster) -> Env {
    install_crds(&cluster.client()).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let client = cluster.client();
    Env {
        stores: Api::namespaced(client.clone(), &ns),
        ess: Api::namespaced(client.clone(), &ns),
        secrets: Api::namespaced(client, &ns),
        cluster,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_secret_creates_its_secret_with_markers_and_ready_status() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "db", "value": "{\"user\":\"app\",\"password\":\"pw\"}"}]))
        .await;
    env.es(
        "app",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1h",
            "target": {"name": "app-creds"},
            "dataFrom": [{"extract": {"key": "db"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);

    let secrets = env.secrets.clone();
    eventually("the Secret to be written", || async {
        secrets.get_opt("app-creds").await.ok().flatten().is_some()
    })
    .await
    .unwrap();
    let secret = env.secrets.get("app-creds").await.unwrap();
    assert_eq!(data_of(&secret, "user").as_deref(), Some("app"));
    assert_eq!(data_of(&secret, "password").as_deref(), Some("pw"));
    let labels = secret.metadata.labels.clone().unwrap();
    assert_eq!(labels[LABEL_MANAGED], "true");
    let annotations = secret.metadata.annotations.clone().unwrap();
    assert!(annotations.contains_key(ANNOTATION_DATA_HASH));
    let es = env.ess.get("app").await.unwrap();
    let owner = &secret.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(owner.uid, es.metadata.uid.clone().unwrap());
    assert_eq!(owner.controller, Some(true));

    let ess = env.ess.clone();
    eventually("Ready=True/SecretSynced", || async {
        ess.get("app")
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, r, _)| s == "True" && r == "SecretSynced")
    })
    .await
    .unwrap();
    let es = env.ess.get("app").await.unwrap();
    let status = es.status.unwrap();
    assert_eq!(status.binding.unwrap().name.as_deref(), Some("app-creds"));
    assert!(status.refresh_time.is_some());
    assert!(status.synced_resource_version.unwrap().starts_with("1-"));
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_keeps_the_last_good_data_and_reports_why() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    env.es("app", token_spec("1s")).await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secrets = env.secrets.clone();
    eventually("the first sync", || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "token").as_deref() == Some("t1"))
    })
    .await
    .unwrap();

    // The key disappears at the provider: Retain (the default) makes that an error.
    env.seed(json!([{"key": "other", "value": "x"}])).await;
    let ess = env.ess.clone();
    eventually("Ready=False", || async {
        ess.get("app")
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, _, _)| s == "False")
    })
    .await
    .unwrap();
    let (_, reason, message) = ready(&env.ess.get("app").await.unwrap()).unwrap();
    assert_eq!(reason, "SecretSyncedError");
    for needle in [
        "\"token\"",
        "provider fake",
        "does not exist",
        "spec.data[0]",
    ] {
        assert!(message.contains(needle), "missing {needle:?} in {message}");
    }
    let secret = env.secrets.get("app").await.unwrap();
    assert_eq!(
        data_of(&secret, "token").as_deref(),
        Some("t1"),
        "a provider error never empties the Secret"
    );

    // The key comes back: the ExternalSecret recovers.
    env.seed(json!([{"key": "token", "value": "t2"}])).await;
    let secrets = env.secrets.clone();
    eventually("recovery", || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "token").as_deref() == Some("t2"))
    })
    .await
    .unwrap();
    let ess = env.ess.clone();
    eventually("Ready=True again", || async {
        ess.get("app")
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_edited_secret_is_repaired() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    env.es("app", token_spec("1h")).await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secrets = env.secrets.clone();
    let has_t1 = || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "token").as_deref() == Some("t1"))
    };
    eventually("the first sync", has_t1).await.unwrap();

    let edit = json!({"data": {"token": "ZWRpdGVk"}});
    env.secrets
        .patch("app", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually("the edit to be repaired", has_t1).await.unwrap();

    env.secrets
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Secret to be recreated", has_t1)
        .await
        .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_keeps_keys_someone_else_owns() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    let theirs: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "shared", "namespace": ns},
        "data": {"theirs": "eA=="}
    }))
    .unwrap();
    apply(&env.secrets, &theirs).await;
    env.es(
        "app",
        json!({
            "secretStoreRef": {"name": "fake"},
            "target": {"name": "shared", "creationPolicy": "Merge"},
            "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secrets = env.secrets.clone();
    eventually("the merge", || async {
        secrets
            .get_opt("shared")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "token").as_deref() == Some("t1"))
    })
    .await
    .unwrap();
    let secret = env.secrets.get("shared").await.unwrap();
    assert_eq!(data_of(&secret, "theirs").as_deref(), Some("x"));
    assert!(
        secret.metadata.owner_references.is_none(),
        "Merge sets no owner"
    );
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_written_when_nothing_changed() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    env.es("app", token_spec("1s")).await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let ess = env.ess.clone();
    eventually("Ready", || async {
        ess.get("app")
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    let events: Api<Event> = Api::namespaced(env.cluster.client(), &ns);
    let event_count = || async { events.list(&Default::default()).await.unwrap().items.len() };
    // Events are published in the background: wait for the create's.
    eventually("the Created event", || async { event_count().await > 0 })
        .await
        .unwrap();
    let before_secret = env.secrets.get("app").await.unwrap();
    let before_es = env.ess.get("app").await.unwrap();
    let before_events = event_count().await;

    // Several 1 s refreshes: each reads the provider and finds nothing to change, so neither
    // the Secret, nor the ExternalSecret's status, nor the event list is written.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let after_secret = env.secrets.get("app").await.unwrap();
    let after_es = env.ess.get("app").await.unwrap();
    assert_eq!(
        before_secret.metadata.resource_version, after_secret.metadata.resource_version,
        "the Secret was rewritten although nothing changed"
    );
    assert_eq!(
        before_es.metadata.resource_version, after_es.metadata.resource_version,
        "the status was rewritten although nothing changed"
    );
    assert_eq!(before_events, event_count().await, "events at steady state");

    // The refreshes did happen: a new remote value is picked up within a few of them, and
    // that write records a new refreshTime.
    env.seed(json!([{"key": "token", "value": "t2"}])).await;
    let secrets = env.secrets.clone();
    eventually("the new value", || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "token").as_deref() == Some("t2"))
    })
    .await
    .unwrap();
    let first_refresh = before_es.status.unwrap().refresh_time;
    let ess = env.ess.clone();
    eventually("a newer refreshTime", || {
        let first = first_refresh.clone();
        let ess = ess.clone();
        async move {
            ess.get("app")
                .await
                .ok()
                .and_then(|e| e.status?.refresh_time)
                > first
        }
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_secrets_are_collected_orphans_survive_and_none_writes_nothing() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    for (name, policy) in [("owned", "Owner"), ("orphan", "Orphan"), ("none", "None")] {
        env.es(
            name,
            json!({
                "secretStoreRef": {"name": "fake"},
                "target": {"creationPolicy": policy},
                "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
            }),
        )
        .await;
    }
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secrets = env.secrets.clone();
    eventually("the owned and orphan Secrets", || async {
        secrets.get_opt("owned").await.ok().flatten().is_some()
            && secrets.get_opt("orphan").await.ok().flatten().is_some()
    })
    .await
    .unwrap();
    let ess = env.ess.clone();
    eventually("the None policy to be Ready", || async {
        ess.get("none")
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    assert!(
        env.secrets.get_opt("none").await.unwrap().is_none(),
        "creationPolicy None writes nothing"
    );

    for name in ["owned", "orphan"] {
        env.ess
            .delete(name, &DeleteParams::background())
            .await
            .unwrap();
    }
    let secrets = env.secrets.clone();
    eventually("the owned Secret to be garbage-collected", || async {
        secrets.get_opt("owned").await.ok().flatten().is_none()
    })
    .await
    .unwrap();
    assert!(
        env.secrets.get_opt("orphan").await.unwrap().is_some(),
        "an Orphan Secret outlives its ExternalSecret"
    );
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_get_a_precise_reason_and_no_secret() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    let cases = [
        (
            "bad-regexp",
            json!({"secretStoreRef": {"name": "fake"}, "dataFrom": [{"find": {"name": {"regexp": "(unclosed"}}}]}),
            "(unclosed",
        ),
        (
            "no-store",
            json!({"secretStoreRef": {"name": "absent"}, "data": [{"secretKey": "k", "remoteRef": {"key": "token"}}]}),
            "SecretStore \"absent\" not found",
        ),
        (
            "bad-template",
            json!({"secretStoreRef": {"name": "fake"}, "target": {"template": {"data": {"x": "{{ .nope }}"}}}, "data": [{"secretKey": "k", "remoteRef": {"key": "token"}}]}),
            "spec.target.template.data[x]",
        ),
    ];
    for (name, spec, _) in &cases {
        env.es(name, spec.clone()).await;
    }
    let controller = RunningController::start(env.cluster.client(), &ns);
    for (name, _, needle) in &cases {
        let ess = env.ess.clone();
        eventually(&format!("{name} to be Ready=False"), || async {
            ess.get(name)
                .await
                .ok()
                .and_then(|es| ready(&es))
                .is_some_and(|(s, _, _)| s == "False")
        })
        .await
        .unwrap();
        let (_, reason, message) = ready(&env.ess.get(name).await.unwrap()).unwrap();
        assert_eq!(reason, "SecretSyncedError");
        assert!(
            message.contains(needle),
            "{name}: missing {needle:?} in {message}"
        );
        assert!(
            env.secrets.get_opt(name).await.unwrap().is_none(),
            "{name}: no Secret may be written"
        );
    }
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_external_secret_is_synced_again() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]))
        .await;
    env.es("app", json!({"secretStoreRef": {"name": "fake"}, "refreshInterval": "1h", "data": [{"secretKey": "v", "remoteRef": {"key": "a"}}]}))
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secrets = env.secrets.clone();
    eventually("the first sync", || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "v").as_deref() == Some("1"))
    })
    .await
    .unwrap();
    // A full PUT, as `kubectl replace` sends, with a changed spec.
    let mut current = env.ess.get("app").await.unwrap();
    current.spec.data[0].remote_ref.key = "b".into();
    current.status = None;
    env.ess
        .replace("app", &Default::default(), &current)
        .await
        .unwrap();
    let secrets = env.secrets.clone();
    eventually("the replaced spec to be synced", || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "v").as_deref() == Some("2"))
    })
    .await
    .unwrap();
    let ess = env.ess.clone();
    eventually("Ready=True for generation 2", || async {
        ess.get("app").await.ok().is_some_and(|es| {
            ready(&es).is_some_and(|(s, _, _)| s == "True")
                && es
                    .status
                    .as_ref()
                    .and_then(|st| st.synced_resource_version.clone())
                    .is_some_and(|v| v.starts_with("2-"))
        })
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_secret_is_never_changed_in_place_but_recreated_when_deleted() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    env.es(
        "app",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1s",
            "target": {"immutable": true},
            "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secrets = env.secrets.clone();
    eventually("the immutable Secret", || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.immutable == Some(true))
    })
    .await
    .unwrap();
    let first = env.secrets.get("app").await.unwrap();
    assert_eq!(data_of(&first, "token").as_deref(), Some("t1"));

    // The remote value changes: the Secret cannot follow, and the ExternalSecret says why.
    env.seed(json!([{"key": "token", "value": "t2"}])).await;
    let ess = env.ess.clone();
    eventually("Ready=False for the immutable target", || async {
        ess.get("app")
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, _, m)| s == "False" && m.contains("immutable"))
    })
    .await
    .unwrap();
    let (_, reason, message) = ready(&env.ess.get("app").await.unwrap()).unwrap();
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("\"app\""), "names the Secret: {message}");
    let kept = env.secrets.get("app").await.unwrap();
    assert_eq!(data_of(&kept, "token").as_deref(), Some("t1"));
    assert_eq!(
        kept.metadata.uid, first.metadata.uid,
        "not recreated behind the user's back"
    );

    // Deleting it is the user's way to accept the new value: it is recreated with it.
    env.secrets
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let secrets = env.secrets.clone();
    eventually("the recreated Secret", || async {
        secrets
            .get_opt("app")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| data_of(&s, "token").as_deref() == Some("t2"))
    })
    .await
    .unwrap();
    let recreated = env.secrets.get("app").await.unwrap();
    assert_eq!(recreated.immutable, Some(true));
    assert_ne!(recreated.metadata.uid, first.metadata.uid);
    let ess = env.ess.clone();
    eventually("Ready=True again", || async {
        ess.get("app")
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_reconnects_after_an_api_server_restart() {
    let env = env_on(TestCluster::restartable().await.unwrap()).await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    env.es("before", token_spec("1s")).await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secrets = env.secrets.clone();
    eventually("the first Secret", || async {
        secrets.get_opt("before").await.ok().flatten().is_some()
    })
    .await
    .unwrap();

    env.cluster.stop_api_server().await.unwrap();
    // Long enough for every watch to notice and back off at least once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.cluster.start_api_server().await.unwrap();

    // Changes made after the restart reach the controller through its new watches. (The new
    // ExternalSecret may be read before the store's cache has the new value; its 1 s refresh
    // then brings it.)
    env.seed(json!([{"key": "token", "value": "t2"}])).await;
    env.es("after", token_spec("1s")).await;
    let secrets = env.secrets.clone();
    eventually("both Secrets with the new value", || async {
        let mut ok = true;
        for name in ["before", "after"] {
            ok &= secrets
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .is_some_and(|s| data_of(&s, "token").as_deref() == Some("t2"));
        }
        ok
    })
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

/// An API server outage is not a fault of the objects: while it lasts they do not back off,
/// and once it ends every one of them converges within its refresh interval (plus a little),
/// not after a backoff that grew during the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_converges_within_its_refresh_interval_after_an_api_server_outage() {
    const OBJECTS: usize = 20;
    const INTERVAL: Duration = Duration::from_secs(5);
    let outage = std::env::var("ESO_E2E_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs);
    let env = env_on(TestCluster::restartable().await.unwrap()).await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "before"}])).await;
    for i in 0..OBJECTS {
        env.es(
            &format!("es-{i}"),
            json!({
                "secretStoreRef": {"name": "fake"},
                "refreshInterval": format!("{}s", INTERVAL.as_secs()),
                "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
            }),
        )
        .await;
    }
    let controller = RunningController::start(env.cluster.client(), &ns);
    let all_hold = |value: &'static str| {
        let secrets = env.secrets.clone();
        move || {
            let secrets = secrets.clone();
            async move {
                let list = secrets.list(&Default::default()).await;
                list.is_ok_and(|l| {
                    l.items
                        .iter()
                        .filter(|s| data_of(s, "token").as_deref() == Some(value))
                        .count()
                        == OBJECTS
                })
            }
        }
    };
    eventually("every Secret", all_hold("before"))
        .await
        .unwrap();

    env.cluster.stop_api_server().await.unwrap();
    tokio::time::sleep(outage).await;
    env.cluster.start_api_server().await.unwrap();
    env.seed(json!([{"key": "token", "value": "after"}])).await;
    // One refresh interval (with its 10 % jitter), plus the few seconds the watches and the
    // API-server probe take to notice the server is back.
    eventually_for(
        "every Secret to follow the store after the outage",
        INTERVAL + INTERVAL / 10 + Duration::from_secs(10),
        all_hold("after"),
    )
    .await
    .unwrap();
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

// ---- The write path: what upstream writes, case by case (issue 16) -----------------------

/// Waits until `name` holds exactly `want` (key -> value) and returns it.
async fn secret_becomes(env: &Env, name: &str, want: &[(&str, &str)]) -> Secret {
    let secrets = env.secrets.clone();
    let want: std::collections::BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let what = format!("Secret {name} to hold {want:?}");
    eventually(&what, || {
        let secrets = secrets.clone();
        let want = want.clone();
        async move {
            secrets.get_opt(name).await.ok().flatten().is_some_and(|s| {
                let got: std::collections::BTreeMap<String, String> = s
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                got == want
            })
        }
    })
    .await
    .unwrap();
    env.secrets.get(name).await.unwrap()
}

async fn ready_becomes(env: &Env, name: &str, status: &str, reason: &str) -> String {
    let ess = env.ess.clone();
    eventually(&format!("{name} to be Ready={status}/{reason}"), || async {
        ess.get(name)
            .await
            .ok()
            .and_then(|es| ready(&es))
            .is_some_and(|(s, r, _)| s == status && r == reason)
    })
    .await
    .unwrap();
    ready(&env.ess.get(name).await.unwrap()).unwrap().2
}

/// Several refreshes (refreshInterval 1s) after a steady state, neither the Secret nor the
/// ExternalSecret has been written.
async fn assert_steady(env: &Env, name: &str) {
    let secret = env
        .secrets
        .get(name)
        .await
        .unwrap()
        .metadata
        .resource_version;
    let es = env.ess.get(name).await.unwrap().metadata.resource_version;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        env.secrets
            .get(name)
            .await
            .unwrap()
            .metadata
            .resource_version,
        secret,
        "the Secret {name} was written at steady state"
    );
    assert_eq!(
        env.ess.get(name).await.unwrap().metadata.resource_version,
        es,
        "the ExternalSecret {name} was written at steady state"
    );
}

/// What `sync-once render` (eso-core's `render_all`) makes of the namespace's objects as they
/// are now must be the data the operator wrote: the same write path, offline. Rendered twice:
/// with the target Secret among the inputs (at steady state the plan must find nothing to
/// change) and, for targets the ExternalSecret creates itself (creationPolicy Owner), without
/// it, so the render builds the Secret from scratch.
async fn render_agrees_with_the_operator(env: &Env, name: &str) {
    use k8s_openapi::api::core::v1::ConfigMap;
    let ns = env.cluster.namespace().to_owned();
    let lp = kube::api::ListParams::default();
    let es = env.ess.get(name).await.unwrap();
    let owner = es.spec.creation_policy() == eso_api::CreationPolicy::Owner;
    let mut inputs: Vec<(String, serde_json::Value)> = Vec::new();
    for store in env.stores.list(&lp).await.unwrap() {
        inputs.push((String::new(), serde_json::to_value(store).unwrap()));
    }
    for es in env.ess.list(&lp).await.unwrap() {
        inputs.push((String::new(), serde_json::to_value(es).unwrap()));
    }
    for secret in env.secrets.list(&lp).await.unwrap() {
        let secret_name = secret.metadata.name.clone().unwrap_or_default();
        inputs.push((secret_name, serde_json::to_value(secret).unwrap()));
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(env.cluster.client(), &ns);
    for config_map in config_maps.list(&lp).await.unwrap() {
        inputs.push((String::new(), serde_json::to_value(config_map).unwrap()));
    }
    let written = env.secrets.get(name).await.unwrap();
    for with_target in [true, false] {
        if !with_target && !owner {
            continue;
        }
        let docs: Vec<&serde_json::Value> = inputs
            .iter()
            .filter(|(secret_name, _)| with_target || secret_name != name)
            .map(|(_, doc)| doc)
            .collect();
        let mut set = eso_core::ManifestSet::new(&ns);
        let text = json!({"apiVersion": "v1", "kind": "List", "items": docs}).to_string();
        let errors = set.add_text("cluster.json", &text);
        assert!(
            errors.is_empty(),
            "the cluster's objects read as manifests: {errors:?}"
        );
        let rendered = eso_core::render_all(&set, &eso_providers::builtin()).await;
        let one = rendered
            .iter()
            .find(|r| r.external_secret == format!("{ns}/{name}"))
            .unwrap_or_else(|| panic!("render produced nothing for {name}"));
        let secret = match &one.result {
            Ok(Some(secret)) => secret,
            other => panic!("render of {name} (target among inputs: {with_target}): {other:?}"),
        };
        assert_eq!(
            secret.data, written.data,
            "render (target among inputs: {with_target}) and the operator disagree on {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_with_a_template_writes_the_template_keys_into_a_secret_made_by_someone_else() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "user", "value": "app"}, {"key": "pass", "value": "pw"}]))
        .await;
    let theirs: Secret = serde_json::from_value(json!({
        "metadata": {"name": "app", "namespace": ns},
        "stringData": {"foreign": "x"}
    }))
    .unwrap();
    env.secrets
        .create(&Default::default(), &theirs)
        .await
        .unwrap();
    env.es(
        "app",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1s",
            "target": {"creationPolicy": "Merge", "template": {
                "data": {"dsn": "{{ .user }}:{{ .pass }}@db"}}},
            "data": [{"secretKey": "user", "remoteRef": {"key": "user"}},
                     {"secretKey": "pass", "remoteRef": {"key": "pass"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    // The template's key is written, the provider keys are not (mergePolicy Replace), the
    // other writer's key stays, and nothing takes ownership.
    let secret = secret_becomes(&env, "app", &[("dsn", "app:pw@db"), ("foreign", "x")]).await;
    assert!(secret.metadata.owner_references.is_none());
    ready_becomes(&env, "app", "True", "SecretSynced").await;
    assert_steady(&env, "app").await;
    render_agrees_with_the_operator(&env, "app").await;
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_or_merge_with_template_merge_policy_writes_template_and_provider_keys() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "user", "value": "app"}])).await;
    env.es(
        "app",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1s",
            "target": {"creationPolicy": "CreateOrMerge", "template": {
                "mergePolicy": "Merge", "data": {"greeting": "hello {{ .user }}"}}},
            "data": [{"secretKey": "user", "remoteRef": {"key": "user"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let secret = secret_becomes(&env, "app", &[("greeting", "hello app"), ("user", "app")]).await;
    assert!(
        secret.metadata.owner_references.is_none(),
        "CreateOrMerge sets no owner"
    );
    ready_becomes(&env, "app", "True", "SecretSynced").await;
    assert_steady(&env, "app").await;
    render_agrees_with_the_operator(&env, "app").await;
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_and_rewrite_work_on_path_like_names() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(
        json!([{"key": "/db/password", "value": "pw"}, {"key": "/db/user", "value": "app"},
                   {"key": "/cache/url", "value": "redis"}]),
    )
    .await;
    env.es(
        "db",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1s",
            "dataFrom": [{
                "find": {"name": {"regexp": "^/db/"}},
                "rewrite": [{"regexp": {"source": "^_db_", "target": "db_"}}]
            }]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    // The fake provider converts `/db/password` to `_db_password` inside its find, as
    // upstream's, so the rewrite sees the converted names.
    secret_becomes(&env, "db", &[("db_password", "pw"), ("db_user", "app")]).await;
    ready_becomes(&env, "db", "True", "SecretSynced").await;
    assert_steady(&env, "db").await;
    render_agrees_with_the_operator(&env, "db").await;
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_policy_delete_deletes_the_secret_once_the_remote_key_is_gone() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    env.es(
        "gone",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1s",
            "target": {"deletionPolicy": "Delete"},
            "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    secret_becomes(&env, "gone", &[("token", "t1")]).await;
    env.seed(json!([{"key": "other", "value": "x"}])).await;
    let secrets = env.secrets.clone();
    eventually("the Secret to be deleted", || async {
        secrets.get_opt("gone").await.is_ok_and(|s| s.is_none())
    })
    .await
    .unwrap();
    ready_becomes(&env, "gone", "True", "SecretDeleted").await;
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_error_heals_when_its_config_map_is_fixed() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.cluster.client(), &ns);
    let template = |text: &str| -> ConfigMap {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "tpl", "namespace": ns},
            "data": {"out": text}
        }))
        .unwrap()
    };
    apply(&config_maps, &template("{{ .missing }}")).await;
    env.es(
        "templated",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "2s",
            "target": {"template": {"templateFrom": [
                {"configMap": {"name": "tpl", "items": [{"key": "out"}]}}]}},
            "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    let message = ready_becomes(&env, "templated", "False", "SecretSyncedError").await;
    assert!(
        message.contains("templateFrom[0].configMap[out]"),
        "{message}"
    );
    assert!(env.secrets.get_opt("templated").await.unwrap().is_none());
    // Only the ConfigMap changes; the ExternalSecret is not touched.
    let generation = env.ess.get("templated").await.unwrap().metadata.generation;
    apply(&config_maps, &template("token={{ .token }}")).await;
    secret_becomes(&env, "templated", &[("out", "token=t1")]).await;
    ready_becomes(&env, "templated", "True", "SecretSynced").await;
    assert_steady(&env, "templated").await;
    assert_eq!(
        env.ess.get("templated").await.unwrap().metadata.generation,
        generation
    );
    render_agrees_with_the_operator(&env, "templated").await;
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_window_written_with_day_names_holds_refreshes_back() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "t1"}])).await;
    env.es(
        "windowed",
        json!({
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1s",
            // Opens at midnight every day of the week and lasts a day: always closed.
            "syncWindows": {"kind": "deny", "windows": [
                {"schedule": "0 0 * * Sun-Sat", "duration": "24h"}]},
            "data": [{"secretKey": "token", "remoteRef": {"key": "token"}}]
        }),
    )
    .await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    // The first sync is not a periodic refresh (as upstream): it happens.
    secret_becomes(&env, "windowed", &[("token", "t1")]).await;
    env.seed(json!([{"key": "token", "value": "t2"}])).await;
    // Several refresh intervals later, the deny window still holds the new value back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let secret = env.secrets.get("windowed").await.unwrap();
    assert_eq!(data_of(&secret, "token").as_deref(), Some("t1"));
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

/// A `kubernetes` SecretStore named `cluster` that reads the test namespace of this very
/// cluster with a bearer token (on a real cluster, a ServiceAccount's, allowed to read the
/// namespace's Secrets; the in-process server authenticates nobody).
async fn kubernetes_store(env: &Env) -> SecretStore {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::PostParams;

    let ns = env.cluster.namespace().to_owned();
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
    let token = if env.cluster.is_real() {
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "reader"}})).unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &account)
            .await
            .unwrap();
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
        }))
        .unwrap();
        Api::<Role>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &role)
            .await
            .unwrap();
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
        let request: TokenRequest =
            serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}})).unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), &ns)
            .create_token_request("reader", &PostParams::default(), &request)
            .await
            .unwrap()
            .status
            .unwrap()
            .token
    } else {
        "the-in-process-server-takes-any-token".to_owned()
    };
    let creds: Secret = serde_json::from_value(json!({
        "metadata": {"name": "reader-token", "namespace": ns},
        "stringData": {"token": token}
    }))
    .unwrap();
    env.secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    let mut server = json!({"url": cluster.server.unwrap()});
    if let Some(ca) = cluster.certificate_authority_data {
        server["caBundle"] = json!(ca);
    }
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "cluster", "namespace": ns},
        "spec": {"provider": {"kubernetes": {
            "remoteNamespace": ns,
            "server": server,
            "auth": {"token": {"bearerToken": {"name": "reader-token", "key": "token"}}}
        }}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_typo_keeps_the_secret_under_deletion_policy_delete_and_names_the_property() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    let source: Secret = serde_json::from_value(json!({
        "metadata": {"name": "source", "namespace": ns},
        "stringData": {"user": "app"}
    }))
    .unwrap();
    env.secrets
        .create(&Default::default(), &source)
        .await
        .unwrap();
    apply(&env.stores, &kubernetes_store(&env).await).await;
    let spec = |property: &str| {
        json!({
            "secretStoreRef": {"name": "cluster"},
            "refreshInterval": "1s",
            "target": {"deletionPolicy": "Delete"},
            "data": [{"secretKey": "user",
                      "remoteRef": {"key": "source", "property": property}}]
        })
    };
    env.es("typo", spec("user")).await;
    let controller = RunningController::start(env.cluster.client(), &ns);
    secret_becomes(&env, "typo", &[("user", "app")]).await;
    ready_becomes(&env, "typo", "True", "SecretSynced").await;

    // The typo: the remote Secret exists, the property does not. Upstream's kubernetes
    // provider reports an error (not "no secret"), so nothing is deleted.
    env.es("typo", spec("usr")).await;
    let message = ready_becomes(&env, "typo", "False", "SecretSyncedError").await;
    assert!(
        message.contains("usr"),
        "the condition names the property: {message}"
    );
    // Several refresh intervals later the Secret still holds the last good data.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let secret = env.secrets.get("typo").await.unwrap();
    assert_eq!(data_of(&secret, "user").as_deref(), Some("app"));
    let (status, reason, _) = ready(&env.ess.get("typo").await.unwrap()).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SecretSyncedError")
    );

    // Fixing the typo heals it without a write of the unchanged Secret.
    let version = secret.metadata.resource_version.clone();
    env.es("typo", spec("user")).await;
    ready_becomes(&env, "typo", "True", "SecretSynced").await;
    assert_eq!(
        env.secrets
            .get("typo")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version
    );
    assert_steady(&env, "typo").await;
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}

/// A first sync writes a target it has never seen without reading it first; a Secret that
/// was already there must still be treated as the read would have: one controlled by another
/// ExternalSecret is left alone (and named), an unowned one is taken over and announced as an
/// update, not a create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_takes_no_secret_from_another_owner_and_calls_a_takeover_an_update() {
    let env = env().await;
    let ns = env.cluster.namespace().to_owned();
    env.seed(json!([{"key": "token", "value": "fresh"}])).await;
    // "owner" owns "owned" (and syncs it, key "token"); the thief's key is "stolen". "plain"
    // belongs to nobody and carries a key nobody claims. No controller runs yet.
    for (name, target, key) in [
        ("owner", "owned", "token"),
        ("thief", "owned", "stolen"),
        ("adopter", "plain", "token"),
    ] {
        env.es(
            name,
            json!({
                "secretStoreRef": {"name": "fake"},
                "refreshInterval": "1h",
                "target": {"name": target},
                "data": [{"secretKey": key, "remoteRef": {"key": "token"}}]
            }),
        )
        .await;
    }
    let owner_uid = env.ess.get("owner").await.unwrap().metadata.uid.unwrap();
    let mut owned: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "owned", "ownerReferences": [{
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "name": "owner", "uid": owner_uid, "controller": true}]},
        "stringData": {"token": "the owner's"}
    }))
    .unwrap();
    owned.metadata.namespace = Some(ns.clone());
    apply(&env.secrets, &owned).await;
    let plain: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "plain", "namespace": ns},
        "stringData": {"token": "old", "extra": "someone's"}
    }))
    .unwrap();
    apply(&env.secrets, &plain).await;
    let controller = RunningController::start(env.cluster.client(), &ns);

    let refusal = ready_becomes(&env, "thief", "False", "SecretSyncedError").await;
    assert!(refusal.contains("\"owner\""), "{refusal}");
    ready_becomes(&env, "adopter", "True", "SecretSynced").await;

    let owned = env.secrets.get("owned").await.unwrap();
    assert_eq!(data_of(&owned, "stolen"), None, "the thief wrote into it");
    let owners = owned.metadata.owner_references.unwrap();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].name, "owner");

    let plain = env.secrets.get("plain").await.unwrap();
    assert_eq!(data_of(&plain, "token").as_deref(), Some("fresh"));
    assert_eq!(
        data_of(&plain, "extra"),
        None,
        "an Owner target holds only its keys"
    );
    assert_eq!(plain.metadata.labels.unwrap()[LABEL_MANAGED], "true");
    assert_eq!(plain.metadata.owner_references.unwrap()[0].name, "adopter");

    let events: Api<Event> = Api::namespaced(env.cluster.client(), &ns);
    let reasons_for = |name: &'static str| {
        let events = events.clone();
        async move {
            events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter_map(|e| e.reason)
                .collect::<Vec<_>>()
        }
    };
    eventually("the adopter's event", || async {
        !reasons_for("adopter").await.is_empty()
    })
    .await
    .unwrap();
    assert_eq!(reasons_for("adopter").await, ["Updated"]);
    controller.stop().await;
    env.cluster.cleanup().await.unwrap();
}
