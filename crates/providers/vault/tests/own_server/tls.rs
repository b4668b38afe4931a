//! `-dev-tls`: the server's certificate is signed by a CA made for the run.

use base64::Engine;
use eso_api::ExternalSecretDataRemoteRef;
use eso_api::provider::{CaProvider, CaProviderType, VaultAuth, VaultCertAuth, VaultClientTls};
use eso_provider::ErrorKind;
use serde_json::json;

use crate::common::{Bao, ClientCerts, RW_POLICY, TestStore, selector};

fn prop(key: &str, property: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: Some(property.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn tls_with_custom_ca_cert_login_and_client_certificates() {
    let bao = Bao::start(true).await;
    let ca = bao.ca_pem.clone().unwrap();
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
    bao.api(
        "PUT",
        "sys/policies/acl/eso-rw",
        Some(json!({"policy": RW_POLICY})),
    )
    .await;
    bao.api(
        "POST",
        "secret/data/tls/app",
        Some(json!({"data": {"k": "over-tls"}})),
    )
    .await;

    // caBundle (base64, as the CRD carries it).
    let mut store = TestStore::new(&bao.addr).token(&bao.root);
    store.spec.ca_bundle = Some(ca_b64.clone());
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&prop("tls/app", "k")).await.unwrap(),
        b"over-tls"
    );

    // caProvider pointing at a Secret.
    let mut store = TestStore::new(&bao.addr).token(&bao.root).secret(
        "vault-ca",
        "ca.crt",
        std::str::from_utf8(&ca).unwrap(),
    );
    store.spec.ca_provider = Some(CaProvider {
        type_: CaProviderType::Secret,
        name: "vault-ca".into(),
        key: Some("ca.crt".into()),
        namespace: None,
    });
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&prop("tls/app", "k")).await.unwrap(),
        b"over-tls"
    );

    // Without the CA the server is not trusted: a transient failure, never "not found".
    let c = TestStore::new(&bao.addr).token(&bao.root).client().await;
    let err = c.get_secret(&prop("tls/app", "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());

    // cert login with a client certificate from another CA made with openssl.
    let certs = ClientCerts::new();
    bao.api("POST", "sys/auth/cert", Some(json!({"type": "cert"})))
        .await;
    bao.api(
        "POST",
        "auth/cert/certs/web",
        Some(json!({"certificate": certs.ca_pem, "token_policies": ["eso-rw"]})),
    )
    .await;
    let mut store = TestStore::new(&bao.addr)
        .secret("client-tls", "tls.crt", &certs.cert_pem)
        .secret("client-tls", "tls.key", &certs.key_pem)
        .auth(VaultAuth {
            cert: Some(VaultCertAuth {
                vault_role: Some("web".into()),
                client_cert: Some(selector("client-tls", "tls.crt")),
                secret_ref: Some(selector("client-tls", "tls.key")),
                ..Default::default()
            }),
            ..Default::default()
        });
    store.spec.ca_bundle = Some(ca_b64.clone());
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&prop("tls/app", "k")).await.unwrap(),
        b"over-tls"
    );

    // A certificate the cert method does not know: rejected as an auth error.
    let stranger = ClientCerts::new();
    let mut store = TestStore::new(&bao.addr)
        .secret("client-tls", "tls.crt", &stranger.cert_pem)
        .secret("client-tls", "tls.key", &stranger.key_pem)
        .auth(VaultAuth {
            cert: Some(VaultCertAuth {
                client_cert: Some(selector("client-tls", "tls.crt")),
                secret_ref: Some(selector("client-tls", "tls.key")),
                ..Default::default()
            }),
            ..Default::default()
        });
    store.spec.ca_bundle = Some(ca_b64.clone());
    let err = store.try_client().await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());

    // `tls` presents a client certificate on every connection (mutual TLS), with token auth;
    // keys default to tls.crt and tls.key.
    let mut store = TestStore::new(&bao.addr)
        .token(&bao.root)
        .secret("mtls", "tls.crt", &certs.cert_pem)
        .secret("mtls", "tls.key", &certs.key_pem);
    store.spec.ca_bundle = Some(ca_b64);
    let mut cert = selector("mtls", "");
    cert.key = None;
    store.spec.tls = Some(VaultClientTls {
        cert_secret_ref: Some(cert.clone()),
        key_secret_ref: Some(cert),
    });
    let c = store.client().await;
    assert_eq!(
        c.get_secret(&prop("tls/app", "k")).await.unwrap(),
        b"over-tls"
    );
}
