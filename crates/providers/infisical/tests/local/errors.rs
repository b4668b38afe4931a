//! Throttling, server errors and retries.

use std::time::Duration;

use eso_provider::ErrorKind;
use eso_testserver_infisical::{Fault, method};

use crate::common::{ENV, Env, PROJECT, remote, text};

#[tokio::test]
async fn a_short_retry_after_is_waited_out() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    let client = env.root_client().await;
    env.server.inject(
        Fault::status(429)
            .method(method::GET_SECRET)
            .retry_after(1)
            .times(1),
    );
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    assert_eq!(env.server.count(method::GET_SECRET), 2);
}

#[tokio::test]
async fn a_long_retry_after_is_throttled_with_the_wait() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    let client = env.root_client().await;
    env.server.inject(
        Fault::status(429)
            .method(method::GET_SECRET)
            .retry_after(60),
    );
    let err = client.get_secret(&remote("A")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{}", err.chain());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(env.server.count(method::GET_SECRET), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_unavailable() {
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "A", "1");
    env.server.secret(PROJECT, ENV, "/", "B", "2");
    let client = env.root_client().await;
    env.server
        .inject(Fault::status(503).method(method::GET_SECRET).times(2));
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    env.server
        .inject(Fault::status(500).method(method::GET_SECRET));
    let err = client.get_secret(&remote("B")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(err.chain().contains("500"), "{}", err.chain());
    // 2 + 1 for A, 3 attempts for B.
    assert_eq!(env.server.count(method::GET_SECRET), 6);
}

#[tokio::test]
async fn a_failed_create_is_not_repeated_on_a_server_error() {
    let env = Env::new().await;
    let client = env.root_client().await;
    env.server
        .inject(Fault::status(502).method(method::CREATE_SECRET).times(1));
    let err = client
        .push_secret(&eso_provider::PushRequest {
            value: b"v".to_vec(),
            secret_key: Some("k".into()),
            remote: eso_provider::PushRemoteRef {
                remote_key: "NEW".into(),
                property: None,
            },
            metadata: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(env.server.count(method::CREATE_SECRET), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let env = Env::new().await;
    let mut spec = env.spec("/");
    spec.host_api = Some("http://127.0.0.1:9/api".into());
    let err = env.client_error(spec).await;
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
}

#[tokio::test]
async fn a_throttled_login_is_throttled() {
    let env = Env::new().await;
    env.server.inject(
        Fault::status(429)
            .method(method::UNIVERSAL_AUTH_LOGIN)
            .retry_after(30),
    );
    let err = env.client_error(env.spec("/")).await;
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
}
