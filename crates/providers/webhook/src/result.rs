//! Turning a response body into a value or a map, with upstream's rules
//! (`pkg/common/webhook`'s `GetSecret`, `GetSecretMap` and `extractSecretData`).
//!
//! JSONPath is evaluated by `jsonpath-rust` (RFC 9535: `$.a.b`, `['a']`, `[0]`, `[*]`, `..`,
//! slices and filters such as `[?(@.name == 'db')]`), where upstream uses
//! `PaesslerAG/jsonpath`. Upstream returns a plain value for a path without wildcards or
//! filters and a list otherwise; `jsonpath-rust` always returns the list of matches, and the
//! first match is what upstream's `extractSecretData` picks from a list, so results agree.

use eso_provider::{ProviderError, SecretData};
use jsonpath_rust::JsonPath;
use serde_json::Value;

/// Why a response could not be turned into a value. The caller adds the URL and status.
#[derive(Debug)]
pub(crate) enum ResultError {
    /// The body is not JSON.
    NotJson(serde_json::Error),
    /// The JSONPath does not parse.
    BadPath(String),
    /// The JSONPath matched nothing.
    NoMatch,
    /// The value has a type that cannot be a secret map.
    NotAMap(&'static str),
}

impl ResultError {
    /// A provider error naming `context` (method, URL, status) and the JSONPath.
    pub(crate) fn into_provider_error(self, context: &str, path: Option<&str>) -> ProviderError {
        let at = path
            .map(|p| format!(" at jsonPath {p:?}"))
            .unwrap_or_default();
        match self {
            // A proxy's HTML error page with status 200, a truncated answer: the server's
            // side failed, and a later call may succeed.
            Self::NotJson(e) => {
                ProviderError::unavailable(format!("{context}: the response is not JSON"))
                    .with_source(e)
            }
            Self::BadPath(e) => ProviderError::invalid_store(format!(
                "{context}: jsonPath {:?} is not a valid JSONPath: {e}",
                path.unwrap_or("")
            )),
            // Not `NotFound`: upstream only treats a 404 as "does not exist", and only a
            // confirmed "does not exist" may lead to deleting data.
            Self::NoMatch => {
                ProviderError::invalid_request(format!("{context}: the response has no value{at}"))
            }
            Self::NotAMap(kind) => ProviderError::invalid_request(format!(
                "{context}: the response{at} is {kind}, not a JSON object"
            )),
        }
    }
}

fn query<'a>(doc: &'a Value, path: &str) -> Result<Vec<&'a Value>, ResultError> {
    doc.query(path)
        .map_err(|e| ResultError::BadPath(e.to_string()))
}

/// `get_secret`: the whole body when no JSONPath is set; otherwise the first match, as
/// upstream's `extractSecretData` formats it.
pub(crate) fn secret_value(body: &[u8], path: Option<&str>) -> Result<Vec<u8>, ResultError> {
    let Some(path) = path else {
        return Ok(body.to_vec());
    };
    let doc: Value = serde_json::from_slice(body).map_err(ResultError::NotJson)?;
    let matches = query(&doc, path)?;
    let first = matches.first().ok_or(ResultError::NoMatch)?;
    scalar_bytes(first)
}

/// Upstream's `extractSecretData`: strings raw, `null` empty, booleans as text, numbers with
/// Go's `strconv.FormatFloat(v, 'f', 0, 64)` (so fractions are rounded, as upstream does), the
/// first element of a list, objects as JSON.
fn scalar_bytes(value: &Value) -> Result<Vec<u8>, ResultError> {
    Ok(match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Null => Vec::new(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string().into_bytes(),
            (_, Some(u)) => u.to_string().into_bytes(),
            _ => format!("{:.0}", n.as_f64().unwrap_or(0.0)).into_bytes(),
        },
        Value::Array(items) => {
            return items
                .first()
                .ok_or(ResultError::NoMatch)
                .and_then(scalar_bytes);
        }
        Value::Object(_) => value.to_string().into_bytes(),
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `get_secret_map`: the body (or the JSONPath's match) must be a JSON object, or a string
/// holding one; string values are taken as they are, others as JSON.
pub(crate) fn secret_map(body: &[u8], path: Option<&str>) -> Result<SecretData, ResultError> {
    let doc: Value = serde_json::from_slice(body).map_err(ResultError::NotJson)?;
    let selected = match path {
        None => doc,
        Some(path) => {
            let matches = query(&doc, path)?;
            match matches.as_slice() {
                [] => return Err(ResultError::NoMatch),
                [one] => (*one).clone(),
                // Upstream gets a list here and refuses it.
                _ => return Err(ResultError::NotAMap("a list")),
            }
        }
    };
    // Upstream: a string is parsed as JSON once more (APIs that wrap JSON in a string field).
    let selected = match selected {
        Value::String(s) => serde_json::from_str(&s).map_err(ResultError::NotJson)?,
        other => other,
    };
    let Value::Object(map) = selected else {
        return Err(ResultError::NotAMap(kind_of(&selected)));
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            (k, bytes)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"{
        "data": {"value": "s3cret", "n": 42, "f": 2.75, "ok": true, "nil": null,
                 "obj": {"a": 1}, "list": ["x", "y"]},
        "items": [{"name": "db", "value": "pw1"}, {"name": "api", "value": "pw2"}],
        "wrapped": "{\"user\":\"ann\",\"port\":5432}"
    }"#;

    fn get(path: &str) -> Vec<u8> {
        secret_value(DOC, Some(path)).unwrap()
    }

    #[test]
    fn get_follows_upstream_formatting() {
        assert_eq!(get("$.data.value"), b"s3cret");
        assert_eq!(get("$['data']['value']"), b"s3cret");
        assert_eq!(get("$.data.n"), b"42");
        assert_eq!(get("$.data.f"), b"3");
        assert_eq!(get("$.data.ok"), b"true");
        assert_eq!(get("$.data.nil"), b"");
        assert_eq!(get("$.data.obj"), br#"{"a":1}"#);
        assert_eq!(get("$.data.list"), b"x");
        assert_eq!(get("$.items[1].value"), b"pw2");
        assert_eq!(get("$.items[*].value"), b"pw1");
        assert_eq!(get("$.items[?(@.name == 'api')].value"), b"pw2");
        assert_eq!(get(r#"$.items[?(@.name == "api")].value"#), b"pw2");
        assert_eq!(secret_value(b"raw text", None).unwrap(), b"raw text");
    }

    #[test]
    fn get_reports_missing_paths_bad_paths_and_non_json() {
        assert!(matches!(
            secret_value(DOC, Some("$.data.missing")),
            Err(ResultError::NoMatch)
        ));
        assert!(matches!(
            secret_value(DOC, Some("$.items[?(@.name == 'x')].value")),
            Err(ResultError::NoMatch)
        ));
        assert!(matches!(
            secret_value(DOC, Some("$.[[")),
            Err(ResultError::BadPath(_))
        ));
        assert!(matches!(
            secret_value(b"<html>", Some("$.a")),
            Err(ResultError::NotJson(_))
        ));
    }

    #[test]
    fn map_needs_an_object_or_a_string_holding_one() {
        let m = secret_map(DOC, Some("$.data")).unwrap();
        assert_eq!(m["value"], b"s3cret");
        assert_eq!(m["n"], b"42");
        assert_eq!(m["obj"], br#"{"a":1}"#);
        assert_eq!(m["nil"], b"null");
        let m = secret_map(DOC, Some("$.wrapped")).unwrap();
        assert_eq!(m["user"], b"ann");
        assert_eq!(m["port"], b"5432");
        let whole = secret_map(br#"{"a":"1"}"#, None).unwrap();
        assert_eq!(whole["a"], b"1");
        assert!(matches!(
            secret_map(DOC, Some("$.data.list")),
            Err(ResultError::NotAMap("a list"))
        ));
        assert!(matches!(
            secret_map(DOC, Some("$.items[*]")),
            Err(ResultError::NotAMap(_))
        ));
        let err = secret_map(DOC, Some("$.data.n"))
            .unwrap_err()
            .into_provider_error("GET http://h/x answered 200 OK", Some("$.data.n"));
        assert_eq!(
            err.message(),
            "GET http://h/x answered 200 OK: the response at jsonPath \"$.data.n\" is a number, not a JSON object"
        );
    }
}
