//! Two replicas in one process, wired as the operator wires them (a `LeaseManager`, an
//! `ExternalSecretController` whose watches always run, reconcilers per leadership term):
//! the standby's status series are warm before it leads, and it takes over reconciling when
//! the leader shuts down. Runs through the harness (in-process server or ESO_TEST_KUBECONFIG).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use eso_api::{ExternalSecret, SecretStore};
use eso_core::controller::{ControllerConfig, ExternalSecretController};
use eso_core::object_metrics::StatusSeries;
use eso_leader::{LeaseConfig, LeaseManager, run_terms};
use eso_tests::{TEST_MANAGER, TestCluster, eventually, install_crds};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::watch;

struct Replica {
    leading: watch::Receiver<bool>,
    series: Arc<StatusSeries>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    fn start(cluster: &TestCluster, identity: &str) -> Self {
        let config = LeaseConfig::default()
            .name("eso-test-replicas")
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
        let series = controller.status_series();
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
            series,
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

fn external_secret(ns: &str, name: &str) -> ExternalSecret {
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1h",
            "target": {"name": format!("{name}-secret")},
            "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]
        }
    }))
    .unwrap()
}

async fn ready(ess: &Api<ExternalSecret>, names: &[&str]) -> bool {
    for name in names {
        let Ok(es) = ess.get(name).await else {
            return false;
        };
        let ok = es.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status.as_str() == "True")
        });
        if !ok {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_keeps_status_series_warm_and_takes_over_reconciling() {
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
    let ess: Api<ExternalSecret> = Api::namespaced(client, &ns);
    for name in ["one", "two"] {
        ess.patch(name, &params, &Patch::Apply(&external_secret(&ns, name)))
            .await
            .unwrap();
    }

    let mut replicas = vec![Replica::start(&cluster, "a"), Replica::start(&cluster, "b")];
    eventually("a leader", || async { replicas.iter().any(Replica::leads) })
        .await
        .unwrap();
    eventually("both ExternalSecrets to be Ready", || {
        ready(&ess, &["one", "two"])
    })
    .await
    .unwrap();
    let leader = replicas.iter().position(Replica::leads).unwrap();
    let standby = 1 - leader;
    assert!(!replicas[standby].leads());
    // The standby follows the stored statuses without reconciling anything.
    eventually("the standby's series to cover both objects", || async {
        replicas[standby].series.len() == 2
            && replicas[standby]
                .series
                .render()
                .contains(r#"name="two",namespace=""#)
    })
    .await
    .unwrap();

    replicas.remove(leader).shutdown().await;
    eventually("the standby to lead", || async { replicas[0].leads() })
        .await
        .unwrap();
    ess.patch(
        "three",
        &params,
        &Patch::Apply(&external_secret(&ns, "three")),
    )
    .await
    .unwrap();
    eventually("the new leader to reconcile a new object", || {
        ready(&ess, &["three"])
    })
    .await
    .unwrap();
    eventually("its series to include it", || async {
        replicas[0].series.len() == 3
    })
    .await
    .unwrap();

    for r in replicas {
        r.shutdown().await;
    }
    cluster.cleanup().await.unwrap();
}
