//! Runs every example and checks what it prints; `sync_cluster` runs against the in-process
//! test API server (or the real cluster `ESO_TEST_KUBECONFIG` names) through a kubeconfig in
//! `KUBECONFIG`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use eso_core::api::{ExternalSecret, SecretStore};
use eso_core::k8s_openapi::api::core::v1::Secret;
use eso_core::kube::api::{Api, Patch, PatchParams};
use eso_core::{ManifestSet, Sourced};
use eso_tests::{TEST_MANAGER, TestCluster, install_crds};

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs an example with `ARGS`, with `KUBECONFIG` when given.
///
/// `cargo test` builds every example of the package next to the test binary
/// (`target/debug/examples/NAME`), with the features of the packages under test; that binary is
/// run. A run filtered with `--test examples` builds no example, so it may find an old binary;
/// when there is none, the example is built and run with `cargo run -p eso-examples --example
/// NAME`, as a reader would. That works because the outer `cargo test` has released the build
/// lock, but it may rebuild dependencies with other features, so it is the slow path.
fn run_example(name: &str, args: &[&str], kubeconfig: Option<&Path>) -> Run {
    let built = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("examples")))
        .map(|dir| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
        .filter(|path| path.is_file());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = match built {
        Some(path) => Command::new(path),
        None => {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["run", "-q", "-p", "eso-examples", "--example", name, "--"]);
            cmd
        }
    };
    cmd.current_dir(&workspace).args(args);
    if let Some(kc) = kubeconfig {
        cmd.env("KUBECONFIG", kc);
    }
    let out = cmd.output().unwrap();
    Run {
        success: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn render_yaml_prints_the_templated_secret() {
    let run = run_example("render_yaml", &[], None);
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("ExternalSecret default/db renders Secret \"db-credentials\":"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("  url: postgres://app:s3cr3t@db:5432/app"),
        "{}",
        run.stdout
    );
}

#[test]
fn custom_provider_value_lands_in_the_rendered_secret() {
    let run = run_example("custom_provider", &[], None);
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.trim_end(),
        "default/api -> Secret \"api\" key token: from-my-hashmap",
        "{}",
        run.stderr
    );
}

/// Applies the quickstart's SecretStore and ExternalSecret (the manifests the example's docs
/// tell a reader to apply) into `namespace`.
async fn apply_quickstart(client: &eso_core::kube::Client, namespace: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("quickstart.yaml");
    let mut set = ManifestSet::new(namespace);
    let errors = set.add_text("quickstart.yaml", &std::fs::read_to_string(path).unwrap());
    assert!(errors.is_empty(), "{errors:?}");
    let params = PatchParams::apply(TEST_MANAGER).force();
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), namespace);
    for Sourced { mut object, .. } in set.stores.into_values() {
        object.metadata.namespace = Some(namespace.to_owned());
        let name = object.metadata.name.clone().unwrap();
        stores
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .unwrap();
    }
    let external_secrets: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
    for Sourced { mut object, .. } in set.external_secrets {
        object.metadata.namespace = Some(namespace.to_owned());
        let name = object.metadata.name.clone().unwrap();
        external_secrets
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_cluster_creates_the_secret_in_the_kubeconfig_cluster() {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    let ns = cluster.namespace().to_owned();
    install_crds(&client).await.unwrap();
    apply_quickstart(&client, &ns).await;

    let kubeconfig = cluster.kubeconfig_path().to_owned();
    let arg = ns.clone();
    let run = tokio::task::spawn_blocking(move || {
        run_example("sync_cluster", &[&arg], Some(&kubeconfig))
    })
    .await
    .unwrap();
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("{ns}/demo-app: Created")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "Secret {ns}/demo-app-credentials: keys [\"api-token\", \"password\", \"port\", \"previous-api-token\", \"username\"]"
        )),
        "{}",
        run.stdout
    );

    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let secret = secrets.get("demo-app-credentials").await.unwrap();
    assert_eq!(secret.data.unwrap()["password"].0, b"s3cr3t");
    cluster.cleanup().await.unwrap();
}
