//! Every login method the dev server runs, token lifetimes, and refused tokens.

use std::time::Duration;

use eso_api::ExternalSecretDataRemoteRef;
use eso_api::common::ServiceAccountSelector;
use eso_api::provider::{
    VaultAppRole, VaultAuth, VaultJwtAuth, VaultKubernetesAuth,
    VaultKubernetesServiceAccountTokenAuth, VaultUserPassAuth,
};
use eso_provider::{ErrorKind, ValidationResult};
use serde_json::json;

use crate::common::{
    CountingProxy, FakeTokens, TestStore, child_token, fixture, put_v2, selector, unique,
};

fn prop(key: &str, property: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: Some(property.to_owned()),
        ..Default::default()
    }
}

async fn seeded() -> (&'static crate::common::Fixture, String) {
    let f = fixture().await;
    let key = unique("auth");
    put_v2(&f.bao, &key, json!({"k": "v"})).await;
    (f, key)
}

fn approle(f: &crate::common::Fixture, server: &str) -> TestStore {
    TestStore::new(server)
        .secret("approle", "secret-id", &f.secret_id)
        .auth(VaultAuth {
            app_role: Some(VaultAppRole {
                role_id: Some(f.role_id.clone()),
                secret_ref: selector("approle", "secret-id"),
                ..Default::default()
            }),
            ..Default::default()
        })
}

#[tokio::test]
async fn token_auth_reads_and_validates() {
    let (f, key) = seeded().await;
    let token = child_token(&f.bao, json!({})).await;
    let c = TestStore::new(&f.bao.addr).token(&token).client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);
}

#[tokio::test]
async fn wrong_or_revoked_static_token_is_an_auth_error_never_not_found() {
    let (f, key) = seeded().await;
    let c = TestStore::new(&f.bao.addr)
        .token("s.not-a-token")
        .client()
        .await;
    let err = c.get_secret(&prop(&key, "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    // Even for a key that does not exist.
    let err = c
        .get_secret(&prop(&unique("absent"), "k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(c.validate().await.unwrap_err().kind(), ErrorKind::Auth);

    let token = child_token(&f.bao, json!({})).await;
    let c = TestStore::new(&f.bao.addr).token(&token).client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    f.bao
        .api("POST", "auth/token/revoke", Some(json!({"token": token})))
        .await;
    let c = TestStore::new(&f.bao.addr).token(&token).client().await;
    assert_eq!(
        c.get_secret(&prop(&key, "k")).await.unwrap_err().kind(),
        ErrorKind::Auth
    );
}

#[tokio::test]
async fn policy_denial_is_an_auth_error_and_does_not_log_in_again() {
    let (f, key) = seeded().await;
    let proxy = CountingProxy::start(f.bao.port).await;
    f.bao
        .api(
            "POST",
            "auth/userpass/users/narrow",
            Some(json!({"password": "pw", "token_policies": ["eso-narrow"]})),
        )
        .await;
    let c = TestStore::new(&proxy.addr)
        .secret("up", "password", "pw")
        .auth(VaultAuth {
            user_pass: Some(VaultUserPassAuth {
                username: "narrow".into(),
                secret_ref: Some(selector("up", "password")),
                ..Default::default()
            }),
            ..Default::default()
        })
        .client()
        .await;
    let err = c.get_secret(&prop(&key, "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    assert_eq!(proxy.count("POST /v1/auth/userpass/login/narrow"), 1);
}

#[tokio::test]
async fn approle_login_with_role_id_or_role_ref() {
    let (f, key) = seeded().await;
    let c = approle(f, &f.bao.addr).client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);

    let c = TestStore::new(&f.bao.addr)
        .secret("approle", "role-id", &f.role_id)
        .secret("approle", "secret-id", &f.secret_id)
        .auth(VaultAuth {
            app_role: Some(VaultAppRole {
                role_ref: Some(selector("approle", "role-id")),
                secret_ref: selector("approle", "secret-id"),
                ..Default::default()
            }),
            ..Default::default()
        })
        .client()
        .await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
}

#[tokio::test]
async fn bad_login_credentials_are_auth_errors_at_build() {
    let f = fixture().await;
    let err = TestStore::new(&f.bao.addr)
        .secret("approle", "secret-id", "wrong")
        .auth(VaultAuth {
            app_role: Some(VaultAppRole {
                role_id: Some(f.role_id.clone()),
                secret_ref: selector("approle", "secret-id"),
                ..Default::default()
            }),
            ..Default::default()
        })
        .try_client()
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());

    let err = TestStore::new(&f.bao.addr)
        .secret("up", "password", "wrong")
        .auth(VaultAuth {
            user_pass: Some(VaultUserPassAuth {
                username: "alice".into(),
                secret_ref: Some(selector("up", "password")),
                ..Default::default()
            }),
            ..Default::default()
        })
        .try_client()
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
}

#[tokio::test]
async fn userpass_login() {
    let (f, key) = seeded().await;
    let c = TestStore::new(&f.bao.addr)
        .secret("up", "password", "wonderland")
        .auth(VaultAuth {
            user_pass: Some(VaultUserPassAuth {
                username: "alice".into(),
                secret_ref: Some(selector("up", "password")),
                ..Default::default()
            }),
            ..Default::default()
        })
        .client()
        .await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
}

#[tokio::test]
async fn jwt_login_from_a_secret_and_from_a_service_account_token() {
    let (f, key) = seeded().await;
    let c = TestStore::new(&f.bao.addr)
        .secret("jwt", "token", &f.sa_jwt)
        .auth(VaultAuth {
            jwt: Some(VaultJwtAuth {
                role: Some("eso".into()),
                secret_ref: Some(selector("jwt", "token")),
                ..Default::default()
            }),
            ..Default::default()
        })
        .client()
        .await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");

    let mut store = TestStore::new(&f.bao.addr).auth(VaultAuth {
        jwt: Some(VaultJwtAuth {
            role: Some("eso".into()),
            kubernetes_service_account_token: Some(VaultKubernetesServiceAccountTokenAuth {
                service_account_ref: ServiceAccountSelector {
                    name: "eso".into(),
                    namespace: None,
                    audiences: vec!["extra".into()],
                },
                audiences: None,
                expiration_seconds: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    store.tokens = Some(FakeTokens {
        jwt: f.sa_jwt.clone(),
        asked: Default::default(),
    });
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    let asked = store.tokens.as_ref().unwrap().asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [(
            "default".to_owned(),
            "eso".to_owned(),
            vec!["extra".to_owned(), "vault".to_owned()],
            Some(600)
        )]
    );
}

#[tokio::test]
async fn kubernetes_login_with_service_account_ref_and_secret_ref() {
    let (f, key) = seeded().await;
    let mut store = TestStore::new(&f.bao.addr).auth(VaultAuth {
        kubernetes: Some(VaultKubernetesAuth {
            role: "eso".into(),
            service_account_ref: Some(ServiceAccountSelector {
                name: "eso".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    store.tokens = Some(FakeTokens {
        jwt: f.sa_jwt.clone(),
        asked: Default::default(),
    });
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");

    // secretRef without a key reads key `token`.
    let mut sel = selector("sa-token", "");
    sel.key = None;
    let c = TestStore::new(&f.bao.addr)
        .secret("sa-token", "token", &f.sa_jwt)
        .auth(VaultAuth {
            kubernetes: Some(VaultKubernetesAuth {
                role: "eso".into(),
                secret_ref: Some(sel),
                ..Default::default()
            }),
            ..Default::default()
        })
        .client()
        .await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");

    // Without a reference: the pod's token file (configurable).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, &f.sa_jwt).unwrap();
    let mut store = TestStore::new(&f.bao.addr).auth(VaultAuth {
        kubernetes: Some(VaultKubernetesAuth {
            role: "eso".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    store.config = store.config.clone().service_account_token_file(&file);
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
}

/// A role whose tokens live `ttl` seconds (renewable up to `max_ttl`, or batch tokens).
async fn short_role(
    f: &crate::common::Fixture,
    name: &str,
    options: serde_json::Value,
) -> TestStore {
    let mut body = json!({"token_policies": ["eso-rw"]});
    body.as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    f.bao
        .api("POST", &format!("auth/approle/role/{name}"), Some(body))
        .await;
    let role_id = f
        .bao
        .api("GET", &format!("auth/approle/role/{name}/role-id"), None)
        .await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = f
        .bao
        .api(
            "POST",
            &format!("auth/approle/role/{name}/secret-id"),
            Some(json!({})),
        )
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    TestStore::new("")
        .secret("approle", "secret-id", &secret_id)
        .auth(VaultAuth {
            app_role: Some(VaultAppRole {
                role_id: Some(role_id),
                secret_ref: selector("approle", "secret-id"),
                ..Default::default()
            }),
            ..Default::default()
        })
}

fn with_server(mut store: TestStore, server: &str) -> TestStore {
    store.spec.server = server.to_owned();
    // No read cache: every get goes to the server, so token use is visible.
    store.config = store.config.clone().read_cache_ttl(Duration::ZERO);
    store
}

#[tokio::test]
async fn renewable_token_is_renewed_not_replaced() {
    let (f, key) = seeded().await;
    let proxy = CountingProxy::start(f.bao.port).await;
    let store = with_server(
        short_role(
            f,
            "short-renewable",
            json!({"token_ttl": "9s", "token_max_ttl": "1h"}),
        )
        .await,
        &proxy.addr,
    );
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    // Past two thirds of the TTL (6 s), well before it ends (9 s).
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);
    assert_eq!(
        proxy.count("POST /v1/auth/approle/login"),
        1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count("POST /v1/auth/token/renew-self"),
        1,
        "{:?}",
        proxy.requests()
    );
}

#[tokio::test]
async fn non_renewable_token_is_replaced_by_a_new_login_before_it_expires() {
    let (f, key) = seeded().await;
    let proxy = CountingProxy::start(f.bao.port).await;
    let store = with_server(
        short_role(
            f,
            "short-batch",
            json!({"token_ttl": "3s", "token_type": "batch"}),
        )
        .await,
        &proxy.addr,
    );
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    // Long past the TTL: the token would be dead; the client logs in again first.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    assert_eq!(
        proxy.count("POST /v1/auth/approle/login"),
        2,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("POST /v1/auth/token/renew-self"), 0);
}

#[tokio::test]
async fn revoked_login_token_is_replaced_once() {
    let (f, key) = seeded().await;
    let proxy = CountingProxy::start(f.bao.port).await;
    let store = with_server(
        short_role(f, "revocable", json!({"token_ttl": "1h"})).await,
        &proxy.addr,
    );
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    // Revoke the tokens this role's logins made (other tests' tokens stay).
    let accessors = f.bao.api("LIST", "auth/token/accessors", None).await;
    for accessor in accessors["data"]["keys"].as_array().unwrap() {
        let (status, info) = f
            .bao
            .call(
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({"accessor": accessor})),
            )
            .await;
        if status == 200 && info["data"]["meta"]["role_name"] == "revocable" {
            f.bao
                .api(
                    "POST",
                    "auth/token/revoke-accessor",
                    Some(json!({"accessor": accessor})),
                )
                .await;
        }
    }
    assert_eq!(c.get_secret(&prop(&key, "k")).await.unwrap(), b"v");
    assert_eq!(
        proxy.count("POST /v1/auth/approle/login"),
        2,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("GET /v1/auth/token/lookup-self"), 1);
}
