//! The Conjur provider over HTTPS: the store's `caBundle` (PEM or base64 of PEM) or
//! `caProvider` decides which server certificates are trusted. Certificates are made with
//! `openssl` at test time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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
use eso_testserver_conjur::{ConjurTestServer, Role};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` (install it: apt-get install openssl): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate it signed for 127.0.0.1: (ca, cert, key), all PEM.
fn pki(dir: &Path, name: &str) -> (String, String, String) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=eso-conjur-test-ca",
    ]);
    openssl(dir, &args);
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let cert = format!("{name}.pem");
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (read(&ca), read(&cert), read(&key))
}

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
    let (ca, cert, key) = pki(dir.path(), "srv");
    let (other_ca, _, _) = pki(dir.path(), "other");
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
