//! What a push writes, with upstream's rules (`push_secret.go`): the PushSecret metadata
//! (`labels`, `annotations`, `topics`, `mergePolicy`, `cmekKeyName`, `replicationLocation(s)`),
//! the labels and annotations a pushed secret ends up with (always `managed-by:
//! external-secrets`), its replication policy, and the JSON edits of a push or delete with a
//! `property`.

use std::collections::BTreeMap;

use eso_provider::ProviderError;
use eso_provider::property;
use serde_json::{Map, Value, json};

/// The label upstream marks the secrets it created with.
pub(crate) const MANAGED_BY_KEY: &str = "managed-by";
/// Its value.
pub(crate) const MANAGED_BY_VALUE: &str = "external-secrets";

/// The `spec` of a PushSecret's GCP metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PushMetadata {
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) topics: Vec<String>,
    pub(crate) merge: bool,
    pub(crate) cmek_key_name: Option<String>,
    pub(crate) replication_locations: Vec<String>,
}

fn string_map(
    spec: &Map<String, Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, ProviderError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ProviderError::invalid_request(format!(
                    "push metadata spec.{field}.{k} must be a string"
                ))),
            })
            .collect(),
        Some(_) => Err(ProviderError::invalid_request(format!(
            "push metadata spec.{field} must be a map of strings"
        ))),
    }
}

fn string_list(spec: &Map<String, Value>, field: &str) -> Result<Vec<String>, ProviderError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ProviderError::invalid_request(format!(
                        "push metadata spec.{field} must be a list of strings"
                    ))
                })
            })
            .collect(),
        Some(_) => Err(ProviderError::invalid_request(format!(
            "push metadata spec.{field} must be a list of strings"
        ))),
    }
}

fn opt_string(spec: &Map<String, Value>, field: &str) -> Result<Option<String>, ProviderError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ProviderError::invalid_request(format!(
            "push metadata spec.{field} must be a string"
        ))),
    }
}

/// Parses a PushSecret's metadata (upstream's `PushSecretMetadata` envelope). `None` without
/// metadata.
pub(crate) fn parse_metadata(
    metadata: Option<&Value>,
) -> Result<Option<PushMetadata>, ProviderError> {
    let Some(metadata) = metadata.filter(|m| !m.is_null()) else {
        return Ok(None);
    };
    if let Some(kind) = metadata.get("kind").and_then(Value::as_str)
        && kind != "PushSecretMetadata"
    {
        return Err(ProviderError::invalid_request(format!(
            "push metadata has kind {kind:?}, expected PushSecretMetadata"
        )));
    }
    let spec = match metadata.get("spec") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(ProviderError::invalid_request(
                "push metadata spec must be an object",
            ));
        }
    };
    let merge = match opt_string(&spec, "mergePolicy")?.as_deref() {
        None | Some("Replace") => false,
        Some("Merge") => true,
        Some(other) => {
            return Err(ProviderError::invalid_request(format!(
                "push metadata spec.mergePolicy {other:?} is not Replace or Merge"
            )));
        }
    };
    let mut replication_locations = string_list(&spec, "replicationLocations")?;
    // The older single location, used only when the list is empty (as upstream).
    if replication_locations.is_empty()
        && let Some(l) = opt_string(&spec, "replicationLocation")?
    {
        replication_locations.push(l);
    }
    Ok(Some(PushMetadata {
        annotations: string_map(&spec, "annotations")?,
        labels: string_map(&spec, "labels")?,
        topics: string_list(&spec, "topics")?,
        merge,
        cmek_key_name: opt_string(&spec, "cmekKeyName")?,
        replication_locations,
    }))
}

/// The replication policy of a secret a push creates: user-managed in the metadata's locations
/// (each with the CMEK key, if any), else automatic (with the CMEK key, if any).
pub(crate) fn replication(meta: Option<&PushMetadata>) -> Value {
    let cmek = meta
        .and_then(|m| m.cmek_key_name.as_deref())
        .map(|k| json!({"kmsKeyName": k}));
    let locations = meta
        .map(|m| m.replication_locations.as_slice())
        .unwrap_or_default();
    if !locations.is_empty() {
        let replicas: Vec<Value> = locations
            .iter()
            .map(|l| {
                let mut r = json!({"location": l});
                if let Some(c) = &cmek {
                    r["customerManagedEncryption"] = c.clone();
                }
                r
            })
            .collect();
        return json!({"userManaged": {"replicas": replicas}});
    }
    match cmek {
        Some(c) => json!({"automatic": {"customerManagedEncryption": c}}),
        None => json!({"automatic": {}}),
    }
}

/// The labels and annotations a pushed secret should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
}

/// Upstream's `buildMetadata`: a push of a whole value replaces labels with the metadata's
/// (`Merge` keeps the existing ones, which win on conflicts, as upstream) and refuses secrets
/// without the `managed-by` label; a push of one `property` keeps what is there. Both add
/// `managed-by: external-secrets`.
pub(crate) fn wanted(
    key: &str,
    existing_labels: &BTreeMap<String, String>,
    existing_annotations: &BTreeMap<String, String>,
    meta: Option<&PushMetadata>,
    with_property: bool,
) -> Result<Wanted, ProviderError> {
    if with_property {
        let mut labels = existing_labels.clone();
        labels.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
        return Ok(Wanted {
            labels,
            annotations: existing_annotations.clone(),
        });
    }
    if existing_labels.get(MANAGED_BY_KEY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
        return Err(ProviderError::invalid_request(format!(
            "secret {key:?} is not managed by external secrets (it has no label {MANAGED_BY_KEY}={MANAGED_BY_VALUE})"
        )));
    }
    let mut labels = meta.map(|m| m.labels.clone()).unwrap_or_default();
    if meta.is_some_and(|m| m.merge) {
        labels.extend(existing_labels.clone());
    }
    labels.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
    Ok(Wanted {
        labels,
        annotations: meta.map(|m| m.annotations.clone()).unwrap_or_default(),
    })
}

/// Splits a property path on unescaped dots (`a\.b` is one key).
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn document(original: Option<&[u8]>, key: &str) -> Result<Map<String, Value>, ProviderError> {
    match original.filter(|o| !o.iter().all(u8::is_ascii_whitespace)) {
        None => Ok(Map::new()),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ProviderError::invalid_request(format!(
                "the current value of {key:?} is not a JSON object, so a property cannot be set in it"
            ))),
        },
    }
}

/// Sets `property` (a dotted path) to `value` as a JSON string in the current document (or a
/// new one), as upstream's `sjson.SetBytes` does.
pub(crate) fn set_property(
    original: Option<&[u8]>,
    property: &str,
    value: &[u8],
    key: &str,
) -> Result<Vec<u8>, ProviderError> {
    let mut doc = document(original, key)?;
    let path = segments(property);
    let mut node = &mut doc;
    for (i, seg) in path.iter().enumerate() {
        if i == path.len() - 1 {
            node.insert(
                seg.clone(),
                Value::String(String::from_utf8_lossy(value).into_owned()),
            );
            break;
        }
        let next = node
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            return Err(ProviderError::invalid_request(format!(
                "property {property:?} of {key:?} goes through {seg:?}, which is not an object"
            )));
        }
        let Value::Object(m) = next else {
            break;
        };
        node = m;
    }
    serde_json::to_vec(&Value::Object(doc))
        .map_err(|e| ProviderError::invalid_request("cannot encode the value").with_source(e))
}

/// Removes `property` from the current document; `None` when nothing is left.
pub(crate) fn remove_property(
    original: &[u8],
    property: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, ProviderError> {
    let mut doc = document(Some(original), key)?;
    // Like reads: a dotted property is first one literal key.
    if property.contains('.') && doc.remove(property).is_some() {
        return finish(doc);
    }
    let path = segments(property);
    let mut node = &mut doc;
    for (i, seg) in path.iter().enumerate() {
        if i == path.len() - 1 {
            node.remove(seg);
            break;
        }
        match node.get_mut(seg) {
            Some(Value::Object(m)) => node = m,
            _ => break,
        }
    }
    finish(doc)
}

fn finish(doc: Map<String, Value>) -> Result<Option<Vec<u8>>, ProviderError> {
    if doc.is_empty() {
        return Ok(None);
    }
    serde_json::to_vec(&Value::Object(doc))
        .map(Some)
        .map_err(|e| ProviderError::invalid_request("cannot encode the value").with_source(e))
}

/// Upstream's `getDataByProperty`: a property with dots is first looked up as one literal key,
/// then as a path. `Ok(None)` when the document has no such value; an error when it is not
/// JSON.
pub(crate) fn get_property(
    data: &[u8],
    prop: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, ProviderError> {
    let value: Value = serde_json::from_slice(data).map_err(|e| {
        ProviderError::invalid_request(format!(
            "cannot read property {prop:?} of {key:?}: the value is not JSON"
        ))
        .with_source(e)
    })?;
    if prop.find('.').is_some_and(|i| i > 0)
        && let Some(v) = property::lookup(&value, &prop.replace('.', "\\."))?
    {
        return Ok(Some(property::value_bytes(&v)));
    }
    Ok(property::lookup(&value, prop)?.map(|v| property::value_bytes(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn metadata_and_replication() {
        let m = parse_metadata(Some(&json!({
            "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
            "kind": "PushSecretMetadata",
            "spec": {"labels": {"team": "a"}, "annotations": {"owner": "x"}, "mergePolicy": "Merge",
                     "cmekKeyName": "k", "replicationLocation": "us-east1", "topics": ["t"]},
        })))
        .unwrap()
        .unwrap();
        assert!(m.merge);
        assert_eq!(m.replication_locations, ["us-east1"]);
        assert_eq!(
            replication(Some(&m)),
            json!({"userManaged": {"replicas": [{"location": "us-east1", "customerManagedEncryption": {"kmsKeyName": "k"}}]}})
        );
        let both = parse_metadata(Some(
            &json!({"spec": {"replicationLocation": "a", "replicationLocations": ["b", "c"]}}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(both.replication_locations, ["b", "c"]);
        assert_eq!(replication(None), json!({"automatic": {}}));
        assert!(parse_metadata(Some(&json!({"kind": "Other"}))).is_err());
        assert!(parse_metadata(Some(&json!({"spec": {"mergePolicy": "Sometimes"}}))).is_err());
        assert_eq!(parse_metadata(None).unwrap(), None);
    }

    #[test]
    fn wanted_labels_follow_upstream() {
        let managed = labels(&[
            ("managed-by", "external-secrets"),
            ("old", "1"),
            ("team", "b"),
        ]);
        let meta = PushMetadata {
            labels: labels(&[("team", "a")]),
            ..PushMetadata::default()
        };
        let replace = wanted("k", &managed, &BTreeMap::new(), Some(&meta), false).unwrap();
        assert_eq!(
            replace.labels,
            labels(&[("managed-by", "external-secrets"), ("team", "a")])
        );
        let merge = PushMetadata {
            merge: true,
            ..meta.clone()
        };
        let merged = wanted("k", &managed, &BTreeMap::new(), Some(&merge), false).unwrap();
        // Existing labels win on conflicts, as upstream's maps.Copy order gives.
        assert_eq!(merged.labels["team"], "b");
        assert_eq!(merged.labels["old"], "1");
        let foreign = labels(&[("owner", "someone")]);
        assert!(wanted("k", &foreign, &BTreeMap::new(), None, false).is_err());
        let prop = wanted("k", &foreign, &labels(&[("a", "b")]), None, true).unwrap();
        assert_eq!(prop.labels["managed-by"], "external-secrets");
        assert_eq!(prop.annotations["a"], "b");
    }

    #[test]
    fn property_edits() {
        let set = set_property(Some(br#"{"a":"1","n":{"x":"y"}}"#), "n.z", b"v", "k").unwrap();
        let v: Value = serde_json::from_slice(&set).unwrap();
        assert_eq!(v, json!({"a": "1", "n": {"x": "y", "z": "v"}}));
        let fresh = set_property(None, r"dot\.key", b"v", "k").unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&fresh).unwrap(),
            json!({"dot.key": "v"})
        );
        assert!(set_property(Some(b"plain"), "a", b"v", "k").is_err());
        assert!(set_property(Some(br#"{"a":"s"}"#), "a.b", b"v", "k").is_err());
        let removed = remove_property(&set, "n.z", "k").unwrap().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&removed).unwrap(),
            json!({"a": "1", "n": {"x": "y"}})
        );
        assert_eq!(remove_property(br#"{"a":"1"}"#, "a", "k").unwrap(), None);
    }

    #[test]
    fn dotted_properties_try_the_literal_key_first() {
        let doc = br#"{"a.b":"literal","a":{"b":"nested"},"c":{"d":2}}"#;
        assert_eq!(get_property(doc, "a.b", "k").unwrap().unwrap(), b"literal");
        assert_eq!(get_property(doc, "c.d", "k").unwrap().unwrap(), b"2");
        assert_eq!(get_property(doc, "missing", "k").unwrap(), None);
        assert!(get_property(b"not json", "a", "k").is_err());
    }
}
