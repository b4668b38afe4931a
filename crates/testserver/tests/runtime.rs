//! kube-runtime's watcher, reflector and Controller against the harness.

// Test helpers may fail loudly: a panic there is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use eso_test_apiserver::{Fault, TestCluster};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::ObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher as watcher_cfg;
use kube::runtime::watcher::{Event, watcher};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".into(), "v".into())])),
        ..Default::default()
    }
}

/// Waits for the next event satisfying `f`; the timeout is only an upper bound.
async fn next_matching<T>(rx: &mut mpsc::UnboundedReceiver<T>, f: impl Fn(&T) -> bool) -> T {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let e = rx.recv().await.expect("stream ended");
            if f(&e) {
                return e;
            }
        }
    })
    .await
    .expect("event not seen")
}

/// Runs a watcher in the background, forwarding events as (kind, name).
fn spawn_watcher(
    api: Api<ConfigMap>,
    config: watcher_cfg::Config,
) -> mpsc::UnboundedReceiver<(String, String)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = watcher(api, config).default_backoff().boxed();
        while let Some(e) = s.next().await {
            let item = match e {
                Ok(Event::Init) => ("Init".to_string(), String::new()),
                Ok(Event::InitApply(o)) => ("InitApply".to_string(), o.name_any()),
                Ok(Event::InitDone) => ("InitDone".to_string(), String::new()),
                Ok(Event::Apply(o)) => ("Apply".to_string(), o.name_any()),
                Ok(Event::Delete(o)) => ("Delete".to_string(), o.name_any()),
                Err(e) => ("Error".to_string(), e.to_string()),
            };
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test]
async fn watcher_sees_initial_objects_then_changes_and_deletes() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    api.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let mut rx = spawn_watcher(api.clone(), watcher_cfg::Config::default());
    next_matching(&mut rx, |e| e.0 == "InitApply" && e.1 == "before").await;
    next_matching(&mut rx, |e| e.0 == "InitDone").await;
    api.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    next_matching(&mut rx, |e| e.0 == "Apply" && e.1 == "after").await;
    api.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    next_matching(&mut rx, |e| e.0 == "Delete" && e.1 == "before").await;
}

#[tokio::test]
async fn watcher_with_streaming_lists_ends_initial_events_with_bookmark() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    api.create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    let mut rx = spawn_watcher(
        api.clone(),
        watcher_cfg::Config::default().streaming_lists(),
    );
    next_matching(&mut rx, |e| e.0 == "InitApply" && e.1 == "one").await;
    next_matching(&mut rx, |e| e.0 == "InitDone").await;
    api.create(&PostParams::default(), &cm("two"))
        .await
        .unwrap();
    next_matching(&mut rx, |e| e.0 == "Apply" && e.1 == "two").await;
}

#[tokio::test]
async fn watcher_label_selector_turns_label_changes_into_adds_and_deletes() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let mut rx = spawn_watcher(
        api.clone(),
        watcher_cfg::Config::default().labels("managed=true"),
    );
    next_matching(&mut rx, |e| e.0 == "InitDone").await;
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let pp = PatchParams::default();
    api.patch(
        "x",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"managed": "true"}}})),
    )
    .await
    .unwrap();
    next_matching(&mut rx, |e| e.0 == "Apply" && e.1 == "x").await;
    api.patch(
        "x",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"managed": "false"}}})),
    )
    .await
    .unwrap();
    next_matching(&mut rx, |e| e.0 == "Delete" && e.1 == "x").await;
}

#[tokio::test]
async fn reflector_store_follows_the_server() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher_cfg::Config::default()))
        .default_backoff()
        .applied_objects();
    tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(Duration::from_secs(30), reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    // "a" and the root CA publisher's ConfigMap, which every namespace holds.
    assert_eq!(reader.state().len(), 2);
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut names: Vec<String> = reader.state().iter().map(|o| o.name_any()).collect();
            names.sort();
            if names == ["b", "kube-root-ca.crt"] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn watcher_resumes_after_server_restart() {
    let c = TestCluster::restartable().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let mut rx = spawn_watcher(api.clone(), watcher_cfg::Config::default());
    next_matching(&mut rx, |e| e.0 == "InitDone").await;
    c.stop_api_server().await.unwrap();
    c.start_api_server().await.unwrap();
    api.create(&PostParams::default(), &cm("after-restart"))
        .await
        .unwrap();
    next_matching(&mut rx, |e| {
        (e.0 == "Apply" || e.0 == "InitApply") && e.1 == "after-restart"
    })
    .await;
}

/// A watch that asks for the initial events and bookmarks gets the namespace's objects, then
/// the `k8s.io/initial-events-end` bookmark at once (other bookmarks come when the server
/// chooses: about once a minute on a real API server, so no test waits for one).
#[tokio::test]
async fn watch_with_initial_events_ends_them_with_a_bookmark() {
    let c = TestCluster::new().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    api.create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    let wp = kube::api::WatchParams {
        bookmarks: true,
        send_initial_events: true,
        ..Default::default()
    };
    let mut s = api.watch(&wp, "0").await.unwrap().boxed();
    let mut added = Vec::new();
    let bookmark = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match s.try_next().await.unwrap() {
                Some(kube::core::WatchEvent::Added(o)) => added.push(o.name_any()),
                Some(kube::core::WatchEvent::Bookmark(b)) => return b,
                other => panic!("unexpected event before the bookmark: {other:?}"),
            }
        }
    })
    .await
    .expect("no bookmark ended the initial events");
    added.sort();
    assert_eq!(added, ["kube-root-ca.crt", "one"]);
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true")
    );
    assert!(!bookmark.metadata.resource_version.is_empty());
}

struct Ctx {
    client: kube::Client,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(obj: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = obj.controller_owner_ref(&()).map(|o| vec![o]);
    let s = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{}-copy", obj.name_any()), "ownerReferences": owner},
        "stringData": obj.data.clone().unwrap_or_default(),
    });
    secrets
        .patch(
            &format!("{}-copy", obj.name_any()),
            &PatchParams::apply("test-controller").force(),
            &Patch::Apply(&s),
        )
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ConfigMap>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

#[tokio::test]
async fn controller_reconciles_into_owned_secrets_that_are_collected_with_their_owner() {
    let c = TestCluster::new().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
    let secrets: Api<Secret> = Api::namespaced(c.client(), c.namespace());
    let ctx = Arc::new(Ctx { client: c.client() });
    let controller = Controller::new(cms.clone(), watcher_cfg::Config::default())
        .owns(secrets.clone(), watcher_cfg::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    tokio::spawn(controller);
    cms.create(&PostParams::default(), &cm("source"))
        .await
        .unwrap();
    let wait_for = |want: Option<&'static str>| {
        let secrets = secrets.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    let got = secrets.get_opt("source-copy").await.unwrap();
                    let value = got
                        .and_then(|s| s.data)
                        .map(|d| String::from_utf8(d["k"].0.clone()).unwrap());
                    if value.as_deref() == want {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("secret did not reach the expected state");
        }
    };
    wait_for(Some("v")).await;
    cms.patch(
        "source",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    wait_for(Some("w")).await;
    cms.delete("source", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(None).await;
}

/// Tests that need the in-process server's fault injection or compaction: the first CI lane
/// runs them; the real-cluster lane skips `in_process::` (see `.ci/run`).
mod in_process {
    use super::*;

    #[tokio::test]
    async fn watcher_relists_after_410_gone() {
        let c = TestCluster::in_process().await.unwrap();
        let server = c.server().unwrap();
        let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
        let mut rx = spawn_watcher(api.clone(), watcher_cfg::Config::default());
        next_matching(&mut rx, |e| e.0 == "InitDone").await;
        // Break the watch and keep the watcher from resuming until history is compacted away.
        server.stop().await;
        server.inject(
            Fault::status(500)
                .verb("watch")
                .resource("configmaps")
                .times(usize::MAX),
        );
        server.restart().await.unwrap();
        api.create(&PostParams::default(), &cm("while-away"))
            .await
            .unwrap();
        server.compact();
        server.clear_faults();
        // The resumed watch gets 410 Gone, so the watcher starts over with a fresh list.
        next_matching(&mut rx, |e| e.0 == "Init").await;
        next_matching(&mut rx, |e| e.0 == "InitApply" && e.1 == "while-away").await;
    }

    #[tokio::test]
    async fn watch_from_compacted_version_gets_410_error_event() {
        let c = TestCluster::in_process().await.unwrap();
        let server = c.server().unwrap();
        let api: Api<ConfigMap> = Api::namespaced(c.client(), c.namespace());
        let old = api
            .create(&PostParams::default(), &cm("x"))
            .await
            .unwrap()
            .resource_version()
            .unwrap();
        api.create(&PostParams::default(), &cm("y")).await.unwrap();
        server.compact();
        let mut s = api
            .watch(&kube::api::WatchParams::default(), &old)
            .await
            .unwrap()
            .boxed();
        match s.try_next().await.unwrap() {
            Some(kube::core::WatchEvent::Error(e)) => assert_eq!(e.code, 410),
            other => panic!("expected a 410 error event, got {other:?}"),
        }
    }
}
