//! Helpers shared by the end-to-end tests: installing the CRDs, running the controller in the
//! background, and waiting for a condition with an upper bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use eso_core::controller::{ControllerConfig, ExternalSecretController};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, CustomResourceExt as _};

pub use eso_test_apiserver::TestCluster;
pub use listener::Listener;

mod listener;

/// Field manager used by the tests' own writes.
pub const TEST_MANAGER: &str = "eso-tests";

/// Installs (server-side applies) every generated CRD and waits until they are served.
pub async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(TEST_MANAGER).force();
    for crd in eso_api::crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying CRD {name}"))?;
    }
    let es: Api<eso_api::ExternalSecret> = Api::all(client.clone());
    eventually("the ExternalSecret CRD to be served", || async {
        es.list(&Default::default()).await.is_ok()
    })
    .await?;
    let _ = eso_api::ExternalSecret::crd();
    Ok(())
}

/// Polls `check` every 100 ms until it holds, failing after 30 s (an upper bound, not a
/// timing assertion).
pub async fn eventually<F, Fut>(what: &str, check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_for(what, Duration::from_secs(30), check).await
}

/// [`eventually`] with another upper bound.
pub async fn eventually_for<F, Fut>(what: &str, bound: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if check().await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A controller running in the background until dropped.
pub struct RunningController {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningController {
    /// Starts the ExternalSecret controller scoped to `namespace`.
    pub fn start(client: Client, namespace: &str) -> Self {
        Self::start_with(client, ControllerConfig::default(), namespace)
    }

    /// Starts the ExternalSecret controller with `config`, scoped to `namespace`.
    pub fn start_with(client: Client, config: ControllerConfig, namespace: &str) -> Self {
        let config = config.namespace(Some(namespace.to_owned())).concurrency(4);
        let controller = ExternalSecretController::new(client, config, eso_providers::builtin());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller.run(async move {
            let _ = rx.await;
        }));
        Self {
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the controller and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for RunningController {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
