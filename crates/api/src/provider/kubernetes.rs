//! `spec.provider.kubernetes`: Secrets of the same or another Kubernetes cluster
//! (upstream's `secretstore_kubernetes_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CaProvider;
use crate::common::{SecretKeySelector, ServiceAccountSelector};

/// Upstream's default `remoteNamespace`.
pub const DEFAULT_KUBERNETES_REMOTE_NAMESPACE: &str = "default";
/// Upstream's default `server.url`.
pub const DEFAULT_KUBERNETES_SERVER_URL: &str = "kubernetes.default";

/// Reads Secrets from a Kubernetes API server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesProvider {
    /// The namespace to read Secrets from. Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        extend("default" = "default"),
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub remote_namespace: Option<String>,
    /// The API server's address and trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<KubernetesServer>,
    /// How to authenticate; exactly one method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<KubernetesAuth>,
    /// A Secret key holding a kubeconfig, instead of `server` and `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_ref: Option<SecretKeySelector>,
}

impl KubernetesProvider {
    /// The remote namespace with upstream's default (`default`) applied.
    #[must_use]
    pub fn remote_namespace(&self) -> &str {
        self.remote_namespace
            .as_deref()
            .unwrap_or(DEFAULT_KUBERNETES_REMOTE_NAMESPACE)
    }
}

/// The API server to talk to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServer {
    /// The server's URL. Default `kubernetes.default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "kubernetes.default"))]
    pub url: Option<String>,
    /// A base64-encoded PEM CA bundle (Go's `[]byte` JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap holding the CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
}

impl KubernetesServer {
    /// The URL with upstream's default (`kubernetes.default`) applied.
    #[must_use]
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(DEFAULT_KUBERNETES_SERVER_URL)
    }
}

/// How to authenticate to the API server; exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct KubernetesAuth {
    /// A client certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<KubernetesCertAuth>,
    /// A static bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<KubernetesTokenAuth>,
    /// A ServiceAccount whose token is requested through the TokenRequest API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSelector>,
}

/// Client-certificate authentication (upstream's `CertAuth`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesCertAuth {
    /// The PEM client certificate.
    pub client_cert: SecretKeySelector,
    /// The PEM private key.
    pub client_key: SecretKeySelector,
}

/// Static-token authentication (upstream's `TokenAuth`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesTokenAuth {
    /// The bearer token.
    pub bearer_token: SecretKeySelector,
}
