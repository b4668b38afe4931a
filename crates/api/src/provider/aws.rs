//! `spec.provider.aws`: AWS Secrets Manager, Parameter Store and Certificate Manager
//! (upstream's `secretstore_aws_types.go`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{SecretKeySelector, ServiceAccountSelector};

/// An AWS store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsProvider {
    /// Which AWS service holds the secrets.
    pub service: AwsService,
    /// The AWS region.
    pub region: String,
    /// Credentials; without them the SDK's default chain is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,
    /// A role ARN to assume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Role ARNs assumed in order before `role`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_roles: Vec<String>,
    /// The external ID for assumed roles.
    #[serde(
        default,
        rename = "externalID",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// STS session tags for assumed roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_tags: Vec<AwsTag>,
    /// Transitive session tag keys for role chaining.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// Which automatic session tags are added. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "None"))]
    pub session_tags_policy: Option<AwsSessionTagsPolicy>,
    /// Extra session tags when `sessionTagsPolicy` is `Custom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_session_tags: BTreeMap<String, String>,
    /// A prefix added to every remote key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Secrets Manager deletion settings (PushSecret with `deletionPolicy: Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<AwsSecretsManager>,
}

impl AwsProvider {
    /// The session tags policy with upstream's default (`None`) applied.
    #[must_use]
    pub fn session_tags_policy(&self) -> AwsSessionTagsPolicy {
        self.session_tags_policy.unwrap_or_default()
    }
}

/// The AWS service a store reads.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum AwsService {
    /// AWS Secrets Manager.
    #[default]
    SecretsManager,
    /// AWS Systems Manager Parameter Store.
    ParameterStore,
    /// AWS Certificate Manager (alpha upstream).
    CertificateManager,
}

impl AwsService {
    /// The service's name as written in manifests.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretsManager => "SecretsManager",
            Self::ParameterStore => "ParameterStore",
            Self::CertificateManager => "CertificateManager",
        }
    }
}

/// Which STS session tags are added when a role is assumed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum AwsSessionTagsPolicy {
    /// No tags.
    #[default]
    None,
    /// `esoNamespace`, `esoStoreName` and `esoStoreKind`.
    Simple,
    /// The `Simple` tags plus `customSessionTags`.
    Custom,
}

/// AWS credentials; at most one of `secretRef` and `jwt`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuth {
    /// Static credentials from Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<AwsAuthSecretRef>,
    /// A ServiceAccount with IRSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<AwsJwtAuth>,
}

/// Static AWS credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuthSecretRef {
    /// The access key ID.
    #[serde(
        default,
        rename = "accessKeyIDSecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id_secret_ref: Option<SecretKeySelector>,
    /// The secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_secret_ref: Option<SecretKeySelector>,
    /// The session token, for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_secret_ref: Option<SecretKeySelector>,
}

/// A ServiceAccount used for IRSA.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsJwtAuth {
    /// The ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

/// An STS session tag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsTag {
    /// The tag key.
    pub key: String,
    /// The tag value.
    pub value: String,
}

/// Secrets Manager deletion settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretsManager {
    /// Delete without a recovery window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_delete_without_recovery: Option<bool>,
    /// The recovery window in days (7 to 30; AWS's default is 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_window_in_days: Option<i64>,
}
