//! Authentication, throttling and server errors, and store validation.

use std::time::Duration;

use eso_api::SecretKeySelector;
use eso_provider::{ErrorKind, Provider, ValidationResult};
use eso_testserver_onepassword::{Fault, method};

use crate::common::{Env, NS, cluster_store, remote, store, text};

#[tokio::test]
async fn a_bad_token_is_auth() {
    let mut env = Env::new().await;
    env.secrets.insert(
        NS,
        "op-token",
        [("token".to_owned(), b"wrong".to_vec())].into(),
    );
    let client = env.client().await;
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    assert_eq!(client.validate().await.unwrap_err().kind(), ErrorKind::Auth);
}

#[tokio::test]
async fn a_token_without_access_is_auth_after_upstreams_retries() {
    let mut env = Env::new().await;
    let scoped = env.server.scoped_token(&["staging"]);
    env.secrets.insert(
        NS,
        "op-token",
        [("token".to_owned(), scoped.into_bytes())].into(),
    );
    let prod = env.server.vault("prod-by-id-check");
    let client = env.client_with(env.spec(&[&prod])).await.unwrap();
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{}", err.chain());
    // 403 Authorization answers are tried three times, as upstream does.
    assert_eq!(env.server.count(method::GET_VAULT), 3);
}

#[tokio::test]
async fn a_transient_403_is_retried_away() {
    let env = Env::new().await;
    env.server
        .item("prod", "db")
        .field("password", "p")
        .create();
    env.server
        .inject(Fault::status(403).method(method::GET_ITEM).times(1));
    let client = env.client().await;
    assert_eq!(text(client.get_secret(&remote("db")).await.unwrap()), "p");
}

#[tokio::test]
async fn throttling_and_server_errors() {
    let env = Env::new().await;
    env.server.item("prod", "a").field("password", "1").create();
    env.server.item("prod", "b").field("password", "2").create();
    env.server.item("prod", "c").field("password", "3").create();
    let client = env.client().await;
    env.server.inject(
        Fault::status(429)
            .method(method::GET_ITEM)
            .retry_after(1)
            .times(1),
    );
    assert_eq!(text(client.get_secret(&remote("a")).await.unwrap()), "1");
    env.server
        .inject(Fault::status(429).method(method::GET_ITEM).retry_after(90));
    let err = client.get_secret(&remote("b")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{}", err.chain());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(90)));
    env.server.clear_faults();
    env.server
        .inject(Fault::status(503).method(method::GET_ITEM));
    let err = client.get_secret(&remote("c")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    env.server.clear_faults();
    env.server
        .inject(Fault::status(502).method(method::GET_ITEM).times(2));
    assert_eq!(
        text(env.client().await.get_secret(&remote("c")).await.unwrap()),
        "3"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let env = Env::new().await;
    let mut spec = env.spec(&["prod"]);
    spec.connect_host = "http://127.0.0.1:9".into();
    let client = env.client_with(spec).await.unwrap();
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
}

#[tokio::test]
async fn store_validation_follows_upstream() {
    let env = Env::new().await;
    let p = env.provider();
    assert!(p.validate_store(&store(env.spec(&["prod"]))).is_ok());
    let cases = [
        ("no vault", {
            let mut s = env.spec(&[]);
            s.vaults.clear();
            s
        }),
        ("duplicate numbers", {
            let mut s = env.spec(&["prod", "staging"]);
            s.vaults.insert("staging".into(), 1);
            s
        }),
        ("bad url", {
            let mut s = env.spec(&["prod"]);
            s.connect_host = "::not a url".into();
            s
        }),
        ("no key", {
            let mut s = env.spec(&["prod"]);
            if let Some(r) = s.auth.as_mut().and_then(|a| a.secret_ref.as_mut()) {
                r.connect_token.key = None;
            }
            s
        }),
        ("other namespace", {
            let mut s = env.spec(&["prod"]);
            if let Some(r) = s.auth.as_mut().and_then(|a| a.secret_ref.as_mut()) {
                r.connect_token = SecretKeySelector {
                    namespace: Some("elsewhere".into()),
                    ..r.connect_token.clone()
                };
            }
            s
        }),
        ("no auth", {
            let mut s = env.spec(&["prod"]);
            s.auth = None;
            s
        }),
    ];
    for (what, spec) in cases {
        let err = p.validate_store(&store(spec)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore, "{what}: {err}");
    }
}

#[tokio::test]
async fn a_referent_token_resolves_in_the_externalsecret_namespace() {
    let env = Env::new().await;
    env.server
        .item("prod", "db")
        .field("password", "p")
        .create();
    let css = cluster_store(env.spec(&["prod"]));
    let placeholder = env.client_for(&css, "").await.unwrap();
    assert_eq!(
        placeholder.validate().await.unwrap(),
        ValidationResult::Unknown
    );
    let client = env.client_for(&css, NS).await.unwrap();
    assert_eq!(text(client.get_secret(&remote("db")).await.unwrap()), "p");
}
