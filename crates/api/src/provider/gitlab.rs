//! `spec.provider.gitlab`: GitLab CI/CD variables (upstream's `secretstore_gitlab_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CaProvider;
use crate::common::SecretKeySelector;

/// A GitLab store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitlabProvider {
    /// The GitLab instance URL. Default `https://gitlab.com/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How to authenticate.
    pub auth: GitlabAuth,
    /// The project whose variables are read.
    #[serde(default, rename = "projectID", skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Whether the project's ancestor groups are read too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit_from_groups: Option<bool>,
    /// Groups whose variables are read, left to right, before the project's.
    #[serde(default, rename = "groupIDs", skip_serializing_if = "Vec::is_empty")]
    pub group_ids: Vec<String>,
    /// The `environment_scope` of the variables to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// A base64-encoded PEM CA bundle (Go's `[]byte` JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap holding the CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
}

impl GitlabProvider {
    /// The URL with upstream's default (`https://gitlab.com/`) applied.
    #[must_use]
    pub fn url(&self) -> &str {
        self.url
            .as_deref()
            .filter(|u| !u.is_empty())
            .unwrap_or("https://gitlab.com/")
    }

    /// Whether ancestor groups are read (default false).
    #[must_use]
    pub fn inherit_from_groups(&self) -> bool {
        self.inherit_from_groups.unwrap_or(false)
    }
}

/// GitLab credentials (upstream spells the field `SecretRef`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GitlabAuth {
    /// Where the access token is.
    #[serde(rename = "SecretRef")]
    pub secret_ref: GitlabSecretRef,
}

/// The Secret holding the access token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitlabSecretRef {
    /// A personal, group or project access token.
    #[serde(default)]
    pub access_token: SecretKeySelector,
}
