//! `sync-once push` against a cluster (the in-process test API server, or a real cluster when
//! ESO_TEST_KUBECONFIG names a kubeconfig), with the fake provider.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_api::PushSecret;
use eso_tests::{TEST_MANAGER, TestCluster, install_crds};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

async fn apply_json(
    client: &kube::Client,
    ns: &str,
    version: &str,
    kind: &str,
    plural: &str,
    body: serde_json::Value,
) {
    let (group, ver) = version.split_once('/').unwrap_or(("", version));
    let ar = ApiResource {
        group: group.into(),
        version: ver.into(),
        api_version: version.into(),
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
        "external-secrets.io/v1",
        "SecretStore",
        "secretstores",
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "fake", "namespace": ns},
            "spec": {"provider": {"fake": {"data": [{"key": "same", "value": "v"}]}}}
        }),
    )
    .await;
    apply_json(
        &client,
        &ns,
        "v1",
        "Secret",
        "secrets",
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "src", "namespace": ns},
            "stringData": {"k": "v"}
        }),
    )
    .await;
    for (name, key, remote) in [
        ("same", "k", "same"),
        ("new", "k", "new"),
        ("bad", "missing", "x"),
    ] {
        apply_json(
            &client,
            &ns,
            "external-secrets.io/v1alpha1",
            "PushSecret",
            "pushsecrets",
            json!({
                "apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
                "metadata": {"name": name, "namespace": ns, "labels": {"case": name}},
                "spec": {
                    "secretStoreRefs": [{"name": "fake"}],
                    "selector": {"secret": {"name": "src"}},
                    "data": [{"match": {"secretKey": key, "remoteRef": {"remoteKey": remote}}}]
                }
            }),
        )
        .await;
    }
    cluster
}

fn push(cluster: &TestCluster, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sync-once"))
        .arg("push")
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
async fn push_pushes_each_push_secret_once_and_summarises() {
    let cluster = setup().await;
    let ns = cluster.namespace().to_owned();
    let (code, stdout, stderr) = push(&cluster, &[]);
    assert_eq!(code, 1, "one PushSecret fails: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "{ns}/same: synced: no change (the stores hold every value)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{ns}/new: synced: push spec.data[0] key \"k\" of Secret \"src\" to remote key \"new\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{ns}/bad: failed: spec.data[0].match.secretKey: Secret \"src\" has no key \"missing\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("2 synced, 1 failed"),
        "{stdout}"
    );
    let api: Api<PushSecret> = Api::namespaced(cluster.client(), &ns);
    let status = api.get("new").await.unwrap().status.unwrap();
    assert_eq!(status.conditions[0].reason.as_deref(), Some("Synced"));
    assert!(status.synced_push_secrets["SecretStore/fake"].contains_key("new"));

    let (code, stdout, _) = push(&cluster, &["-l", "case=same"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.trim_end().ends_with("1 synced, 0 failed"),
        "{stdout}"
    );
    cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_dry_run_writes_nothing() {
    let cluster = setup().await;
    let ns = cluster.namespace().to_owned();
    let (code, stdout, _) = push(&cluster, &["--dry-run", "-l", "case=new"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("dry run: would push spec.data[0] key \"k\" of Secret \"src\" to remote key \"new\" in SecretStore"),
        "{stdout}"
    );
    let api: Api<PushSecret> = Api::namespaced(cluster.client(), &ns);
    assert!(
        api.get("new").await.unwrap().status.is_none(),
        "a dry run writes no status"
    );
    cluster.cleanup().await.unwrap();
}
