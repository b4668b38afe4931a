//! The example stores of `docs/providers.md` (`examples/stores/<key>.yaml`): each file parses
//! as `sync-once render` reads it, holds one SecretStore of the provider its name says and an
//! ExternalSecret using it, and the built-in provider accepts the store's spec.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use eso_core::{ManifestSet, StoreInfo};

/// Every supported provider key has an example, and every example is one of them.
const EXPECTED: &[&str] = &[
    "aws",
    "azurekv",
    "chef",
    "conjur",
    "doppler",
    "gcpsm",
    "gitlab",
    "infisical",
    "kubernetes",
    "onepassword",
    "vault",
    "webhook",
];

#[test]
fn every_example_store_parses_and_its_provider_accepts_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("stores");
    let registry = eso_providers::builtin();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let key = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut set = ManifestSet::new("default");
        let errors = set.add_text(&format!("{key}.yaml"), &text);
        assert!(errors.is_empty(), "{key}.yaml: {errors:?}");
        assert_eq!(set.stores.len(), 1, "{key}.yaml: one SecretStore");
        let store = set.stores.into_values().next().unwrap().object;
        let name = store.metadata.name.clone().unwrap();
        let provider_json = serde_json::to_value(&store.spec.provider).unwrap();
        let keys: Vec<&str> = provider_json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, [key.as_str()], "{key}.yaml: spec.provider.{key} only");
        let info = StoreInfo::secret_store(&name, "demo", store.spec.clone());
        let provider = registry
            .for_store(&info)
            .unwrap_or_else(|e| panic!("{key}.yaml: {e}"));
        assert_eq!(provider.key(), key);
        provider
            .validate_store(&info)
            .unwrap_or_else(|e| panic!("{key}.yaml: the {key} provider rejects the store: {e}"));
        assert!(
            set.external_secrets.iter().any(|es| es
                .object
                .spec
                .secret_store_ref
                .as_ref()
                .and_then(|r| r.name.as_deref())
                == Some(name.as_str())),
            "{key}.yaml: an ExternalSecret uses store {name}"
        );
        seen.push(key);
    }
    seen.sort();
    assert_eq!(seen, EXPECTED);
}
