//! A server that stops, comes back, seals and unseals under one live client.

use std::time::Duration;

use eso_api::ExternalSecretDataRemoteRef;
use eso_provider::{ErrorKind, ValidationResult};
use serde_json::json;

use crate::common::{Bao, TestStore};

fn prop(key: &str, property: &str) -> ExternalSecretDataRemoteRef {
    ExternalSecretDataRemoteRef {
        key: key.to_owned(),
        property: Some(property.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn stopped_and_sealed_server_is_unavailable_and_the_client_recovers() {
    let mut bao = Bao::start(false).await;
    bao.api("POST", "secret/data/app", Some(json!({"data": {"k": "v"}})))
        .await;
    let mut store = TestStore::new(&bao.addr).token(&bao.root);
    // No cache: each read goes to the server.
    store.config = store
        .config
        .clone()
        .read_cache_ttl(Duration::ZERO)
        .connect_timeout(Duration::from_secs(2));
    let c = store.client().await;
    assert_eq!(c.get_secret(&prop("app", "k")).await.unwrap(), b"v");

    // Sealed: 503, transient; the same client works again after unsealing.
    let key = bao.unseal_key().await;
    bao.api("PUT", "sys/seal", None).await;
    let err = c.get_secret(&prop("app", "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(err.kind().is_transient());
    let err = c.validate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    let (status, _) = bao
        .call("PUT", "sys/unseal", Some(json!({"key": key})))
        .await;
    assert_eq!(status, 200);
    let mut unsealed = None;
    for _ in 0..100 {
        match c.get_secret(&prop("app", "k")).await {
            Ok(v) => {
                unsealed = Some(v);
                break;
            }
            // Right after unsealing the server may still be setting up its mounts.
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{}", e.chain()),
        }
    }
    assert_eq!(unsealed.as_deref(), Some(&b"v"[..]));

    // Stopped: connection refused, transient, never "not found".
    bao.stop();
    let err = c.get_secret(&prop("app", "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert_eq!(
        c.validate().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    // Back on the same address (a fresh in-memory server with the same root token).
    bao.restart().await;
    bao.api(
        "POST",
        "secret/data/app",
        Some(json!({"data": {"k": "again"}})),
    )
    .await;
    assert_eq!(c.get_secret(&prop("app", "k")).await.unwrap(), b"again");
    assert_eq!(c.validate().await.unwrap(), ValidationResult::Ready);
}
