//! Credentials and their tokens: service-account keys, GKE Workload Identity, workload identity
//! federation (ServiceAccount, AWS, credConfig file and URL), default credentials, referent
//! cluster stores; one token request per credential, refreshed before expiry.

use std::time::Duration;

use eso_api::common::ServiceAccountSelector;
use eso_api::provider::{
    GcpAwsCredentialsConfig, GcpConfigMapReference, GcpSecretReference, GcpWorkloadIdentity,
    GcpWorkloadIdentityFederation, GcpsmAuth, GcpsmProvider,
};
use eso_provider::{ErrorKind, ValidationResult};
use eso_testserver_gcp::{FakeServiceAccountTokens, MetadataConfig, method};
use serde_json::json;

use crate::common::{Env, NS, PROJECT, SA_EMAIL, cluster_store, key_spec, remote, text};

/// The principal of every successful secret read so far.
fn readers(env: &Env) -> Vec<String> {
    env.server
        .calls()
        .into_iter()
        .filter(|c| c.method == method::ACCESS_SECRET_VERSION && c.status == 200)
        .filter_map(|c| c.principal)
        .collect()
}

fn wi_spec(account: &str) -> GcpsmProvider {
    GcpsmProvider {
        project_id: Some(PROJECT.into()),
        auth: Some(GcpsmAuth {
            workload_identity: Some(GcpWorkloadIdentity {
                service_account_ref: ServiceAccountSelector {
                    name: account.into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn wif_spec(wif: GcpWorkloadIdentityFederation) -> GcpsmProvider {
    GcpsmProvider {
        project_id: Some(PROJECT.into()),
        auth: Some(GcpsmAuth {
            workload_identity_federation: Some(wif),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pool_audience(env: &Env) -> String {
    format!(
        "//iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/k8s/providers/cluster",
        env.server.project_number(PROJECT)
    )
}

fn pool_subject(env: &Env, subject: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/k8s/subject/{subject}",
        env.server.project_number(PROJECT)
    )
}

#[tokio::test]
async fn a_key_is_exchanged_once_and_its_token_reused() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    for i in 0..20 {
        let r = if i % 2 == 0 {
            remote("db")
        } else {
            remote("missing")
        };
        let _ = client.get_secret(&r).await;
    }
    assert_eq!(client.validate().await.unwrap(), ValidationResult::Ready);
    assert_eq!(env.server.count(method::OAUTH2_TOKEN), 1);
    assert_eq!(readers(&env)[0], SA_EMAIL);
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let env = Env::new().await;
    env.server.set_token_lifetime(Duration::from_secs(3));
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    client.get_secret(&remote("db")).await.unwrap();
    assert_eq!(env.server.count(method::OAUTH2_TOKEN), 1);
    // The token's last fifth: a new one is fetched before the old one is refused.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    env.server.secret(PROJECT, "db2").version(b"v").create();
    client.get_secret(&remote("db2")).await.unwrap();
    assert_eq!(env.server.count(method::OAUTH2_TOKEN), 2);
    assert!(
        env.server
            .calls()
            .iter()
            .all(|c| c.method != method::ACCESS_SECRET_VERSION || c.status == 200)
    );
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    env.server.revoke_tokens();
    assert_eq!(text(client.get_secret(&remote("db")).await.unwrap()), "v");
    assert_eq!(env.server.count(method::OAUTH2_TOKEN), 2);
    let statuses: Vec<u16> = env
        .server
        .calls()
        .iter()
        .filter(|c| c.method == method::ACCESS_SECRET_VERSION)
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [401, 200]);
}

#[tokio::test]
async fn a_deleted_key_fails_with_auth_naming_the_store() {
    let env = Env::new().await;
    env.server.revoke_keys(SA_EMAIL);
    let err = env.client_error(key_spec()).await;
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        err.chain().contains("SecretStore \"apps/gcp\""),
        "{}",
        err.chain()
    );
    assert!(
        err.chain().contains("Invalid JWT Signature"),
        "{}",
        err.chain()
    );
}

#[tokio::test]
async fn broken_key_references_are_store_errors() {
    let mut env = Env::new().await;
    env.secrets.insert(
        NS,
        "bad-key",
        [("key.json".to_owned(), b"{}".to_vec())].into(),
    );
    let mut spec = key_spec();
    if let Some(sr) = spec.auth.as_mut().and_then(|a| a.secret_ref.as_mut())
        && let Some(sel) = sr.secret_access_key_secret_ref.as_mut()
    {
        sel.name = Some("bad-key".into());
    }
    let err = env.client_error(spec.clone()).await;
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.to_string().contains("client_email is missing"), "{err}");
    if let Some(sel) = spec
        .auth
        .as_mut()
        .and_then(|a| a.secret_ref.as_mut())
        .and_then(|s| s.secret_access_key_secret_ref.as_mut())
    {
        sel.name = Some("absent".into());
    }
    assert_eq!(env.client_error(spec).await.kind(), ErrorKind::InvalidStore);
}

#[tokio::test]
async fn gke_workload_identity_with_and_without_a_google_service_account() {
    let mut env = Env::new().await;
    env.server.set_metadata(MetadataConfig {
        project_id: "cluster-project".into(),
        cluster_name: "prod-1".into(),
        cluster_location: "europe-west1".into(),
        ..MetadataConfig::default()
    });
    env.tokens = FakeServiceAccountTokens::new().annotate(
        NS,
        "mapped",
        "iam.gke.io/gcp-service-account",
        "eso-reader@p1.iam.gserviceaccount.com",
    );
    env.server.secret(PROJECT, "db").version(b"v").create();

    let direct = env.client(wi_spec("plain")).await.unwrap();
    assert_eq!(text(direct.get_secret(&remote("db")).await.unwrap()), "v");
    let mapped = env.client(wi_spec("mapped")).await.unwrap();
    assert_eq!(text(mapped.get_secret(&remote("db")).await.unwrap()), "v");
    assert_eq!(
        readers(&env),
        [
            "serviceAccount:cluster-project.svc.id.goog[apps/plain]",
            "eso-reader@p1.iam.gserviceaccount.com",
        ]
    );
    // The ServiceAccount tokens asked for the identity pool.
    for (ns, _, audiences) in env.tokens.requests() {
        assert_eq!(ns, NS);
        assert_eq!(audiences, ["cluster-project.svc.id.goog"]);
    }
    assert_eq!(env.server.count(method::IDENTITY_BINDING_TOKEN), 2);
    assert_eq!(env.server.count(method::GENERATE_ACCESS_TOKEN), 1);

    // The cluster fields win over the metadata server.
    let spec = GcpsmProvider {
        auth: Some(GcpsmAuth {
            workload_identity: Some(GcpWorkloadIdentity {
                service_account_ref: ServiceAccountSelector {
                    name: "plain".into(),
                    audiences: vec!["extra".into()],
                    ..Default::default()
                },
                cluster_project_id: Some(PROJECT.into()),
                cluster_location: Some("us-east1".into()),
                cluster_name: Some("c".into()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let explicit = env.client(spec).await.unwrap();
    explicit.get_secret(&remote("db")).await.unwrap();
    assert_eq!(
        readers(&env).last().unwrap(),
        "serviceAccount:p1.svc.id.goog[apps/plain]"
    );
    assert_eq!(
        env.tokens.requests().last().unwrap().2,
        ["p1.svc.id.goog", "extra"]
    );
}

#[tokio::test]
async fn federation_with_a_service_account_token() {
    let mut env = Env::new().await;
    env.tokens = FakeServiceAccountTokens::new().annotate(
        NS,
        "mapped",
        "iam.gke.io/gcp-service-account",
        "mapped@p1.iam.gserviceaccount.com",
    );
    env.server.secret(PROJECT, "db").version(b"v").create();
    let federated = |account: &str, email: Option<&str>| {
        wif_spec(GcpWorkloadIdentityFederation {
            service_account_ref: Some(ServiceAccountSelector {
                name: account.into(),
                audiences: vec!["https://sts.example".into()],
                ..Default::default()
            }),
            audience: Some(pool_audience(&env)),
            gcp_service_account_email: email.map(Into::into),
            ..Default::default()
        })
    };
    for (account, email) in [
        ("plain", None),
        ("mapped", None),
        ("plain", Some("chosen@p1.iam.gserviceaccount.com")),
    ] {
        let client = env.client(federated(account, email)).await.unwrap();
        client.get_secret(&remote("db")).await.unwrap();
        client.get_secret(&remote("db")).await.unwrap();
    }
    assert_eq!(
        readers(&env),
        [
            pool_subject(&env, "system:serviceaccount:apps:plain"),
            "mapped@p1.iam.gserviceaccount.com".to_owned(),
            "chosen@p1.iam.gserviceaccount.com".to_owned(),
        ]
    );
    // One exchange per client; reads within the cache window reused the value.
    assert_eq!(env.server.count(method::STS_TOKEN), 3);
    assert_eq!(env.server.count(method::GENERATE_ACCESS_TOKEN), 2);
    assert!(
        env.tokens
            .requests()
            .iter()
            .all(|(_, _, aud)| aud == &["https://sts.example"])
    );
}

#[tokio::test]
async fn federation_with_aws_credentials_signs_get_caller_identity() {
    let mut env = Env::new().await;
    env.server.aws_credentials("AKIDEXAMPLE", "aws-secret");
    env.secrets.insert(
        NS,
        "aws",
        [
            ("aws_access_key_id".to_owned(), b"AKIDEXAMPLE".to_vec()),
            ("aws_secret_access_key".to_owned(), b"aws-secret".to_vec()),
            ("aws_session_token".to_owned(), b"session".to_vec()),
        ]
        .into(),
    );
    env.secrets.insert(
        NS,
        "aws-wrong",
        [
            ("aws_access_key_id".to_owned(), b"AKIDEXAMPLE".to_vec()),
            (
                "aws_secret_access_key".to_owned(),
                b"not-the-secret".to_vec(),
            ),
        ]
        .into(),
    );
    env.server.secret(PROJECT, "db").version(b"v").create();
    let spec = |secret: &str| {
        wif_spec(GcpWorkloadIdentityFederation {
            aws_security_credentials: Some(GcpAwsCredentialsConfig {
                region: "eu-central-1".into(),
                aws_credentials_secret_ref: GcpSecretReference {
                    name: secret.into(),
                    namespace: None,
                },
            }),
            audience: Some(pool_audience(&env)),
            ..Default::default()
        })
    };
    let client = env.client(spec("aws")).await.unwrap();
    client.get_secret(&remote("db")).await.unwrap();
    assert_eq!(
        readers(&env),
        [pool_subject(&env, "aws:eu-central-1:AKIDEXAMPLE")]
    );
    // A wrong secret key gives a signature the server rejects.
    let err = env.client_error(spec("aws-wrong")).await;
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        err.chain().contains("signature does not match"),
        "{}",
        err.chain()
    );
}

#[tokio::test]
async fn federation_with_a_cred_config_file_or_url() {
    let mut env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        FakeServiceAccountTokens::mint("ci", "runner", &["sts".to_owned()], 3600),
    )
    .unwrap();
    env.server
        .set_external_token(&FakeServiceAccountTokens::mint(
            "idp",
            "user",
            &["sts".to_owned()],
            3600,
        ));
    let url = env.server.url();
    let file_config = json!({
        "type": "external_account",
        "audience": pool_audience(&env),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{url}/v1/token"),
        "credential_source": {"file": token_file.to_str().unwrap()},
        "service_account_impersonation_url": format!("{url}/v1/projects/-/serviceAccounts/file-sa@p1.iam.gserviceaccount.com:generateAccessToken"),
        "service_account_impersonation": {"token_lifetime_seconds": 1200},
    });
    let url_config = json!({
        "type": "external_account",
        "audience": pool_audience(&env),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{url}/v1/token"),
        "credential_source": {
            "url": format!("{url}/external/token.json"),
            "headers": {"Metadata": "True"},
            "format": {"type": "json", "subject_token_field_name": "id_token"},
        },
    });
    env.config_maps.insert(
        NS,
        "wif",
        [
            ("file.json".to_owned(), file_config.to_string()),
            ("url.json".to_owned(), url_config.to_string()),
        ]
        .into(),
    );
    env.server.secret(PROJECT, "db").version(b"v").create();
    let spec = |key: &str| {
        wif_spec(GcpWorkloadIdentityFederation {
            cred_config: Some(GcpConfigMapReference {
                name: "wif".into(),
                namespace: None,
                key: key.into(),
            }),
            external_token_endpoint: Some(format!("{url}/external/token.json")),
            ..Default::default()
        })
    };
    env.client(spec("file.json"))
        .await
        .unwrap()
        .get_secret(&remote("db"))
        .await
        .unwrap();
    env.client(spec("url.json"))
        .await
        .unwrap()
        .get_secret(&remote("db"))
        .await
        .unwrap();
    assert_eq!(
        readers(&env),
        [
            "file-sa@p1.iam.gserviceaccount.com".to_owned(),
            pool_subject(&env, "system:serviceaccount:idp:user"),
        ]
    );
}

#[tokio::test]
async fn cred_configs_are_checked_as_upstream_does() {
    let mut env = Env::new().await;
    let url = env.server.url();
    let base = |source: serde_json::Value| {
        json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/k8s/providers/x",
            "token_url": format!("{url}/v1/token"),
            "credential_source": source,
        })
    };
    let mut foreign_token = base(json!({"file": "/tmp/t"}));
    foreign_token["token_url"] = json!("https://sts.example.com/v1/token");
    let mut foreign_impersonation = base(json!({"file": "/tmp/t"}));
    foreign_impersonation["service_account_impersonation_url"] = json!(
        "https://evil.example/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com:generateAccessToken"
    );
    let cases = [
        (
            "executable",
            base(json!({"executable": {"command": "/bin/true"}})),
            "executable",
        ),
        (
            "own-token",
            base(json!({"file": "/var/run/secrets/kubernetes.io/serviceaccount/token"})),
            "own ServiceAccount token",
        ),
        (
            "url",
            base(json!({"url": "https://other.example/token"})),
            "externalTokenEndpoint",
        ),
        ("token-url", foreign_token, "must match"),
        (
            "impersonation",
            foreign_impersonation,
            "does not have expected value",
        ),
        (
            "type",
            json!({"type": "service_account"}),
            "external_account",
        ),
    ];
    env.config_maps.insert(
        NS,
        "wif",
        cases
            .iter()
            .map(|(k, v, _)| ((*k).to_owned(), v.to_string()))
            .collect(),
    );
    for (key, _, expected) in cases {
        let spec = wif_spec(GcpWorkloadIdentityFederation {
            cred_config: Some(GcpConfigMapReference {
                name: "wif".into(),
                namespace: None,
                key: key.into(),
            }),
            ..Default::default()
        });
        let err = env.client_error(spec).await;
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidStore,
            "{key}: {}",
            err.chain()
        );
        assert!(err.to_string().contains(expected), "{key}: {err}");
    }
    assert_eq!(env.server.count(method::STS_TOKEN), 0);
}

#[tokio::test]
async fn default_credentials_come_from_the_metadata_server_or_a_configured_key() {
    let mut env = Env::new().await;
    env.server.set_metadata(MetadataConfig {
        project_id: PROJECT.into(),
        service_account_email: "node@p1.iam.gserviceaccount.com".into(),
        ..MetadataConfig::default()
    });
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(GcpsmProvider::default()).await.unwrap();
    client.get_secret(&remote("db")).await.unwrap();
    assert_eq!(readers(&env), ["node@p1.iam.gserviceaccount.com"]);
    assert_eq!(env.server.count(method::METADATA_TOKEN), 1);
    let key = env
        .server
        .service_account_key("app@p1.iam.gserviceaccount.com");
    env.config = env.config.clone().application_credentials(Some(key));
    let client = env
        .client(GcpsmProvider {
            project_id: Some(PROJECT.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    client.get_secret(&remote("db")).await.unwrap();
    assert_eq!(readers(&env)[1], "app@p1.iam.gserviceaccount.com");
}

#[tokio::test]
async fn referent_cluster_stores_resolve_credentials_in_the_readers_namespace() {
    let mut env = Env::new().await;
    let key = env
        .server
        .service_account_key("team-b@p1.iam.gserviceaccount.com");
    env.secrets.insert(
        "team-b",
        "gcp-key",
        [("key.json".to_owned(), key.into_bytes())].into(),
    );
    env.server.secret(PROJECT, "db").version(b"v").create();
    let store = cluster_store(key_spec());
    // Validated on its own (no namespace), it cannot be checked.
    let unchecked = env.client_for(&store, "").await.unwrap();
    assert_eq!(
        unchecked.validate().await.unwrap(),
        ValidationResult::Unknown
    );
    assert_eq!(env.server.count(method::OAUTH2_TOKEN), 0);
    let client = env.client_for(&store, "team-b").await.unwrap();
    client.get_secret(&remote("db")).await.unwrap();
    assert_eq!(readers(&env), ["team-b@p1.iam.gserviceaccount.com"]);
}
