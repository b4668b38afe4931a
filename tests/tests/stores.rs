//! The SecretStore controller end to end, through the harness.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use eso_api::SecretStore;
use eso_core::store_controller::{StoreContext, StoreControllerConfig, run_store_controllers};
use eso_tests::{TEST_MANAGER, TestCluster, eventually, install_crds};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

fn ready(store: &SecretStore) -> Option<(String, String, String)> {
    let c = store
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_are_validated_and_report_ready_with_a_reason() {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let api: Api<SecretStore> = Api::namespaced(client.clone(), &ns);
    let params = PatchParams::apply(TEST_MANAGER).force();
    for (name, provider) in [
        (
            "good",
            json!({"fake": {"data": [{"key": "a", "value": "1"}]}}),
        ),
        (
            "unsupported",
            json!({"akeyless": {"akeylessGWApiURL": "http://gw"}}),
        ),
        ("other-class", json!({"fake": {"data": []}})),
    ] {
        let mut spec = json!({"provider": provider});
        if name == "other-class" {
            spec["controller"] = json!("someone-else");
        }
        let body = json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name, "namespace": ns}, "spec": spec});
        api.patch(name, &params, &Patch::Apply(&body))
            .await
            .unwrap();
    }
    let config = StoreControllerConfig::default().namespace(Some(ns.clone()));
    let ctx = Arc::new(StoreContext::new(
        client.clone(),
        config,
        eso_providers::builtin(),
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_store_controllers(ctx, false, async move {
        let _ = rx.await;
    }));

    let a = api.clone();
    eventually("the good store to be Ready", || async {
        a.get("good")
            .await
            .ok()
            .and_then(|s| ready(&s))
            .is_some_and(|(s, r, _)| s == "True" && r == "Valid")
    })
    .await
    .unwrap();
    assert_eq!(
        api.get("good").await.unwrap().status.unwrap().capabilities,
        Some(eso_api::SecretStoreCapabilities::ReadWrite)
    );
    let a = api.clone();
    eventually("the unsupported store to be not Ready", || async {
        a.get("unsupported")
            .await
            .ok()
            .and_then(|s| ready(&s))
            .is_some_and(|(s, _, _)| s == "False")
    })
    .await
    .unwrap();
    let (_, reason, message) = ready(&api.get("unsupported").await.unwrap()).unwrap();
    assert_eq!(reason, "InvalidProviderConfig");
    assert!(
        message.contains("provider \"akeyless\" is not supported"),
        "{message}"
    );
    // A store of another controller class is left alone.
    assert!(api.get("other-class").await.unwrap().status.is_none());

    let _ = tx.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
    cluster.cleanup().await.unwrap();
}
