//! `spec.provider.webhook`: a generic templated HTTP call (upstream's
//! `secretstore_webhook_types.go`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CaProvider;
use crate::common::SecretKeySelector;

/// A webhook store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookProvider {
    /// The HTTP method. Default `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The URL to call (a template).
    pub url: String,
    /// Request headers (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// An authentication protocol; exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<WebhookAuth>,
    /// The request body (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The request timeout, as a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// How to read the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WebhookResult>,
    /// Secrets made available to the templates under their names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<WebhookSecret>,
    /// A base64-encoded PEM CA bundle (Go's `[]byte` JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap holding the CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
}

impl WebhookProvider {
    /// The method with the default (`GET`) applied.
    #[must_use]
    pub fn method(&self) -> &str {
        self.method
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or("GET")
    }
}

/// A webhook authentication protocol (upstream's `AuthorizationProtocol`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct WebhookAuth {
    /// NTLM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntlm: Option<WebhookNtlmAuth>,
}

/// NTLM credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookNtlmAuth {
    /// The username.
    pub username_secret: SecretKeySelector,
    /// The password.
    pub password_secret: SecretKeySelector,
}

/// How the response is turned into a value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResult {
    /// A JSONPath into the response; the whole body when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
}

/// A Secret made available to the templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecret {
    /// The name templates use.
    pub name: String,
    /// The Secret (all its keys are exposed).
    pub secret_ref: SecretKeySelector,
}
