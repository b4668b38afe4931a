//! Upstream's hashes, byte for byte: SHA3-224 (lowercase hex) over Go's `fmt.Sprintf("%+v", v)`.
//!
//! A Secret written by ESO carries `reconcile.external-secrets.io/data-hash`; computing the same
//! value here means a cluster moving from ESO to eso-rs sees every Secret as up to date and
//! rewrites none of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha3::{Digest, Sha3_224};

/// SHA3-224 of the text, as lowercase hex.
#[must_use]
pub fn sha3_224_hex(text: &str) -> String {
    let digest = Sha3_224::digest(text.as_bytes());
    let mut out = String::with_capacity(56);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Go's `%+v` of a `map[string][]byte`: `map[a:[104 105] b:[]]`, keys sorted.
#[must_use]
pub fn go_format_byte_map(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = String::from("map[");
    for (i, (key, value)) in data.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push_str(":[");
        for (j, byte) in value.iter().enumerate() {
            if j > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{byte}");
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// Go's `%+v` of a `map[string]string`: `map[a:b c:d]`, keys sorted.
#[must_use]
pub fn go_format_string_map(data: &BTreeMap<String, String>) -> String {
    let mut out = String::from("map[");
    for (i, (key, value)) in data.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push(':');
        out.push_str(value);
    }
    out.push(']');
    out
}

/// The `reconcile.external-secrets.io/data-hash` of a Secret's `.data`.
#[must_use]
pub fn secret_data_hash(data: &BTreeMap<String, Vec<u8>>) -> String {
    sha3_224_hex(&go_format_byte_map(data))
}

/// The `reconcile.external-secrets.io/created-by` label value for an ExternalSecret.
#[must_use]
pub fn created_by_value(namespace: &str, name: &str) -> String {
    sha3_224_hex(&format!("{namespace}/{name}"))
}

/// The hash part of `status.syncedResourceVersion`: upstream hashes an unexported struct of the
/// object's annotations and labels, which Go prints as `{annotations:map[...] labels:map[...]}`.
#[must_use]
pub fn metadata_hash(
    annotations: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> String {
    sha3_224_hex(&format!(
        "{{annotations:{} labels:{}}}",
        go_format_string_map(annotations),
        go_format_string_map(labels)
    ))
}

/// `status.syncedResourceVersion`: `"<generation>-<metadata hash>"`.
#[must_use]
pub fn synced_resource_version(
    generation: i64,
    annotations: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> String {
    format!("{generation}-{}", metadata_hash(annotations, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn go_formatting_of_byte_maps() {
        assert_eq!(go_format_byte_map(&BTreeMap::new()), "map[]");
        assert_eq!(
            go_format_byte_map(&bytes(&[("b", "hi"), ("a", "")])),
            "map[a:[] b:[104 105]]"
        );
    }

    #[test]
    fn sha3_224_known_vectors() {
        // FIPS 202 test vectors.
        assert_eq!(
            sha3_224_hex(""),
            "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"
        );
        assert_eq!(
            sha3_224_hex("abc"),
            "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"
        );
    }

    #[test]
    fn data_hash_is_sha3_of_go_format() {
        let data = bytes(&[("password", "s3cr3t"), ("user", "admin")]);
        assert_eq!(
            secret_data_hash(&data),
            sha3_224_hex("map[password:[115 51 99 114 51 116] user:[97 100 109 105 110]]")
        );
    }

    #[test]
    fn synced_resource_version_covers_labels_and_annotations() {
        let none = BTreeMap::new();
        let labels: BTreeMap<String, String> = [("app".to_owned(), "x".to_owned())].into();
        assert_eq!(
            synced_resource_version(3, &none, &labels),
            format!(
                "3-{}",
                sha3_224_hex("{annotations:map[] labels:map[app:x]}")
            )
        );
        assert_ne!(
            synced_resource_version(3, &none, &labels),
            synced_resource_version(3, &none, &none)
        );
    }
}
