//! `externalsecret_provider_api_calls_count{provider, call, status}`: one count per API call
//! with upstream's labels. Its own test binary: the recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::{PushRemoteRef, PushRequest};
use eso_test_support::metrics::ApiCalls;

use common::{Env, remote};

#[tokio::test]
async fn every_api_call_counts_once() {
    let calls = ApiCalls::new();
    calls.install_global();
    let env = Env::new().await;
    env.server
        .item("staging", "db")
        .field("password", "p")
        .create();
    let client = env.client().await;
    client.get_secret(&remote("db")).await.unwrap();
    client.get_secret(&remote("missing")).await.unwrap_err();
    let find = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some("password".into()),
        }),
        ..Default::default()
    };
    client.get_all_secrets(&find).await.unwrap();
    let target = PushRemoteRef {
        remote_key: "pushed".into(),
        property: None,
    };
    client
        .push_secret(&PushRequest {
            value: b"x".to_vec(),
            secret_key: Some("k".into()),
            remote: target.clone(),
            metadata: None,
        })
        .await
        .unwrap();
    client.delete_secret(&target).await.unwrap();

    let got = calls.counts();
    assert!(
        calls.other_counters().is_empty(),
        "{:?}",
        calls.other_counters()
    );
    let c = |call: &str, status: &str| {
        got.get(&(
            "1Password/Connect".to_owned(),
            call.to_owned(),
            status.to_owned(),
        ))
        .copied()
        .unwrap_or(0)
    };
    assert_eq!(c("GetVaultsByTitle", "success"), 2, "{got:?}");
    assert!(c("GetItemsByTitle", "success") >= 4, "{got:?}");
    assert!(c("GetItemByUUID", "success") >= 2, "{got:?}");
    assert_eq!(c("GetItems", "success"), 2, "{got:?}");
    assert_eq!(c("CreateItem", "success"), 1, "{got:?}");
    assert_eq!(c("DeleteItem", "success"), 1, "{got:?}");
    assert!(
        got.keys()
            .all(|(p, _, s)| p == "1Password/Connect" && s == "success"),
        "{got:?}"
    );
}
