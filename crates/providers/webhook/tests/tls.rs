//! `caBundle` and `caProvider` (Secret or ConfigMap) against a TLS server: `openssl s_server
//! -WWW` with a certificate signed by a CA made for the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use eso_api::provider::{CaProvider, CaProviderType};
use eso_provider::ErrorKind;
use eso_test_support::tls::server_pki;
use eso_test_support::tools::free_port;

use common::{Hook, NS, key};

/// `openssl s_server` serving the files of a temporary directory over HTTPS.
struct TlsServer {
    child: Child,
    port: u16,
    ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pki = server_pki(d, "srv");
        std::fs::write(d.join("secret.json"), r#"{"data":{"value":"over-tls"}}"#).unwrap();
        let port = free_port();
        let child = Command::new("openssl")
            .args([
                "s_server", "-quiet", "-WWW", "-cert", "srv.pem", "-key", "srv.key",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let ca_pem = pki.ca_pem.into_bytes();
        Self {
            child,
            port,
            ca_pem,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/{{{{ .remoteRef.key }}}}", self.port)
    }
}

#[tokio::test]
async fn custom_ca_from_bundle_secret_or_config_map_is_the_only_trust() {
    let server = TlsServer::start();

    // caBundle, base64 as the CRD carries it.
    let mut hook = Hook::new(&server.url()).json_path("$.data.value");
    hook.spec.ca_bundle = Some(base64::engine::general_purpose::STANDARD.encode(&server.ca_pem));
    let value = hook
        .client()
        .await
        .get_secret(&key("secret.json"))
        .await
        .unwrap();
    assert_eq!(value, b"over-tls");

    // caProvider pointing at a Secret.
    let mut hook = Hook::new(&server.url()).json_path("$.data.value");
    hook.secrets.insert(
        NS,
        "hook-ca",
        [("ca.crt".to_owned(), server.ca_pem.clone())].into(),
    );
    hook.spec.ca_provider = Some(CaProvider {
        type_: CaProviderType::Secret,
        name: "hook-ca".into(),
        key: Some("ca.crt".into()),
        namespace: None,
    });
    let value = hook
        .client()
        .await
        .get_secret(&key("secret.json"))
        .await
        .unwrap();
    assert_eq!(value, b"over-tls");

    // caProvider pointing at a ConfigMap.
    let mut hook = Hook::new(&server.url()).json_path("$.data.value");
    hook.config_maps.insert(
        NS,
        "hook-ca",
        [(
            "ca.crt".to_owned(),
            String::from_utf8(server.ca_pem.clone()).unwrap(),
        )]
        .into(),
    );
    hook.spec.ca_provider = Some(CaProvider {
        type_: CaProviderType::ConfigMap,
        name: "hook-ca".into(),
        key: Some("ca.crt".into()),
        namespace: None,
    });
    let value = hook
        .client()
        .await
        .get_secret(&key("secret.json"))
        .await
        .unwrap();
    assert_eq!(value, b"over-tls");

    // A ConfigMap holding another CA does not make the server trusted.
    let other = TlsServer::start();
    hook.config_maps.insert(
        NS,
        "hook-ca",
        [(
            "ca.crt".to_owned(),
            String::from_utf8(other.ca_pem.clone()).unwrap(),
        )]
        .into(),
    );
    let err = hook
        .client()
        .await
        .get_secret(&key("secret.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());

    // A missing ConfigMap is a store error naming it.
    hook.config_maps = eso_provider::StaticConfigMapReader::new();
    let Err(err) = hook.try_client().await else {
        panic!("a client was built with a missing CA ConfigMap");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert_eq!(
        err.message(),
        "SecretStore \"apps/hook\": spec.provider.webhook.caProvider refers to ConfigMap \"apps/hook-ca\", which does not exist"
    );

    // Without the CA the certificate is refused.
    let hook = Hook::new(&server.url()).json_path("$.data.value");
    let err = hook
        .client()
        .await
        .get_secret(&key("secret.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());

    // A bundle that is not a certificate is a store error.
    let mut hook = Hook::new(&server.url());
    hook.spec.ca_bundle = Some(base64::engine::general_purpose::STANDARD.encode("not a pem"));
    let Err(err) = hook.try_client().await else {
        panic!("a client was built with a CA bundle holding no certificate");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
}
