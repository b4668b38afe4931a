//! Errors by cause: 403 (auth), 404 (not found), 429 (throttled, `Retry-After` honoured), 5xx
//! (retried; never "not found"), an unreachable server.

use std::time::Duration;

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::{ErrorKind, PushRemoteRef, PushRequest};
use eso_testserver_gcp::{Fault, method};

use crate::common::{Env, PROJECT, SA_EMAIL, key_spec, remote, text};

#[tokio::test]
async fn permission_denied_is_auth_naming_store_key_and_permission() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    env.server.deny(SA_EMAIL);
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    let chain = err.chain();
    for part in [
        "SecretStore \"apps/gcp\"",
        "\"db\"",
        "403 PERMISSION_DENIED",
        "secretmanager.versions.access",
    ] {
        assert!(chain.contains(part), "{part} missing from: {chain}");
    }
    // Denied is never retried.
    assert_eq!(env.server.count(method::ACCESS_SECRET_VERSION), 1);
}

#[tokio::test]
async fn transient_server_errors_are_retried() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    env.server.inject(
        Fault::status(503)
            .method(method::ACCESS_SECRET_VERSION)
            .times(2),
    );
    assert_eq!(text(client.get_secret(&remote("db")).await.unwrap()), "v");
    assert_eq!(env.server.count(method::ACCESS_SECRET_VERSION), 3);
}

#[tokio::test]
async fn persistent_server_errors_are_unavailable_never_not_found() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    for status in [500, 502, 503, 504] {
        env.server.clear_faults();
        env.server
            .inject(Fault::status(status).method(method::ACCESS_SECRET_VERSION));
        env.server.reset_counts();
        let err = client.get_secret(&remote("db")).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Unavailable,
            "{status}: {}",
            err.chain()
        );
        assert!(!err.is_not_found());
        // Three attempts (the default), then the error.
        assert_eq!(
            env.server.count(method::ACCESS_SECRET_VERSION),
            3,
            "{status}"
        );
        // A find fails as a whole rather than returning less.
        let find = ExternalSecretFind {
            name: Some(FindName {
                regexp: Some(".*".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            client.get_all_secrets(&find).await.unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
}

#[tokio::test]
async fn throttling_waits_for_retry_after_within_the_limit() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    env.server.inject(
        Fault::status(429)
            .method(method::ACCESS_SECRET_VERSION)
            .retry_after(1)
            .times(1),
    );
    assert_eq!(text(client.get_secret(&remote("db")).await.unwrap()), "v");
    assert_eq!(env.server.count(method::ACCESS_SECRET_VERSION), 2);
}

#[tokio::test]
async fn long_retry_after_ends_the_call_throttled_with_the_wait() {
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    env.server.inject(
        Fault::status(429)
            .method(method::ACCESS_SECRET_VERSION)
            .retry_after(120),
    );
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(env.server.count(method::ACCESS_SECRET_VERSION), 1);
}

#[tokio::test]
async fn writes_are_not_repeated_after_a_server_error() {
    let env = Env::new().await;
    let client = env.client(key_spec()).await.unwrap();
    env.server
        .inject(Fault::status(503).method(method::ADD_SECRET_VERSION));
    let request = PushRequest {
        value: b"v".to_vec(),
        secret_key: Some("k".into()),
        remote: PushRemoteRef {
            remote_key: "db".into(),
            property: None,
        },
        metadata: None,
    };
    let err = client.push_secret(&request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // A version add that may have happened is not sent twice.
    assert_eq!(env.server.count(method::ADD_SECRET_VERSION), 1);
    env.server.clear_faults();
    client.push_secret(&request).await.unwrap();
    assert_eq!(
        env.server.get(PROJECT, None, "db").unwrap().latest_data(),
        Some(&b"v"[..])
    );
}

#[tokio::test]
async fn token_endpoint_outages_are_unavailable_and_refusals_auth() {
    let env = Env::new().await;
    env.server
        .inject(Fault::status(503).method(method::OAUTH2_TOKEN));
    let err = env.client_error(key_spec()).await;
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    env.server.clear_faults();
    env.server
        .inject(Fault::status(400).method(method::OAUTH2_TOKEN));
    assert_eq!(env.client_error(key_spec()).await.kind(), ErrorKind::Auth);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let mut env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    // Replacing the server stops the old one: its port refuses connections from now on.
    env.server = eso_testserver_gcp::GcpTestServer::start().await.unwrap();
    let err = client.get_secret(&remote("db")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(err.chain().contains("could not connect"), "{}", err.chain());
    // A new client cannot even get a token (the key's token_uri is the old server).
    let err = env.client_error(key_spec()).await;
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
}
