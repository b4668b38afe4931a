//! The PushSecret controller: kube-runtime's `Controller` driving [`reconcile`], which reads
//! the source Secret(s) and stores (I/O), plans the pushes ([`super::plan`], pure), compares
//! each value with the provider's and writes only what differs, deletes what is no longer
//! pushed under `deletionPolicy: Delete`, and writes status, events and metrics.
//!
//! Differences from upstream, on purpose:
//! - A value the provider already holds is not written again (upstream calls the provider's
//!   write on every refresh and leaves the comparison to each provider): `Replace` reads the
//!   remote value first when the entry carries no metadata (metadata comparisons are the
//!   provider's), `IfNotExists` asks whether it exists, as upstream.
//! - A refresh that pushed nothing does not rewrite the status (no `refreshTime`-only writes,
//!   as for ExternalSecrets); the next refresh is scheduled from this process's own record.
//! - A label selector on Secrets that matches none, a store label selector that matches none
//!   and a Secret key that two entries push to the same remote location are errors
//!   (`Ready=False`) instead of silent no-ops or last-writer-wins.
//! - Secrets are watched metadata-only (their data is dropped while decoding and never
//!   cached), and only PushSecrets that select a changed Secret are woken.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eso_api::{
    ExternalSecretDataRemoteRef, PushSecret, PushSecretData, PushSecretDeletionPolicy,
    PushSecretUpdatePolicy, SecretStoreCapabilities, StoreKind,
};
use eso_provider::{ProviderError, ProviderRegistry, PushRemoteRef, SecretsClient};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use super::plan::{
    InvalidSpec, PUSH_SECRET_FINALIZER, PushItem, PushOutcome, RefreshLedger, SourceData,
    SyncedMap, TargetStore, fingerprint, is_ready, merge_synced, next_push_status,
    parse_store_status_key, plan_items, push_resource_version, push_status_needs_write,
    stale_entries, synced_map, validate_spec,
};
use crate::api_health::{ApiHealth, is_unreachable};
use crate::controller::{AbortOnDrop, ControllerConfig, scoped, spawn_store_caches};
use crate::events::EventSink;
use crate::fetch::{ClientCache, FetchContext, evict_store_client, store_client};
use crate::kube_io::{ApiSecretReader, ApiTokens, CachedStores};
use crate::object_metrics::StatusSeries;
use crate::plan::ErrorClass;
use crate::retry::{Failure, Failures};
use crate::runtime_metrics::{QueuedController, names};
use crate::schedule::jitter_for;
use crate::status::RefreshTimeWrites;
use crate::store::{StoreError, StoreLookup, check_namespace_allowed};
use crate::template::{RenderOptions, TemplateCache, TemplateSources, apply_template};
use crate::term;

/// Field manager of PushSecret status and finalizer writes.
pub const PUSH_STATUS_FIELD_MANAGER: &str = "external-secrets-pushsecret";

/// Stores a PushSecret may push to: lookup by name (with namespace labels for
/// ClusterSecretStore conditions) and listing with labels for `labelSelector` references.
pub trait PushStores: StoreLookup {
    /// Names and labels of the SecretStores of a namespace.
    fn secret_store_labels(&self, namespace: &str) -> Vec<(String, BTreeMap<String, String>)>;
    /// Names and labels of the ClusterSecretStores.
    fn cluster_store_labels(&self) -> Vec<(String, BTreeMap<String, String>)>;
}

impl PushStores for CachedStores {
    fn secret_store_labels(&self, namespace: &str) -> Vec<(String, BTreeMap<String, String>)> {
        self.stores
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace))
            .map(|s| (s.name_any(), s.labels().clone()))
            .collect()
    }

    fn cluster_store_labels(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.cluster_stores
            .iter()
            .flat_map(|c| c.state())
            .map(|s| (s.name_any(), s.labels().clone()))
            .collect()
    }
}

impl PushStores for crate::ManifestSet {
    fn secret_store_labels(&self, namespace: &str) -> Vec<(String, BTreeMap<String, String>)> {
        self.stores
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((_, name), s)| (name.clone(), s.object.labels().clone()))
            .collect()
    }

    fn cluster_store_labels(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.cluster_stores
            .iter()
            .map(|(name, s)| (name.clone(), s.object.labels().clone()))
            .collect()
    }
}

/// Why a PushSecret reconcile failed; [`class`](Self::class) says how it is retried.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The spec cannot be pushed as written (or names a key the source lacks).
    #[error(transparent)]
    Invalid(#[from] InvalidSpec),
    /// `selector.generatorRef` could not generate (or store) its values.
    #[error("spec.selector.generatorRef: {message}")]
    Generator {
        /// What failed, with every cause.
        message: String,
        /// Whether only a change of the PushSecret can help.
        await_change: bool,
        /// Whether the API server could not be reached.
        unreachable: bool,
    },
    /// The source Secret(s) could not be found.
    #[error("{field}: {message}")]
    Source {
        /// The selector field.
        field: &'static str,
        /// What is missing.
        message: String,
    },
    /// A store reference cannot be used.
    #[error("{field}: {source}")]
    Store {
        /// The reference, e.g. `spec.secretStoreRefs[0]`.
        field: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A template could not be applied.
    #[error("{0}")]
    Template(String),
    /// A provider call failed.
    #[error("{what} in {store} (provider {provider})")]
    Provider {
        /// What was being done, e.g. `pushing spec.data[0] key "a" of Secret "db" to remote key "x"`.
        what: String,
        /// The store.
        store: String,
        /// The provider key.
        provider: String,
        /// The provider's error.
        #[source]
        source: Box<ProviderError>,
    },
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

impl PushError {
    /// How the failure may recover.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::AwaitChange,
            Self::Generator { await_change, .. } => {
                if *await_change {
                    ErrorClass::AwaitChange
                } else {
                    ErrorClass::RetryWithBackoff
                }
            }
            Self::Provider { source, .. }
                if source.kind() == eso_provider::ErrorKind::Unsupported =>
            {
                ErrorClass::AwaitChange
            }
            // The Secret watch wakes the PushSecret when a source appears or changes.
            Self::Source { .. } => ErrorClass::AwaitChange,
            Self::Template(_) => ErrorClass::RetryAtInterval,
            Self::Store { .. } | Self::Provider { .. } | Self::Kube { .. } => {
                ErrorClass::RetryWithBackoff
            }
        }
    }

    /// The message with every cause, for the condition, events and CLI output.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Provider { source, .. } => format!("{self}: {}", source.chain()),
            Self::Kube { source, .. } => format!("{self}: {source}"),
            _ => self.to_string(),
        }
    }

    fn api_unreachable(&self) -> bool {
        match self {
            Self::Kube { source, .. } => is_unreachable(source),
            Self::Generator { unreachable, .. } => *unreachable,
            _ => false,
        }
    }

    fn conflict(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
    }
}

/// What one PushSecret sync did, for `sync-once push` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushSyncOutcome {
    /// Nothing was due: the same values were pushed within the refresh interval.
    Skipped,
    /// Values were written or deleted; one line per change, without values.
    Pushed {
        /// What changed.
        changes: Vec<String>,
    },
    /// Every store already held every value.
    Unchanged,
    /// Dry run: what would be written or deleted.
    WouldPush {
        /// What would change (empty: nothing).
        changes: Vec<String>,
    },
    /// The source Secret is gone; this many pushed values were deleted (deletionPolicy Delete).
    SourceDeleted {
        /// How many remote values were deleted.
        deleted: usize,
    },
    /// The PushSecret is being deleted and its pushed values were deleted.
    Finalized,
    /// The sync failed; the message names the field or key, the store and the cause.
    Failed {
        /// The message recorded on the PushSecret.
        message: String,
    },
    /// Every store it names belongs to another controller class.
    NotOurs,
}

impl PushSyncOutcome {
    /// Whether the sync failed.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}

/// Calls made to providers (for tests and benchmarks).
#[derive(Debug, Default)]
pub struct ProviderCalls {
    /// Values read for comparison.
    pub reads: std::sync::atomic::AtomicU64,
    /// Existence checks (`IfNotExists`).
    pub exists: std::sync::atomic::AtomicU64,
    /// Writes.
    pub pushes: std::sync::atomic::AtomicU64,
    /// Deletes.
    pub deletes: std::sync::atomic::AtomicU64,
}

/// Shared state of the PushSecret controller.
pub struct PushContext {
    client: Client,
    config: ControllerConfig,
    registry: ProviderRegistry,
    clients: ClientCache,
    stores: Arc<dyn PushStores>,
    secrets: ApiSecretReader,
    tokens: ApiTokens,
    generator_objects: crate::generate::ApiGenerators,
    webhook_secrets: ApiSecretReader,
    events: EventSink,
    /// Events are published before the reconcile goes on (one-shot runs that exit next).
    inline_events: bool,
    failures: Failures<PushSecret>,
    ledger: RefreshLedger,
    health: ApiHealth,
    calls: ProviderCalls,
}

impl PushContext {
    /// A context for reconciling with `client`, these providers and this source of stores.
    #[must_use]
    pub fn new(
        client: Client,
        config: ControllerConfig,
        registry: ProviderRegistry,
        stores: Arc<dyn PushStores>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: config.reporter.clone(),
                instance: config.instance.clone(),
            },
        );
        Self {
            secrets: ApiSecretReader::new(client.clone()),
            tokens: ApiTokens::new(client.clone()),
            generator_objects: crate::generate::ApiGenerators::new(client.clone()),
            webhook_secrets: ApiSecretReader::new(client.clone())
                .require_label("external-secrets.io/type", "webhook"),
            health: ApiHealth::new(client.clone()),
            client,
            config,
            registry,
            clients: ClientCache::new(),
            stores,
            events: EventSink::new(recorder),
            inline_events: false,
            failures: Failures::default(),
            ledger: RefreshLedger::new(),
            calls: ProviderCalls::default(),
        }
    }

    /// Publishes Events before the reconcile goes on, for one-shot runs that exit next
    /// (the background sink would lose what is still queued).
    #[must_use]
    pub fn inline_events(mut self) -> Self {
        self.inline_events = true;
        self
    }

    /// Provider calls made through this context so far.
    #[must_use]
    pub fn provider_calls(&self) -> &ProviderCalls {
        &self.calls
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

    async fn publish(&self, ps: &PushSecret, warning: bool, reason: &str, note: String) {
        let event = KubeEvent {
            type_: if warning {
                KubeEventType::Warning
            } else {
                KubeEventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Push".to_owned(),
            secondary: None,
        };
        if self.inline_events {
            self.events.publish_now(&event, &ps.object_ref(&())).await;
        } else {
            self.events.send(event, ps.object_ref(&()));
        }
    }

    async fn write_status(
        &self,
        ps: &PushSecret,
        outcome: &PushOutcome,
        synced: Option<SyncedMap>,
        started: Timestamp,
        force: bool,
    ) -> Result<bool, PushError> {
        let status = next_push_status(ps, outcome, synced, started);
        let always = force || self.config.refresh_time_writes == RefreshTimeWrites::EveryRefresh;
        if !push_status_needs_write(ps.status.as_ref(), &status, always) {
            return Ok(false);
        }
        let mut patch = serde_json::json!({ "status": status });
        // A merge patch merges maps: entries no longer synced must be removed explicitly.
        let old = ps
            .status
            .as_ref()
            .map(|s| s.synced_push_secrets.clone())
            .unwrap_or_default();
        if !old.is_empty() {
            let mut synced = serde_json::to_value(&status.synced_push_secrets)
                .unwrap_or_else(|_| serde_json::json!({}));
            for (store, entries) in &old {
                match status.synced_push_secrets.get(store) {
                    None => synced[store] = serde_json::Value::Null,
                    Some(now) => {
                        for key in entries.keys().filter(|k| !now.contains_key(*k)) {
                            synced[store][key] = serde_json::Value::Null;
                        }
                    }
                }
            }
            patch["status"]["syncedPushSecrets"] = synced;
        }
        let api: Api<PushSecret> =
            Api::namespaced(self.client.clone(), &ps.namespace().unwrap_or_default());
        let params = PatchParams {
            field_manager: Some(PUSH_STATUS_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch_status(&ps.name_any(), &params, &Patch::Merge(&patch))
            .await
            .map_err(|source| PushError::Kube {
                what: format!(
                    "cannot write the status of PushSecret \"{}/{}\"",
                    ps.namespace().unwrap_or_default(),
                    ps.name_any()
                ),
                source,
            })?;
        Ok(true)
    }

    async fn fail(&self, ps: &PushSecret, message: String, synced: Option<SyncedMap>) {
        metrics::counter!("pushsecret_sync_calls_error", &metric_labels(ps)).increment(1);
        self.publish(ps, true, eso_api::push_reasons::ERRORED, message.clone())
            .await;
        if let Err(e) = self
            .write_status(
                ps,
                &PushOutcome::Errored(message),
                synced,
                Timestamp::now(),
                false,
            )
            .await
        {
            tracing::warn!(error = %e, "cannot record the failure in status");
        }
    }

    async fn set_finalizer(&self, ps: &PushSecret, present: bool) -> Result<(), PushError> {
        let mut finalizers: Vec<String> = ps
            .finalizers()
            .iter()
            .filter(|f| *f != PUSH_SECRET_FINALIZER)
            .cloned()
            .collect();
        if present {
            finalizers.push(PUSH_SECRET_FINALIZER.to_owned());
        }
        let api: Api<PushSecret> =
            Api::namespaced(self.client.clone(), &ps.namespace().unwrap_or_default());
        // The resourceVersion makes this a compare-and-swap: another writer's finalizer is
        // never lost.
        let patch = serde_json::json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": ps.resource_version(),
            }
        });
        let params = PatchParams {
            field_manager: Some(PUSH_STATUS_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch(&ps.name_any(), &params, &Patch::Merge(&patch))
            .await
            .map_err(|source| PushError::Kube {
                what: format!(
                    "cannot {} the finalizer of PushSecret \"{}/{}\"",
                    if present { "add" } else { "remove" },
                    ps.namespace().unwrap_or_default(),
                    ps.name_any()
                ),
                source,
            })?;
        Ok(())
    }
}

fn metric_labels(ps: &PushSecret) -> [(&'static str, String); 2] {
    [
        ("name", ps.name_any()),
        ("namespace", ps.namespace().unwrap_or_default()),
    ]
}

fn ps_key(ps: &PushSecret) -> ObjectRef<PushSecret> {
    ObjectRef::from_obj(ps)
}

/// A label selector as the API's query syntax (`a=b,c in (d,e),!f`).
#[must_use]
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    parts.join(",")
}

/// The source Secrets: `Ok(None)` when the Secret named does not exist.
/// The source of a PushSecret whose `selector.generatorRef` names a generator: the stored
/// value (in `<name>-push-generated`, owned by the PushSecret) until the refresh interval has
/// elapsed, then a new one, stored before it is pushed (never in a dry run). Kinds that leave
/// state to clean up (VaultDynamicSecret) are refused: what they made is cleaned up at once.
async fn generated_source(
    ctx: &PushContext,
    ps: &PushSecret,
    generator: &eso_api::GeneratorRef,
    now: Timestamp,
    dry_run: bool,
) -> Result<Secret, PushError> {
    use crate::generate::{
        GeneratedEntry, GeneratedStore, GeneratedValues, GeneratorFetch, GeneratorOutcome,
        GeneratorReaders, Owner, RefreshRule, entry_key, generate_entry,
    };
    let owner = Owner::push_secret(ps);
    let describe = owner.describe();
    let readers = GeneratorReaders {
        secrets: &ctx.secrets,
        config_maps: &ctx.secrets,
        tokens: Some(&ctx.tokens),
    };
    let store = GeneratedStore {
        client: &ctx.client,
        owner,
        registry: &ctx.config.generators,
        readers,
        grace: ctx.config.generator_state_grace,
    };
    let stored = |e: crate::generate::StoreError| PushError::Generator {
        unreachable: e.kube_error().is_some_and(is_unreachable),
        message: match e.kube_error() {
            Some(k) => format!("{e}: {k}"),
            None => e.to_string(),
        },
        await_change: false,
    };
    let source = |data: eso_provider::SecretData| Secret {
        metadata: ObjectMeta {
            name: Some(generator.name.clone()),
            namespace: ps.namespace(),
            ..ObjectMeta::default()
        },
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, k8s_openapi::ByteString(v)))
                .collect(),
        ),
        ..Secret::default()
    };
    let previous = store.read().await.map_err(stored)?;
    let key = entry_key(generator, 0);
    let rule = RefreshRule {
        policy: eso_api::RefreshPolicy::Periodic,
        interval: ps
            .spec
            .refresh_interval()
            .unwrap_or(Duration::from_secs(3600)),
        generation: ps.metadata.generation.unwrap_or_default(),
        windows: None,
    };
    if let Some(entry) = previous.entries.get(&key)
        && !rule.due(entry, now)
        && let Some(data) = entry.secret_data()
    {
        return Ok(source(data));
    }
    let gen_ctx = GeneratorFetch {
        registry: &ctx.config.generators,
        objects: &ctx.generator_objects,
        previous: &previous,
        now,
        webhook_secrets: Some(&ctx.webhook_secrets),
    };
    let namespace = ps.namespace().unwrap_or_default();
    let (data, fresh) = generate_entry(gen_ctx, readers, &namespace, &describe, &key, generator)
        .await
        .map_err(|e| PushError::Generator {
            message: e.chain(),
            await_change: e.awaits_change(),
            unreachable: false,
        })?;
    if fresh.state.is_some() {
        store.discard(&fresh).await;
        return Err(PushError::Generator {
            message: format!(
                "{} generators leave state to clean up, which PushSecrets do not keep; what it made was cleaned up",
                fresh.resolved.kind
            ),
            await_change: true,
            unreachable: false,
        });
    }
    if !dry_run {
        let entry = GeneratedEntry::new(
            format!("{}/{}", generator.kind, generator.name),
            now,
            ps.metadata.generation.unwrap_or_default(),
            None,
            &data,
        );
        let mut outcome = GeneratorOutcome {
            previous,
            current: GeneratedValues {
                entries: [(key, entry)].into(),
            },
            fresh: vec![fresh],
            generated_keys: data.keys().cloned().collect(),
        };
        store.store(&mut outcome, now).await.map_err(stored)?;
    }
    Ok(source(data))
}

async fn read_sources(
    ctx: &PushContext,
    ps: &PushSecret,
) -> Result<Option<Vec<Secret>>, PushError> {
    let namespace = ps.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(selector) = ps.spec.selector.secret.as_ref() else {
        // validate_spec requires one source; a generatorRef never comes here.
        return Ok(Some(Vec::new()));
    };
    if let Some(name) = selector.name.as_deref().filter(|n| !n.is_empty()) {
        let secret = api.get_opt(name).await.map_err(|source| PushError::Kube {
            what: format!("cannot read Secret \"{namespace}/{name}\""),
            source,
        })?;
        return Ok(secret.map(|s| vec![s]));
    }
    let Some(label_selector) = &selector.selector else {
        return Ok(Some(Vec::new()));
    };
    let query = selector_query(label_selector);
    let mut secrets = api
        .list(&ListParams::default().labels(&query))
        .await
        .map_err(|source| PushError::Kube {
            what: format!("cannot list Secrets in namespace {namespace:?} matching {query:?}"),
            source,
        })?
        .items;
    secrets.sort_by_key(ResourceExt::name_any);
    if secrets.is_empty() {
        return Err(PushError::Source {
            field: "spec.selector.secret.selector",
            message: format!("no Secret in namespace {namespace:?} matches {query:?}"),
        });
    }
    Ok(Some(secrets))
}

fn secret_bytes(secret: &Secret) -> eso_provider::SecretData {
    let mut data: eso_provider::SecretData = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    // stringData is write-only on a real server, but manifests and the test server may hold it.
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.as_bytes().to_vec());
    }
    data
}

async fn template_sources(
    ctx: &PushContext,
    ps: &PushSecret,
) -> Result<TemplateSources, PushError> {
    let mut sources = TemplateSources::default();
    let Some(template) = &ps.spec.template else {
        return Ok(sources);
    };
    let namespace = ps.namespace().unwrap_or_default();
    for from in &template.template_from {
        if let Some(cm) = &from.config_map {
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
            if let Some(found) = api
                .get_opt(&cm.name)
                .await
                .map_err(|source| PushError::Kube {
                    what: format!("cannot read ConfigMap \"{namespace}/{}\"", cm.name),
                    source,
                })?
            {
                sources
                    .config_maps
                    .insert(cm.name.clone(), found.data.unwrap_or_default());
            }
        }
        if let Some(secret) = &from.secret {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
            if let Some(found) =
                api.get_opt(&secret.name)
                    .await
                    .map_err(|source| PushError::Kube {
                        what: format!("cannot read Secret \"{namespace}/{}\"", secret.name),
                        source,
                    })?
            {
                sources
                    .secrets
                    .insert(secret.name.clone(), secret_bytes(&found));
            }
        }
    }
    Ok(sources)
}

/// Applies the template (if any) to one source Secret's data.
fn render(
    ps: &PushSecret,
    secret: &Secret,
    sources: &TemplateSources,
    started: Timestamp,
) -> Result<SourceData, PushError> {
    let data = secret_bytes(secret);
    let name = secret.name_any();
    let Some(template) = &ps.spec.template else {
        return Ok(SourceData { name, data });
    };
    let exec = eso_template::ExecOptions::default().now(started.into());
    let parts = apply_template(
        template,
        &data,
        sources,
        RenderOptions {
            cache: Some(TemplateCache::global()),
            exec: &exec,
        },
    )
    .map_err(|e| {
        PushError::Template(format!(
            "{} (source Secret {name:?})",
            e.message.replace("spec.target.template", "spec.template")
        ))
    })?;
    Ok(SourceData {
        name,
        data: parts.data,
    })
}

/// Resolves `secretStoreRefs` to stores (each once), honouring ClusterSecretStore conditions
/// and the controller class. A named store that is missing or not allowed is an error; stores
/// a label selector picks are skipped when not allowed here.
fn resolve_stores(ctx: &PushContext, ps: &PushSecret) -> Result<Vec<TargetStore>, PushError> {
    let namespace = ps.namespace().unwrap_or_default();
    let lookup = ctx.stores.as_ref();
    let mut out: Vec<TargetStore> = Vec::new();
    let mut push = |info: eso_provider::StoreInfo, labels: BTreeMap<String, String>| {
        if !out
            .iter()
            .any(|s| s.info.kind == info.kind && s.info.name == info.name)
        {
            out.push(TargetStore { info, labels });
        }
    };
    for (i, r) in ps.spec.secret_store_refs.iter().enumerate() {
        let field = format!("spec.secretStoreRefs[{i}]");
        let kind = r.kind();
        if kind == StoreKind::ClusterSecretStore && !ctx.config.cluster_stores {
            return Err(PushError::Store {
                field,
                source: StoreError::NotFound {
                    kind: kind.as_str(),
                    namespace: None,
                    name: r.name.clone().unwrap_or_default(),
                },
            });
        }
        if let Some(name) = r.name.as_deref().filter(|n| !n.is_empty()) {
            let info = lookup
                .store(kind, &namespace, name)
                .ok_or_else(|| PushError::Store {
                    field: field.clone(),
                    source: StoreError::NotFound {
                        kind: kind.as_str(),
                        namespace: (kind == StoreKind::SecretStore).then(|| namespace.clone()),
                        name: name.to_owned(),
                    },
                })?;
            if kind == StoreKind::ClusterSecretStore {
                check_namespace_allowed(&info, &namespace, &lookup.namespace_labels(&namespace))
                    .map_err(|source| PushError::Store {
                        field: field.clone(),
                        source,
                    })?;
            }
            let labels = match kind {
                StoreKind::SecretStore => lookup.secret_store_labels(&namespace),
                StoreKind::ClusterSecretStore => lookup.cluster_store_labels(),
            }
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l)
            .unwrap_or_default();
            push(info, labels);
            continue;
        }
        let Some(selector) = &r.label_selector else {
            continue;
        };
        let candidates = match kind {
            StoreKind::SecretStore => lookup.secret_store_labels(&namespace),
            StoreKind::ClusterSecretStore => lookup.cluster_store_labels(),
        };
        let mut found = 0;
        for (name, labels) in candidates {
            if !crate::selector::matches(selector, &labels) {
                continue;
            }
            let Some(info) = lookup.store(kind, &namespace, &name) else {
                continue;
            };
            if kind == StoreKind::ClusterSecretStore
                && check_namespace_allowed(&info, &namespace, &lookup.namespace_labels(&namespace))
                    .is_err()
            {
                continue;
            }
            found += 1;
            push(info, labels);
        }
        if found == 0 {
            return Err(PushError::Source {
                field: "spec.secretStoreRefs",
                message: format!(
                    "{field}.labelSelector {:?} matches no {} usable from namespace {namespace:?}",
                    selector_query(selector),
                    kind.as_str()
                ),
            });
        }
    }
    // Stores of another controller class are left to that controller, as upstream.
    out.retain(|s| {
        let class = s.info.spec.controller_class();
        class.is_empty() || class == ctx.config.controller_class
    });
    Ok(out)
}

/// How a sync runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushMode {
    /// Push even when the same values were pushed within the refresh interval.
    pub force: bool,
    /// Compute the changes without writing anything (provider reads still happen).
    pub dry_run: bool,
}

struct Clients<'a> {
    ctx: &'a PushContext,
    namespace: String,
    cache: HashMap<(StoreKind, String), Arc<dyn SecretsClient>>,
}

impl Clients<'_> {
    async fn get(
        &mut self,
        store: &eso_provider::StoreInfo,
    ) -> Result<Arc<dyn SecretsClient>, PushError> {
        let key = (store.kind, store.name.clone());
        if let Some(c) = self.cache.get(&key) {
            return Ok(c.clone());
        }
        let client = store_client(self.ctx.fetch_ctx(), store, &self.namespace)
            .await
            .map_err(|e| PushError::Provider {
                what: e.what.to_owned(),
                store: store.describe(),
                provider: provider_key(store),
                source: Box::new(e.source),
            })?;
        self.cache.insert(key, client.clone());
        Ok(client)
    }

    fn provider_error(
        &self,
        store: &eso_provider::StoreInfo,
        what: String,
        source: ProviderError,
    ) -> PushError {
        if source.kind() == eso_provider::ErrorKind::Auth {
            evict_store_client(&self.ctx.clients, store, &self.namespace);
        }
        PushError::Provider {
            what,
            store: store.describe(),
            provider: provider_key(store),
            source: Box::new(source),
        }
    }
}

fn provider_key(store: &eso_provider::StoreInfo) -> String {
    store.spec.provider.key().unwrap_or("<none>").to_owned()
}

/// Whether the item must be written: `IfNotExists` asks whether the remote value exists;
/// `Replace` reads it and compares, unless the provider cannot read, cannot read back what it
/// pushed (a webhook's read is its push request), or the entry carries metadata (which only
/// the provider can compare).
async fn needs_write(
    ctx: &PushContext,
    client: &dyn SecretsClient,
    store: &eso_provider::StoreInfo,
    item: &PushItem,
    policy: PushSecretUpdatePolicy,
) -> Result<bool, ProviderError> {
    use std::sync::atomic::Ordering::Relaxed;
    match policy {
        PushSecretUpdatePolicy::IfNotExists => {
            ctx.calls.exists.fetch_add(1, Relaxed);
            Ok(!client.secret_exists(&item.request.remote).await?)
        }
        PushSecretUpdatePolicy::Replace => {
            let write_only = ctx
                .registry
                .for_store(store)
                .is_ok_and(|p| p.capabilities() == SecretStoreCapabilities::WriteOnly);
            if item.request.metadata.is_some() || write_only || !client.reads_back_pushes() {
                return Ok(true);
            }
            ctx.calls.reads.fetch_add(1, Relaxed);
            let remote = ExternalSecretDataRemoteRef {
                key: item.request.remote.remote_key.clone(),
                property: item.request.remote.property.clone(),
                ..ExternalSecretDataRemoteRef::default()
            };
            // Missing or unreadable: the write decides (and reports a real failure).
            Ok(client
                .get_secret(&remote)
                .await
                .map_or(true, |current| current != item.request.value))
        }
    }
}

/// Deletes synced entries from their stores. On failure returns the entries still to delete
/// with the error.
async fn delete_entries(
    ctx: &PushContext,
    clients: &mut Clients<'_>,
    entries: &[(String, String, PushSecretData)],
    dry_run: bool,
    changes: &mut Vec<String>,
) -> Result<(), (usize, PushError)> {
    use std::sync::atomic::Ordering::Relaxed;
    for (done, (store_key, status_ref, entry)) in entries.iter().enumerate() {
        let fail = |e: PushError| (done, e);
        let (kind, name) = parse_store_status_key(store_key).ok_or_else(|| {
            fail(PushError::Invalid(InvalidSpec {
                field: "status.syncedPushSecrets".to_owned(),
                message: format!("{store_key:?} is not \"<Kind>/<name>\""),
            }))
        })?;
        let info = ctx
            .stores
            .store(kind, &clients.namespace, name)
            .ok_or_else(|| {
                fail(PushError::Store {
                    field: format!("status.syncedPushSecrets[{store_key:?}]"),
                    source: StoreError::NotFound {
                        kind: kind.as_str(),
                        namespace: (kind == StoreKind::SecretStore)
                            .then(|| clients.namespace.clone()),
                        name: name.to_owned(),
                    },
                })
            })?;
        let line = format!("delete remote key {status_ref:?} from {}", info.describe());
        if dry_run {
            changes.push(line);
            continue;
        }
        let client = clients.get(&info).await.map_err(fail)?;
        ctx.calls.deletes.fetch_add(1, Relaxed);
        let remote = PushRemoteRef {
            remote_key: entry.match_.remote_ref.remote_key.clone(),
            property: entry
                .match_
                .remote_ref
                .property
                .clone()
                .filter(|p| !p.is_empty()),
        };
        client.delete_secret(&remote).await.map_err(|e| {
            fail(clients.provider_error(&info, format!("deleting remote key {status_ref:?}"), e))
        })?;
        changes.push(line);
    }
    Ok(())
}

/// `old` without the first `done` entries of `deleted`.
fn without(old: &SyncedMap, deleted: &[(String, String, PushSecretData)]) -> SyncedMap {
    let mut out = old.clone();
    for (store, key, _) in deleted {
        if let Some(entries) = out.get_mut(store) {
            entries.remove(key);
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

/// Reconciles one PushSecret (the controller's entry point).
pub async fn reconcile(ps: Arc<PushSecret>, ctx: Arc<PushContext>) -> Result<Action, PushError> {
    ctx.health.wait_reachable().await;
    let timer = Instant::now();
    let result = sync(&ps, &ctx, PushMode::default())
        .await
        .map(|(action, _)| action);
    let labels = metric_labels(&ps);
    metrics::counter!("pushsecret_sync_calls_total", &labels).increment(1);
    // Nanoseconds, as upstream's gauge.
    metrics::gauge!("pushsecret_reconcile_duration", &labels)
        .set(timer.elapsed().as_nanos() as f64);
    if result.is_ok() {
        ctx.failures.succeeded(&ps);
    }
    result
}

/// Pushes one PushSecret now, through the controller's path, and says what happened. Used by
/// `sync-once push`.
pub async fn push_once(ps: &PushSecret, ctx: &PushContext, dry_run: bool) -> PushSyncOutcome {
    match sync(
        ps,
        ctx,
        PushMode {
            force: true,
            dry_run,
        },
    )
    .await
    {
        Ok((_, outcome)) => outcome,
        Err(e) => PushSyncOutcome::Failed {
            message: e.message(),
        },
    }
}

fn interval_action(ps: &PushSecret, jitter: f64) -> Action {
    match ps.spec.refresh_interval() {
        Ok(d) if !d.is_zero() => Action::requeue(d + d.mul_f64(jitter * 0.05)),
        _ => Action::await_change(),
    }
}

#[allow(clippy::too_many_lines)] // one linear flow, commented step by step
async fn sync(
    ps: &PushSecret,
    ctx: &PushContext,
    mode: PushMode,
) -> Result<(Action, PushSyncOutcome), PushError> {
    let started = Timestamp::now();
    let namespace = ps.namespace().unwrap_or_default();
    let uid = ps.uid().unwrap_or_else(|| ps.name_any());
    let jitter = jitter_for(&uid);
    let has_finalizer = ps.finalizers().iter().any(|f| f == PUSH_SECRET_FINALIZER);
    let delete_policy = ps.spec.deletion_policy() == PushSecretDeletionPolicy::Delete;
    let old = ps
        .status
        .as_ref()
        .map(|s| s.synced_push_secrets.clone())
        .unwrap_or_default();
    let mut clients = Clients {
        ctx,
        namespace: namespace.clone(),
        cache: HashMap::new(),
    };
    let mut changes = Vec::new();

    // 1. Deletion: delete everything pushed, then let the PushSecret go.
    if ps.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok((Action::await_change(), PushSyncOutcome::Skipped));
        }
        if !delete_policy {
            // The policy changed to None before the finalizer came off: delete nothing
            // remotely, as upstream.
            if !mode.dry_run {
                ctx.set_finalizer(ps, false).await?;
            }
            ctx.ledger.forget(&uid);
            return Ok((Action::await_change(), PushSyncOutcome::Finalized));
        }
        let all = stale_entries(&old, &SyncedMap::new());
        if let Err((done, e)) =
            delete_entries(ctx, &mut clients, &all, mode.dry_run, &mut changes).await
        {
            if !mode.dry_run && !e.api_unreachable() {
                let message = format!("could not delete pushed values: {}", e.message());
                ctx.fail(ps, message, Some(without(&old, &all[..done])))
                    .await;
            }
            return Err(e);
        }
        if mode.dry_run {
            return Ok((
                Action::await_change(),
                PushSyncOutcome::WouldPush { changes },
            ));
        }
        ctx.set_finalizer(ps, false).await?;
        ctx.ledger.forget(&uid);
        return Ok((Action::await_change(), PushSyncOutcome::Finalized));
    }

    // 2. The finalizer follows the deletion policy.
    if !mode.dry_run && delete_policy != has_finalizer {
        ctx.set_finalizer(ps, delete_policy).await?;
    }

    // 3. What is pushed: validate, read the sources, apply the template, resolve the stores.
    let uid_ref = uid.as_str();
    let fail_await = |e: PushError| async move {
        let message = e.message();
        if !mode.dry_run {
            ctx.fail(ps, message.clone(), None).await;
        }
        ctx.ledger.forget(uid_ref);
        match e.class() {
            ErrorClass::AwaitChange => {
                Ok((Action::await_change(), PushSyncOutcome::Failed { message }))
            }
            _ => Err(e),
        }
    };
    if let Err(e) = validate_spec(ps) {
        return fail_await(e.into()).await;
    }
    let sourced = match &ps.spec.selector.generator_ref {
        Some(generator) if ps.spec.selector.secret.is_none() => {
            generated_source(ctx, ps, generator, started, mode.dry_run)
                .await
                .map(|s| Some(vec![s]))
        }
        _ => read_sources(ctx, ps).await,
    };
    let secrets = match sourced {
        Ok(Some(s)) => s,
        Ok(None) => {
            let name = ps
                .spec
                .selector
                .secret
                .as_ref()
                .and_then(|s| s.name.clone())
                .unwrap_or_default();
            let missing = format!("Secret \"{namespace}/{name}\" not found");
            if delete_policy && old.values().any(|e| !e.is_empty()) {
                // SourceDeleted: what was pushed from it goes too.
                let all = stale_entries(&old, &SyncedMap::new());
                if let Err((done, e)) =
                    delete_entries(ctx, &mut clients, &all, mode.dry_run, &mut changes).await
                {
                    if !mode.dry_run && !e.api_unreachable() {
                        let message = format!(
                            "source {missing}; could not delete pushed values: {}",
                            e.message()
                        );
                        ctx.fail(ps, message, Some(without(&old, &all[..done])))
                            .await;
                    }
                    return Err(e);
                }
                if mode.dry_run {
                    return Ok((
                        Action::await_change(),
                        PushSyncOutcome::WouldPush { changes },
                    ));
                }
                let message = format!(
                    "source {missing}; its {} pushed value(s) were deleted (deletionPolicy Delete)",
                    all.len()
                );
                ctx.publish(
                    ps,
                    true,
                    eso_api::push_reasons::SOURCE_DELETED,
                    message.clone(),
                )
                .await;
                ctx.write_status(
                    ps,
                    &PushOutcome::SourceDeleted(message),
                    Some(SyncedMap::new()),
                    started,
                    false,
                )
                .await?;
                ctx.ledger.forget(&uid);
                return Ok((
                    Action::await_change(),
                    PushSyncOutcome::SourceDeleted { deleted: all.len() },
                ));
            }
            let already = ps.status.as_ref().is_some_and(|s| {
                eso_api::common::find_condition(&s.conditions, "Ready").is_some_and(|c| {
                    c.reason.as_deref() == Some(eso_api::push_reasons::SOURCE_DELETED)
                })
            });
            if already {
                // Cleaned up before; the condition keeps saying why until the Secret returns.
                return Ok((
                    Action::await_change(),
                    PushSyncOutcome::SourceDeleted { deleted: 0 },
                ));
            }
            return fail_await(PushError::Source {
                field: "spec.selector.secret.name",
                message: missing,
            })
            .await;
        }
        Err(e) if e.class() == ErrorClass::AwaitChange => return fail_await(e).await,
        Err(e) => {
            if !mode.dry_run && !e.api_unreachable() {
                ctx.fail(ps, e.message(), None).await;
            }
            return Err(e);
        }
    };
    let sources_for_template = match template_sources(ctx, ps).await {
        Ok(s) => s,
        Err(e) => return fail_await(e).await,
    };
    let mut sources = Vec::with_capacity(secrets.len());
    for secret in &secrets {
        match render(ps, secret, &sources_for_template, started) {
            Ok(s) => sources.push(s),
            Err(e) => return fail_await(e).await,
        }
    }
    let stores = match resolve_stores(ctx, ps) {
        Ok(s) if s.is_empty() => return Ok((Action::await_change(), PushSyncOutcome::NotOurs)),
        Ok(s) => s,
        Err(e) if e.class() == ErrorClass::AwaitChange => return fail_await(e).await,
        Err(e) => {
            if !mode.dry_run {
                ctx.fail(ps, e.message(), None).await;
            }
            return Err(e);
        }
    };
    let items = match plan_items(ps, &sources, &stores, &crate::template::GoTemplates) {
        Ok(i) => i,
        Err(e) => return fail_await(e.into()).await,
    };

    // 4. Nothing to do when this process pushed the same values for the same spec and
    //    metadata within the interval (the ledger is written only after the status, so the
    //    watch cache may lag behind it but the API server does not).
    let fp = fingerprint(&items, ps);
    let rv = push_resource_version(ps);
    let interval = ps.spec.refresh_interval().unwrap_or_default();
    if !mode.force
        && let Some(remaining) = ctx.ledger.remaining(&uid, &fp, &rv, interval, started)
    {
        let action = remaining.map_or_else(Action::await_change, Action::requeue);
        return Ok((action, PushSyncOutcome::Skipped));
    }

    // 5. Push what differs.
    let policy = ps.spec.update_policy();
    let new = synced_map(&items, &stores);
    let mut pushed = SyncedMap::new();
    for item in &items {
        let store = &stores[item.store].info;
        let result = async {
            let client = clients.get(store).await?;
            let write = needs_write(ctx, client.as_ref(), store, item, policy)
                .await
                .map_err(|e| {
                    clients.provider_error(
                        store,
                        format!("checking the remote value for {}", item.describe()),
                        e,
                    )
                })?;
            if write {
                let line = format!("push {} in {}", item.describe(), store.describe());
                if !mode.dry_run {
                    ctx.calls
                        .pushes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    client.push_secret(&item.request).await.map_err(|e| {
                        clients.provider_error(store, format!("pushing {}", item.describe()), e)
                    })?;
                }
                changes.push(line);
            }
            Ok::<(), PushError>(())
        }
        .await;
        if let Err(e) = result {
            if !mode.dry_run && !e.api_unreachable() {
                ctx.fail(ps, e.message(), Some(merge_synced(&pushed, &old)))
                    .await;
            }
            ctx.ledger.forget(&uid);
            if e.class() == ErrorClass::AwaitChange {
                return Ok((
                    Action::await_change(),
                    PushSyncOutcome::Failed {
                        message: e.message(),
                    },
                ));
            }
            return Err(e);
        }
        pushed
            .entry(item.store_key.clone())
            .or_default()
            .insert(item.status_ref.clone(), item.entry.clone());
    }

    // 6. Delete what is no longer pushed (only what this PushSecret recorded as its own).
    if delete_policy {
        let stale = stale_entries(&old, &new);
        if let Err((done, e)) =
            delete_entries(ctx, &mut clients, &stale, mode.dry_run, &mut changes).await
        {
            if !mode.dry_run && !e.api_unreachable() {
                let remaining = merge_synced(&new, &without(&old, &stale[..done]));
                ctx.fail(
                    ps,
                    format!("could not delete values no longer pushed: {}", e.message()),
                    Some(remaining),
                )
                .await;
            }
            ctx.ledger.forget(&uid);
            return Err(e);
        }
    }

    if mode.dry_run {
        return Ok((
            Action::await_change(),
            PushSyncOutcome::WouldPush { changes },
        ));
    }

    // 7. Status, event, schedule.
    let was_ready = is_ready(ps);
    let written = ctx
        .write_status(
            ps,
            &PushOutcome::Synced,
            Some(new),
            started,
            !changes.is_empty(),
        )
        .await?;
    if !changes.is_empty() || (written && !was_ready) {
        ctx.publish(
            ps,
            false,
            eso_api::push_reasons::SYNCED,
            super::plan::synced_message(ps),
        )
        .await;
    }
    ctx.ledger.record(&uid, fp, rv, started);
    let outcome = if changes.is_empty() {
        PushSyncOutcome::Unchanged
    } else {
        PushSyncOutcome::Pushed { changes }
    };
    Ok((interval_action(ps, jitter), outcome))
}

fn error_policy(ps: Arc<PushSecret>, error: &PushError, ctx: Arc<PushContext>) -> Action {
    let failure = if error.api_unreachable() {
        Failure::Unreachable
    } else if error.conflict() {
        Failure::Conflict
    } else {
        Failure::Failed {
            retry_after: match error {
                PushError::Provider { source, .. } => source.retry_after(),
                _ => None,
            },
            at_interval: (error.class() == ErrorClass::RetryAtInterval)
                .then(|| ps.spec.refresh_interval().ok())
                .flatten(),
        }
    };
    let retry = ctx.failures.retry_in(&ps, failure, &ctx.health);
    if let Failure::Failed { .. } = failure {
        tracing::info!(pushsecret = %ps_key(&ps), error = %error.message(), retry_in = ?retry, "push failed");
    }
    Action::requeue(retry)
}

/// A Secret's metadata only: the Secret watch decodes nothing else, so Secret values never sit
/// in this process for the watch's sake.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SecretMeta {
    /// The Secret's metadata.
    pub metadata: ObjectMeta,
}

impl Resource for SecretMeta {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "Secret".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "secrets".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The PushSecrets that select this Secret (by name, or by label selector).
fn selecting(cache: &Store<PushSecret>, secret: &SecretMeta) -> Vec<ObjectRef<PushSecret>> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    cache
        .state()
        .iter()
        .filter(|ps| ps.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|ps| {
            ps.spec.selector.secret.as_ref().is_some_and(|s| {
                match s.name.as_deref().filter(|n| !n.is_empty()) {
                    Some(n) => n == name,
                    None => s
                        .selector
                        .as_ref()
                        .is_some_and(|sel| crate::selector::matches(sel, &labels)),
                }
            })
        })
        .map(|ps| ObjectRef::from_obj(ps.as_ref()))
        .collect()
}

/// The PushSecrets a store change may concern: those naming it that are not Ready (a store
/// created after its PushSecrets), and those selecting stores of its kind by label (a new
/// matching store is a new target).
fn store_users(
    cache: &Store<PushSecret>,
    kind: StoreKind,
    namespace: Option<&str>,
    name: &str,
) -> Vec<ObjectRef<PushSecret>> {
    cache
        .state()
        .iter()
        .filter(|ps| {
            kind == StoreKind::ClusterSecretStore || ps.namespace().as_deref() == namespace
        })
        .filter(|ps| {
            ps.spec.secret_store_refs.iter().any(|r| {
                r.kind() == kind
                    && (r.label_selector.is_some()
                        || (r.name.as_deref() == Some(name) && !is_ready(ps)))
            })
        })
        .map(|ps| ObjectRef::from_obj(ps.as_ref()))
        .collect()
}

struct PushWatches {
    ctx: Arc<PushContext>,
    stores: CachedStores,
    _tasks: Vec<AbortOnDrop>,
}

/// Everything the PushSecret controller needs to run; the same shape as
/// [`ExternalSecretController`](crate::controller::ExternalSecretController):
/// [`start_watches`](Self::start_watches) starts what every replica keeps (store and namespace
/// caches, the `pushsecret_status_condition` series); [`reconcile_until`](Self::reconcile_until)
/// runs the reconcilers for one leadership term.
pub struct PushSecretController {
    client: Client,
    config: ControllerConfig,
    registry: ProviderRegistry,
    series: Arc<StatusSeries>,
    watches: std::sync::OnceLock<PushWatches>,
}

impl PushSecretController {
    /// A controller with these providers.
    #[must_use]
    pub fn new(client: Client, config: ControllerConfig, registry: ProviderRegistry) -> Self {
        Self {
            client,
            config,
            registry,
            series: Arc::new(super::metrics::push_secret_series()),
            watches: std::sync::OnceLock::new(),
        }
    }

    /// The `pushsecret_status_condition` series this controller keeps up to date.
    #[must_use]
    pub fn status_series(&self) -> Arc<StatusSeries> {
        self.series.clone()
    }

    /// The reconcile context (provider call counters, for tests and benchmarks). Starts the
    /// watches if needed.
    #[must_use]
    pub fn context(&self) -> Arc<PushContext> {
        self.watches().ctx.clone()
    }

    /// Starts the watches every replica keeps, leader or not. Idempotent; they stop when the
    /// controller is dropped. Must be called inside a Tokio runtime.
    pub fn start_watches(&self) {
        let _ = self.watches();
    }

    fn watches(&self) -> &PushWatches {
        self.watches.get_or_init(|| {
            let client = &self.client;
            let ns = self.config.namespace.as_deref();
            let mut tasks = Vec::new();
            let stores = spawn_store_caches(client, ns, self.config.cluster_stores, &mut tasks);
            let ctx = PushContext::new(
                client.clone(),
                self.config.clone(),
                self.registry.clone(),
                Arc::new(stores.clone()),
            );
            tasks.push(AbortOnDrop(super::metrics::spawn_push_series(
                scoped::<PushSecret>(client, ns),
                self.series.clone(),
            )));
            PushWatches {
                ctx: Arc::new(ctx),
                stores,
                _tasks: tasks,
            }
        })
    }

    /// Runs the reconcilers until `shutdown` resolves, then lets in-flight reconciles finish
    /// for at most `grace` (`None`: as long as they take). Starts the watches if needed; they
    /// keep running afterwards, so this can be called again for the next leadership term.
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
        let controller = QueuedController::new(
            names::PUSH_SECRET,
            scoped::<PushSecret>(&client, ns),
            watcher::Config::default(),
        )
        .concurrency(self.config.concurrency);
        ctx.events.pace_by(controller.backlog());
        let by_secret = controller.store();
        let controller = controller.watches(
            scoped::<SecretMeta>(&client, ns),
            watcher::Config::default(),
            move |secret: SecretMeta| selecting(&by_secret, &secret),
        );
        let controller = term::on_store_changes(
            controller,
            &client,
            ns,
            watches.stores.cluster_stores.is_some(),
            store_users,
        );
        term::drive(
            controller.run(reconcile, error_policy, ctx, end.clone()),
            end,
            grace,
            names::PUSH_SECRET,
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
