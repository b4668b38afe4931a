//! `sync-once run` against a cluster (the in-process test API server, or a real cluster when
//! ESO_TEST_KUBECONFIG names a kubeconfig).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_tests::{TEST_MANAGER, TestCluster, install_crds};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

async fn apply_json(
    client: &kube::Client,
    ns: &str,
    kind: &str,
    plural: &str,
    body: serde_json::Value,
) {
    let ar = ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let name = body["metadata"]["name"].as_str().unwrap().to_owned();
    api.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
}

async fn setup() -> TestCluster {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    let ns = cluster.namespace().to_owned();
    install_crds(&client).await.unwrap();
    apply_json(
        &client,
        &ns,
        "SecretStore",
        "secretstores",
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "fake", "namespace": ns},
            "spec": {"provider": {"fake": {"data": [{"key": "token", "value": "t0k"}]}}}
        }),
    )
    .await;
    for (name, key) in [("good", "token"), ("bad", "missing")] {
        apply_json(&client, &ns, "ExternalSecret", "externalsecrets", json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": ns, "labels": {"case": name}},
            "spec": {"secretStoreRef": {"name": "fake"}, "data": [{"secretKey": "token", "remoteRef": {"key": key}}]}
        }))
        .await;
    }
    cluster
}

fn sync_once(cluster: &TestCluster, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sync-once"))
        .arg("run")
        .args(["-n", cluster.namespace()])
        .args(args)
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_syncs_each_external_secret_once_and_summarises() {
    let cluster = setup().await;
    let ns = cluster.namespace().to_owned();
    let (code, stdout, stderr) = sync_once(&cluster, &[]);
    assert_eq!(code, 1, "one ExternalSecret fails: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{ns}/good: synced: Secret created")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{ns}/bad: failed:")) && stdout.contains("\"missing\""),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("1 synced, 1 failed"),
        "{stdout}"
    );
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), &ns);
    let secret = secrets.get("good").await.unwrap();
    assert_eq!(secret.data.unwrap()["token"].0, b"t0k");

    let (code, stdout, _) = sync_once(&cluster, &["-l", "case=good"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("synced: no change (SecretSynced)"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("1 synced, 0 failed"),
        "{stdout}"
    );
    cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let cluster = setup().await;
    let ns = cluster.namespace().to_owned();
    let (code, stdout, _) = sync_once(&cluster, &["--dry-run", "-l", "case=good"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("dry run: would create Secret \"good\" with keys [token]"),
        "{stdout}"
    );
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), &ns);
    assert!(secrets.get_opt("good").await.unwrap().is_none());
    cluster.cleanup().await.unwrap();
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("eso-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("config");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sync-once"))
        .args(["run", "--timeout", "20s"])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot list ExternalSecrets") || stderr.contains("gave up"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_value_is_kept_across_runs_and_a_dry_run_stores_nothing() {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    let ns = cluster.namespace().to_owned();
    install_crds(&client).await.unwrap();
    let password = ApiResource {
        group: "generators.external-secrets.io".into(),
        version: "v1alpha1".into(),
        api_version: "generators.external-secrets.io/v1alpha1".into(),
        kind: "Password".into(),
        plural: "passwords".into(),
    };
    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &password)
        .patch(
            "pw",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&json!({
                "apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
                "metadata": {"name": "pw", "namespace": ns}, "spec": {"length": 18}
            })),
        )
        .await
        .unwrap();
    apply_json(&client, &ns, "ExternalSecret", "externalsecrets", json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "gen", "namespace": ns},
        "spec": {"refreshInterval": "1h", "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "Password", "name": "pw"}}}]}
    }))
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    let (code, stdout, stderr) = sync_once(&cluster, &["--dry-run"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("create Secret \"gen\" with keys [password]"),
        "{stdout}"
    );
    assert!(secrets.get_opt("gen").await.unwrap().is_none());
    assert!(secrets.get_opt("gen-generated").await.unwrap().is_none());

    let (code, stdout, stderr) = sync_once(&cluster, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let first = secrets.get("gen").await.unwrap().data.unwrap()["password"].clone();
    assert_eq!(first.0.len(), 18);
    assert!(secrets.get_opt("gen-generated").await.unwrap().is_some());
    // A second run (forced, as every run is) reuses the stored value.
    let (code, stdout, _) = sync_once(&cluster, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("synced: no change (SecretSynced)"),
        "{stdout}"
    );
    assert_eq!(
        secrets.get("gen").await.unwrap().data.unwrap()["password"],
        first
    );
    cluster.cleanup().await.unwrap();
}
