//! Store resolution: from an ExternalSecret's store reference to the store it may use, with
//! upstream's rules (a SecretStore in the same namespace; a ClusterSecretStore whose
//! `spec.conditions` admit the namespace).

use std::collections::BTreeMap;

use eso_api::{SecretStoreRef, StoreKind};
use eso_provider::StoreInfo;
use regex::Regex;

/// Where stores and namespace labels come from: the watch cache in the operator, the input
/// manifests in `sync-once render`.
pub trait StoreLookup: Send + Sync {
    /// The store of that kind and name; `namespace` is ignored for ClusterSecretStores.
    fn store(&self, kind: StoreKind, namespace: &str, name: &str) -> Option<StoreInfo>;

    /// The labels of a namespace (including `kubernetes.io/metadata.name`), used by
    /// ClusterSecretStore conditions.
    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String>;
}

/// Why a store reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Neither the entry nor the spec names a store.
    #[error("no store is referenced (set spec.secretStoreRef or the entry's sourceRef.storeRef)")]
    NoStoreRef,
    /// The referenced store does not exist.
    #[error("{kind} {name:?} not found{}", in_namespace(namespace.as_deref()))]
    NotFound {
        /// The kind referenced.
        kind: &'static str,
        /// The namespace searched (SecretStores only).
        namespace: Option<String>,
        /// The name referenced.
        name: String,
    },
    /// A ClusterSecretStore's conditions do not admit the namespace.
    #[error(
        "using ClusterSecretStore {name:?} is not allowed from namespace {namespace:?}: denied by spec.conditions"
    )]
    NotAllowed {
        /// The store's name.
        name: String,
        /// The ExternalSecret's namespace.
        namespace: String,
    },
    /// A condition's namespace regexp does not compile.
    #[error(
        "ClusterSecretStore {name:?}: spec.conditions namespaceRegexes {regex:?} is not a valid regular expression"
    )]
    InvalidCondition {
        /// The store's name.
        name: String,
        /// The bad expression.
        regex: String,
    },
}

fn in_namespace(ns: Option<&str>) -> String {
    ns.map(|n| format!(" in namespace {n:?}"))
        .unwrap_or_default()
}

impl StoreError {
    /// A PascalCase code for condition reasons and events.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoStoreRef => "NoStoreRef",
            Self::NotFound { .. } => "StoreNotFound",
            Self::NotAllowed { .. } => "StoreNotAllowed",
            Self::InvalidCondition { .. } => "InvalidStoreConfig",
        }
    }
}

/// Resolves the store an entry uses: its own `sourceRef.storeRef` if set, else the spec's.
pub fn resolve_store(
    lookup: &dyn StoreLookup,
    namespace: &str,
    entry_ref: Option<&SecretStoreRef>,
    spec_ref: Option<&SecretStoreRef>,
) -> Result<StoreInfo, StoreError> {
    let store_ref = entry_ref
        .filter(|r| r.name.as_deref().is_some_and(|n| !n.is_empty()))
        .or(spec_ref)
        .ok_or(StoreError::NoStoreRef)?;
    let name = store_ref
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(StoreError::NoStoreRef)?;
    let kind = store_ref.kind();
    let store = lookup
        .store(kind, namespace, name)
        .ok_or_else(|| StoreError::NotFound {
            kind: kind.as_str(),
            namespace: (kind == StoreKind::SecretStore).then(|| namespace.to_owned()),
            name: name.to_owned(),
        })?;
    if kind == StoreKind::ClusterSecretStore {
        check_namespace_allowed(&store, namespace, &lookup.namespace_labels(namespace))?;
    }
    Ok(store)
}

/// Applies a ClusterSecretStore's `spec.conditions`: with none every namespace may use it;
/// otherwise any selector, name or regexp of any condition must match.
pub fn check_namespace_allowed(
    store: &StoreInfo,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    let conditions = &store.spec.conditions;
    if conditions.is_empty() {
        return Ok(());
    }
    for condition in conditions {
        if condition.namespaces.iter().any(|n| n == namespace) {
            return Ok(());
        }
        if let Some(selector) = &condition.namespace_selector
            && crate::selector::matches(selector, namespace_labels)
        {
            return Ok(());
        }
        for pattern in &condition.namespace_regexes {
            let re = Regex::new(pattern).map_err(|_| StoreError::InvalidCondition {
                name: store.name.clone(),
                regex: pattern.clone(),
            })?;
            if re.is_match(namespace) {
                return Ok(());
            }
        }
    }
    Err(StoreError::NotAllowed {
        name: store.name.clone(),
        namespace: namespace.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::{ClusterSecretStoreCondition, SecretStoreSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn css(conditions: Vec<ClusterSecretStoreCondition>) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::ClusterSecretStore,
            name: "global".into(),
            namespace: None,
            uid: None,
            generation: None,
            spec: SecretStoreSpec {
                conditions,
                ..Default::default()
            },
        }
    }

    fn labels(ns: &str) -> BTreeMap<String, String> {
        [
            ("kubernetes.io/metadata.name".to_owned(), ns.to_owned()),
            ("team".to_owned(), "a".to_owned()),
        ]
        .into()
    }

    #[test]
    fn cluster_store_without_conditions_allows_all() {
        assert!(check_namespace_allowed(&css(vec![]), "any", &labels("any")).is_ok());
    }

    #[test]
    fn cluster_store_conditions_by_name_selector_and_regex() {
        let by_name = css(vec![ClusterSecretStoreCondition {
            namespaces: vec!["prod".into()],
            ..Default::default()
        }]);
        assert!(check_namespace_allowed(&by_name, "prod", &labels("prod")).is_ok());
        let err = check_namespace_allowed(&by_name, "dev", &labels("dev")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "using ClusterSecretStore \"global\" is not allowed from namespace \"dev\": denied by spec.conditions"
        );

        let by_selector = css(vec![ClusterSecretStoreCondition {
            namespace_selector: Some(LabelSelector {
                match_labels: Some([("team".to_owned(), "a".to_owned())].into()),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        assert!(check_namespace_allowed(&by_selector, "dev", &labels("dev")).is_ok());
        assert!(check_namespace_allowed(&by_selector, "dev", &BTreeMap::new()).is_err());

        let by_regex = css(vec![ClusterSecretStoreCondition {
            namespace_regexes: vec!["^team-.*".into()],
            ..Default::default()
        }]);
        assert!(check_namespace_allowed(&by_regex, "team-x", &labels("team-x")).is_ok());
        assert!(check_namespace_allowed(&by_regex, "x-team", &labels("x-team")).is_err());
    }
}
