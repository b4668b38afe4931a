//! Provider calls and Kubernetes writes of N PushSecrets (default 1,000; `PUSH_BENCH_N`) at
//! steady state, through the PushSecret controller on the in-process test API server with the
//! fake provider. Prints figures; asserts nothing.
//!
//! Phases: (1) the first push of everything; (2) a quiet window shorter than the refresh
//! interval, in which nothing is due; (3) a window holding one full refresh of every
//! PushSecret. The goal (issue 19) is zero provider writes and zero Kubernetes writes in (2)
//! and (3). Kubernetes writes are counted as the test server's resourceVersion increments
//! (every create, update, patch and event is one).
//!
//! Run: `cargo bench -p eso-tests --bench push_steady_state`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use eso_api::PushSecret;
use eso_core::controller::ControllerConfig;
use eso_core::push::{PushContext, PushSecretController};
use eso_tests::{TEST_MANAGER, TestCluster, eventually_for, install_crds};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

const INTERVAL_SECS: u64 = 60;

fn snapshot(ctx: &PushContext, cluster: &TestCluster) -> [u64; 5] {
    let c = ctx.provider_calls();
    [
        c.reads.load(Relaxed),
        c.exists.load(Relaxed),
        c.pushes.load(Relaxed),
        c.deletes.load(Relaxed),
        cluster.server().map_or(0, |s| s.resource_version()),
    ]
}

fn report(phase: &str, before: [u64; 5], after: [u64; 5], took: Duration) {
    println!(
        "{phase:<34} {:>8} reads {:>6} exists {:>6} pushes {:>6} deletes {:>8} k8s writes  ({took:.1?})",
        after[0] - before[0],
        after[1] - before[1],
        after[2] - before[2],
        after[3] - before[3],
        after[4] - before[4],
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("PUSH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cluster = TestCluster::new().await.unwrap();
    if cluster.is_real() {
        println!("note: a real cluster; Kubernetes writes are not counted");
    }
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let params = PatchParams::apply(TEST_MANAGER).force();
    let stores: Api<eso_api::SecretStore> = Api::namespaced(client.clone(), &ns);
    stores
        .patch(
            "fake",
            &params,
            &Patch::Apply(json!({
                "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": {"name": "fake", "namespace": ns},
                "spec": {"provider": {"fake": {"data": []}}}
            })),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pushes: Api<PushSecret> = Api::namespaced(client.clone(), &ns);
    for i in 0..n {
        secrets
            .patch(
                &format!("src-{i}"),
                &params,
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": format!("src-{i}"), "namespace": ns},
                    "stringData": {"password": format!("value-{i}")}
                })),
            )
            .await
            .unwrap();
        pushes
            .patch(&format!("push-{i}"), &params, &Patch::Apply(json!({
                "apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
                "metadata": {"name": format!("push-{i}"), "namespace": ns},
                "spec": {
                    "refreshInterval": format!("{INTERVAL_SECS}s"),
                    "secretStoreRefs": [{"name": "fake"}],
                    "selector": {"secret": {"name": format!("src-{i}")}},
                    "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": format!("remote-{i}")}}}]
                }
            })))
            .await
            .unwrap();
    }

    let config = ControllerConfig::default()
        .namespace(Some(ns.clone()))
        .concurrency(16);
    let controller = PushSecretController::new(client.clone(), config, eso_providers::builtin());
    let ctx = controller.context();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        controller
            .reconcile_until(
                async move {
                    let _ = rx.await;
                },
                Some(Duration::from_secs(5)),
            )
            .await;
    });

    println!("{n} PushSecrets, one key each, refreshInterval {INTERVAL_SECS}s, fake provider");
    let start = Instant::now();
    let before = snapshot(&ctx, &cluster);
    eventually_for(
        "every PushSecret to be Synced",
        Duration::from_secs(600),
        || async {
            let list = pushes.list(&ListParams::default()).await.unwrap();
            list.items
                .iter()
                .filter(|p| eso_core::push::plan::is_ready(p))
                .count()
                == n
        },
    )
    .await
    .unwrap();
    // Let the reconciles caused by our own status writes settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let synced = snapshot(&ctx, &cluster);
    report("first push (all Synced)", before, synced, start.elapsed());

    // Nothing is due until the first pushes are one interval old.
    let synced_at = Instant::now();
    let interval = Duration::from_secs(INTERVAL_SECS);
    let quiet_end = start + interval.mul_f64(0.9);
    if quiet_end > synced_at {
        tokio::time::sleep_until(quiet_end.into()).await;
    }
    let after_quiet = snapshot(&ctx, &cluster);
    report(
        "quiet window (nothing due)",
        synced,
        after_quiet,
        synced_at.elapsed(),
    );

    // Every PushSecret comes due once (interval plus at most 5 % jitter after its push), and
    // none twice.
    let refresh = Instant::now();
    let refresh_end = synced_at + interval.mul_f64(1.05) + Duration::from_secs(5);
    tokio::time::sleep_until(refresh_end.into()).await;
    let after_refresh = snapshot(&ctx, &cluster);
    report(
        "one full refresh of everything",
        after_quiet,
        after_refresh,
        refresh.elapsed(),
    );

    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    let _ = cluster.cleanup().await;
}
