//! Fetching: everything with I/O before the plan. For each `dataFrom[]` and `data[]` entry,
//! resolve its store, get (or reuse) a provider client, read, and post-process the values with
//! upstream's order: rewrite, else key conversion; key validation; decoding; the NUL-byte check.
//! Entries are read concurrently; the results are merged in order (`dataFrom` in list order,
//! then `data[]`, which wins on a key clash).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use eso_api::{DeletionPolicy, ExternalSecret, ExternalSecretDataFromRemoteRef, StoreKind};
use eso_provider::rewrite::{KeyTransformer, rewrite_map};
use eso_provider::{
    ClientContext, ProviderError, ProviderRegistry, SecretData, SecretReader, SecretsClient,
    StoreInfo, convert,
};
use futures::future::join_all;

use crate::store::{StoreError, StoreLookup, resolve_store};

/// What identifies a reusable client: the store (and its generation, so a changed spec gets a
/// new client) and, for cluster stores, the namespace whose credentials it may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    kind: StoreKind,
    namespace: Option<String>,
    name: String,
    uid: Option<String>,
    generation: Option<i64>,
    referent_namespace: Option<String>,
}

impl ClientKey {
    fn new(store: &StoreInfo, es_namespace: &str) -> Self {
        Self {
            kind: store.kind,
            namespace: store.namespace.clone(),
            name: store.name.clone(),
            uid: store.uid.clone(),
            generation: store.generation,
            referent_namespace: (store.kind == StoreKind::ClusterSecretStore)
                .then(|| es_namespace.to_owned()),
        }
    }
}

/// How long a value read from a provider may be handed to other ExternalSecrets that read the
/// same key through the same client (store, generation and, for cluster stores, namespace).
///
/// Upstream reads the provider once per ExternalSecret per refresh: 1,000 ExternalSecrets
/// sharing 100 keys cost 1,000 reads per interval. Sharing a read brings that to one per key
/// per window; the price is freshness: a value may be up to one window old when an
/// ExternalSecret takes it. A refresh caused by a change of the ExternalSecret (spec, labels,
/// annotations: the force-sync annotation) never takes a shared value, and errors are never
/// shared beyond reads that were in flight together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadSharing {
    /// Only reads in flight at the same moment are shared (what `sync-once` and embedders get).
    #[default]
    InFlight,
    /// A value read within the reading ExternalSecret's own `refreshInterval` is reused: one
    /// provider read per key per refresh window.
    WithinRefreshInterval,
    /// A value read within this long is reused.
    Within(std::time::Duration),
}

/// The longest a shared value is kept, whatever the interval.
const MAX_SHARE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl ReadSharing {
    /// How old a shared value `es` may take now.
    #[must_use]
    pub fn max_age(self, es: &ExternalSecret) -> std::time::Duration {
        use std::time::Duration;
        if !crate::schedule::synced_to_current(es) {
            // New, changed or force-synced: the user asked for a fresh read.
            return Duration::ZERO;
        }
        match self {
            Self::InFlight => Duration::ZERO,
            Self::WithinRefreshInterval => match es.spec.refresh_policy() {
                eso_api::RefreshPolicy::Periodic => es
                    .spec
                    .refresh_interval()
                    .unwrap_or_default()
                    .min(MAX_SHARE),
                _ => Duration::ZERO,
            },
            Self::Within(d) => d.min(MAX_SHARE),
        }
    }
}

/// Shared reads of one shape, keyed by client and request.
type Shared<V> = eso_provider::cache::ReadCache<(ClientKey, String), Arc<V>>;

/// A store across its generations: kind, namespace, name.
type StoreId = (StoreKind, Option<String>, String);

/// Provider reads in flight per store at most, unless configured
/// ([`ClientCache::store_concurrency`], the operator's `--store-concurrency`).
pub const DEFAULT_STORE_CONCURRENCY: usize = 8;

/// Provider clients reused across reconciles, so a login happens once per client lifetime,
/// not once per reconcile, and the reads made through them (see [`ReadSharing`]).
pub struct ClientCache {
    clients: Mutex<HashMap<ClientKey, Arc<dyn SecretsClient>>>,
    sharing: ReadSharing,
    /// Provider reads in flight per store at most (0: unbounded).
    per_store: usize,
    limits: Mutex<HashMap<StoreId, Arc<tokio::sync::Semaphore>>>,
    values: Shared<Vec<u8>>,
    maps: Shared<SecretData>,
}

impl Default for ClientCache {
    fn default() -> Self {
        Self::with_sharing(ReadSharing::default())
    }
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.clients.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("ClientCache")
            .field("clients", &len)
            .finish()
    }
}

impl ClientCache {
    /// An empty cache that shares only reads in flight together.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache sharing reads as `sharing` says.
    #[must_use]
    pub fn with_sharing(sharing: ReadSharing) -> Self {
        Self {
            clients: Mutex::default(),
            sharing,
            per_store: DEFAULT_STORE_CONCURRENCY,
            limits: Mutex::default(),
            values: Shared::new(MAX_SHARE),
            maps: Shared::new(MAX_SHARE),
        }
    }

    /// At most `n` provider reads in flight per store (0: unbounded); readers beyond it wait
    /// their turn, so many ExternalSecrets of one store do not hammer a slow provider.
    #[must_use]
    pub fn store_concurrency(mut self, n: usize) -> Self {
        self.per_store = n;
        self
    }

    fn limit_for(&self, key: &ClientKey) -> Option<Arc<tokio::sync::Semaphore>> {
        if self.per_store == 0 {
            return None;
        }
        let mut limits = self.limits.lock().ok()?;
        let id = (key.kind, key.namespace.clone(), key.name.clone());
        Some(
            limits
                .entry(id)
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_store)))
                .clone(),
        )
    }

    /// One read through the client `key`, shared with other readers of the same request as
    /// the sharing policy allows, within the store's concurrency limit.
    async fn read<V, F, Fut>(
        &self,
        cache: &Shared<V>,
        key: &ClientKey,
        request: String,
        max_age: std::time::Duration,
        fetch: F,
    ) -> Result<V, ProviderError>
    where
        V: Clone,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, ProviderError>>,
    {
        let limit = self.limit_for(key);
        let shared = cache
            .get_within((key.clone(), request), max_age, || async {
                // Only the reader that calls the provider takes a permit; sharers wait on it.
                let _permit = match &limit {
                    Some(limit) => limit.acquire().await.ok(),
                    None => None,
                };
                fetch().await.map(Arc::new)
            })
            .await?;
        Ok(Arc::unwrap_or_clone(shared))
    }

    /// How many clients are cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or_default()
    }

    /// Whether no client is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, key: &ClientKey) -> Option<Arc<dyn SecretsClient>> {
        self.clients.lock().ok()?.get(key).cloned()
    }

    /// Drops a client whose credentials were rejected, so the next use logs in afresh (with
    /// newly read credentials and tokens).
    fn evict(&self, key: &ClientKey) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.remove(key);
        }
    }

    fn insert(&self, key: ClientKey, client: Arc<dyn SecretsClient>) {
        if let Ok(mut clients) = self.clients.lock() {
            // A store's older generations will never be asked for again.
            clients.retain(|k, _| {
                !(k.kind == key.kind && k.namespace == key.namespace && k.name == key.name)
                    || k.generation == key.generation
            });
            clients.insert(key.clone(), client);
        }
        let older = |(k, _): &(ClientKey, String)| {
            k.kind == key.kind
                && k.namespace == key.namespace
                && k.name == key.name
                && k.generation != key.generation
        };
        self.values.invalidate_where(older);
        self.maps.invalidate_where(older);
    }
}

/// Reads ConfigMaps that templates refer to (the provider-level trait, which also serves a
/// store's `caProvider` of type `ConfigMap`).
pub use eso_provider::ConfigMapReader;

/// Everything fetching needs.
#[derive(Clone, Copy)]
pub struct FetchContext<'a> {
    /// The providers by store key.
    pub registry: &'a ProviderRegistry,
    /// Where stores come from.
    pub stores: &'a dyn StoreLookup,
    /// Where credential Secrets come from.
    pub secrets: &'a dyn SecretReader,
    /// Where ServiceAccount tokens come from (`None` offline).
    pub tokens: Option<&'a dyn eso_provider::ServiceAccountTokens>,
    /// Where ConfigMaps come from (`templateFrom`, and a store's `caProvider`).
    pub config_maps: &'a dyn ConfigMapReader,
    /// Reusable clients.
    pub clients: &'a ClientCache,
    /// Renders `rewrite.transform` templates.
    pub transformer: &'a (dyn KeyTransformer + Sync),
    /// Generators and the values generated before (`None`: `sourceRef.generatorRef` fails).
    pub generators: Option<crate::generate::GeneratorFetch<'a>>,
}

/// The data fetched for one ExternalSecret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// The merged data, keys final.
    pub data: SecretData,
    /// Remote keys that did not exist and were skipped (deletionPolicy other than Retain);
    /// each becomes a `MissingProviderSecret` event.
    pub missing: Vec<String>,
    /// The ConfigMaps and Secrets the template refers to.
    pub template_sources: crate::template::TemplateSources,
    /// The generator entries' values (`None` when the ExternalSecret uses no generator).
    pub generated: Option<crate::generate::GeneratorOutcome>,
}

/// A fetch failure, naming the entry, key, store and provider.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The entry's store cannot be used.
    #[error("{entry}: {source}")]
    Store {
        /// The entry, e.g. `spec.data[0]`.
        entry: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The provider failed or the store is misconfigured.
    #[error("{entry}: {what} from {store} (provider {provider})")]
    Provider {
        /// The entry, e.g. `spec.data[0]`.
        entry: String,
        /// What was read, e.g. `reading key "db"`.
        what: String,
        /// The store, e.g. `SecretStore "default/vault"`.
        store: String,
        /// The provider key.
        provider: String,
        /// The provider's error.
        #[source]
        source: ProviderError,
    },
    /// A ConfigMap or Secret the template refers to could not be read.
    #[error("{entry}: {message}")]
    TemplateSource {
        /// The templateFrom entry.
        entry: String,
        /// What went wrong.
        message: String,
    },
    /// A generator entry failed.
    #[error("{entry}: {}", source.chain())]
    Generator {
        /// The entry, e.g. `spec.dataFrom[0]`.
        entry: String,
        /// Why.
        source: crate::generate::GenerateError,
    },
    /// The entry asks for something eso-rs does not do yet.
    #[error("{entry}: {message}")]
    Unsupported {
        /// The entry.
        entry: String,
        /// What is missing.
        message: String,
    },
}

impl FetchError {
    /// The provider error's cause, if a provider failed.
    #[must_use]
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Provider { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Whether retrying later can help (throttling or an unavailable provider).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Generator { source, .. } => source.is_transient(),
            _ => self
                .provider_error()
                .is_some_and(|e| e.kind().is_transient()),
        }
    }

    /// When the provider or generator asked to be called again.
    #[must_use]
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Provider { source, .. } => source.retry_after(),
            Self::Generator { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// How the failure may recover. A missing store may appear, a provider may come back or
    /// accept new credentials, a missing property or template source may be added: all are
    /// retried. Only what the ExternalSecret itself asks for and eso-rs cannot do waits for
    /// a change to it.
    #[must_use]
    pub fn class(&self) -> crate::plan::ErrorClass {
        use crate::plan::ErrorClass;
        match self {
            Self::Unsupported { .. } => ErrorClass::AwaitChange,
            Self::Provider { source, .. }
                if source.kind() == eso_provider::ErrorKind::Unsupported =>
            {
                ErrorClass::AwaitChange
            }
            Self::Generator { source, .. } if source.awaits_change() => ErrorClass::AwaitChange,
            Self::TemplateSource { .. } => ErrorClass::RetryAtInterval,
            Self::Generator { .. } => ErrorClass::RetryWithBackoff,
            Self::Store { .. } | Self::Provider { .. } => ErrorClass::RetryWithBackoff,
        }
    }

    /// A PascalCase code for the cause.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Store { source, .. } => source.reason(),
            Self::Provider { source, .. } => source.reason(),
            Self::Generator { source, .. } => source.reason(),
            Self::Unsupported { .. } => "Unsupported",
            Self::TemplateSource { .. } => "TemplateSourceError",
        }
    }

    /// The message with every cause, for conditions and CLI output.
    #[must_use]
    pub fn chain(&self) -> String {
        match self {
            Self::Provider { source, .. } => format!("{self}: {}", source.chain()),
            _ => self.to_string(),
        }
    }
}

struct ResolvedClient {
    key: ClientKey,
    client: Arc<dyn SecretsClient>,
    store: String,
    provider: String,
}

async fn client_for(
    ctx: FetchContext<'_>,
    namespace: &str,
    entry: &str,
    entry_ref: Option<&eso_api::SecretStoreRef>,
    es: &ExternalSecret,
) -> Result<ResolvedClient, FetchError> {
    let store = resolve_store(
        ctx.stores,
        namespace,
        entry_ref,
        es.spec.secret_store_ref.as_ref(),
    )
    .map_err(|source| FetchError::Store {
        entry: entry.to_owned(),
        source,
    })?;
    let described = store.describe();
    let provider_name = store.spec.provider.key().unwrap_or("<none>").to_owned();
    let key = ClientKey::new(&store, namespace);
    let client = store_client(ctx, &store, namespace)
        .await
        .map_err(|e| FetchError::Provider {
            entry: entry.to_owned(),
            what: e.what.to_owned(),
            store: described.clone(),
            provider: provider_name.clone(),
            source: e.source,
        })?;
    Ok(ResolvedClient {
        key,
        client,
        store: described,
        provider: provider_name,
    })
}

/// Why no client could be had for a store: what was being done, and the provider's error.
#[derive(Debug)]
pub(crate) struct StoreClientError {
    /// What was being done, e.g. `building a client`.
    pub what: &'static str,
    /// The provider's error.
    pub source: ProviderError,
}

/// The cached client of a store for objects in `namespace`, built (after validating the
/// store) when there is none.
pub(crate) async fn store_client(
    ctx: FetchContext<'_>,
    store: &StoreInfo,
    namespace: &str,
) -> Result<Arc<dyn SecretsClient>, StoreClientError> {
    let fail = |what: &'static str, source: ProviderError| StoreClientError { what, source };
    let problems = eso_api::validate::validate_secret_store(
        &store.spec,
        store.kind == StoreKind::ClusterSecretStore,
    );
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(fail(
            "validating the store",
            ProviderError::invalid_store(format!("invalid store: {}", list.join("; "))),
        ));
    }
    let provider = ctx
        .registry
        .for_store(store)
        .map_err(|e| fail("selecting the provider", e))?;
    let key = ClientKey::new(store, namespace);
    if let Some(client) = ctx.clients.get(&key) {
        return Ok(client);
    }
    provider
        .validate_store(store)
        .map_err(|e| fail("validating the store", e))?;
    let client = provider
        .new_client(ClientContext {
            store,
            namespace,
            secrets: ctx.secrets,
            config_maps: ctx.config_maps,
            tokens: ctx.tokens,
        })
        .await
        .map_err(|e| fail("building a client", e))?;
    ctx.clients.insert(key, client.clone());
    Ok(client)
}

/// Drops the cached client of a store whose credentials were rejected.
pub(crate) fn evict_store_client(clients: &ClientCache, store: &StoreInfo, namespace: &str) {
    clients.evict(&ClientKey::new(store, namespace));
}

enum EntryOutcome {
    Map(SecretData),
    Value(String, Vec<u8>),
    Missing(String),
}

/// Reads every entry of an ExternalSecret and merges the results.
pub async fn fetch(ctx: FetchContext<'_>, es: &ExternalSecret) -> Result<Fetched, FetchError> {
    let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
    let skip_missing = es.spec.deletion_policy() != DeletionPolicy::Retain;

    // Resolve clients first (sequentially, so one store gets one client), then read
    // concurrently.
    let mut jobs = Vec::new();
    let generator_entries = crate::generate::generator_entries(es);
    for (i, entry) in es.spec.data_from.iter().enumerate() {
        let name = format!("spec.dataFrom[{i}]");
        if generator_entries.iter().any(|(g, _, _)| *g == i) {
            continue;
        }
        let entry_ref = entry.source_ref.as_ref().and_then(|s| s.store_ref.as_ref());
        let client = client_for(ctx, namespace, &name, entry_ref, es).await?;
        jobs.push((name, Job::DataFrom(entry), client));
    }
    for (i, entry) in es.spec.data.iter().enumerate() {
        let name = format!("spec.data[{i}]");
        if entry
            .source_ref
            .as_ref()
            .is_some_and(|s| s.generator_ref.is_some())
        {
            return Err(FetchError::Unsupported {
                entry: name,
                message: "sourceRef.generatorRef is not supported for data[] (as upstream)"
                    .to_owned(),
            });
        }
        let entry_ref = entry.source_ref.as_ref().and_then(|s| s.store_ref.as_ref());
        let client = client_for(ctx, namespace, &name, entry_ref, es).await?;
        jobs.push((name, Job::Data(entry), client));
    }

    let max_age = ctx.clients.sharing.max_age(es);
    let results = join_all(jobs.iter().map(|(name, job, client)| async move {
        let result = run_job(ctx, name, job, client, skip_missing, max_age).await;
        if let Err(e) = &result
            && e.provider_error()
                .is_some_and(|p| p.kind() == eso_provider::ErrorKind::Auth)
        {
            ctx.clients.evict(&client.key);
        }
        result
    }))
    .await;

    let mut fetched = Fetched::default();
    if let Some(template) = es.spec.template() {
        fetched.template_sources = read_template_sources(ctx, namespace, template).await?;
    }
    // Nothing is generated when another entry fails.
    let results: Vec<EntryOutcome> = results.into_iter().collect::<Result<_, _>>()?;
    // Generator entries, in order, after every read succeeded; their outputs take their
    // place in dataFrom's order.
    let mut generated: BTreeMap<usize, SecretData> = BTreeMap::new();
    if !generator_entries.is_empty() {
        let outcome = generate_all(ctx, es, &generator_entries, &mut generated).await?;
        fetched.generated = Some(outcome);
    }
    let mut results = results.into_iter();
    for (i, _) in es.spec.data_from.iter().enumerate() {
        if let Some(map) = generated.remove(&i) {
            fetched.data.extend(map);
            continue;
        }
        if let Some(result) = results.next() {
            merge(&mut fetched, result);
        }
    }
    for result in results {
        merge(&mut fetched, result);
    }
    Ok(fetched)
}

fn merge(fetched: &mut Fetched, outcome: EntryOutcome) {
    match outcome {
        EntryOutcome::Map(map) => fetched.data.extend(map),
        EntryOutcome::Value(key, value) => {
            fetched.data.insert(key, value);
        }
        EntryOutcome::Missing(key) => fetched.missing.push(key),
    }
}

/// Runs the generator entries: a stored value is reused unless the refresh policy says a
/// refresh is due ([`crate::generate::regeneration_due`]); otherwise the generator is called.
/// On a failure, what was generated in this call is cleaned up (it is never stored).
async fn generate_all(
    ctx: FetchContext<'_>,
    es: &ExternalSecret,
    entries: &[(usize, String, &eso_api::GeneratorRef)],
    out: &mut BTreeMap<usize, SecretData>,
) -> Result<crate::generate::GeneratorOutcome, FetchError> {
    use crate::generate::{GeneratedEntry, GeneratorOutcome, GeneratorReaders, generate_entry};
    let Some(gen_ctx) = ctx.generators else {
        let entry = entries
            .first()
            .map(|(i, _, _)| format!("spec.dataFrom[{i}]"))
            .unwrap_or_default();
        return Err(FetchError::Unsupported {
            entry,
            message: "sourceRef.generatorRef: no generators are available here".to_owned(),
        });
    };
    let readers = GeneratorReaders {
        secrets: ctx.secrets,
        config_maps: ctx.config_maps,
        tokens: ctx.tokens,
    };
    let generation = es.metadata.generation.unwrap_or_default();
    let mut outcome = GeneratorOutcome {
        previous: gen_ctx.previous.clone(),
        ..Default::default()
    };
    for (i, key, generator) in entries {
        let entry_name = format!("spec.dataFrom[{i}]");
        let stored = gen_ctx.previous.entries.get(key).and_then(|stored| {
            if crate::generate::regeneration_due(es, stored, gen_ctx.now) {
                return None;
            }
            Some((stored.clone(), stored.secret_data()?))
        });
        let raw = match stored {
            Some((stored, data)) => {
                outcome.current.entries.insert(key.clone(), stored);
                data
            }
            None => match generate_entry(
                gen_ctx,
                readers,
                es.metadata.namespace.as_deref().unwrap_or("default"),
                &format!(
                    "ExternalSecret \"{}/{}\"",
                    es.metadata.namespace.as_deref().unwrap_or("default"),
                    es.metadata.name.as_deref().unwrap_or_default()
                ),
                key,
                generator,
            )
            .await
            {
                Ok((data, fresh)) => {
                    let entry = GeneratedEntry::new(
                        format!("{}/{}", generator.kind, generator.name),
                        gen_ctx.now,
                        generation,
                        None,
                        &data,
                    );
                    outcome.current.entries.insert(key.clone(), entry);
                    outcome.generated_keys.extend(data.keys().cloned());
                    outcome.fresh.push(fresh);
                    data
                }
                Err(source) => {
                    discard_all(gen_ctx, readers, es, &outcome.fresh).await;
                    return Err(FetchError::Generator {
                        entry: entry_name,
                        source,
                    });
                }
            },
        };
        let from = &es.spec.data_from[*i];
        let processed = if from.rewrite.is_empty() {
            Ok(raw)
        } else {
            rewrite_map(&from.rewrite, raw, ctx.transformer)
        }
        .and_then(convert::validate_keys);
        match processed {
            Ok(map) => {
                out.insert(*i, map);
            }
            Err(e) => {
                discard_all(gen_ctx, readers, es, &outcome.fresh).await;
                return Err(FetchError::Generator {
                    entry: entry_name,
                    source: crate::generate::GenerateError::Object(format!(
                        "rewriting the output of {} {:?} failed: {}",
                        generator.kind,
                        generator.name,
                        e.chain()
                    )),
                });
            }
        }
    }
    Ok(outcome)
}

async fn discard_all(
    gen_ctx: crate::generate::GeneratorFetch<'_>,
    readers: crate::generate::GeneratorReaders<'_>,
    es: &ExternalSecret,
    fresh: &[crate::generate::FreshGeneration],
) {
    let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
    for f in fresh {
        if let Some(state) = &f.state
            && let Err(e) = crate::generate::cleanup_state(
                gen_ctx.registry,
                readers,
                namespace,
                &f.manifest(),
                state,
            )
            .await
        {
            tracing::warn!(error = %e.chain(), "cannot clean up a generated value that was not used");
        }
    }
}

/// The cache key of one request: the call and the request as JSON (every field counts:
/// version, property, decoding...).
fn request(call: &str, body: &impl serde::Serialize) -> String {
    format!("{call}:{}", serde_json::to_string(body).unwrap_or_default())
}

enum Job<'a> {
    DataFrom(&'a ExternalSecretDataFromRemoteRef),
    Data(&'a eso_api::ExternalSecretData),
}

async fn run_job(
    ctx: FetchContext<'_>,
    entry: &str,
    job: &Job<'_>,
    resolved: &ResolvedClient,
    skip_missing: bool,
    max_age: std::time::Duration,
) -> Result<EntryOutcome, FetchError> {
    let fail = |what: String, source: ProviderError| FetchError::Provider {
        entry: entry.to_owned(),
        what,
        store: resolved.store.clone(),
        provider: resolved.provider.clone(),
        source,
    };
    match job {
        Job::Data(data) => {
            let remote = &data.remote_ref;
            let what = format!("reading key {:?}", remote.key);
            let read = ctx
                .clients
                .read(
                    &ctx.clients.values,
                    &resolved.key,
                    request("get", remote),
                    max_age,
                    || resolved.client.get_secret(remote),
                )
                .await;
            let value = match read {
                Ok(v) => v,
                Err(e) if e.is_not_found() && skip_missing => {
                    return Ok(EntryOutcome::Missing(remote.key.clone()));
                }
                Err(e) => return Err(fail(what, e)),
            };
            let value = convert::decode_value(
                remote.decoding_strategy.unwrap_or_default(),
                &data.secret_key,
                value,
            )
            .map_err(|e| fail(what.clone(), e))?;
            convert::check_null_bytes(
                remote.null_byte_policy.unwrap_or_default(),
                &data.secret_key,
                &value,
            )
            .map_err(|e| fail(what, e))?;
            Ok(EntryOutcome::Value(data.secret_key.clone(), value))
        }
        Job::DataFrom(from) => {
            let (raw, what, conversion, decoding, null_policy) = match (&from.extract, &from.find) {
                (Some(extract), None) => {
                    let what = format!("extracting key {:?}", extract.key);
                    let read = ctx
                        .clients
                        .read(
                            &ctx.clients.maps,
                            &resolved.key,
                            request("map", extract),
                            max_age,
                            || resolved.client.get_secret_map(extract),
                        )
                        .await;
                    let raw = match read {
                        Ok(m) => m,
                        Err(e) if e.is_not_found() && skip_missing => {
                            return Ok(EntryOutcome::Missing(extract.key.clone()));
                        }
                        Err(e) => return Err(fail(what, e)),
                    };
                    (
                        raw,
                        what,
                        extract.conversion_strategy,
                        extract.decoding_strategy,
                        extract.null_byte_policy,
                    )
                }
                (None, Some(find)) => {
                    let what = "finding secrets".to_owned();
                    let read = ctx
                        .clients
                        .read(
                            &ctx.clients.maps,
                            &resolved.key,
                            request("find", find),
                            max_age,
                            || resolved.client.get_all_secrets(find),
                        )
                        .await;
                    let raw = match read {
                        Ok(m) => m,
                        Err(e) if e.is_not_found() && skip_missing => {
                            return Ok(EntryOutcome::Missing(describe_find(find)));
                        }
                        Err(e) => return Err(fail(what, e)),
                    };
                    (
                        raw,
                        what,
                        find.conversion_strategy,
                        find.decoding_strategy,
                        find.null_byte_policy,
                    )
                }
                _ => {
                    return Err(FetchError::Unsupported {
                        entry: entry.to_owned(),
                        message:
                            "exactly one of extract, find and sourceRef.generatorRef must be set"
                                .to_owned(),
                    });
                }
            };
            let processed = if from.rewrite.is_empty() {
                convert::convert_keys(conversion.unwrap_or_default(), raw)
            } else {
                rewrite_map(&from.rewrite, raw, ctx.transformer)
            }
            .and_then(convert::validate_keys)
            .and_then(|m| convert::decode_map(decoding.unwrap_or_default(), m))
            .map_err(|e| fail(what.clone(), e))?;
            for (key, value) in &processed {
                convert::check_null_bytes(null_policy.unwrap_or_default(), key, value)
                    .map_err(|e| fail(what.clone(), e))?;
            }
            Ok(EntryOutcome::Map(processed))
        }
    }
}

async fn read_template_sources(
    ctx: FetchContext<'_>,
    namespace: &str,
    template: &eso_api::ExternalSecretTemplate,
) -> Result<crate::template::TemplateSources, FetchError> {
    let mut sources = crate::template::TemplateSources::default();
    for (i, from) in template.template_from.iter().enumerate() {
        let entry = format!("spec.target.template.templateFrom[{i}]");
        if let Some(cm) = &from.config_map
            && !sources.config_maps.contains_key(&cm.name)
        {
            let data = ctx
                .config_maps
                .config_map_data(namespace, &cm.name)
                .await
                .map_err(|e| FetchError::TemplateSource {
                    entry: entry.clone(),
                    message: e.chain(),
                })?
                .ok_or_else(|| FetchError::TemplateSource {
                    entry: entry.clone(),
                    message: format!("ConfigMap \"{namespace}/{}\" not found", cm.name),
                })?;
            sources.config_maps.insert(cm.name.clone(), data);
        }
        if let Some(secret) = &from.secret
            && !sources.secrets.contains_key(&secret.name)
        {
            let data = ctx
                .secrets
                .secret_data(namespace, &secret.name)
                .await
                .map_err(|e| FetchError::TemplateSource {
                    entry: entry.clone(),
                    message: e.chain(),
                })?
                .ok_or_else(|| FetchError::TemplateSource {
                    entry: entry.clone(),
                    message: format!("Secret \"{namespace}/{}\" not found", secret.name),
                })?;
            sources.secrets.insert(secret.name.clone(), data);
        }
    }
    Ok(sources)
}

fn describe_find(find: &eso_api::ExternalSecretFind) -> String {
    let mut parts = BTreeMap::new();
    if let Some(path) = &find.path {
        parts.insert("path", path.clone());
    }
    if let Some(re) = find.name.as_ref().and_then(|n| n.regexp.clone()) {
        parts.insert("name", re);
    }
    format!("find {parts:?}")
}
