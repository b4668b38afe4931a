//! `ClusterGenerator`: a cluster-scoped wrapper around any generator kind (upstream's
//! `types_cluster.go`), and `GeneratorState`: what a stateful generator left behind, kept so it
//! can be cleaned up (upstream's `generator_state_types.go`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ECRAuthorizationTokenSpec, FakeSpec, GeneratorKind, PasswordSpec, SSHKeySpec,
    STSSessionTokenSpec, UUIDSpec, VaultDynamicSecretSpec, WebhookSpec, free_json_schema,
};
use crate::common::Condition;

/// A cluster-wide generator that `generatorRef` fields can name from any namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "ClusterGenerator",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "ClusterGenerator represents a cluster-wide generator which can be referenced as part of `generatorRef` fields."
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGeneratorSpec {
    /// The kind of the wrapped generator.
    pub kind: GeneratorKind,
    /// The wrapped generator's spec, under the key that matches `kind`.
    pub generator: GeneratorSpec,
}

/// One generator spec, under the key named after its kind (`passwordSpec`, ...). The kinds
/// eso-rs implements are typed; the others are kept as they are.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct GeneratorSpec {
    /// `ACRAccessToken` (not implemented by eso-rs; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub acr_access_token_spec: Option<serde_json::Value>,
    /// `BeyondtrustWorkloadCredentialsDynamicSecret` (not implemented; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub beyondtrust_workload_credentials_dynamic_secret_spec: Option<serde_json::Value>,
    /// `CloudsmithAccessToken` (not implemented; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub cloudsmith_access_token_spec: Option<serde_json::Value>,
    /// `CodeArtifactAuthorizationToken` (not implemented; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub code_artifact_authorization_token_spec: Option<serde_json::Value>,
    /// `ECRAuthorizationToken`.
    #[serde(
        default,
        rename = "ecrAuthorizationTokenSpec",
        skip_serializing_if = "Option::is_none"
    )]
    pub ecr_authorization_token_spec: Option<ECRAuthorizationTokenSpec>,
    /// `Fake`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake_spec: Option<FakeSpec>,
    /// `GCRAccessToken` (not implemented; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub gcr_access_token_spec: Option<serde_json::Value>,
    /// `GithubAccessToken` (not implemented; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub github_access_token_spec: Option<serde_json::Value>,
    /// `QuayAccessToken` (not implemented; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub quay_access_token_spec: Option<serde_json::Value>,
    /// `Password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_spec: Option<PasswordSpec>,
    /// `SSHKey`.
    #[serde(
        default,
        rename = "sshKeySpec",
        skip_serializing_if = "Option::is_none"
    )]
    pub ssh_key_spec: Option<SSHKeySpec>,
    /// `STSSessionToken`.
    #[serde(
        default,
        rename = "stsSessionTokenSpec",
        skip_serializing_if = "Option::is_none"
    )]
    pub sts_session_token_spec: Option<STSSessionTokenSpec>,
    /// `UUID`.
    #[serde(default, rename = "uuidSpec", skip_serializing_if = "Option::is_none")]
    pub uuid_spec: Option<UUIDSpec>,
    /// `VaultDynamicSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_dynamic_secret_spec: Option<VaultDynamicSecretSpec>,
    /// `Webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_spec: Option<WebhookSpec>,
    /// `Grafana` (not implemented; kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub grafana_spec: Option<serde_json::Value>,
    /// `MFA` (not implemented; kept as JSON).
    #[serde(default, rename = "mfaSpec", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_json_schema")]
    pub mfa_spec: Option<serde_json::Value>,
}

impl GeneratorSpec {
    /// The spec keys that are set, in field order.
    #[must_use]
    pub fn keys(&self) -> Vec<&'static str> {
        let Ok(serde_json::Value::Object(map)) = serde_json::to_value(self) else {
            return Vec::new();
        };
        GeneratorKind::ALL
            .iter()
            .map(|k| k.spec_key())
            .filter(|key| map.contains_key(*key))
            .collect()
    }
}

/// The label on a GeneratorState that names the object it belongs to (upstream's
/// `GeneratorStateLabelOwnerKey`), used to find every state of one owner.
pub const GENERATOR_STATE_OWNER_LABEL: &str = "generators.external-secrets.io/owner-key";

/// The state a stateful generator produced, with the generator manifest that produced it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "GeneratorState",
    namespaced,
    status = "GeneratorStateStatus",
    shortname = "gs",
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "GeneratorState records what a generator produced that needs cleaning up later (a Vault lease, a token), with a snapshot of the generator manifest that produced it.",
    printcolumn = r#"{"name":"GC Deadline","type":"string","jsonPath":".spec.garbageCollectionDeadline"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorStateSpec {
    /// When the state is deleted (and cleaned up); never when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garbage_collection_deadline: Option<Time>,
    /// A snapshot of the generator manifest that produced the state; cleanup uses it, so the
    /// credentials it references must still exist then.
    #[schemars(schema_with = "free_json_schema")]
    pub resource: serde_json::Value,
    /// What the generator returned for its cleanup (e.g. a Vault lease id).
    #[schemars(schema_with = "free_json_schema")]
    pub state: serde_json::Value,
}

/// The observed state of a GeneratorState.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorStateStatus {
    /// Conditions; `Ready` with reason `Created` or `Error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Condition reasons upstream uses on GeneratorStates.
pub mod generator_state_reasons {
    /// The state was recorded.
    pub const CREATED: &str = "Created";
    /// Recording or cleaning up the state failed.
    pub const ERROR: &str = "Error";
}
