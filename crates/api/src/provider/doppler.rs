//! `spec.provider.doppler`: Doppler (upstream's `secretstore_doppler_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{SecretKeySelector, ServiceAccountSelector};

/// A Doppler store. `project` and `config` are required unless the token is a service token
/// (which is bound to one config).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerProvider {
    /// How the operator authenticates (exactly one of `secretRef` and `oidcConfig`).
    pub auth: DopplerAuth,
    /// The Doppler project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The Doppler config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Renames secrets to an environment-variable style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_transformer: Option<DopplerNameTransformer>,
    /// Downloads all secrets as one file in this format (a single value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DopplerFormat>,
}

/// Doppler credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerAuth {
    /// A Doppler token in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<DopplerAuthSecretRef>,
    /// OIDC: a ServiceAccount token exchanged for a Doppler token.
    #[serde(
        default,
        rename = "oidcConfig",
        skip_serializing_if = "Option::is_none"
    )]
    pub oidc_config: Option<DopplerOidcAuth>,
}

/// The Secret key holding a Doppler token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerAuthSecretRef {
    /// The token; `key` defaults to `dopplerToken`.
    pub doppler_token: SecretKeySelector,
}

/// OIDC authentication with a Kubernetes ServiceAccount token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DopplerOidcAuth {
    /// The Doppler service account identity configured for OIDC.
    pub identity: String,
    /// The ServiceAccount whose token is exchanged.
    pub service_account_ref: ServiceAccountSelector,
    /// The lifetime of the ServiceAccount token, in seconds. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 600))]
    pub expiration_seconds: Option<i64>,
}

impl DopplerOidcAuth {
    /// `expirationSeconds` with upstream's default (600) applied.
    #[must_use]
    pub fn expiration_seconds(&self) -> i64 {
        self.expiration_seconds.unwrap_or(600)
    }
}

/// Doppler's name transformers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum DopplerNameTransformer {
    /// `UpperCamel`.
    #[serde(rename = "upper-camel")]
    UpperCamel,
    /// `camelCase`.
    #[serde(rename = "camel")]
    Camel,
    /// `lower_snake`.
    #[serde(rename = "lower-snake")]
    LowerSnake,
    /// `TF_VAR_lower_snake`.
    #[serde(rename = "tf-var")]
    TfVar,
    /// .NET environment style (`Upper__Camel`).
    #[serde(rename = "dotnet-env")]
    DotnetEnv,
    /// `lower-kebab`.
    #[serde(rename = "lower-kebab")]
    LowerKebab,
}

impl DopplerNameTransformer {
    /// The wire value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpperCamel => "upper-camel",
            Self::Camel => "camel",
            Self::LowerSnake => "lower-snake",
            Self::TfVar => "tf-var",
            Self::DotnetEnv => "dotnet-env",
            Self::LowerKebab => "lower-kebab",
        }
    }
}

/// Doppler's download formats.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum DopplerFormat {
    /// A JSON object.
    #[serde(rename = "json")]
    Json,
    /// .NET `appsettings.json` style.
    #[serde(rename = "dotnet-json")]
    DotnetJson,
    /// `KEY="value"` lines.
    #[serde(rename = "env")]
    Env,
    /// YAML.
    #[serde(rename = "yaml")]
    Yaml,
    /// Docker `--env-file` lines.
    #[serde(rename = "docker")]
    Docker,
}

impl DopplerFormat {
    /// The wire value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::DotnetJson => "dotnet-json",
            Self::Env => "env",
            Self::Yaml => "yaml",
            Self::Docker => "docker",
        }
    }
}
