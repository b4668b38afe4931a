//! `spec.provider.vault` (HashiCorp Vault KV v1/v2) and `spec.provider.openBao`
//! (upstream's `secretstore_vault_types.go`).
//!
//! Upstream gives OpenBao its own, smaller type (`OpenBaoProvider`: server, path, version,
//! namespace, caBundle, caProvider and auth by token, appRole or userPass). Every one of those
//! fields has the same name and shape in [`VaultProvider`], so eso-rs reads `openBao` with the
//! Vault type: every upstream OpenBao manifest parses and round-trips unchanged.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CaProvider, GcpWorkloadIdentity, GcpsmAuthSecretRef};
use crate::common::{SecretKeySelector, ServiceAccountSelector};

/// A Vault (or OpenBao) KV store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultProvider {
    /// The server's address, e.g. `https://vault.example.com:8200`.
    pub server: String,
    /// The KV mount path, e.g. `secret` (`/data` is appended for v2 when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The KV engine version. Default `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "v2"))]
    pub version: Option<VaultKvVersion>,
    /// The Vault Enterprise namespace to read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A base64-encoded PEM CA bundle for the server's certificate (Go's `[]byte` JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap holding the CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
    /// A client certificate for mutual TLS (not the `cert` auth method).
    #[serde(default, rename = "tls", skip_serializing_if = "Option::is_none")]
    pub tls: Option<VaultClientTls>,
    /// Send replication state headers for read-after-write consistency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_your_writes: Option<bool>,
    /// Ask standbys to forward inconsistent reads to the leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_inconsistent: Option<bool>,
    /// Extra HTTP headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Check-and-set settings for writes (KV v2, PushSecret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_and_set: Option<VaultCheckAndSet>,
    /// How to authenticate; one method plus an optional namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VaultAuth>,
}

impl VaultProvider {
    /// The KV version with upstream's default (`v2`) applied.
    #[must_use]
    pub fn version(&self) -> VaultKvVersion {
        self.version.unwrap_or_default()
    }
}

/// The Vault KV secrets engine version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum VaultKvVersion {
    /// KV version 1 (no versions, no metadata).
    #[serde(rename = "v1")]
    V1,
    /// KV version 2.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// A client certificate presented to the server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultClientTls {
    /// The PEM certificate; the key defaults to `tls.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeySelector>,
    /// The PEM private key; the key defaults to `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeySelector>,
}

/// Check-and-set settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCheckAndSet {
    /// Every write must carry the current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

/// How to log in to Vault. Upstream allows one method (`tokenSecretRef`, `appRole`,
/// `kubernetes`, `ldap`, `jwt`, `cert`, `iam`, `userPass` or `gcp`) plus `namespace`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuth {
    /// The namespace to log in to; defaults to the provider's `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A static token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// AppRole login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRole>,
    /// Kubernetes login with a ServiceAccount token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesAuth>,
    /// LDAP login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<VaultLdapAuth>,
    /// JWT/OIDC login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<VaultJwtAuth>,
    /// TLS certificate login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<VaultCertAuth>,
    /// AWS IAM login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<VaultIamAuth>,
    /// Username/password login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_pass: Option<VaultUserPassAuth>,
    /// Google Cloud login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<VaultGcpAuth>,
}

impl VaultAuth {
    /// The names of the login methods that are set (upstream allows exactly one).
    #[must_use]
    pub fn methods(&self) -> Vec<&'static str> {
        [
            ("tokenSecretRef", self.token_secret_ref.is_some()),
            ("appRole", self.app_role.is_some()),
            ("kubernetes", self.kubernetes.is_some()),
            ("ldap", self.ldap.is_some()),
            ("jwt", self.jwt.is_some()),
            ("cert", self.cert.is_some()),
            ("iam", self.iam.is_some()),
            ("userPass", self.user_pass.is_some()),
            ("gcp", self.gcp.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// AppRole login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// The auth mount path. Default `approle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "approle"))]
    pub path: Option<String>,
    /// The role ID, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    /// The role ID, from a Secret (its `key` must be set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<SecretKeySelector>,
    /// The secret ID (its `key` must be set).
    pub secret_ref: SecretKeySelector,
}

impl VaultAppRole {
    /// The mount path with upstream's default (`approle`) applied.
    #[must_use]
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("approle")
    }
}

/// Kubernetes login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesAuth {
    /// The auth mount path. Default `kubernetes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "kubernetes"))]
    pub mount_path: Option<String>,
    /// The Vault role to log in as.
    pub role: String,
    /// A ServiceAccount whose token is requested through the TokenRequest API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// A Secret holding a ServiceAccount JWT (key defaults to `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

impl VaultKubernetesAuth {
    /// The mount path with upstream's default (`kubernetes`) applied.
    #[must_use]
    pub fn mount_path(&self) -> &str {
        self.mount_path.as_deref().unwrap_or("kubernetes")
    }
}

/// LDAP login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultLdapAuth {
    /// The auth mount path. Default `ldap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ldap"))]
    pub path: Option<String>,
    /// The LDAP username.
    pub username: String,
    /// The password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

impl VaultLdapAuth {
    /// The mount path with upstream's default (`ldap`) applied.
    #[must_use]
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("ldap")
    }
}

/// JWT/OIDC login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultJwtAuth {
    /// The auth mount path. Default `jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "jwt"))]
    pub path: Option<String>,
    /// The role to log in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A Secret holding the JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
    /// A ServiceAccount whose token is requested through the TokenRequest API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_service_account_token: Option<VaultKubernetesServiceAccountTokenAuth>,
}

impl VaultJwtAuth {
    /// The mount path with upstream's default (`jwt`) applied.
    #[must_use]
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("jwt")
    }
}

/// A ServiceAccount token requested for JWT login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesServiceAccountTokenAuth {
    /// The ServiceAccount.
    pub service_account_ref: ServiceAccountSelector,
    /// Deprecated upstream (use `serviceAccountRef.audiences`): token audiences, default
    /// `["vault"]`. `Some(vec![])` and `None` differ on the wire, so this stays an `Option`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    /// Deprecated upstream: the token's lifetime in seconds, default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
}

/// TLS certificate login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCertAuth {
    /// The auth mount path. Default `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "cert"))]
    pub path: Option<String>,
    /// The Vault role to log in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_role: Option<String>,
    /// The PEM client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<SecretKeySelector>,
    /// The PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

impl VaultCertAuth {
    /// The mount path with upstream's default (`cert`) applied.
    #[must_use]
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("cert")
    }
}

/// AWS IAM login. Without `secretRef` and `jwt` the controller's own AWS identity is used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultIamAuth {
    /// The auth mount path (Vault's own default is `aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// An AWS role ARN to assume before logging in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The Vault role to log in as.
    pub vault_role: String,
    /// The external ID for the assumed role.
    #[serde(
        default,
        rename = "externalID",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// The `X-Vault-AWS-IAM-Server-ID` header value.
    #[serde(
        default,
        rename = "vaultAwsIamServerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub vault_aws_iam_server_id: Option<String>,
    /// Static AWS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<VaultAwsAuthSecretRef>,
    /// A ServiceAccount with IRSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<VaultAwsJwtAuth>,
}

/// Static AWS credentials for Vault's IAM login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAwsAuthSecretRef {
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
pub struct VaultAwsJwtAuth {
    /// The ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

/// Username/password login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultUserPassAuth {
    /// The auth mount path. Default `userpass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "userpass"))]
    pub path: Option<String>,
    /// The username.
    pub username: String,
    /// The password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

impl VaultUserPassAuth {
    /// The mount path with upstream's default (`userpass`) applied.
    #[must_use]
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("userpass")
    }
}

/// Google Cloud login. Without credentials the controller's own GCP identity is used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultGcpAuth {
    /// The auth mount path. Default `gcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "gcp"))]
    pub path: Option<String>,
    /// The Vault role to log in as.
    pub role: String,
    /// The GCP project ID.
    #[serde(default, rename = "projectID", skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The GCP location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A service-account key in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<GcpsmAuthSecretRef>,
    /// GKE Workload Identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<GcpWorkloadIdentity>,
    /// A ServiceAccount to impersonate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}

impl VaultGcpAuth {
    /// The mount path with upstream's default (`gcp`) applied.
    #[must_use]
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("gcp")
    }
}
