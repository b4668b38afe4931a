//! `SecretStore` and `ClusterSecretStore` (`external-secrets.io/v1`): where secrets live and how
//! to authenticate there.

use std::time::Duration;

use std::borrow::Cow;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::core::{ClusterResourceScope, Resource};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Condition;
use crate::provider::SecretStoreProvider;

/// The desired state of a SecretStore or ClusterSecretStore (both share one spec).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "SecretStore",
    namespaced,
    status = "SecretStoreStatus",
    shortname = "ss",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "SecretStore describes a namespaced secret store and how to authenticate to it.",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// The controller class; stores of another class are ignored by this controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The provider; exactly one key.
    pub provider: SecretStoreProvider,
    /// Retry settings read by some providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<SecretStoreRetrySettings>,
    /// How often the store is validated: seconds as an integer, or a Go duration string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<IntOrDuration>,
    /// ClusterSecretStore only: which namespaces may use the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

impl SecretStoreSpec {
    /// The controller class with the default (empty, meaning "any controller") applied.
    #[must_use]
    pub fn controller_class(&self) -> &str {
        self.controller.as_deref().unwrap_or("")
    }

    /// The store's validation interval, if set and non-zero.
    pub fn refresh_interval(&self) -> Result<Option<Duration>, crate::duration::DurationError> {
        let d = match &self.refresh_interval {
            None => return Ok(None),
            Some(IntOrDuration::Int(secs)) => Duration::from_secs((*secs).max(0) as u64),
            Some(IntOrDuration::Duration(s)) => crate::duration::parse_go_duration(s)?,
        };
        Ok((!d.is_zero()).then_some(d))
    }
}

/// A cluster-scoped store that ExternalSecrets of any allowed namespace can use. It shares
/// [`SecretStoreSpec`] with [`SecretStore`]; `spec.conditions` limits the namespaces.
///
/// kube's derive makes one kind per spec type, so this root type is written by hand; its CRD is
/// the SecretStore CRD with the names and scope changed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStore {
    /// Always `external-secrets.io/v1`.
    #[serde(default = "cluster_secret_store_api_version")]
    pub api_version: String,
    /// Always `ClusterSecretStore`.
    #[serde(default = "cluster_secret_store_kind")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The store.
    pub spec: SecretStoreSpec,
    /// The observed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SecretStoreStatus>,
}

fn cluster_secret_store_api_version() -> String {
    crate::V1.to_owned()
}

fn cluster_secret_store_kind() -> String {
    "ClusterSecretStore".to_owned()
}

impl ClusterSecretStore {
    /// A ClusterSecretStore with the given name and spec.
    #[must_use]
    pub fn new(name: &str, spec: SecretStoreSpec) -> Self {
        Self {
            api_version: cluster_secret_store_api_version(),
            kind: cluster_secret_store_kind(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

impl Resource for ClusterSecretStore {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("ClusterSecretStore")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(crate::GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(crate::V1)
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("clustersecretstores")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl CustomResourceExt for ClusterSecretStore {
    fn crd() -> CustomResourceDefinition {
        let mut crd = SecretStore::crd();
        crd.metadata.name = Some(Self::crd_name().to_owned());
        crd.spec.scope = "Cluster".to_owned();
        let names = &mut crd.spec.names;
        names.kind = "ClusterSecretStore".to_owned();
        names.plural = "clustersecretstores".to_owned();
        names.singular = Some("clustersecretstore".to_owned());
        names.list_kind = Some("ClusterSecretStoreList".to_owned());
        names.short_names = Some(vec!["css".to_owned()]);
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                schema.description = Some(
                    "ClusterSecretStore describes a cluster-wide secret store that ExternalSecrets \
                     of the namespaces its conditions allow can use."
                        .to_owned(),
                );
            }
        }
        crd
    }
    fn crd_name() -> &'static str {
        "clustersecretstores.external-secrets.io"
    }
    fn api_resource() -> kube::core::ApiResource {
        kube::core::ApiResource::erase::<Self>(&())
    }
    fn shortnames() -> &'static [&'static str] {
        &["css"]
    }
}

/// An integer number of seconds or a Go duration string.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
#[schemars(schema_with = "int_or_string_schema")]
pub enum IntOrDuration {
    /// Seconds (legacy form).
    Int(i64),
    /// A Go duration such as `5m`.
    Duration(String),
}

fn int_or_string_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-int-or-string": true })
}

/// Retry settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRetrySettings {
    /// How many times a failed call is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    /// How long to wait between retries, as a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<String>,
}

/// A ClusterSecretStore condition: the namespaces allowed to use the store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    /// Namespaces whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces whose name matches one of these regular expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// The observed state of a store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    /// Conditions; `Ready` is the one that matters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the provider can do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<SecretStoreCapabilities>,
}

/// What a store's provider can do.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum SecretStoreCapabilities {
    /// Read only.
    ReadOnly,
    /// Write only (push).
    WriteOnly,
    /// Read and write.
    ReadWrite,
}

/// Condition and event reasons upstream uses for stores.
pub mod store_reasons {
    /// The store was validated.
    pub const VALID: &str = "Valid";
    /// The provider configuration is invalid or validation failed.
    pub const INVALID_PROVIDER_CONFIG: &str = "InvalidProviderConfig";
    /// The provider cannot validate; reported with Ready=True.
    pub const VALIDATION_UNKNOWN: &str = "ValidationUnknown";
    /// Event: the provider is not maintained.
    pub const STORE_UNMAINTAINED: &str = "StoreUnmaintained";
}
