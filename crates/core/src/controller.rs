//! The ExternalSecret controller: kube-runtime's applier (through
//! [`QueuedController`](crate::runtime_metrics::QueuedController), which also records
//! controller-runtime's standard series) driving [`reconcile`], which runs fetch → plan → apply
//! and writes status, events and metrics.
//!
//! Differences from upstream, on purpose:
//! - No finalizer on ExternalSecrets: Owner-policy Secrets are garbage-collected through their
//!   owner reference, which is all upstream's finalizer achieved, and an ExternalSecret can be
//!   deleted while the operator is down.
//! - Only Secrets carrying the managed label are watched, and the target Secret is read with
//!   one GET when a refresh is due, so memory follows the number of managed Secrets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eso_api::{ClusterSecretStore, ExternalSecret, SecretStore, StoreKind, reasons};
use eso_provider::ProviderRegistry;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api_health::{ApiHealth, WatchBackoff, is_unreachable};
use crate::apply::{apply_secret, delete_secret};
use crate::digests::SecretDigests;
use crate::events::EventSink;
use crate::fetch::{ClientCache, FetchContext, FetchError, ReadSharing, fetch};
use crate::kube_io::{ApiSecretReader, ApiTokens, CachedStores};
use crate::object_metrics::StatusSeries;
use crate::plan::{ErrorClass, EventType, PlanError, PlanInput, SecretAction, field_manager, plan};
use crate::retry::{Failure, Failures};
use crate::runtime_metrics::{QueuedController, names};
use crate::schedule::{RefreshLedger, is_secret_valid, jitter_for, requeue_after, should_refresh};
use crate::status::{Outcome, RefreshTimeWrites, next_status, status_needs_write};
use crate::store::StoreLookup;
use crate::term;

/// Field manager of status writes.
pub const STATUS_FIELD_MANAGER: &str = "external-secrets-status";

/// Reconciles run at once by default. Upstream runs one (`--concurrent 1`), which makes a
/// cold start wait for every API round trip in turn: thousands of ExternalSecrets then take
/// minutes though the API server could take their writes in seconds. Sixteen keep a real
/// API server busy (see docs/benchmarks.md) while provider reads stay bounded per store
/// ([`ControllerConfig::store_concurrency`]).
pub const DEFAULT_CONCURRENCY: u16 = 16;

/// Controller settings; build with the value methods.
#[derive(Debug, Clone)]
#[must_use]
pub struct ControllerConfig {
    /// Stores whose `spec.controller` is neither empty nor this are ignored.
    pub controller_class: String,
    /// Watch only this namespace.
    pub namespace: Option<String>,
    /// How many reconciles run at once ([`DEFAULT_CONCURRENCY`] unless set).
    pub concurrency: u16,
    /// Provider reads in flight per store at most (0: unbounded).
    pub store_concurrency: usize,
    /// Whether ExternalSecrets may use ClusterSecretStores.
    pub cluster_stores: bool,
    /// Name and instance reported on events.
    pub reporter: String,
    /// Instance (pod name) reported on events.
    pub instance: Option<String>,
    /// Whether a refresh that changed nothing still writes `status.refreshTime`.
    pub refresh_time_writes: RefreshTimeWrites,
    /// How provider reads are shared between ExternalSecrets.
    pub read_sharing: ReadSharing,
    /// What a namespace tenant's objects may make the operator do (`--strict-tenancy`).
    pub tenancy: crate::tenancy::Tenancy,
    /// The generator kinds `sourceRef.generatorRef` may use (default: those of
    /// `eso_generator::builtin()`, which need no provider).
    pub generators: eso_generator::GeneratorRegistry,
    /// How long a superseded GeneratorState waits before it is cleaned up.
    pub generator_state_grace: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            controller_class: "default".to_owned(),
            namespace: None,
            concurrency: DEFAULT_CONCURRENCY,
            store_concurrency: crate::fetch::DEFAULT_STORE_CONCURRENCY,
            cluster_stores: true,
            reporter: "external-secrets".to_owned(),
            instance: None,
            refresh_time_writes: RefreshTimeWrites::OnChange,
            read_sharing: ReadSharing::WithinRefreshInterval,
            tenancy: crate::tenancy::Tenancy::Default,
            generators: eso_generator::builtin(),
            generator_state_grace: crate::generate::DEFAULT_STATE_GRACE,
        }
    }
}

impl ControllerConfig {
    /// Sets the controller class.
    pub fn controller_class(mut self, class: impl Into<String>) -> Self {
        self.controller_class = class.into();
        self
    }
    /// Scopes the controller to one namespace.
    pub fn namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace;
        self
    }
    /// Sets the number of concurrent reconciles.
    pub fn concurrency(mut self, n: u16) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Sets how many provider reads may be in flight per store (0: unbounded).
    pub fn store_concurrency(mut self, n: usize) -> Self {
        self.store_concurrency = n;
        self
    }
    /// Enables or disables ClusterSecretStores.
    pub fn cluster_stores(mut self, on: bool) -> Self {
        self.cluster_stores = on;
        self
    }
    /// Sets the pod name reported on events.
    pub fn instance(mut self, instance: Option<String>) -> Self {
        self.instance = instance;
        self
    }
    /// Sets how provider reads are shared between ExternalSecrets.
    pub fn read_sharing(mut self, sharing: ReadSharing) -> Self {
        self.read_sharing = sharing;
        self
    }
    /// Sets when a refresh that changed nothing writes the status.
    pub fn refresh_time_writes(mut self, writes: RefreshTimeWrites) -> Self {
        self.refresh_time_writes = writes;
        self
    }
    /// Sets the tenancy rules.
    pub fn tenancy(mut self, tenancy: crate::tenancy::Tenancy) -> Self {
        self.tenancy = tenancy;
        self
    }
    /// Sets the generator kinds (e.g. `eso_providers::generators()`).
    pub fn generators(mut self, generators: eso_generator::GeneratorRegistry) -> Self {
        self.generators = generators;
        self
    }
    /// Sets how long a superseded GeneratorState waits before it is cleaned up.
    pub fn generator_state_grace(mut self, grace: Duration) -> Self {
        self.generator_state_grace = grace;
        self
    }
}

/// Shared state of the controller.
pub struct Context {
    client: Client,
    config: ControllerConfig,
    registry: ProviderRegistry,
    clients: ClientCache,
    stores: Arc<dyn StoreLookup>,
    secrets: ApiSecretReader,
    tokens: ApiTokens,
    events: EventSink,
    /// Publish Events before going on (one-shot runs, which exit right after).
    inline_events: bool,
    generator_objects: crate::generate::ApiGenerators,
    webhook_secrets: ApiSecretReader,
    failures: Failures<ExternalSecret>,
    series: Arc<StatusSeries>,
    refreshed: RefreshLedger,
    /// Secrets this controller just wrote (`namespace/name` -> the resourceVersion the write
    /// returned): the watch event of its own write does not trigger another reconcile.
    own_writes: Mutex<std::collections::HashMap<String, String>>,
    /// The managed Secrets as the watch last showed them (no data): a look at an
    /// ExternalSecret whose refresh is not due reads its target from here, not with a GET.
    digests: Arc<SecretDigests>,
    health: ApiHealth,
}

/// Why a reconcile failed; [`class`](Self::class) says how it is retried.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Fetching from the provider failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Storing generated values, or cleaning up after a generator, failed.
    #[error(transparent)]
    Generated(#[from] crate::generate::StoreError),
    /// No plan could be made for a reason that may go away without a change to the
    /// ExternalSecret (template data, a template's ConfigMap).
    #[error(transparent)]
    Plan(PlanError),
    /// The API server refused a read or write.
    #[error("{what}")]
    Kube {
        /// What was being done.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

pub use crate::retry::backoff;

fn es_key(es: &ExternalSecret) -> ObjectRef<ExternalSecret> {
    ObjectRef::from_obj(es)
}

fn metric_labels(es: &ExternalSecret) -> [(&'static str, String); 2] {
    [
        ("name", es.name_any()),
        ("namespace", es.namespace().unwrap_or_default()),
    ]
}

impl ReconcileError {
    /// Whether the API server could not be reached (not a fault of the object).
    fn api_unreachable(&self) -> bool {
        match self {
            Self::Kube { source, .. } => is_unreachable(source),
            Self::Generated(e) => e.kube_error().is_some_and(is_unreachable),
            _ => false,
        }
    }

    /// Whether the API server refused a write because the object changed since it was read.
    fn conflict(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
    }

    /// How the failure may recover.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Fetch(e) => e.class(),
            Self::Plan(e) => e.class(),
            Self::Kube { .. } | Self::Generated(_) => ErrorClass::RetryWithBackoff,
        }
    }
}

impl Context {
    /// Publishes Events before a reconcile goes on, instead of in the background: for
    /// one-shot runs, which exit right after.
    #[must_use]
    pub fn inline_events(mut self) -> Self {
        self.inline_events = true;
        self
    }

    /// A context for reconciling with `client`, these providers and this source of stores.
    #[must_use]
    pub fn new(
        client: Client,
        config: ControllerConfig,
        registry: ProviderRegistry,
        stores: Arc<dyn StoreLookup>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: config.reporter.clone(),
                instance: config.instance.clone(),
            },
        );
        let sharing = config.read_sharing;
        let per_store = config.store_concurrency;
        Self {
            secrets: ApiSecretReader::new(client.clone()).tenancy(config.tenancy),
            tokens: ApiTokens::new(client.clone()).tenancy(config.tenancy),
            generator_objects: crate::generate::ApiGenerators::new(client.clone()),
            webhook_secrets: ApiSecretReader::new(client.clone())
                .tenancy(config.tenancy)
                .require_label("external-secrets.io/type", "webhook"),
            health: ApiHealth::new(client.clone()),
            client,
            config,
            registry,
            clients: ClientCache::with_sharing(sharing).store_concurrency(per_store),
            stores,
            events: EventSink::new(recorder),
            inline_events: false,
            failures: Failures::default(),
            series: Arc::new(StatusSeries::external_secrets()),
            refreshed: RefreshLedger::new(),
            own_writes: Mutex::new(Default::default()),
            digests: Arc::new(SecretDigests::new()),
        }
    }

    /// Whether this watch event of `secret` is the one of this controller's own last write
    /// (it then needs no reconcile: the reconcile that wrote it already knows the result).
    fn is_own_write(&self, secret: &Secret) -> bool {
        let key = format!(
            "{}/{}",
            secret.metadata.namespace.as_deref().unwrap_or_default(),
            secret.metadata.name.as_deref().unwrap_or_default()
        );
        let mut writes = crate::lock(&self.own_writes);
        match (writes.get(&key), secret.metadata.resource_version.as_ref()) {
            (Some(written), Some(seen)) if written == seen => {
                writes.remove(&key);
                true
            }
            _ => false,
        }
    }

    fn fetch_ctx(&self) -> FetchContext<'_> {
        FetchContext {
            registry: &self.registry,
            stores: self.stores.as_ref(),
            secrets: &self.secrets,
            tokens: Some(&self.tokens),
            config_maps: &self.secrets,
            clients: &self.clients,
            transformer: &crate::template::GoTemplates,
            generators: None,
        }
    }

    fn generator_readers(&self) -> crate::generate::GeneratorReaders<'_> {
        crate::generate::GeneratorReaders {
            secrets: &self.secrets,
            config_maps: &self.secrets,
            tokens: Some(&self.tokens),
        }
    }

    fn generated_store(&self, es: &ExternalSecret) -> crate::generate::GeneratedStore<'_> {
        crate::generate::GeneratedStore {
            client: &self.client,
            owner: crate::generate::Owner::external_secret(es),
            registry: &self.config.generators,
            readers: self.generator_readers(),
            grace: self.config.generator_state_grace,
        }
    }

    /// Collects superseded GeneratorStates of an ExternalSecret that has any; says when to
    /// look again.
    async fn collect_states(
        &self,
        es: &ExternalSecret,
        current: Option<&crate::generate::GeneratedValues>,
    ) -> Result<Option<Duration>, ReconcileError> {
        if !crate::generate::has_finalizer(es) {
            return Ok(None);
        }
        let store = self.generated_store(es);
        let read;
        let current = match current {
            Some(c) => c,
            None => {
                read = store.read().await?;
                &read
            }
        };
        let (warnings, next) = store.collect(current, Timestamp::now()).await?;
        for warning in warnings {
            self.publish(es, EventType::Warning, "GeneratorCleanupFailed", warning)
                .await;
        }
        Ok(next)
    }

    /// Whether every store the ExternalSecret names belongs to this controller class (missing
    /// stores are left for fetch to report).
    fn handles(&self, es: &ExternalSecret) -> bool {
        let namespace = es.namespace().unwrap_or_default();
        store_refs(es).all(|r| {
            let kind = r.kind();
            if kind == StoreKind::ClusterSecretStore && !self.config.cluster_stores {
                return false;
            }
            let Some(name) = r.name.as_deref() else {
                return true;
            };
            self.stores.store(kind, &namespace, name).is_none_or(|s| {
                let class = s.spec.controller_class();
                class.is_empty() || class == self.config.controller_class
            })
        })
    }

    async fn publish(&self, es: &ExternalSecret, type_: EventType, reason: &str, note: String) {
        let event = KubeEvent {
            type_: match type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Sync".to_owned(),
            secondary: None,
        };
        if self.inline_events {
            self.events.publish_now(&event, &es.object_ref(&())).await;
        } else {
            self.events.send(event, es.object_ref(&()));
        }
    }

    async fn write_status(
        &self,
        es: &ExternalSecret,
        outcome: &Outcome,
        started: Timestamp,
        secret_written: bool,
    ) -> Result<(), ReconcileError> {
        let status = next_status(es, outcome, started);
        if !status_needs_write(
            es.status.as_ref(),
            &status,
            secret_written,
            self.config.refresh_time_writes,
        ) {
            return Ok(());
        }
        let api: Api<ExternalSecret> =
            Api::namespaced(self.client.clone(), &es.namespace().unwrap_or_default());
        let patch = serde_json::json!({ "status": status });
        let params = PatchParams {
            field_manager: Some(STATUS_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch_status(&es.name_any(), &params, &Patch::Merge(&patch))
            .await
            .map_err(|source| ReconcileError::Kube {
                what: format!(
                    "cannot write the status of ExternalSecret \"{}/{}\"",
                    es.namespace().unwrap_or_default(),
                    es.name_any()
                ),
                source,
            })?;
        Ok(())
    }

    async fn fail(&self, es: &ExternalSecret, message: String, started: Timestamp) {
        metrics::counter!("externalsecret_sync_calls_error", &metric_labels(es)).increment(1);
        self.publish(
            es,
            EventType::Warning,
            reasons::EVENT_UPDATE_FAILED,
            message.clone(),
        )
        .await;
        let outcome = Outcome::Failed {
            reason: reasons::SECRET_SYNCED_ERROR,
            message,
        };
        if let Err(e) = self.write_status(es, &outcome, started, false).await {
            tracing::warn!(error = %e, "cannot record the failure in status");
        }
    }
}

/// Every store reference of an ExternalSecret: the spec's and its entries'.
fn store_refs(es: &ExternalSecret) -> impl Iterator<Item = &eso_api::SecretStoreRef> {
    let entries = es
        .spec
        .data
        .iter()
        .filter_map(|d| d.source_ref.as_ref()?.store_ref.as_ref());
    let from = es
        .spec
        .data_from
        .iter()
        .filter_map(|d| d.source_ref.as_ref()?.store_ref.as_ref());
    es.spec.secret_store_ref.iter().chain(entries).chain(from)
}

/// What one sync did, for [`sync_cluster`](crate::sync_cluster), `sync-once run` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Nothing was due: the Secret is up to date and no refresh was needed.
    Skipped,
    /// The Secret was created.
    Created,
    /// The Secret was updated.
    Updated,
    /// The Secret was deleted (deletionPolicy Delete).
    Deleted,
    /// The provider was read and nothing needed writing.
    Unchanged {
        /// The condition reason, e.g. `SecretSynced` or `SecretMissing`.
        reason: &'static str,
    },
    /// Dry run: what would be written.
    WouldWrite {
        /// One line per change, without values.
        changes: Vec<String>,
    },
    /// Dry run: the Secret would be deleted.
    WouldDelete,
    /// The sync failed; the message names the key, provider and cause.
    Failed {
        /// The message recorded on the ExternalSecret.
        message: String,
    },
    /// Another controller class handles this ExternalSecret.
    NotOurs,
}

impl SyncOutcome {
    /// Whether the sync failed.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}

/// How a sync runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncMode {
    /// Read the provider even when no refresh is due.
    pub force: bool,
    /// Compute the changes without writing anything.
    pub dry_run: bool,
}

/// Reconciles one ExternalSecret (the controller's entry point).
pub async fn reconcile(
    es: Arc<ExternalSecret>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    // While the API server is away, wait for it here instead of failing (and backing off).
    ctx.health.wait_reachable().await;
    let timer = Instant::now();
    let result = sync(&es, &ctx, SyncMode::default())
        .await
        .map(|(action, _)| action);
    let labels = metric_labels(&es);
    metrics::counter!("externalsecret_sync_calls_total", &labels).increment(1);
    // Upstream exports this gauge in nanoseconds; dashboards depend on it.
    metrics::gauge!("externalsecret_reconcile_duration", &labels)
        .set(timer.elapsed().as_nanos() as f64);
    // The instance (the operator's leader election identity) lets logs of several replicas
    // show who reconciled what, and when.
    tracing::debug!(
        externalsecret = %es_key(&es),
        instance = ctx.config.instance.as_deref().unwrap_or_default(),
        ok = result.is_ok(),
        elapsed = ?timer.elapsed(),
        "reconciled"
    );
    if result.is_ok() {
        ctx.failures.succeeded(&es);
    }
    result
}

/// Syncs one ExternalSecret now, through the same path as the controller, and says what
/// happened. Used by `sync-once run`.
pub async fn sync_once(es: &ExternalSecret, ctx: &Context, dry_run: bool) -> SyncOutcome {
    match sync(
        es,
        ctx,
        SyncMode {
            force: true,
            dry_run,
        },
    )
    .await
    {
        Ok((_, outcome)) => outcome,
        Err(e) => SyncOutcome::Failed {
            message: match &e {
                ReconcileError::Fetch(f) => {
                    format!("could not get secret data from provider: {}", f.chain())
                }
                ReconcileError::Plan(p) => plan_message(p),
                ReconcileError::Kube { .. } | ReconcileError::Generated(_) => {
                    format!("{e}: {}", source_text(&e))
                }
            },
        },
    }
}

fn describe_changes(existing: Option<&Secret>, desired: &Secret) -> Vec<String> {
    let name = desired.metadata.name.clone().unwrap_or_default();
    let Some(existing) = existing else {
        let keys: Vec<String> = desired
            .data
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        return vec![format!(
            "create Secret {name:?} with keys [{}]",
            keys.join(", ")
        )];
    };
    let old = existing.data.clone().unwrap_or_default();
    let new = desired.data.clone().unwrap_or_default();
    let mut changes = Vec::new();
    for (k, v) in &new {
        match old.get(k) {
            None => changes.push(format!("add key {k:?}")),
            Some(o) if o != v => changes.push(format!("change key {k:?}")),
            Some(_) => {}
        }
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        changes.push(format!("remove key {k:?}"));
    }
    if changes.is_empty() {
        changes.push(format!("update metadata of Secret {name:?}"));
    }
    changes
}

async fn sync(
    es: &ExternalSecret,
    ctx: &Context,
    mode: SyncMode,
) -> Result<(Action, SyncOutcome), ReconcileError> {
    let started = Timestamp::now();
    let namespace = es.namespace().unwrap_or_default();
    let name = es.name_any();
    if es.meta().deletion_timestamp.is_some() {
        // Generated values that left something behind (a Vault lease) are cleaned up before
        // the ExternalSecret goes.
        if crate::generate::has_finalizer(es) && !mode.dry_run {
            let warnings = ctx.generated_store(es).finalize().await?;
            for warning in warnings {
                ctx.publish(es, EventType::Warning, "GeneratorCleanupFailed", warning)
                    .await;
            }
        }
        return Ok((Action::await_change(), SyncOutcome::Skipped));
    }
    if !ctx.handles(es) {
        return Ok((Action::await_change(), SyncOutcome::NotOurs));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let target = es.target_name();
    let jitter = jitter_for(es.uid().as_deref().unwrap_or(&name));
    let next = |es: &ExternalSecret| requeue_after(es, Timestamp::now(), jitter);

    // The stored refreshTime, moved forward to this process's last refresh (status is not
    // rewritten when a refresh changes nothing).
    let scheduled = ctx.refreshed.effective(es);
    let due = mode.force || should_refresh(&scheduled, started);
    // Not due, and the watch shows the target as it was left: nothing to read.
    if !due
        && (es.spec.creation_policy() == eso_api::CreationPolicy::Orphan
            || ctx.digests.valid(&namespace, &target) == Some(true))
    {
        let collect_at = ctx.collect_states(es, None).await?;
        return Ok((sooner(next(&scheduled), collect_at), SyncOutcome::Skipped));
    }
    // A due Owner target the watch of managed Secrets has never shown (after its first list)
    // is most often one that does not exist yet: plan and write it without reading it first.
    // The API server refuses that write where the read would have changed the plan (another
    // controller owns the Secret, it is immutable, its type differs); then it is read and
    // planned again. Strict tenancy must see a Secret before it may take it over.
    let mut unseen = due
        && !mode.dry_run
        && es.spec.creation_policy() == eso_api::CreationPolicy::Owner
        && !ctx.config.tenancy.is_strict()
        && ctx.digests.listed()
        && ctx.digests.valid(&namespace, &target).is_none();
    let mut existing = if unseen {
        None
    } else {
        read_target(&secrets, &namespace, &target).await?
    };
    if !due && is_secret_valid(es, existing.as_ref()) {
        let collect_at = ctx.collect_states(es, None).await?;
        return Ok((sooner(next(&scheduled), collect_at), SyncOutcome::Skipped));
    }

    if let Some(message) = crate::plan::invalid_message(es) {
        if !mode.dry_run {
            // An invalid object needs a change; retrying would not help.
            ctx.fail(es, message.clone(), started).await;
        }
        return Ok((Action::await_change(), SyncOutcome::Failed { message }));
    }

    // The values generated before, reused unless the refresh policy says a refresh is due.
    let uses_generators = !crate::generate::generator_entries(es).is_empty();
    let previous = if uses_generators || crate::generate::has_finalizer(es) {
        match ctx.generated_store(es).read().await {
            Ok(previous) => previous,
            Err(e) => {
                let err = ReconcileError::Generated(e);
                let message = format!(
                    "could not read the generated values: {err}: {}",
                    source_text(&err)
                );
                if !mode.dry_run && !err.api_unreachable() {
                    ctx.fail(es, message, started).await;
                }
                return Err(err);
            }
        }
    } else {
        crate::generate::GeneratedValues::default()
    };
    let mut fetch_ctx = ctx.fetch_ctx();
    fetch_ctx.generators = Some(crate::generate::GeneratorFetch {
        registry: &ctx.config.generators,
        objects: &ctx.generator_objects,
        previous: &previous,
        now: started,
        webhook_secrets: Some(&ctx.webhook_secrets),
    });
    let mut fetched = match fetch(fetch_ctx, es).await {
        Ok(f) => f,
        Err(e) => {
            let message = format!("could not get secret data from provider: {}", e.chain());
            if !mode.dry_run {
                ctx.fail(es, message.clone(), started).await;
            }
            if e.class() == ErrorClass::AwaitChange {
                return Ok((Action::await_change(), SyncOutcome::Failed { message }));
            }
            return Err(e.into());
        }
    };

    if fetched.generated.is_none() && !previous.entries.is_empty() {
        // No generator entry is left: the stored values (and their states) are superseded.
        fetched.generated = Some(crate::generate::GeneratorOutcome {
            previous: previous.clone(),
            ..Default::default()
        });
    }
    if let Some(outcome) = fetched.generated.as_mut() {
        let store = ctx.generated_store(es);
        if mode.dry_run {
            // A dry run leaves nothing behind: what a generator made is released at once.
            for fresh in &outcome.fresh {
                store.discard(fresh).await;
            }
        } else if let Err(e) = store.store(outcome, started).await {
            let err = ReconcileError::Generated(e);
            if !err.api_unreachable() {
                ctx.fail(
                    es,
                    format!(
                        "could not store the generated values: {err}: {}",
                        source_text(&err)
                    ),
                    started,
                )
                .await;
            }
            return Err(err);
        }
    }

    let manager = field_manager(&name);
    let exec = eso_template::ExecOptions::default().now(started.into());
    let (planned, outcome) = loop {
        let planned = match plan(PlanInput {
            es,
            fetched: &fetched,
            existing: existing.as_ref(),
            exec: &exec,
            tenancy: ctx.config.tenancy,
        }) {
            Ok(p) => p,
            Err(e) => {
                let message = plan_message(&e);
                if !mode.dry_run {
                    ctx.fail(es, message.clone(), started).await;
                }
                // Ownership, immutability and template-text errors need a change to the
                // objects, as upstream treats them; data-caused template errors heal on a later
                // refresh.
                if e.class() == ErrorClass::AwaitChange {
                    return Ok((Action::await_change(), SyncOutcome::Failed { message }));
                }
                return Err(ReconcileError::Plan(e));
            }
        };

        if mode.dry_run {
            let outcome = match &planned.action {
                SecretAction::Write(write) => SyncOutcome::WouldWrite {
                    changes: describe_changes(existing.as_ref(), &write.secret),
                },
                SecretAction::Delete(_) => SyncOutcome::WouldDelete,
                SecretAction::Nothing => SyncOutcome::Unchanged {
                    reason: planned.condition.reason,
                },
            };
            return Ok((Action::await_change(), outcome));
        }
        if unseen && !matches!(planned.action, SecretAction::Write(_)) {
            // Only a write may skip the read: what is there decides the rest.
            unseen = false;
            existing = read_target(&secrets, &namespace, &target).await?;
            continue;
        }

        let outcome = match &planned.action {
            SecretAction::Write(write) => {
                let applied = apply_secret(&secrets, &manager, write).await;
                if unseen
                    && let Err(kube::Error::Api(refusal)) = &applied
                    && (400..500).contains(&refusal.code)
                    && refusal.code != 429
                {
                    tracing::debug!(
                        "{namespace}/{target}: the write without a read was refused ({}); reading the Secret",
                        refusal.message
                    );
                    unseen = false;
                    existing = read_target(&secrets, &namespace, &target).await?;
                    continue;
                }
                let applied = match applied {
                    Ok(applied) => applied,
                    Err(source) => {
                        let err = ReconcileError::Kube {
                            what: format!("cannot write Secret \"{namespace}/{target}\""),
                            source,
                        };
                        if !err.api_unreachable() {
                            ctx.fail(
                                es,
                                format!("could not update secret: {err}: {}", source_text(&err)),
                                started,
                            )
                            .await;
                        }
                        return Err(err);
                    }
                };
                if let Some(version) = applied.secret.metadata.resource_version.clone() {
                    crate::lock(&ctx.own_writes).insert(format!("{namespace}/{target}"), version);
                }
                if applied.created {
                    SyncOutcome::Created
                } else {
                    SyncOutcome::Updated
                }
            }
            SecretAction::Delete(delete) => {
                if let Err(source) = delete_secret(&secrets, delete).await {
                    let err = ReconcileError::Kube {
                        what: format!("cannot delete Secret \"{namespace}/{}\"", delete.name),
                        source,
                    };
                    // A conflict means the Secret changed since it was read: plan again.
                    if !err.api_unreachable() && !err.conflict() {
                        ctx.fail(
                            es,
                            format!("could not delete secret: {err}: {}", source_text(&err)),
                            started,
                        )
                        .await;
                    }
                    return Err(err);
                }
                SyncOutcome::Deleted
            }
            SecretAction::Nothing => SyncOutcome::Unchanged {
                reason: planned.condition.reason,
            },
        };
        break (planned, outcome);
    };
    for event in &planned.events {
        // A write planned without a read announces a create; the API server said otherwise.
        if event.reason == reasons::EVENT_CREATED && matches!(outcome, SyncOutcome::Updated) {
            ctx.publish(
                es,
                event.type_,
                reasons::EVENT_UPDATED,
                "secret updated".to_owned(),
            )
            .await;
            continue;
        }
        ctx.publish(es, event.type_, event.reason, event.message.clone())
            .await;
    }
    let status = Outcome::Synced {
        reason: planned.condition.reason,
        message: planned.condition.message.clone(),
    };
    let secret_written = !matches!(outcome, SyncOutcome::Unchanged { .. });
    ctx.write_status(es, &status, started, secret_written)
        .await?;
    ctx.refreshed.record_sync(es, started);
    let collect_at = match fetched.generated.as_ref() {
        Some(generated) => ctx.collect_states(es, Some(&generated.current)).await?,
        None => ctx.collect_states(es, None).await?,
    };
    let mut after = es.clone();
    after.status = Some(next_status(es, &status, started));
    Ok((sooner(next(&after), collect_at), outcome))
}

/// The target Secret as the API server has it now.
async fn read_target(
    secrets: &Api<Secret>,
    namespace: &str,
    target: &str,
) -> Result<Option<Secret>, ReconcileError> {
    secrets
        .get_opt(target)
        .await
        .map_err(|source| ReconcileError::Kube {
            what: format!("cannot read Secret \"{namespace}/{target}\""),
            source,
        })
}

/// A requeue after the sooner of the refresh and the next GeneratorState collection (at
/// least a second away), or none.
fn sooner(refresh: Option<Duration>, collect: Option<Duration>) -> Action {
    let at = match (refresh, collect) {
        (Some(r), Some(c)) => Some(r.min(c.max(Duration::from_secs(1)))),
        (r, c) => r.or(c.map(|c| c.max(Duration::from_secs(1)))),
    };
    match at {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    }
}

fn plan_message(e: &PlanError) -> String {
    e.to_string()
}

fn source_text(e: &ReconcileError) -> String {
    match e {
        ReconcileError::Kube { source, .. } => source.to_string(),
        ReconcileError::Fetch(f) => f.chain(),
        ReconcileError::Plan(p) => plan_message(p),
        ReconcileError::Generated(g) => match g.kube_error() {
            Some(k) => k.to_string(),
            None => g.to_string(),
        },
    }
}

fn error_policy(es: Arc<ExternalSecret>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let failure = if error.api_unreachable() {
        tracing::debug!(externalsecret = %es_key(&es), error = %error, "API server unreachable; not backing off");
        Failure::Unreachable
    } else if error.conflict() {
        Failure::Conflict
    } else {
        Failure::Failed {
            retry_after: match error {
                ReconcileError::Fetch(fetch) => fetch.retry_after(),
                ReconcileError::Generated(crate::generate::StoreError::Cleanup {
                    retry_after,
                    ..
                }) => *retry_after,
                _ => None,
            },
            at_interval: (error.class() == ErrorClass::RetryAtInterval)
                .then(|| es.spec.refresh_interval().ok())
                .flatten(),
        }
    };
    let retry = ctx.failures.retry_in(&es, failure, &ctx.health);
    if let Failure::Failed { .. } = failure {
        tracing::info!(externalsecret = %es_key(&es), error = %error, retry_in = ?retry, "reconcile failed");
    }
    Action::requeue(retry)
}

pub(crate) fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The store caches every replica keeps: SecretStores (of `namespace`, or all),
/// ClusterSecretStores when `cluster_stores` and not scoped, Namespaces when not scoped.
pub(crate) fn spawn_store_caches(
    client: &Client,
    namespace: Option<&str>,
    cluster_stores: bool,
    tasks: &mut Vec<AbortOnDrop>,
) -> CachedStores {
    CachedStores {
        stores: spawn_reflector(scoped::<SecretStore>(client, namespace), tasks),
        cluster_stores: (cluster_stores && namespace.is_none())
            .then(|| spawn_reflector(Api::<ClusterSecretStore>::all(client.clone()), tasks)),
        namespaces: namespace
            .is_none()
            .then(|| spawn_reflector(Api::<Namespace>::all(client.clone()), tasks)),
    }
}

pub(crate) fn spawn_reflector<K>(api: Api<K>, tasks: &mut Vec<AbortOnDrop>) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .backoff(WatchBackoff::default())
        .reflect(writer)
        .applied_objects();
    tasks.push(AbortOnDrop(tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::warn!(error = %e, "store watch failed; retrying");
            }
        }
    })));
    reader
}

/// A background task that ends with its owner.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every replica keeps running, leader or not: the store and namespace caches, the
/// status-series watch, and the reconcile context built on them.
struct Watches {
    ctx: Arc<Context>,
    stores: CachedStores,
    _tasks: Vec<AbortOnDrop>,
}

/// Everything the ExternalSecret controller needs to run.
///
/// The work splits in two so that a standby replica stays ready to take over:
/// [`start_watches`](Self::start_watches) starts what every replica keeps running (store and
/// namespace caches, the status series); [`reconcile_until`](Self::reconcile_until) runs the
/// reconcilers for one leadership term and can be called again for the next. The
/// ExternalSecret and managed-Secret watches belong to the term's controller and are
/// listed afresh at the start of each term (sharing them needs kube's unstable runtime
/// features).
pub struct ExternalSecretController {
    client: Client,
    config: ControllerConfig,
    registry: ProviderRegistry,
    series: Arc<StatusSeries>,
    watches: std::sync::OnceLock<Watches>,
}

impl ExternalSecretController {
    /// A controller with these providers.
    #[must_use]
    pub fn new(client: Client, config: ControllerConfig, registry: ProviderRegistry) -> Self {
        Self {
            client,
            config,
            registry,
            series: Arc::new(StatusSeries::external_secrets()),
            watches: std::sync::OnceLock::new(),
        }
    }

    /// The per-object status series this controller keeps up to date (from
    /// [`start_watches`](Self::start_watches) on, on every replica).
    #[must_use]
    pub fn status_series(&self) -> Arc<StatusSeries> {
        self.series.clone()
    }

    /// Starts the watches every replica keeps, leader or not: SecretStores,
    /// ClusterSecretStores, Namespaces and the ExternalSecret status series. Idempotent; they
    /// stop when the controller is dropped. Must be called inside a Tokio runtime.
    pub fn start_watches(&self) {
        let _ = self.watches();
    }

    fn watches(&self) -> &Watches {
        self.watches.get_or_init(|| {
            let client = &self.client;
            let ns = self.config.namespace.as_deref();
            let mut tasks = Vec::new();
            let stores = spawn_store_caches(client, ns, self.config.cluster_stores, &mut tasks);
            let mut ctx = Context::new(
                client.clone(),
                self.config.clone(),
                self.registry.clone(),
                Arc::new(stores.clone()),
            );
            ctx.series = self.series.clone();
            tasks.push(spawn_status_series(
                scoped::<ExternalSecret>(client, ns),
                self.series.clone(),
            ));
            Watches {
                ctx: Arc::new(ctx),
                stores,
                _tasks: tasks,
            }
        })
    }

    /// Runs the reconcilers until `shutdown` resolves, then lets in-flight reconciles finish
    /// for at most `grace` (`None`: as long as they take) and cancels the rest. Starts the
    /// watches if needed; they keep running afterwards, so this can be called again for the
    /// next leadership term.
    pub async fn reconcile_until(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
        grace: Option<Duration>,
    ) {
        let watches = self.watches();
        let ctx = watches.ctx.clone();
        let client = self.client.clone();
        let ns = self.config.namespace.as_deref();
        let Some(end) = term::when_stores_ready(&watches.stores, shutdown).await else {
            return;
        };

        let es_api = scoped::<ExternalSecret>(&client, ns);
        let controller =
            QueuedController::new(names::EXTERNAL_SECRET, es_api, watcher::Config::default())
                .concurrency(self.config.concurrency);
        ctx.events.pace_by(controller.backlog());
        let secret_store = controller.store();
        let managed = watcher::Config::default().labels(&format!(
            "{}={}",
            eso_api::labels::LABEL_MANAGED,
            eso_api::labels::LABEL_MANAGED_VALUE
        ));
        let digests = ctx.digests.clone();
        let managed_secrets = watcher(scoped::<Secret>(&client, ns), managed)
            .inspect(move |event| {
                if let Ok(event) = event {
                    digests.observe(event);
                }
            })
            .touched_objects();
        let controller = controller.watches_stream(managed_secrets, {
            let ctx = ctx.clone();
            move |secret: Secret| {
                if ctx.is_own_write(&secret) {
                    return Vec::new();
                }
                secret_owners(&secret_store, &secret)
            }
        });
        let controller = term::on_store_changes(
            controller,
            &client,
            ns,
            watches.stores.cluster_stores.is_some(),
            waiting_for_store,
        );
        term::drive(
            controller.run(reconcile, error_policy, ctx, end.clone()),
            end,
            grace,
            names::EXTERNAL_SECRET,
        )
        .await;
    }

    /// Starts the watches and runs the reconcilers until `shutdown` resolves, letting
    /// in-flight reconciles finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        self.reconcile_until(shutdown, None).await;
    }
}

/// The ExternalSecrets whose target is this Secret.
fn secret_owners(store: &Store<ExternalSecret>, secret: &Secret) -> Vec<ObjectRef<ExternalSecret>> {
    let namespace = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    store
        .state()
        .iter()
        .filter(|es| {
            es.namespace().as_deref() == Some(namespace.as_str()) && es.target_name() == name
        })
        .map(|es| ObjectRef::from_obj(es.as_ref()))
        .collect()
}

/// The ExternalSecrets that name this store and are not Ready: a store that appears or
/// changes may be what they wait for (GitOps tools often create a store after the
/// ExternalSecrets that use it), and they must not wait for their backoff to find out. Ready
/// ones keep their schedule, as upstream's do.
fn waiting_for_store(
    cache: &Store<ExternalSecret>,
    kind: StoreKind,
    namespace: Option<&str>,
    name: &str,
) -> Vec<ObjectRef<ExternalSecret>> {
    cache
        .state()
        .iter()
        .filter(|es| {
            kind == StoreKind::ClusterSecretStore || es.namespace().as_deref() == namespace
        })
        .filter(|es| store_refs(es).any(|r| r.kind() == kind && r.name.as_deref() == Some(name)))
        .filter(|es| !is_ready(es))
        .map(|es| ObjectRef::from_obj(es.as_ref()))
        .collect()
}

fn is_ready(es: &ExternalSecret) -> bool {
    es.status.as_ref().is_some_and(|s| {
        eso_api::common::find_condition(&s.conditions, eso_api::reasons::CONDITION_READY)
            .is_some_and(|c| c.status == eso_api::common::ConditionStatus::True)
    })
}

/// Keeps the status series equal to the stored statuses: every change, every deletion, and
/// a full replacement on each relist. Only the (condition, status) pairs are kept, never the
/// objects, so this watch costs little memory even at a relist.
fn spawn_status_series(api: Api<ExternalSecret>, series: Arc<StatusSeries>) -> AbortOnDrop {
    AbortOnDrop(crate::object_metrics::spawn_condition_watch(
        api,
        series,
        |es| {
            es.status
                .iter()
                .flat_map(|s| &s.conditions)
                .map(|c| (c.type_.clone(), c.status))
                .collect()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::CONFLICT_RETRY;

    fn test_context() -> Arc<Context> {
        // Never contacted: the port is closed and nothing here awaits the prober.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let stores = Arc::new(crate::ManifestSet::new("team"));
        Arc::new(Context::new(
            client,
            ControllerConfig::default(),
            ProviderRegistry::new(),
            stores,
        ))
    }

    fn test_es() -> Arc<ExternalSecret> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "db", "namespace": "team", "uid": "u-1"},
                "spec": {"secretStoreRef": {"name": "s"}}
            }))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn an_unreachable_api_server_does_not_grow_the_backoff() {
        let ctx = test_context();
        let es = test_es();
        let refused = || ReconcileError::Kube {
            what: "cannot read Secret".into(),
            source: kube::Error::Service(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        };
        let first = error_policy(es.clone(), &refused(), ctx.clone());
        for _ in 0..10 {
            assert_eq!(error_policy(es.clone(), &refused(), ctx.clone()), first);
        }
        assert!(!ctx.health.is_reachable());
        // An answer about the object itself still backs off, from the first step.
        let invalid = || ReconcileError::Kube {
            what: "cannot write Secret".into(),
            source: kube::Error::Api(
                kube::core::Status::failure("invalid", "Invalid")
                    .with_code(422)
                    .boxed(),
            ),
        };
        let jitter = jitter_for("u-1");
        assert_eq!(
            error_policy(es.clone(), &invalid(), ctx.clone()),
            Action::requeue(backoff(1, jitter))
        );
        assert_eq!(
            error_policy(es.clone(), &invalid(), ctx.clone()),
            Action::requeue(backoff(2, jitter))
        );
        // A conflict plans again at once, whatever the count.
        let conflict = ReconcileError::Kube {
            what: "cannot delete Secret".into(),
            source: kube::Error::Api(
                kube::core::Status::failure("conflict", "Conflict")
                    .with_code(409)
                    .boxed(),
            ),
        };
        assert_eq!(
            error_policy(es.clone(), &conflict, ctx.clone()),
            Action::requeue(CONFLICT_RETRY)
        );
    }
}
