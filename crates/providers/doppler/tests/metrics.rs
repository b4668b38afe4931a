//! `externalsecret_provider_api_calls_count{provider, call, status}`: one count per API call
//! with upstream's labels. Its own test binary: the recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use eso_api::{ExternalSecretFind, FindName};
use eso_test_support::metrics::ApiCalls;

use common::{Env, remote};

#[tokio::test]
async fn every_api_call_counts_once() {
    let calls = ApiCalls::new();
    calls.install_global();
    let env = Env::new().await;
    env.server.secret("backend", "prd", "A", "1");
    let client = env.client().await;
    client.get_secret(&remote("A")).await.unwrap();
    client.get_secret(&remote("MISSING")).await.unwrap_err();
    let find = ExternalSecretFind {
        name: Some(FindName {
            regexp: Some("A".into()),
        }),
        ..Default::default()
    };
    client.get_all_secrets(&find).await.unwrap();
    client.validate().await.unwrap();
    env.server
        .inject(eso_testserver_doppler::Fault::status(401).times(1));
    client.get_secret(&remote("OTHER")).await.unwrap_err();

    let got = calls.counts();
    assert!(
        calls.other_counters().is_empty(),
        "{:?}",
        calls.other_counters()
    );
    let c = |call: &str, status: &str| {
        got.get(&("Doppler".to_owned(), call.to_owned(), status.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    // A, MISSING (an answer without the key is a successful call), the find.
    assert_eq!(c("SecretsDownload", "success"), 3, "{got:?}");
    assert_eq!(c("SecretsDownload", "error"), 1, "{got:?}");
    assert_eq!(c("ProjectsList", "success"), 1, "{got:?}");
    assert!(got.keys().all(|(p, _, _)| p == "Doppler"), "{got:?}");
}
