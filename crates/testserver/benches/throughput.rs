//! Throughput of the in-process test API server through `kube::Client`: creates per second
//! and watch events per second at 1,000 and 10,000 objects, so that the operator's benchmarks
//! can tell whether the server is their bottleneck.
//!
//! `cargo bench -p eso-test-apiserver --bench throughput`

// A benchmark binary: failing loudly is the right answer to a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Instant;

use eso_test_apiserver::TestApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchParams};
use kube::core::{ObjectMeta, WatchEvent};

async fn run(server: &TestApiServer, n: usize) {
    let client = server.client().unwrap();
    let ns = format!("bench-{n}");
    let nsobj = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &nsobj)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let start_rv = api
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    // A live watch, started before the writes.
    let live = {
        let api = api.clone();
        let rv = start_rv.clone();
        tokio::spawn(async move {
            let mut s = api
                .watch(&WatchParams::default().timeout(290), &rv)
                .await
                .unwrap()
                .boxed();
            let mut seen = 0;
            while seen < n {
                if let Some(WatchEvent::Added(_)) = s.try_next().await.unwrap() {
                    seen += 1;
                }
            }
            Instant::now()
        })
    };

    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("cm-{i}")),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([("key".into(), format!("value-{i}"))])),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let create_secs = t.elapsed().as_secs_f64();
    let live_done = live.await.unwrap();
    let live_secs = (live_done - t).as_secs_f64();

    // Replaying the history to a new watch.
    let t = Instant::now();
    let mut s = api
        .watch(&WatchParams::default().timeout(290), &start_rv)
        .await
        .unwrap()
        .boxed();
    let mut seen = 0;
    while seen < n {
        if let Some(WatchEvent::Added(_)) = s.try_next().await.unwrap() {
            seen += 1;
        }
    }
    let replay_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let listed = api.list(&ListParams::default()).await.unwrap().items.len();
    let list_secs = t.elapsed().as_secs_f64();
    assert_eq!(listed, n);

    let n = n as f64;
    println!(
        "{n:>6} objects: {:>8.0} creates/s (32 concurrent) | live watch {:>8.0} events/s | replayed watch {:>8.0} events/s | list {:>6.1} ms",
        n / create_secs,
        n / live_secs,
        n / replay_secs,
        list_secs * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let server = TestApiServer::start().await.unwrap();
    for n in [1_000, 10_000] {
        run(&server, n).await;
    }
}
