//! The ClusterExternalSecret controller end to end, through the harness.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_api::{ClusterExternalSecret, ExternalSecret};
use std::sync::Arc;

use eso_core::ces_controller::{run_ces_controller, spawn_ces_series};
use eso_core::object_metrics::StatusSeries;
use eso_tests::{TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fans_out_to_selected_namespaces_and_cleans_up() {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let label = format!("ces-test-{ns}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"eso-ces-test": label}}})),
        )
        .await
        .unwrap();

    let ces_name = format!("ces-{ns}");
    let ces_api: Api<ClusterExternalSecret> = Api::all(client.clone());
    let body = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
        "metadata": {"name": ces_name, "annotations": {"external-secrets.io/force-sync": "1"}},
        "spec": {
            "externalSecretName": "fanned",
            "externalSecretMetadata": {"labels": {"from": "ces"}},
            "namespaceSelectors": [{"matchLabels": {"eso-ces-test": label}}],
            "externalSecretSpec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k", "remoteRef": {"key": "r"}}]}
        }
    });
    ces_api
        .patch(
            &ces_name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();

    let series = Arc::new(StatusSeries::cluster_external_secrets());
    let series_task = spawn_ces_series(client.clone(), series.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_ces_controller(client.clone(), async move {
        let _ = rx.await;
    }));
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), &ns);
    let e = es_api.clone();
    eventually("the ExternalSecret in the selected namespace", || async {
        e.get_opt("fanned").await.ok().flatten().is_some()
    })
    .await
    .unwrap();
    let child = es_api.get("fanned").await.unwrap();
    assert_eq!(child.metadata.labels.as_ref().unwrap()["from"], "ces");
    assert_eq!(
        child.metadata.annotations.as_ref().unwrap()["external-secrets.io/force-sync"],
        "1"
    );
    assert_eq!(child.spec.data[0].secret_key, "k");
    let c = ces_api.clone();
    let name = ces_name.clone();
    let wanted = ns.clone();
    eventually("provisionedNamespaces", || {
        let c = c.clone();
        let name = name.clone();
        let wanted = wanted.clone();
        async move {
            c.get(&name)
                .await
                .ok()
                .and_then(|c| c.status)
                .is_some_and(|s| s.provisioned_namespaces == vec![wanted])
        }
    })
    .await
    .unwrap();

    // The stored Ready condition is exported as clusterexternalsecret_status_condition.
    let ready_line = format!(
        "clusterexternalsecret_status_condition{{name=\"{ces_name}\",namespace=\"\",condition=\"Ready\",status=\"True\"}} 1"
    );
    eventually("the Ready series", || async {
        series.render().contains(&ready_line)
    })
    .await
    .unwrap();

    // The namespace stops matching: its ExternalSecret goes away.
    namespaces
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"eso-ces-test": null}}})),
        )
        .await
        .unwrap();
    let e = es_api.clone();
    eventually("the ExternalSecret to be removed", || async {
        e.get_opt("fanned").await.ok().flatten().is_none()
    })
    .await
    .unwrap();

    ces_api
        .delete(&ces_name, &DeleteParams::default())
        .await
        .unwrap();
    let gone = format!("name=\"{ces_name}\"");
    eventually(
        "the series of the deleted ClusterExternalSecret to go",
        || async { !series.render().contains(&gone) },
    )
    .await
    .unwrap();
    series_task.abort();
    let _ = tx.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
    cluster.cleanup().await.unwrap();
}
