//! `spec.provider` of a store: exactly one provider key.
//!
//! The providers eso-rs implements are typed; every other upstream key is kept as opaque JSON
//! in [`SecretStoreProvider::other`], so a manifest for a provider we do not support yet still
//! parses, round-trips, and later fails with "provider X is not supported".

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod fake;
pub use fake::*;

/// The provider of a store. Exactly one field (typed or in `other`) must be set; see
/// [`SecretStoreProvider::key`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct SecretStoreProvider {
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
        let mut keys = Vec::new();
        if self.fake.is_some() {
            keys.push("fake");
        }
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
