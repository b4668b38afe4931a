//! Writing the target Secret: one server-side apply with this ExternalSecret's own field
//! manager, then (for Owner/Orphan, whose data is exactly the fetched data) the removal of keys
//! other writers added. Also reads back which data keys the field manager owns, so a Merge
//! policy can drop keys that disappeared upstream.

use std::collections::BTreeSet;

use eso_api::labels::FIELD_MANAGER_PREFIX;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value};

use crate::hash::sha3_224_hex;

/// Kubernetes limits a field manager to 128 bytes; upstream switches to a hash above 63.
const MAX_MANAGER_LEN: usize = 63;

/// The field manager for an ExternalSecret's target Secret, as upstream names it:
/// `externalsecrets.external-secrets.io/<name>`, or `.../sha3/<hex>` for long names.
#[must_use]
pub fn field_manager(es_name: &str) -> String {
    let plain = format!("{FIELD_MANAGER_PREFIX}{es_name}");
    if plain.len() > MAX_MANAGER_LEN {
        format!("{FIELD_MANAGER_PREFIX}sha3/{}", sha3_224_hex(es_name))
    } else {
        plain
    }
}

/// The data keys a field manager owns according to the Secret's `managedFields`.
#[must_use]
pub fn owned_data_keys(secret: &Secret, manager: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for entry in secret.metadata.managed_fields.iter().flatten() {
        if entry.manager.as_deref() != Some(manager) {
            continue;
        }
        let Some(fields) = entry.fields_v1.as_ref() else {
            continue;
        };
        if let Some(Value::Object(data)) = fields.0.get("f:data") {
            keys.extend(
                data.keys()
                    .filter_map(|k| k.strip_prefix("f:"))
                    .map(str::to_owned),
            );
        }
    }
    keys
}

/// Applies `desired` with server-side apply. `applied_keys` are the data keys this
/// ExternalSecret claims (others in `desired.data` belong to other writers and are left to
/// them); with `exclusive` every other data key is removed afterwards.
pub async fn apply_secret(
    api: &Api<Secret>,
    manager: &str,
    desired: &Secret,
    applied_keys: &BTreeSet<String>,
    exclusive: bool,
) -> Result<Secret, kube::Error> {
    let name = desired.metadata.name.clone().unwrap_or_default();
    let mut applied = desired.clone();
    if let Some(data) = applied.data.as_mut() {
        data.retain(|k, _| applied_keys.contains(k));
    }
    applied.metadata.managed_fields = None;
    applied.metadata.resource_version = None;
    let params = PatchParams::apply(manager).force();
    let written = api.patch(&name, &params, &Patch::Apply(&applied)).await?;
    if !exclusive {
        return Ok(written);
    }
    let foreign: Vec<String> = written
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| !applied_keys.contains(k))
        .collect();
    if foreign.is_empty() {
        return Ok(written);
    }
    let mut nulls = Map::new();
    for k in foreign {
        nulls.insert(k, Value::Null);
    }
    let patch = serde_json::json!({ "data": nulls });
    api.patch(
        &name,
        &PatchParams {
            field_manager: Some(manager.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(&patch),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    #[test]
    fn field_manager_matches_upstream() {
        assert_eq!(
            field_manager("db"),
            "externalsecrets.external-secrets.io/db"
        );
        let long = "a-very-long-external-secret-name-xx";
        assert!(format!("externalsecrets.external-secrets.io/{long}").len() > 63);
        assert_eq!(
            field_manager(long),
            format!(
                "externalsecrets.external-secrets.io/sha3/{}",
                sha3_224_hex(long)
            )
        );
    }

    #[test]
    fn owned_keys_come_from_managed_fields() {
        let mut s = Secret::default();
        s.metadata.managed_fields = Some(vec![
            ManagedFieldsEntry {
                manager: Some("externalsecrets.external-secrets.io/db".into()),
                fields_v1: Some(FieldsV1(
                    serde_json::json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {}}),
                )),
                ..Default::default()
            },
            ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                fields_v1: Some(FieldsV1(serde_json::json!({"f:data": {"f:c": {}}}))),
                ..Default::default()
            },
        ]);
        let keys = owned_data_keys(&s, "externalsecrets.external-secrets.io/db");
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
