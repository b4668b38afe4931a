//! The examples of the kinds this crate implements (`examples/generators/`) generate what their
//! comments promise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use eso_api::generators::{GeneratorKind, ResolvedGenerator};
use eso_generator::{GeneratorContext, GeneratorObject, builtin};
use eso_provider::{StaticConfigMapReader, StaticSecretReader};
use serde_json::Value;

fn generator(file: &str) -> (String, ResolvedGenerator) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/generators")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] != "ExternalSecret")
        .unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
    (name, ResolvedGenerator::from_object(&doc).unwrap())
}

async fn keys_of(file: &str) -> Vec<String> {
    let (name, resolved) = generator(file);
    let (secrets, maps) = (StaticSecretReader::new(), StaticConfigMapReader::new());
    let object = if file == "cluster-generator.yaml" {
        GeneratorObject::cluster(resolved.kind, &name)
    } else {
        GeneratorObject::namespaced(resolved.kind, &name, "apps")
    };
    let ctx = GeneratorContext::new("apps", object, &secrets, &maps);
    let generated = builtin()
        .generate(resolved.kind, ctx, &resolved.spec)
        .await
        .unwrap_or_else(|e| panic!("{file}: {}", e.chain()));
    generated.data.keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_of_the_builtin_kinds_generate() {
    assert_eq!(
        keys_of("password.yaml").await,
        ["password", "replication-password"]
    );
    assert_eq!(keys_of("uuid.yaml").await, ["uuid"]);
    assert_eq!(keys_of("sshkey.yaml").await, ["privateKey", "publicKey"]);
    assert_eq!(keys_of("fake.yaml").await, ["password", "username"]);
    assert_eq!(keys_of("cluster-generator.yaml").await, ["password"]);
    let (_, cluster) = generator("cluster-generator.yaml");
    assert_eq!(cluster.kind, GeneratorKind::Password);
}
