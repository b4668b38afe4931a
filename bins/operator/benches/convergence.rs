//! Cold convergence against a real kube-apiserver, measured against that API server's own
//! write floor in the same run (issue 18).
//!
//! For each N: creates N ExternalSecrets on the fake provider (100 distinct keys), 32 at a
//! time, starts one `eso-operator` process with DEFAULT flags (leader election off, so that
//! nothing but the reconciles is measured), and reports
//! - the floor: the time the API server needs for the writes N ExternalSecrets require, one
//!   Secret create and one ExternalSecret status write each, made by this bench with 32 in
//!   flight on ExternalSecrets of its own (a namespace no operator watches);
//! - the time until every ExternalSecret is `Ready=True`, syncs/s, and its ratio to the floor
//!   (the goal is at most 2);
//! - API requests per ExternalSecret by verb and resource, counted by the operator's own client
//!   (`eso_kubernetes_requests_total` on its `/metrics`);
//! - writes made during a 60 s steady-state window after convergence (Secrets and
//!   ExternalSecrets whose resourceVersion moved);
//! - the operator's peak RSS.
//!
//! The cluster: `ESO_BENCH_KUBECONFIG`, or else a control plane started for the run with
//! `up.sh` of `ESO_TEST_K8S_DIR` (default: `../shared/k8s` next to the repository).
//!
//! Run: `cargo bench -p eso-operator --bench convergence` (N = 1000, 5000, 10000; set
//! `ESO_BENCH_NS="1000"` for fewer, `ESO_BENCH_STEADY=0` to skip the steady-state window,
//! `ESO_BENCH_ARGS="--concurrent 16"` for extra operator flags).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;

const MANAGER: &str = "eso-bench";
const IN_FLIGHT: usize = 32;

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// A cluster for the run: given, or started with up.sh (stopped on drop).
struct Cluster {
    kubeconfig: PathBuf,
    started: Option<(PathBuf, PathBuf)>,
}

impl Cluster {
    fn get() -> Self {
        if let Some(path) = std::env::var_os("ESO_BENCH_KUBECONFIG").filter(|v| !v.is_empty()) {
            return Self {
                kubeconfig: PathBuf::from(path),
                started: None,
            };
        }
        let k8s = std::env::var_os("ESO_TEST_K8S_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s"));
        let dir = std::env::temp_dir().join(format!("eso-bench-k8s-{}", std::process::id()));
        let out = Command::new(k8s.join("up.sh"))
            .arg(&dir)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; set ESO_BENCH_KUBECONFIG or ESO_TEST_K8S_DIR",
                    k8s.join("up.sh").display()
                )
            });
        assert!(out.status.success(), "up.sh failed");
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Self {
            kubeconfig,
            started: Some((k8s, dir)),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((k8s, dir)) = &self.started {
            let _ = Command::new(k8s.join("down.sh")).arg(dir).status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
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

/// CPU seconds (user + system) a process has used so far; 0 when it cannot be read.
fn cpu_secs(pid: u32) -> f64 {
    // Fields 14 and 15 of /proc/PID/stat, after the parenthesised command name; in clock ticks
    // of 1/100 s (USER_HZ on Linux).
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The control plane's processes (`run/<name>.pid` next to the kubeconfig, as up.sh writes
/// them), by name; empty for a cluster started elsewhere.
fn control_plane_pids(kubeconfig: &Path) -> Vec<(&'static str, u32)> {
    let Some(dir) = kubeconfig.parent() else {
        return Vec::new();
    };
    ["kube-apiserver", "etcd"]
        .into_iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(dir.join("run").join(format!("{name}.pid"))).ok()?;
            Some((name, pid.trim().parse().ok()?))
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn fresh_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    // Wait for the service-account controller, as every namespace of a real cluster gets one.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), name);
    for _ in 0..100 {
        if accounts.get_opt("default").await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The floor, in parts: what N ExternalSecrets need written, timed apart.
struct Floor {
    /// N Secret creates (`POST`), each as an ExternalSecret writes it: labels, data-hash
    /// annotation, owner reference, one key.
    creates: Duration,
    /// N status writes (`PATCH externalsecrets/status`): a Ready condition, refreshTime,
    /// binding and syncedResourceVersion.
    status: Duration,
    /// The same N Secrets written by server-side apply instead, for comparison (not part of
    /// the floor): `ESO_BENCH_FLOOR_APPLY=1`.
    applies: Option<Duration>,
}

impl Floor {
    fn total(&self) -> Duration {
        self.creates + self.status
    }
}

/// The API server's floor for N ExternalSecrets: N Secret creates plus N ExternalSecret
/// status writes, IN_FLIGHT at a time, in a namespace of their own (emptied and gone before
/// the operator starts). The ExternalSecrets whose status is written are created untimed;
/// no operator watches that namespace.
async fn write_floor(client: &kube::Client, run_ns: &str, n: usize) -> Floor {
    let ns = format!("{run_ns}-floor");
    fresh_namespace(client, &ns).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let ess: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &resource("ExternalSecret", "externalsecrets"),
    );
    let uids: Vec<String> = stream::iter(0..n)
        .map(|i| {
            let ess = ess.clone();
            let ns = ns.clone();
            async move {
                let created = ess
                    .patch(
                        &format!("es-{i}"),
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(&external_secret(&ns, i)),
                    )
                    .await
                    .unwrap();
                (i, created.metadata.uid.unwrap())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<BTreeMap<usize, String>>()
        .await
        .into_values()
        .collect();
    let secret = |i: usize, prefix: &str| -> Secret {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": format!("{prefix}-{i}"), "namespace": ns,
                "labels": {"reconcile.external-secrets.io/managed": "true",
                           "reconcile.external-secrets.io/created-by": "a5d6a2bd0b7e4e4fc5a5f5bd8b4cd6d9e8f1d2c3b4a5968778695a4b"},
                "annotations": {"reconcile.external-secrets.io/data-hash":
                                "c2f8a0e1d4b7968574a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1"},
                "ownerReferences": [{"apiVersion": "external-secrets.io/v1",
                    "kind": "ExternalSecret", "name": format!("es-{i}"), "uid": uids[i],
                    "controller": true, "blockOwnerDeletion": true}]},
            "type": "Opaque",
            "data": {"value": "dmFsdWUtNDI="}
        }))
        .unwrap()
    };
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let secrets = secrets.clone();
            let body = secret(i, "floor");
            async move {
                secrets.create(&PostParams::default(), &body).await.unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
    let creates = started.elapsed();
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let ess = ess.clone();
            async move {
                let patch = json!({"status": {
                    "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced",
                        "message": "secret synced", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                    "refreshTime": "2026-01-01T00:00:00Z",
                    "binding": {"name": format!("es-{i}")},
                    "syncedResourceVersion": "1-0123456789abcdef0123456789abcdef"}});
                ess.patch_status(
                    &format!("es-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
    let status = started.elapsed();
    let applies = if std::env::var("ESO_BENCH_FLOOR_APPLY").is_ok_and(|v| v == "1") {
        let started = Instant::now();
        stream::iter(0..n)
            .map(|i| {
                let secrets = secrets.clone();
                let body = secret(i, "applied");
                async move {
                    secrets
                        .patch(
                            &format!("applied-{i}"),
                            &PatchParams::apply(MANAGER).force(),
                            &Patch::Apply(&body),
                        )
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<()>()
            .await;
        Some(started.elapsed())
    } else {
        None
    };
    // Gone before the operator starts, so that its deletion does not load the measured run.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    let gone = Instant::now();
    while namespaces.get_opt(&ns).await.unwrap().is_some() {
        assert!(
            gone.elapsed() < Duration::from_secs(600),
            "the floor's namespace was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Floor {
        creates,
        status,
        applies,
    }
}

/// The bench's ExternalSecret number `i`.
fn external_secret(ns: &str, i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": format!("es-{i}"), "namespace": ns},
        "spec": {"secretStoreRef": {"name": "fake"}, "refreshInterval": "60s",
            "data": [{"secretKey": "value",
                      "remoteRef": {"key": format!("key-{}", i % 100)}}]}
    })
}

async fn scrape(port: u16) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        let out = tokio::process::Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
            .output()
            .await;
        if let Ok(out) = out
            && out.status.success()
        {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        last = "no answer".into();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the operator's /metrics did not answer: {last}")
}

/// `eso_kubernetes_requests_total` summed by (verb, resource).
fn requests_by_verb(metrics: &str) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("eso_kubernetes_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        *out.entry((label("verb"), label("resource"))).or_default() +=
            value.trim().parse::<f64>().unwrap_or(0.0);
    }
    out
}

fn meta_versions<K>(items: Vec<kube::core::PartialObjectMeta<K>>) -> BTreeMap<String, String> {
    items
        .into_iter()
        .map(|o| {
            (
                o.metadata.name.unwrap_or_default(),
                o.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect()
}

fn is_ready(o: &DynamicObject) -> bool {
    o.data["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

struct Row {
    n: usize,
    floor: Floor,
    ready: Duration,
    calls: BTreeMap<(String, String), f64>,
    steady_writes: Option<(usize, usize)>,
    rss_kib: u64,
    /// CPU seconds used until all were Ready, by process.
    cpu: Vec<(&'static str, f64)>,
}

async fn run(cluster: &Cluster, client: &kube::Client, n: usize, steady: bool) -> Row {
    let ns = format!("bench-{n}-{}", std::process::id());
    fresh_namespace(client, &ns).await;
    let floor = write_floor(client, &ns, n).await;

    let stores: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &resource("SecretStore", "secretstores"),
    );
    let data: Vec<_> = (0..100)
        .map(|i| json!({"key": format!("key-{i}"), "value": format!("value-{i}")}))
        .collect();
    stores
        .patch(
            "fake",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(
                &json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": {"name": "fake", "namespace": ns},
                "spec": {"provider": {"fake": {"data": data}}}}),
            ),
        )
        .await
        .unwrap();
    let ess: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &resource("ExternalSecret", "externalsecrets"),
    );
    stream::iter(0..n)
        .map(|i| {
            let ess = ess.clone();
            let ns = ns.clone();
            async move {
                ess.patch(
                    &format!("es-{i}"),
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&external_secret(&ns, i)),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;

    // Count Ready ExternalSecrets from a watch (a list per poll would load the API server).
    let ready_names = Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    let watch = {
        let ready_names = ready_names.clone();
        let ess = ess.clone();
        tokio::spawn(async move {
            let mut events =
                std::pin::pin!(watcher::watcher(ess, watcher::Config::default()).default_backoff());
            while let Ok(Some(event)) = events.try_next().await {
                let mut set = ready_names.lock().unwrap();
                match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        let name = o.metadata.name.clone().unwrap_or_default();
                        if is_ready(&o) {
                            set.insert(name);
                        } else {
                            set.remove(&name);
                        }
                    }
                    watcher::Event::Delete(o) => {
                        set.remove(&o.metadata.name.unwrap_or_default());
                    }
                    _ => {}
                }
            }
        })
    };

    let port = free_port();
    let extra = std::env::var("ESO_BENCH_ARGS").unwrap_or_default();
    let mut operator = Command::new(env!("CARGO_BIN_EXE_eso-operator"))
        .args([
            "--enable-leader-election=false",
            &format!("--metrics-addr=127.0.0.1:{port}"),
            "--health-addr=127.0.0.1:0",
            "--log-level=warn",
        ])
        .args(["--namespace", &ns])
        .args(extra.split_whitespace())
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = operator.id();
    let plane = control_plane_pids(&cluster.kubeconfig);
    let plane_before: Vec<f64> = plane.iter().map(|(_, p)| cpu_secs(*p)).collect();
    let started = Instant::now();
    loop {
        if ready_names.lock().unwrap().len() >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the operator did not converge"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = started.elapsed();
    let mut cpu = vec![("eso-operator", cpu_secs(pid))];
    for ((name, p), before) in plane.iter().zip(plane_before) {
        cpu.push((name, cpu_secs(*p) - before));
    }
    watch.abort();
    let calls = requests_by_verb(&scrape(port).await);

    let steady_writes = if steady {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let managed = ListParams::default().labels("reconcile.external-secrets.io/managed=true");
        let all = ListParams::default();
        let secrets_before = meta_versions(secrets.list_metadata(&managed).await.unwrap().items);
        let es_before = meta_versions(ess.list_metadata(&all).await.unwrap().items);
        // 60 s refresh interval with up to 10 % jitter: every ExternalSecret refreshes once.
        tokio::time::sleep(Duration::from_secs(70)).await;
        let secrets_after = meta_versions(secrets.list_metadata(&managed).await.unwrap().items);
        let es_after = meta_versions(ess.list_metadata(&all).await.unwrap().items);
        let moved = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
            b.iter().filter(|(k, v)| a.get(*k) != Some(*v)).count()
        };
        Some((
            moved(&secrets_before, &secrets_after),
            moved(&es_before, &es_after),
        ))
    } else {
        None
    };
    let rss_kib = peak_rss_kib(pid);
    let _ = operator.kill();
    let _ = operator.wait();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    Row {
        n,
        floor,
        ready,
        calls,
        steady_writes,
        rss_kib,
        cpu,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ns: Vec<usize> = std::env::var("ESO_BENCH_NS")
        .unwrap_or_else(|_| "1000,5000,10000".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let steady = std::env::var("ESO_BENCH_STEADY").map_or(true, |v| v != "0");
    let cluster = Cluster::get();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    eso_tests::install_crds(&client).await.unwrap();

    let mut rows = Vec::new();
    for n in ns {
        let row = run(&cluster, &client, n, steady).await;
        eprintln!(
            "N={n}: floor {:.1} s ({:.1} s of Secret creates + {:.1} s of status writes{}), all Ready {:.1} s",
            row.floor.total().as_secs_f64(),
            row.floor.creates.as_secs_f64(),
            row.floor.status.as_secs_f64(),
            row.floor.applies.map_or(String::new(), |a| format!(
                "; the Secrets by server-side apply instead: {:.1} s",
                a.as_secs_f64()
            )),
            row.ready.as_secs_f64()
        );
        let cpu: Vec<String> = row
            .cpu
            .iter()
            .map(|(name, secs)| format!("{name} {secs:.1} s"))
            .collect();
        println!(
            "N={n}: CPU used until all Ready ({:.1} s of wall time, {} cores): {}",
            row.ready.as_secs_f64(),
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            cpu.join(", ")
        );
        rows.push(row);
    }

    println!(
        "| N | write floor (N Secret creates + N status writes, {IN_FLIGHT} in flight) | all Ready | syncs/s | ratio to floor | steady-state writes in 70 s (Secrets / ExternalSecrets) | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.1} s | {:.1} s | {:.0} | {:.2} | {} | {:.1} MiB |",
            row.n,
            row.floor.total().as_secs_f64(),
            row.ready.as_secs_f64(),
            row.n as f64 / row.ready.as_secs_f64(),
            row.ready.as_secs_f64() / row.floor.total().as_secs_f64(),
            row.steady_writes
                .map_or("not measured".to_owned(), |(s, e)| format!("{s} / {e}")),
            row.rss_kib as f64 / 1024.0
        );
    }
    println!();
    println!("API requests per ExternalSecret until all were Ready (operator's client):");
    println!();
    let mut header = vec!["verb resource".to_owned()];
    header.extend(rows.iter().map(|r| format!("N={}", r.n)));
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    let keys: std::collections::BTreeSet<_> =
        rows.iter().flat_map(|r| r.calls.keys().cloned()).collect();
    for key in keys {
        let cells: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{:.2}",
                    r.calls.get(&key).copied().unwrap_or(0.0) / r.n as f64
                )
            })
            .collect();
        println!("| {} {} | {} |", key.0, key.1, cells.join(" | "));
    }
}
