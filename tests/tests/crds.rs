//! The generated CRDs are accepted by kubectl and by the API server, and served afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use eso_tests::TestCluster;

fn crd_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

fn kubectl(cluster: &TestCluster, args: &[&str]) -> (bool, String) {
    let out = Command::new(eso_test_apiserver::kubectl().unwrap())
        .args(args)
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_accepts_the_generated_crds() {
    let cluster = TestCluster::new().await.unwrap();
    let dir = crd_dir();
    let dir = dir.to_str().unwrap();
    let (ok, out) = kubectl(&cluster, &["apply", "--dry-run=client", "-f", dir]);
    assert!(
        ok,
        "kubectl apply --dry-run=client rejected the CRDs: {out}"
    );
    for name in [
        "externalsecrets",
        "secretstores",
        "clustersecretstores",
        "clusterexternalsecrets",
        "pushsecrets",
    ] {
        assert!(
            out.contains(&format!("{name}.external-secrets.io created (dry run)"))
                || out.contains(&format!("{name}.external-secrets.io configured (dry run)"))
                || out.contains(&format!("{name}.external-secrets.io unchanged (dry run)")),
            "{name} missing from: {out}"
        );
    }
    // Install them for real and use the short names and printer columns.
    let (ok, out) = kubectl(&cluster, &["apply", "--server-side", "-f", dir]);
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &cluster,
        &[
            "wait",
            "--for",
            "condition=established",
            "crd/externalsecrets.external-secrets.io",
            "--timeout=30s",
        ],
    );
    assert!(ok, "{out}");
    let ns = cluster.namespace().to_owned();
    let (ok, out) = kubectl(&cluster, &["get", "es", "-n", &ns]);
    assert!(ok, "{out}");
    cluster.cleanup().await.unwrap();
}
