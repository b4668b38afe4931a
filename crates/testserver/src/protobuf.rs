//! Just enough of the Kubernetes protobuf encoding to read what kubectl's typed generators
//! (`kubectl create namespace|secret|configmap|serviceaccount`) send. Everything else must be
//! JSON; answers are always JSON, which kubectl accepts.

use serde_json::{Map, Value, json};

use crate::status::ApiError;
use crate::store::b64;

const MAGIC: &[u8] = b"k8s\0";

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "eso-test-apiserver reads protobuf only for Namespace, Secret, ConfigMap and ServiceAccount metadata and data ({what}); send JSON"
        ),
    )
}

/// One protobuf field: number and payload (varint value or bytes).
enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (u32::try_from(key >> 3).ok()?, key & 7);
        match wire {
            0 => out.push(Field::Varint(num, varint(buf, &mut pos)?)),
            1 => pos += 8,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                out.push(Field::Bytes(num, buf.get(pos..pos + len)?));
                pos += len;
            }
            5 => pos += 4,
            _ => return None,
        }
    }
    Some(out)
}

fn string(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A `map<string, string>` (or bytes, base64-encoded as in JSON) entry.
fn map_entry(b: &[u8], bytes: bool, into: &mut Map<String, Value>) -> Option<()> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for f in fields(b)? {
        match f {
            Field::Bytes(1, x) => k = String::from_utf8_lossy(x).into_owned(),
            Field::Bytes(2, x) => v = if bytes { json!(b64(x)) } else { string(x) },
            _ => {}
        }
    }
    into.insert(k, v);
    Some(())
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for f in fields(b)? {
        match f {
            Field::Bytes(1, x) => {
                m.insert("name".into(), string(x));
            }
            Field::Bytes(2, x) => {
                m.insert("generateName".into(), string(x));
            }
            Field::Bytes(3, x) => {
                m.insert("namespace".into(), string(x));
            }
            Field::Bytes(6, x) => {
                m.insert("resourceVersion".into(), string(x));
            }
            Field::Bytes(11, x) => map_entry(x, false, &mut labels)?,
            Field::Bytes(12, x) => map_entry(x, false, &mut annotations)?,
            Field::Bytes(14, x) => finalizers.push(string(x)),
            Field::Bytes(13 | 17, _) => return None,
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Some(Value::Object(m))
}

fn object(kind: &str, raw: &[u8]) -> Option<Value> {
    let mut obj = json!({"apiVersion": "v1", "kind": kind});
    let (mut data, mut other) = (Map::new(), Map::new());
    for f in fields(raw)? {
        match (kind, f) {
            (_, Field::Bytes(1, x)) => obj["metadata"] = object_meta(x)?,
            ("Namespace", Field::Bytes(2, x)) => {
                let fins: Vec<Value> = fields(x)?
                    .into_iter()
                    .filter_map(|f| match f {
                        Field::Bytes(1, s) => Some(string(s)),
                        _ => None,
                    })
                    .collect();
                obj["spec"] = json!({"finalizers": fins});
            }
            ("Namespace", Field::Bytes(3, _)) => {}
            ("Secret", Field::Bytes(2, x)) => map_entry(x, true, &mut data)?,
            ("Secret", Field::Bytes(3, x)) => obj["type"] = string(x),
            ("Secret", Field::Bytes(4, x)) => map_entry(x, false, &mut other)?,
            ("Secret", Field::Varint(5, v)) | ("ConfigMap", Field::Varint(4, v)) => {
                obj["immutable"] = json!(v != 0)
            }
            ("ConfigMap", Field::Bytes(2, x)) => map_entry(x, false, &mut data)?,
            ("ConfigMap", Field::Bytes(3, x)) => map_entry(x, true, &mut other)?,
            ("TokenRequest", Field::Bytes(2, x)) => {
                let mut spec = Map::new();
                let mut audiences = Vec::new();
                for f in fields(x)? {
                    match f {
                        Field::Bytes(1, a) => audiences.push(string(a)),
                        Field::Varint(4, secs) => {
                            spec.insert("expirationSeconds".into(), json!(secs));
                        }
                        _ => {}
                    }
                }
                if !audiences.is_empty() {
                    spec.insert("audiences".into(), Value::Array(audiences));
                }
                obj["spec"] = Value::Object(spec);
            }
            ("TokenRequest", Field::Bytes(3, _)) => {}
            ("ServiceAccount", Field::Varint(4, v)) => {
                obj["automountServiceAccountToken"] = json!(v != 0)
            }
            _ => return None,
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !other.is_empty() {
        obj[if kind == "Secret" {
            "stringData"
        } else {
            "binaryData"
        }] = Value::Object(other);
    }
    Some(obj)
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| unsupported("no k8s protobuf envelope"))?;
    let (mut kind, mut raw) = (String::new(), None);
    for f in fields(rest).ok_or_else(|| unsupported("malformed envelope"))? {
        match f {
            Field::Bytes(1, tm) => {
                for t in fields(tm).ok_or_else(|| unsupported("malformed type meta"))? {
                    if let Field::Bytes(2, k) = t {
                        kind = String::from_utf8_lossy(k).into_owned();
                    }
                }
            }
            Field::Bytes(2, r) => raw = Some(r),
            _ => {}
        }
    }
    if !matches!(
        kind.as_str(),
        "Namespace" | "Secret" | "ConfigMap" | "ServiceAccount" | "TokenRequest"
    ) {
        return Err(unsupported(&format!("kind {kind}")));
    }
    object(&kind, raw.unwrap_or_default()).ok_or_else(|| unsupported(&format!("a field of {kind}")))
}
