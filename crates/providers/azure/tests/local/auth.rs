//! Logins: service principal (secret, certificate), workload identity (referenced
//! ServiceAccount, mounted token file), managed identity; refused logins by cause; the token
//! economy (one token per credential, renewal, a refused token replaced once).

use std::collections::BTreeMap;
use std::time::Duration;

use eso_api::provider::{AzureAuthType, AzureKvAuth};
use eso_provider::{ClientContext, ErrorKind, Provider, StaticConfigMapReader};
use eso_provider_azure::{AzureKvProvider, WorkloadIdentityEnv};
use eso_testserver_azure::{Fault, Listener, pki};

use crate::common::*;

#[tokio::test]
async fn client_secret_login_reads_a_secret() {
    let env = Env::new();
    env.server.set_secret("db", "hunter2");
    let client = env.client().await;
    assert_eq!(client.get_secret(&remote("db")).await.unwrap(), b"hunter2");
}

#[tokio::test]
async fn client_certificate_login_signs_an_assertion_the_authority_verifies() {
    let mut env = Env::new();
    let cert = pki::self_signed("eso-sp", true).unwrap();
    env.server
        .add_client_certificate("cert-app", &cert.cert_pem);
    env.secrets.insert(
        NS,
        "cert-creds",
        [
            ("client-id".to_owned(), b"cert-app".to_vec()),
            ("tls.pem".to_owned(), cert.combined_pem().into_bytes()),
        ]
        .into(),
    );
    env.server.set_secret("db", "by-cert");
    let spec = eso_api::provider::AzureKvProvider {
        auth_secret_ref: Some(AzureKvAuth {
            client_id: Some(sel("cert-creds", "client-id")),
            client_certificate: Some(sel("cert-creds", "tls.pem")),
            ..AzureKvAuth::default()
        }),
        ..env.spec()
    };
    let client = env.client_for(spec.clone()).await.unwrap();
    assert_eq!(client.get_secret(&remote("db")).await.unwrap(), b"by-cert");

    // A certificate the application does not know is refused by the authority, as Auth.
    let other = pki::self_signed("stranger", true).unwrap();
    env.secrets.insert(
        NS,
        "cert-creds",
        [
            ("client-id".to_owned(), b"cert-app".to_vec()),
            ("tls.pem".to_owned(), other.combined_pem().into_bytes()),
        ]
        .into(),
    );
    let err = env
        .client_for(spec)
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.chain().contains("AADSTS700027"), "{}", err.chain());
}

#[tokio::test]
async fn both_client_secret_and_certificate_is_an_invalid_store() {
    let env = Env::new();
    let mut spec = env.spec();
    if let Some(a) = spec.auth_secret_ref.as_mut() {
        a.client_certificate = Some(sel("azure-creds", "client-secret"));
    }
    let err = env
        .client_for(spec)
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(
        err.message()
            .contains("both clientSecret and clientCertificate set"),
        "{err}"
    );
    let mut no_tenant = env.spec();
    no_tenant.tenant_id = None;
    let err = env
        .client_for(no_tenant)
        .await
        .err()
        .expect("the login must fail");
    assert!(err.message().contains("missing tenantID"), "{err}");
}

#[tokio::test]
async fn a_wrong_secret_and_an_unknown_tenant_are_auth_errors_naming_the_cause() {
    let mut env = Env::new();
    env.secrets.insert(
        NS,
        "azure-creds",
        [
            ("client-id".to_owned(), SP.as_bytes().to_vec()),
            ("client-secret".to_owned(), b"wrong".to_vec()),
        ]
        .into(),
    );
    let err = env
        .client_for(env.spec())
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        err.message().contains("SecretStore \"apps/azure\""),
        "{err}"
    );
    assert!(err.chain().contains("AADSTS7000215"), "{}", err.chain());

    let env = Env::new();
    let mut spec = env.spec();
    spec.tenant_id = Some("not-my-tenant".into());
    let err = env
        .client_for(spec)
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.chain().contains("AADSTS90002"), "{}", err.chain());
}

#[tokio::test]
async fn workload_identity_exchanges_a_service_account_token() {
    let env = Env::new();
    env.server
        .add_federated_credential("wi-app", ISSUER, "system:serviceaccount:apps:reader");
    env.tokens.annotations.lock().unwrap().insert(
        (NS.to_owned(), "reader".to_owned()),
        BTreeMap::from([(
            "azure.workload.identity/client-id".to_owned(),
            "wi-app".to_owned(),
        )]),
    );
    env.server.set_secret("db", "federated");
    let mut spec = workload_spec(&env, "reader");
    if let Some(sa) = spec.service_account_ref.as_mut() {
        sa.audiences = vec!["extra".into()];
    }
    let client = env.client_for(spec).await.unwrap();
    assert_eq!(
        client.get_secret(&remote("db")).await.unwrap(),
        b"federated"
    );
    // Upstream's audiences: the exchange audience, then the ref's.
    let requests = env.tokens.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        [(
            NS.to_owned(),
            "reader".to_owned(),
            vec!["api://AzureADTokenExchange".to_owned(), "extra".to_owned()]
        )]
    );

    // A ServiceAccount the application does not trust is refused by the authority.
    env.tokens.annotations.lock().unwrap().insert(
        (NS.to_owned(), "intruder".to_owned()),
        BTreeMap::from([(
            "azure.workload.identity/client-id".to_owned(),
            "wi-app".to_owned(),
        )]),
    );
    let err = env
        .client_for(workload_spec(&env, "intruder"))
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.chain().contains("AADSTS700213"), "{}", err.chain());
}

#[tokio::test]
async fn workload_identity_client_and_tenant_rules_follow_upstream() {
    let env = Env::new();
    // No annotation and no authSecretRef: no client id.
    env.tokens
        .annotations
        .lock()
        .unwrap()
        .insert((NS.to_owned(), "bare".to_owned()), BTreeMap::new());
    let err = env
        .client_for(workload_spec(&env, "bare"))
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidStore);
    assert!(err.message().contains("missing clientID"), "{err}");
    // The client id in both the annotation and authSecretRef is ambiguous.
    env.tokens.annotations.lock().unwrap().insert(
        (NS.to_owned(), "both".to_owned()),
        BTreeMap::from([(
            "azure.workload.identity/client-id".to_owned(),
            "wi-app".to_owned(),
        )]),
    );
    let mut spec = workload_spec(&env, "both");
    spec.auth_secret_ref = Some(AzureKvAuth {
        client_id: Some(sel("azure-creds", "client-id")),
        ..AzureKvAuth::default()
    });
    let err = env
        .client_for(spec)
        .await
        .err()
        .expect("the login must fail");
    assert!(err.message().contains("multiple clientID found"), "{err}");
    // A tenant in the spec and in the annotation is ambiguous too.
    env.tokens.annotations.lock().unwrap().insert(
        (NS.to_owned(), "tenants".to_owned()),
        BTreeMap::from([
            (
                "azure.workload.identity/client-id".to_owned(),
                "wi-app".to_owned(),
            ),
            (
                "azure.workload.identity/tenant-id".to_owned(),
                "t".to_owned(),
            ),
        ]),
    );
    let err = env
        .client_for(workload_spec(&env, "tenants"))
        .await
        .err()
        .expect("the login must fail");
    assert!(err.message().contains("multiple tenantID found"), "{err}");
    // A ServiceAccount that does not exist.
    let err = env
        .client_for(workload_spec(&env, "ghost"))
        .await
        .err()
        .expect("the login must fail");
    assert!(err.message().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn mounted_workload_identity_reads_the_token_file_for_each_login() {
    let env = Env::new();
    env.server.add_federated_credential(
        "mounted-app",
        ISSUER,
        "system:serviceaccount:eso:operator",
    );
    env.server.set_secret("db", "mounted");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        eso_testserver_azure::service_account_jwt(
            ISSUER,
            "eso",
            "operator",
            &["api://AzureADTokenExchange".to_owned()],
        ),
    )
    .unwrap();
    let provider =
        AzureKvProvider::new().config(config(&env.server).workload_identity(WorkloadIdentityEnv {
            client_id: Some("mounted-app".into()),
            tenant_id: Some(env.server.tenant()),
            token_file: Some(file),
        }));
    let mut spec = workload_spec(&env, "unused");
    spec.service_account_ref = None;
    let store = Env::store(spec.clone());
    let cms = StaticConfigMapReader::new();
    let client = provider
        .new_client(ClientContext {
            store: &store,
            namespace: NS,
            secrets: &env.secrets,
            config_maps: &cms,
            tokens: None,
        })
        .await
        .unwrap();
    assert_eq!(client.get_secret(&remote("db")).await.unwrap(), b"mounted");

    // Without the mounted identity, upstream's message.
    let err = env
        .client_for(spec)
        .await
        .err()
        .expect("the login must fail");
    assert!(
        err.message()
            .contains("AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE"),
        "{err}"
    );
}

#[tokio::test]
async fn managed_identity_uses_imds_with_the_identity_id() {
    let env = Env::new();
    env.server.add_managed_identity("system-mi");
    env.server.add_managed_identity("user-mi");
    env.server.set_secret("db", "from-imds");
    env.server.forbid("system-mi");
    let spec = eso_api::provider::AzureKvProvider {
        auth_type: Some(AzureAuthType::ManagedIdentity),
        auth_secret_ref: None,
        identity_id: Some("user-mi".into()),
        ..env.spec()
    };
    let client = env.client_for(spec.clone()).await.unwrap();
    assert_eq!(
        client.get_secret(&remote("db")).await.unwrap(),
        b"from-imds"
    );
    // Without identityId, IMDS picks the pod's default identity, which this vault forbids.
    let client = env
        .client_for(eso_api::provider::AzureKvProvider {
            identity_id: None,
            ..spec.clone()
        })
        .await
        .unwrap();
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("403"), "{err}");
    // An identity the pod does not have.
    let err = env
        .client_for(eso_api::provider::AzureKvProvider {
            identity_id: Some("nope".into()),
            ..spec
        })
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        err.chain().contains("Identity not found"),
        "{}",
        err.chain()
    );
}

#[tokio::test]
async fn one_token_request_per_credential_across_clients_and_reads() {
    let env = Env::new();
    for i in 0..10 {
        env.server.set_secret(&format!("k{i}"), "v");
    }
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(env.client().await);
    }
    for c in &clients {
        for i in 0..10 {
            c.get_secret(&remote(&format!("k{i}"))).await.unwrap();
        }
    }
    assert_eq!(env.server.token_requests(), 1);
    // A second credential is a second token.
    env.server.add_client_secret("other-app", "x");
    let mut secrets = env.secrets.clone();
    secrets.insert(
        NS,
        "other",
        [
            ("client-id".to_owned(), b"other-app".to_vec()),
            ("client-secret".to_owned(), b"x".to_vec()),
        ]
        .into(),
    );
    let mut spec = env.spec();
    spec.auth_secret_ref = Some(AzureKvAuth {
        client_id: Some(sel("other", "client-id")),
        client_secret: Some(sel("other", "client-secret")),
        ..AzureKvAuth::default()
    });
    let store = Env::store(spec);
    let cms = StaticConfigMapReader::new();
    env.provider
        .new_client(ClientContext {
            store: &store,
            namespace: NS,
            secrets: &secrets,
            config_maps: &cms,
            tokens: None,
        })
        .await
        .unwrap();
    assert_eq!(env.server.token_requests(), 2);
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let env = Env::new();
    env.server.set_token_lifetime_secs(2);
    env.server.set_secret("db", "v");
    let client = env.client().await;
    client.get_secret(&remote("db")).await.unwrap();
    assert_eq!(env.server.token_requests(), 1);
    // Renewed halfway through a 2 s lifetime: after 1.2 s the next request logs in again,
    // and never presents an expired token.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let c2 = env.client().await;
    c2.get_secret(&remote("secret/db")).await.unwrap();
    assert_eq!(env.server.token_requests(), 2);
    let refused = env
        .server
        .requests()
        .iter()
        .filter(|r| r.listener == Listener::Vault && !r.authorized)
        .count();
    assert_eq!(refused, 0);
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let env = Env::new();
    env.server.set_secret("db", "v");
    let client = env.client().await;
    env.server.expire_tokens();
    assert_eq!(client.get_secret(&remote("db")).await.unwrap(), b"v");
    assert_eq!(env.server.token_requests(), 2);
    // A vault that keeps refusing is Auth after one retry, not a loop.
    env.server.inject(Fault::vault("/secrets/db", 401).times(5));
    let before = env.server.requests().len();
    let c = env
        .client_for(eso_api::provider::AzureKvProvider { ..env.spec() })
        .await
        .unwrap();
    let err = c.get_secret(&remote("secret/db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    let vault_calls = env.server.requests()[before..]
        .iter()
        .filter(|r| r.listener == Listener::Vault)
        .count();
    assert_eq!(vault_calls, 2);
}

#[tokio::test]
async fn an_unavailable_or_throttling_authority_is_transient() {
    let env = Env::new();
    env.server.inject(Fault::login(503));
    let err = env
        .client_for(env.spec())
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    env.server.inject(Fault::login(429).retry_after(7));
    let err = env
        .client_for(env.spec())
        .await
        .err()
        .expect("the login must fail");
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    // Once it recovers, the same store logs in.
    assert!(env.client_for(env.spec()).await.is_ok());
}
