//! `PushSecret` and `ClusterPushSecret` (`external-secrets.io/v1alpha1`): write data of a
//! Kubernetes Secret (or a generator) into one or more secret stores.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Condition;
use crate::duration::{DurationError, parse_go_duration};
use crate::external_secret::{
    ExternalSecretTemplate, GeneratorRef, RewriteRegexp, RewriteTransform, StoreKind,
};

/// Upstream's default PushSecret `refreshInterval`.
pub const DEFAULT_PUSH_REFRESH_INTERVAL: &str = "1h0m0s";

/// The desired state of a PushSecret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "PushSecret",
    namespaced,
    status = "PushSecretStatus",
    shortname = "ps",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "PushSecret writes data of a Kubernetes Secret into external secret stores.",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.refreshTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSpec {
    /// How often to push, as a Go duration. Default `1h0m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "1h0m0s"))]
    pub refresh_interval: Option<String>,
    /// The stores to push to.
    pub secret_store_refs: Vec<PushSecretStoreRef>,
    /// `Replace` (default) overwrites remote values; `IfNotExists` only creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Replace"))]
    pub update_policy: Option<PushSecretUpdatePolicy>,
    /// `None` (default) leaves remote values behind; `Delete` removes them when they are no
    /// longer pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "None"))]
    pub deletion_policy: Option<PushSecretDeletionPolicy>,
    /// The source: a Secret or a generator (exactly one).
    pub selector: PushSecretSelector,
    /// Single keys to push.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PushSecretData>,
    /// Bulk pushes that expand the source Secret's keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_to: Vec<PushSecretDataTo>,
    /// A template applied to the source data before it is pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
}

impl PushSecretSpec {
    /// The refresh interval with upstream's default (1h) applied.
    pub fn refresh_interval(&self) -> Result<Duration, DurationError> {
        parse_go_duration(
            self.refresh_interval
                .as_deref()
                .unwrap_or(DEFAULT_PUSH_REFRESH_INTERVAL),
        )
    }

    /// The update policy with upstream's default (`Replace`) applied.
    #[must_use]
    pub fn update_policy(&self) -> PushSecretUpdatePolicy {
        self.update_policy.unwrap_or_default()
    }

    /// The deletion policy with upstream's default (`None`) applied.
    #[must_use]
    pub fn deletion_policy(&self) -> PushSecretDeletionPolicy {
        self.deletion_policy.unwrap_or_default()
    }
}

/// A store, or stores chosen by label, to push to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStoreRef {
    /// The store's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,
    /// Stores whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// `SecretStore` (default) or `ClusterSecretStore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "SecretStore"))]
    pub kind: Option<StoreKind>,
}

impl PushSecretStoreRef {
    /// The kind with the default (`SecretStore`) applied.
    #[must_use]
    pub fn kind(&self) -> StoreKind {
        self.kind.unwrap_or_default()
    }
}

/// Whether existing remote values are overwritten.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum PushSecretUpdatePolicy {
    /// Overwrite.
    #[default]
    Replace,
    /// Only create values that do not exist.
    IfNotExists,
}

/// What happens to remote values that are no longer pushed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum PushSecretDeletionPolicy {
    /// Delete them (a finalizer is added to the PushSecret and its stores).
    Delete,
    /// Leave them.
    #[default]
    None,
}

/// How pushed keys are converted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum PushSecretConversionStrategy {
    /// Keep keys as they are.
    #[default]
    None,
    /// Turn `_UXXXX_` sequences back into characters (the reverse of `Unicode`).
    ReverseUnicode,
}

/// The source of a PushSecret; exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct PushSecretSelector {
    /// A Secret in the PushSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<PushSecretSecret>,
    /// A generator whose output is pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// The source Secret(s).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSecret {
    /// A Secret by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,
    /// Secrets by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// One key to push.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretData {
    /// Which key goes where.
    #[serde(rename = "match")]
    pub match_: PushSecretMatch,
    /// Provider-specific metadata (free JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub metadata: Option<serde_json::Value>,
    /// How keys are converted. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "None"))]
    pub conversion_strategy: Option<PushSecretConversionStrategy>,
}

/// A source key and its remote destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretMatch {
    /// The source key; empty pushes the whole Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// The destination.
    pub remote_ref: PushSecretRemoteRef,
}

/// A remote destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretRemoteRef {
    /// The remote key.
    pub remote_key: String,
    /// A property inside the remote value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// A bulk push.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretDataTo {
    /// The store to push to (name or label selector required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<PushSecretStoreRef>,
    /// Push every matched key bundled as one JSON object under this key; excludes `rewrite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_key: Option<String>,
    /// Which source keys; all when unset.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<PushSecretDataToMatch>,
    /// Key rewrites, in order (per-key mode only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<PushSecretRewrite>,
    /// Provider-specific metadata (free JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub metadata: Option<serde_json::Value>,
    /// How keys are converted. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "None"))]
    pub conversion_strategy: Option<PushSecretConversionStrategy>,
}

/// Which source keys a bulk push takes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretDataToMatch {
    /// A regular expression matched against keys; all keys when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
}

/// A key rewrite for a bulk push; exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretRewrite {
    /// Replace by regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    /// Rewrite through a template over `.value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
}

/// The observed state of a PushSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStatus {
    /// When the last successful push started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<Time>,
    /// `"<generation>-<hash>"` of the last pushed version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// What was pushed: store name → remote key → data entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub synced_push_secrets: BTreeMap<String, BTreeMap<String, PushSecretData>>,
    /// Conditions; `Ready` with reasons `Synced`, `Errored` or `SourceDeleted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The desired state of a ClusterPushSecret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "ClusterPushSecret",
    status = "ClusterPushSecretStatus",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "ClusterPushSecret creates the same PushSecret in every namespace its selectors match.",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretSpec {
    /// The spec of the PushSecrets to create.
    pub push_secret_spec: PushSecretSpec,
    /// How often namespaces are re-checked, as a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
    /// The name of the PushSecrets; defaults to the ClusterPushSecret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub push_secret_name: Option<String>,
    /// Labels and annotations of the PushSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret_metadata: Option<PushSecretMetadata>,
    /// Namespace selectors, ORed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
}

/// Labels and annotations set on the created PushSecrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretMetadata {
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The observed state of a ClusterPushSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretStatus {
    /// Namespaces where the PushSecret could not be written, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<ClusterPushSecretNamespaceFailure>,
    /// Namespaces holding a PushSecret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// The name of the created PushSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret_name: Option<String>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A namespace the PushSecret could not be written to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretNamespaceFailure {
    /// The namespace.
    pub namespace: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Condition reasons upstream uses for PushSecrets.
pub mod push_reasons {
    /// Ready=True: everything was pushed.
    pub const SYNCED: &str = "Synced";
    /// Ready=False: a push failed.
    pub const ERRORED: &str = "Errored";
    /// Ready=False: the source Secret is gone.
    pub const SOURCE_DELETED: &str = "SourceDeleted";
}

fn free_json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}
