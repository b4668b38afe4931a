//! `spec.provider.gcpsm`: Google Secret Manager (upstream's `secretstore_gcpsm_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{SecretKeySelector, ServiceAccountSelector};

/// A Google Secret Manager store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpsmProvider {
    /// Credentials; without them the controller's own identity is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<GcpsmAuth>,
    /// The project holding the secrets.
    #[serde(default, rename = "projectID", skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// A location for regional secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What to do when `latest` is disabled or destroyed. Default `LatestOrFail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "LatestOrFail"))]
    pub secret_version_selection_policy: Option<GcpSecretVersionSelectionPolicy>,
}

impl GcpsmProvider {
    /// The version selection policy with upstream's default (`LatestOrFail`) applied.
    #[must_use]
    pub fn secret_version_selection_policy(&self) -> GcpSecretVersionSelectionPolicy {
        self.secret_version_selection_policy.unwrap_or_default()
    }
}

/// How the `latest` version is resolved.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum GcpSecretVersionSelectionPolicy {
    /// Always read `latest`; fail when it is disabled or destroyed.
    #[default]
    LatestOrFail,
    /// Fall back to the newest enabled version.
    LatestOrFetch,
}

/// GCP credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpsmAuth {
    /// A service-account key in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<GcpsmAuthSecretRef>,
    /// GKE Workload Identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<GcpWorkloadIdentity>,
    /// Workload Identity Federation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity_federation: Option<GcpWorkloadIdentityFederation>,
}

/// A service-account key in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpsmAuthSecretRef {
    /// The JSON key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_secret_ref: Option<SecretKeySelector>,
}

/// GKE Workload Identity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpWorkloadIdentity {
    /// The ServiceAccount bound to a Google service account.
    pub service_account_ref: ServiceAccountSelector,
    /// The cluster's location; read from the metadata server when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_location: Option<String>,
    /// The cluster's name; read from the metadata server when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// The cluster's project; read from the metadata server when unset.
    #[serde(
        default,
        rename = "clusterProjectID",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_project_id: Option<String>,
}

/// Workload Identity Federation: an external token exchanged for a Google access token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpWorkloadIdentityFederation {
    /// A ConfigMap key holding an external-account credential configuration (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_config: Option<GcpConfigMapReference>,
    /// A ServiceAccount whose tokens are exchanged (Kubernetes as identity provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// AWS credentials, when AWS is the identity provider and no metadata server is reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_security_credentials: Option<GcpAwsCredentialsConfig>,
    /// The STS audience (pool and provider); required with `serviceAccountRef` or
    /// `awsSecurityCredentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The expected `credential_source.url` of `credConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_token_endpoint: Option<String>,
    /// A Google service account to impersonate after the exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1),
        regex(pattern = r"^.*@.*\.iam\.gserviceaccount\.com$")
    )]
    pub gcp_service_account_email: Option<String>,
}

/// A key of a ConfigMap (upstream's `ConfigMapReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpConfigMapReference {
    /// The ConfigMap's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The ConfigMap's namespace; the store's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// The key.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// AWS credentials for federation (upstream's `AwsCredentialsConfig`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpAwsCredentialsConfig {
    /// The AWS region.
    #[schemars(length(min = 1, max = 50), regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: String,
    /// A Secret with `aws_access_key_id`, `aws_secret_access_key` and optionally
    /// `aws_session_token`.
    pub aws_credentials_secret_ref: GcpSecretReference,
}

/// A whole Secret (upstream's `SecretReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretReference {
    /// The Secret's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The Secret's namespace; the store's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}
