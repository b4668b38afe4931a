//! The SecretStore / ClusterSecretStore controller: validates each store against its provider
//! and records `Ready` (reasons `Valid`, `InvalidProviderConfig`, `ValidationUnknown`) and
//! `capabilities` in its status, as upstream does. Re-validation every `spec.refreshInterval`
//! (or the controller default, 5 min) reuses the provider client built for the store's current
//! generation, so a check does not log in again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eso_api::common::{Condition, ConditionStatus};
use eso_api::store_reasons;
use eso_api::{ClusterSecretStore, SecretStore, SecretStoreStatus, StoreKind};
use eso_provider::{
    ClientContext, ProviderError, ProviderRegistry, SecretsClient, StoreInfo, ValidationResult,
};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::kube_io::{ApiSecretReader, ApiTokens};
use crate::object_metrics::{StatusSeries, spawn_condition_watch};
use crate::runtime_metrics::{QueuedController, names};
use crate::status::set_condition;

/// Field manager of store status writes.
pub const STORE_STATUS_FIELD_MANAGER: &str = "external-secrets-store-status";

/// Store controller settings.
#[derive(Debug, Clone)]
#[must_use]
pub struct StoreControllerConfig {
    /// Stores whose `spec.controller` is neither empty nor this are ignored.
    pub controller_class: String,
    /// Watch only this namespace (SecretStores only; ClusterSecretStores need no namespace).
    pub namespace: Option<String>,
    /// How often stores without `spec.refreshInterval` are re-validated.
    pub requeue_interval: Duration,
    /// Pod name reported on events.
    pub instance: Option<String>,
    /// What a namespace tenant's stores may make the operator do (`--strict-tenancy`).
    pub tenancy: crate::tenancy::Tenancy,
}

impl Default for StoreControllerConfig {
    fn default() -> Self {
        Self {
            controller_class: "default".to_owned(),
            namespace: None,
            requeue_interval: Duration::from_secs(300),
            instance: None,
            tenancy: crate::tenancy::Tenancy::Default,
        }
    }
}

impl StoreControllerConfig {
    /// Sets the controller class.
    pub fn controller_class(mut self, class: impl Into<String>) -> Self {
        self.controller_class = class.into();
        self
    }
    /// Scopes SecretStores to one namespace.
    pub fn namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace;
        self
    }
    /// Sets the default re-validation interval.
    pub fn requeue_interval(mut self, interval: Duration) -> Self {
        self.requeue_interval = interval;
        self
    }
    /// Sets the tenancy rules.
    pub fn tenancy(mut self, tenancy: crate::tenancy::Tenancy) -> Self {
        self.tenancy = tenancy;
        self
    }
}

/// A store kind the controller handles.
pub trait StoreObject:
    Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The kind.
    const KIND: StoreKind;
    /// Identity and spec as providers see them.
    fn info(&self) -> StoreInfo;
    /// The stored status.
    fn stored_status(&self) -> Option<&SecretStoreStatus>;
    /// The API to write status through.
    fn api_for(client: &Client, namespace: Option<&str>) -> Api<Self>;
}

impl StoreObject for SecretStore {
    const KIND: StoreKind = StoreKind::SecretStore;
    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: Self::KIND,
            name: self.name_any(),
            namespace: self.namespace(),
            uid: self.uid(),
            generation: self.metadata.generation,
            spec: self.spec.clone(),
        }
    }
    fn stored_status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
    fn api_for(client: &Client, namespace: Option<&str>) -> Api<Self> {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
}

impl StoreObject for ClusterSecretStore {
    const KIND: StoreKind = StoreKind::ClusterSecretStore;
    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: Self::KIND,
            name: self.name_any(),
            namespace: None,
            uid: self.uid(),
            generation: self.metadata.generation,
            spec: self.spec.clone(),
        }
    }
    fn stored_status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
    fn api_for(client: &Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client.clone())
    }
}

/// The outcome of validating one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreVerdict {
    /// Ready or not.
    pub ready: bool,
    /// Upstream's reason.
    pub reason: &'static str,
    /// The message.
    pub message: String,
    /// Whether retrying soon can help (the provider was unreachable or throttled us).
    pub transient: bool,
}

impl StoreVerdict {
    fn invalid(message: String, transient: bool) -> Self {
        Self {
            ready: false,
            reason: store_reasons::INVALID_PROVIDER_CONFIG,
            message,
            transient,
        }
    }
}

type ClientKey = (StoreKind, Option<String>, String, Option<i64>);

/// State shared by store reconciles.
pub struct StoreContext {
    client: Client,
    config: StoreControllerConfig,
    registry: ProviderRegistry,
    clients: Mutex<HashMap<ClientKey, Arc<dyn SecretsClient>>>,
    secrets: ApiSecretReader,
    tokens: ApiTokens,
    events: crate::events::EventSink,
    /// SecretStore series.
    pub store_series: Arc<StatusSeries>,
    /// ClusterSecretStore series.
    pub cluster_store_series: Arc<StatusSeries>,
    series_watches: std::sync::OnceLock<Vec<tokio::task::JoinHandle<()>>>,
}

impl StoreContext {
    /// A context using this client and these providers.
    #[must_use]
    pub fn new(client: Client, config: StoreControllerConfig, registry: ProviderRegistry) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "external-secrets".to_owned(),
                instance: config.instance.clone(),
            },
        );
        Self {
            secrets: ApiSecretReader::new(client.clone()).tenancy(config.tenancy),
            tokens: ApiTokens::new(client.clone()).tenancy(config.tenancy),
            client,
            config,
            registry,
            clients: Mutex::default(),
            events: crate::events::EventSink::new(recorder),
            store_series: Arc::new(StatusSeries::secret_stores()),
            cluster_store_series: Arc::new(StatusSeries::cluster_secret_stores()),
            series_watches: std::sync::OnceLock::new(),
        }
    }

    /// Validates a store: spec rules, provider support, the provider's static checks, then a
    /// live check with a client reused across checks of the same generation.
    pub async fn validate(&self, store: &StoreInfo) -> StoreVerdict {
        let problems = eso_api::validate::validate_secret_store(
            &store.spec,
            store.kind == StoreKind::ClusterSecretStore,
        );
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return StoreVerdict::invalid(format!("invalid store: {}", list.join("; ")), false);
        }
        let provider = match self.registry.for_store(store) {
            Ok(p) => p,
            Err(e) => return StoreVerdict::invalid(e.chain(), false),
        };
        if let Err(e) = provider.validate_store(store) {
            return StoreVerdict::invalid(e.chain(), false);
        }
        let key: ClientKey = (
            store.kind,
            store.namespace.clone(),
            store.name.clone(),
            store.generation,
        );
        let cached = self.clients.lock().ok().and_then(|c| c.get(&key).cloned());
        let client = match cached {
            Some(c) => c,
            None => {
                let namespace = store.namespace.clone().unwrap_or_default();
                let built = provider
                    .new_client(ClientContext {
                        store,
                        namespace: &namespace,
                        secrets: &self.secrets,
                        config_maps: &self.secrets,
                        tokens: Some(&self.tokens),
                    })
                    .await;
                match built {
                    Ok(c) => {
                        if let Ok(mut clients) = self.clients.lock() {
                            // Older generations of this store are never asked for again.
                            clients.retain(|k, _| !(k.0 == key.0 && k.1 == key.1 && k.2 == key.2));
                            clients.insert(key, c.clone());
                        }
                        c
                    }
                    // A cluster store whose credentials name no namespace uses the namespace of
                    // each ExternalSecret ("referent" auth), so it cannot be checked on its own.
                    Err(e)
                        if store.kind == StoreKind::ClusterSecretStore
                            && e.kind() == eso_provider::ErrorKind::InvalidStore =>
                    {
                        return StoreVerdict {
                            ready: true,
                            reason: store_reasons::VALIDATION_UNKNOWN,
                            message: format!(
                                "store cannot be validated on its own (referent credentials?): {}",
                                e.chain()
                            ),
                            transient: false,
                        };
                    }
                    Err(e) => {
                        return StoreVerdict::invalid(
                            format!("could not build a client: {}", e.chain()),
                            e.kind().is_transient(),
                        );
                    }
                }
            }
        };
        match client.validate().await {
            Ok(ValidationResult::Ready) => StoreVerdict {
                ready: true,
                reason: store_reasons::VALID,
                message: "store validated".to_owned(),
                transient: false,
            },
            Ok(ValidationResult::Unknown) => StoreVerdict {
                ready: true,
                reason: store_reasons::VALIDATION_UNKNOWN,
                message: "store validation is unknown for this provider".to_owned(),
                transient: false,
            },
            Err(e) => {
                if e.kind() == eso_provider::ErrorKind::Auth
                    && let Ok(mut clients) = self.clients.lock()
                {
                    clients.remove(&(
                        store.kind,
                        store.namespace.clone(),
                        store.name.clone(),
                        store.generation,
                    ));
                }
                StoreVerdict::invalid(
                    format!("validation failed: {}", verdict_text(&e)),
                    e.kind().is_transient(),
                )
            }
        }
    }
}

fn verdict_text(e: &ProviderError) -> String {
    e.chain()
}

/// The status a verdict gives, keeping `lastTransitionTime` while `Ready` does not change.
#[must_use]
pub fn store_status(
    old: Option<&SecretStoreStatus>,
    verdict: &StoreVerdict,
    capabilities: Option<eso_api::SecretStoreCapabilities>,
    now: Timestamp,
) -> SecretStoreStatus {
    let old = old.cloned().unwrap_or_default();
    let conditions = set_condition(
        &old.conditions,
        Condition {
            type_: "Ready".to_owned(),
            status: ConditionStatus::from(verdict.ready),
            reason: Some(verdict.reason.to_owned()),
            message: Some(verdict.message.clone()),
            last_transition_time: Some(Time(now)),
        },
    );
    SecretStoreStatus {
        conditions,
        capabilities: capabilities.or(old.capabilities),
    }
}

/// Why a store reconcile failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the status of {store}")]
pub struct StoreError {
    store: String,
    #[source]
    source: kube::Error,
}

/// The store kind's `*_reconcile_duration` gauge, as upstream names it.
fn reconcile_duration_metric(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::SecretStore => "secretstore_reconcile_duration",
        StoreKind::ClusterSecretStore => "clustersecretstore_reconcile_duration",
    }
}

async fn reconcile_store<K: StoreObject>(
    store: Arc<K>,
    ctx: Arc<StoreContext>,
) -> Result<Action, StoreError> {
    let timer = std::time::Instant::now();
    let result = validate_and_record(store.as_ref(), &ctx).await;
    // Upstream sets it on every reconcile, in nanoseconds (a Go duration as a float).
    metrics::gauge!(
        reconcile_duration_metric(K::KIND),
        "name" => store.name_any(),
        "namespace" => store.namespace().unwrap_or_default()
    )
    .set(timer.elapsed().as_nanos() as f64);
    result
}

async fn validate_and_record<K: StoreObject>(
    store: &K,
    ctx: &StoreContext,
) -> Result<Action, StoreError> {
    let info = store.info();
    let class = info.spec.controller_class();
    if !class.is_empty() && class != ctx.config.controller_class {
        return Ok(Action::await_change());
    }
    let verdict = ctx.validate(&info).await;
    let capabilities = ctx.registry.for_store(&info).ok().map(|p| p.capabilities());
    let status = store_status(
        store.stored_status(),
        &verdict,
        capabilities,
        Timestamp::now(),
    );
    let changed = store.stored_status() != Some(&status);
    let ready_changed = store
        .stored_status()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| (c.status, c.reason.clone()))
        != Some((
            ConditionStatus::from(verdict.ready),
            Some(verdict.reason.to_owned()),
        ));
    if changed {
        let api = K::api_for(&ctx.client, info.namespace.as_deref());
        let params = PatchParams {
            field_manager: Some(STORE_STATUS_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch_status(
            &info.name,
            &params,
            &Patch::Merge(&serde_json::json!({ "status": status })),
        )
        .await
        .map_err(|source| StoreError {
            store: info.describe(),
            source,
        })?;
    }
    if ready_changed {
        let event = KubeEvent {
            type_: if verdict.ready {
                KubeEventType::Normal
            } else {
                KubeEventType::Warning
            },
            reason: verdict.reason.to_owned(),
            note: Some(verdict.message.clone()),
            action: "Validate".to_owned(),
            secondary: None,
        };
        ctx.events.send(event, store.object_ref(&()));
    }
    let interval = info
        .spec
        .refresh_interval()
        .ok()
        .flatten()
        .unwrap_or(ctx.config.requeue_interval);
    let next = if verdict.transient {
        interval.min(Duration::from_secs(30))
    } else {
        interval
    };
    Ok(Action::requeue(next))
}

fn store_error_policy<K: StoreObject>(
    _store: Arc<K>,
    error: &StoreError,
    _ctx: Arc<StoreContext>,
) -> Action {
    tracing::info!(error = %error, "store reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn store_conditions<K: StoreObject>(store: &K) -> Vec<(String, ConditionStatus)> {
    store
        .stored_status()
        .map(|st| {
            st.conditions
                .iter()
                .map(|c| (c.type_.clone(), c.status))
                .collect()
        })
        .unwrap_or_default()
}

impl StoreContext {
    /// Starts the watches that keep the store status series current. Idempotent; they run as
    /// long as the process (every replica keeps them, so a new leader exports at once).
    pub fn start_series_watches(&self, cluster_stores: bool) {
        self.series_watches.get_or_init(|| {
            let ns = self.config.namespace.as_deref();
            let mut tasks = vec![spawn_condition_watch(
                SecretStore::api_for(&self.client, ns),
                self.store_series.clone(),
                store_conditions::<SecretStore>,
            )];
            if cluster_stores && ns.is_none() {
                tasks.push(spawn_condition_watch(
                    ClusterSecretStore::api_for(&self.client, None),
                    self.cluster_store_series.clone(),
                    store_conditions::<ClusterSecretStore>,
                ));
            }
            tasks
        });
    }
}

/// Runs the SecretStore controller and, unless scoped to a namespace, the ClusterSecretStore
/// controller, until `shutdown` resolves.
pub async fn run_store_controllers(
    ctx: Arc<StoreContext>,
    cluster_stores: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let ns = ctx.config.namespace.clone();
    let stores_api = SecretStore::api_for(&ctx.client, ns.as_deref());
    ctx.start_series_watches(cluster_stores);
    let stores = QueuedController::new(names::SECRET_STORE, stores_api, watcher::Config::default())
        .run(
            reconcile_store::<SecretStore>,
            store_error_policy::<SecretStore>,
            ctx.clone(),
            stop(rx.clone()),
        )
        .for_each(|_| async {});
    if cluster_stores && ns.is_none() {
        let api = ClusterSecretStore::api_for(&ctx.client, None);
        let cluster =
            QueuedController::new(names::CLUSTER_SECRET_STORE, api, watcher::Config::default())
                .run(
                    reconcile_store::<ClusterSecretStore>,
                    store_error_policy::<ClusterSecretStore>,
                    ctx,
                    stop(rx),
                )
                .for_each(|_| async {});
        futures::join!(stores, cluster);
    } else {
        stores.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn store_status_keeps_transition_time_and_capabilities() {
        let ok = StoreVerdict {
            ready: true,
            reason: store_reasons::VALID,
            message: "store validated".into(),
            transient: false,
        };
        let first = store_status(
            None,
            &ok,
            Some(eso_api::SecretStoreCapabilities::ReadWrite),
            at(0),
        );
        assert_eq!(
            first.capabilities,
            Some(eso_api::SecretStoreCapabilities::ReadWrite)
        );
        let again = store_status(Some(&first), &ok, None, at(10));
        assert_eq!(
            again, first,
            "nothing changes while the verdict is the same"
        );
        let bad = StoreVerdict::invalid("validation failed: denied".into(), false);
        let failed = store_status(Some(&again), &bad, None, at(20));
        assert_eq!(failed.conditions[0].status, ConditionStatus::False);
        assert_eq!(
            failed.conditions[0].last_transition_time,
            Some(Time(at(20)))
        );
        assert_eq!(
            failed.capabilities,
            Some(eso_api::SecretStoreCapabilities::ReadWrite)
        );
    }
}
