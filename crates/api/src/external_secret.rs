//! `ExternalSecret` (`external-secrets.io/v1`): which remote data to fetch and how to write it
//! into a Kubernetes Secret.
//!
//! Optional fields stay `Option` (or empty collections that are skipped on output) so that a
//! manifest read and written back keeps exactly the fields it had; upstream's defaults are
//! applied by the accessor methods (`ExternalSecretSpec::refresh_interval`, ...).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Condition;
use crate::duration::{DurationError, parse_go_duration};

/// Upstream's default `refreshInterval`.
pub const DEFAULT_REFRESH_INTERVAL: &str = "1h0m0s";

/// The desired state of an ExternalSecret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ExternalSecret",
    namespaced,
    status = "ExternalSecretStatus",
    shortname = "es",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "ExternalSecret fetches data from a secret store and writes it into a Kubernetes Secret.",
    printcolumn = r#"{"name":"StoreType","type":"string","jsonPath":".spec.secretStoreRef.kind"}"#,
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.refreshTime"}"#,
    selectable = ".spec.secretStoreRef.name",
    selectable = ".spec.secretStoreRef.kind",
    selectable = ".spec.target.name",
    selectable = ".spec.refreshInterval"
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// The store to read from; optional when every entry names its own `sourceRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,
    /// The Secret to write. Defaults to `{creationPolicy: Owner, deletionPolicy: Retain}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {"creationPolicy": "Owner", "deletionPolicy": "Retain"}))]
    pub target: Option<ExternalSecretTarget>,
    /// When to refresh: `Periodic` (the behaviour when empty), `OnChange` or `CreatedOnce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_policy: Option<RefreshPolicy>,
    /// How often to refresh, as a Go duration; `0` syncs once. Default `1h0m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "1h0m0s"))]
    pub refresh_interval: Option<String>,
    /// Time windows in which periodic refreshes are allowed or denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<SyncWindows>,
    /// Single values, each written to one key of the Secret. Applied after `dataFrom`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ExternalSecretData>,
    /// Maps of values (extract, find or generator), merged in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

impl ExternalSecretSpec {
    /// The refresh interval with upstream's default (1h) applied; zero means "sync once".
    pub fn refresh_interval(&self) -> Result<Duration, DurationError> {
        parse_go_duration(
            self.refresh_interval
                .as_deref()
                .unwrap_or(DEFAULT_REFRESH_INTERVAL),
        )
    }

    /// The refresh policy with upstream's default (`Periodic`) applied.
    #[must_use]
    pub fn refresh_policy(&self) -> RefreshPolicy {
        self.refresh_policy.unwrap_or_default()
    }

    /// The creation policy with upstream's default (`Owner`) applied.
    #[must_use]
    pub fn creation_policy(&self) -> CreationPolicy {
        self.target
            .as_ref()
            .and_then(|t| t.creation_policy)
            .unwrap_or_default()
    }

    /// The deletion policy with upstream's default (`Retain`) applied.
    #[must_use]
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.target
            .as_ref()
            .and_then(|t| t.deletion_policy)
            .unwrap_or_default()
    }

    /// The template of the target, if any.
    #[must_use]
    pub fn template(&self) -> Option<&ExternalSecretTemplate> {
        self.target.as_ref().and_then(|t| t.template.as_ref())
    }
}

impl ExternalSecret {
    /// The name of the target Secret: `spec.target.name`, else the ExternalSecret's own name.
    #[must_use]
    pub fn target_name(&self) -> String {
        self.spec
            .target
            .as_ref()
            .and_then(|t| t.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

/// When an ExternalSecret is refreshed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum RefreshPolicy {
    /// Only until the first successful sync (a deleted or edited target is still repaired).
    CreatedOnce,
    /// Every `refreshInterval`, and whenever the ExternalSecret changes.
    #[default]
    Periodic,
    /// Only when the ExternalSecret's spec, labels or annotations change.
    OnChange,
}

/// A reference to a SecretStore or ClusterSecretStore.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// The store's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,
    /// `SecretStore` (the default when empty) or `ClusterSecretStore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreKind>,
}

impl SecretStoreRef {
    /// The kind with the default (`SecretStore`) applied.
    #[must_use]
    pub fn kind(&self) -> StoreKind {
        self.kind.unwrap_or_default()
    }
}

/// The kind of store a reference points at.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum StoreKind {
    /// A namespaced SecretStore in the ExternalSecret's namespace.
    #[default]
    SecretStore,
    /// A cluster-scoped ClusterSecretStore.
    ClusterSecretStore,
}

impl StoreKind {
    /// The kind's name as written in manifests.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretStore => "SecretStore",
            Self::ClusterSecretStore => "ClusterSecretStore",
        }
    }
}

/// Time windows that gate periodic refreshes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindows {
    /// Whether refreshes are allowed only inside the windows or denied inside them.
    pub kind: SyncWindowKind,
    /// The windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1))]
    pub windows: Vec<SyncWindow>,
}

/// Whether a sync window allows or denies refreshes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum SyncWindowKind {
    /// Refreshes happen only inside a window.
    #[default]
    Allow,
    /// Refreshes do not happen inside a window.
    Deny,
}

/// One window: a cron schedule (UTC) and how long each opening lasts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// A 5-field cron expression or a descriptor such as `@daily`.
    #[schemars(
        length(min = 1),
        regex(
            pattern = r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [^\s]+.*|[^\s]+( [^\s]+){4})$"
        )
    )]
    pub schedule: String,
    /// A Go duration.
    pub duration: String,
}

/// The Secret an ExternalSecret writes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// The Secret's name; defaults to the ExternalSecret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,
    /// Who creates and owns the Secret. Default `Owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Owner"))]
    pub creation_policy: Option<CreationPolicy>,
    /// What happens to the Secret when the provider's data is gone. Default `Retain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Retain"))]
    pub deletion_policy: Option<DeletionPolicy>,
    /// How the Secret's data, type and metadata are rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
    /// Mark the Secret immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// A generic target (ConfigMap or custom resource) instead of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestReference>,
}

/// A generic target's kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestReference {
    /// The target's apiVersion, e.g. `v1`.
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// The target's kind, e.g. `ConfigMap`.
    #[schemars(length(min = 1))]
    pub kind: String,
}

/// Who creates and owns the target Secret.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum CreationPolicy {
    /// Create the Secret and own it (it is garbage-collected with the ExternalSecret).
    #[default]
    Owner,
    /// Create the Secret without an owner reference.
    Orphan,
    /// Only merge into an existing Secret; never create one.
    Merge,
    /// Create if missing, merge if present; no owner reference.
    CreateOrMerge,
    /// Do not write any Secret.
    None,
}

impl CreationPolicy {
    /// The policy's name as written in manifests.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "Owner",
            Self::Orphan => "Orphan",
            Self::Merge => "Merge",
            Self::CreateOrMerge => "CreateOrMerge",
            Self::None => "None",
        }
    }
}

/// What happens to the target Secret when all provider data is gone.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum DeletionPolicy {
    /// Delete the Secret.
    Delete,
    /// Remove only the keys this ExternalSecret wrote.
    Merge,
    /// Keep the Secret as it is.
    #[default]
    Retain,
}

impl DeletionPolicy {
    /// The policy's name as written in manifests.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "Delete",
            Self::Merge => "Merge",
            Self::Retain => "Retain",
        }
    }
}

/// How the target Secret is rendered from the fetched data.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplate {
    /// The Secret's type; keeps the existing type (Opaque on create) when unset.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The template engine; only `v2` exists. Default `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "v2"))]
    pub engine_version: Option<TemplateEngineVersion>,
    /// Labels, annotations and finalizers of the Secret (labels and annotations are templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ExternalSecretTemplateMetadata>,
    /// Whether the fetched data is replaced by the templates or merged under them. Default
    /// `Replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Replace"))]
    pub merge_policy: Option<TemplateMergePolicy>,
    /// Templates for single keys; they win over `templateFrom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Templates taken from ConfigMaps, Secrets or literals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_from: Vec<TemplateFrom>,
}

impl ExternalSecretTemplate {
    /// The merge policy with the default (`Replace`) applied.
    #[must_use]
    pub fn merge_policy(&self) -> TemplateMergePolicy {
        self.merge_policy.unwrap_or_default()
    }
}

/// The template engine version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum TemplateEngineVersion {
    /// Go text/template with ESO's function set (the only engine upstream still has).
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// How templates combine with the fetched data.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum TemplateMergePolicy {
    /// Only the rendered templates end up in the Secret.
    #[default]
    Replace,
    /// The fetched data is copied, and the rendered templates are written over it.
    Merge,
}

/// Metadata of the target Secret set through the template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplateMetadata {
    /// Annotations (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Finalizers added to the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// One source of templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFrom {
    /// Templates from a ConfigMap in the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    /// Templates from a Secret in the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
    /// Where the rendered output goes: `Data` (default), `Annotations` or `Labels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Data"))]
    pub target: Option<String>,
    /// A template given inline; rendered as YAML keys and values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// How rendered values are decoded before they are written. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_decoding_strategy: Option<DecodingStrategy>,
}

/// A ConfigMap or Secret holding templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// The object's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The keys to use.
    #[serde(default)]
    pub items: Vec<TemplateRefItem>,
}

/// One key of a template source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    /// The key in the ConfigMap or Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
    /// `Values` (the value is one template for that key, the default) or `KeysAndValues` (the
    /// rendered text is YAML holding keys and values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Values"))]
    pub template_as: Option<TemplateScope>,
}

/// How a template source is interpreted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum TemplateScope {
    /// The rendered text is the value of the key of the same name.
    #[default]
    Values,
    /// The rendered text is a YAML map of keys and values.
    KeysAndValues,
}

/// One `data[]` entry: a single remote value written to one key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// The key in the target Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub secret_key: String,
    /// What to read.
    pub remote_ref: ExternalSecretDataRemoteRef,
    /// A store for this entry only, overriding `spec.secretStoreRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreSourceRef>,
}

/// A remote value: key, optional property and version, and how to convert it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataRemoteRef {
    /// The key (name or path) in the provider.
    pub key: String,
    /// A property inside the value (a gjson-style path for JSON values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// A version of the value, where the provider has versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `Fetch` reads the value's metadata instead of its data. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<MetadataPolicy>,
    /// How keys are converted to valid Secret keys. Default `Default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,
    /// How values are decoded. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,
    /// What to do with values holding NUL bytes. Default `Ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// Whether data or metadata is read.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum MetadataPolicy {
    /// Read the value.
    #[default]
    None,
    /// Read the value's metadata (tags, labels, custom metadata).
    Fetch,
}

/// How keys that are not valid Secret keys are converted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum ConversionStrategy {
    /// Replace each invalid character with `_`.
    #[default]
    Default,
    /// Replace each invalid character with `_UXXXX_` (its code point).
    Unicode,
}

/// How fetched values are decoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum DecodingStrategy {
    /// Try standard base64, then URL-safe base64, else keep the value.
    Auto,
    /// Standard base64; an invalid value is an error.
    Base64,
    /// URL-safe base64; an invalid value is an error.
    #[serde(rename = "Base64URL")]
    Base64Url,
    /// Keep the value as it is.
    #[default]
    None,
}

/// What to do with values that hold NUL bytes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum NullBytePolicy {
    /// Keep them.
    #[default]
    Ignore,
    /// Fail the sync.
    Fail,
}

/// A per-entry store for `data[]`; exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct StoreSourceRef {
    /// The store.
    #[serde(default, rename = "storeRef", skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
    /// Deprecated for `data[]`; not implemented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// A per-entry store or generator for `dataFrom[]`; exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct StoreGeneratorSourceRef {
    /// The store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
    /// A generator that produces the values instead of a store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// A reference to a generator resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// Default `generators.external-secrets.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generators.external-secrets.io/v1alpha1"))]
    pub api_version: Option<String>,
    /// The generator's kind, e.g. `Password`.
    pub kind: String,
    /// The generator's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}

/// One `dataFrom[]` entry: a map of values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataFromRemoteRef {
    /// Read one remote value and split it into keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<ExternalSecretDataRemoteRef>,
    /// Read every remote value that matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<ExternalSecretFind>,
    /// Key rewrites, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<ExternalSecretRewrite>,
    /// A store or generator for this entry only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreGeneratorSourceRef>,
}

/// Which remote values `find` matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretFind {
    /// A path prefix to search under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Match by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    /// Match by tags (all must match).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// How keys are converted. Default `Default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,
    /// How values are decoded. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,
    /// What to do with values holding NUL bytes. Default `Ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// Match by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindName {
    /// A regular expression (RE2 syntax) matched against the remote key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
}

/// One key rewrite; exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct ExternalSecretRewrite {
    /// Replace by regular expression (Go's `ReplaceAllString`, `$1`/`${name}` references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    /// Rewrite each key through a template over `.value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
    /// Parse every value as a JSON object and merge them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<RewriteMerge>,
}

/// A regular-expression key rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteRegexp {
    /// The expression.
    pub source: String,
    /// The replacement.
    pub target: String,
}

/// A template key rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteTransform {
    /// A Go template over `.value` (the key).
    pub template: String,
}

/// Merge JSON values into one map.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteMerge {
    /// The key that receives the merged object; required with strategy `JSON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Keys merged last, in this order (they win).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,
    /// `Strict` (default): a missing priority key is an error; `IgnoreNotFound`: it is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Strict"))]
    pub priority_policy: Option<MergePriorityPolicy>,
    /// `Error` (default): a key in two values is an error; `Ignore`: the later one wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Error"))]
    pub conflict_policy: Option<MergeConflictPolicy>,
    /// `Extract` (default): the merged keys become Secret keys; `JSON`: the merged object is
    /// written as JSON into `into`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Extract"))]
    pub strategy: Option<MergeStrategy>,
}

/// What a missing priority key means.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum MergePriorityPolicy {
    /// It is an error.
    #[default]
    Strict,
    /// It is skipped.
    IgnoreNotFound,
}

/// What a key present in two merged values means.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum MergeConflictPolicy {
    /// It is an error.
    #[default]
    Error,
    /// The later value wins.
    Ignore,
}

/// How a merge writes its result.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum MergeStrategy {
    /// Each merged key becomes a Secret key.
    #[default]
    Extract,
    /// The merged object is written as JSON into `into`.
    #[serde(rename = "JSON")]
    Json,
}

/// The observed state of an ExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// When the last successful refresh started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<Time>,
    /// `"<generation>-<hash of labels and annotations>"` of the last synced version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// Conditions; `Ready` is the one that matters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The target Secret (servicebinding.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<SecretBinding>,
}

/// A local object reference to the target Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretBinding {
    /// The Secret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Condition types, reasons and event reasons upstream uses for ExternalSecrets.
pub mod reasons {
    /// The condition type that reports whether the Secret is in sync.
    pub const CONDITION_READY: &str = "Ready";
    /// The condition type set (in metrics) for a deleted ExternalSecret.
    pub const CONDITION_DELETED: &str = "Deleted";
    /// Ready=True: the Secret was written.
    pub const SECRET_SYNCED: &str = "SecretSynced";
    /// Ready=False: the sync failed.
    pub const SECRET_SYNCED_ERROR: &str = "SecretSyncedError";
    /// Ready=True: the Secret was deleted (deletionPolicy Delete).
    pub const SECRET_DELETED: &str = "SecretDeleted";
    /// Ready=True: creationPolicy Merge and the Secret does not exist yet.
    pub const SECRET_MISSING: &str = "SecretMissing";
    /// Event: the Secret was created.
    pub const EVENT_CREATED: &str = "Created";
    /// Event: the Secret was updated.
    pub const EVENT_UPDATED: &str = "Updated";
    /// Event: the Secret was deleted.
    pub const EVENT_DELETED: &str = "Deleted";
    /// Warning event: the sync failed.
    pub const EVENT_UPDATE_FAILED: &str = "UpdateFailed";
    /// Normal event: a provider secret is missing and was skipped.
    pub const EVENT_MISSING_PROVIDER_SECRET: &str = "MissingProviderSecret";
}
