//! Pure value handling with upstream's rules: object types in keys (`secret/`, `key/`,
//! `cert/`), properties, tags and attributes as metadata, JWK output, and `dataFrom.extract`
//! maps.

use std::collections::BTreeMap;

pub(crate) use eso_provider::property::go_json;
use eso_provider::{ProviderError, SecretData, property};
use serde_json::Value;
use serde_json::value::RawValue;

/// The kind of Key Vault object a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ObjectType {
    Secret,
    Key,
    Certificate,
}

impl ObjectType {
    /// The REST collection.
    pub(crate) fn collection(self) -> &'static str {
        match self {
            Self::Secret => "secrets",
            Self::Key => "keys",
            Self::Certificate => "certificates",
        }
    }

    pub(crate) fn noun(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Key => "key",
            Self::Certificate => "certificate",
        }
    }
}

/// Splits `type/name` as upstream does: a key with a `/` names the type before it and the
/// object after it (anything after a second `/` is ignored); without one it is a secret.
/// `Err` carries the unknown type.
pub(crate) fn split_key(key: &str) -> Result<(ObjectType, &str), String> {
    let mut parts = key.split('/');
    let first = parts.next().unwrap_or_default();
    let Some(name) = parts.next() else {
        return Ok((ObjectType::Secret, key));
    };
    let kind = match first {
        "secret" => ObjectType::Secret,
        "key" => ObjectType::Key,
        "cert" => ObjectType::Certificate,
        other => return Err(other.to_owned()),
    };
    Ok((kind, name))
}

/// A Key Vault timestamp (Unix seconds) as Go's `time.RFC3339` in UTC.
pub(crate) fn rfc3339(secs: i64) -> Option<String> {
    jiff::Timestamp::from_second(secs)
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The tags of a bundle.
pub(crate) fn tags(bundle: &Value) -> BTreeMap<String, String> {
    bundle
        .get("tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

const ATTRIBUTES: [(&str, &str); 4] = [
    ("exp", "attribute.expires"),
    ("created", "attribute.created"),
    ("updated", "attribute.updated"),
    ("nbf", "attribute.notBefore"),
];

/// Tags plus `attribute.expires`, `.created`, `.updated` and `.notBefore` (RFC 3339), the
/// metadata upstream serves for `metadataPolicy: Fetch` on one value.
pub(crate) fn metadata(bundle: &Value) -> BTreeMap<String, String> {
    let mut out = tags(bundle);
    if let Some(attrs) = bundle.get("attributes") {
        for (field, name) in ATTRIBUTES {
            if let Some(t) = attrs.get(field).and_then(Value::as_i64).and_then(rfc3339) {
                out.insert(name.to_owned(), t);
            }
        }
    }
    out
}

fn missing_property(property: &str, key: &str) -> ProviderError {
    ProviderError::missing_property(format!(
        "property {property:?} does not exist in key {key:?}"
    ))
}

/// A property of a value, as upstream's `getProperty`: the whole value without a property; a
/// gjson path; failing that, the property with its dots taken literally.
pub(crate) fn property_of(
    value: &[u8],
    property: &str,
    key: &str,
) -> Result<Vec<u8>, ProviderError> {
    if property.is_empty() {
        return Ok(value.to_vec());
    }
    let Ok(doc) = serde_json::from_slice::<Value>(value) else {
        return Err(missing_property(property, key));
    };
    if let Some(v) = property::lookup(&doc, property)? {
        return Ok(property::value_bytes(&v));
    }
    if property.contains('.')
        && let Some(v) = property::lookup(&doc, &property.replace('.', "\\."))?
    {
        return Ok(property::value_bytes(&v));
    }
    Err(missing_property(property, key))
}

/// One tag (or all of them as JSON) for `metadataPolicy: Fetch`, as upstream's
/// `getSecretTag`: no property gives every tag as a JSON object; a tag's name gives its value;
/// `tag.path` reads a path inside a JSON tag value.
pub(crate) fn tag_value(
    tags: &BTreeMap<String, String>,
    property: &str,
) -> Result<Vec<u8>, ProviderError> {
    if property.is_empty() {
        return Ok(go_json(&serde_json::to_value(tags).unwrap_or(Value::Null)));
    }
    if let Some(v) = tags.get(property) {
        return Ok(v.as_bytes().to_vec());
    }
    if let Some(idx) = property.find('.')
        && idx > 0
    {
        let name = &property[..idx];
        if let Some(v) = tags.get(name) {
            return property_of(v.as_bytes(), &property[idx + 1..], property);
        }
    }
    Err(ProviderError::missing_property(format!(
        "tag {property:?} does not exist"
    )))
}

/// The tags of a secret for `dataFrom.extract` with `metadataPolicy: Fetch`, as upstream's
/// `getSecretTags`: each tag as `<name>_<tag>`, a tag holding a JSON object of strings
/// expanded into `<name>_<tag>_<field>`, plus the attributes as `<name>_attribute.…`.
pub(crate) fn tag_map(name: &str, bundle: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (tag, value) in tags(bundle) {
        let key = format!("{name}_{tag}");
        match serde_json::from_str::<BTreeMap<String, String>>(&value) {
            Ok(fields) => {
                for (k, v) in fields {
                    out.insert(format!("{key}_{k}"), v);
                }
            }
            Err(_) => {
                out.insert(key, value);
            }
        }
    }
    if let Some(attrs) = bundle.get("attributes") {
        for (field, attr) in ATTRIBUTES {
            if let Some(t) = attrs.get(field).and_then(Value::as_i64).and_then(rfc3339) {
                out.insert(format!("{name}_{attr}"), t);
            }
        }
    }
    out
}

/// A JSON object's top-level fields: strings unquoted, anything else as it is written in the
/// document (upstream keeps each field's raw JSON).
pub(crate) fn json_map(data: &[u8], key: &str) -> Result<SecretData, ProviderError> {
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(data).map_err(|e| {
        ProviderError::invalid_request(format!(
            "the value of {key:?} is not a JSON object, so dataFrom.extract cannot split it"
        ))
        .with_source(e)
    })?;
    Ok(fields
        .into_iter()
        .map(|(k, raw)| {
            let bytes = match serde_json::from_str::<String>(raw.get()) {
                Ok(s) => s.into_bytes(),
                Err(_) => raw.get().as_bytes().to_vec(),
            };
            (k, bytes)
        })
        .collect())
}

/// A key bundle's `key` as upstream marshals its JWK type: fields in the SDK struct's order
/// (`kid`, `kty`, `key_ops`, `n`, `e`, `d`, `dp`, `dq`, `qi`, `p`, `q`, `k`, `key_hsm`, `crv`,
/// `x`, `y`), absent ones left out.
pub(crate) fn jwk_json(key: &Value) -> Vec<u8> {
    const ORDER: [&str; 16] = [
        "kid", "kty", "key_ops", "n", "e", "d", "dp", "dq", "qi", "p", "q", "k", "key_hsm", "crv",
        "x", "y",
    ];
    let mut out = Vec::from(&b"{"[..]);
    let mut first = true;
    for field in ORDER {
        let Some(v) = key.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend(go_json(&Value::String(field.to_owned())));
        out.push(b':');
        out.extend(go_json(v));
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_name_their_object_type() {
        assert_eq!(split_key("db").unwrap(), (ObjectType::Secret, "db"));
        assert_eq!(split_key("secret/db").unwrap(), (ObjectType::Secret, "db"));
        assert_eq!(split_key("key/k1").unwrap(), (ObjectType::Key, "k1"));
        assert_eq!(
            split_key("cert/c/ignored").unwrap(),
            (ObjectType::Certificate, "c")
        );
        assert_eq!(split_key("blob/x").unwrap_err(), "blob");
    }

    #[test]
    fn properties_follow_gjson_then_literal_dots() {
        let doc = br#"{"a":{"b":"deep"},"x.y":"dotted","n":1}"#;
        assert_eq!(property_of(doc, "a.b", "k").unwrap(), b"deep");
        assert_eq!(property_of(doc, "x.y", "k").unwrap(), b"dotted");
        assert_eq!(property_of(doc, "n", "k").unwrap(), b"1");
        assert_eq!(property_of(doc, "", "k").unwrap(), doc);
        let err = property_of(doc, "nope", "k").unwrap_err();
        // An error, never not-found: the key exists.
        assert!(!err.is_not_found());
        assert_eq!(
            err.to_string(),
            "property \"nope\" does not exist in key \"k\""
        );
        assert!(!property_of(b"plain", "a", "k").unwrap_err().is_not_found());
    }

    #[test]
    fn metadata_adds_attributes_in_rfc3339() {
        let bundle = json!({"tags": {"env": "prod"}, "attributes": {"created": 1_700_000_000, "exp": 1_800_000_000}});
        let m = metadata(&bundle);
        assert_eq!(m["env"], "prod");
        assert_eq!(m["attribute.created"], "2023-11-14T22:13:20Z");
        assert_eq!(m["attribute.expires"], "2027-01-15T08:00:00Z");
        assert!(!m.contains_key("attribute.notBefore"));
    }

    #[test]
    fn tag_values_read_paths_inside_json_tags() {
        let tags: BTreeMap<String, String> = [
            ("env".to_owned(), "prod".to_owned()),
            ("owner".to_owned(), r#"{"team":"a<b"}"#.to_owned()),
        ]
        .into();
        assert_eq!(tag_value(&tags, "env").unwrap(), b"prod");
        assert_eq!(tag_value(&tags, "owner.team").unwrap(), b"a<b");
        assert_eq!(
            tag_value(&tags, "").unwrap(),
            br#"{"env":"prod","owner":"{\"team\":\"a\u003cb\"}"}"#
        );
        assert!(!tag_value(&tags, "missing").unwrap_err().is_not_found());
    }

    #[test]
    fn tag_maps_expand_json_tags() {
        let bundle = json!({"tags": {"plain": "v", "obj": "{\"a\":\"1\",\"b\":\"2\"}"}, "attributes": {"updated": 0}});
        let m = tag_map("db", &bundle);
        assert_eq!(m["db_plain"], "v");
        assert_eq!(m["db_obj_a"], "1");
        assert_eq!(m["db_obj_b"], "2");
        assert_eq!(m["db_attribute.updated"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn json_maps_keep_raw_nested_json() {
        let m = json_map(br#"{"s":"str","n": 5,"o": {"a" : 1}}"#, "k").unwrap();
        assert_eq!(m["s"], b"str");
        assert_eq!(m["n"], b"5");
        assert_eq!(m["o"], br#"{"a" : 1}"#);
        assert!(json_map(b"[1]", "k").is_err());
    }

    #[test]
    fn jwk_fields_follow_the_sdk_struct_order() {
        let key = json!({"e": "AQAB", "n": "xyz", "kty": "RSA", "kid": "https://v/keys/k/1", "key_ops": ["sign"]});
        assert_eq!(
            String::from_utf8(jwk_json(&key)).unwrap(),
            r#"{"kid":"https://v/keys/k/1","kty":"RSA","key_ops":["sign"],"n":"xyz","e":"AQAB"}"#
        );
        let ec = json!({"y": "Y", "x": "X", "crv": "P-256", "kty": "EC", "kid": "k"});
        assert_eq!(
            String::from_utf8(jwk_json(&ec)).unwrap(),
            r#"{"kid":"k","kty":"EC","crv":"P-256","x":"X","y":"Y"}"#
        );
    }
}
