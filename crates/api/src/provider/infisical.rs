//! `spec.provider.infisical`: Infisical (upstream's `secretstore_infisical_types.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::SecretKeySelector;
use crate::provider::CaProvider;

/// The API base URL upstream defaults `hostAPI` to.
pub const INFISICAL_DEFAULT_HOST_API: &str = "https://app.infisical.com/api";

/// An Infisical store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalProvider {
    /// How the operator logs in to Infisical (exactly one method).
    pub auth: InfisicalAuth,
    /// The project, environment and folder the store reads.
    pub secrets_scope: InfisicalSecretsScope,
    /// The base URL of the Infisical API. Default `https://app.infisical.com/api`.
    #[serde(default, rename = "hostAPI", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "https://app.infisical.com/api"))]
    pub host_api: Option<String>,
    /// PEM CA certificates (base64) that sign the server's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// A Secret or ConfigMap holding the CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
}

impl InfisicalProvider {
    /// `hostAPI` with upstream's default applied.
    #[must_use]
    pub fn host_api(&self) -> &str {
        self.host_api
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or(INFISICAL_DEFAULT_HOST_API)
    }
}

/// The scope of a store inside Infisical.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalSecretsScope {
    /// The folder secrets are read from. Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "/"))]
    pub secrets_path: Option<String>,
    /// Whether `find` also lists the folders below `secretsPath`. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub recursive: Option<bool>,
    /// The slug of the environment.
    pub environment_slug: String,
    /// The slug of the project.
    pub project_slug: String,
    /// Whether `${...}` references in values are expanded. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub expand_secret_references: Option<bool>,
}

impl InfisicalSecretsScope {
    /// `secretsPath` with upstream's default (`/`) applied.
    #[must_use]
    pub fn secrets_path(&self) -> &str {
        self.secrets_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
    }

    /// `recursive` with upstream's default (false) applied.
    #[must_use]
    pub fn recursive(&self) -> bool {
        self.recursive.unwrap_or(false)
    }

    /// `expandSecretReferences` with upstream's default (true) applied.
    #[must_use]
    pub fn expand_secret_references(&self) -> bool {
        self.expand_secret_references.unwrap_or(true)
    }
}

/// Infisical machine-identity login methods; upstream uses the first one set, in this order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalAuth {
    /// Universal Auth: a client ID and secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universal_auth_credentials: Option<InfisicalUniversalAuth>,
    /// Azure Auth: the pod's managed identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_auth_credentials: Option<InfisicalAzureAuth>,
    /// GCP ID token auth: the pod's Google identity.
    #[serde(
        default,
        rename = "gcpIdTokenAuthCredentials",
        skip_serializing_if = "Option::is_none"
    )]
    pub gcp_id_token_auth_credentials: Option<InfisicalIdentityOnly>,
    /// GCP IAM auth: a Google service-account key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_iam_auth_credentials: Option<InfisicalGcpIamAuth>,
    /// JWT auth: a JWT signed by an issuer the identity trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_auth_credentials: Option<InfisicalJwtAuth>,
    /// LDAP auth: a directory user name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_auth_credentials: Option<InfisicalLdapAuth>,
    /// OCI auth: an Oracle Cloud API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_auth_credentials: Option<InfisicalOciAuth>,
    /// Kubernetes auth: the pod's ServiceAccount token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_auth_credentials: Option<InfisicalKubernetesAuth>,
    /// AWS IAM auth: the pod's AWS identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_auth_credentials: Option<InfisicalIdentityOnly>,
    /// Token auth: a pre-issued access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_auth_credentials: Option<InfisicalTokenAuth>,
}

impl InfisicalAuth {
    /// The names of every method that is set, in upstream's order of precedence.
    #[must_use]
    pub fn methods(&self) -> Vec<&'static str> {
        [
            (
                "universalAuthCredentials",
                self.universal_auth_credentials.is_some(),
            ),
            (
                "azureAuthCredentials",
                self.azure_auth_credentials.is_some(),
            ),
            (
                "gcpIdTokenAuthCredentials",
                self.gcp_id_token_auth_credentials.is_some(),
            ),
            (
                "gcpIamAuthCredentials",
                self.gcp_iam_auth_credentials.is_some(),
            ),
            ("jwtAuthCredentials", self.jwt_auth_credentials.is_some()),
            ("ldapAuthCredentials", self.ldap_auth_credentials.is_some()),
            ("ociAuthCredentials", self.oci_auth_credentials.is_some()),
            (
                "kubernetesAuthCredentials",
                self.kubernetes_auth_credentials.is_some(),
            ),
            ("awsAuthCredentials", self.aws_auth_credentials.is_some()),
            (
                "tokenAuthCredentials",
                self.token_auth_credentials.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Universal Auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalUniversalAuth {
    /// The machine identity's client ID.
    pub client_id: SecretKeySelector,
    /// The machine identity's client secret.
    pub client_secret: SecretKeySelector,
}

/// Azure Auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalAzureAuth {
    /// The machine identity's ID.
    pub identity_id: SecretKeySelector,
    /// The resource the Azure token is requested for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<SecretKeySelector>,
}

/// Credentials that are only a machine identity's ID (GCP ID token and AWS IAM auth).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalIdentityOnly {
    /// The machine identity's ID.
    pub identity_id: SecretKeySelector,
}

/// GCP IAM auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalGcpIamAuth {
    /// The machine identity's ID.
    pub identity_id: SecretKeySelector,
    /// The path of a service-account key file.
    pub service_account_key_file_path: SecretKeySelector,
}

/// JWT auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalJwtAuth {
    /// The machine identity's ID.
    pub identity_id: SecretKeySelector,
    /// The JWT.
    pub jwt: SecretKeySelector,
}

/// LDAP auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalLdapAuth {
    /// The machine identity's ID.
    pub identity_id: SecretKeySelector,
    /// The directory password.
    #[serde(rename = "ldapPassword")]
    pub ldap_password: SecretKeySelector,
    /// The directory user name.
    #[serde(rename = "ldapUsername")]
    pub ldap_username: SecretKeySelector,
}

/// OCI auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalOciAuth {
    /// The machine identity's ID.
    pub identity_id: SecretKeySelector,
    /// The API key's private key (PEM).
    pub private_key: SecretKeySelector,
    /// The private key's passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_passphrase: Option<SecretKeySelector>,
    /// The API key's fingerprint.
    pub fingerprint: SecretKeySelector,
    /// The OCI user's OCID.
    pub user_id: SecretKeySelector,
    /// The tenancy's OCID.
    pub tenancy_id: SecretKeySelector,
    /// The OCI region.
    pub region: SecretKeySelector,
}

/// Kubernetes auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalKubernetesAuth {
    /// The machine identity's ID.
    pub identity_id: SecretKeySelector,
    /// The path of the ServiceAccount token file; default
    /// `/var/run/secrets/kubernetes.io/serviceaccount/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_token_path: Option<SecretKeySelector>,
}

/// Token auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalTokenAuth {
    /// The access token.
    pub access_token: SecretKeySelector,
}
