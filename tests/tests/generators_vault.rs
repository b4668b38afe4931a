//! A VaultDynamicSecret generator in an ExternalSecret, end to end against a real OpenBao dev
//! server (started by the vault provider's test harness) and the harness's API server (or a
//! real cluster): the certificate's lease is recorded in a GeneratorState owned by the
//! ExternalSecret, and deleting the ExternalSecret revokes it (checked in OpenBao) and removes
//! the GeneratorState before the ExternalSecret goes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_api::ExternalSecret;
use eso_api::generators::GeneratorState;
use eso_test_support::bao::Bao;
use eso_tests::{RunningController, TEST_MANAGER, TestCluster, eventually, install_crds};
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeSet;
use std::time::Duration;

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
    let (role_id, secret_id) = bao.pki_with_approle(GENERATOR_POLICY).await;
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

struct Setup {
    bao: Bao,
    secrets: Api<Secret>,
    ess: Api<ExternalSecret>,
    states: Api<GeneratorState>,
    _cluster: TestCluster,
    client: kube::Client,
    ns: String,
}

/// OpenBao with a PKI role, the AppRole Secret, a VaultDynamicSecret `cert` issuing
/// certificates, and an ExternalSecret `tls` using it with `refresh_interval`.
async fn setup(refresh_interval: &str) -> Setup {
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
                "refreshInterval": refresh_interval,
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
    Setup {
        bao,
        secrets,
        ess,
        states,
        _cluster: cluster,
        client,
        ns,
    }
}

impl Setup {
    async fn serial(&self) -> Option<String> {
        let data = self.secrets.get_opt("tls-cert").await.ok()??.data?;
        Some(String::from_utf8(data.get("serial_number")?.0.clone()).unwrap())
    }

    async fn states(&self) -> Vec<GeneratorState> {
        self.states
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    async fn lease_live(&self, lease: &str) -> bool {
        let (status, _) = self
            .bao
            .call("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
            .await;
        status == 200
    }
}

fn lease_of(state: &GeneratorState) -> String {
    state.spec.state["leaseId"].as_str().unwrap().to_owned()
}

fn controller(s: &Setup, grace: Duration) -> RunningController {
    let config = eso_core::ControllerConfig::default()
        .generators(eso_providers::generators())
        .generator_state_grace(grace);
    RunningController::start_with(s.client.clone(), config, &s.ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_leases_wait_out_the_grace_period_and_their_number_is_bounded() {
    let s = setup("2s").await;
    let controller = controller(&s, Duration::from_secs(3600));
    // Rotations: every state ever seen, and the most seen at once.
    let mut serials: Vec<String> = Vec::new();
    let mut leases: BTreeSet<String> = BTreeSet::new();
    let mut most = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while serials.len() < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for rotations: {serials:?}"
        );
        if let Some(serial) = s.serial().await
            && serials.last() != Some(&serial)
        {
            serials.push(serial);
        }
        let states = s.states().await;
        most = most.max(states.len());
        leases.extend(states.iter().map(lease_of));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    controller.stop().await;
    // Three at rest; a fourth exists only within the sync that rotates (the new state is
    // written before the oldest superseded one is released).
    assert!(most <= 4, "{most} GeneratorStates at once");
    let remaining: BTreeSet<String> = s.states().await.iter().map(lease_of).collect();
    assert!(remaining.len() <= 3, "{remaining:?}");
    // Leases beyond the bound were revoked although their grace period had not ended; the
    // ones still recorded are live.
    let mut revoked = 0;
    for lease in &leases {
        let live = s.lease_live(lease).await;
        assert_eq!(live, remaining.contains(lease), "{lease}");
        revoked += usize::from(!live);
    }
    assert!(revoked >= 2, "{revoked} of {} leases revoked", leases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_lease_is_revoked_after_the_grace_period() {
    let s = setup("3s").await;
    let controller = controller(&s, Duration::from_secs(1));
    eventually("a first certificate", || async {
        s.serial().await.is_some()
    })
    .await
    .unwrap();
    let first = s.states().await;
    assert_eq!(first.len(), 1);
    let first_lease = lease_of(&first[0]);
    // The next rotation supersedes it; a second later it is revoked and its state deleted,
    // while the current one stays.
    eventually("the superseded lease to be revoked", || async {
        !s.lease_live(&first_lease).await
    })
    .await
    .unwrap();
    eventually("its GeneratorState to be deleted", || async {
        s.states()
            .await
            .iter()
            .all(|st| st.name_any() != first[0].name_any())
    })
    .await
    .unwrap();
    // The current value's state has no deadline and its lease is live.
    eventually("one current state with a live lease", || async {
        let current: Vec<GeneratorState> = s
            .states()
            .await
            .into_iter()
            .filter(|st| st.spec.garbage_collection_deadline.is_none())
            .collect();
        current.len() == 1 && s.lease_live(&lease_of(&current[0])).await
    })
    .await
    .unwrap();
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_external_secret_revokes_the_vault_lease_and_removes_its_states() {
    let s = setup("1h").await;
    let controller = controller(&s, Duration::from_secs(600));
    let (secrets, ess, states, bao) = (&s.secrets, &s.ess, &s.states, &s.bao);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_generator_entry_revokes_its_lease_after_the_grace_and_drops_the_finalizer() {
    let s = setup("1h").await;
    let controller = controller(&s, Duration::from_secs(1));
    eventually("a first certificate", || async {
        s.serial().await.is_some()
    })
    .await
    .unwrap();
    let states = s.states().await;
    assert_eq!(states.len(), 1);
    let lease = lease_of(&states[0]);
    let fake: Api<eso_api::generators::Fake> = Api::namespaced(s.client.clone(), &s.ns);
    apply_json(
        &fake,
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Fake",
               "metadata": {"name": "static", "namespace": s.ns}, "spec": {"data": {"k": "v"}}}),
    )
    .await;
    apply_json(
        &s.ess,
        json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "tls", "namespace": s.ns},
            "spec": {
                "refreshInterval": "1h",
                "target": {"name": "tls-cert"},
                "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "Fake", "name": "static"}}}],
            },
        }),
    )
    .await;
    eventually("the new data in the target", || async {
        s.secrets
            .get("tls-cert")
            .await
            .ok()
            .and_then(|t| t.data)
            .is_some_and(|d| d.contains_key("k") && !d.contains_key("serial_number"))
    })
    .await
    .unwrap();
    // Nothing else happens to the ExternalSecret: the deadline alone brings the cleanup.
    eventually("the lease to be revoked", || async {
        !s.lease_live(&lease).await
    })
    .await
    .unwrap();
    eventually("no state and no finalizer", || async {
        let es = s.ess.get("tls").await.unwrap();
        s.states().await.is_empty()
            && !es
                .finalizers()
                .iter()
                .any(|f| f == eso_core::generate::FINALIZER)
    })
    .await
    .unwrap();
    controller.stop().await;
}
