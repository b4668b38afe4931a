//! Push, delete and exists for secrets, keys and certificates, with upstream's `managed-by`
//! rule, metadata, soft-delete recovery and no writes when nothing changed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use eso_testserver_azure::{Kind, Listener, SecretSeed, pki};
use serde_json::json;

use crate::common::*;

fn push(key: &str, value: &[u8]) -> PushRequest {
    PushRequest {
        value: value.to_vec(),
        secret_key: Some("k".into()),
        remote: PushRemoteRef {
            remote_key: key.to_owned(),
            property: None,
        },
        metadata: None,
    }
}

fn at(key: &str) -> PushRemoteRef {
    PushRemoteRef {
        remote_key: key.to_owned(),
        property: None,
    }
}

fn writes(env: &Env) -> usize {
    env.server
        .requests()
        .iter()
        .filter(|r| r.listener == Listener::Vault && r.authorized && r.method != "GET")
        .count()
}

#[tokio::test]
async fn pushed_secrets_carry_the_marker_and_unchanged_values_are_not_written() {
    let env = Env::new();
    let c = env.client().await;
    c.push_secret(&push("db", b"one")).await.unwrap();
    assert_eq!(env.server.secret_value("db").as_deref(), Some("one"));
    assert_eq!(
        env.server.tags(Kind::Secret, "db").unwrap()["managed-by"],
        "external-secrets"
    );
    c.push_secret(&push("secret/db", b"one")).await.unwrap();
    assert_eq!(env.server.version_count(Kind::Secret, "db"), 1);
    assert_eq!(writes(&env), 1);
    c.push_secret(&push("db", b"two")).await.unwrap();
    assert_eq!(env.server.version_count(Kind::Secret, "db"), 2);
    assert_eq!(c.get_secret(&remote("db")).await.unwrap(), b"two");
}

#[tokio::test]
async fn push_metadata_sets_expiry_content_type_and_tags() {
    let env = Env::new();
    let c = env.client().await;
    let mut req = push("db", b"v");
    req.metadata = Some(json!({
        "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
        "kind": "PushSecretMetadata",
        "spec": {"expirationDate": "2031-01-01T00:00:00Z", "contentType": "text/plain", "tags": {"team": "payments"}},
    }));
    c.push_secret(&req).await.unwrap();
    assert_eq!(env.server.expires("db"), Some(1_924_992_000));
    assert_eq!(env.server.content_type("db").as_deref(), Some("text/plain"));
    let tags = env.server.tags(Kind::Secret, "db").unwrap();
    assert_eq!(
        (tags["team"].as_str(), tags["managed-by"].as_str()),
        ("payments", "external-secrets")
    );
    // Same value, expiry and type: no write. A new expiry alone is a write.
    c.push_secret(&req).await.unwrap();
    assert_eq!(env.server.version_count(Kind::Secret, "db"), 1);
    if let Some(m) = req.metadata.as_mut() {
        m["spec"]["expirationDate"] = json!("2032-01-01T00:00:00Z");
    }
    c.push_secret(&req).await.unwrap();
    assert_eq!(env.server.version_count(Kind::Secret, "db"), 2);
    // A `managed-by` tag in the metadata is refused, as upstream.
    if let Some(m) = req.metadata.as_mut() {
        m["spec"]["tags"] = json!({"managed-by": "me"});
    }
    let err = c.push_secret(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.message().contains("Cannot specify a 'managed-by' tag"),
        "{err}"
    );
}

#[tokio::test]
async fn objects_without_the_marker_are_never_overwritten_or_deleted() {
    let env = Env::new();
    env.server
        .set_secret_with("theirs", SecretSeed::new("keep").tag("owner", "ops"));
    env.server.set_key(
        "their-key",
        json!({"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"}),
        &[],
    );
    let c = env.client().await;
    let err = c.push_secret(&push("theirs", b"mine")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.message().contains("not managed by external-secrets"),
        "{err}"
    );
    assert_eq!(env.server.secret_value("theirs").as_deref(), Some("keep"));
    let err = c.delete_secret(&at("theirs")).await.unwrap_err();
    assert!(
        err.message().contains("not managed by external-secrets"),
        "{err}"
    );
    assert!(env.server.exists(Kind::Secret, "theirs"));
    let key = pki::private_key(false, false).unwrap();
    assert!(
        c.push_secret(&push("key/their-key", key.as_bytes()))
            .await
            .is_err()
    );
    assert!(c.delete_secret(&at("key/their-key")).await.is_err());
    assert!(env.server.exists(Kind::Key, "their-key"));
    assert_eq!(writes(&env), 0);
}

#[tokio::test]
async fn delete_soft_deletes_managed_objects_and_ignores_missing_ones() {
    let env = Env::new();
    let c = env.client().await;
    c.push_secret(&push("db", b"v")).await.unwrap();
    assert!(c.secret_exists(&at("db")).await.unwrap());
    c.delete_secret(&at("db")).await.unwrap();
    assert!(env.server.is_deleted(Kind::Secret, "db"));
    assert!(!c.secret_exists(&at("db")).await.unwrap());
    c.delete_secret(&at("db")).await.unwrap();
    c.delete_secret(&at("cert/never")).await.unwrap();
    let err = c.delete_secret(&at("blob/x")).await.unwrap_err();
    assert!(
        err.message()
            .contains("secret type 'blob' is not supported"),
        "{err}"
    );
    // A read after the delete does not come from the cache.
    assert!(
        c.get_secret(&remote("db"))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn pushing_a_soft_deleted_name_recovers_it_first() {
    let env = Env::new();
    let c = env.client().await;
    c.push_secret(&push("db", b"v1")).await.unwrap();
    c.delete_secret(&at("db")).await.unwrap();
    c.push_secret(&push("db", b"v2")).await.unwrap();
    assert!(!env.server.is_deleted(Kind::Secret, "db"));
    assert_eq!(env.server.secret_value("db").as_deref(), Some("v2"));
    assert_eq!(
        env.server
            .count(Listener::Vault, "POST", "/deletedsecrets/db/recover"),
        1
    );
}

#[tokio::test]
async fn keys_are_imported_as_jwks_from_every_pem_format() {
    let env = Env::new();
    let c = env.client().await;
    for (name, rsa, traditional) in [
        ("rsa8", true, false),
        ("rsa1", true, true),
        ("ec8", false, false),
        ("sec1", false, true),
    ] {
        let pem = pki::private_key(rsa, traditional).unwrap();
        c.push_secret(&push(&format!("key/{name}"), pem.as_bytes()))
            .await
            .unwrap();
        let jwk = env.server.key_jwk(name).unwrap();
        assert_eq!(jwk["kty"], if rsa { "RSA" } else { "EC" }, "{name}");
        assert_eq!(
            env.server.tags(Kind::Key, name).unwrap()["managed-by"],
            "external-secrets"
        );
        // The public key the vault holds is the pushed key's (checked against openssl).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.pem"), &pem).unwrap();
        let text = std::process::Command::new("openssl")
            .args(["pkey", "-in", "k.pem", "-noout", "-text"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout).replace([' ', '\n', ':'], "");
        let field = if rsa { "n" } else { "x" };
        let hex: String = URL_SAFE_NO_PAD
            .decode(jwk[field].as_str().unwrap())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            text.contains(&hex),
            "{name}: {field} not in openssl's view of the key"
        );
        // Pushing the same key again imports nothing.
        c.push_secret(&push(&format!("key/{name}"), pem.as_bytes()))
            .await
            .unwrap();
        assert_eq!(env.server.version_count(Kind::Key, name), 1, "{name}");
    }
    // Bytes that are not PEM are an `oct` key, which a vault refuses (Managed HSM only).
    let err = c
        .push_secret(&push("key/sym", b"0123456789abcdef"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("oct"), "{err}");
    c.delete_secret(&at("key/rsa8")).await.unwrap();
    assert!(env.server.is_deleted(Kind::Key, "rsa8"));
}

#[tokio::test]
async fn certificates_are_imported_from_pkcs12_and_read_back_as_der() {
    let env = Env::new();
    let c = env.client().await;
    for (name, legacy) in [("modern", false), ("legacy", true)] {
        let cert = pki::self_signed(&format!("{name}.example"), true).unwrap();
        let p12 = cert.pkcs12(legacy).unwrap();
        c.push_secret(&push(&format!("cert/{name}"), &p12))
            .await
            .unwrap();
        let der = cert.cert_der().unwrap();
        assert_eq!(env.server.certificate_der(name).unwrap(), der, "{name}");
        assert_eq!(
            c.get_secret(&remote(&format!("cert/{name}")))
                .await
                .unwrap(),
            der
        );
        assert_eq!(
            env.server.tags(Kind::Certificate, name).unwrap()["managed-by"],
            "external-secrets"
        );
        // The same certificate again (even re-bundled) imports nothing.
        c.push_secret(&push(
            &format!("cert/{name}"),
            &cert.pkcs12(legacy).unwrap(),
        ))
        .await
        .unwrap();
        assert_eq!(
            env.server.version_count(Kind::Certificate, name),
            1,
            "{name}"
        );
    }
    // A PEM certificate is a certificate to the provider, but the vault imports PKCS#12
    // only without a PEM policy, as upstream sends it: the vault's refusal comes back.
    let pem = pki::self_signed("pem.example", true).unwrap();
    let err = c
        .push_secret(&push("cert/pem", pem.combined_pem().as_bytes()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("PKCS#12"), "{err}");
    let err = c
        .push_secret(&push("cert/junk", b"junk"))
        .await
        .unwrap_err();
    assert!(err.message().contains("not a valid certificate"), "{err}");
    c.delete_secret(&at("cert/modern")).await.unwrap();
    assert!(env.server.is_deleted(Kind::Certificate, "modern"));
    assert!(!c.secret_exists(&at("cert/modern")).await.unwrap());
    assert!(c.secret_exists(&at("cert/legacy")).await.unwrap());
}
