//! The GitLab provider over HTTPS: the store's `caBundle` (base64 of PEM, Go's `[]byte`) or
//! `caProvider` decides which server certificates are trusted. Certificates are made with
//! `openssl` at test time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use base64::Engine;
use eso_api::provider::{
    CaProvider, CaProviderType, GitlabAuth, GitlabProvider as Spec, GitlabSecretRef,
    SecretStoreProvider,
};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector, SecretStoreSpec};
use eso_provider::{
    ClientContext, ErrorKind, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo,
};
use eso_provider_gitlab::GitlabProvider;
use eso_test_support::tls::{ServerPki, server_pki};
use eso_testserver_gitlab::{GitlabTestServer, Token, Variable};

fn store(url: &str, ca_bundle: Option<String>, ca_provider: Option<CaProvider>) -> StoreInfo {
    StoreInfo::secret_store(
        "gitlab",
        "apps",
        SecretStoreSpec {
            provider: SecretStoreProvider {
                gitlab: Some(Spec {
                    url: Some(url.into()),
                    project_id: Some("42".into()),
                    ca_bundle,
                    ca_provider,
                    auth: GitlabAuth {
                        secret_ref: GitlabSecretRef {
                            access_token: SecretKeySelector {
                                name: Some("gitlab".into()),
                                key: Some("token".into()),
                                ..Default::default()
                            },
                        },
                    },
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

async fn connect(
    store: &StoreInfo,
    config_maps: &StaticConfigMapReader,
) -> Result<std::sync::Arc<dyn SecretsClient>, ProviderError> {
    let mut secrets = StaticSecretReader::new();
    secrets.insert(
        "apps",
        "gitlab",
        BTreeMap::from([("token".to_owned(), b"glpat-1".to_vec())]),
    );
    GitlabProvider::new()
        .new_client(ClientContext {
            store,
            namespace: "apps",
            secrets: &secrets,
            config_maps,
            tokens: None,
        })
        .await
}

#[tokio::test]
async fn the_store_ca_decides_which_servers_are_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let ServerPki {
        ca_pem: ca,
        cert_pem: cert,
        key_pem: key,
        ..
    } = server_pki(dir.path(), "srv");
    let other_ca = server_pki(dir.path(), "other").ca_pem;
    let server = GitlabTestServer::start_tls(&cert, &key).await.unwrap();
    server.project(42, "acme/app", &[]);
    server.project_variable(42, Variable::new("DB_PASSWORD", "s3cret"));
    server.token(Token::new("glpat-1"));
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");
    let remote = ExternalSecretDataRemoteRef {
        key: "DB_PASSWORD".into(),
        ..Default::default()
    };
    let none = StaticConfigMapReader::new();
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);

    let client = connect(&store(&url, Some(b64(&ca)), None), &none)
        .await
        .unwrap();
    assert_eq!(client.get_secret(&remote).await.unwrap(), b"s3cret");
    let mut config_maps = StaticConfigMapReader::new();
    config_maps.insert(
        "apps",
        "gitlab-ca",
        BTreeMap::from([("ca.crt".to_owned(), ca.clone())]),
    );
    let provider = CaProvider {
        type_: CaProviderType::ConfigMap,
        name: "gitlab-ca".into(),
        key: Some("ca.crt".into()),
        namespace: None,
    };
    let client = connect(&store(&url, None, Some(provider)), &config_maps)
        .await
        .unwrap();
    assert_eq!(client.get_secret(&remote).await.unwrap(), b"s3cret");
    // Another CA, or none (the platform's roots): the server is not trusted, and a read fails
    // as unavailable, never as "not found".
    for bundle in [Some(b64(&other_ca)), None] {
        let client = connect(&store(&url, bundle, None), &none).await.unwrap();
        let err = client.get_secret(&remote).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    }
    let err = connect(&store(&url, Some("not base64!".into()), None), &none)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{err}");
}
