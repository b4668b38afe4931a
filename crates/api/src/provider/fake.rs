use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Upstream's `fake` provider: static key/value data in the store's spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProvider {
    /// The data the store serves.
    #[serde(default)]
    pub data: Vec<FakeProviderData>,
}

/// One fake remote value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProviderData {
    /// The remote key.
    pub key: String,
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Deprecated upstream: a map served as the value's JSON object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_map: BTreeMap<String, String>,
    /// The version this entry answers for; empty answers for requests without a version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
