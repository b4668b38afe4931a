//! What a remote Secret reads as, with upstream's rules (`providers/v1/kubernetes`): the whole
//! data as JSON, one key (or a gjson path inside a key holding JSON), the labels and
//! annotations for `metadataPolicy: Fetch`, and maps for `extract`. Pure: no I/O.

use std::collections::BTreeMap;

pub(crate) use eso_provider::property::go_json;
use eso_provider::{ProviderError, SecretData, property};
use serde_json::Value;

/// Upstream's `json.Marshal(convertMap(secret.Data))`: a JSON object of the values as strings
/// (Go's `string([]byte)`, invalid UTF-8 becoming U+FFFD when marshalled).
pub(crate) fn data_json(data: &SecretData) -> Vec<u8> {
    let object: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect();
    go_json(&Value::Object(object))
}

fn string_map_json(map: &BTreeMap<String, String>) -> Vec<u8> {
    let object: serde_json::Map<String, Value> = map
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    go_json(&Value::Object(object))
}

/// The parts of a Secret a read looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteSecret {
    pub(crate) data: SecretData,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
}

fn missing(key: &str, property: &str, place: &str) -> ProviderError {
    ProviderError::missing_property(format!(
        "property {property} does not exist in {place} of secret {key:?}"
    ))
}

/// `get_secret` without `metadataPolicy: Fetch`: the data as JSON without a property; with
/// one, the key of that name, else a gjson path inside the key before the first dot.
pub(crate) fn data_value(
    secret: &RemoteSecret,
    key: &str,
    prop: Option<&str>,
) -> Result<Vec<u8>, ProviderError> {
    let Some(prop) = prop.filter(|p| !p.is_empty()) else {
        return Ok(data_json(&secret.data));
    };
    if let Some(value) = secret.data.get(prop) {
        return Ok(value.clone());
    }
    let Some((head, rest)) = prop.split_once('.') else {
        return Err(missing(key, prop, "data"));
    };
    let Some(document) = secret.data.get(head) else {
        return Err(missing(key, prop, "data"));
    };
    // A key that is not JSON simply has no such path (upstream's gjson does not fail either).
    let Ok(doc) = serde_json::from_slice::<Value>(document) else {
        return Err(missing(key, prop, "data"));
    };
    property::lookup(&doc, rest)?
        .map(|v| property::value_bytes(&v))
        .ok_or_else(|| missing(key, prop, "data"))
}

/// `get_secret` with `metadataPolicy: Fetch`: `labels` or `annotations` as JSON, one label or
/// annotation (`labels.team`), or both maps without a property.
pub(crate) fn metadata_value(
    secret: &RemoteSecret,
    key: &str,
    prop: Option<&str>,
) -> Result<Vec<u8>, ProviderError> {
    let Some(prop) = prop.filter(|p| !p.is_empty()) else {
        let both = serde_json::json!({
            "annotations": secret.annotations,
            "labels": secret.labels,
        });
        return Ok(go_json(&both));
    };
    let (head, rest) = match prop.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (prop, None),
    };
    let map = match head {
        "labels" => &secret.labels,
        "annotations" => &secret.annotations,
        _ => return Err(missing(key, prop, "metadata (use labels or annotations)")),
    };
    match rest {
        None => Ok(string_map_json(map)),
        Some(name) => map
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .ok_or_else(|| missing(key, prop, "metadata")),
    }
}

/// `get_secret_map`: the data (or, with `Fetch`, `labels` and `annotations` as JSON); with a
/// property, that entry parsed as a JSON object.
pub(crate) fn value_map(
    secret: &RemoteSecret,
    key: &str,
    prop: Option<&str>,
    metadata: bool,
) -> Result<SecretData, ProviderError> {
    let source: SecretData = if metadata {
        [
            (
                "annotations".to_owned(),
                string_map_json(&secret.annotations),
            ),
            ("labels".to_owned(), string_map_json(&secret.labels)),
        ]
        .into()
    } else {
        secret.data.clone()
    };
    let Some(prop) = prop.filter(|p| !p.is_empty()) else {
        return Ok(source);
    };
    let place = if metadata { "metadata" } else { "data" };
    let raw = source.get(prop).ok_or_else(|| missing(key, prop, place))?;
    let parsed: serde_json::Map<String, Value> = serde_json::from_slice(raw).map_err(|e| {
        ProviderError::invalid_request(format!(
            "property {prop:?} of Secret {key:?} is not a JSON object"
        ))
        .with_source(e)
    })?;
    Ok(parsed
        .into_iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::String(s) => s.into_bytes(),
                other => go_json(&other),
            };
            (k, bytes)
        })
        .collect())
}

/// Whether `name` can be a Secret's name (a DNS subdomain). Anything else could change the
/// request path (`..`, `/`) and is refused before a request is made.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_provider::ErrorKind;

    fn secret() -> RemoteSecret {
        RemoteSecret {
            data: [
                ("user".to_owned(), b"ann".to_vec()),
                (
                    "conf".to_owned(),
                    br#"{"db":{"port":5432,"host":"h"}}"#.to_vec(),
                ),
                ("html".to_owned(), b"<a&b>".to_vec()),
                ("dotted.key".to_owned(), b"d".to_vec()),
            ]
            .into(),
            labels: [("team".to_owned(), "a".to_owned())].into(),
            annotations: [("note".to_owned(), "x".to_owned())].into(),
        }
    }

    #[test]
    fn whole_data_is_go_json_of_strings() {
        assert_eq!(
            data_value(&secret(), "s", None).unwrap(),
            br#"{"conf":"{\"db\":{\"port\":5432,\"host\":\"h\"}}","dotted.key":"d","html":"\u003ca\u0026b\u003e","user":"ann"}"#
        );
    }

    #[test]
    fn property_is_a_key_then_a_path_inside_one() {
        let s = secret();
        assert_eq!(data_value(&s, "s", Some("user")).unwrap(), b"ann");
        assert_eq!(data_value(&s, "s", Some("dotted.key")).unwrap(), b"d");
        assert_eq!(data_value(&s, "s", Some("conf.db.port")).unwrap(), b"5432");
        assert_eq!(
            data_value(&s, "s", Some("conf.db")).unwrap(),
            br#"{"host":"h","port":5432}"#
        );
        for p in ["nope", "conf.db.nope", "user.x"] {
            // Never not-found: the Secret exists, and a typo must not delete anything.
            let err = data_value(&s, "s", Some(p)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{p}");
        }
    }

    #[test]
    fn metadata_reads_labels_and_annotations() {
        let s = secret();
        assert_eq!(
            metadata_value(&s, "s", None).unwrap(),
            br#"{"annotations":{"note":"x"},"labels":{"team":"a"}}"#
        );
        assert_eq!(
            metadata_value(&s, "s", Some("labels")).unwrap(),
            br#"{"team":"a"}"#
        );
        assert_eq!(metadata_value(&s, "s", Some("labels.team")).unwrap(), b"a");
        assert_eq!(
            metadata_value(&s, "s", Some("annotations.note")).unwrap(),
            b"x"
        );
        assert!(
            !metadata_value(&s, "s", Some("labels.nope"))
                .unwrap_err()
                .is_not_found()
        );
        assert!(
            !metadata_value(&s, "s", Some("spec"))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn maps_come_from_data_metadata_or_a_json_property() {
        let s = secret();
        assert_eq!(value_map(&s, "s", None, false).unwrap(), s.data);
        let m = value_map(&s, "s", Some("conf"), false).unwrap();
        assert_eq!(m["db"], br#"{"host":"h","port":5432}"#);
        let m = value_map(&s, "s", None, true).unwrap();
        assert_eq!(m["labels"], br#"{"team":"a"}"#);
        let m = value_map(&s, "s", Some("annotations"), true).unwrap();
        assert_eq!(m["note"], b"x");
        assert_eq!(
            value_map(&s, "s", Some("user"), false).unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
        assert!(
            !value_map(&s, "s", Some("nope"), false)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn names_that_could_change_the_path_are_invalid() {
        assert!(is_valid_name("db-password"));
        assert!(is_valid_name("a.b-c.d"));
        for bad in ["", "../x", "a/b", "A", "a..b", "-a", "a b", "%2e%2e", "a?b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
