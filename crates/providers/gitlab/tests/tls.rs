//! The GitLab provider over HTTPS: the store's `caBundle` (base64 of PEM, Go's `[]byte`) or
//! `caProvider` decides which server certificates are trusted. Certificates are made with
//! `openssl` at test time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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
use eso_testserver_gitlab::{GitlabTestServer, Token, Variable};

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
        "/CN=eso-gitlab-test-ca",
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
    let (ca, cert, key) = pki(dir.path(), "srv");
    let (other_ca, _, _) = pki(dir.path(), "other");
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
