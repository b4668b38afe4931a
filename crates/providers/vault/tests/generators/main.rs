//! The VaultDynamicSecret generator against a real OpenBao dev server: PKI certificates with
//! leases that cleanup revokes (checked in OpenBao), tokens from `auth/token/create`, GET with
//! query parameters, LIST, empty answers, and errors typed by cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use common::Bao;
use eso_api::generators::GeneratorKind;
use eso_generator::{
    ErrorKind, Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject,
};
use eso_provider::{StaticConfigMapReader, StaticSecretReader};
use eso_provider_vault::generators::VaultDynamicSecretGenerator;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const NS: &str = "apps";

/// The generator's login: an AppRole whose tokens may issue certificates, create tokens, read
/// the KV mount and revoke leases.
const GENERATOR_POLICY: &str = r#"
path "pki/issue/app" { capabilities = ["update"] }
path "auth/token/create" { capabilities = ["update", "sudo"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "secret/*" { capabilities = ["read", "list", "delete"] }
"#;

struct Server {
    bao: Bao,
    role_id: String,
    secret_id: String,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let bao = Bao::start(false).await;
            let (role_id, secret_id) = bao.pki_with_approle(GENERATOR_POLICY).await;
            Server {
                bao,
                role_id,
                secret_id,
            }
        })
        .await
}

fn provider(s: &Server) -> Value {
    json!({
        "server": s.bao.addr,
        "auth": {"appRole": {"path": "approle", "roleId": s.role_id, "secretRef": {"name": "approle", "key": "secret-id"}}},
    })
}

fn readers(secret_id: &str) -> (StaticSecretReader, StaticConfigMapReader) {
    let mut secrets = StaticSecretReader::new();
    secrets.insert(
        NS,
        "approle",
        BTreeMap::from([("secret-id".to_owned(), secret_id.as_bytes().to_vec())]),
    );
    (secrets, StaticConfigMapReader::new())
}

fn object() -> GeneratorObject<'static> {
    GeneratorObject::namespaced(GeneratorKind::VaultDynamicSecret, "dyn", NS)
}

async fn generate_as(
    object: GeneratorObject<'_>,
    spec: &Value,
) -> Result<Generated, GeneratorError> {
    let s = server().await;
    let (secrets, maps) = readers(&s.secret_id);
    let ctx = GeneratorContext::new(NS, object, &secrets, &maps);
    VaultDynamicSecretGenerator::new().generate(ctx, spec).await
}

async fn generate(spec: &Value) -> Result<Generated, GeneratorError> {
    generate_as(object(), spec).await
}

async fn cleanup(spec: &Value, state: &Value) -> Result<(), GeneratorError> {
    let s = server().await;
    let (secrets, maps) = readers(&s.secret_id);
    let ctx = GeneratorContext::new(NS, object(), &secrets, &maps);
    VaultDynamicSecretGenerator::new()
        .cleanup(ctx, spec, state)
        .await
}

fn text(data: &BTreeMap<String, Vec<u8>>, key: &str) -> String {
    String::from_utf8(data[key].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pki_certificates_are_generated_and_cleanup_revokes_their_lease() {
    let s = server().await;
    let spec = json!({
        "path": "pki/issue/app",
        "method": "POST",
        "parameters": {"common_name": "app.example.com", "ttl": "10m"},
        "provider": provider(s),
    });
    let first = generate(&spec).await.unwrap();
    for key in [
        "certificate",
        "private_key",
        "issuing_ca",
        "serial_number",
        "expiration",
    ] {
        assert!(
            first.data.contains_key(key),
            "{key} missing: {:?}",
            first.data.keys()
        );
    }
    assert!(text(&first.data, "certificate").starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        text(&first.data, "expiration").parse::<u64>().is_ok(),
        "numbers as text"
    );
    assert!(
        text(&first.data, "ca_chain").starts_with("[\""),
        "lists as JSON"
    );
    let state = first.state.clone().expect("a PKI lease is state");
    let lease = state["leaseId"].as_str().unwrap().to_owned();
    assert!(lease.starts_with("pki/issue/app/"), "{state}");

    // A second generation is a new certificate, not a cached answer.
    let second = generate(&spec).await.unwrap();
    assert_ne!(first.data["serial_number"], second.data["serial_number"]);

    let serial = text(&first.data, "serial_number");
    let revoked_at = |cert: Value| cert["data"]["revocation_time"].as_i64().unwrap();
    assert_eq!(
        revoked_at(s.bao.api("GET", &format!("pki/cert/{serial}"), None).await),
        0
    );
    let (status, _) = s
        .bao
        .call("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(status, 200, "the lease exists before cleanup");

    cleanup(&spec, &state).await.unwrap();
    let (status, body) = s
        .bao
        .call("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(status, 400, "the lease is gone: {body}");
    assert!(
        revoked_at(s.bao.api("GET", &format!("pki/cert/{serial}"), None).await) > 0,
        "revoking the lease revoked the certificate"
    );
    // Idempotent: a second cleanup of the same state succeeds.
    cleanup(&spec, &state).await.unwrap();
    // The other certificate is untouched.
    let other = text(&second.data, "serial_number");
    assert_eq!(
        revoked_at(s.bao.api("GET", &format!("pki/cert/{other}"), None).await),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_results_return_the_token_and_cleanup_revokes_it() {
    let s = server().await;
    let spec = json!({
        "path": "auth/token/create",
        "method": "POST",
        "parameters": {"policies": ["default"], "ttl": "1h", "no_parent": true},
        "resultType": "Auth",
        "provider": provider(s),
    });
    let generated = generate(&spec).await.unwrap();
    let token = text(&generated.data, "client_token");
    assert!(generated.data.contains_key("accessor"));
    assert_eq!(text(&generated.data, "policies"), r#"["default"]"#);
    let state = generated.state.unwrap();
    assert_eq!(
        state["tokenAccessor"].as_str().unwrap(),
        text(&generated.data, "accessor")
    );

    let lookup = |t: String| async move {
        s.bao
            .call("POST", "auth/token/lookup", Some(json!({"token": t})))
            .await
            .0
    };
    assert_eq!(lookup(token.clone()).await, 200);
    cleanup(&spec, &state).await.unwrap();
    assert_ne!(lookup(token).await, 200, "the created token is revoked");
    cleanup(&spec, &state).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn get_parameters_list_and_raw_answers() {
    let s = server().await;
    let key = common::unique("versions");
    common::put_v2(&s.bao, &key, json!({"value": "one"})).await;
    common::put_v2(&s.bao, &key, json!({"value": "two"})).await;

    let spec = json!({
        "path": format!("secret/data/{key}"),
        "getParameters": {"version": ["1"]},
        "provider": provider(s),
    });
    let g = generate(&spec).await.unwrap();
    assert_eq!(
        text(&g.data, "data"),
        r#"{"value":"one"}"#,
        "version=1 was sent"
    );
    assert!(g.state.is_none(), "a KV read leaves nothing to clean up");

    let raw = generate(&json!({
        "path": format!("secret/data/{key}"),
        "resultType": "Raw",
        "provider": provider(s),
    }))
    .await
    .unwrap();
    let body: Value = serde_json::from_slice(&raw.data["data"]).unwrap();
    assert_eq!(body["data"]["value"], "two");
    assert!(raw.data.contains_key("request_id") && raw.data.contains_key("lease_duration"));

    let listed =
        generate(&json!({"path": "secret/metadata/", "method": "LIST", "provider": provider(s)}))
            .await
            .unwrap();
    let keys: Vec<String> = serde_json::from_slice(&listed.data["keys"]).unwrap();
    assert!(keys.contains(&key), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_answers_fail_unless_allowed() {
    let s = server().await;
    let key = common::unique("gone");
    common::put_v2(&s.bao, &key, json!({"value": "x"})).await;
    let spec = json!({"path": format!("secret/metadata/{key}"), "method": "DELETE", "provider": provider(s)});
    let err = generate(&spec).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(
        err.message(),
        format!(
            "VaultDynamicSecret \"apps/dyn\": Vault answered DELETE secret/metadata/{key} without data; set allowEmptyResponse to accept that"
        )
    );
    let mut allowed = spec.clone();
    allowed["allowEmptyResponse"] = json!(true);
    let g = generate(&allowed).await.unwrap();
    assert!(g.data.is_empty() && g.state.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_typed_by_cause() {
    let s = server().await;
    // A rejected login.
    let mut bad_login = provider(s);
    bad_login["auth"]["appRole"]["roleId"] = json!("not-a-role");
    let err = generate(&json!({"path": "pki/issue/app", "method": "POST", "provider": bad_login}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    assert!(
        err.chain().starts_with("VaultDynamicSecret \"apps/dyn\": "),
        "{}",
        err.chain()
    );
    assert!(!err.chain().contains("SecretStore"), "{}", err.chain());

    // A path the policy does not allow.
    let err = generate(&json!({"path": "sys/mounts", "provider": provider(s)}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());

    // A path that does not exist: the request is refused, never "the value is gone".
    let err = generate(&json!({"path": "secret/data/never-written", "provider": provider(s)}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{}", err.chain());

    // A credential Secret that does not exist, from a ClusterGenerator.
    let mut missing = provider(s);
    missing["auth"]["appRole"]["secretRef"]["name"] = json!("nope");
    let cluster = GeneratorObject::cluster(GeneratorKind::VaultDynamicSecret, "shared");
    let err = generate_as(
        cluster,
        &json!({"path": "pki/issue/app", "provider": missing}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert_eq!(
        err.chain(),
        "ClusterGenerator \"shared\": spec.generator.vaultDynamicSecretSpec.provider.auth.appRole.secretRef refers to Secret \"apps/nope\", which does not exist"
    );

    // A server that is down, without retries.
    let down = json!({
        "path": "pki/issue/app",
        "retrySettings": {"maxRetries": 0},
        "provider": {"server": "http://127.0.0.1:9", "auth": {"tokenSecretRef": {"name": "approle", "key": "secret-id"}}},
    });
    let err = generate(&down).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(err.kind().is_transient());

    // Static checks.
    let err = generate(&json!({"path": "", "provider": provider(s)}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSpec);
    assert_eq!(
        err.message(),
        "VaultDynamicSecret \"apps/dyn\": spec.path is required"
    );
    let err = VaultDynamicSecretGenerator::new()
        .validate(object(), &json!({"path": "x"}))
        .unwrap_err();
    assert!(
        err.message()
            .contains("spec is invalid: missing field `provider`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_wait_for_a_server_that_comes_back() {
    // The first attempt is refused (nothing listens); the server appears before the retry.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let s = server().await;
    let spec = json!({
        "path": "auth/token/lookup-self",
        "resultType": "Data",
        "retrySettings": {"maxRetries": 5, "retryInterval": "300ms"},
        "provider": {"server": format!("http://127.0.0.1:{port}"), "auth": {"tokenSecretRef": {"name": "root", "key": "token"}}},
    });
    let mut secrets = StaticSecretReader::new();
    secrets.insert(
        NS,
        "root",
        BTreeMap::from([("token".to_owned(), s.bao.root.as_bytes().to_vec())]),
    );
    let maps = StaticConfigMapReader::new();
    let upstream = s.bao.port;
    // A forwarder that starts listening on `port` a little later.
    let forwarder = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let ctx = GeneratorContext::new(NS, object(), &secrets, &maps);
    let g = VaultDynamicSecretGenerator::new()
        .generate(ctx, &spec)
        .await;
    forwarder.abort();
    let g = g.unwrap_or_else(|e| panic!("{}", e.chain()));
    assert_eq!(text(&g.data, "policies"), r#"["root"]"#);
}
