//! Small fixture builders for tests of this crate and of its users (`ExternalSecret::test`-style
//! builders rather than YAML copied between tests).

#![allow(missing_docs)]

use std::collections::BTreeMap;

use eso_api::provider::{FakeProvider, FakeProviderData};
use eso_api::{
    CreationPolicy, DeletionPolicy, ExternalSecret, ExternalSecretData,
    ExternalSecretDataFromRemoteRef, ExternalSecretDataRemoteRef, ExternalSecretSpec,
    ExternalSecretTarget, SecretStore, SecretStoreRef, SecretStoreSpec, StoreKind,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// An ExternalSecret builder.
#[derive(Debug, Clone)]
pub struct EsBuilder(pub ExternalSecret);

impl EsBuilder {
    /// An ExternalSecret `default/<name>` reading from SecretStore `store`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self(ExternalSecret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            spec: ExternalSecretSpec {
                secret_store_ref: Some(SecretStoreRef {
                    name: Some("store".into()),
                    kind: Some(StoreKind::SecretStore),
                }),
                ..ExternalSecretSpec::default()
            },
            status: None,
        })
    }

    #[must_use]
    pub fn uid(mut self, uid: &str) -> Self {
        self.0.metadata.uid = Some(uid.to_owned());
        self
    }

    #[must_use]
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    fn target(&mut self) -> &mut ExternalSecretTarget {
        self.0
            .spec
            .target
            .get_or_insert_with(ExternalSecretTarget::default)
    }

    #[must_use]
    pub fn target_name(mut self, name: &str) -> Self {
        self.target().name = Some(name.to_owned());
        self
    }

    #[must_use]
    pub fn creation(mut self, policy: CreationPolicy) -> Self {
        self.target().creation_policy = Some(policy);
        self
    }

    #[must_use]
    pub fn deletion(mut self, policy: DeletionPolicy) -> Self {
        self.target().deletion_policy = Some(policy);
        self
    }

    #[must_use]
    pub fn immutable(mut self) -> Self {
        self.target().immutable = Some(true);
        self
    }

    #[must_use]
    pub fn data(mut self, secret_key: &str, remote_key: &str) -> Self {
        self.0.spec.data.push(ExternalSecretData {
            secret_key: secret_key.into(),
            remote_ref: ExternalSecretDataRemoteRef {
                key: remote_key.into(),
                ..Default::default()
            },
            source_ref: None,
        });
        self
    }

    #[must_use]
    pub fn data_ref(mut self, secret_key: &str, remote: ExternalSecretDataRemoteRef) -> Self {
        self.0.spec.data.push(ExternalSecretData {
            secret_key: secret_key.into(),
            remote_ref: remote,
            source_ref: None,
        });
        self
    }

    #[must_use]
    pub fn data_from(mut self, entry: ExternalSecretDataFromRemoteRef) -> Self {
        self.0.spec.data_from.push(entry);
        self
    }

    #[must_use]
    pub fn extract(self, remote_key: &str) -> Self {
        self.data_from(ExternalSecretDataFromRemoteRef {
            extract: Some(ExternalSecretDataRemoteRef {
                key: remote_key.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[must_use]
    pub fn build(self) -> ExternalSecret {
        self.0
    }
}

/// A SecretStore `default/<name>` on the fake provider with the given (key, value) data.
#[must_use]
pub fn fake_store(name: &str, data: &[(&str, &str)]) -> SecretStore {
    let mut spec = SecretStoreSpec::default();
    spec.provider.fake = Some(FakeProvider {
        data: data
            .iter()
            .map(|(k, v)| FakeProviderData {
                key: (*k).into(),
                value: Some((*v).into()),
                ..Default::default()
            })
            .collect(),
    });
    let mut store = SecretStore::new(name, spec);
    store.metadata.namespace = Some("default".into());
    store
}

/// A Secret `default/<name>` with the given data.
#[must_use]
pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Secret data from pairs.
#[must_use]
pub fn bytes(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// A namespace `name` with these labels.
#[must_use]
pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}
