//! `externalsecret_provider_api_calls_count{provider, call, status}`: one count per API call
//! with upstream's labels. Its own test binary: the recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::{PushRemoteRef, PushRequest};
use eso_test_support::metrics::ApiCalls;

use common::{ENV, Env, PROJECT, remote};

#[tokio::test]
async fn every_api_call_counts_once_with_upstreams_labels() {
    let calls = ApiCalls::new();
    calls.install_global();
    let env = Env::new().await;
    env.server.secret(PROJECT, ENV, "/", "DB", "v");
    let client = env.root_client().await;
    client.get_secret(&remote("DB")).await.unwrap();
    client.get_secret(&remote("MISSING")).await.unwrap_err();
    let find = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some("^DB$".into()),
        }),
        ..Default::default()
    };
    client.get_all_secrets(&find).await.unwrap();
    let target = PushRemoteRef {
        remote_key: "PUSHED".into(),
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
    client
        .push_secret(&PushRequest {
            value: b"y".to_vec(),
            secret_key: Some("k".into()),
            remote: target.clone(),
            metadata: None,
        })
        .await
        .unwrap();
    client.delete_secret(&target).await.unwrap();
    client.close().await.unwrap();

    let got = calls.counts();
    assert!(
        calls.other_counters().is_empty(),
        "{:?}",
        calls.other_counters()
    );
    let c = |call: &str, status: &str| {
        got.get(&("infisical".to_owned(), call.to_owned(), status.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        c("MachineIdentityLoginViaUniversalAuth", "success"),
        1,
        "{got:?}"
    );
    // DB; the push's two looks (one missing) and the delete's look.
    assert_eq!(c("GetSecretByKeyV3", "success"), 3, "{got:?}");
    assert_eq!(c("GetSecretByKeyV3", "error"), 2, "{got:?}");
    assert_eq!(c("GetSecretsV3", "success"), 1, "{got:?}");
    assert_eq!(c("GetWorkspaceBySlug", "success"), 1, "{got:?}");
    assert_eq!(c("CreateSecretV3", "success"), 1, "{got:?}");
    assert_eq!(c("UpdateSecretV3", "success"), 1, "{got:?}");
    assert_eq!(c("DeleteSecretV3", "success"), 1, "{got:?}");
    assert_eq!(c("RevokeAccessToken", "success"), 1, "{got:?}");
    assert!(got.keys().all(|(p, _, _)| p == "infisical"), "{got:?}");
}
