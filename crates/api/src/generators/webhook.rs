//! `Webhook`: a templated HTTP call whose JSON answer is the generated data (upstream's
//! `types_webhook.go`). Its fields are the webhook provider's, except that `secrets[]` name
//! Secrets in the namespace of the object that uses the generator.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::provider::{CaProvider, WebhookAuth, WebhookResult};

/// The label a Secret in `secrets[]` must carry for the Webhook generator to read it, as
/// upstream enforces (`external-secrets.io/type: webhook`).
pub const WEBHOOK_SECRET_LABEL: (&str, &str) = ("external-secrets.io/type", "webhook");

/// A webhook call.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Webhook",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "Webhook connects to a third party API server to handle the secrets generation configuration parameters in spec. You can specify the server, the token, and additional body parameters. See documentation for the full API specification for requests and responses."
)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
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
    /// How to read the response: a JSONPath to the JSON object holding the data.
    pub result: WebhookResult,
    /// Secrets made available to the templates under their names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<WebhookGeneratorSecret>,
    /// A base64-encoded PEM CA bundle (Go's `[]byte` JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap holding the CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
}

/// A Secret made available to the templates (upstream's generator `WebhookSecret`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookGeneratorSecret {
    /// The name templates use.
    pub name: String,
    /// The Secret (all its keys are exposed).
    pub secret_ref: GeneratorSecretKeySelector,
}

/// A Secret in the namespace of the object using the generator (upstream's generator
/// `SecretKeySelector`, which has no namespace).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorSecretKeySelector {
    /// The name of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,
    /// A key in the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: Option<String>,
}
