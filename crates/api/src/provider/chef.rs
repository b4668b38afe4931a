//! `spec.provider.chef`: Chef Infra Server data bags (upstream's `secretstore_chef_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::SecretKeySelector;

/// A Chef Infra Server store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChefProvider {
    /// How to authenticate against the Chef server.
    pub auth: ChefAuth,
    /// The user (or client) name on the Chef server.
    pub username: String,
    /// The Chef server URL, ending in `/`; with organizations, the organization's URL
    /// (`https://chef.example.com/organizations/ORG/`).
    pub server_url: String,
}

/// Chef credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChefAuth {
    /// Where the signing key is.
    pub secret_ref: ChefAuthSecretRef,
}

/// The Secret holding the signing key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChefAuthSecretRef {
    /// The user's private key (PEM) that signs every request.
    pub private_key_secret_ref: SecretKeySelector,
}
