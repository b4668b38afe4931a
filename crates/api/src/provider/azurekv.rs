//! `spec.provider.azurekv`: Azure Key Vault (upstream's `secretstore_azurekv_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{SecretKeySelector, ServiceAccountSelector};

/// An Azure Key Vault store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKvProvider {
    /// How to authenticate. Default `ServicePrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ServicePrincipal"))]
    pub auth_type: Option<AzureAuthType>,
    /// The vault's URL, e.g. `https://my-vault.vault.azure.net`.
    #[serde(rename = "vaultUrl")]
    pub vault_url: String,
    /// The tenant; required for `ServicePrincipal`.
    #[serde(default, rename = "tenantId", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The Azure cloud. Default `PublicCloud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "PublicCloud"))]
    pub environment_type: Option<AzureEnvironmentType>,
    /// Credentials from Secrets; required for `ServicePrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<AzureKvAuth>,
    /// The ServiceAccount for `WorkloadIdentity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// Which managed identity to use when the pod has several.
    #[serde(
        default,
        rename = "identityId",
        skip_serializing_if = "Option::is_none"
    )]
    pub identity_id: Option<String>,
    /// Use the azcore-based SDK upstream (experimental there). Default `false`.
    #[serde(
        default,
        rename = "useAzureSDK",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = false))]
    pub use_azure_sdk: Option<bool>,
    /// Custom endpoints; required with `environmentType: AzureStackCloud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_cloud_config: Option<AzureCustomCloudConfig>,
}

impl AzureKvProvider {
    /// The auth type with upstream's default (`ServicePrincipal`) applied.
    #[must_use]
    pub fn auth_type(&self) -> AzureAuthType {
        self.auth_type.unwrap_or_default()
    }

    /// The environment with upstream's default (`PublicCloud`) applied.
    #[must_use]
    pub fn environment_type(&self) -> AzureEnvironmentType {
        self.environment_type.unwrap_or_default()
    }
}

/// How to authenticate to Azure.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum AzureAuthType {
    /// A service principal (tenant, client ID and secret or certificate).
    #[default]
    ServicePrincipal,
    /// The pod's managed identity.
    ManagedIdentity,
    /// A ServiceAccount federated with Entra ID.
    WorkloadIdentity,
}

/// The Azure cloud whose endpoints are used.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum AzureEnvironmentType {
    /// Azure public cloud.
    #[default]
    PublicCloud,
    /// Azure US Government.
    #[serde(rename = "USGovernmentCloud")]
    UsGovernmentCloud,
    /// Azure China.
    ChinaCloud,
    /// Azure Germany.
    GermanCloud,
    /// Azure Stack Hub / Edge; needs `customCloudConfig`.
    AzureStackCloud,
}

/// Service-principal or managed-identity credentials from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKvAuth {
    /// The client ID.
    #[serde(default, rename = "clientId", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<SecretKeySelector>,
    /// The tenant ID.
    #[serde(default, rename = "tenantId", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<SecretKeySelector>,
    /// The client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretKeySelector>,
    /// The client certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<SecretKeySelector>,
}

/// Custom Azure endpoints (Azure Stack, or China with Workload Identity).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureCustomCloudConfig {
    /// The Entra ID (AAD) endpoint.
    pub active_directory_endpoint: String,
    /// The Key Vault endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_vault_endpoint: Option<String>,
    /// The DNS suffix of Key Vault URLs.
    #[serde(
        default,
        rename = "keyVaultDNSSuffix",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_vault_dns_suffix: Option<String>,
    /// The Resource Manager endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_manager_endpoint: Option<String>,
    /// The token audience for Workload Identity (present in some upstream releases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}
