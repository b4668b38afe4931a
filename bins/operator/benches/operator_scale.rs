//! The operator at scale, against the in-process test API server: N ExternalSecrets on the fake
//! provider (100 distinct keys), one `eso-operator` process (leader election off).
//!
//! Reports: time until every Secret exists, create-to-Secret latency (p50/p99 over 20 new
//! ExternalSecrets created while the N refresh every 60 s), writes and Events of the N during
//! one steady-state refresh window, and the operator's peak RSS.
//!
//! Run: `ESO_BENCH_N=5000 cargo bench -p eso-operator --bench operator_scale` (default N=1000).
//! `ESO_BENCH_UNRELATED=20000` first fills the namespace with that many unrelated 100 KiB
//! Secrets (not managed by any ExternalSecret), to show the operator's memory does not follow
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eso_test_apiserver::TestApiServer;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;

const MANAGER: &str = "eso-bench";

fn es_resource() -> ApiResource {
    ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: "ExternalSecret".into(),
        plural: "externalsecrets".into(),
    }
}

async fn create_es(api: &Api<DynamicObject>, ns: &str, name: &str, key: usize) {
    let body = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"secretStoreRef": {"name": "fake"}, "refreshInterval": "60s",
            "data": [{"secretKey": "value", "remoteRef": {"key": format!("key-{key}")}}]}
    });
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
}

async fn managed_secrets(api: &Api<Secret>) -> Vec<Secret> {
    api.list(&ListParams::default().labels("reconcile.external-secrets.io/managed=true"))
        .await
        .unwrap()
        .items
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("ESO_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let server = TestApiServer::start().await.unwrap();
    let client = server.client().unwrap();
    let ns = "bench";
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    eso_tests::install_crds(&client).await.unwrap();
    let store_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource {
            kind: "SecretStore".into(),
            plural: "secretstores".into(),
            ..es_resource()
        },
    );
    let data: Vec<_> = (0..100)
        .map(|i| json!({"key": format!("key-{i}"), "value": format!("value-{i}")}))
        .collect();
    store_api
        .patch(
            "fake",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": {"name": "fake", "namespace": ns}, "spec": {"provider": {"fake": {"data": data}}}})),
        )
        .await
        .unwrap();
    let unrelated: usize = std::env::var("ESO_BENCH_UNRELATED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if unrelated > 0 {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let blob = k8s_openapi::ByteString(vec![b'x'; 100 * 1024]);
        let t = Instant::now();
        for i in 0..unrelated {
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(format!("unrelated-{i}")),
                    labels: Some([("app".to_owned(), "unrelated".to_owned())].into()),
                    ..Default::default()
                },
                data: Some([("blob".to_owned(), blob.clone())].into()),
                ..Default::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .unwrap();
        }
        eprintln!(
            "created {unrelated} unrelated 100 KiB Secrets in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let es_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &es_resource());
    for i in 0..n {
        create_es(&es_api, ns, &format!("es-{i}"), i % 100).await;
    }

    let dir = std::env::temp_dir().join(format!("eso-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, ns).unwrap();
    let mut operator = Command::new(env!("CARGO_BIN_EXE_eso-operator"))
        .args([
            "--enable-leader-election=false",
            "--concurrent=4",
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--log-level=warn",
        ])
        .args(["--namespace", ns])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = operator.id();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);

    let started = Instant::now();
    loop {
        // Metadata only, once a second: a full list of N Secrets several times a second would
        // load the in-process server (it shares these 2 cores) more than the operator does.
        let managed = secrets
            .list_metadata(
                &ListParams::default().labels("reconcile.external-secrets.io/managed=true"),
            )
            .await
            .unwrap()
            .items
            .len();
        if managed >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the operator did not converge"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let converge = started.elapsed();

    // Steady state: let every ExternalSecret refresh once (60 s interval, up to 10 % jitter)
    // and count what changed.
    let before: std::collections::BTreeMap<String, String> = managed_secrets(&secrets)
        .await
        .into_iter()
        .map(|s| {
            (
                s.metadata.name.unwrap(),
                s.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    let es_versions = |list: Vec<DynamicObject>| -> std::collections::BTreeMap<String, String> {
        list.into_iter()
            .map(|o| {
                (
                    o.metadata.name.unwrap_or_default(),
                    o.metadata.resource_version.unwrap_or_default(),
                )
            })
            .collect()
    };
    let es_before = es_versions(es_api.list(&ListParams::default()).await.unwrap().items);
    let events_api: Api<Event> = Api::namespaced(client.clone(), ns);
    // Events about the N (not about the ExternalSecrets created during the window).
    let events_of_n = |events: Vec<Event>| {
        events
            .iter()
            .filter(|e| {
                !e.regarding
                    .as_ref()
                    .and_then(|r| r.name.as_deref())
                    .unwrap_or_default()
                    .starts_with("late-")
            })
            .count()
    };
    let events_before = events_of_n(events_api.list(&ListParams::default()).await.unwrap().items);
    // During the window, one new ExternalSecret every 3.5 s: how long until its Secret exists
    // while the N refresh around it.
    let window = Instant::now();
    let mut latencies = Vec::new();
    for i in 0..20 {
        let name = format!("late-{i}");
        let t = Instant::now();
        create_es(&es_api, ns, &name, i).await;
        while secrets.get_opt(&name).await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(3500).saturating_sub(t.elapsed())).await;
    }
    latencies.sort();
    tokio::time::sleep(Duration::from_secs(70).saturating_sub(window.elapsed())).await;
    let after = managed_secrets(&secrets).await;
    let rewritten = after
        .iter()
        .filter(|s| {
            !s.metadata
                .name
                .as_deref()
                .unwrap_or_default()
                .starts_with("late-")
        })
        .filter(|s| {
            before.get(s.metadata.name.as_deref().unwrap_or_default())
                != s.metadata.resource_version.as_ref()
        })
        .count();
    let events_after = events_of_n(events_api.list(&ListParams::default()).await.unwrap().items);
    let es_after = es_versions(es_api.list(&ListParams::default()).await.unwrap().items);
    let status_writes = es_after
        .iter()
        .filter(|(k, v)| !k.starts_with("late-") && es_before.get(*k) != Some(*v))
        .count();
    let rss = peak_rss_kib(pid);
    let _ = operator.kill();
    let _ = operator.wait();

    println!(
        "| N | all Ready | syncs/s | create→Secret p50 | p99 | Secret writes in one refresh window | ExternalSecret status writes | new Events | operator peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {:.1} s | {:.0} | {} ms | {} ms | {rewritten} | {status_writes} | {} | {:.1} MiB |",
        converge.as_secs_f64(),
        n as f64 / converge.as_secs_f64(),
        percentile(&latencies, 0.5).as_millis(),
        percentile(&latencies, 0.99).as_millis(),
        events_after.saturating_sub(events_before),
        rss as f64 / 1024.0
    );
}
