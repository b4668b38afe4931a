//! The Webhook generator against a local HTTP server: templated requests with `secrets[]`,
//! the JSON answer as the generated data, a new call per generation, and errors typed by
//! cause with messages that name the generator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{NS, Reply, TestServer};
use eso_api::generators::GeneratorKind;
use eso_generator::{
    ErrorKind, Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject,
};
use eso_provider::{StaticConfigMapReader, StaticSecretReader};
use eso_provider_webhook::generators::WebhookGenerator;
use serde_json::{Value, json};

fn secrets() -> StaticSecretReader {
    let mut s = StaticSecretReader::new();
    s.insert(
        NS,
        "issuer",
        BTreeMap::from([
            ("token".to_owned(), b"t0k3n".to_vec()),
            ("team".to_owned(), b"red team".to_vec()),
        ]),
    );
    s
}

async fn generate_as(
    object: GeneratorObject<'_>,
    spec: &Value,
) -> Result<Generated, GeneratorError> {
    let (secrets, maps) = (secrets(), StaticConfigMapReader::new());
    let ctx = GeneratorContext::new(NS, object, &secrets, &maps);
    WebhookGenerator::new().generate(ctx, spec).await
}

async fn generate(spec: &Value) -> Result<Generated, GeneratorError> {
    generate_as(
        GeneratorObject::namespaced(GeneratorKind::Webhook, "token", NS),
        spec,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_is_the_generated_data() {
    let server = TestServer::start(|_| {
        Reply::json(json!({"credentials": {"username": "svc", "password": "pw", "ttl": 3600, "scopes": ["a"]}}))
    })
    .await;
    let spec = json!({
        "method": "POST",
        "url": server.url("/issue?team={{ .auth.team }}"),
        "headers": {"Authorization": "Bearer {{ .auth.token }}", "Content-Type": "application/json"},
        "body": r#"{"scope": "deploy", "team": "{{ .auth.team }}"}"#,
        "result": {"jsonPath": "$.credentials"},
        "secrets": [{"name": "auth", "secretRef": {"name": "issuer"}}],
    });
    let g = generate(&spec).await.unwrap();
    assert!(g.state.is_none(), "a webhook leaves nothing to clean up");
    assert_eq!(g.data["username"], b"svc");
    assert_eq!(g.data["password"], b"pw");
    assert_eq!(g.data["ttl"], b"3600", "non-strings as JSON");
    assert_eq!(g.data["scopes"], br#"["a"]"#);
    let seen = server.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/issue?team=red%20team");
    assert_eq!(seen.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(seen.body, br#"{"scope": "deploy", "team": "red team"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_generation_calls_the_webhook() {
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = TestServer::start(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::json(json!({"token": format!("t{n}")}))
    })
    .await;
    let spec = json!({"url": server.url("/token"), "result": {}});
    let a = generate(&spec).await.unwrap();
    let b = generate(&spec).await.unwrap();
    assert_eq!(
        (a.data["token"].as_slice(), b.data["token"].as_slice()),
        (&b"t0"[..], &b"t1"[..])
    );
    assert_eq!(server.count(), 2);
    assert_eq!(server.last().method, "GET", "GET by default");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_typed_by_cause() {
    let server = TestServer::start(|seen| match seen.target.as_str() {
        "/denied" => Reply::status(401, r#"{"error": "no"}"#),
        "/busy" => Reply::status(429, "slow down").header("retry-after", "7"),
        "/broken" => Reply::status(503, "down"),
        "/missing" => Reply::status(404, "not here"),
        "/list" => Reply::json(json!(["not", "an", "object"])),
        _ => Reply::json(json!({"ok": "yes"})),
    })
    .await;
    let at = |path: &str| json!({"url": server.url(path), "result": {}});

    let err = generate(&at("/denied")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    assert!(
        err.chain().starts_with("Webhook \"apps/token\": "),
        "{}",
        err.chain()
    );
    assert!(!err.chain().contains("SecretStore"), "{}", err.chain());

    let err = generate(&at("/busy")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));

    let err = generate(&at("/broken")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    let err = generate(&at("/missing")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Rejected,
        "a 404 is a refused call, never a missing value"
    );
    assert!(err.chain().contains("404"), "{}", err.chain());
    assert!(!err.chain().contains("secret \"\""), "{}", err.chain());

    let err = generate(&at("/list")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{}", err.chain());

    let down = json!({"url": "http://127.0.0.1:9/x", "result": {}});
    let err = generate(&down).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    // A Secret that does not exist, named from a ClusterGenerator.
    let cluster = GeneratorObject::cluster(GeneratorKind::Webhook, "shared");
    let spec = json!({
        "url": server.url("/ok"),
        "result": {},
        "secrets": [{"name": "auth", "secretRef": {"name": "absent"}}],
    });
    let err = generate_as(cluster, &spec).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert_eq!(
        err.chain(),
        "ClusterGenerator \"shared\": spec.generator.webhookSpec.secrets[0] refers to Secret \"apps/absent\", which does not exist"
    );
}

#[tokio::test]
async fn specs_are_checked_without_a_call() {
    let generator = WebhookGenerator::new();
    let object = GeneratorObject::namespaced(GeneratorKind::Webhook, "token", NS);
    generator
        .validate(
            object,
            &json!({"url": "http://h/{{ .auth.token }}", "result": {"jsonPath": "$.a"}}),
        )
        .unwrap();
    for (spec, expected) in [
        (
            json!({"url": "", "result": {}}),
            "Webhook \"apps/token\": spec.url is required",
        ),
        (
            json!({"url": "http://h", "result": {}, "body": "{{ if }}"}),
            "spec.body is not a valid template",
        ),
        (
            json!({"url": "http://h", "result": {}, "method": "GE T"}),
            "spec.method \"GE T\" is not an HTTP method",
        ),
        (
            json!({"url": "http://h"}),
            "spec is invalid: missing field `result`",
        ),
    ] {
        let err = generator.validate(object, &spec).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{spec}");
        assert!(err.chain().contains(expected), "{spec}: {}", err.chain());
    }
}
