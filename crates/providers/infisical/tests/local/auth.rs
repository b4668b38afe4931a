//! Machine-identity logins, token reuse and renewal, and store validation.

use eso_api::SecretKeySelector;
use eso_api::provider::{
    InfisicalAuth, InfisicalIdentityOnly, InfisicalJwtAuth, InfisicalKubernetesAuth,
    InfisicalLdapAuth, InfisicalTokenAuth,
};
use eso_provider::{ErrorKind, Provider, ValidationResult};
use eso_testserver_infisical::method;

use crate::common::{ENV, Env, NS, PROJECT, cluster_store, remote, selector, store, text};

fn only(auth: InfisicalAuth, env: &Env) -> eso_api::provider::InfisicalProvider {
    let mut spec = env.spec("/");
    spec.auth = auth;
    spec
}

#[tokio::test]
async fn universal_auth_logs_in_once_for_many_reads() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    env.server.secret(PROJECT, ENV, "/", "B", "2");
    let client = env.root_client().await;
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    assert_eq!(text(client.get_secret(&remote("B")).await.unwrap()), "2");
    assert_eq!(client.validate().await.unwrap(), ValidationResult::Ready);
    assert_eq!(env.server.count(method::UNIVERSAL_AUTH_LOGIN), 1);
    assert!(
        env.server
            .calls()
            .iter()
            .filter(|c| c.method == method::GET_SECRET)
            .all(|c| c.identity.as_deref() == Some("eso"))
    );
}

#[tokio::test]
async fn bad_credentials_fail_the_client_as_auth() {
    let mut env = Env::new().await;
    env.secrets.insert(
        NS,
        "infisical",
        [
            (
                "clientId".to_owned(),
                env.identity.client_id.clone().into_bytes(),
            ),
            ("clientSecret".to_owned(), b"wrong".to_vec()),
        ]
        .into(),
    );
    let err = env.client_error(env.spec("/")).await;
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    assert!(
        err.to_string().contains("universalAuthCredentials"),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_token_is_renewed_by_a_new_login() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    env.server.secret(PROJECT, ENV, "/", "B", "2");
    let client = env.root_client().await;
    client.get_secret(&remote("A")).await.unwrap();
    env.server.expire_tokens();
    assert_eq!(text(client.get_secret(&remote("B")).await.unwrap()), "2");
    assert_eq!(env.server.count(method::UNIVERSAL_AUTH_LOGIN), 2);
}

#[tokio::test]
async fn close_revokes_the_logged_in_token() {
    let env = Env::new().await;
    let client = env.root_client().await;
    assert_eq!(env.server.live_tokens(), 1);
    client.close().await.unwrap();
    assert_eq!(env.server.live_tokens(), 0);
    assert_eq!(env.server.count(method::REVOKE_TOKEN), 1);
}

#[tokio::test]
async fn token_auth_uses_the_token_as_given_and_never_revokes_it() {
    let mut env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    let token = env.server.access_token(&env.identity.identity_id);
    env.secrets
        .insert(NS, "tok", [("token".to_owned(), token.into_bytes())].into());
    let spec = only(
        InfisicalAuth {
            token_auth_credentials: Some(InfisicalTokenAuth {
                access_token: selector("tok", "token"),
            }),
            ..Default::default()
        },
        &env,
    );
    let client = env.client(spec).await.unwrap();
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    client.close().await.unwrap();
    assert_eq!(env.server.live_tokens(), 1);
    // A rejected static token cannot be renewed: the read fails as Auth.
    env.server.expire_tokens();
    let err = client.get_secret(&remote("B")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(env.server.count(method::UNIVERSAL_AUTH_LOGIN), 0);
}

#[tokio::test]
async fn jwt_ldap_and_kubernetes_logins() {
    let mut env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    let id = env.identity.identity_id.clone();
    env.server.allow_jwt(&id, "header.payload.sig");
    env.server.allow_ldap(&id, "eso", "ldap-pass");
    env.server.allow_kubernetes_token(&id, "k8s-sa-token");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "k8s-sa-token\n").unwrap();
    env.secrets.insert(
        NS,
        "creds",
        [
            ("identityId".to_owned(), id.clone().into_bytes()),
            ("jwt".to_owned(), b"header.payload.sig".to_vec()),
            ("user".to_owned(), b"eso".to_vec()),
            ("pass".to_owned(), b"ldap-pass".to_vec()),
            (
                "tokenPath".to_owned(),
                token_file.to_string_lossy().into_owned().into_bytes(),
            ),
        ]
        .into(),
    );
    let identity = || selector("creds", "identityId");
    let jwt = only(
        InfisicalAuth {
            jwt_auth_credentials: Some(InfisicalJwtAuth {
                identity_id: identity(),
                jwt: selector("creds", "jwt"),
            }),
            ..Default::default()
        },
        &env,
    );
    let ldap = only(
        InfisicalAuth {
            ldap_auth_credentials: Some(InfisicalLdapAuth {
                identity_id: identity(),
                ldap_username: selector("creds", "user"),
                ldap_password: selector("creds", "pass"),
            }),
            ..Default::default()
        },
        &env,
    );
    let k8s = only(
        InfisicalAuth {
            kubernetes_auth_credentials: Some(InfisicalKubernetesAuth {
                identity_id: identity(),
                service_account_token_path: Some(selector("creds", "tokenPath")),
            }),
            ..Default::default()
        },
        &env,
    );
    for spec in [jwt, ldap, k8s.clone()] {
        let client = env.client(spec).await.unwrap();
        assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    }
    assert_eq!(env.server.count(method::JWT_AUTH_LOGIN), 1);
    assert_eq!(env.server.count(method::LDAP_AUTH_LOGIN), 1);
    assert_eq!(env.server.count(method::KUBERNETES_AUTH_LOGIN), 1);

    // Without a path in the store, the configured default token file is read.
    env.config = env.config.clone().service_account_token_path(&token_file);
    let mut default_path = k8s;
    if let Some(k) = default_path.auth.kubernetes_auth_credentials.as_mut() {
        k.service_account_token_path = None;
    }
    env.client(default_path.clone()).await.unwrap();
    env.config = env
        .config
        .clone()
        .service_account_token_path(dir.path().join("missing"));
    let err = env.client_error(default_path).await;
    assert_eq!(err.kind(), ErrorKind::InvalidStore, "{}", err.chain());
}

#[tokio::test]
async fn a_denied_identity_is_an_auth_error_not_a_missing_secret() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    env.server.deny(&env.identity.identity_id, PROJECT);
    let client = env.root_client().await;
    let err = client.get_secret(&remote("A")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    let err = client.validate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
}

#[tokio::test]
async fn store_validation_follows_upstream() {
    let env = Env::new().await;
    let provider = env.provider();
    assert_eq!(
        provider.validate_store(&store(env.spec("/"))).unwrap(),
        Vec::<String>::new()
    );

    let mut no_scope = env.spec("/");
    no_scope.secrets_scope.project_slug = String::new();
    let err = provider.validate_store(&store(no_scope)).unwrap_err();
    assert!(err.to_string().contains("projectSlug"), "{err}");

    let none = only(InfisicalAuth::default(), &env);
    assert_eq!(
        provider.validate_store(&store(none)).unwrap_err().kind(),
        ErrorKind::InvalidStore
    );

    let aws = only(
        InfisicalAuth {
            aws_auth_credentials: Some(InfisicalIdentityOnly {
                identity_id: selector("creds", "identityId"),
            }),
            ..Default::default()
        },
        &env,
    );
    assert_eq!(
        provider.validate_store(&store(aws)).unwrap_err().kind(),
        ErrorKind::Unsupported
    );

    let mut other_ns = env.spec("/");
    if let Some(u) = other_ns.auth.universal_auth_credentials.as_mut() {
        u.client_id = SecretKeySelector {
            namespace: Some("elsewhere".into()),
            ..selector("infisical", "clientId")
        };
    }
    let err = provider.validate_store(&store(other_ns)).unwrap_err();
    assert!(err.to_string().contains("should either be empty"), "{err}");

    let mut both = env.spec("/");
    both.auth.token_auth_credentials = Some(InfisicalTokenAuth {
        access_token: selector("tok", "token"),
    });
    let warnings = provider.validate_store(&store(both)).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[tokio::test]
async fn referent_credentials_of_a_cluster_store_resolve_in_the_externalsecret_namespace() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    let css = cluster_store(env.spec("/"));
    // The store controller's check (no namespace) cannot log in: Unknown, as upstream.
    let placeholder = env.client_for(&css, "").await.unwrap();
    assert_eq!(
        placeholder.validate().await.unwrap(),
        ValidationResult::Unknown
    );
    assert_eq!(env.server.count(method::UNIVERSAL_AUTH_LOGIN), 0);
    // From namespace `apps` the credentials are read there.
    let client = env.client_for(&css, NS).await.unwrap();
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
}
