//! `kubectl` (a real client, as a subprocess) against the harness.

// Test helpers may fail loudly: a panic there is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use eso_test_apiserver::TestCluster;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.eso-test.example.com
spec:
  group: eso-test.example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wdg]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3}
              color: {type: string}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

struct Kubectl {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    namespace: String,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(c: &TestCluster) -> Self {
        Self {
            kubectl: eso_test_apiserver::kubectl().unwrap(),
            kubeconfig: c.kubeconfig_path().to_path_buf(),
            namespace: c.namespace().into(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args);
        cmd.env_remove("KUBECONFIG").kill_on_drop(true);
        cmd
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {err}");
        out
    }

    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }
}

fn widgets(c: &TestCluster) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("eso-test.example.com", "v1", "Widget");
    Api::namespaced_with(c.client(), c.namespace(), &ApiResource::from_gvk(&gvk))
}

#[tokio::test]
async fn kubectl_creates_namespace_applies_crd_and_replaces_custom_resource() {
    let c = TestCluster::new().await.unwrap();
    let k = Kubectl::new(&c);
    let ns_name = format!("{}-extra", c.namespace());
    let ns = k.file(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns_name}\n"),
    );
    k.ok(&["create", "-f", &ns]).await;
    k.ok(&["get", "namespace", &ns_name]).await;
    let crd = k.file("crd.yaml", WIDGET_CRD);
    k.ok(&["apply", "-f", &crd]).await;
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.eso-test.example.com",
        "--timeout=30s",
    ])
    .await;
    // The repository's generated CRDs.
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    k.ok(&["apply", "--server-side", "-f", &deploy.to_string_lossy()])
        .await;
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/externalsecrets.external-secrets.io",
        "--timeout=30s",
    ])
    .await;
    let es = k.file(
        "es.yaml",
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: es1\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {name: store, kind: SecretStore}\n  target: {name: out}\n  data:\n  - secretKey: k\n    remoteRef: {key: remote}\n",
    );
    k.ok(&["apply", "-f", &es]).await;
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "externalsecret", "es1", "-o", "json"]).await).unwrap();
    assert_eq!(got["spec"]["target"]["name"], "out");
    let w = k.file("w.yaml", "apiVersion: eso-test.example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  color: red\n");
    k.ok(&["apply", "-f", &w]).await;
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "widgets", "w1", "-o", "json"]).await).unwrap();
    assert_eq!(
        got["spec"],
        json!({"color": "red", "size": 3}),
        "schema default applied"
    );
    assert_eq!(got["metadata"]["generation"], 1);
    let mut edited = got.clone();
    edited["spec"]["color"] = json!("blue");
    let edited_path = k.file("w-edited.json", &edited.to_string());
    k.ok(&["replace", "-f", &edited_path]).await;
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "wdg", "w1", "-o", "json"]).await).unwrap();
    assert_eq!(got["spec"]["color"], "blue");
    assert_eq!(got["metadata"]["generation"], 2);
    // A stale replace is refused with a conflict.
    let (ok, _, err) = k.run(&["replace", "-f", &edited_path]).await;
    assert!(!ok && err.contains("modified"), "{err}");
    let table = k.ok(&["get", "widgets"]).await;
    assert!(table.contains("NAME") && table.contains("w1"), "{table}");
    k.ok(&["delete", "namespace", &ns_name, "--wait=false"])
        .await;
}

#[tokio::test]
async fn kubectl_server_side_apply_reports_conflicts_unless_forced() {
    let c = TestCluster::new().await.unwrap();
    let k = Kubectl::new(&c);
    let cm = |v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  key: {v}\n")
    };
    let a = k.file("a.yaml", &cm("a"));
    let b = k.file("b.yaml", &cm("b"));
    k.ok(&["apply", "--server-side", "--field-manager=alice", "-f", &a])
        .await;
    let (ok, _, err) = k
        .run(&["apply", "--server-side", "--field-manager=bob", "-f", &b])
        .await;
    assert!(!ok && err.contains("conflict"), "{err}");
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=bob",
        "--force-conflicts",
        "-f",
        &b,
    ])
    .await;
    let v = k
        .ok(&["get", "configmap", "shared", "-o", "jsonpath={.data.key}"])
        .await;
    assert_eq!(v, "b");
}

#[tokio::test]
async fn kubectl_watch_prints_secret_changes() {
    let c = TestCluster::new().await.unwrap();
    let k = Kubectl::new(&c);
    let mut child = k
        .command(&["get", "secrets", "--watch", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let secrets: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    // kubectl may connect after our create, in which case it lists the secret first; either
    // way the name shows up.
    let s = Secret {
        metadata: kube::core::ObjectMeta {
            name: Some("watched".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let l = lines.next_line().await.unwrap().expect("kubectl exited");
            if l.contains("watched") {
                return l;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(line.trim(), "secret/watched");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn kubectl_delete_cascades_to_owned_secrets() {
    let c = TestCluster::new().await.unwrap();
    let k = Kubectl::new(&c);
    k.ok(&["apply", "-f", &k.file("crd.yaml", WIDGET_CRD)])
        .await;
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.eso-test.example.com",
        "--timeout=30s",
    ])
    .await;
    k.ok(&["apply", "-f", &k.file("w.yaml", "apiVersion: eso-test.example.com/v1\nkind: Widget\nmetadata:\n  name: owner\nspec: {}\n")]).await;
    let owner = widgets(&c).get("owner").await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    for name in ["a", "b"] {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": format!("owned-{name}"), "ownerReferences": [{
                "apiVersion": "eso-test.example.com/v1", "kind": "Widget", "name": "owner",
                "uid": owner.metadata.uid, "controller": true, "blockOwnerDeletion": true}]},
            "stringData": {"k": "v"},
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    k.ok(&[
        "delete",
        "widget",
        "owner",
        "--cascade=foreground",
        "--timeout=30s",
    ])
    .await;
    // Foreground deletion returns once the owner is gone, which waits for its dependents.
    assert!(widgets(&c).get_opt("owner").await.unwrap().is_none());
    assert!(secrets.get_opt("owned-a").await.unwrap().is_none());
    assert!(secrets.get_opt("owned-b").await.unwrap().is_none());
}

#[tokio::test]
async fn kubectl_typed_create_commands_work() {
    let c = TestCluster::new().await.unwrap();
    let k = Kubectl::new(&c);
    let extra = format!("{}-typed", c.namespace());
    k.ok(&["create", "namespace", &extra]).await;
    k.ok(&["create", "secret", "generic", "gen", "--from-literal=a=b"])
        .await;
    k.ok(&["create", "configmap", "cm", "--from-literal=x=y"])
        .await;
    k.ok(&["create", "serviceaccount", "robot"]).await;
    let token = k
        .ok(&["create", "token", "robot", "--audience=vault"])
        .await;
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
    assert_eq!(
        k.ok(&["get", "secret", "gen", "-o", "jsonpath={.data.a}"])
            .await,
        "Yg=="
    );
    assert_eq!(
        k.ok(&["get", "configmap", "cm", "-o", "jsonpath={.data.x}"])
            .await,
        "y"
    );
    k.ok(&["delete", "namespace", &extra, "--wait=false"]).await;
}
