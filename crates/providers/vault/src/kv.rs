//! KV engine paths and values: where a remote key lives (upstream's `buildPath` /
//! `buildMetadataPath`), and how a Vault value becomes bytes, byte for byte as upstream's Go
//! code produces them.

use eso_api::provider::VaultKvVersion;
pub(crate) use eso_provider::property::go_json;
use eso_provider::{ProviderError, property};
use serde_json::{Map, Value};

/// How remote keys map to API paths for one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KvLayout {
    /// `spec.provider.vault.path`, without surrounding slashes.
    mount: Option<String>,
    version: VaultKvVersion,
}

/// A remote key split into its mount and the path inside the mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) mount: String,
    pub(crate) rel: String,
}

impl KvLayout {
    pub(crate) fn new(mount: Option<&str>, version: VaultKvVersion) -> Self {
        Self {
            mount: mount
                .map(|m| m.trim_matches('/').to_owned())
                .filter(|m| !m.is_empty()),
            version,
        }
    }

    pub(crate) fn is_v2(&self) -> bool {
        self.version == VaultKvVersion::V2
    }

    /// Splits a remote key. With a store path the key is relative to it (a leading
    /// `<path>/` and, on v2, `data/` are dropped, as upstream does). Without one, the mount is
    /// the part before `/data/` (v2, when present) or the first segment.
    pub(crate) fn locate(&self, key: &str) -> Location {
        let key = key.trim_start_matches('/');
        if let Some(mount) = &self.mount {
            let mut rel = key;
            if let Some(rest) = key
                .strip_prefix(mount.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                rel = rest;
                if self.is_v2()
                    && let Some(rest) = rel.strip_prefix("data/")
                {
                    rel = rest;
                }
            }
            return Location {
                mount: mount.clone(),
                rel: rel.to_owned(),
            };
        }
        if self.is_v2()
            && let Some((mount, rel)) = key.split_once("/data/")
        {
            return Location {
                mount: mount.to_owned(),
                rel: rel.to_owned(),
            };
        }
        match key.split_once('/') {
            Some((mount, rel)) => Location {
                mount: mount.to_owned(),
                rel: rel.to_owned(),
            },
            None => Location {
                mount: key.to_owned(),
                rel: String::new(),
            },
        }
    }

    /// The API path of a key's data (`<mount>/data/<rel>` on v2, `<mount>/<rel>` on v1).
    pub(crate) fn data_path(&self, key: &str) -> String {
        let loc = self.locate(key);
        join(&loc.mount, if self.is_v2() { "data" } else { "" }, &loc.rel)
    }

    /// The API path of a key's metadata (`<mount>/metadata/<rel>`, v2 only). Upstream refuses
    /// keys without `/data/` when the store has no path; this derives it from the data path
    /// instead, so every readable key also has metadata.
    pub(crate) fn metadata_path(&self, key: &str) -> Result<String, ProviderError> {
        if !self.is_v2() {
            return Err(ProviderError::invalid_request(
                "KV v1 stores have no metadata; use version v2",
            ));
        }
        let loc = self.locate(key);
        Ok(join(&loc.mount, "metadata", &loc.rel))
    }

    /// The API path to LIST for `find.path` (metadata on v2, the mount itself on v1), and the
    /// prefix that turns a listed name back into a remote key.
    pub(crate) fn list_root(
        &self,
        find_path: Option<&str>,
    ) -> Result<(String, String), ProviderError> {
        let find_path = find_path
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty());
        let (loc, key_prefix) = match (&self.mount, find_path) {
            (Some(_), Some(p)) => {
                let loc = self.locate(p);
                (loc.clone(), format!("{}/", loc.rel))
            }
            (Some(mount), None) => (
                Location {
                    mount: mount.clone(),
                    rel: String::new(),
                },
                String::new(),
            ),
            (None, Some(p)) => {
                let loc = self.locate(p);
                let prefix = if loc.rel.is_empty() {
                    format!("{}/", loc.mount)
                } else {
                    format!("{}/{}/", loc.mount, loc.rel)
                };
                (loc, prefix)
            }
            (None, None) => {
                return Err(ProviderError::invalid_request(
                    "find needs a mount: set the store's path or find.path",
                ));
            }
        };
        let middle = if self.is_v2() { "metadata" } else { "" };
        let key_prefix = if key_prefix == "/" {
            String::new()
        } else {
            key_prefix
        };
        Ok((join(&loc.mount, middle, &loc.rel), key_prefix))
    }
}

fn join(mount: &str, middle: &str, rel: &str) -> String {
    [mount, middle, rel]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// The bytes of one value, as upstream's `GetByteValue`: strings raw, `null` empty, numbers and
/// booleans as text, objects and arrays as Go JSON.
pub(crate) fn value_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Null => Vec::new(),
        Value::Bool(_) | Value::Number(_) => value.to_string().into_bytes(),
        Value::Object(_) | Value::Array(_) => go_json(value),
    }
}

/// Picks `property` out of a secret's data: a top-level key of that exact name first (for
/// backwards compatibility upstream prefers it over the gjson reading), then a gjson path.
/// `Ok(None)` when neither exists.
pub(crate) fn select(
    data: &Map<String, Value>,
    property: &str,
) -> Result<Option<Value>, ProviderError> {
    if let Some(v) = data.get(property) {
        return Ok(Some(v.clone()));
    }
    // Lookup needs an owned Value; the maps are small (one secret).
    property::lookup(&Value::Object(data.clone()), property)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v2(mount: Option<&str>) -> KvLayout {
        KvLayout::new(mount, VaultKvVersion::V2)
    }

    fn v1(mount: Option<&str>) -> KvLayout {
        KvLayout::new(mount, VaultKvVersion::V1)
    }

    #[test]
    fn data_paths_follow_upstream_build_path() {
        // The examples of upstream's buildPath doc comment.
        assert_eq!(
            v2(Some("secret/path")).data_path("foo"),
            "secret/path/data/foo"
        );
        assert_eq!(v1(Some("secret/path")).data_path("foo"), "secret/path/foo");
        assert_eq!(
            v2(Some("secret/path")).data_path("secret/path/foo"),
            "secret/path/data/foo"
        );
        assert_eq!(
            v2(Some("secret/path")).data_path("secret/path/data/foo"),
            "secret/path/data/foo"
        );
        assert_eq!(
            v1(Some("secret/path")).data_path("secret/path/foo"),
            "secret/path/foo"
        );
        assert_eq!(
            v2(None).data_path("secret/path/foo"),
            "secret/data/path/foo"
        );
        assert_eq!(
            v2(None).data_path("secret/path/data/foo"),
            "secret/path/data/foo"
        );
        assert_eq!(v1(None).data_path("secret/path/foo"), "secret/path/foo");
        assert_eq!(v2(Some("/secret/")).data_path("a/b"), "secret/data/a/b");
    }

    #[test]
    fn metadata_paths_mirror_data_paths() {
        assert_eq!(
            v2(Some("secret")).metadata_path("a/b").unwrap(),
            "secret/metadata/a/b"
        );
        assert_eq!(
            v2(Some("secret")).metadata_path("secret/data/a").unwrap(),
            "secret/metadata/a"
        );
        assert_eq!(
            v2(None).metadata_path("secret/a").unwrap(),
            "secret/metadata/a"
        );
        assert_eq!(
            v2(None).metadata_path("team/kv/data/a").unwrap(),
            "team/kv/metadata/a"
        );
        assert!(v1(Some("kv")).metadata_path("a").is_err());
    }

    #[test]
    fn list_roots_and_key_prefixes() {
        assert_eq!(
            v2(Some("secret")).list_root(None).unwrap(),
            ("secret/metadata".to_owned(), String::new())
        );
        assert_eq!(
            v2(Some("secret")).list_root(Some("app")).unwrap(),
            ("secret/metadata/app".to_owned(), "app/".to_owned())
        );
        assert_eq!(
            v1(Some("kv")).list_root(Some("app/")).unwrap(),
            ("kv/app".to_owned(), "app/".to_owned())
        );
        assert_eq!(
            v2(None).list_root(Some("secret/app")).unwrap(),
            ("secret/metadata/app".to_owned(), "secret/app/".to_owned())
        );
        assert!(v2(None).list_root(None).is_err());
    }

    #[test]
    fn value_bytes_follow_get_byte_value() {
        assert_eq!(value_bytes(&json!("s")), b"s");
        assert_eq!(value_bytes(&json!(null)), b"");
        assert_eq!(value_bytes(&json!(5432)), b"5432");
        assert_eq!(value_bytes(&json!(1.5)), b"1.5");
        assert_eq!(value_bytes(&json!(true)), b"true");
        assert_eq!(value_bytes(&json!({"x": [1]})), br#"{"x":[1]}"#);
    }

    #[test]
    fn select_prefers_plain_keys_over_paths() {
        let data = json!({"a.b": "plain", "a": {"b": "nested"}, "list": [{"n": 1}]});
        let data = data.as_object().unwrap();
        assert_eq!(select(data, "a.b").unwrap(), Some(json!("plain")));
        assert_eq!(select(data, "list.0.n").unwrap(), Some(json!(1)));
        assert_eq!(select(data, "missing").unwrap(), None);
    }
}
