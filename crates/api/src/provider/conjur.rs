//! `spec.provider.conjur`: CyberArk Conjur (upstream's `secretstore_conjur_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CaProvider;
use crate::common::{SecretKeySelector, ServiceAccountSelector};

/// A CyberArk Conjur store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConjurProvider {
    /// The Conjur appliance URL.
    pub url: String,
    /// A PEM CA bundle that signs the Conjur server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap holding the CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
    /// How to authenticate; exactly one method.
    pub auth: ConjurAuth,
}

/// Conjur authentication methods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConjurAuth {
    /// A host or user login and its API key (`authn`).
    #[serde(default, rename = "apikey", skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ConjurApiKey>,
    /// A JWT (`authn-jwt`): a ServiceAccount token or a token kept in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<ConjurJwt>,
}

/// API key authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConjurApiKey {
    /// The Conjur account (organization).
    pub account: String,
    /// The Secret key holding the login (`host/app` or a user name).
    pub user_ref: SecretKeySelector,
    /// The Secret key holding the API key.
    pub api_key_ref: SecretKeySelector,
}

/// JWT authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConjurJwt {
    /// The Conjur account (organization).
    pub account: String,
    /// The `authn-jwt` service id.
    #[serde(rename = "serviceID")]
    pub service_id: String,
    /// The host to log in as, when the authenticator does not take it from the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// A Secret key holding the JWT (key `token` when none is named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
    /// A ServiceAccount whose token (TokenRequest API) is the JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}
