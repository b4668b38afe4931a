//! Reading manifests (multi-document YAML or JSON) into the objects offline rendering needs:
//! SecretStores, ClusterSecretStores, ExternalSecrets, and the Secrets, ConfigMaps and
//! Namespaces that stand in for the cluster's. Errors name the file, the document and the field.

use std::collections::BTreeMap;
use std::fmt;

use eso_api::{ClusterSecretStore, ExternalSecret, SecretStore};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where an object came from: a file (or `-` for standard input) and the 1-based index of the
/// document in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    /// The file name as given.
    pub file: String,
    /// The document's 1-based index among the file's non-empty documents.
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)
    }
}

/// An object with its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    /// Where it came from.
    pub source: Source,
    /// The object.
    pub object: T,
}

/// A manifest that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The text is not YAML or JSON.
    #[error("{file}: not valid YAML or JSON: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A document is not an object with apiVersion and kind.
    #[error("{at}: {message}")]
    Shape {
        /// Where.
        at: Source,
        /// What is wrong.
        message: String,
    },
    /// An apiVersion/kind this tool does not read.
    #[error(
        "{at}: unsupported kind {kind:?} with apiVersion {api_version:?} (expected SecretStore, ClusterSecretStore or ExternalSecret of external-secrets.io/v1, a generator of generators.external-secrets.io/v1alpha1, or v1 Secret, ConfigMap, Namespace or List)"
    )]
    UnknownKind {
        /// Where.
        at: Source,
        /// The document's apiVersion.
        api_version: String,
        /// The document's kind.
        kind: String,
    },
    /// A field has the wrong type or value.
    #[error("{at}: {object}: field {path}: {message}")]
    Field {
        /// Where.
        at: Source,
        /// The object's kind and name, e.g. `ExternalSecret "db"`.
        object: String,
        /// The field's path, e.g. `spec.data[0].remoteRef`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Two documents define the same object.
    #[error("{at}: {kind} {name:?} is defined twice (first at {first})")]
    Duplicate {
        /// Where the second one is.
        at: Source,
        /// The object's kind.
        kind: String,
        /// `namespace/name` or `name`.
        name: String,
        /// Where the first one is.
        first: Source,
    },
}

/// The objects read from a set of manifests.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    /// The namespace given to namespaced objects that set none.
    pub default_namespace: String,
    /// SecretStores by (namespace, name).
    pub stores: BTreeMap<(String, String), Sourced<SecretStore>>,
    /// ClusterSecretStores by name.
    pub cluster_stores: BTreeMap<String, Sourced<ClusterSecretStore>>,
    /// ExternalSecrets in input order.
    pub external_secrets: Vec<Sourced<ExternalSecret>>,
    /// Secrets by (namespace, name).
    pub secrets: BTreeMap<(String, String), Sourced<Secret>>,
    /// ConfigMaps by (namespace, name).
    pub config_maps: BTreeMap<(String, String), Sourced<ConfigMap>>,
    /// Namespaces by name.
    pub namespaces: BTreeMap<String, Sourced<Namespace>>,
    /// Generator objects (`generators.external-secrets.io/v1alpha1`, and ClusterGenerators).
    pub generators: crate::generate::StaticGenerators,
}

fn document_name(doc: &Value) -> String {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_owned()
}

fn typed<T: DeserializeOwned>(doc: Value, source: &Source, kind: &str) -> Result<T, ManifestError> {
    let name = document_name(&doc);
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        ManifestError::Field {
            at: source.clone(),
            object: format!("{kind} {name:?}"),
            path: if path == "." {
                "(document)".to_owned()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })
}

impl ManifestSet {
    /// An empty set whose objects without a namespace go to `default_namespace`.
    #[must_use]
    pub fn new(default_namespace: &str) -> Self {
        Self {
            default_namespace: default_namespace.to_owned(),
            ..Self::default()
        }
    }

    /// Reads every document of one file's text. Documents that fail are reported; the
    /// others are kept.
    pub fn add_text(&mut self, file: &str, text: &str) -> Vec<ManifestError> {
        let docs: Vec<Value> = match serde_saphyr::from_multiple(text) {
            Ok(docs) => docs,
            Err(e) => {
                return vec![ManifestError::Syntax {
                    file: file.to_owned(),
                    message: e.to_string(),
                }];
            }
        };
        let mut errors = Vec::new();
        for (i, doc) in docs.into_iter().enumerate() {
            let source = Source {
                file: file.to_owned(),
                document: i + 1,
            };
            if let Err(e) = self.add_document(doc, &source) {
                errors.extend(e);
            }
        }
        errors
    }

    fn add_document(&mut self, doc: Value, source: &Source) -> Result<(), Vec<ManifestError>> {
        let shape = |message: &str| {
            vec![ManifestError::Shape {
                at: source.clone(),
                message: message.to_owned(),
            }]
        };
        if !doc.is_object() {
            return Err(shape(
                "a document must be a mapping with apiVersion and kind",
            ));
        }
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = doc
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if api_version.is_empty() || kind.is_empty() {
            return Err(shape("apiVersion and kind are required"));
        }
        if kind != "List"
            && doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(shape(&format!("{kind}: metadata.name is required")));
        }
        let ns = |doc: &Value| {
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(&self.default_namespace)
                .to_owned()
        };
        let one = |e| vec![e];
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "List") => {
                let items = doc
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut errors = Vec::new();
                for item in items {
                    if let Err(e) = self.add_document(item, source) {
                        errors.extend(e);
                    }
                }
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors)
                }
            }
            (eso_api::generators::GENERATORS_API_VERSION, _)
                if kind == eso_api::generators::CLUSTER_GENERATOR_KIND
                    || eso_api::generators::GeneratorKind::parse(&kind).is_some() =>
            {
                let mut doc = doc;
                if kind != eso_api::generators::CLUSTER_GENERATOR_KIND {
                    doc["metadata"]["namespace"] = Value::String(ns(&doc));
                }
                eso_api::generators::ResolvedGenerator::from_object(&doc).map_err(|e| {
                    one(ManifestError::Field {
                        at: source.clone(),
                        object: format!("{kind} {:?}", document_name(&doc)),
                        path: "spec".to_owned(),
                        message: e.to_string(),
                    })
                })?;
                self.generators.insert(doc, &self.default_namespace);
                Ok(())
            }
            (eso_api::V1, "ExternalSecret") => {
                let namespace = ns(&doc);
                let mut es: ExternalSecret = typed(doc, source, &kind).map_err(one)?;
                es.metadata.namespace = Some(namespace.clone());
                let name = es.metadata.name.clone().unwrap_or_default();
                if let Some(first) = self.external_secrets.iter().find(|o| {
                    o.object.metadata.name.as_deref() == Some(&name)
                        && o.object.metadata.namespace.as_deref() == Some(&namespace)
                }) {
                    return Err(one(ManifestError::Duplicate {
                        at: source.clone(),
                        kind,
                        name: format!("{namespace}/{name}"),
                        first: first.source.clone(),
                    }));
                }
                self.external_secrets.push(Sourced {
                    source: source.clone(),
                    object: es,
                });
                Ok(())
            }
            (eso_api::V1, "SecretStore") => {
                let namespace = ns(&doc);
                let mut store: SecretStore = typed(doc, source, &kind).map_err(one)?;
                store.metadata.namespace = Some(namespace.clone());
                let key = (namespace, store.metadata.name.clone().unwrap_or_default());
                insert_unique(
                    &mut self.stores,
                    key.clone(),
                    format!("{}/{}", key.0, key.1),
                    &kind,
                    source,
                    store,
                )
                .map_err(one)
            }
            (eso_api::V1, "ClusterSecretStore") => {
                let store: ClusterSecretStore = typed(doc, source, &kind).map_err(one)?;
                let name = store.metadata.name.clone().unwrap_or_default();
                insert_unique(
                    &mut self.cluster_stores,
                    name.clone(),
                    name,
                    &kind,
                    source,
                    store,
                )
                .map_err(one)
            }
            ("v1", "Secret") => {
                let namespace = ns(&doc);
                let mut secret: Secret = typed(doc, source, &kind).map_err(one)?;
                secret.metadata.namespace = Some(namespace.clone());
                // stringData is write-only sugar for data; fold it in as the API server does.
                if let Some(string_data) = secret.string_data.take() {
                    let data = secret.data.get_or_insert_with(BTreeMap::new);
                    for (k, v) in string_data {
                        data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
                    }
                }
                let key = (namespace, secret.metadata.name.clone().unwrap_or_default());
                insert_unique(
                    &mut self.secrets,
                    key.clone(),
                    format!("{}/{}", key.0, key.1),
                    &kind,
                    source,
                    secret,
                )
                .map_err(one)
            }
            ("v1", "ConfigMap") => {
                let namespace = ns(&doc);
                let mut cm: ConfigMap = typed(doc, source, &kind).map_err(one)?;
                cm.metadata.namespace = Some(namespace.clone());
                let key = (namespace, cm.metadata.name.clone().unwrap_or_default());
                insert_unique(
                    &mut self.config_maps,
                    key.clone(),
                    format!("{}/{}", key.0, key.1),
                    &kind,
                    source,
                    cm,
                )
                .map_err(one)
            }
            ("v1", "Namespace") => {
                let namespace: Namespace = typed(doc, source, &kind).map_err(one)?;
                let name = namespace.metadata.name.clone().unwrap_or_default();
                insert_unique(
                    &mut self.namespaces,
                    name.clone(),
                    name,
                    &kind,
                    source,
                    namespace,
                )
                .map_err(one)
            }
            _ => Err(one(ManifestError::UnknownKind {
                at: source.clone(),
                api_version,
                kind,
            })),
        }
    }
}

fn insert_unique<K: Ord, T>(
    map: &mut BTreeMap<K, Sourced<T>>,
    key: K,
    display: String,
    kind: &str,
    source: &Source,
    object: T,
) -> Result<(), ManifestError> {
    if let Some(first) = map.get(&key) {
        return Err(ManifestError::Duplicate {
            at: source.clone(),
            kind: kind.to_owned(),
            name: display,
            first: first.source.clone(),
        });
    }
    map.insert(
        key,
        Sourced {
            source: source.clone(),
            object,
        },
    );
    Ok(())
}
