//! `spec.provider` of a store: exactly one provider key.
//!
//! The providers eso-rs implements are typed, one module each (`kubernetes`, `vault` and
//! `openBao`, `aws`, `webhook`, `gcpsm`, `azurekv`, `chef`, `conjur`, `gitlab`, `infisical`,
//! `onepassword`, `doppler`, `fake`); every other upstream key is kept as
//! opaque JSON in [`SecretStoreProvider::other`], so a manifest for a provider we do not support
//! yet still parses, round-trips, and later fails with "provider X is not supported".

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod aws;
mod azurekv;
mod ca_provider;
mod chef;
mod conjur;
mod doppler;
mod fake;
mod gcpsm;
mod gitlab;
mod infisical;
mod kubernetes;
mod onepassword;
mod vault;
mod webhook;

pub use aws::*;
pub use azurekv::*;
pub use ca_provider::*;
pub use chef::*;
pub use conjur::*;
pub use doppler::*;
pub use fake::*;
pub use gcpsm::*;
pub use gitlab::*;
pub use infisical::*;
pub use kubernetes::*;
pub use onepassword::*;
pub use vault::*;
pub use webhook::*;

/// The provider of a store. Exactly one field (typed or in `other`) must be set; see
/// [`SecretStoreProvider::key`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// Unknown provider keys must stay valid in the CRD, so the object keeps unknown fields; the
// apiserver still checks that exactly one key is present.
#[schemars(extend(
    "x-kubernetes-preserve-unknown-fields" = true,
    "minProperties" = 1,
    "maxProperties" = 1
))]
pub struct SecretStoreProvider {
    /// AWS Secrets Manager, Parameter Store or Certificate Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsProvider>,
    /// Azure Key Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azurekv: Option<AzureKvProvider>,
    /// Chef Infra Server data bags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef: Option<ChefProvider>,
    /// CyberArk Conjur.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conjur: Option<ConjurProvider>,
    /// Google Secret Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcpsm: Option<GcpsmProvider>,
    /// GitLab CI/CD variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<GitlabProvider>,
    /// Secrets of a Kubernetes cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesProvider>,
    /// HashiCorp Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultProvider>,
    /// OpenBao, read with the Vault type (a superset of upstream's `OpenBaoProvider`).
    #[serde(default, rename = "openBao", skip_serializing_if = "Option::is_none")]
    pub open_bao: Option<VaultProvider>,
    /// A generic templated HTTP webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookProvider>,
    /// Infisical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infisical: Option<InfisicalProvider>,
    /// A 1Password Connect server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onepassword: Option<OnePasswordProvider>,
    /// Doppler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doppler: Option<DopplerProvider>,
    /// Static data from the store's own spec (for tests and demos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake: Option<FakeProvider>,
    /// Any provider key eso-rs does not type, kept verbatim.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl SecretStoreProvider {
    /// The names of every provider key that is set, typed ones first.
    #[must_use]
    pub fn keys(&self) -> Vec<&str> {
        let typed = [
            ("aws", self.aws.is_some()),
            ("azurekv", self.azurekv.is_some()),
            ("chef", self.chef.is_some()),
            ("conjur", self.conjur.is_some()),
            ("gcpsm", self.gcpsm.is_some()),
            ("gitlab", self.gitlab.is_some()),
            ("kubernetes", self.kubernetes.is_some()),
            ("vault", self.vault.is_some()),
            ("openBao", self.open_bao.is_some()),
            ("webhook", self.webhook.is_some()),
            ("infisical", self.infisical.is_some()),
            ("onepassword", self.onepassword.is_some()),
            ("doppler", self.doppler.is_some()),
            ("fake", self.fake.is_some()),
        ];
        let mut keys: Vec<&str> = typed
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
        keys.extend(self.other.keys().map(String::as_str));
        keys
    }

    /// The single provider key that is set; `None` when there are zero or several.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self.keys().as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn provider(value: serde_json::Value) -> SecretStoreProvider {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn keys_lists_typed_providers_then_unknown_ones() {
        let p = provider(json!({
            "vault": {"server": "https://vault"},
            "openBao": {"server": "https://bao"},
            "akeyless": {"akeylessGWApiURL": "https://gw"},
        }));
        assert_eq!(p.keys(), ["vault", "openBao", "akeyless"]);
        assert_eq!(p.key(), None);
        for key in [
            "aws",
            "azurekv",
            "chef",
            "conjur",
            "gcpsm",
            "gitlab",
            "kubernetes",
            "vault",
            "openBao",
            "webhook",
            "infisical",
            "onepassword",
            "doppler",
            "fake",
        ] {
            let minimal = match key {
                "aws" => json!({"service": "SecretsManager", "region": "eu-west-1"}),
                "azurekv" => json!({"vaultUrl": "https://v.vault.azure.net"}),
                "vault" | "openBao" => json!({"server": "https://vault"}),
                "webhook" => json!({"url": "https://hook"}),
                "fake" => json!({"data": []}),
                "chef" => json!({"username": "u", "serverUrl": "https://chef/", "auth": {
                    "secretRef": {"privateKeySecretRef": {"name": "k", "key": "pem"}}}}),
                "conjur" => json!({"url": "https://conjur", "auth": {"apikey": {"account": "a",
                    "userRef": {"name": "s", "key": "u"}, "apiKeyRef": {"name": "s", "key": "k"}}}}),
                "gitlab" => {
                    json!({"auth": {"SecretRef": {"accessToken": {"name": "t", "key": "k"}}}})
                }
                "infisical" => json!({
                    "auth": {},
                    "secretsScope": {"projectSlug": "p", "environmentSlug": "dev"},
                }),
                "onepassword" => json!({"connectHost": "http://op:8080", "vaults": {"v": 1}}),
                "doppler" => json!({"auth": {}}),
                _ => json!({}),
            };
            let p = provider(json!({ key: minimal }));
            assert_eq!(p.key(), Some(key), "{key}");
            assert!(p.other.is_empty(), "{key} must be typed");
        }
        assert_eq!(provider(json!({})).key(), None);
    }

    #[test]
    fn defaults_come_from_accessors_not_from_serialization() {
        let p = provider(json!({"vault": {"server": "https://vault", "auth": {
            "appRole": {"secretRef": {"name": "s", "key": "k"}},
        }}}));
        let vault = p.vault.as_ref().unwrap();
        assert_eq!(vault.version(), VaultKvVersion::V2);
        assert_eq!(
            vault
                .auth
                .as_ref()
                .unwrap()
                .app_role
                .as_ref()
                .unwrap()
                .path(),
            "approle"
        );
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"vault": {"server": "https://vault", "auth": {
                "appRole": {"secretRef": {"name": "s", "key": "k"}},
            }}})
        );
    }

    #[test]
    fn accessor_defaults_match_upstream() {
        assert_eq!(KubernetesProvider::default().remote_namespace(), "default");
        assert_eq!(KubernetesServer::default().url(), "kubernetes.default");
        assert_eq!(VaultKubernetesAuth::default().mount_path(), "kubernetes");
        assert_eq!(VaultLdapAuth::default().path(), "ldap");
        assert_eq!(VaultJwtAuth::default().path(), "jwt");
        assert_eq!(VaultCertAuth::default().path(), "cert");
        assert_eq!(VaultUserPassAuth::default().path(), "userpass");
        assert_eq!(VaultGcpAuth::default().path(), "gcp");
        assert_eq!(WebhookProvider::default().method(), "GET");
        assert_eq!(
            AwsProvider::default().session_tags_policy(),
            AwsSessionTagsPolicy::None
        );
        assert_eq!(
            GcpsmProvider::default().secret_version_selection_policy(),
            GcpSecretVersionSelectionPolicy::LatestOrFail
        );
        let azure = AzureKvProvider::default();
        assert_eq!(azure.auth_type(), AzureAuthType::ServicePrincipal);
        assert_eq!(azure.environment_type(), AzureEnvironmentType::PublicCloud);
    }

    #[test]
    fn vault_auth_lists_its_methods() {
        let auth: VaultAuth = serde_json::from_value(json!({
            "namespace": "ns",
            "tokenSecretRef": {"name": "t"},
            "iam": {"vaultRole": "r"},
        }))
        .unwrap();
        assert_eq!(auth.methods(), ["tokenSecretRef", "iam"]);
    }
}
