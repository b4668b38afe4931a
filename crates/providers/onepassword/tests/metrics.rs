//! `externalsecret_provider_api_calls_count{provider, call, status}`: one count per API call
//! with upstream's labels. Its own test binary: the recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use eso_api::{ExternalSecretFind, FindName};
use eso_provider::{PushRemoteRef, PushRequest};

use common::{Env, remote};

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
async fn every_api_call_counts_once() {
    let counts = Counts::default();
    metrics::set_global_recorder(Recorder(counts.clone())).unwrap();
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

    let got = counts.lock().unwrap().clone();
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
