//! gjson-style property paths (`remoteRef.property`), as upstream providers use them to pick a
//! value out of a JSON document: `a.b.c`, array indexes (`list.0`), `#` for an array's length,
//! `list.#.name` to collect a field from every element, and `\.` for a literal dot in a key.
//! Wildcards and queries are not supported and are reported as invalid requests.

use serde_json::Value;

use crate::ProviderError;

fn split_path(path: &str) -> Result<Vec<String>, ProviderError> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => current.push(next),
                None => current.push('\\'),
            },
            '.' => segments.push(std::mem::take(&mut current)),
            '*' | '?' => {
                return Err(ProviderError::invalid_request(format!(
                    "property {path:?}: wildcards are not supported"
                )));
            }
            _ => current.push(c),
        }
    }
    segments.push(current);
    Ok(segments)
}

/// Looks a path up in a JSON value. `Ok(None)` when the path does not exist.
pub fn lookup(value: &Value, path: &str) -> Result<Option<Value>, ProviderError> {
    let segments = split_path(path)?;
    Ok(walk(value, &segments))
}

fn walk(value: &Value, segments: &[String]) -> Option<Value> {
    let Some((head, rest)) = segments.split_first() else {
        return Some(value.clone());
    };
    match value {
        Value::Object(map) => map.get(head).and_then(|v| walk(v, rest)),
        Value::Array(items) => {
            if head == "#" {
                if rest.is_empty() {
                    return Some(Value::from(items.len()));
                }
                let collected: Vec<Value> =
                    items.iter().filter_map(|item| walk(item, rest)).collect();
                return Some(Value::Array(collected));
            }
            let index: usize = head.parse().ok()?;
            items.get(index).and_then(|v| walk(v, rest))
        }
        _ => None,
    }
}

/// The bytes of a JSON value as gjson's `String()` gives them: strings raw, `null` empty,
/// everything else as compact JSON.
#[must_use]
pub fn value_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    }
}

/// JSON as Go's `json.Marshal` writes it: compact, object keys sorted (serde_json's map is
/// ordered), and `<`, `>`, `&`, U+2028 and U+2029 escaped. Those characters only occur inside
/// JSON strings, so escaping the serialized text is exact. Matching Go byte for byte keeps
/// data hashes equal to upstream's.
#[must_use]
pub fn go_json(value: &Value) -> Vec<u8> {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Picks `property` out of a JSON document given as bytes. `Ok(None)` when the document holds
/// no such path; an error when it is not JSON.
pub fn extract(
    document: &[u8],
    property: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, ProviderError> {
    let value: Value = serde_json::from_slice(document).map_err(|e| {
        ProviderError::invalid_request(format!(
            "cannot read property {property:?} of {key:?}: the value is not JSON"
        ))
        .with_source(e)
    })?;
    Ok(lookup(&value, property)?.map(|v| value_bytes(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_escapes_like_encoding_json() {
        assert_eq!(
            go_json(&json!({"b": "<a&b>\u{2028}", "a": 1})),
            br#"{"a":1,"b":"\u003ca\u0026b\u003e\u2028"}"#
        );
    }

    #[test]
    fn looks_up_nested_paths() {
        let doc = json!({"a": {"b": {"c": "deep"}}, "list": [{"name": "x"}, {"name": "y"}], "dot.key": 1});
        assert_eq!(lookup(&doc, "a.b.c").unwrap(), Some(json!("deep")));
        assert_eq!(lookup(&doc, "list.1.name").unwrap(), Some(json!("y")));
        assert_eq!(lookup(&doc, "list.#").unwrap(), Some(json!(2)));
        assert_eq!(
            lookup(&doc, "list.#.name").unwrap(),
            Some(json!(["x", "y"]))
        );
        assert_eq!(lookup(&doc, r"dot\.key").unwrap(), Some(json!(1)));
        assert_eq!(lookup(&doc, "a.missing").unwrap(), None);
        assert_eq!(lookup(&doc, "list.9").unwrap(), None);
        assert!(lookup(&doc, "a.*").is_err());
    }

    #[test]
    fn value_bytes_follow_gjson_string() {
        assert_eq!(value_bytes(&json!("s")), b"s");
        assert_eq!(value_bytes(&json!(5)), b"5");
        assert_eq!(value_bytes(&json!(true)), b"true");
        assert_eq!(value_bytes(&json!(null)), b"");
        assert_eq!(
            value_bytes(&json!({"b": 1, "a": [1, 2]})),
            br#"{"a":[1,2],"b":1}"#
        );
    }

    #[test]
    fn extract_reports_non_json() {
        assert!(extract(b"plain", "a", "k").is_err());
        assert_eq!(
            extract(br#"{"a":"1"}"#, "a", "k").unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(extract(br#"{"a":"1"}"#, "b", "k").unwrap(), None);
    }
}
