//! `VaultDynamicSecret`: one request to Vault or OpenBao whose answer is the generated data
//! (upstream's `types_vault.go`).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::provider::VaultProvider;
use crate::secret_store::SecretStoreRetrySettings;

/// A dynamic secret request.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "VaultDynamicSecret",
    plural = "vaultdynamicsecrets",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "VaultDynamicSecret generates data with one request to Vault (or OpenBao): database credentials, certificates, tokens."
)]
#[serde(rename_all = "camelCase")]
pub struct VaultDynamicSecretSpec {
    /// Selects the controller class that handles this generator (think
    /// `ingress.ingressClassName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The HTTP method: `GET` (the default), `LIST`, `DELETE`, or a write (`POST`, `PUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The body of a write (any method but `GET`, `LIST` and `DELETE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::free_json_schema")]
    pub parameters: Option<serde_json::Value>,
    /// Query parameters of a `GET`; each key may carry several values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub get_parameters: BTreeMap<String, Vec<String>>,
    /// Which part of the answer is the data: `Data` (the default; the `data` section),
    /// `Auth` (the `auth` section, e.g. for `auth/token/create`) or `Raw` (the whole answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Data"))]
    pub result_type: Option<VaultDynamicSecretResultType>,
    /// Retries of failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<SecretStoreRetrySettings>,
    /// The Vault server and how to log in, as a Vault store's `spec.provider.vault`.
    pub provider: VaultProvider,
    /// The API path, without `/v1/`, e.g. `database/creds/app`.
    pub path: String,
    /// Succeed with no data when Vault answers with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub allow_empty_response: Option<bool>,
}

impl VaultDynamicSecretSpec {
    /// The method in upper case, `GET` when unset.
    #[must_use]
    pub fn method(&self) -> String {
        match self.method.as_deref().map(str::trim) {
            None | Some("") => "GET".to_owned(),
            Some(m) => m.to_ascii_uppercase(),
        }
    }

    /// `resultType` with its default (`Data`).
    #[must_use]
    pub fn result_type(&self) -> VaultDynamicSecretResultType {
        self.result_type.unwrap_or_default()
    }

    /// `allowEmptyResponse` with its default (false).
    #[must_use]
    pub fn allow_empty_response(&self) -> bool {
        self.allow_empty_response.unwrap_or(false)
    }
}

/// Which part of Vault's answer a `VaultDynamicSecret` returns.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum VaultDynamicSecretResultType {
    /// The `data` section.
    #[default]
    Data,
    /// The `auth` section.
    Auth,
    /// The whole answer.
    Raw,
}
