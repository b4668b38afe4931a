//! The certificate authorities a store trusts: `caBundle` and `caProvider` (a key of a Secret
//! or ConfigMap), shared by every provider that talks TLS to a server the store names (vault,
//! webhook, kubernetes).
//!
//! The rules are upstream's `FetchCACertFromSource`: a non-empty `caBundle` wins and
//! `caProvider` is then not read; a ClusterSecretStore's `caProvider` must name its
//! namespace; a SecretStore's is always read from the store's own namespace and may not name
//! one (upstream's store validation refuses it), so a namespaced store can never borrow a
//! certificate, or probe for an object, in another namespace.

use base64::Engine;
use eso_api::StoreKind;
use eso_api::provider::{CaProvider, CaProviderType};

use crate::{ClientContext, ProviderError};

/// Static checks of a `caProvider` at `field` (e.g. `spec.provider.vault.caProvider`): the key
/// is set and the namespace follows the store kind's rule. Returns the message of the first
/// problem, without the store, for the provider's own `validate_store` wording.
pub fn check_ca_provider(ca: &CaProvider, kind: StoreKind, field: &str) -> Result<(), String> {
    if ca.name.is_empty() {
        return Err(format!("{field}.name is required"));
    }
    if ca.key.as_deref().is_none_or(str::is_empty) {
        return Err(format!("{field}.key is required"));
    }
    match (kind, ca.namespace.as_deref().filter(|n| !n.is_empty())) {
        (StoreKind::ClusterSecretStore, None) => Err(format!(
            "{field}.namespace is required on a ClusterSecretStore"
        )),
        (StoreKind::SecretStore, Some(_)) => {
            Err(format!("{field}.namespace is not allowed on a SecretStore"))
        }
        _ => Ok(()),
    }
}

/// Decodes a `caBundle`: base64 of PEM as the CRD asks for, or a bare PEM, which is
/// unambiguous and accepted too.
fn decode_ca_bundle(bundle: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let trimmed = bundle.trim();
    if trimmed.starts_with("-----BEGIN") {
        return Ok(trimmed.as_bytes().to_vec());
    }
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}

/// The PEM roots a store trusts, or `None` when it sets neither `caBundle` nor `caProvider`
/// (the platform's roots then apply, or the provider refuses, as it decides). `field` is the
/// object holding both, e.g. `spec.provider.webhook` or `spec.provider.kubernetes.server`.
///
/// Every error names the store and the field; one that names a missing Secret or ConfigMap
/// also names its namespace, name and key.
pub async fn load_ca_bundle(
    ctx: &ClientContext<'_>,
    ca_bundle: Option<&str>,
    ca_provider: Option<&CaProvider>,
    field: &str,
) -> Result<Option<Vec<u8>>, ProviderError> {
    let store = ctx.store;
    if let Some(bundle) = ca_bundle.filter(|b| !b.trim().is_empty()) {
        return decode_ca_bundle(bundle).map(Some).map_err(|e| {
            ProviderError::invalid_store(format!(
                "{}: {field}.caBundle is not base64",
                store.describe()
            ))
            .with_source(e)
        });
    }
    let Some(ca) = ca_provider else {
        return Ok(None);
    };
    let field = format!("{field}.caProvider");
    check_ca_provider(ca, store.kind, &field)
        .map_err(|m| ProviderError::invalid_store(format!("{}: {m}", store.describe())))?;
    let namespace = match (&store.namespace, &ca.namespace) {
        (Some(own), _) => own.as_str(),
        // `check_ca_provider` refused a ClusterSecretStore without one.
        (None, Some(ns)) => ns.as_str(),
        (None, None) => "",
    };
    let name = ca.name.as_str();
    // `check_ca_provider` refused an empty key.
    let key = ca.key.as_deref().unwrap_or_default();
    let (kind, value) = match ca.type_ {
        CaProviderType::Secret => {
            let data = ctx.secrets.secret_data(namespace, name).await?;
            let value = data.map(|mut d| d.remove(key));
            ("Secret", value)
        }
        CaProviderType::ConfigMap => {
            let data = ctx.config_maps.config_map_data(namespace, name).await?;
            let value = data.map(|mut d| d.remove(key).map(String::into_bytes));
            ("ConfigMap", value)
        }
    };
    match value {
        Some(Some(pem)) => Ok(Some(pem)),
        Some(None) => Err(ProviderError::invalid_store(format!(
            "{}: {field} refers to key {key:?} of {kind} \"{namespace}/{name}\", which it does not have",
            store.describe()
        ))),
        None => Err(ProviderError::invalid_store(format!(
            "{}: {field} refers to {kind} \"{namespace}/{name}\", which does not exist",
            store.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::{ErrorKind, StaticConfigMapReader, StaticSecretReader, StoreInfo};
    use eso_api::SecretStoreSpec;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn store(kind: StoreKind) -> StoreInfo {
        StoreInfo {
            kind,
            name: "s".into(),
            namespace: (kind == StoreKind::SecretStore).then(|| "apps".to_owned()),
            uid: None,
            generation: None,
            spec: SecretStoreSpec::default(),
        }
    }

    fn ca(type_: CaProviderType, namespace: Option<&str>) -> CaProvider {
        CaProvider {
            type_,
            name: "ca".into(),
            key: Some("ca.crt".into()),
            namespace: namespace.map(str::to_owned),
        }
    }

    struct Fixture {
        secrets: StaticSecretReader,
        config_maps: StaticConfigMapReader,
    }

    impl Fixture {
        fn new() -> Self {
            let mut secrets = StaticSecretReader::new();
            let mut config_maps = StaticConfigMapReader::new();
            for ns in ["apps", "infra"] {
                secrets.insert(
                    ns,
                    "ca",
                    [("ca.crt".to_owned(), format!("{ns}-secret").into_bytes())].into(),
                );
                config_maps.insert(
                    ns,
                    "ca",
                    [("ca.crt".to_owned(), format!("{ns}-configmap"))].into(),
                );
            }
            Self {
                secrets,
                config_maps,
            }
        }

        async fn load(
            &self,
            store: &StoreInfo,
            bundle: Option<&str>,
            ca: Option<&CaProvider>,
        ) -> Result<Option<Vec<u8>>, ProviderError> {
            let ctx = ClientContext {
                store,
                namespace: "apps",
                secrets: &self.secrets,
                config_maps: &self.config_maps,
                tokens: None,
            };
            load_ca_bundle(&ctx, bundle, ca, "spec.provider.x").await
        }
    }

    #[tokio::test]
    async fn ca_provider_reads_secret_or_config_map_in_the_stores_namespace() {
        let f = Fixture::new();
        let ns_store = store(StoreKind::SecretStore);
        let got = f
            .load(&ns_store, None, Some(&ca(CaProviderType::Secret, None)))
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some(&b"apps-secret"[..]));
        let got = f
            .load(&ns_store, None, Some(&ca(CaProviderType::ConfigMap, None)))
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some(&b"apps-configmap"[..]));

        let cluster = store(StoreKind::ClusterSecretStore);
        let got = f
            .load(
                &cluster,
                None,
                Some(&ca(CaProviderType::ConfigMap, Some("infra"))),
            )
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some(&b"infra-configmap"[..]));
    }

    #[tokio::test]
    async fn namespace_rules_follow_the_store_kind() {
        let f = Fixture::new();
        // A SecretStore may not reach into another namespace.
        let err = f
            .load(
                &store(StoreKind::SecretStore),
                None,
                Some(&ca(CaProviderType::ConfigMap, Some("infra"))),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore);
        assert!(err.message().contains("not allowed"), "{err}");
        // A ClusterSecretStore must say where the CA is (no referent fallback).
        let err = f
            .load(
                &store(StoreKind::ClusterSecretStore),
                None,
                Some(&ca(CaProviderType::Secret, None)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore);
        assert!(
            err.message()
                .contains("spec.provider.x.caProvider.namespace is required"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_objects_and_keys_are_named() {
        let f = Fixture::new();
        let s = store(StoreKind::SecretStore);
        let mut missing = ca(CaProviderType::ConfigMap, None);
        missing.name = "nope".into();
        let err = f.load(&s, None, Some(&missing)).await.unwrap_err();
        assert_eq!(
            err.message(),
            "SecretStore \"apps/s\": spec.provider.x.caProvider refers to ConfigMap \"apps/nope\", which does not exist"
        );
        let mut no_key = ca(CaProviderType::Secret, None);
        no_key.key = Some("tls.crt".into());
        let err = f.load(&s, None, Some(&no_key)).await.unwrap_err();
        assert_eq!(
            err.message(),
            "SecretStore \"apps/s\": spec.provider.x.caProvider refers to key \"tls.crt\" of Secret \"apps/ca\", which it does not have"
        );
    }

    #[tokio::test]
    async fn ca_bundle_wins_over_ca_provider_and_may_be_base64_or_pem() {
        let f = Fixture::new();
        let s = store(StoreKind::SecretStore);
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        let got = f
            .load(&s, Some(&b64), Some(&ca(CaProviderType::Secret, None)))
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some(PEM.as_bytes()));
        let got = f.load(&s, Some(PEM), None).await.unwrap();
        assert_eq!(got.as_deref(), Some(PEM.trim().as_bytes()));
        assert_eq!(f.load(&s, Some("  "), None).await.unwrap(), None);
        assert_eq!(f.load(&s, None, None).await.unwrap(), None);
        let err = f.load(&s, Some("%%%"), None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore);
        assert_eq!(
            err.message(),
            "SecretStore \"apps/s\": spec.provider.x.caBundle is not base64"
        );
    }

    #[test]
    fn check_names_the_field() {
        let mut c = ca(CaProviderType::Secret, None);
        c.key = None;
        assert_eq!(
            check_ca_provider(&c, StoreKind::SecretStore, "spec.provider.x.caProvider"),
            Err("spec.provider.x.caProvider.key is required".to_owned())
        );
    }
}
