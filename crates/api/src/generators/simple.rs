//! The generators that need no credentials besides `Password`: `UUID`, `SSHKey` and `Fake`
//! (upstream's `types_uuid.go`, `types_sshkey.go`, `types_fake.go`).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::int_schema;

/// The `UUID` generator takes no parameters.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "UUID",
    plural = "uuids",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "UUID generates a random (version 4) UUID, e.g. 3f2b6a1e-52c4-4d7e-9a1b-0c8d4e6f7a90."
)]
pub struct UUIDSpec {}

/// Upstream's default SSH key type.
pub const DEFAULT_SSH_KEY_TYPE: SshKeyType = SshKeyType::Rsa;
/// Upstream's default RSA key size.
pub const DEFAULT_RSA_KEY_SIZE: i64 = 2048;
/// Upstream's default ECDSA key size (P-256).
pub const DEFAULT_ECDSA_KEY_SIZE: i64 = 256;

/// The desired SSH key pair.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "SSHKey",
    plural = "sshkeys",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "SSHKey generates SSH key pairs."
)]
#[serde(rename_all = "camelCase")]
pub struct SSHKeySpec {
    /// The key type: `rsa` (default), `ecdsa` or `ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "rsa"))]
    pub key_type: Option<SshKeyType>,
    /// The key size: RSA 2048 (default), 3072 or 4096; ECDSA 256 (default), 384 or 521;
    /// ignored for ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_schema", extend("minimum" = 256, "maximum" = 8192))]
    pub key_size: Option<i64>,
    /// A comment written into both keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl SSHKeySpec {
    /// `keyType` with upstream's default (`rsa`).
    #[must_use]
    pub fn key_type(&self) -> SshKeyType {
        self.key_type.unwrap_or(DEFAULT_SSH_KEY_TYPE)
    }
}

/// An SSH key type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum SshKeyType {
    /// RSA (`ssh-rsa`).
    #[default]
    Rsa,
    /// ECDSA on NIST P-256, P-384 or P-521 (`ecdsa-sha2-nistp*`).
    Ecdsa,
    /// Ed25519 (`ssh-ed25519`).
    Ed25519,
}

/// The static data a `Fake` generator returns.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Fake",
    namespaced,
    category = "external-secrets",
    category = "external-secrets-generators",
    label("external-secrets.io/component", "controller"),
    derive = "PartialEq",
    derive = "Default",
    doc = "Fake generator is used for testing. It lets you define a static set of credentials that is always returned."
)]
#[serde(rename_all = "camelCase")]
pub struct FakeSpec {
    /// Selects the controller class that handles this generator (think
    /// `ingress.ingressClassName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The data returned by this generator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}
