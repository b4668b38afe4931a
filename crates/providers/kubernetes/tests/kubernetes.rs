//! The kubernetes provider through the test harness: the in-process API server, or the real
//! cluster `ESO_TEST_KUBECONFIG` names (where RBAC-based assertions also run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine;
use eso_api::provider::{CaProvider, CaProviderType, KubernetesAuth, KubernetesServer};
use eso_api::{ExternalSecretFind, FindName, MetadataPolicy, ServiceAccountSelector, StoreKind};
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest, ValidationResult};
use eso_provider_kubernetes::{FIELD_MANAGER, KubernetesConfig};
use eso_test_apiserver::Fault;
use eso_test_support::tls::{openssl, server_certificate};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use common::{Env, key, prop, selector};

fn push(
    remote: &str,
    property: Option<&str>,
    secret_key: Option<&str>,
    value: &str,
) -> PushRequest {
    PushRequest {
        value: value.as_bytes().to_vec(),
        secret_key: secret_key.map(str::to_owned),
        remote: PushRemoteRef {
            remote_key: remote.to_owned(),
            property: property.map(str::to_owned),
        },
        metadata: None,
    }
}

fn remote(name: &str, property: Option<&str>) -> PushRemoteRef {
    PushRemoteRef {
        remote_key: name.to_owned(),
        property: property.map(str::to_owned),
    }
}

#[tokio::test]
async fn get_reads_whole_data_keys_paths_and_metadata() {
    let env = Env::new().await;
    env.put_secret(
        env.ns(),
        "db",
        &[
            ("user", "ann"),
            ("conf", r#"{"port":5432,"tls":{"on":true}}"#),
        ],
        &[("team", "payments")],
    )
    .await;
    let c = env.store().client().await;

    assert_eq!(
        c.get_secret(&key("db")).await.unwrap(),
        br#"{"conf":"{\"port\":5432,\"tls\":{\"on\":true}}","user":"ann"}"#
    );
    assert_eq!(c.get_secret(&prop("db", "user")).await.unwrap(), b"ann");
    assert_eq!(
        c.get_secret(&prop("db", "conf.port")).await.unwrap(),
        b"5432"
    );
    assert_eq!(
        c.get_secret(&prop("db", "conf.tls.on")).await.unwrap(),
        b"true"
    );
    let mut meta = prop("db", "labels.team");
    meta.metadata_policy = Some(MetadataPolicy::Fetch);
    assert_eq!(c.get_secret(&meta).await.unwrap(), b"payments");
    meta.property = Some("annotations".into());
    assert_eq!(
        c.get_secret(&meta).await.unwrap(),
        br#"{"note":"from-test"}"#
    );

    let err = c.get_secret(&key("absent")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    assert!(
        err.message().contains(&format!("\"{}/absent\"", env.ns())),
        "{err}"
    );
    // A missing property is an error, never not-found: the Secret exists.
    let err = c.get_secret(&prop("db", "nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);

    let map = c.get_secret_map(&key("db")).await.unwrap();
    assert_eq!(map["user"], b"ann");
    let map = c.get_secret_map(&prop("db", "conf")).await.unwrap();
    assert_eq!(map["port"], b"5432");
    assert_eq!(map["tls"], br#"{"on":true}"#);
    let mut meta = key("db");
    meta.metadata_policy = Some(MetadataPolicy::Fetch);
    meta.property = Some("labels".into());
    assert_eq!(c.get_secret_map(&meta).await.unwrap()["team"], b"payments");
    env.cleanup().await;
}

#[tokio::test]
async fn find_by_name_and_by_labels() {
    let env = Env::new().await;
    env.put_secret(env.ns(), "db-main", &[("p", "1")], &[("tier", "db")])
        .await;
    env.put_secret(
        env.ns(),
        "db-replica",
        &[("p", "2")],
        &[("tier", "db"), ("env", "test")],
    )
    .await;
    env.put_secret(env.ns(), "api-key", &[("k", "3")], &[("tier", "web")])
        .await;
    let c = env.store().client().await;

    let by_name = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some("^db-".into()),
        }),
        ..Default::default()
    };
    let found = c.get_all_secrets(&by_name).await.unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), ["db-main", "db-replica"]);
    assert_eq!(found["db-main"], br#"{"p":"1"}"#);

    let by_tags = ExternalSecretFind {
        tags: [
            ("tier".to_owned(), "db".to_owned()),
            ("env".to_owned(), "test".to_owned()),
        ]
        .into(),
        ..Default::default()
    };
    let found = c.get_all_secrets(&by_tags).await.unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), ["db-replica"]);

    let neither = ExternalSecretFind::default();
    assert_eq!(
        c.get_all_secrets(&neither).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    env.cleanup().await;
}

#[tokio::test]
async fn push_applies_our_keys_and_delete_removes_only_them() {
    let env = Env::new().await;
    env.put_secret(env.ns(), "shared", &[("foreign", "theirs")], &[])
        .await;
    let c = env.store().client().await;

    c.push_secret(&push("shared", Some("a"), Some("src-a"), "1"))
        .await
        .unwrap();
    c.push_secret(&push("shared", Some("b"), Some("src-b"), "2"))
        .await
        .unwrap();
    let data = env.secret_data(env.ns(), "shared").await.unwrap();
    assert_eq!(data.get("foreign").map(String::as_str), Some("theirs"));
    assert_eq!(data.get("a").map(String::as_str), Some("1"));
    assert_eq!(data.get("b").map(String::as_str), Some("2"));
    let secret = Api::<Secret>::namespaced(env.client(), env.ns())
        .get("shared")
        .await
        .unwrap();
    assert!(
        secret
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER)),
        "{:?}",
        secret.metadata.managed_fields
    );

    // A push that changes nothing writes nothing.
    let version = secret.metadata.resource_version.clone();
    c.push_secret(&push("shared", Some("a"), Some("src-a"), "1"))
        .await
        .unwrap();
    let again = Api::<Secret>::namespaced(env.client(), env.ns())
        .get("shared")
        .await
        .unwrap();
    assert_eq!(again.metadata.resource_version, version);

    assert!(c.secret_exists(&remote("shared", Some("a"))).await.unwrap());
    assert!(
        !c.secret_exists(&remote("shared", Some("zzz")))
            .await
            .unwrap()
    );
    assert!(!c.secret_exists(&remote("nowhere", None)).await.unwrap());

    // One of our keys.
    c.delete_secret(&remote("shared", Some("a"))).await.unwrap();
    let data = env.secret_data(env.ns(), "shared").await.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["b", "foreign"]);
    // A key we did not push stays.
    c.delete_secret(&remote("shared", Some("foreign")))
        .await
        .unwrap();
    assert!(
        env.secret_data(env.ns(), "shared")
            .await
            .unwrap()
            .contains_key("foreign")
    );
    // Every key we pushed; the Secret stays for the other writer's key.
    c.delete_secret(&remote("shared", None)).await.unwrap();
    let data = env.secret_data(env.ns(), "shared").await.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["foreign"]);

    // A Secret we create is removed with its last key.
    c.push_secret(&push("fresh", Some("k"), Some("src"), "v"))
        .await
        .unwrap();
    assert_eq!(
        env.secret_data(env.ns(), "fresh")
            .await
            .unwrap()
            .get("k")
            .map(String::as_str),
        Some("v")
    );
    c.delete_secret(&remote("fresh", Some("k"))).await.unwrap();
    assert_eq!(env.secret_data(env.ns(), "fresh").await, None);
    c.delete_secret(&remote("fresh", Some("k"))).await.unwrap();

    // The whole Secret.
    c.push_secret(&push("whole", None, None, r#"{"x":"1","y":"2"}"#))
        .await
        .unwrap();
    assert_eq!(env.secret_data(env.ns(), "whole").await.unwrap().len(), 2);
    // One key without a property is refused, as upstream.
    let err = c
        .push_secret(&push("whole", None, Some("x"), "1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    env.cleanup().await;
}

#[tokio::test]
async fn no_credentials_never_fall_back_to_the_operator() {
    let env = Env::new().await;
    let mut store = env.store();
    store.spec.auth = None;
    let Err(err) = store.try_client().await else {
        panic!("a store without credentials built a client");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.message().contains("never used"), "{err}");

    // An empty auth block is no better.
    store.spec.auth = Some(KubernetesAuth::default());
    let Err(err) = store.try_client().await else {
        panic!("a store with an empty auth built a client");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    env.cleanup().await;
}

#[tokio::test]
async fn a_store_reads_only_its_remote_namespace() {
    let mut env = Env::new().await;
    let other = env.other_namespace().await;
    env.put_secret(&other, "elsewhere", &[("k", "theirs")], &[("tier", "db")])
        .await;
    env.put_secret(
        &other,
        common::CREDS,
        &[("token", "other-namespace-token")],
        &[],
    )
    .await;
    env.put_secret(env.ns(), "mine", &[("k", "ours")], &[("tier", "db")])
        .await;

    // remoteNamespace names the test namespace: the other namespace's Secret is not there.
    let c = env.store().client().await;
    assert!(
        c.get_secret(&key("elsewhere"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Names that would change the request path are refused before any request.
    for sneaky in [
        format!("../../{other}/secrets/elsewhere"),
        format!("..%2F..%2F{other}%2Fsecrets%2Felsewhere"),
        "elsewhere/../elsewhere".to_owned(),
    ] {
        let err = c.get_secret(&key(&sneaky)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{sneaky}");
        let err = c
            .push_secret(&push(&sneaky, Some("k"), Some("k"), "x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{sneaky}");
    }
    // find lists only the remote namespace.
    let all = ExternalSecretFind {
        tags: [("tier".to_owned(), "db".to_owned())].into(),
        ..Default::default()
    };
    assert_eq!(
        c.get_all_secrets(&all)
            .await
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["mine"]
    );
    assert_eq!(
        env.secret_data(&other, "elsewhere").await.unwrap()["k"],
        "theirs"
    );

    // A SecretStore's credential reference resolves in its own namespace, whatever namespace it
    // names: with the Secret deleted there, the other namespace's copy is not used.
    let mut store = env.store();
    let mut sel = selector(common::CREDS, "token");
    sel.namespace = Some(other.clone());
    store
        .spec
        .auth
        .as_mut()
        .unwrap()
        .token
        .as_mut()
        .unwrap()
        .bearer_token = sel;
    store.spec.remote_namespace = None;
    Api::<Secret>::namespaced(env.client(), env.ns())
        .delete(common::CREDS, &Default::default())
        .await
        .unwrap();
    let Err(err) = store.try_client().await else {
        panic!("the credential was read from another namespace");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(
        err.message()
            .contains(&format!("\"{}/{}\"", env.ns(), common::CREDS)),
        "{err}"
    );

    if env.cluster.is_real() {
        // RBAC: the store's ServiceAccount may read only the test namespace.
        let token = common::ClusterTokens(env.client());
        let token = eso_provider::ServiceAccountTokens::token(
            &token,
            env.ns(),
            common::ACCOUNT,
            &[],
            Some(600),
        )
        .await
        .unwrap();
        env.put_secret(env.ns(), common::CREDS, &[("token", &token)], &[])
            .await;
        let mut store = env.store();
        store.spec.remote_namespace = Some(other.clone());
        let c = store.client().await;
        let err = c.get_secret(&key("elsewhere")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
        assert_eq!(c.validate().await.unwrap_err().kind(), ErrorKind::Auth);
    }
    env.cleanup().await;
}

#[tokio::test]
async fn cluster_store_credentials_follow_referent_rules() {
    let env = Env::new().await;
    env.put_secret(env.ns(), "db", &[("k", "v")], &[]).await;
    // A ClusterSecretStore whose reference names no namespace reads the credential from the
    // namespace of the object using it.
    let mut store = env.store();
    store.kind = StoreKind::ClusterSecretStore;
    store.namespace = None;
    store.used_from = env.ns().to_owned();
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop("db", "k")).await.unwrap(), b"v");
    // Used from another namespace, where no such Secret exists, it fails.
    store.used_from = "kube-system".to_owned();
    let Err(err) = store.try_client().await else {
        panic!("a referent credential was found in the wrong namespace");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    env.cleanup().await;
}

#[tokio::test]
async fn service_account_and_kubeconfig_auth() {
    let env = Env::new().await;
    env.put_secret(env.ns(), "db", &[("k", "v")], &[]).await;
    env.grant("eso-reader", env.ns()).await;

    let mut store = env.store();
    store.spec.auth = Some(KubernetesAuth {
        service_account: Some(ServiceAccountSelector {
            name: "eso-reader".into(),
            namespace: None,
            audiences: Vec::new(),
        }),
        ..KubernetesAuth::default()
    });
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop("db", "k")).await.unwrap(), b"v");
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);

    // authRef: a kubeconfig with an inline token.
    let token = env.secret_data(env.ns(), common::CREDS).await.unwrap()["token"].clone();
    let ca_line = env
        .ca
        .as_ref()
        .map(|ca| format!("\n    certificate-authority-data: {ca}"))
        .unwrap_or_default();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n    namespace: kube-system\nclusters:\n- name: k\n  cluster:\n    server: {}{ca_line}\nusers:\n- name: u\n  user:\n    token: {token}\n",
        env.url
    );
    env.put_secret(env.ns(), "kubeconfig", &[("config", &kubeconfig)], &[])
        .await;
    let mut store = env.store();
    store.spec.auth = None;
    store.spec.server = None;
    store.spec.auth_ref = Some(selector("kubeconfig", "config"));
    let c = store.client().await;
    // The context's namespace does not matter: remoteNamespace does.
    assert_eq!(c.get_secret(&prop("db", "k")).await.unwrap(), b"v");

    // A kubeconfig that would use the operator's own token file is refused.
    let borrowed = kubeconfig.replace(
        &format!("token: {token}"),
        "tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
    );
    env.put_secret(env.ns(), "kubeconfig", &[("config", &borrowed)], &[])
        .await;
    let Err(err) = store.try_client().await else {
        panic!("a kubeconfig with tokenFile was accepted");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.message().contains("tokenFile"), "{err}");
    env.cleanup().await;
}

#[tokio::test]
async fn https_server_without_a_ca_is_refused() {
    let env = Env::new().await;
    let mut store = env.store();
    store.spec.server = Some(KubernetesServer {
        url: Some("https://127.0.0.1:1".into()),
        ..KubernetesServer::default()
    });
    let Err(err) = store.try_client().await else {
        panic!("an https server without a CA was accepted");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    env.cleanup().await;
}

/// A client certificate and key for `user`, made with `openssl`, that the cluster accepts:
/// self-signed in-process (that server authenticates nobody); on a real cluster signed by its
/// `kubernetes.io/kube-apiserver-client` signer through an approved CertificateSigningRequest,
/// with a Role that lets the user read the test namespace's Secrets.
async fn client_cert(env: &Env, user: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let subject = format!("/CN={user}/O=eso");
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "k.pem",
        "-out",
        "c.pem",
        "-subj",
        &subject,
    ];
    if !env.cluster.is_real() {
        args.extend(["-x509", "-days", "1"]);
    }
    openssl(dir.path(), &args);
    let key = std::fs::read_to_string(dir.path().join("k.pem")).unwrap();
    let pem = std::fs::read_to_string(dir.path().join("c.pem")).unwrap();
    if !env.cluster.is_real() {
        return (pem, key);
    }
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    let csrs: Api<CertificateSigningRequest> = Api::all(env.client());
    let name = format!("{}-{user}", env.ns());
    let csr: CertificateSigningRequest = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(&pem),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "expirationSeconds": 3600,
        }
    }))
    .unwrap();
    csrs.create(&kube::api::PostParams::default(), &csr)
        .await
        .unwrap();
    let approval = serde_json::json!({"status": {"conditions": [{
        "type": "Approved", "status": "True",
        "reason": "EsoTest", "message": "approved by the eso-rs tests",
    }]}});
    csrs.patch_subresource(
        "approval",
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&approval),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let cert = loop {
        let got = csrs.get(&name).await.unwrap();
        if let Some(cert) = got.status.and_then(|s| s.certificate) {
            break String::from_utf8(cert.0).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kube-controller-manager did not sign the approved CSR {name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    env.allow_secrets(
        user,
        env.ns(),
        serde_json::json!({"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}),
    )
    .await;
    (cert, key)
}

#[tokio::test]
async fn client_certificate_auth_builds_a_client() {
    let env = Env::new().await;
    env.put_secret(env.ns(), "db", &[("k", "v")], &[]).await;
    let (cert, key_pem) = client_cert(&env, "eso-cert-user").await;
    env.put_secret(
        env.ns(),
        "client-tls",
        &[("tls.crt", &cert), ("tls.key", &key_pem)],
        &[],
    )
    .await;
    let mut store = env.store();
    store.spec.auth = Some(KubernetesAuth {
        cert: Some(eso_api::provider::KubernetesCertAuth {
            client_cert: selector("client-tls", "tls.crt"),
            client_key: selector("client-tls", "tls.key"),
        }),
        ..KubernetesAuth::default()
    });
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop("db", "k")).await.unwrap(), b"v");

    // A key that is not PEM is a store error, found when the client is built.
    env.put_secret(
        env.ns(),
        "client-tls",
        &[("tls.crt", &cert), ("tls.key", "garbage")],
        &[],
    )
    .await;
    let Err(err) = store.try_client().await else {
        panic!("a client was built with an unreadable key");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
    env.cleanup().await;
}

/// HTTPS in front of the in-process API server (which speaks plain HTTP): rustls with a
/// certificate from [`server_certificate`], piping bytes to the server. Stops when dropped.
struct TlsFront {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsFront {
    async fn start(upstream: &str, cert_pem: &str, key_pem: &str) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let upstream = upstream.trim_start_matches("http://").to_owned();
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let upstream = upstream.clone();
                conns.spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self { url, task }
    }
}

#[tokio::test]
async fn ca_provider_config_map_is_the_trust_for_an_https_server() {
    let env = Env::new().await;
    env.put_secret(env.ns(), "db", &[("k", "over-tls")], &[])
        .await;
    // On a real cluster its own CA and URL; in-process, a TLS front with a CA made here.
    let (url, ca_pem, _front) = if env.cluster.is_real() {
        let ca = base64::engine::general_purpose::STANDARD
            .decode(env.ca.clone().expect("the kubeconfig's cluster has a CA"))
            .unwrap();
        (env.url.clone(), String::from_utf8(ca).unwrap(), None)
    } else {
        let (ca, cert, key) = server_certificate();
        let front = TlsFront::start(&env.url, &cert, &key).await;
        (front.url.clone(), ca, Some(front))
    };
    let (other_ca, _, _) = server_certificate();
    env.put_config_map(
        env.ns(),
        "remote-ca",
        &[("ca.crt", &ca_pem), ("other.crt", &other_ca)],
    )
    .await;
    let with_ca = |key: &str, name: &str| {
        let mut store = env.store();
        store.spec.server = Some(KubernetesServer {
            url: Some(url.clone()),
            ca_bundle: None,
            ca_provider: Some(CaProvider {
                type_: CaProviderType::ConfigMap,
                name: name.to_owned(),
                key: Some(key.to_owned()),
                namespace: None,
            }),
        });
        store
    };

    let c = with_ca("ca.crt", "remote-ca").client().await;
    assert_eq!(c.get_secret(&prop("db", "k")).await.unwrap(), b"over-tls");

    // Another CA's certificate does not make the server trusted.
    let c = with_ca("other.crt", "remote-ca").client().await;
    let err = c.get_secret(&prop("db", "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());

    // A missing ConfigMap or key is a store error that names it.
    let Err(err) = with_ca("ca.crt", "no-such-ca").try_client().await else {
        panic!("a client was built with a missing ConfigMap");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(
        err.message().ends_with(&format!(
            "spec.provider.kubernetes.server.caProvider refers to ConfigMap \"{}/no-such-ca\", which does not exist",
            env.ns()
        )),
        "{err}"
    );
    let Err(err) = with_ca("tls.crt", "remote-ca").try_client().await else {
        panic!("a client was built with a missing ConfigMap key");
    };
    assert!(err.message().contains("key \"tls.crt\""), "{err}");

    // A ClusterSecretStore must name the ConfigMap's namespace.
    let mut cluster_store = with_ca("ca.crt", "remote-ca");
    cluster_store.kind = StoreKind::ClusterSecretStore;
    cluster_store.namespace = None;
    let Err(err) = cluster_store.try_client().await else {
        panic!("a ClusterSecretStore caProvider without a namespace was accepted");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    if let Some(server) = cluster_store.spec.server.as_mut()
        && let Some(ca) = server.ca_provider.as_mut()
    {
        ca.namespace = Some(env.ns().to_owned());
    }
    let c = cluster_store.client().await;
    assert_eq!(c.get_secret(&prop("db", "k")).await.unwrap(), b"over-tls");
    env.cleanup().await;
}

/// Needs the in-process server's fault injection (429 and 5xx answers); the real-cluster lane\n/// skips `in_process::` (see `.ci/run`).
mod in_process {
    use super::*;

    #[tokio::test]
    async fn api_errors_map_to_kinds() {
        let env = Env::in_process().await;
        let server = env.cluster.server().unwrap();
        env.put_secret(env.ns(), "db", &[("k", "v")], &[]).await;
        let mut store = env.store();
        store.config = KubernetesConfig::default().request_timeout(Duration::from_millis(500));
        let c = store.client().await;
        for (code, kind) in [
            (401, ErrorKind::Auth),
            (403, ErrorKind::Auth),
            (429, ErrorKind::Throttled),
            (500, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
            (504, ErrorKind::Unavailable),
        ] {
            server.inject(Fault::status(code).verb("get").resource("secrets"));
            let err = c.get_secret(&prop("db", "k")).await.unwrap_err();
            assert_eq!(err.kind(), kind, "{code}: {}", err.chain());
            assert!(err.message().contains(&code.to_string()), "{err}");
            assert_eq!(server.pending_faults(), 0, "one request per call");
        }
        server.inject(Fault::hang().verb("get").resource("secrets"));
        let started = std::time::Instant::now();
        let err = c.get_secret(&prop("db", "k")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        server.inject(Fault::status(503).verb("patch").resource("secrets"));
        let err = c
            .push_secret(&push("db", Some("n"), Some("n"), "1"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        server.inject(Fault::status(403).verb("list").resource("secrets"));
        assert_eq!(c.validate().await.unwrap_err().kind(), ErrorKind::Auth);
        assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);
        assert_eq!(c.get_secret(&prop("db", "k")).await.unwrap(), b"v");
        env.cleanup().await;
    }
}
