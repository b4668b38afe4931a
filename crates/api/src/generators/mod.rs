//! The `generators.external-secrets.io/v1alpha1` API: generator kinds that create values
//! instead of reading them (`Password`, `UUID`, `SSHKey`, `Fake`, `ECRAuthorizationToken`,
//! `STSSessionToken`, `VaultDynamicSecret`, `Webhook`), the cluster-scoped `ClusterGenerator`
//! that wraps any of them, and `GeneratorState`, which records what a stateful generator must
//! clean up later.
//!
//! Field names, defaults and validation follow upstream's `apis/generators/v1alpha1`.
//! [`ResolvedGenerator::from_object`] turns any generator object (or a ClusterGenerator) into
//! the pair a generator implementation takes: its kind and its spec as JSON.
//!
//! ```
//! use eso_api::generators::{GeneratorKind, ResolvedGenerator};
//!
//! let cluster = serde_json::json!({
//!     "apiVersion": "generators.external-secrets.io/v1alpha1",
//!     "kind": "ClusterGenerator",
//!     "metadata": {"name": "db-password"},
//!     "spec": {"kind": "Password", "generator": {"passwordSpec": {"length": 32}}},
//! });
//! let resolved = ResolvedGenerator::from_object(&cluster)?;
//! assert_eq!(resolved.kind, GeneratorKind::Password);
//! assert_eq!(resolved.spec, serde_json::json!({"length": 32}));
//! // The manifest a GeneratorState keeps for cleanup reads back the same way.
//! assert_eq!(ResolvedGenerator::from_object(&resolved.to_manifest())?, resolved);
//! # Ok::<(), eso_api::generators::GeneratorObjectError>(())
//! ```

mod aws;
mod cluster;
mod password;
mod simple;
mod vault;
mod webhook;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use aws::*;
pub use cluster::*;
pub use password::*;
pub use simple::*;
pub use vault::*;
pub use webhook::*;

use crate::validate::FieldError;

/// The API group of the generators.
pub const GENERATORS_GROUP: &str = "generators.external-secrets.io";
/// The version every generator kind is served in.
pub const GENERATORS_VERSION: &str = "v1alpha1";
/// `apiVersion` of every generator object.
pub const GENERATORS_API_VERSION: &str = "generators.external-secrets.io/v1alpha1";
/// The kind of the cluster-scoped wrapper.
pub const CLUSTER_GENERATOR_KIND: &str = "ClusterGenerator";

/// A kind of generator (upstream's `GeneratorKind`, the values `ClusterGenerator.spec.kind`
/// accepts). eso-rs implements `Password`, `UUID`, `SSHKey`, `Fake`, `ECRAuthorizationToken`,
/// `STSSessionToken`, `VaultDynamicSecret` and `Webhook`; the others are accepted in
/// manifests so that a cluster moving from upstream keeps its objects.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
#[schemars(transform = crate::crds::keep_field_docs)]
pub enum GeneratorKind {
    /// Azure Container Registry access token.
    ACRAccessToken,
    /// BeyondTrust Workload Credentials dynamic secret.
    BeyondtrustWorkloadCredentialsDynamicSecret,
    /// Cloudsmith access token.
    CloudsmithAccessToken,
    /// AWS CodeArtifact authorization token.
    CodeArtifactAuthorizationToken,
    /// AWS ECR authorization token.
    ECRAuthorizationToken,
    /// Static data, for tests.
    Fake,
    /// Google Container Registry access token.
    GCRAccessToken,
    /// GitHub access token.
    GithubAccessToken,
    /// Quay access token.
    QuayAccessToken,
    /// A random password.
    #[default]
    Password,
    /// An SSH key pair.
    SSHKey,
    /// AWS STS session token.
    STSSessionToken,
    /// A random UUID.
    UUID,
    /// A Vault (or OpenBao) dynamic secret.
    VaultDynamicSecret,
    /// An HTTP call.
    Webhook,
    /// Grafana service account token.
    Grafana,
    /// A TOTP code.
    MFA,
}

impl GeneratorKind {
    /// Every kind, in upstream's order.
    pub const ALL: [Self; 17] = [
        Self::ACRAccessToken,
        Self::BeyondtrustWorkloadCredentialsDynamicSecret,
        Self::CloudsmithAccessToken,
        Self::CodeArtifactAuthorizationToken,
        Self::ECRAuthorizationToken,
        Self::Fake,
        Self::GCRAccessToken,
        Self::GithubAccessToken,
        Self::QuayAccessToken,
        Self::Password,
        Self::SSHKey,
        Self::STSSessionToken,
        Self::UUID,
        Self::VaultDynamicSecret,
        Self::Webhook,
        Self::Grafana,
        Self::MFA,
    ];

    /// The kind's name, e.g. `Password`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ACRAccessToken => "ACRAccessToken",
            Self::BeyondtrustWorkloadCredentialsDynamicSecret => {
                "BeyondtrustWorkloadCredentialsDynamicSecret"
            }
            Self::CloudsmithAccessToken => "CloudsmithAccessToken",
            Self::CodeArtifactAuthorizationToken => "CodeArtifactAuthorizationToken",
            Self::ECRAuthorizationToken => "ECRAuthorizationToken",
            Self::Fake => "Fake",
            Self::GCRAccessToken => "GCRAccessToken",
            Self::GithubAccessToken => "GithubAccessToken",
            Self::QuayAccessToken => "QuayAccessToken",
            Self::Password => "Password",
            Self::SSHKey => "SSHKey",
            Self::STSSessionToken => "STSSessionToken",
            Self::UUID => "UUID",
            Self::VaultDynamicSecret => "VaultDynamicSecret",
            Self::Webhook => "Webhook",
            Self::Grafana => "Grafana",
            Self::MFA => "MFA",
        }
    }

    /// The kind named `name`, if it is one.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The key of this kind's spec inside `ClusterGenerator.spec.generator`, e.g.
    /// `passwordSpec`.
    #[must_use]
    pub fn spec_key(self) -> &'static str {
        match self {
            Self::ACRAccessToken => "acrAccessTokenSpec",
            Self::BeyondtrustWorkloadCredentialsDynamicSecret => {
                "beyondtrustWorkloadCredentialsDynamicSecretSpec"
            }
            Self::CloudsmithAccessToken => "cloudsmithAccessTokenSpec",
            Self::CodeArtifactAuthorizationToken => "codeArtifactAuthorizationTokenSpec",
            Self::ECRAuthorizationToken => "ecrAuthorizationTokenSpec",
            Self::Fake => "fakeSpec",
            Self::GCRAccessToken => "gcrAccessTokenSpec",
            Self::GithubAccessToken => "githubAccessTokenSpec",
            Self::QuayAccessToken => "quayAccessTokenSpec",
            Self::Password => "passwordSpec",
            Self::SSHKey => "sshKeySpec",
            Self::STSSessionToken => "stsSessionTokenSpec",
            Self::UUID => "uuidSpec",
            Self::VaultDynamicSecret => "vaultDynamicSecretSpec",
            Self::Webhook => "webhookSpec",
            Self::Grafana => "grafanaSpec",
            Self::MFA => "mfaSpec",
        }
    }

    /// The resource's plural name, for API paths (`passwords`, `uuids`, ...).
    #[must_use]
    pub fn plural(self) -> String {
        // Every upstream plural is the lowercase kind plus `s` (`uuids`, `sshkeys`, `mfas`).
        format!("{}s", self.as_str().to_ascii_lowercase())
    }
}

impl fmt::Display for GeneratorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A generator as an implementation needs it: the kind and the spec of that kind, as JSON.
///
/// A namespaced generator object gives its own `kind` and `spec`; a `ClusterGenerator` gives
/// `spec.kind` and `spec.generator.<kind>Spec`. [`ResolvedGenerator::to_manifest`] writes it
/// back as a namespaced-style manifest (what a GeneratorState's `spec.resource` keeps), which
/// [`ResolvedGenerator::from_object`] reads again.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedGenerator {
    /// The generator kind.
    pub kind: GeneratorKind,
    /// The kind's spec (`{}` when the object has none).
    pub spec: serde_json::Value,
}

/// Why an object is not a usable generator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GeneratorObjectError {
    /// The object is not in the generators API group.
    #[error("apiVersion {0:?} is not {GENERATORS_API_VERSION}")]
    ApiVersion(String),
    /// `kind` (or a ClusterGenerator's `spec.kind`) names no generator kind.
    #[error("kind {0:?} is not a generator kind")]
    UnknownKind(String),
    /// A ClusterGenerator's `spec.generator` does not hold the spec of its `spec.kind`.
    #[error("ClusterGenerator of kind {kind} has no spec.generator.{key}")]
    MissingClusterSpec {
        /// `spec.kind`.
        kind: GeneratorKind,
        /// The key that should hold the spec.
        key: &'static str,
    },
    /// The object's `spec` is not a JSON object.
    #[error("spec must be an object")]
    SpecNotObject,
}

impl ResolvedGenerator {
    /// Reads a generator object (any kind, or a ClusterGenerator) as JSON. `apiVersion` may be
    /// absent (a GeneratorState's snapshot written by an older tool); when present it must be
    /// the generators group.
    pub fn from_object(object: &serde_json::Value) -> Result<Self, GeneratorObjectError> {
        if let Some(api_version) = object.get("apiVersion").and_then(serde_json::Value::as_str)
            && api_version != GENERATORS_API_VERSION
        {
            return Err(GeneratorObjectError::ApiVersion(api_version.to_owned()));
        }
        let kind_name = object
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let spec = object
            .get("spec")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        if !spec.is_object() {
            return Err(GeneratorObjectError::SpecNotObject);
        }
        if kind_name == CLUSTER_GENERATOR_KIND {
            let inner = spec
                .get("kind")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let kind = GeneratorKind::parse(inner)
                .ok_or_else(|| GeneratorObjectError::UnknownKind(inner.to_owned()))?;
            let key = kind.spec_key();
            let inner_spec = spec
                .get("generator")
                .and_then(|g| g.get(key))
                .cloned()
                .ok_or(GeneratorObjectError::MissingClusterSpec { kind, key })?;
            if !inner_spec.is_object() {
                return Err(GeneratorObjectError::SpecNotObject);
            }
            return Ok(Self {
                kind,
                spec: inner_spec,
            });
        }
        let kind = GeneratorKind::parse(kind_name)
            .ok_or_else(|| GeneratorObjectError::UnknownKind(kind_name.to_owned()))?;
        Ok(Self { kind, spec })
    }

    /// The generator as a namespaced-style manifest: `apiVersion`, `kind` and `spec`.
    #[must_use]
    pub fn to_manifest(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": GENERATORS_API_VERSION,
            "kind": self.kind.as_str(),
            "spec": self.spec,
        })
    }
}

/// Validates a ClusterGenerator's spec: `spec.generator` must set exactly the key of
/// `spec.kind` (upstream only checks that one key is set, and fails later at generation).
#[must_use]
pub fn validate_cluster_generator(spec: &ClusterGeneratorSpec) -> Vec<FieldError> {
    let keys = spec.generator.keys();
    let expected = spec.kind.spec_key();
    match keys.as_slice() {
        [one] if *one == expected => validate_cluster_inner(spec),
        [] => vec![FieldError::new(
            "spec.generator",
            format!("must set {expected} for kind {}", spec.kind),
        )],
        [one] => vec![FieldError::new(
            format!("spec.generator.{one}"),
            format!(
                "does not match spec.kind {}; expected {expected}",
                spec.kind
            ),
        )],
        many => vec![FieldError::new(
            "spec.generator",
            format!("must set exactly one spec, found {}", many.join(", ")),
        )],
    }
}

fn validate_cluster_inner(spec: &ClusterGeneratorSpec) -> Vec<FieldError> {
    let g = &spec.generator;
    let prefix = format!("spec.generator.{}", spec.kind.spec_key());
    let errs = if let Some(p) = &g.password_spec {
        validate_password(p)
    } else if let Some(s) = &g.sts_session_token_spec {
        validate_sts_session_token(s)
    } else if let Some(e) = &g.ecr_authorization_token_spec {
        validate_ecr_authorization_token(e)
    } else if let Some(v) = &g.vault_dynamic_secret_spec {
        validate_vault_dynamic_secret(v)
    } else if let Some(w) = &g.webhook_spec {
        validate_webhook(w)
    } else {
        Vec::new()
    };
    errs.into_iter()
        .map(|e| FieldError::new(e.path.replacen("spec", &prefix, 1), e.message))
        .collect()
}

/// Validates a Password spec (upstream checks these when generating; eso-rs also at
/// admission): counts are not negative and fit the length, `secretKeys` are non-empty and
/// unique.
#[must_use]
pub fn validate_password(spec: &PasswordSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, value) in [
        ("length", spec.length),
        ("digits", spec.digits),
        ("symbols", spec.symbols),
    ] {
        if value.is_some_and(|v| v < 0) {
            errs.push(FieldError::new(
                format!("spec.{field}"),
                "must not be negative",
            ));
        }
    }
    if errs.is_empty() && spec.digits() + spec.symbols() > spec.length() {
        errs.push(FieldError::new(
            "spec",
            format!(
                "digits ({}) and symbols ({}) exceed the length ({})",
                spec.digits(),
                spec.symbols(),
                spec.length()
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, key) in spec.secret_keys.iter().enumerate() {
        if key.is_empty() {
            errs.push(FieldError::new(
                format!("spec.secretKeys[{i}]"),
                "must not be empty",
            ));
        } else if !seen.insert(key.as_str()) {
            errs.push(FieldError::new(
                format!("spec.secretKeys[{i}]"),
                format!("duplicate key {key:?}"),
            ));
        }
    }
    errs
}

/// Validates an ECRAuthorizationToken spec.
#[must_use]
pub fn validate_ecr_authorization_token(spec: &ECRAuthorizationTokenSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.region.trim().is_empty() {
        errs.push(FieldError::new("spec.region", "is required"));
    }
    errs.extend(validate_aws_auth(spec.auth.as_ref()));
    errs
}

/// Validates an STSSessionToken spec; `auth.jwt` is refused, as upstream refuses it.
#[must_use]
pub fn validate_sts_session_token(spec: &STSSessionTokenSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.region.trim().is_empty() {
        errs.push(FieldError::new("spec.region", "is required"));
    }
    if spec.auth.as_ref().is_some_and(|a| a.jwt.is_some()) {
        errs.push(FieldError::new(
            "spec.auth.jwt",
            "jwt auth cannot be used for STS session tokens",
        ));
    }
    errs.extend(validate_aws_auth(spec.auth.as_ref()));
    errs
}

fn validate_aws_auth(auth: Option<&crate::provider::AwsAuth>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(auth) = auth else { return errs };
    if auth.secret_ref.is_some() && auth.jwt.is_some() {
        errs.push(FieldError::new(
            "spec.auth",
            "must set at most one of secretRef and jwt",
        ));
    }
    if let Some(refs) = &auth.secret_ref {
        if refs.access_key_id_secret_ref.is_none() {
            errs.push(FieldError::new(
                "spec.auth.secretRef.accessKeyIDSecretRef",
                "is required",
            ));
        }
        if refs.secret_access_key_secret_ref.is_none() {
            errs.push(FieldError::new(
                "spec.auth.secretRef.secretAccessKeySecretRef",
                "is required",
            ));
        }
    }
    errs
}

/// Validates a VaultDynamicSecret spec.
#[must_use]
pub fn validate_vault_dynamic_secret(spec: &VaultDynamicSecretSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.path.trim().trim_matches('/').is_empty() {
        errs.push(FieldError::new("spec.path", "is required"));
    }
    if spec.provider.server.trim().is_empty() {
        errs.push(FieldError::new("spec.provider.server", "is required"));
    }
    errs
}

/// Validates a Webhook generator spec.
#[must_use]
pub fn validate_webhook(spec: &WebhookSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.url.trim().is_empty() {
        errs.push(FieldError::new("spec.url", "is required"));
    }
    for (i, s) in spec.secrets.iter().enumerate() {
        if s.name.is_empty() {
            errs.push(FieldError::new(
                format!("spec.secrets[{i}].name"),
                "is required",
            ));
        }
        if s.secret_ref.name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::new(
                format!("spec.secrets[{i}].secretRef.name"),
                "is required",
            ));
        }
    }
    errs
}

/// A Go `int`: an integer without a format, as controller-gen writes it.
pub(crate) fn int_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer" })
}

/// Any JSON (upstream's `apiextensions.JSON`).
pub(crate) fn free_json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// Lists `fields` as required, as upstream's CRDs do for non-pointer fields that carry a
/// default (the API server fills them in before validating).
pub(crate) fn require_defaulted(schema: &mut schemars::Schema, fields: &[&str]) {
    if let Some(obj) = schema.as_object_mut() {
        let required = obj
            .entry("required")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(list) = required.as_array_mut() {
            for f in fields {
                if !list.iter().any(|v| v == f) {
                    list.push(serde_json::Value::String((*f).to_owned()));
                }
            }
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespaced_objects_resolve_to_their_kind_and_spec() {
        let uuid = json!({"apiVersion": GENERATORS_API_VERSION, "kind": "UUID", "metadata": {"name": "u"}});
        let resolved = ResolvedGenerator::from_object(&uuid).unwrap();
        assert_eq!(resolved.kind, GeneratorKind::UUID);
        assert_eq!(resolved.spec, json!({}), "a missing spec is an empty one");
        let err = ResolvedGenerator::from_object(&json!({"apiVersion": "v1", "kind": "Secret"}))
            .unwrap_err();
        assert_eq!(err, GeneratorObjectError::ApiVersion("v1".into()));
        let err = ResolvedGenerator::from_object(&json!({"kind": "Github"})).unwrap_err();
        assert_eq!(err.to_string(), "kind \"Github\" is not a generator kind");
        let err = ResolvedGenerator::from_object(&json!({"kind": "Fake", "spec": []})).unwrap_err();
        assert_eq!(err, GeneratorObjectError::SpecNotObject);
    }

    #[test]
    fn cluster_generators_need_the_spec_of_their_kind() {
        let cluster = json!({
            "kind": "ClusterGenerator",
            "spec": {"kind": "UUID", "generator": {"passwordSpec": {}}},
        });
        assert_eq!(
            ResolvedGenerator::from_object(&cluster)
                .unwrap_err()
                .to_string(),
            "ClusterGenerator of kind UUID has no spec.generator.uuidSpec"
        );
        let spec: ClusterGeneratorSpec = serde_json::from_value(cluster["spec"].clone()).unwrap();
        let errs = validate_cluster_generator(&spec);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "spec.generator.passwordSpec");
        let bad_password: ClusterGeneratorSpec = serde_json::from_value(json!({
            "kind": "Password",
            "generator": {"passwordSpec": {"length": 4, "digits": 3, "symbols": 3}},
        }))
        .unwrap();
        let errs = validate_cluster_generator(&bad_password);
        assert_eq!(errs[0].path, "spec.generator.passwordSpec");
        assert!(
            errs[0].message.contains("exceed the length (4)"),
            "{errs:?}"
        );
    }

    #[test]
    fn kinds_name_their_spec_keys_and_plurals() {
        for kind in GeneratorKind::ALL {
            assert_eq!(GeneratorKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                json!(kind.as_str()),
                "wire name"
            );
        }
        assert_eq!(GeneratorKind::SSHKey.spec_key(), "sshKeySpec");
        assert_eq!(GeneratorKind::SSHKey.plural(), "sshkeys");
        assert_eq!(GeneratorKind::UUID.plural(), "uuids");
        let all_keys: GeneratorSpec = serde_json::from_value(serde_json::Value::Object(
            GeneratorKind::ALL
                .iter()
                .map(|k| (k.spec_key().to_owned(), json!({"url": "x", "result": {}, "region": "r", "path": "p", "provider": {"server": "s"}})))
                .collect(),
        ))
        .unwrap();
        assert_eq!(
            all_keys.keys().len(),
            GeneratorKind::ALL.len(),
            "every key is a field"
        );
    }

    #[test]
    fn password_defaults_follow_upstream() {
        let spec = PasswordSpec::default();
        assert_eq!((spec.length(), spec.digits(), spec.symbols()), (24, 6, 6));
        assert_eq!(spec.secret_keys(), ["password"]);
        assert_eq!(spec.encoding(), PasswordEncoding::Raw);
        let short = PasswordSpec {
            length: Some(7),
            ..Default::default()
        };
        assert_eq!(
            (short.digits(), short.symbols()),
            (1, 1),
            "25 %, rounded down"
        );
        let dup = PasswordSpec {
            secret_keys: vec!["a".into(), "a".into(), String::new()],
            digits: Some(-1),
            ..Default::default()
        };
        let paths: Vec<String> = validate_password(&dup)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            ["spec.digits", "spec.secretKeys[1]", "spec.secretKeys[2]"]
        );
    }
}
