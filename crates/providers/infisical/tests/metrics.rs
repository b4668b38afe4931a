//! `externalsecret_provider_api_calls_count{provider, call, status}`: one count per API call
//! with upstream's labels. Its own test binary: the recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::{PushRemoteRef, PushRequest};

use common::{ENV, Env, PROJECT, remote};

type Counts = Arc<Mutex<BTreeMap<(String, String, String), u64>>>;

struct Count {
    key: (String, String, String),
    counts: Counts,
}

impl metrics::CounterFn for Count {
    fn increment(&self, value: u64) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.counts.lock().unwrap().insert(self.key.clone(), value);
    }
}

struct Recorder(Counts);

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        assert_eq!(key.name(), "externalsecret_provider_api_calls_count");
        let label = |n: &str| {
            key.labels()
                .find(|l| l.key() == n)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        metrics::Counter::from_arc(Arc::new(Count {
            key: (label("provider"), label("call"), label("status")),
            counts: self.0.clone(),
        }))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[tokio::test]
async fn every_api_call_counts_once_with_upstreams_labels() {
    let counts = Counts::default();
    metrics::set_global_recorder(Recorder(counts.clone())).unwrap();
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

    let got = counts.lock().unwrap().clone();
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
