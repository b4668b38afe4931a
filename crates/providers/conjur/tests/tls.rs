//! The Conjur provider over HTTPS: the store's `caBundle` (PEM or base64 of PEM) or
//! `caProvider` decides which server certificates are trusted. Certificates are made with
//! `openssl` at test time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use base64::Engine;
use eso_api::provider::{
    CaProvider, CaProviderType, ConjurApiKey, ConjurAuth, ConjurProvider as Spec,
    SecretStoreProvider,
};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector, SecretStoreSpec};
use eso_provider::{
    ClientContext, ErrorKind, Provider, ProviderError, SecretsClient, StaticConfigMapReader,
    StaticSecretReader, StoreInfo,
};
use eso_provider_conjur::ConjurProvider;
use eso_test_support::tls::{ServerPki, server_pki};
use eso_testserver_conjur::{ConjurTestServer, Role};

fn store(url: &str, ca_bundle: Option<String>, ca_provider: Option<CaProvider>) -> StoreInfo {
    let sel = |key: &str| SecretKeySelector {
        name: Some("conjur-creds".into()),
        key: Some(key.into()),
        ..Default::default()
    };
    StoreInfo::secret_store(
        "conjur",
        "apps",
        SecretStoreSpec {
            provider: SecretStoreProvider {
                conjur: Some(Spec {
                    url: url.into(),
                    ca_bundle,
                    ca_provider,
                    auth: ConjurAuth {
                        api_key: Some(ConjurApiKey {
                            account: "myorg".into(),
                            user_ref: sel("login"),
                            api_key_ref: sel("apikey"),
                        }),
                        ..Default::default()
                    },
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
        "conjur-creds",
        BTreeMap::from([
            ("login".to_owned(), b"host/eso".to_vec()),
            ("apikey".to_owned(), b"key-1".to_vec()),
        ]),
    );
    ConjurProvider::new()
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
    let server = ConjurTestServer::start_tls("myorg", &cert, &key)
        .await
        .unwrap();
    server.role(Role::new("host/eso", "key-1"));
    server.variable("db/password").value(b"s3cret");
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");
    let remote = ExternalSecretDataRemoteRef {
        key: "db/password".into(),
        ..Default::default()
    };
    let none = StaticConfigMapReader::new();

    // A PEM caBundle, as upstream's field holds it, and its base64 form.
    for bundle in [
        ca.clone(),
        base64::engine::general_purpose::STANDARD.encode(&ca),
    ] {
        let client = connect(&store(&url, Some(bundle), None), &none)
            .await
            .unwrap();
        assert_eq!(client.get_secret(&remote).await.unwrap(), b"s3cret");
    }
    // A caProvider ConfigMap in the store's namespace.
    let mut config_maps = StaticConfigMapReader::new();
    config_maps.insert(
        "apps",
        "conjur-ca",
        BTreeMap::from([("ca.crt".to_owned(), ca.clone())]),
    );
    let provider = CaProvider {
        type_: CaProviderType::ConfigMap,
        name: "conjur-ca".into(),
        key: Some("ca.crt".into()),
        namespace: None,
    };
    let client = connect(&store(&url, None, Some(provider.clone())), &config_maps)
        .await
        .unwrap();
    assert_eq!(client.get_secret(&remote).await.unwrap(), b"s3cret");
    // Another CA, or none (the platform's roots), is refused: only those roots are trusted.
    for bundle in [Some(other_ca), None] {
        let err = connect(&store(&url, bundle, None), &none)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    }
    // A caProvider that points nowhere is a store problem.
    let err = connect(&store(&url, None, Some(provider)), &none)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{err}");
}
