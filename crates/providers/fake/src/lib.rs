//! `eso-provider-fake`: upstream's `fake` provider. A store's `spec.provider.fake.data[]` is the
//! remote data (key, value, version, and the deprecated valueMap); reads need no server, so
//! tests and `sync-once`'s embedded quickstart use it. Pushes and deletes change the client's
//! own copy of the data (the store spec itself is never written), as upstream's fake does.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use eso_api::provider::FakeProvider as FakeSpec;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind, SecretStoreCapabilities};
use eso_provider::find::FindMatcher;
use eso_provider::{
    ClientContext, Provider, ProviderError, PushRemoteRef, PushRequest, SecretData, SecretsClient,
    StoreInfo, ValidationResult, property,
};

/// The `fake` provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeProvider;

fn spec_of(store: &StoreInfo) -> Result<&FakeSpec, ProviderError> {
    store.spec.provider.fake.as_ref().ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{}: spec.provider.fake is not set",
            store.describe()
        ))
    })
}

#[async_trait]
impl Provider for FakeProvider {
    fn key(&self) -> &'static str {
        "fake"
    }

    fn display_name(&self) -> &'static str {
        "Fake"
    }

    fn capabilities(&self) -> SecretStoreCapabilities {
        SecretStoreCapabilities::ReadWrite
    }

    fn validate_store(&self, store: &StoreInfo) -> Result<Vec<String>, ProviderError> {
        let spec = spec_of(store)?;
        for (i, entry) in spec.data.iter().enumerate() {
            if entry.key.is_empty() {
                return Err(ProviderError::invalid_store(format!(
                    "{}: spec.provider.fake.data[{i}].key must not be empty",
                    store.describe()
                )));
            }
        }
        Ok(vec![
            "the fake provider is meant for tests and demos".to_owned(),
        ])
    }

    async fn new_client(
        &self,
        ctx: ClientContext<'_>,
    ) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        let spec = spec_of(ctx.store)?;
        let mut entries = BTreeMap::new();
        for entry in &spec.data {
            let value = match &entry.value {
                Some(v) => Entry::Value(v.clone()),
                None => Entry::Map(entry.value_map.clone()),
            };
            entries.insert(
                (entry.key.clone(), entry.version.clone().unwrap_or_default()),
                value,
            );
        }
        Ok(Arc::new(FakeClient {
            entries: RwLock::new(entries),
        }))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Value(String),
    Map(BTreeMap<String, String>),
}

/// A client of one fake store.
#[derive(Debug)]
pub struct FakeClient {
    /// (key, version) -> value; an empty version answers requests without one.
    entries: RwLock<BTreeMap<(String, String), Entry>>,
}

impl FakeClient {
    fn lookup(&self, key: &str, version: Option<&str>) -> Result<Entry, ProviderError> {
        let entries = self
            .entries
            .read()
            .map_err(|_| ProviderError::unavailable("fake store state is poisoned"))?;
        entries
            .get(&(key.to_owned(), version.unwrap_or_default().to_owned()))
            .cloned()
            .ok_or_else(|| match version {
                Some(v) => ProviderError::not_found(&format!("{key}@{v}")),
                None => ProviderError::not_found(key),
            })
    }
}

fn entry_text(entry: &Entry) -> String {
    match entry {
        Entry::Value(v) => v.clone(),
        // A valueMap read as a single value is its JSON object, keys sorted.
        Entry::Map(m) => serde_json::to_string(m).unwrap_or_default(),
    }
}

#[async_trait]
impl SecretsClient for FakeClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let entry = self.lookup(&remote.key, remote.version.as_deref())?;
        let text = entry_text(&entry);
        match remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(text.into_bytes()),
            Some(prop) => property::extract(text.as_bytes(), prop, &remote.key)?
                .ok_or_else(|| ProviderError::not_found(&format!("{}.{prop}", remote.key))),
        }
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let entry = self.lookup(&remote.key, remote.version.as_deref())?;
        if let (Entry::Map(map), None) = (&entry, &remote.property) {
            return Ok(map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                .collect());
        }
        let value = self.get_secret(remote).await?;
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&value)
            .map_err(|e| {
                ProviderError::invalid_request(format!(
                    "cannot split {:?} into keys: the value is not a JSON object",
                    remote.key
                ))
                .with_source(e)
            })?;
        Ok(object
            .into_iter()
            .map(|(k, v)| (k, property::value_bytes(&v)))
            .collect())
    }

    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        let matcher = FindMatcher::new(find)?;
        if matcher.has_tags() {
            return Err(ProviderError::unsupported(
                "the fake provider does not support find by tags",
            ));
        }
        let entries = self
            .entries
            .read()
            .map_err(|_| ProviderError::unavailable("fake store state is poisoned"))?;
        let found: SecretData = entries
            .iter()
            .filter(|((key, version), _)| {
                version.is_empty() && matcher.matches_path(key) && matcher.matches_name(key)
            })
            .map(|((key, _), entry)| (key.clone(), entry_text(entry).into_bytes()))
            .collect();
        // As upstream's fake provider: the find's key conversion happens here, before the
        // entry's rewrite (`/db/password` is `_db_password` for a rewrite to match).
        eso_provider::convert::convert_keys(find.conversion_strategy.unwrap_or_default(), found)
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let value = String::from_utf8(request.value.clone()).map_err(|_| {
            ProviderError::invalid_request("the fake provider stores text values only")
        })?;
        let mut entries = self
            .entries
            .write()
            .map_err(|_| ProviderError::unavailable("fake store state is poisoned"))?;
        let slot = (request.remote.remote_key.clone(), String::new());
        let new_entry = match request.remote.property.as_deref().filter(|p| !p.is_empty()) {
            None => Entry::Value(value),
            Some(prop) => {
                let mut object = match entries.get(&slot) {
                    Some(existing) => serde_json::from_str::<
                        serde_json::Map<String, serde_json::Value>,
                    >(&entry_text(existing))
                    .unwrap_or_default(),
                    None => serde_json::Map::new(),
                };
                object.insert(prop.to_owned(), serde_json::Value::String(value));
                Entry::Value(serde_json::Value::Object(object).to_string())
            }
        };
        entries.insert(slot, new_entry);
        Ok(())
    }

    async fn delete_secret(&self, remote: &PushRemoteRef) -> Result<(), ProviderError> {
        let mut entries = self
            .entries
            .write()
            .map_err(|_| ProviderError::unavailable("fake store state is poisoned"))?;
        entries.remove(&(remote.remote_key.clone(), String::new()));
        Ok(())
    }

    async fn secret_exists(&self, remote: &PushRemoteRef) -> Result<bool, ProviderError> {
        match self.lookup(&remote.remote_key, None) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        Ok(ValidationResult::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::provider::FakeProviderData;
    use eso_api::{FindName, SecretStoreSpec};
    use eso_provider::StaticSecretReader;

    fn store(data: Vec<FakeProviderData>) -> StoreInfo {
        let mut spec = SecretStoreSpec::default();
        spec.provider.fake = Some(FakeSpec { data });
        StoreInfo::secret_store("fake", "default", spec)
    }

    fn entry(key: &str, value: &str, version: Option<&str>) -> FakeProviderData {
        FakeProviderData {
            key: key.into(),
            value: Some(value.into()),
            version: version.map(Into::into),
            ..Default::default()
        }
    }

    async fn client(data: Vec<FakeProviderData>) -> Arc<dyn SecretsClient> {
        let store = store(data);
        let reader = StaticSecretReader::new();
        FakeProvider
            .new_client(ClientContext {
                store: &store,
                namespace: "default",
                secrets: &reader,
                config_maps: &eso_provider::StaticConfigMapReader::new(),
                tokens: None,
            })
            .await
            .unwrap()
    }

    fn remote(key: &str) -> ExternalSecretDataRemoteRef {
        ExternalSecretDataRemoteRef {
            key: key.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn reads_values_versions_and_properties() {
        let c = client(vec![
            entry("db", r#"{"user":"admin","nested":{"port":5432}}"#, None),
            entry("db", "old", Some("v1")),
        ])
        .await;
        assert_eq!(
            c.get_secret(&remote("db")).await.unwrap(),
            br#"{"user":"admin","nested":{"port":5432}}"#
        );
        let v1 = ExternalSecretDataRemoteRef {
            version: Some("v1".into()),
            ..remote("db")
        };
        assert_eq!(c.get_secret(&v1).await.unwrap(), b"old");
        let prop = ExternalSecretDataRemoteRef {
            property: Some("nested.port".into()),
            ..remote("db")
        };
        assert_eq!(c.get_secret(&prop).await.unwrap(), b"5432");
        let missing_prop = ExternalSecretDataRemoteRef {
            property: Some("nope".into()),
            ..remote("db")
        };
        assert!(
            c.get_secret(&missing_prop)
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(
            c.get_secret(&remote("absent"))
                .await
                .unwrap_err()
                .is_not_found()
        );
        let v2 = ExternalSecretDataRemoteRef {
            version: Some("v2".into()),
            ..remote("db")
        };
        assert!(c.get_secret(&v2).await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn splits_json_objects_and_value_maps() {
        let mut map_entry = FakeProviderData {
            key: "legacy".into(),
            ..Default::default()
        };
        map_entry.value_map.insert("a".into(), "1".into());
        let c = client(vec![
            entry("db", r#"{"user":"admin","port":5432}"#, None),
            map_entry,
            entry("plain", "x", None),
        ])
        .await;
        let map = c.get_secret_map(&remote("db")).await.unwrap();
        assert_eq!(map["user"], b"admin");
        assert_eq!(map["port"], b"5432");
        assert_eq!(
            c.get_secret_map(&remote("legacy")).await.unwrap()["a"],
            b"1"
        );
        let err = c.get_secret_map(&remote("plain")).await.unwrap_err();
        assert_eq!(err.kind(), eso_provider::ErrorKind::InvalidRequest);
    }

    #[tokio::test]
    async fn finds_by_name_and_path() {
        let c = client(vec![
            entry("app/db", "1", None),
            entry("app/api", "2", None),
            entry("other/db", "3", None),
        ])
        .await;
        let find = ExternalSecretFind {
            name: Some(FindName {
                regexp: Some("db$".into()),
            }),
            ..Default::default()
        };
        // As upstream's fake provider, find converts the keys itself (Default strategy).
        let found = c.get_all_secrets(&find).await.unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), ["app_db", "other_db"]);
        let by_path = ExternalSecretFind {
            path: Some("app/".into()),
            ..Default::default()
        };
        assert_eq!(c.get_all_secrets(&by_path).await.unwrap().len(), 2);
        let by_tags = ExternalSecretFind {
            tags: [("a".to_owned(), "b".to_owned())].into(),
            ..Default::default()
        };
        assert!(c.get_all_secrets(&by_tags).await.is_err());
    }

    #[tokio::test]
    async fn push_delete_and_exists() {
        let c = client(vec![]).await;
        let target = PushRemoteRef {
            remote_key: "pushed".into(),
            property: None,
        };
        assert!(!c.secret_exists(&target).await.unwrap());
        c.push_secret(&PushRequest {
            value: b"v".to_vec(),
            remote: target.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(c.get_secret(&remote("pushed")).await.unwrap(), b"v");
        let with_prop = PushRemoteRef {
            remote_key: "obj".into(),
            property: Some("k".into()),
        };
        c.push_secret(&PushRequest {
            value: b"1".to_vec(),
            remote: with_prop,
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(c.get_secret_map(&remote("obj")).await.unwrap()["k"], b"1");
        c.delete_secret(&target).await.unwrap();
        assert!(!c.secret_exists(&target).await.unwrap());
    }

    #[test]
    fn store_without_fake_spec_is_invalid() {
        let mut s = store(vec![]);
        s.spec.provider.fake = None;
        assert!(FakeProvider.validate_store(&s).is_err());
        assert!(
            FakeProvider
                .validate_store(&store(vec![entry("", "v", None)]))
                .is_err()
        );
    }
}
