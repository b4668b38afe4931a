//! Generators in ExternalSecrets (`dataFrom[].sourceRef.generatorRef`), without re-rolls.
//!
//! A generator makes a new value on every call, so the value of each generator entry is kept
//! (it is secret material: only in a Kubernetes Secret, never in a CR field) and generated again
//! only when the ExternalSecret's refresh policy says a refresh is due. See
//! `docs/generators.md` for the design; in short:
//!
//! - **The generated Secret** ([`generated_secret_name`]: `<es>-generated`, owned by the
//!   ExternalSecret, labelled managed and [`LABEL_GENERATED_FOR`]) holds one data key per
//!   generator entry ([`entry_key`]: `<kind>.<name>.<n>`, so reordering `dataFrom` or editing
//!   other entries keeps it) whose value is a JSON [`GeneratedEntry`]: the raw generated data,
//!   when it was generated, the ExternalSecret's generation then, and the GeneratorState that
//!   records its cleanup.
//! - **When a value is generated again** ([`regeneration_due`]): never when an entry has a
//!   stored value and the policy says no: `CreatedOnce` never, `OnChange` when
//!   `metadata.generation` differs from the one stored, `Periodic` when `refreshInterval` has
//!   elapsed since the stored generation time (never for interval 0). Restarts, failovers,
//!   relists, label or annotation changes and unrelated Secret changes all reuse it.
//! - **GeneratorStates**: a kind that leaves something to clean up (a Vault lease) gets a
//!   GeneratorState owned by the ExternalSecret (label [`LABEL_GENERATED_FOR`]), written
//!   *before* the generated Secret points at it, and the ExternalSecret gets the finalizer
//!   [`FINALIZER`]. A superseded state gets `garbageCollectionDeadline` = now + grace; past it,
//!   it is cleaned up ([`eso_generator::GeneratorRegistry::cleanup`]) and deleted. At most
//!   [`MAX_SUPERSEDED_PER_ENTRY`] superseded states per stateful entry are kept: older ones are
//!   cleaned up early. Deleting the ExternalSecret cleans up every state before the finalizer
//!   goes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use eso_api::generators::{
    CLUSTER_GENERATOR_KIND, GENERATORS_API_VERSION, GENERATORS_GROUP, GENERATORS_VERSION,
    GeneratorKind, GeneratorState, GeneratorStateSpec, ResolvedGenerator,
};
use eso_api::{ExternalSecret, GeneratorRef, RefreshPolicy};
use eso_generator::{GeneratorContext, GeneratorError, GeneratorObject, GeneratorRegistry};
use eso_provider::{ConfigMapReader, ProviderError, SecretData, SecretReader};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::{Deserialize, Serialize};

/// Label on the generated Secret and on GeneratorStates: the ExternalSecret they belong to
/// (its name, or a hash of it when longer than a label value may be).
pub const LABEL_GENERATED_FOR: &str = "generators.external-secrets.io/external-secret";
/// Label on GeneratorStates: the generator entry ([`entry_key`]) they belong to (hashed when
/// too long for a label value).
pub const LABEL_GENERATOR_ENTRY: &str = "generators.external-secrets.io/entry";
/// Finalizer on an ExternalSecret that has GeneratorStates: removed once every state is
/// cleaned up.
pub const FINALIZER: &str = "generators.external-secrets.io/cleanup";
/// Field manager of the generated Secret and of GeneratorStates.
pub const FIELD_MANAGER: &str = "external-secrets-generators";
/// Label on the generated Secret and on GeneratorStates of a PushSecret's generator: the
/// PushSecret they belong to.
pub const LABEL_GENERATED_FOR_PUSH: &str = "generators.external-secrets.io/push-secret";
/// How many superseded GeneratorStates per stateful generator entry wait for their grace
/// period; an older one is cleaned up at once.
pub const MAX_SUPERSEDED_PER_ENTRY: usize = 2;
/// The default grace period of a superseded GeneratorState.
pub const DEFAULT_STATE_GRACE: Duration = Duration::from_secs(600);

/// The object generated values belong to: an ExternalSecret or a PushSecret.
#[derive(Clone, Debug)]
pub struct Owner {
    /// `ExternalSecret` or `PushSecret`.
    pub kind: &'static str,
    /// The owner's API resource (for the finalizer).
    pub resource: ApiResource,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its uid.
    pub uid: Option<String>,
    /// The controller owner reference to it.
    pub owner_ref: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    /// Whether it carries [`FINALIZER`].
    pub has_finalizer: bool,
    /// The label naming it on the generated Secret and the GeneratorStates.
    pub label: &'static str,
    /// The generated Secret's name.
    pub secret_name: String,
}

impl Owner {
    fn of<K: Resource<DynamicType = ()>>(
        obj: &K,
        kind: &'static str,
        label: &'static str,
        secret_name: String,
    ) -> Self {
        let meta = obj.meta();
        Self {
            kind,
            resource: ApiResource::erase::<K>(&()),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            owner_ref: obj.controller_owner_ref(&()),
            has_finalizer: meta.finalizers.iter().flatten().any(|f| f == FINALIZER),
            label,
            secret_name,
        }
    }

    /// The owner of an ExternalSecret's generated values.
    #[must_use]
    pub fn external_secret(es: &ExternalSecret) -> Self {
        Self::of(
            es,
            "ExternalSecret",
            LABEL_GENERATED_FOR,
            generated_secret_name(&es.name_any()),
        )
    }

    /// The owner of a PushSecret's generated values.
    #[must_use]
    pub fn push_secret(ps: &eso_api::PushSecret) -> Self {
        Self::of(
            ps,
            "PushSecret",
            LABEL_GENERATED_FOR_PUSH,
            bounded(&format!("{}-push-generated", ps.name_any()), 253),
        )
    }

    /// `ExternalSecret "ns/name"`, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} \"{}/{}\"", self.kind, self.namespace, self.name)
    }
}

/// Reads generator objects: a kind of the generators group in a namespace, or a
/// `ClusterGenerator` (`namespace` `None`).
#[async_trait]
pub trait GeneratorSource: Send + Sync {
    /// The object as JSON, `None` when it does not exist.
    async fn generator_object(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<serde_json::Value>, ProviderError>;
}

/// Reads generator objects from the API server.
#[derive(Clone)]
pub struct ApiGenerators {
    client: Client,
}

impl ApiGenerators {
    /// A source using this client.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl GeneratorSource for ApiGenerators {
    async fn generator_object(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<serde_json::Value>, ProviderError> {
        let plural = if kind == CLUSTER_GENERATOR_KIND {
            "clustergenerators".to_owned()
        } else {
            format!("{}s", kind.to_ascii_lowercase())
        };
        let resource = ApiResource {
            group: GENERATORS_GROUP.to_owned(),
            version: GENERATORS_VERSION.to_owned(),
            api_version: GENERATORS_API_VERSION.to_owned(),
            kind: kind.to_owned(),
            plural,
        };
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let described = match namespace {
            Some(ns) => format!("{kind} \"{ns}/{name}\""),
            None => format!("{kind} \"{name}\""),
        };
        match api.get_opt(name).await {
            Ok(found) => Ok(found.map(|o| serde_json::to_value(o).unwrap_or_default())),
            // A kind whose CRD is not installed reads as missing.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(crate::kube_io::kube_error(
                format!("cannot read {described}"),
                e,
            )),
        }
    }
}

/// Generator objects from manifests (`sync-once render`, tests), keyed by kind, namespace
/// (`None` for ClusterGenerators) and name.
#[derive(Debug, Clone, Default)]
pub struct StaticGenerators {
    objects: BTreeMap<(String, Option<String>, String), serde_json::Value>,
}

impl StaticGenerators {
    /// No objects.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an object (its `kind`, `metadata.namespace` and `metadata.name`); a namespaced
    /// kind without a namespace lands in `default_namespace`.
    pub fn insert(&mut self, object: serde_json::Value, default_namespace: &str) {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = (kind != CLUSTER_GENERATOR_KIND).then(|| {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or(default_namespace)
                .to_owned()
        });
        self.objects.insert((kind, namespace, name), object);
    }

    /// Whether no object is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[async_trait]
impl GeneratorSource for StaticGenerators {
    async fn generator_object(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<serde_json::Value>, ProviderError> {
        Ok(self
            .objects
            .get(&(
                kind.to_owned(),
                namespace.map(str::to_owned),
                name.to_owned(),
            ))
            .cloned())
    }
}

/// One generator entry's stored value (a data key of the generated Secret, as JSON).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedEntry {
    /// The generator, e.g. `Password/db` (for people reading the Secret).
    pub generator: String,
    /// When the value was generated (RFC 3339, whole seconds).
    pub generated_at: String,
    /// The ExternalSecret's `metadata.generation` then.
    pub generation: i64,
    /// The GeneratorState recording what to clean up, if the kind left anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The generated data, values base64.
    pub data: BTreeMap<String, String>,
}

impl GeneratedEntry {
    /// An entry for data generated at `at`.
    #[must_use]
    pub fn new(
        generator: String,
        at: Timestamp,
        generation: i64,
        state: Option<String>,
        data: &SecretData,
    ) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            generator,
            generated_at: whole_seconds(at).to_string(),
            generation,
            state,
            data: data
                .iter()
                .map(|(k, v)| (k.clone(), b64.encode(v)))
                .collect(),
        }
    }

    /// When the value was generated; `None` when unreadable.
    #[must_use]
    pub fn generated_at(&self) -> Option<Timestamp> {
        self.generated_at.parse().ok()
    }

    /// The generated data; `None` when a value is not base64.
    #[must_use]
    pub fn secret_data(&self) -> Option<SecretData> {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.data
            .iter()
            .map(|(k, v)| Some((k.clone(), b64.decode(v).ok()?)))
            .collect()
    }
}

fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// The stored values of an ExternalSecret's generator entries, by [`entry_key`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneratedValues {
    /// The entries.
    pub entries: BTreeMap<String, GeneratedEntry>,
}

impl GeneratedValues {
    /// Reads the generated Secret's data; entries that do not parse are dropped (they are
    /// generated again).
    #[must_use]
    pub fn from_secret(secret: &Secret) -> Self {
        let entries = secret
            .data
            .iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), serde_json::from_slice(&v.0).ok()?)))
            .collect();
        Self { entries }
    }

    /// The names of the GeneratorStates the entries point at.
    #[must_use]
    pub fn states(&self) -> BTreeSet<String> {
        self.entries
            .values()
            .filter_map(|e| e.state.clone())
            .collect()
    }
}

/// The name of the Secret that keeps an ExternalSecret's generated values.
#[must_use]
pub fn generated_secret_name(es_name: &str) -> String {
    bounded(&format!("{es_name}-generated"), 253)
}

/// `s` when at most `max` characters, else its start and a hash.
fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let hash = short_hash(s);
    let keep = max.saturating_sub(hash.len() + 1);
    let start: String = s.chars().take(keep).collect();
    format!("{}-{hash}", start.trim_end_matches(['-', '.']))
}

fn short_hash(s: &str) -> String {
    use sha3::Digest as _;
    let digest = sha3::Sha3_256::digest(s.as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// A label value naming `s` (itself when it fits in 63 characters).
fn label_value(s: &str) -> String {
    if s.len() <= 63 {
        s.to_owned()
    } else {
        bounded(s, 63)
    }
}

/// The key of a generator entry in the generated Secret: `<kind>.<name>.<n>`, `n` counting
/// earlier entries with the same generator (each entry gets its own value, as upstream).
#[must_use]
pub fn entry_key(generator: &GeneratorRef, occurrence: usize) -> String {
    bounded(
        &format!(
            "{}.{}.{occurrence}",
            generator.kind.to_ascii_lowercase(),
            generator.name
        ),
        253,
    )
}

/// When an owner's generated values are generated again.
#[derive(Clone, Copy, Debug)]
pub struct RefreshRule<'a> {
    /// The refresh policy (a PushSecret's is `Periodic`).
    pub policy: RefreshPolicy,
    /// The refresh interval.
    pub interval: Duration,
    /// The owner's `metadata.generation`.
    pub generation: i64,
    /// The owner's sync windows.
    pub windows: Option<&'a eso_api::SyncWindows>,
}

impl<'a> RefreshRule<'a> {
    /// An ExternalSecret's rule.
    #[must_use]
    pub fn external_secret(es: &'a ExternalSecret) -> Self {
        Self {
            policy: es.spec.refresh_policy(),
            interval: es
                .spec
                .refresh_interval()
                .unwrap_or(Duration::from_secs(3600)),
            generation: es.metadata.generation.unwrap_or_default(),
            windows: es.spec.sync_windows.as_ref(),
        }
    }

    /// Whether an entry's stored value must be generated again now (see the module docs).
    #[must_use]
    pub fn due(&self, entry: &GeneratedEntry, now: Timestamp) -> bool {
        match self.policy {
            RefreshPolicy::CreatedOnce => false,
            RefreshPolicy::OnChange => entry.generation != self.generation,
            RefreshPolicy::Periodic => {
                if self.interval.is_zero() {
                    return false;
                }
                let Some(at) = entry.generated_at() else {
                    return true;
                };
                // Times are kept in whole seconds (as `status.refreshTime`), so a refresh
                // scheduled from them may come up to a second early.
                let due = self.interval.saturating_sub(Duration::from_secs(1));
                let span = k8s_openapi::jiff::SignedDuration::try_from(due)
                    .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
                at.saturating_add(span).unwrap_or(Timestamp::MAX) <= now
                    && crate::sync_window::allows(self.windows, now)
            }
        }
    }
}

/// Whether an ExternalSecret entry's stored value must be generated again now (see the module
/// docs).
#[must_use]
pub fn regeneration_due(es: &ExternalSecret, entry: &GeneratedEntry, now: Timestamp) -> bool {
    RefreshRule::external_secret(es).due(entry, now)
}

/// What fetching needs to use generators.
#[derive(Clone, Copy)]
pub struct GeneratorFetch<'a> {
    /// The generator kinds.
    pub registry: &'a GeneratorRegistry,
    /// Where generator objects are read from.
    pub objects: &'a dyn GeneratorSource,
    /// The values stored before (empty when none).
    pub previous: &'a GeneratedValues,
    /// The time of this sync.
    pub now: Timestamp,
    /// What `Webhook` generators read Secrets through (upstream reads only Secrets labelled
    /// `external-secrets.io/type: webhook`); `None`: the fetch's reader.
    pub webhook_secrets: Option<&'a dyn SecretReader>,
}

/// A value generated in this sync (not stored yet).
#[derive(Debug, Clone, PartialEq)]
pub struct FreshGeneration {
    /// The entry's key.
    pub key: String,
    /// The generator's name (the object's), for messages and the state's manifest.
    pub name: String,
    /// The generator object's namespace; `None` for a ClusterGenerator.
    pub object_namespace: Option<String>,
    /// The resolved generator (kind and spec).
    pub resolved: ResolvedGenerator,
    /// What the kind left to clean up.
    pub state: Option<serde_json::Value>,
}

impl FreshGeneration {
    /// The GeneratorState's `spec.resource`: the resolved manifest with the object's name.
    #[must_use]
    pub fn manifest(&self) -> serde_json::Value {
        let mut manifest = self.resolved.to_manifest();
        manifest["metadata"] = serde_json::json!({"name": self.name});
        if let Some(ns) = &self.object_namespace {
            manifest["metadata"]["namespace"] = serde_json::json!(ns);
        }
        manifest
    }
}

/// The generator entries of one fetch: every current value and what is new.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneratorOutcome {
    /// The values stored before.
    pub previous: GeneratedValues,
    /// The values now, one per current generator entry.
    pub current: GeneratedValues,
    /// The values generated in this fetch.
    pub fresh: Vec<FreshGeneration>,
    /// Keys of values generated in this fetch, for `sync-once render`.
    pub generated_keys: BTreeSet<String>,
}

impl GeneratorOutcome {
    /// Whether the generated Secret must be written.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.previous != self.current
    }
}

/// Why a generator entry failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The generator object is missing or not a generator.
    #[error("{0}")]
    Object(String),
    /// The generator failed.
    #[error("{message}")]
    Generator {
        /// What was being done.
        message: String,
        /// The generator's error.
        #[source]
        source: GeneratorError,
    },
    /// Reading the generator object failed.
    #[error("{message}")]
    Read {
        /// What was being read.
        message: String,
        /// The API error.
        #[source]
        source: ProviderError,
    },
}

impl GenerateError {
    /// Whether retrying later can help by itself.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Generator { source, .. } => source.kind().is_transient(),
            Self::Read { source, .. } => source.kind().is_transient(),
            Self::Object(_) => false,
        }
    }

    /// Whether only a change of the ExternalSecret can help (an unsupported kind).
    #[must_use]
    pub fn awaits_change(&self) -> bool {
        matches!(self, Self::Generator { source, .. } if source.kind() == eso_generator::ErrorKind::Unsupported)
    }

    /// When the backend asked to be called again.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Generator { source, .. } => source.retry_after(),
            Self::Read { source, .. } => source.retry_after(),
            Self::Object(_) => None,
        }
    }

    /// A PascalCase code for the cause.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Generator { source, .. } => source.reason(),
            Self::Read { source, .. } => source.reason(),
            Self::Object(_) => "GeneratorNotFound",
        }
    }

    /// The message with every cause.
    #[must_use]
    pub fn chain(&self) -> String {
        match self {
            Self::Generator { message, source } => format!("{message}: {}", source.chain()),
            Self::Read { message, source } => format!("{message}: {}", source.chain()),
            Self::Object(m) => m.clone(),
        }
    }
}

/// The readers a generator gets (the same tenancy-checked ones providers get).
#[derive(Clone, Copy)]
pub struct GeneratorReaders<'a> {
    /// Referenced Secrets.
    pub secrets: &'a dyn SecretReader,
    /// Referenced ConfigMaps.
    pub config_maps: &'a dyn ConfigMapReader,
    /// ServiceAccount tokens.
    pub tokens: Option<&'a dyn eso_provider::ServiceAccountTokens>,
}

impl<'a> GeneratorReaders<'a> {
    fn context(&self, namespace: &'a str, object: GeneratorObject<'a>) -> GeneratorContext<'a> {
        let ctx = GeneratorContext::new(namespace, object, self.secrets, self.config_maps);
        match self.tokens {
            Some(tokens) => ctx.with_tokens(tokens),
            None => ctx,
        }
    }
}

/// Generates one entry's value now: reads the generator object, resolves it, generates.
pub(crate) async fn generate_entry(
    gen_ctx: GeneratorFetch<'_>,
    readers: GeneratorReaders<'_>,
    namespace: &str,
    owner: &str,
    key: &str,
    generator: &GeneratorRef,
) -> Result<(SecretData, FreshGeneration), GenerateError> {
    if let Some(api_version) = &generator.api_version
        && api_version != GENERATORS_API_VERSION
    {
        return Err(GenerateError::Object(format!(
            "sourceRef.generatorRef.apiVersion {api_version:?} is not {GENERATORS_API_VERSION}"
        )));
    }
    let cluster = generator.kind == CLUSTER_GENERATOR_KIND;
    if !cluster && GeneratorKind::parse(&generator.kind).is_none() {
        return Err(GenerateError::Object(format!(
            "sourceRef.generatorRef.kind {:?} is not a generator kind",
            generator.kind
        )));
    }
    let object_ns = (!cluster).then_some(namespace);
    let described = match object_ns {
        Some(ns) => format!("{} \"{ns}/{}\"", generator.kind, generator.name),
        None => format!("{CLUSTER_GENERATOR_KIND} \"{}\"", generator.name),
    };
    let object = gen_ctx
        .objects
        .generator_object(&generator.kind, object_ns, &generator.name)
        .await
        .map_err(|source| GenerateError::Read {
            message: format!("reading {described} for {owner}"),
            source,
        })?
        .ok_or_else(|| {
            GenerateError::Object(format!(
                "{described}, referenced by {owner}, does not exist"
            ))
        })?;
    let resolved = ResolvedGenerator::from_object(&object)
        .map_err(|e| GenerateError::Object(format!("{described}: {e}")))?;
    let gen_object = match object_ns {
        Some(ns) => GeneratorObject::namespaced(resolved.kind, &generator.name, ns),
        None => GeneratorObject::cluster(resolved.kind, &generator.name),
    };
    let mut readers = readers;
    if resolved.kind == GeneratorKind::Webhook
        && let Some(webhook_secrets) = gen_ctx.webhook_secrets
    {
        readers.secrets = webhook_secrets;
    }
    let generated = gen_ctx
        .registry
        .generate(
            resolved.kind,
            readers.context(namespace, gen_object),
            &resolved.spec,
        )
        .await
        .map_err(|source| GenerateError::Generator {
            message: format!("generating with {described} for {owner} failed"),
            source,
        })?;
    Ok((
        generated.data,
        FreshGeneration {
            key: key.to_owned(),
            name: generator.name.clone(),
            object_namespace: object_ns.map(str::to_owned),
            resolved,
            state: generated.state,
        },
    ))
}

/// Cleans up what a generation left behind (best effort is the caller's choice).
pub(crate) async fn cleanup_state(
    registry: &GeneratorRegistry,
    readers: GeneratorReaders<'_>,
    namespace: &str,
    manifest: &serde_json::Value,
    state: &serde_json::Value,
) -> Result<(), GeneratorError> {
    let resolved = ResolvedGenerator::from_object(manifest).map_err(|e| {
        GeneratorError::invalid_spec(format!("the recorded generator manifest is unusable: {e}"))
    })?;
    let name = manifest["metadata"]["name"].as_str().unwrap_or("unknown");
    let object = match manifest["metadata"]["namespace"].as_str() {
        Some(ns) => GeneratorObject::namespaced(resolved.kind, name, ns),
        None => GeneratorObject::cluster(resolved.kind, name),
    };
    registry
        .cleanup(
            resolved.kind,
            readers.context(namespace, object),
            &resolved.spec,
            state,
        )
        .await
}

/// A failure storing or cleaning up generated values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The API server refused a read or write.
    #[error("{what}")]
    Kube {
        /// What was being done.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The generated Secret's name is taken by a Secret the owner does not own.
    #[error(
        "Secret \"{namespace}/{name}\" exists and is not owned by {owner}; it keeps the generated values and cannot be used"
    )]
    Taken {
        /// The namespace.
        namespace: String,
        /// The Secret.
        name: String,
        /// The owner, e.g. `ExternalSecret "ns/name"`.
        owner: String,
    },
    /// Cleaning up a state failed with a cause that may go away.
    #[error("cleaning up GeneratorState \"{namespace}/{name}\" failed: {message}")]
    Cleanup {
        /// The namespace.
        namespace: String,
        /// The state.
        name: String,
        /// The cause.
        message: String,
        /// When to try again.
        retry_after: Option<Duration>,
    },
}

impl StoreError {
    /// The underlying API error, if any.
    #[must_use]
    pub fn kube_error(&self) -> Option<&kube::Error> {
        match self {
            Self::Kube { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn kube(what: String) -> impl FnOnce(kube::Error) -> StoreError {
    move |source| StoreError::Kube { what, source }
}

/// Reads and writes an owner's generated Secret and GeneratorStates.
pub(crate) struct GeneratedStore<'a> {
    pub client: &'a Client,
    pub owner: Owner,
    pub registry: &'a GeneratorRegistry,
    pub readers: GeneratorReaders<'a>,
    pub grace: Duration,
}

impl GeneratedStore<'_> {
    fn namespace(&self) -> String {
        self.owner.namespace.clone()
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace())
    }

    fn states(&self) -> Api<GeneratorState> {
        Api::namespaced(self.client.clone(), &self.namespace())
    }

    fn owns(&self, meta: &kube::core::ObjectMeta) -> bool {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| Some(&o.uid) == self.owner.uid.as_ref())
    }

    /// The values stored for this owner (empty when there are none).
    pub(crate) async fn read(&self) -> Result<GeneratedValues, StoreError> {
        let ns = self.namespace();
        let name = self.owner.secret_name.clone();
        let secret = self
            .secrets()
            .get_opt(&name)
            .await
            .map_err(kube(format!("cannot read Secret \"{ns}/{name}\"")))?;
        match secret {
            None => Ok(GeneratedValues::default()),
            Some(s) if self.owns(&s.metadata) => Ok(GeneratedValues::from_secret(&s)),
            Some(_) => Err(StoreError::Taken {
                namespace: ns,
                name,
                owner: self.owner.describe(),
            }),
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        [
            (self.owner.label.to_owned(), label_value(&self.owner.name)),
            (
                eso_api::labels::LABEL_MANAGED.to_owned(),
                eso_api::labels::LABEL_MANAGED_VALUE.to_owned(),
            ),
        ]
        .into()
    }

    /// Stores an outcome: GeneratorStates of fresh stateful values first (with the
    /// finalizer), then the generated Secret, then marks superseded states for collection.
    /// When writing fails, the fresh values' states are cleaned up (they were never used).
    pub(crate) async fn store(
        &self,
        outcome: &mut GeneratorOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !outcome.changed() {
            return Ok(());
        }
        let result = self.store_inner(outcome, now).await;
        if result.is_err() {
            for fresh in &outcome.fresh {
                self.discard(fresh).await;
            }
        }
        result
    }

    async fn store_inner(
        &self,
        outcome: &mut GeneratorOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let ns = self.namespace();
        let es_name = self.owner.name.clone();
        if outcome.fresh.iter().any(|f| f.state.is_some()) {
            self.add_finalizer().await?;
        }
        for fresh in &outcome.fresh {
            let Some(state) = &fresh.state else { continue };
            let name = bounded(
                &format!(
                    "{es_name}-{}",
                    short_hash(&format!(
                        "{}/{}/{}",
                        self.owner.uid.clone().unwrap_or_default(),
                        fresh.key,
                        now
                    ))
                ),
                253,
            );
            let mut object = GeneratorState::new(
                &name,
                GeneratorStateSpec {
                    garbage_collection_deadline: None,
                    resource: fresh.manifest(),
                    state: state.clone(),
                },
            );
            object.metadata.namespace = Some(ns.clone());
            let mut labels = self.labels();
            labels.remove(eso_api::labels::LABEL_MANAGED);
            labels.insert(LABEL_GENERATOR_ENTRY.to_owned(), label_value(&fresh.key));
            object.metadata.labels = Some(labels);
            object.metadata.owner_references = self.owner.owner_ref.clone().map(|o| vec![o]);
            self.states()
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&object),
                )
                .await
                .map_err(kube(format!(
                    "cannot create GeneratorState \"{ns}/{name}\""
                )))?;
            if let Some(entry) = outcome.current.entries.get_mut(&fresh.key) {
                entry.state = Some(name);
            }
        }
        let name = self.owner.secret_name.clone();
        let data: BTreeMap<String, String> = outcome
            .current
            .entries
            .iter()
            .map(|(k, v)| {
                let json = serde_json::to_vec(v).unwrap_or_default();
                (
                    k.clone(),
                    base64::engine::general_purpose::STANDARD.encode(json),
                )
            })
            .collect();
        let secret = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": self.labels(),
                "ownerReferences": self.owner.owner_ref.clone().map(|o| vec![o]),
            },
            "type": "Opaque",
            "data": data,
        });
        self.secrets()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(kube(format!("cannot write Secret \"{ns}/{name}\"")))?;
        // Superseded states: set their deadline now (collected later by `collect`).
        let keep = outcome.current.states();
        for old in outcome.previous.states().difference(&keep) {
            self.set_deadline(old, now).await?;
        }
        Ok(())
    }

    /// Cleans up and forgets a value generated in this sync that will not be used.
    pub(crate) async fn discard(&self, fresh: &FreshGeneration) {
        let Some(state) = &fresh.state else { return };
        if let Err(e) = cleanup_state(
            self.registry,
            self.readers,
            &self.namespace(),
            &fresh.manifest(),
            state,
        )
        .await
        {
            tracing::warn!(error = %e.chain(), "cannot clean up a generated value that was not stored");
        }
    }

    async fn set_deadline(&self, name: &str, now: Timestamp) -> Result<(), StoreError> {
        let ns = self.namespace();
        let deadline = now
            .saturating_add(
                k8s_openapi::jiff::SignedDuration::try_from(self.grace)
                    .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MAX);
        let patch = serde_json::json!({"spec": {"garbageCollectionDeadline": Time(whole_seconds(deadline))}});
        match self
            .states()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(StoreError::Kube {
                what: format!("cannot mark GeneratorState \"{ns}/{name}\" superseded"),
                source,
            }),
        }
    }

    async fn add_finalizer(&self) -> Result<(), StoreError> {
        if self.owner.has_finalizer {
            return Ok(());
        }
        self.apply_finalizer(true).await
    }

    /// Adds or removes [`FINALIZER`] by server-side apply under [`FIELD_MANAGER`]
    /// (`metadata.finalizers` is a set: other finalizers are left alone).
    async fn apply_finalizer(&self, present: bool) -> Result<(), StoreError> {
        let ns = self.namespace();
        let name = self.owner.name.clone();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &ns, &self.owner.resource);
        let finalizers: Vec<&str> = if present { vec![FINALIZER] } else { Vec::new() };
        let patch = serde_json::json!({
            "apiVersion": self.owner.resource.api_version,
            "kind": self.owner.kind,
            "metadata": {"name": name, "namespace": ns, "finalizers": finalizers},
        });
        match api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(StoreError::Kube {
                what: format!("cannot update the finalizers of {}", self.owner.describe()),
                source,
            }),
        }
    }

    async fn list_states(&self) -> Result<Vec<GeneratorState>, StoreError> {
        let ns = self.namespace();
        let selector = format!("{}={}", self.owner.label, label_value(&self.owner.name));
        let list = self
            .states()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube(format!(
                "cannot list the GeneratorStates of namespace {ns}"
            )))?;
        Ok(list
            .items
            .into_iter()
            .filter(|s| self.owns(&s.metadata))
            .collect())
    }

    /// Cleans up one state and deletes it. A permanent cleanup failure is reported as a
    /// warning and the state deleted anyway (what it records may be gone already, and
    /// keeping it would block the ExternalSecret for ever); a transient one is returned.
    async fn release(&self, state: &GeneratorState) -> Result<Option<String>, StoreError> {
        let ns = self.namespace();
        let name = state.name_any();
        let mut warning = None;
        if let Err(e) = cleanup_state(
            self.registry,
            self.readers,
            &ns,
            &state.spec.resource,
            &state.spec.state,
        )
        .await
        {
            if e.kind().is_transient() {
                return Err(StoreError::Cleanup {
                    namespace: ns,
                    name,
                    message: e.chain(),
                    retry_after: e.retry_after(),
                });
            }
            warning = Some(format!(
                "cleaning up GeneratorState \"{ns}/{name}\" failed, deleting it anyway: {}",
                e.chain()
            ));
        }
        match self.states().delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(warning),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(warning),
            Err(source) => Err(StoreError::Kube {
                what: format!("cannot delete GeneratorState \"{ns}/{name}\""),
                source,
            }),
        }
    }

    /// Collects superseded states past their deadline (or beyond the bound), marks
    /// unreferenced states without a deadline, and drops the finalizer when nothing is left.
    /// Returns warnings and when to look again.
    pub(crate) async fn collect(
        &self,
        current: &GeneratedValues,
        now: Timestamp,
    ) -> Result<(Vec<String>, Option<Duration>), StoreError> {
        let states = self.list_states().await?;
        let referenced = current.states();
        let mut warnings = Vec::new();
        let mut next: Option<Duration> = None;
        let mut superseded: BTreeMap<String, Vec<&GeneratorState>> = BTreeMap::new();
        for state in &states {
            if referenced.contains(&state.name_any()) {
                continue;
            }
            let Some(deadline) = &state.spec.garbage_collection_deadline else {
                self.set_deadline(&state.name_any(), now).await?;
                next = min_some(next, Some(self.grace));
                continue;
            };
            if deadline.0 <= now {
                warnings.extend(self.release(state).await?);
                continue;
            }
            let entry = state
                .labels()
                .get(LABEL_GENERATOR_ENTRY)
                .cloned()
                .unwrap_or_default();
            superseded.entry(entry).or_default().push(state);
        }
        for (_, mut waiting) in superseded {
            waiting.sort_by_key(|s| s.spec.garbage_collection_deadline.as_ref().map(|t| t.0));
            let over = waiting.len().saturating_sub(MAX_SUPERSEDED_PER_ENTRY);
            for state in &waiting[..over] {
                warnings.extend(self.release(state).await?);
            }
            for state in &waiting[over..] {
                if let Some(deadline) = &state.spec.garbage_collection_deadline {
                    let left = Duration::try_from(deadline.0.duration_since(now))
                        .unwrap_or(Duration::ZERO);
                    next = min_some(next, Some(left));
                }
            }
        }
        // The finalizer goes with the last state (listed again only then).
        if referenced.is_empty() && self.owner.has_finalizer && self.list_states().await?.is_empty()
        {
            self.apply_finalizer(false).await?;
        }
        Ok((warnings, next))
    }

    /// The ExternalSecret is being deleted: clean up every state, then drop the finalizer.
    pub(crate) async fn finalize(&self) -> Result<Vec<String>, StoreError> {
        let mut warnings = Vec::new();
        for state in self.list_states().await? {
            warnings.extend(self.release(&state).await?);
        }
        self.apply_finalizer(false).await?;
        Ok(warnings)
    }
}

fn min_some(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether an ExternalSecret carries the generator cleanup finalizer.
#[must_use]
pub fn has_finalizer(es: &ExternalSecret) -> bool {
    es.meta()
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

/// The generator references of an ExternalSecret's `dataFrom[]`, with their entry keys.
#[must_use]
pub fn generator_entries(es: &ExternalSecret) -> Vec<(usize, String, &GeneratorRef)> {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, entry) in es.spec.data_from.iter().enumerate() {
        let Some(generator) = entry
            .source_ref
            .as_ref()
            .and_then(|s| s.generator_ref.as_ref())
        else {
            continue;
        };
        let n = seen
            .entry((generator.kind.clone(), generator.name.clone()))
            .or_default();
        out.push((i, entry_key(generator, *n), generator));
        *n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(policy: &str, interval: &str, generation: i64) -> ExternalSecret {
        let mut es: ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "apps"},
            "spec": {"refreshPolicy": policy, "refreshInterval": interval, "dataFrom": [
                {"sourceRef": {"generatorRef": {"kind": "Password", "name": "pw"}}},
                {"extract": {"key": "x"}},
                {"sourceRef": {"generatorRef": {"kind": "Password", "name": "pw"}}},
            ]}
        }))
        .unwrap();
        es.metadata.generation = Some(generation);
        es
    }

    fn entry(at: i64, generation: i64) -> GeneratedEntry {
        GeneratedEntry::new(
            "Password/pw".into(),
            Timestamp::from_second(at).unwrap(),
            generation,
            None,
            &SecretData::new(),
        )
    }

    #[test]
    fn each_generator_entry_has_its_own_key() {
        let es = es("Periodic", "1h", 1);
        let keys: Vec<_> = generator_entries(&es)
            .into_iter()
            .map(|(i, k, _)| (i, k))
            .collect();
        assert_eq!(
            keys,
            vec![
                (0, "password.pw.0".to_owned()),
                (2, "password.pw.1".to_owned())
            ]
        );
    }

    #[test]
    fn the_refresh_policy_alone_decides_when_a_value_is_generated_again() {
        let t = 1_800_000_000;
        let now = |s| Timestamp::from_second(t + s).unwrap();
        let periodic = es("Periodic", "1h", 1);
        assert!(!regeneration_due(&periodic, &entry(t, 1), now(1800)));
        assert!(regeneration_due(&periodic, &entry(t, 1), now(3600)));
        // A spec change does not matter under Periodic.
        assert!(!regeneration_due(
            &es("Periodic", "1h", 7),
            &entry(t, 1),
            now(60)
        ));
        assert!(!regeneration_due(
            &es("Periodic", "0", 1),
            &entry(t, 1),
            now(1 << 30)
        ));
        let once = es("CreatedOnce", "1h", 1);
        assert!(!regeneration_due(&once, &entry(t, 1), now(1 << 30)));
        assert!(!regeneration_due(
            &es("OnChange", "1h", 1),
            &entry(t, 1),
            now(1 << 30)
        ));
        assert!(regeneration_due(
            &es("OnChange", "1h", 2),
            &entry(t, 1),
            now(1)
        ));
    }

    #[test]
    fn stored_entries_read_back_with_their_data() {
        let data: SecretData = [("password".to_owned(), b"s3cr3t".to_vec())].into();
        let e = GeneratedEntry::new(
            "Password/pw".into(),
            Timestamp::from_second(1_800_000_000).unwrap(),
            3,
            Some("state".into()),
            &data,
        );
        let json = serde_json::to_vec(&e).unwrap();
        let back: GeneratedEntry = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.secret_data(), Some(data));
        assert_eq!(back.generated_at, "2027-01-15T08:00:00Z");
    }

    #[test]
    fn names_stay_within_kubernetes_limits() {
        let long = "a".repeat(260);
        assert_eq!(generated_secret_name("db"), "db-generated");
        assert!(generated_secret_name(&long).len() <= 253);
        assert!(label_value(&long).len() <= 63);
        assert_ne!(label_value(&long), label_value(&"a".repeat(259)));
    }
}
