//! Tokens from Secrets, OIDC, validation and store checks.

use eso_api::ServiceAccountSelector;
use eso_api::provider::{DopplerAuth, DopplerOidcAuth};
use eso_provider::{ErrorKind, Provider, ValidationResult};
use eso_testserver_doppler::method;

use crate::common::{Env, NS, Tokens, cluster_store, remote, store, text};

fn oidc_spec(env: &Env, namespace: Option<&str>) -> eso_api::provider::DopplerProvider {
    let mut spec = env.spec();
    spec.auth = DopplerAuth {
        secret_ref: None,
        oidc_config: Some(DopplerOidcAuth {
            identity: "ident-1".into(),
            service_account_ref: ServiceAccountSelector {
                name: "doppler-sa".into(),
                namespace: namespace.map(str::to_owned),
                audiences: vec!["extra-aud".into()],
            },
            expiration_seconds: None,
        }),
    };
    spec.project = Some("backend".into());
    spec.config = Some("prd".into());
    spec
}

#[tokio::test]
async fn oidc_exchanges_a_service_account_token_with_upstreams_audiences() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    let base = env.server.url();
    let expected = Tokens::spell(
        NS,
        "doppler-sa",
        &[
            base,
            "extra-aud".into(),
            format!("secretStore:{NS}:doppler"),
        ],
        600,
    );
    env.server.oidc_identity("ident-1", &expected);
    let client = env.client_with(oidc_spec(&env, None)).await.unwrap();
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    client.get_all_secrets(&Default::default()).await.unwrap();
    assert_eq!(env.server.count(method::OIDC_AUTH), 1);
    assert_eq!(env.tokens.asked.lock().unwrap().as_slice(), [expected]);
}

#[tokio::test]
async fn a_cluster_store_binds_the_oidc_token_to_its_name() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    let expected = Tokens::spell(
        "security",
        "doppler-sa",
        &[
            env.server.url(),
            "extra-aud".into(),
            "clusterSecretStore:doppler".into(),
        ],
        600,
    );
    env.server.oidc_identity("ident-1", &expected);
    let css = cluster_store(oidc_spec(&env, Some("security")));
    let client = env.client_for(&css, "team-a").await.unwrap();
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
}

#[tokio::test]
async fn a_refused_oidc_exchange_is_auth() {
    let env = Env::new().await;
    env.server.oidc_identity("ident-1", "some other token");
    let Err(err) = env.client_with(oidc_spec(&env, None)).await else {
        panic!("a client was built with a refused identity")
    };
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    assert!(err.to_string().contains("ident-1"), "{err}");
}

#[tokio::test]
async fn an_expired_oidc_token_is_exchanged_again() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    env.server.secret("backend", "prd", "B", "2");
    let expected = Tokens::spell(
        NS,
        "doppler-sa",
        &[
            env.server.url(),
            "extra-aud".into(),
            format!("secretStore:{NS}:doppler"),
        ],
        600,
    );
    env.server.oidc_identity("ident-1", &expected);
    // Tokens within a minute of expiry are renewed before use.
    env.server.set_oidc_ttl(std::time::Duration::from_secs(30));
    let client = env.client_with(oidc_spec(&env, None)).await.unwrap();
    client.get_secret(&remote("A")).await.unwrap();
    client.get_secret(&remote("B")).await.unwrap();
    assert_eq!(env.server.count(method::OIDC_AUTH), 3);
}

#[tokio::test]
async fn a_bad_token_is_auth_and_validate_checks_it() {
    let mut env = Env::new().await;
    let client = env.client().await;
    assert_eq!(client.validate().await.unwrap(), ValidationResult::Ready);
    env.secrets.insert(
        NS,
        "doppler",
        [("dopplerToken".to_owned(), b"dp.st.wrong".to_vec())].into(),
    );
    let bad = env.client().await;
    assert_eq!(bad.validate().await.unwrap_err().kind(), ErrorKind::Auth);
    let err = bad.get_secret(&remote("A")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
}

#[tokio::test]
async fn store_validation_follows_upstream() {
    let env = Env::new().await;
    let p = env.provider();
    assert!(p.validate_store(&store(env.spec())).is_ok());
    assert!(p.validate_store(&store(oidc_spec(&env, None))).is_ok());
    let mut none = env.spec();
    none.auth = DopplerAuth::default();
    let mut both = env.spec();
    both.auth.oidc_config = oidc_spec(&env, None).auth.oidc_config;
    let mut no_identity = oidc_spec(&env, None);
    if let Some(o) = no_identity.auth.oidc_config.as_mut() {
        o.identity.clear();
    }
    let mut other_ns = env.spec();
    if let Some(s) = other_ns.auth.secret_ref.as_mut() {
        s.doppler_token.namespace = Some("elsewhere".into());
    }
    for (what, spec) in [
        ("no auth", none),
        ("both", both),
        ("no identity", no_identity),
        ("other namespace", other_ns),
    ] {
        let err = p.validate_store(&store(spec)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore, "{what}: {err}");
    }
    assert_eq!(p.capabilities(), eso_api::SecretStoreCapabilities::ReadOnly);
}

#[tokio::test]
async fn a_referent_token_resolves_in_the_externalsecret_namespace() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    let css = cluster_store(env.spec());
    let placeholder = env.client_for(&css, "").await.unwrap();
    assert_eq!(
        placeholder.validate().await.unwrap(),
        ValidationResult::Unknown
    );
    let client = env.client_for(&css, NS).await.unwrap();
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
}
