//! Sync the ExternalSecrets of one namespace once, against the cluster `KUBECONFIG` names (or
//! the in-cluster credentials), through the operator's own reconcile path: what
//! `sync-once run -n NAMESPACE` does, from your own tool (a platform controller or a deploy
//! step that needs a few Secrets in place before it goes on).
//!
//! ```sh
//! kubectl create namespace demo
//! kubectl apply -f examples/quickstart.yaml   # a fake-provider store and an ExternalSecret
//! cargo run -p eso-examples --example sync_cluster -- demo
//! ```
//!
//! The cluster needs the CRDs (`deploy/crds`).

use anyhow::{Context as _, bail};
use eso_core::api::labels::{LABEL_MANAGED, LABEL_MANAGED_VALUE};
use eso_core::k8s_openapi::api::core::v1::Secret;
use eso_core::kube::api::{Api, ListParams};
use eso_core::kube::{Client, ResourceExt as _};
use eso_core::{OneShotOptions, sync_cluster};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let namespace = std::env::args().nth(1).unwrap_or_else(|| "demo".to_owned());
    // eso-core never reads the environment; the tool decides where the cluster is.
    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client (KUBECONFIG or in-cluster)")?;

    let options = OneShotOptions {
        namespace: Some(namespace.clone()),
        ..OneShotOptions::default()
    };
    let results = sync_cluster(client.clone(), eso_providers::builtin(), options).await?;
    if results.is_empty() {
        bail!("namespace {namespace:?} holds no ExternalSecret");
    }
    let mut failed = 0;
    for result in &results {
        if result.outcome.is_failure() {
            failed += 1;
        }
        println!("{}: {:?}", result.external_secret, result.outcome);
    }

    // The Secrets eso-rs manages carry upstream's label, so a tool can find them.
    let secrets: Api<Secret> = Api::namespaced(client, &namespace);
    let managed = ListParams::default().labels(&format!("{LABEL_MANAGED}={LABEL_MANAGED_VALUE}"));
    for secret in secrets.list(&managed).await? {
        let keys: Vec<&String> = secret.data.iter().flatten().map(|(k, _)| k).collect();
        println!("Secret {namespace}/{}: keys {keys:?}", secret.name_any());
    }
    if failed > 0 {
        bail!("{failed} of {} ExternalSecrets failed", results.len());
    }
    Ok(())
}
