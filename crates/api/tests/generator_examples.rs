//! The generator examples under `examples/generators/`: every document is valid (typed round
//! trip, admission validation), every ExternalSecret names a generator defined next to it,
//! and every kind eso-rs implements has an example.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use eso_api::ExternalSecret;
use eso_api::generators::{
    ClusterGenerator, GeneratorKind, ResolvedGenerator, validate_cluster_generator,
    validate_ecr_authorization_token, validate_password, validate_sts_session_token,
    validate_vault_dynamic_secret, validate_webhook,
};
use eso_api::validate::validate_external_secret;
use serde_json::Value;

fn examples() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/generators");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, doc) in serde_saphyr::from_multiple::<Value>(&text)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            docs.push((format!("{name}#{i}"), doc));
        }
    }
    docs
}

#[test]
fn generator_examples_are_valid_and_cover_every_implemented_kind() {
    let docs = examples();
    let mut kinds = BTreeSet::new();
    let mut defined = BTreeSet::new();
    let mut referenced = Vec::new();
    for (origin, doc) in &docs {
        let kind = doc["kind"].as_str().unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        if kind == "ExternalSecret" {
            let es: ExternalSecret = serde_json::from_value(doc.clone()).unwrap();
            assert!(validate_external_secret(&es.spec).is_empty(), "{origin}");
            for from in &es.spec.data_from {
                let r = from
                    .source_ref
                    .as_ref()
                    .and_then(|s| s.generator_ref.as_ref())
                    .unwrap_or_else(|| panic!("{origin}: no generatorRef"));
                referenced.push((origin.clone(), r.kind.clone(), r.name.clone()));
            }
            continue;
        }
        let resolved =
            ResolvedGenerator::from_object(doc).unwrap_or_else(|e| panic!("{origin}: {e}"));
        kinds.insert(resolved.kind);
        defined.insert((kind.to_owned(), name));
        let spec = &resolved.spec;
        let errors = match resolved.kind {
            GeneratorKind::Password => {
                validate_password(&serde_json::from_value(spec.clone()).unwrap())
            }
            GeneratorKind::ECRAuthorizationToken => {
                validate_ecr_authorization_token(&serde_json::from_value(spec.clone()).unwrap())
            }
            GeneratorKind::STSSessionToken => {
                validate_sts_session_token(&serde_json::from_value(spec.clone()).unwrap())
            }
            GeneratorKind::VaultDynamicSecret => {
                validate_vault_dynamic_secret(&serde_json::from_value(spec.clone()).unwrap())
            }
            GeneratorKind::Webhook => {
                validate_webhook(&serde_json::from_value(spec.clone()).unwrap())
            }
            _ => Vec::new(),
        };
        assert!(errors.is_empty(), "{origin}: {errors:?}");
        if kind == "ClusterGenerator" {
            let c: ClusterGenerator = serde_json::from_value(doc.clone()).unwrap();
            assert!(validate_cluster_generator(&c.spec).is_empty(), "{origin}");
        }
    }
    for (origin, kind, name) in referenced {
        assert!(
            defined.contains(&(kind.clone(), name.clone())),
            "{origin}: {kind} {name} is not defined in the examples"
        );
    }
    let implemented = BTreeSet::from([
        GeneratorKind::Password,
        GeneratorKind::UUID,
        GeneratorKind::SSHKey,
        GeneratorKind::Fake,
        GeneratorKind::ECRAuthorizationToken,
        GeneratorKind::STSSessionToken,
        GeneratorKind::VaultDynamicSecret,
        GeneratorKind::Webhook,
    ]);
    assert!(
        implemented.is_subset(&kinds),
        "kinds without an example: {:?}",
        implemented.difference(&kinds).collect::<Vec<_>>()
    );
}
