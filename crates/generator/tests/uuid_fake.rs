//! UUID format and version, Fake's data, and the registry's handling of kinds it lacks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use eso_api::generators::GeneratorKind;
use eso_generator::{ErrorKind, GeneratorContext, GeneratorObject, builtin};
use eso_provider::{StaticConfigMapReader, StaticSecretReader};
use serde_json::json;

async fn generate(
    kind: GeneratorKind,
    spec: serde_json::Value,
) -> Result<eso_generator::Generated, eso_generator::GeneratorError> {
    let (secrets, maps) = (StaticSecretReader::new(), StaticConfigMapReader::new());
    let object = GeneratorObject::cluster(kind, "gen");
    let ctx = GeneratorContext::new("test", object, &secrets, &maps);
    builtin().generate(kind, ctx, &spec).await
}

#[tokio::test]
async fn uuids_are_random_version_4_in_canonical_form() {
    let mut seen = BTreeSet::new();
    for _ in 0..2000 {
        let g = generate(GeneratorKind::UUID, json!({})).await.unwrap();
        assert!(g.state.is_none());
        let u = String::from_utf8(g.data["uuid"].clone()).unwrap();
        let groups: Vec<&str> = u.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{u}"
        );
        assert!(
            u.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{u}"
        );
        assert!(groups[2].starts_with('4'), "version 4: {u}");
        assert!(
            matches!(groups[3].chars().next(), Some('8' | '9' | 'a' | 'b')),
            "RFC 9562 variant: {u}"
        );
        assert!(seen.insert(u), "a UUID came twice");
    }
}

#[tokio::test]
async fn fake_returns_its_data() {
    let g = generate(
        GeneratorKind::Fake,
        json!({"data": {"user": "app", "pass": "x"}, "controller": "dev"}),
    )
    .await
    .unwrap();
    assert_eq!(g.data["user"], b"app");
    assert_eq!(g.data["pass"], b"x");
    let err = generate(GeneratorKind::Fake, json!({"data": {"n": 1}}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert!(
        err.message()
            .starts_with("ClusterGenerator \"gen\": spec.generator.fakeSpec.data.n is invalid"),
        "{err}"
    );
}

#[tokio::test]
async fn kinds_without_a_generator_are_unsupported() {
    let err = generate(GeneratorKind::GithubAccessToken, json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(
        err.message(),
        "generator kind GithubAccessToken is not supported (supported: Fake, Password, SSHKey, UUID)"
    );
}

#[test]
fn validate_checks_a_spec_and_names_the_object() {
    let registry = builtin();
    let object = GeneratorObject::namespaced(GeneratorKind::Password, "db", "apps");
    registry
        .validate(GeneratorKind::Password, object, &json!({"length": 12}))
        .unwrap();
    let err = registry
        .validate(
            GeneratorKind::Password,
            object,
            &json!({"length": 4, "digits": 5}),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert!(
        err.message().starts_with("Password \"apps/db\": spec"),
        "{err}"
    );
    let object = GeneratorObject::cluster(GeneratorKind::SSHKey, "keys");
    let err = registry
        .validate(
            GeneratorKind::SSHKey,
            object,
            &json!({"keyType": "rsa", "keySize": 512}),
        )
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("ClusterGenerator \"keys\": spec.generator.sshKeySpec.keySize"),
        "{err}"
    );
}
