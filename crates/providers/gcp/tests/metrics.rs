//! `externalsecret_provider_api_calls_count{provider, call, status}`: one count per API call
//! with upstream's labels. Its own test binary: the recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::{PushRemoteRef, PushRequest};
use eso_test_support::metrics::ApiCalls;

use common::{Env, PROJECT, key_spec, remote};

#[tokio::test]
async fn every_api_call_counts_once_with_upstreams_labels() {
    let calls = ApiCalls::new();
    calls.install_global();
    let env = Env::new().await;
    env.server.secret(PROJECT, "db").version(b"v").create();
    let client = env.client(key_spec()).await.unwrap();
    client.get_secret(&remote("db")).await.unwrap();
    client.get_secret(&remote("missing")).await.unwrap_err();
    let find = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some("^db$".into()),
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
            "GCP/SecretManager".to_owned(),
            call.to_owned(),
            status.to_owned(),
        ))
        .copied()
        .unwrap_or(0)
    };
    assert_eq!(c("OAuth2Token", "success"), 1, "{got:?}");
    // db (the find's read came from the cache), missing, and the push's look at `latest`.
    assert_eq!(c("AccessSecretVersion", "success"), 1, "{got:?}");
    assert_eq!(c("AccessSecretVersion", "error"), 2, "{got:?}");
    assert_eq!(c("ListSecrets", "success"), 1, "{got:?}");
    // The push's lookup (not found) and the delete's lookup.
    assert_eq!(c("GetSecret", "error"), 1, "{got:?}");
    assert_eq!(c("GetSecret", "success"), 1, "{got:?}");
    assert_eq!(c("CreateSecret", "success"), 1, "{got:?}");
    assert_eq!(c("AddSecretVersion", "success"), 1, "{got:?}");
    assert_eq!(c("DeleteSecret", "success"), 1, "{got:?}");
    assert!(
        got.keys().all(|(p, _, _)| p == "GCP/SecretManager"),
        "{got:?}"
    );
}
