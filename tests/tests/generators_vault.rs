//! A VaultDynamicSecret generator in an ExternalSecret, end to end against a real OpenBao dev
//! server (started by the vault provider's test harness) and the harness's API server (or a
//! real cluster): the certificate's lease is recorded in a GeneratorState owned by the
//! ExternalSecret, and deleting the ExternalSecret revokes it (checked in OpenBao) and removes
//! the GeneratorState before the ExternalSecret goes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../crates/providers/vault/tests/common/mod.rs"]
mod common;

use common::Bao;
use eso_api::ExternalSecret;
use eso_api::generators::GeneratorState;
use eso_tests::{RunningController, TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

/// The generator's login: an AppRole whose tokens may issue certificates and revoke leases.
const GENERATOR_POLICY: &str = r#"
path "pki/issue/app" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#;

async fn openbao() -> (Bao, String, String) {
    let bao = Bao::start(false).await;
    bao.api("POST", "sys/mounts/pki", Some(json!({"type": "pki"})))
        .await;
    bao.api(
        "POST",
        "pki/root/generate/internal",
        Some(json!({"common_name": "eso-test-root", "ttl": "87600h"})),
    )
    .await;
    bao.api(
        "POST",
        "pki/roles/app",
        Some(json!({"allow_any_name": true, "generate_lease": true, "max_ttl": "1h"})),
    )
    .await;
    bao.api(
        "PUT",
        "sys/policies/acl/generator",
        Some(json!({"policy": GENERATOR_POLICY})),
    )
    .await;
    bao.api("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
        .await;
    bao.api(
        "POST",
        "auth/approle/role/generator",
        Some(json!({"token_policies": ["generator"], "token_ttl": "2h"})),
    )
    .await;
    let role_id = bao
        .api("GET", "auth/approle/role/generator/role-id", None)
        .await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = bao
        .api(
            "POST",
            "auth/approle/role/generator/secret-id",
            Some(json!({})),
        )
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (bao, role_id, secret_id)
}

async fn apply_json<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(value).unwrap();
    let name = obj.meta().name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_external_secret_revokes_the_vault_lease_and_removes_its_states() {
    let (bao, role_id, secret_id) = openbao().await;
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), &ns);
    let states: Api<GeneratorState> = Api::namespaced(client.clone(), &ns);
    let dynamic: Api<eso_api::generators::VaultDynamicSecret> =
        Api::namespaced(client.clone(), &ns);

    apply_json(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "approle", "namespace": ns},
               "stringData": {"secret-id": secret_id}}),
    )
    .await;
    apply_json(
        &dynamic,
        json!({
            "apiVersion": "generators.external-secrets.io/v1alpha1",
            "kind": "VaultDynamicSecret",
            "metadata": {"name": "cert", "namespace": ns},
            "spec": {
                "path": "pki/issue/app",
                "method": "POST",
                "parameters": {"common_name": "app.example.com", "ttl": "10m"},
                "provider": {
                    "server": bao.addr,
                    "auth": {"appRole": {"path": "approle", "roleId": role_id,
                             "secretRef": {"name": "approle", "key": "secret-id"}}},
                },
            },
        }),
    )
    .await;
    apply_json(
        &ess,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "tls", "namespace": ns},
            "spec": {
                "refreshInterval": "1h",
                "target": {"name": "tls-cert"},
                "dataFrom": [{"sourceRef": {"generatorRef": {
                    "apiVersion": "generators.external-secrets.io/v1alpha1",
                    "kind": "VaultDynamicSecret",
                    "name": "cert",
                }}}],
            },
        }),
    )
    .await;

    let config = eso_core::ControllerConfig::default().generators(eso_providers::generators());
    let controller = RunningController::start_with(client.clone(), config, &ns);
    eventually("the certificate in the target Secret", || async {
        secrets
            .get_opt("tls-cert")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.data)
            .is_some_and(|d| d.contains_key("serial_number"))
    })
    .await
    .unwrap();
    let serial = String::from_utf8(
        secrets.get("tls-cert").await.unwrap().data.unwrap()["serial_number"]
            .0
            .clone(),
    )
    .unwrap();

    // One GeneratorState, owned by the ExternalSecret, records the lease; the ExternalSecret
    // carries the cleanup finalizer.
    let es = ess.get("tls").await.unwrap();
    assert!(
        es.finalizers()
            .iter()
            .any(|f| f == eso_core::generate::FINALIZER),
        "{:?}",
        es.finalizers()
    );
    let listed = states.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0]
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == es.uid().as_ref())
    );
    let lease = listed[0].spec.state["leaseId"].as_str().unwrap().to_owned();
    assert!(lease.starts_with("pki/issue/app/"), "{lease}");
    // The certificate is not in the GeneratorState, only in Secrets.
    let private_key = String::from_utf8(
        secrets.get("tls-cert").await.unwrap().data.unwrap()["private_key"]
            .0
            .clone(),
    )
    .unwrap();
    assert!(
        !serde_json::to_string(&listed[0])
            .unwrap()
            .contains(&private_key)
    );
    let (status, _) = bao
        .call("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(status, 200, "the lease is live");

    ess.delete("tls", &DeleteParams::default()).await.unwrap();
    eventually("the ExternalSecret to be gone", || async {
        ess.get_opt("tls").await.unwrap().is_none()
    })
    .await
    .unwrap();
    assert!(
        states
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let (status, body) = bao
        .call("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(status, 400, "the lease was revoked: {body}");
    let cert = bao.api("GET", &format!("pki/cert/{serial}"), None).await;
    assert!(
        cert["data"]["revocation_time"].as_i64().unwrap() > 0,
        "the certificate was revoked: {cert}"
    );
    controller.stop().await;
}
