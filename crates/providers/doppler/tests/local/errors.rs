//! Throttling and server errors.

use std::time::Duration;

use eso_provider::ErrorKind;
use eso_testserver_doppler::{Fault, method};

use crate::common::{Env, remote, text};

#[tokio::test]
async fn throttling_is_waited_out_or_reported_with_the_wait() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    env.server.secret("backend", "prd", "B", "2");
    let client = env.client().await;
    env.server.inject(
        Fault::status(429)
            .method(method::DOWNLOAD)
            .retry_after(1)
            .times(1),
    );
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    env.server
        .inject(Fault::status(429).method(method::DOWNLOAD).retry_after(120));
    let err = client.get_secret(&remote("B")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{}", err.chain());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
}

#[tokio::test]
async fn server_errors_are_retried_then_unavailable() {
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    env.server.secret("backend", "prd", "B", "2");
    let client = env.client().await;
    env.server
        .inject(Fault::status(503).method(method::DOWNLOAD).times(2));
    assert_eq!(text(client.get_secret(&remote("A")).await.unwrap()), "1");
    env.server
        .inject(Fault::status(500).method(method::DOWNLOAD));
    let err = client.get_secret(&remote("B")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert_eq!(env.server.count(method::DOWNLOAD), 6);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let mut env = Env::new().await;
    env.config = env.config.clone().base_url("http://127.0.0.1:9").unwrap();
    let client = env.client().await;
    let err = client.get_secret(&remote("A")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
}
