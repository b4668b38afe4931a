//! `ClusterExternalSecret` (`external-secrets.io/v1`, cluster-scoped): one ExternalSecret spec
//! fanned out to every matching namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ConditionStatus;
use crate::duration::{DurationError, parse_go_duration};
use crate::external_secret::ExternalSecretSpec;

/// The controller's requeue period for a ClusterExternalSecret without `refreshTime`.
pub const DEFAULT_CES_REFRESH_TIME: &str = "1h";

/// The desired state of a ClusterExternalSecret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterExternalSecret",
    status = "ClusterExternalSecretStatus",
    shortname = "ces",
    category = "external-secrets",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "ClusterExternalSecret creates the same ExternalSecret in every namespace its selectors match.",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.externalSecretSpec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretSpec {
    /// The spec of the ExternalSecrets to create.
    pub external_secret_spec: ExternalSecretSpec,
    /// The name of the ExternalSecrets; defaults to the ClusterExternalSecret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub external_secret_name: Option<String>,
    /// Labels and annotations of the ExternalSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_metadata: Option<ExternalSecretMetadata>,
    /// Deprecated upstream (use `namespaceSelectors`): one namespace selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespace selectors, ORed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Deprecated upstream: namespaces by name, ORed with the selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    ))]
    pub namespaces: Vec<String>,
    /// How often namespaces are re-checked, as a Go duration; the controller's default is 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
}

impl ClusterExternalSecretSpec {
    /// The requeue period with the controller's default (1h) applied.
    pub fn refresh_time(&self) -> Result<Duration, DurationError> {
        parse_go_duration(
            self.refresh_time
                .as_deref()
                .unwrap_or(DEFAULT_CES_REFRESH_TIME),
        )
    }
}

impl ClusterExternalSecret {
    /// The name of the ExternalSecrets to create: `spec.externalSecretName`, else the
    /// ClusterExternalSecret's own name.
    #[must_use]
    pub fn external_secret_name(&self) -> String {
        self.spec
            .external_secret_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

/// Labels and annotations set on the created ExternalSecrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretMetadata {
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The observed state of a ClusterExternalSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatus {
    /// The name of the created ExternalSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_name: Option<String>,
    /// Namespaces where the ExternalSecret could not be written, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<ClusterExternalSecretNamespaceFailure>,
    /// Namespaces holding an ExternalSecret (sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// Conditions; only `Ready`, without reason or transition time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterExternalSecretStatusCondition>,
}

/// A namespace the ExternalSecret could not be written to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretNamespaceFailure {
    /// The namespace.
    pub namespace: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A ClusterExternalSecret condition (upstream's has no reason and no transition time).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatusCondition {
    /// The condition type; upstream only writes `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
