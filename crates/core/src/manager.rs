//! The [`Manager`]: the operator's long-lived controllers, run while this process holds the
//! leader election Lease.
//!
//! Every replica keeps its caches and per-object status series warm (store, namespace and
//! status watches); only the Lease holder runs reconcilers (ExternalSecrets, SecretStores and
//! ClusterSecretStores, ClusterExternalSecrets), once per leadership term. A term ends when the
//! Lease is lost or on shutdown; in-flight reconciles then get half of (lease duration − renew
//! deadline) to finish and are cancelled, so they stop before any other replica may lead. On
//! shutdown the Lease is released only after the reconcilers stopped, so a standby takes over
//! at its next retry instead of waiting for expiry.
//!
//! The manager reads no environment and installs no metrics recorder: the caller (the
//! `eso-operator` binary, or an embedding tool) builds the kube client, the provider registry,
//! the identity and the Lease namespace, installs an exporter for the `metrics` facade, and
//! serves [`ManagerStatus`] on its admin endpoints.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eso_leader::{LeaseConfig, LeaseManager};
use eso_provider::ProviderRegistry;
use kube::Client;
use tokio::sync::watch;

use crate::ces_controller::{run_ces_controller, spawn_ces_series};
use crate::controller::{ControllerConfig, ExternalSecretController};
use crate::exposition::without_deleted_objects;
use crate::object_metrics::StatusSeries;
use crate::push::{ClusterPushSecretController, PushSecretController};
use crate::store_controller::{StoreContext, StoreControllerConfig, run_store_controllers};

/// The gauge every replica exports: 1 while it holds the Lease `name`, else 0 (upstream's
/// controller-runtime name).
pub const LEADER_GAUGE: &str = "leader_election_master_status";

/// Which replicas export the per-object status series (`externalsecret_status_condition` and
/// the store and ClusterExternalSecret ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PerObjectMetrics {
    /// Only the current leader (the default), so one object is never exported twice.
    #[default]
    Leader,
    /// Every replica: the series come from the stored status, so replicas agree.
    All,
}

/// What a [`Manager`] runs and how; build with the value methods from [`ManagerConfig::new`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ManagerConfig {
    /// The ExternalSecret controller's settings (controller class, namespace, concurrency,
    /// ClusterSecretStores, read sharing, status writes, tenancy; the store controllers
    /// follow its tenancy too). Its `instance` is set to
    /// [`identity`](Self::identity); the store controllers take the class and the namespace
    /// from it.
    pub controller: ControllerConfig,
    /// How often stores without `spec.refreshInterval` are re-validated (default 5 minutes).
    pub store_requeue_interval: Duration,
    /// Whether SecretStores (and ClusterSecretStores) are validated and get a status.
    pub secret_stores: bool,
    /// Whether ClusterExternalSecrets are fanned out to namespaces (never when the controller
    /// is scoped to one namespace).
    pub cluster_external_secrets: bool,
    /// Whether PushSecrets are pushed to their stores.
    pub push_secrets: bool,
    /// Whether ClusterPushSecrets are fanned out to namespaces (never when the controller is
    /// scoped to one namespace).
    pub cluster_push_secrets: bool,
    /// This process's identity: the Lease holder name and the instance reported on events.
    /// Unique per process (the operator uses the pod name plus a random suffix).
    pub identity: String,
    /// The Lease name and timings. The name also labels [`LEADER_GAUGE`], and the timings
    /// decide the reconcilers' grace, with or without leader election.
    pub lease: LeaseConfig,
    /// The namespace of the Lease; `None` turns leader election off (this process always
    /// reconciles: run one replica only).
    pub leader_election_namespace: Option<String>,
    /// Which replicas export the per-object status series.
    pub per_object_metrics: PerObjectMetrics,
    /// Watch only these namespaces (each with its own namespaced watches, so Roles in them
    /// are all the RBAC needed); empty: the controller's `namespace` (one, or all).
    pub namespaces: Vec<String>,
}

impl ManagerConfig {
    /// The operator's defaults for a process named `identity`, leader election off.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            controller: ControllerConfig::default(),
            store_requeue_interval: Duration::from_secs(300),
            secret_stores: true,
            cluster_external_secrets: true,
            push_secrets: true,
            cluster_push_secrets: true,
            identity: identity.into(),
            lease: LeaseConfig::default(),
            leader_election_namespace: None,
            per_object_metrics: PerObjectMetrics::Leader,
            namespaces: Vec::new(),
        }
    }
    /// Scopes every controller to these namespaces (an empty list: the controller's own
    /// `namespace`). Cluster-scoped controllers and ClusterSecretStores are then off.
    pub fn namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// The namespace scopes to run controllers for: each listed namespace, or the
    /// controller's own scope (one namespace, or `None` for all).
    fn scopes(&self) -> Vec<Option<String>> {
        if self.namespaces.is_empty() {
            vec![self.controller.namespace.clone()]
        } else {
            self.namespaces.iter().cloned().map(Some).collect()
        }
    }

    /// Whether the controllers are scoped to namespaces (not cluster-wide).
    fn namespaced(&self) -> bool {
        self.controller.namespace.is_some() || !self.namespaces.is_empty()
    }
    /// Sets the ExternalSecret controller's settings.
    pub fn controller(mut self, config: ControllerConfig) -> Self {
        self.controller = config;
        self
    }
    /// Sets the generator kinds `sourceRef.generatorRef` may use (the caller's registry, e.g.
    /// `eso_providers::generators()`; eso-core itself knows only those of
    /// `eso_generator::builtin()`).
    pub fn generators(mut self, generators: crate::GeneratorRegistry) -> Self {
        self.controller.generators = generators;
        self
    }
    /// Sets the default re-validation interval of stores.
    pub fn store_requeue_interval(mut self, interval: Duration) -> Self {
        self.store_requeue_interval = interval;
        self
    }
    /// Enables or disables the SecretStore and ClusterSecretStore controllers.
    pub fn secret_stores(mut self, on: bool) -> Self {
        self.secret_stores = on;
        self
    }
    /// Enables or disables the ClusterExternalSecret controller.
    pub fn cluster_external_secrets(mut self, on: bool) -> Self {
        self.cluster_external_secrets = on;
        self
    }
    /// Enables or disables the PushSecret controller.
    pub fn push_secrets(mut self, on: bool) -> Self {
        self.push_secrets = on;
        self
    }
    /// Enables or disables the ClusterPushSecret controller.
    pub fn cluster_push_secrets(mut self, on: bool) -> Self {
        self.cluster_push_secrets = on;
        self
    }
    /// Sets the Lease name and timings.
    pub fn lease(mut self, lease: LeaseConfig) -> Self {
        self.lease = lease;
        self
    }
    /// Turns leader election on with the Lease in `namespace`, or off with `None`.
    pub fn leader_election(mut self, namespace: Option<String>) -> Self {
        self.leader_election_namespace = namespace;
        self
    }
    /// Sets which replicas export the per-object status series.
    pub fn per_object_metrics(mut self, which: PerObjectMetrics) -> Self {
        self.per_object_metrics = which;
        self
    }

    /// Whether the store controllers handle ClusterSecretStores too.
    fn cluster_stores(&self) -> bool {
        self.controller.cluster_stores && !self.namespaced()
    }

    /// Whether the ClusterPushSecret controller runs.
    fn fans_out_pushes(&self) -> bool {
        self.cluster_push_secrets && !self.namespaced()
    }

    /// Whether the ClusterExternalSecret controller runs.
    fn fans_out(&self) -> bool {
        self.cluster_external_secrets && !self.namespaced()
    }

    /// How long in-flight reconciles may finish after a term ends: half of what a
    /// stepping-down leader has before anyone else may lead (lease duration − renew deadline).
    fn grace(&self) -> Duration {
        let timings = self.lease.timings();
        timings
            .lease_duration
            .saturating_sub(timings.renew_deadline)
            / 2
    }
}

/// Why a [`Manager`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The leader election settings were refused (an empty identity, namespace or Lease
    /// name, or timings out of order).
    #[error("cannot set up leader election on Lease \"{namespace}/{name}\"")]
    LeaderElection {
        /// The Lease namespace.
        namespace: String,
        /// The Lease name.
        name: String,
        /// What was wrong.
        #[source]
        source: eso_leader::Error,
    },
}

/// What the admin endpoints of a process running a [`Manager`] serve: readiness, leadership
/// and the metrics text. Cheap to clone; usable before and while the manager runs.
#[derive(Clone)]
pub struct ManagerStatus {
    shared: Arc<StatusShared>,
}

struct StatusShared {
    /// The ExternalSecret series (one per namespace scope): what exists.
    external_secrets: Vec<Arc<StatusSeries>>,
    /// Every series exported: the ExternalSecret ones, then the others.
    series: Vec<Arc<StatusSeries>>,
    /// Whether this process leads (always true without leader election).
    leading: watch::Receiver<bool>,
    per_object: PerObjectMetrics,
    ready: AtomicBool,
}

impl std::fmt::Debug for ManagerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerStatus")
            .field("ready", &self.is_ready())
            .field("leading", &self.is_leading())
            .field("per_object", &self.shared.per_object)
            .finish()
    }
}

impl ManagerStatus {
    fn new(
        external_secrets: Vec<Arc<StatusSeries>>,
        others: Vec<Arc<StatusSeries>>,
        leading: watch::Receiver<bool>,
        per_object: PerObjectMetrics,
    ) -> Self {
        let series = external_secrets.iter().cloned().chain(others).collect();
        Self {
            shared: Arc::new(StatusShared {
                external_secrets,
                series,
                leading,
                per_object,
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// Whether the manager runs and its watches started (`/readyz`).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed)
    }

    /// Whether this process leads now (always true without leader election).
    #[must_use]
    pub fn is_leading(&self) -> bool {
        *self.shared.leading.borrow()
    }

    /// The text for `/metrics`: `exporter_text` (what the process's `metrics` recorder
    /// renders) without the activity series of deleted ExternalSecrets, followed by the
    /// per-object status series when this process exports them (see [`PerObjectMetrics`]).
    #[must_use]
    pub fn metrics_text(&self, exporter_text: &str) -> String {
        let shared = &self.shared;
        let mut text = if shared.external_secrets.is_empty() {
            exporter_text.to_owned()
        } else {
            without_deleted_objects(exporter_text, &shared.external_secrets)
        };
        if shared.per_object == PerObjectMetrics::All || self.is_leading() {
            for series in &shared.series {
                text.push_str(&series.render());
            }
        }
        text
    }
}

/// The operator's controllers in one value: build it with [`Manager::new`], hand
/// [`Manager::status`] to the admin endpoints, then [`Manager::run`] it until shutdown.
pub struct Manager {
    client: Client,
    config: ManagerConfig,
    /// One per namespace scope (see [`ManagerConfig::namespaces`]), as the next two.
    controllers: Vec<ExternalSecretController>,
    stores: Vec<Arc<StoreContext>>,
    ces_series: Arc<StatusSeries>,
    pushes: Vec<PushSecretController>,
    cluster_push: ClusterPushSecretController,
    lease: Option<LeaseManager>,
    /// Publishes "leading" for good when leader election is off; held while the manager
    /// runs, since a closed channel means nobody leads.
    always_leading: Option<watch::Sender<bool>>,
    leading: watch::Receiver<bool>,
    status: ManagerStatus,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("config", &self.config)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// The controllers of `config`, reading stores through `providers`. Starts nothing (no
    /// Tokio runtime needed); fails only on leader election settings it refuses.
    pub fn new(
        client: Client,
        providers: ProviderRegistry,
        config: ManagerConfig,
    ) -> Result<Self, ManagerError> {
        let es_config = config
            .controller
            .clone()
            .instance(Some(config.identity.clone()));
        let scopes = config.scopes();
        let cluster_stores = config.cluster_stores();
        let pushes: Vec<PushSecretController> = scopes
            .iter()
            .map(|ns| {
                let scoped = es_config
                    .clone()
                    .namespace(ns.clone())
                    .cluster_stores(cluster_stores);
                PushSecretController::new(client.clone(), scoped, providers.clone())
            })
            .collect();
        let cluster_push = ClusterPushSecretController::new(client.clone());
        let controllers: Vec<ExternalSecretController> = scopes
            .iter()
            .map(|ns| {
                let scoped = es_config
                    .clone()
                    .namespace(ns.clone())
                    .cluster_stores(cluster_stores);
                ExternalSecretController::new(client.clone(), scoped, providers.clone())
            })
            .collect();
        let stores: Vec<Arc<StoreContext>> = scopes
            .iter()
            .map(|ns| {
                Arc::new(StoreContext::new(
                    client.clone(),
                    StoreControllerConfig::default()
                        .controller_class(config.controller.controller_class.clone())
                        .namespace(ns.clone())
                        .requeue_interval(config.store_requeue_interval)
                        .tenancy(config.controller.tenancy),
                    providers.clone(),
                ))
            })
            .collect();
        let lease = match &config.leader_election_namespace {
            Some(namespace) => Some(
                LeaseManager::new(
                    client.clone(),
                    namespace,
                    config.identity.clone(),
                    config.lease.clone(),
                )
                .map_err(|source| ManagerError::LeaderElection {
                    namespace: namespace.clone(),
                    name: config.lease.lease_name().to_owned(),
                    source,
                })?,
            ),
            None => {
                tracing::warn!(
                    "leader election is off: this replica always reconciles; run a single replica"
                );
                None
            }
        };
        let (always_leading, leading) = match &lease {
            Some(lease) => (None, lease.subscribe()),
            None => {
                let (tx, rx) = watch::channel(true);
                (Some(tx), rx)
            }
        };
        let ces_series = Arc::new(StatusSeries::cluster_external_secrets());
        let mut others = Vec::new();
        for store in &stores {
            others.push(store.store_series.clone());
        }
        // ClusterSecretStores are watched once, by the first scope (the only one when
        // cluster-wide).
        if let Some(first) = stores.first() {
            others.push(first.cluster_store_series.clone());
        }
        others.push(ces_series.clone());
        others.extend(pushes.iter().map(PushSecretController::status_series));
        others.push(cluster_push.status_series());
        let status = ManagerStatus::new(
            controllers
                .iter()
                .map(ExternalSecretController::status_series)
                .collect(),
            others,
            leading.clone(),
            config.per_object_metrics,
        );
        Ok(Self {
            client,
            config,
            controllers,
            stores,
            ces_series,
            pushes,
            cluster_push,
            lease,
            always_leading,
            leading,
            status,
        })
    }

    /// Readiness, leadership and the metrics text, for the admin endpoints.
    #[must_use]
    pub fn status(&self) -> ManagerStatus {
        self.status.clone()
    }

    /// Runs until `shutdown` resolves: starts the watches every replica keeps (then
    /// [`ManagerStatus::is_ready`] turns true), campaigns for the Lease, runs the reconcilers
    /// during each leadership term, and on shutdown stops them (within the grace) before it
    /// releases the Lease. Must be called inside a multi-threaded Tokio runtime.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Self {
            client,
            config,
            controllers,
            stores,
            ces_series,
            pushes,
            cluster_push,
            lease,
            always_leading,
            leading,
            status,
        } = self;
        // Dropped when this returns: "nobody leads here any more".
        let _always_leading = always_leading;
        spawn_leader_gauge(config.lease.lease_name().to_owned(), leading.clone());

        let cluster_stores = config.cluster_stores();
        let stores_on = config.secret_stores;
        let fans_out = config.fans_out();
        let pushes_on = config.push_secrets;
        let fans_out_pushes = config.fans_out_pushes();
        for controller in &controllers {
            controller.start_watches();
        }
        if pushes_on {
            for push in &pushes {
                push.start_watches();
            }
        }
        if fans_out_pushes {
            cluster_push.start_watches();
        }
        if stores_on {
            for (i, store) in stores.iter().enumerate() {
                store.start_series_watches(cluster_stores && i == 0);
            }
        }
        let ces_watch = fans_out.then(|| AbortOnDrop(spawn_ces_series(client.clone(), ces_series)));
        status.shared.ready.store(true, Ordering::Relaxed);
        tracing::debug!(identity = %config.identity, leader_election = lease.is_some(), "manager started");

        let (stop_tx, stop_rx) = watch::channel(false);
        let _stop = AbortOnDrop(tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            stop_tx.send_replace(true);
        }));
        let grace = config.grace();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let lease_task = lease.map(|m| {
            tokio::spawn(m.run(async move {
                let _ = release_rx.await;
            }))
        });
        let (controllers, who) = (&controllers, config.identity.as_str());
        let stores = &stores;
        let client = &client;
        let (pushes, cluster_push) = (&pushes, &cluster_push);
        eso_leader::run_terms(leading, stop_rx, move |end| {
            // One end of term, seen by every controller of this process.
            let (term_tx, term_rx) = watch::channel(false);
            tokio::spawn(async move {
                end.await;
                term_tx.send_replace(true);
            });
            let ended = move || {
                let mut rx = term_rx.clone();
                async move {
                    let _ = rx.wait_for(|e| *e).await;
                }
            };
            async move {
                tracing::info!(identity = who, "starting reconcilers");
                let store_controllers = async {
                    if stores_on {
                        futures::future::join_all(stores.iter().enumerate().map(|(i, s)| {
                            run_store_controllers(s.clone(), cluster_stores && i == 0, ended())
                        }))
                        .await;
                    }
                };
                let fanout = async {
                    if fans_out {
                        run_ces_controller(client.clone(), ended()).await;
                    }
                };
                let push_work = async {
                    if pushes_on {
                        futures::future::join_all(
                            pushes.iter().map(|p| p.reconcile_until(ended(), Some(grace))),
                        )
                        .await;
                    }
                };
                let push_fanout = async {
                    if fans_out_pushes {
                        cluster_push.reconcile_until(ended()).await;
                    }
                };
                let work = async {
                    let external_secrets = futures::future::join_all(
                        controllers
                            .iter()
                            .map(|c| c.reconcile_until(ended(), Some(grace))),
                    );
                    tokio::join!(
                        external_secrets,
                        store_controllers,
                        fanout,
                        push_work,
                        push_fanout
                    )
                };
                // kube-runtime's graceful shutdown never finishes when it starts before the
                // controller's cache is ready (the runner holds its queue until then), so a
                // term ending right after it began (SIGTERM, a lost Lease) would never end and
                // the next term would never start. Every controller gets the same grace, then
                // is dropped, which cancels its in-flight reconciles.
                let deadline = async {
                    ended().await;
                    tokio::time::sleep(grace).await;
                };
                tokio::select! {
                    _ = work => {}
                    () = deadline => {
                        tracing::warn!(?grace, "controllers still running after the grace period were cancelled");
                    }
                }
                tracing::info!(identity = who, "reconcilers stopped");
            }
        })
        .await;
        // Reconcilers are stopped: now the Lease can go.
        let _ = release_tx.send(());
        if let Some(task) = lease_task {
            let _ = task.await;
        }
        status.shared.ready.store(false, Ordering::Relaxed);
        drop(ces_watch);
    }
}

/// Keeps [`LEADER_GAUGE`] equal to `leading`; 0 once its publisher is gone.
fn spawn_leader_gauge(lease_name: String, mut leading: watch::Receiver<bool>) {
    let gauge = metrics::gauge!(LEADER_GAUGE, "name" => lease_name);
    tokio::spawn(async move {
        loop {
            gauge.set(if *leading.borrow_and_update() {
                1.0
            } else {
                0.0
            });
            if leading.changed().await.is_err() {
                gauge.set(0.0);
                return;
            }
        }
    });
}

/// Aborts a task when dropped, so nothing the manager started outlives it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn series_with_one_ready_object() -> Arc<StatusSeries> {
        let series = Arc::new(StatusSeries::external_secrets());
        let mut es = crate::testing::EsBuilder::new("db").build();
        es.metadata.namespace = Some("ns".into());
        es.status = serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "True"}]
        }))
        .ok();
        series.observe(&es);
        series
    }

    #[test]
    fn per_object_series_are_rendered_by_the_leader_only_unless_all() {
        let series = series_with_one_ready_object();
        let (leading_tx, leading) = watch::channel(false);
        let status = |per_object| {
            ManagerStatus::new(
                vec![series.clone()],
                Vec::new(),
                leading.clone(),
                per_object,
            )
        };
        let needle = "externalsecret_status_condition{";
        assert!(
            !status(PerObjectMetrics::Leader)
                .metrics_text("")
                .contains(needle)
        );
        assert!(
            status(PerObjectMetrics::All)
                .metrics_text("")
                .contains(needle)
        );
        leading_tx.send_replace(true);
        assert!(
            status(PerObjectMetrics::Leader)
                .metrics_text("")
                .contains(needle)
        );
    }

    #[test]
    fn metrics_text_drops_activity_of_deleted_objects_and_keeps_the_rest() {
        let series = series_with_one_ready_object();
        let (_tx, leading) = watch::channel(true);
        let status =
            ManagerStatus::new(vec![series], Vec::new(), leading, PerObjectMetrics::Leader);
        let exporter = "externalsecret_sync_calls_total{name=\"db\",namespace=\"ns\"} 1\n\
            externalsecret_sync_calls_total{name=\"gone\",namespace=\"ns\"} 1\n\
            leader_election_master_status{name=\"external-secrets-controller\"} 1\n";
        let text = status.metrics_text(exporter);
        assert!(text.starts_with(
            "externalsecret_sync_calls_total{name=\"db\",namespace=\"ns\"} 1\n\
             leader_election_master_status{name=\"external-secrets-controller\"} 1\n"
        ));
        assert!(!text.contains("\"gone\""));
        assert!(text.contains("externalsecret_status_condition{"));
    }

    #[test]
    fn reconcilers_get_half_the_time_before_another_replica_may_lead() {
        let config = ManagerConfig::new("pod-0");
        assert_eq!(config.grace(), Duration::from_millis(2500));
        let config = config.lease(
            LeaseConfig::default()
                .lease_duration(Duration::from_secs(60))
                .renew_deadline(Duration::from_secs(40)),
        );
        assert_eq!(config.grace(), Duration::from_secs(10));
    }

    #[test]
    fn cluster_wide_controllers_are_off_in_a_namespaced_manager() {
        let config = ManagerConfig::new("pod-0");
        assert!(config.cluster_stores() && config.fans_out());
        let scoped = config
            .clone()
            .controller(ControllerConfig::default().namespace(Some("team-a".into())));
        assert!(!scoped.cluster_stores() && !scoped.fans_out());
        let off = config
            .cluster_external_secrets(false)
            .controller(ControllerConfig::default().cluster_stores(false));
        assert!(!off.cluster_stores() && !off.fans_out());
    }

    #[tokio::test]
    async fn refused_leader_election_settings_fail_before_anything_runs() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let bad_timings = LeaseConfig::default()
            .lease_duration(Duration::from_secs(5))
            .renew_deadline(Duration::from_secs(10));
        let config = ManagerConfig::new("pod-0")
            .leader_election(Some("eso".into()))
            .lease(bad_timings);
        let err = Manager::new(client.clone(), ProviderRegistry::new(), config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot set up leader election on Lease \"eso/external-secrets-controller\""
        );
        let empty_identity = ManagerConfig::new("").leader_election(Some("eso".into()));
        assert!(Manager::new(client, ProviderRegistry::new(), empty_identity).is_err());
    }
}
