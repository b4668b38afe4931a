//! `spec.provider.onepassword`: a 1Password Connect server (upstream's
//! `secretstore_onepassword_types.go`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::SecretKeySelector;

/// A 1Password Connect store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnePasswordProvider {
    /// How the operator authenticates to the Connect server. Upstream's CRD requires it; ours
    /// lets it be absent (like `vaults`) so that the store still parses and its validation names
    /// what is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<OnePasswordAuth>,
    /// The Connect server's URL, e.g. `http://onepassword-connect:8080`.
    pub connect_host: String,
    /// The vaults to search (names or IDs) and their order: lower numbers first. Upstream's
    /// CRD requires it; ours lets it be absent so that the store still parses and its validation
    /// names what is missing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vaults: BTreeMap<String, i64>,
}

impl OnePasswordProvider {
    /// The vaults in search order: by priority, then by name for equal priorities.
    #[must_use]
    pub fn ordered_vaults(&self) -> Vec<&str> {
        let mut vaults: Vec<(&str, i64)> = self
            .vaults
            .iter()
            .map(|(name, prio)| (name.as_str(), *prio))
            .collect();
        vaults.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        vaults.into_iter().map(|(name, _)| name).collect()
    }
}

/// The Connect token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnePasswordAuth {
    /// Where the Connect token is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<OnePasswordAuthSecretRef>,
}

/// The Secret key holding the Connect token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnePasswordAuthSecretRef {
    /// The Connect token (a bearer token of the Connect server).
    #[serde(rename = "connectTokenSecretRef")]
    pub connect_token: SecretKeySelector,
}
