//! What both services share: picking a `property` out of a value, decoding a value into a
//! map, merging a pushed property into a JSON document, the ownership tag, and the
//! PushSecret metadata envelope.

use std::collections::BTreeMap;

use eso_provider::{ProviderError, SecretData, property};
use serde_json::{Map, Value};

/// Upstream tags what PushSecret created with this, and only overwrites or deletes values
/// that carry it.
pub(crate) const MANAGED_BY_KEY: &str = "managed-by";
pub(crate) const MANAGED_BY_VALUE: &str = "external-secrets";

/// Whether tags mark a value as ours.
pub(crate) fn is_managed(tags: &BTreeMap<String, String>) -> bool {
    tags.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

/// Upstream's property lookup: a property with dots is first tried as one literal key, then
/// as a gjson path. `None` when neither exists.
pub(crate) fn select(
    payload: &[u8],
    prop: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, ProviderError> {
    let doc: Value = serde_json::from_slice(payload).map_err(|e| {
        ProviderError::invalid_request(format!(
            "cannot read property {prop:?} of {key:?}: the value is not JSON"
        ))
        .with_source(e)
    })?;
    if prop.contains('.')
        && let Some(v) = doc.as_object().and_then(|o| o.get(prop))
    {
        return Ok(Some(property::value_bytes(v)));
    }
    Ok(property::lookup(&doc, prop)?.map(|v| property::value_bytes(&v)))
}

/// The value of `property`, or upstream's error naming it (never not-found: the key exists).
pub(crate) fn property_of(payload: &[u8], prop: &str, key: &str) -> Result<Vec<u8>, ProviderError> {
    select(payload, prop, key)?.ok_or_else(|| {
        ProviderError::missing_property(format!("key {prop} does not exist in secret {key}"))
    })
}

/// A JSON object value as a map, as upstream's `GetSecretMap`: strings raw, anything else as
/// its JSON text.
pub(crate) fn decode_map(payload: &[u8], key: &str) -> Result<SecretData, ProviderError> {
    let object: Map<String, Value> = serde_json::from_slice(payload).map_err(|e| {
        ProviderError::invalid_request(format!("the value of {key:?} is not a JSON object"))
            .with_source(e)
    })?;
    Ok(object
        .iter()
        .map(|(k, v)| (k.clone(), property::value_bytes(v)))
        .collect())
}

fn split_path(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next().unwrap_or('\\')),
            '.' => segments.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    segments.push(current);
    segments
}

fn parse_document(current: Option<&[u8]>, key: &str) -> Result<Map<String, Value>, ProviderError> {
    match current.filter(|c| !c.iter().all(u8::is_ascii_whitespace)) {
        None => Ok(Map::new()),
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| {
            ProviderError::invalid_request(format!(
                "cannot push a property into {key:?}: its current value is not a JSON object"
            ))
            .with_source(e)
        }),
    }
}

/// Upstream's `sjson.SetBytes(current, property, value)`: the pushed value set as a string at
/// the property's path (objects created on the way), keeping the rest of the document.
pub(crate) fn merge_property(
    current: Option<&[u8]>,
    prop: &str,
    value: &[u8],
    key: &str,
) -> Result<Vec<u8>, ProviderError> {
    let mut doc = parse_document(current, key)?;
    let segments = split_path(prop);
    let text = String::from_utf8_lossy(value).into_owned();
    let mut node = &mut doc;
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| ProviderError::invalid_request("the property is empty"))?;
    for seg in parents {
        let entry = node
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        node = match entry {
            Value::Object(m) => m,
            // Made an object just above.
            _ => return Err(ProviderError::invalid_request("cannot set the property")),
        };
    }
    node.insert(last.clone(), Value::String(text));
    serde_json::to_vec(&doc)
        .map_err(|e| ProviderError::invalid_request("cannot encode the value").with_source(e))
}

/// The document without `property` (upstream's `sjson.DeleteBytes`); `None` when nothing is
/// left, so the caller deletes the whole value.
pub(crate) fn remove_property(
    current: &[u8],
    prop: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, ProviderError> {
    fn remove(node: &mut Map<String, Value>, segments: &[String]) {
        match segments {
            [] => {}
            [last] => {
                node.remove(last);
            }
            [head, rest @ ..] => {
                if let Some(Value::Object(child)) = node.get_mut(head) {
                    remove(child, rest);
                }
            }
        }
    }
    let mut doc = parse_document(Some(current), key)?;
    remove(&mut doc, &split_path(prop));
    if doc.is_empty() {
        return Ok(None);
    }
    serde_json::to_vec(&doc)
        .map(Some)
        .map_err(|e| ProviderError::invalid_request("cannot encode the value").with_source(e))
}

/// The `spec` of a PushSecret's `metadata` (upstream's `PushSecretMetadata` envelope), or an
/// empty object.
pub(crate) fn metadata_spec(metadata: Option<&Value>) -> Result<Map<String, Value>, ProviderError> {
    let Some(metadata) = metadata.filter(|m| !m.is_null()) else {
        return Ok(Map::new());
    };
    if let Some(kind) = metadata.get("kind").and_then(Value::as_str)
        && kind != "PushSecretMetadata"
    {
        return Err(ProviderError::invalid_request(format!(
            "push metadata has kind {kind:?}, expected PushSecretMetadata"
        )));
    }
    match metadata.get("spec") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ProviderError::invalid_request(
            "push metadata spec must be an object",
        )),
    }
}

/// A string field of the metadata spec.
pub(crate) fn spec_str<'a>(
    spec: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ProviderError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ProviderError::invalid_request(format!(
            "push metadata spec.{field} must be a string"
        ))),
    }
}

/// The tags a push asks for: the metadata's `tags` plus our ownership tag.
pub(crate) fn wanted_tags(
    spec: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut tags = BTreeMap::new();
    match spec.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Value::String(v) = v else {
                    return Err(ProviderError::invalid_request(format!(
                        "push metadata spec.tags.{k} must be a string"
                    )));
                };
                tags.insert(k.clone(), v.clone());
            }
        }
        Some(_) => {
            return Err(ProviderError::invalid_request(
                "push metadata spec.tags must be an object of strings",
            ));
        }
    }
    tags.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
    Ok(tags)
}

/// The tags of `wanted` that `current` lacks or holds with another value.
pub(crate) fn missing_tags(
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The refusal to overwrite a value we do not own.
pub(crate) fn not_managed(key: &str) -> ProviderError {
    ProviderError::invalid_request(format!(
        "{key:?} exists and is not managed by external-secrets (no tag {MANAGED_BY_KEY}={MANAGED_BY_VALUE}); refusing to overwrite it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_provider::ErrorKind;
    use serde_json::json;

    #[test]
    fn select_tries_the_literal_dotted_key_first() {
        let doc = br#"{"a.b":"literal","a":{"b":"nested"},"n":1,"o":{"x":true}}"#;
        assert_eq!(select(doc, "a.b", "k").unwrap(), Some(b"literal".to_vec()));
        assert_eq!(
            select(br#"{"a":{"b":"nested"}}"#, "a.b", "k").unwrap(),
            Some(b"nested".to_vec())
        );
        assert_eq!(select(doc, "n", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            select(doc, "o", "k").unwrap(),
            Some(br#"{"x":true}"#.to_vec())
        );
        assert_eq!(select(doc, "missing", "k").unwrap(), None);
        assert!(select(b"plain", "a", "k").is_err());
        // A missing property is an error, never not-found (the key exists).
        let err = property_of(doc, "zz", "k").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.message(), "key zz does not exist in secret k");
    }

    #[test]
    fn decode_map_keeps_strings_raw() {
        let m = decode_map(br#"{"a":"x","b":2,"c":{"d":1},"e":null}"#, "k").unwrap();
        assert_eq!(m["a"], b"x");
        assert_eq!(m["b"], b"2");
        assert_eq!(m["c"], br#"{"d":1}"#);
        assert_eq!(m["e"], b"");
        assert!(decode_map(b"[1]", "k").is_err());
    }

    #[test]
    fn merge_and_remove_properties() {
        let merged = merge_property(Some(br#"{"a":"1"}"#), "b.c", b"2", "k").unwrap();
        let v: Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(v, json!({"a": "1", "b": {"c": "2"}}));
        let fresh = merge_property(None, "x", b"y", "k").unwrap();
        assert_eq!(fresh, br#"{"x":"y"}"#);
        assert!(merge_property(Some(b"not json"), "x", b"y", "k").is_err());
        let left = remove_property(&merged, "b.c", "k").unwrap().unwrap();
        let v: Value = serde_json::from_slice(&left).unwrap();
        assert_eq!(v, json!({"a": "1", "b": {}}));
        assert_eq!(remove_property(br#"{"a":"1"}"#, "a", "k").unwrap(), None);
    }

    #[test]
    fn metadata_envelope_and_tags() {
        let meta = json!({
            "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
            "kind": "PushSecretMetadata",
            "spec": {"secretPushFormat": "string", "tags": {"team": "a"}}
        });
        let spec = metadata_spec(Some(&meta)).unwrap();
        assert_eq!(spec_str(&spec, "secretPushFormat").unwrap(), Some("string"));
        let tags = wanted_tags(&spec).unwrap();
        assert_eq!(tags["team"], "a");
        assert!(is_managed(&tags));
        let current: BTreeMap<_, _> = [("team".to_owned(), "b".to_owned())].into();
        let missing = missing_tags(&current, &tags);
        assert_eq!(missing.len(), 2);
        assert!(metadata_spec(Some(&json!({"kind": "Other"}))).is_err());
    }
}
