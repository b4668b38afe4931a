//! The library's `Manager`, as an embedding tool runs it (the operator binary runs the same):
//! it campaigns for the Lease, reconciles while leading, reports readiness and the per-object
//! series, and on shutdown stops and releases the Lease. Runs through the harness (in-process
//! server or ESO_TEST_KUBECONFIG).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use eso_api::{ExternalSecret, SecretStore};
use eso_core::{ControllerConfig, LeaseConfig, Manager, ManagerConfig, PerObjectMetrics};
use eso_tests::{TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const LEASE: &str = "eso-test-manager";

fn manager_config(namespace: &str, identity: &str) -> ManagerConfig {
    ManagerConfig::new(identity)
        .controller(ControllerConfig::default().namespace(Some(namespace.to_owned())))
        .lease(
            LeaseConfig::default()
                .name(LEASE)
                .lease_duration(Duration::from_secs(3))
                .renew_deadline(Duration::from_secs(2))
                .retry_period(Duration::from_millis(250)),
        )
        .leader_election(Some(namespace.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_reconciles_while_leading_and_releases_the_lease_on_shutdown() {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let params = PatchParams::apply(TEST_MANAGER).force();
    let store: SecretStore = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": ns},
        "spec": {"provider": {"fake": {"data": [{"key": "k", "value": "v"}]}}}
    }))
    .unwrap();
    Api::<SecretStore>::namespaced(client.clone(), &ns)
        .patch("fake", &params, &Patch::Apply(&store))
        .await
        .unwrap();
    let es: ExternalSecret = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1h",
            "target": {"name": "db-secret"},
            "data": [{"secretKey": "password", "remoteRef": {"key": "k"}}]
        }
    }))
    .unwrap();
    Api::<ExternalSecret>::namespaced(client.clone(), &ns)
        .patch("db", &params, &Patch::Apply(&es))
        .await
        .unwrap();

    let manager = Manager::new(
        client.clone(),
        eso_providers::builtin(),
        manager_config(&ns, "embedder-0").per_object_metrics(PerObjectMetrics::Leader),
    )
    .unwrap();
    let status = manager.status();
    assert!(!status.is_ready(), "not ready before it runs");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(manager.run(async move {
        let _ = stopped.await;
    }));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    eventually("the manager to lead and write the Secret", || async {
        status.is_ready()
            && status.is_leading()
            && secrets
                .get_opt("db-secret")
                .await
                .ok()
                .flatten()
                .and_then(|s| s.data)
                .is_some_and(|d| d.get("password").map(|v| v.0.as_slice()) == Some(b"v"))
    })
    .await
    .unwrap();
    eventually("the leader to export the object's Ready series", || async {
        status.metrics_text("").contains(&format!(
            r#"externalsecret_status_condition{{name="db",namespace="{ns}",condition="Ready",status="True"}} 1"#
        ))
    })
    .await
    .unwrap();

    let leases: Api<Lease> = Api::namespaced(client, &ns);
    let holder = |lease: Lease| lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(
        holder(leases.get(LEASE).await.unwrap()).as_deref(),
        Some("embedder-0")
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the manager stops within its grace")
        .unwrap();
    assert!(!status.is_leading());
    assert_eq!(
        holder(leases.get(LEASE).await.unwrap()).unwrap_or_default(),
        "",
        "the Lease is released for a standby"
    );
    cluster.cleanup().await.unwrap();
}

/// A SecretStore `fake` and an ExternalSecret `db` (target `db-secret`) in `ns`.
async fn store_and_external_secret(client: &kube::Client, ns: &str) {
    let params = PatchParams::apply(TEST_MANAGER).force();
    let store: SecretStore = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": ns},
        "spec": {"provider": {"fake": {"data": [{"key": "k", "value": ns}]}}}
    }))
    .unwrap();
    Api::<SecretStore>::namespaced(client.clone(), ns)
        .patch("fake", &params, &Patch::Apply(&store))
        .await
        .unwrap();
    let es: ExternalSecret = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {"secretStoreRef": {"name": "fake"}, "refreshInterval": "1h",
                 "target": {"name": "db-secret"},
                 "data": [{"secretKey": "password", "remoteRef": {"key": "k"}}]}
    }))
    .unwrap();
    Api::<ExternalSecret>::namespaced(client.clone(), ns)
        .patch("db", &params, &Patch::Apply(&es))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_scoped_to_a_list_of_namespaces_syncs_those_and_no_other() {
    use k8s_openapi::api::core::v1::Namespace;

    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let (second, outside) = (format!("{ns}-b"), format!("{ns}-c"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for extra in [&second, &outside] {
        namespaces
            .patch(
                extra,
                &PatchParams::apply(TEST_MANAGER).force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": extra}})),
            )
            .await
            .unwrap();
    }
    for each in [&ns, &second, &outside] {
        store_and_external_secret(&client, each).await;
    }

    let manager = Manager::new(
        client.clone(),
        eso_providers::builtin(),
        manager_config(&ns, "embedder-1").namespaces(vec![ns.clone(), second.clone()]),
    )
    .unwrap();
    let status = manager.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(manager.run(async move {
        let _ = stopped.await;
    }));
    for each in [&ns, &second] {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), each);
        eventually(&format!("the Secret in {each}"), || async {
            secrets
                .get_opt("db-secret")
                .await
                .ok()
                .flatten()
                .and_then(|s| s.data)
                .is_some_and(|d| d.get("password").map(|v| v.0.as_slice()) == Some(each.as_bytes()))
        })
        .await
        .unwrap();
        eventually(&format!("the Ready series of {each}"), || async {
            status.metrics_text("").contains(&format!(
                r#"externalsecret_status_condition{{name="db",namespace="{each}",condition="Ready",status="True"}} 1"#
            ))
        })
        .await
        .unwrap();
    }
    // The namespace outside the list: untouched (no Secret, no status), even after the
    // listed ones were synced by the same manager.
    let es = Api::<ExternalSecret>::namespaced(client.clone(), &outside)
        .get("db")
        .await
        .unwrap();
    assert!(es.status.is_none(), "{:?}", es.status);
    assert!(
        Api::<Secret>::namespaced(client.clone(), &outside)
            .get_opt("db-secret")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !status
            .metrics_text("")
            .contains(&format!("namespace=\"{outside}\""))
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the manager stops within its grace")
        .unwrap();
    for extra in [&second, &outside] {
        namespaces.delete(extra, &Default::default()).await.unwrap();
    }
    cluster.cleanup().await.unwrap();
}
