//! Running a fleet of `eso-operator` processes against one cluster, shared by the end-to-end
//! test `tests/replicas.rs` and the failover benchmark `benches/failover.rs` (which includes
//! this file with `#[path]`).
//!
//! Each replica is a real process with its own `POD_NAME`, JSON logs in a file, and the
//! metrics and health endpoints on ports the kernel picks (read back from its start-up log).
//! The Lease is watched from the test process, so every holder change is seen with the
//! moment it arrived.

// Each user includes this module and uses a different part of it.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eso_api::{ExternalSecret, SecretStore};
use eso_test_apiserver::TestCluster;
use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Field manager of the tests' own writes.
pub const MANAGER: &str = "eso-replicas-test";
/// The Lease the fleet campaigns for.
pub const LEASE: &str = "eso-replicas";

/// Leader election timings handed to every replica.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub lease: Duration,
    pub renew: Duration,
    pub retry: Duration,
}

impl Timings {
    /// Short timings for tests: a SIGTERM handover (retry period plus the reconcilers' grace of
    /// (lease - renew) / 2) is well under half a lease, so it cannot be mistaken for expiry.
    pub const SHORT: Self = Self {
        lease: Duration::from_secs(6),
        renew: Duration::from_secs(4),
        retry: Duration::from_millis(250),
    };
}

fn go(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// One `eso-operator` process.
pub struct Replica {
    /// `POD_NAME`; the Lease identity is this plus `_` and a random suffix.
    pub name: String,
    child: tokio::process::Child,
    log: PathBuf,
    metrics_addr: Option<String>,
}

impl Replica {
    /// Starts a replica watching the cluster's test namespace.
    pub fn start(cluster: &TestCluster, name: &str, timings: Timings) -> Self {
        Self::start_in(cluster, name, timings, cluster.namespace())
    }

    /// Starts a replica watching `namespaces` (`--namespace`: one name or a comma list); the
    /// Lease stays in the cluster's test namespace.
    pub fn start_in(cluster: &TestCluster, name: &str, timings: Timings, namespaces: &str) -> Self {
        let ns = cluster.namespace();
        let log = std::env::temp_dir().join(format!(
            "eso-replicas-{}-{ns}-{name}.log",
            std::process::id()
        ));
        let stderr = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eso-operator"))
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .env("POD_NAME", name)
            .env_remove("POD_NAMESPACE")
            .env_remove("RUST_LOG")
            .args(["--namespace", namespaces, "--leader-election-namespace", ns])
            .args(["--leader-election-id", LEASE])
            .arg(format!(
                "--leader-election-lease-duration={}",
                go(timings.lease)
            ))
            .arg(format!(
                "--leader-election-renew-deadline={}",
                go(timings.renew)
            ))
            .arg(format!(
                "--leader-election-retry-period={}",
                go(timings.retry)
            ))
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--health-addr",
                "127.0.0.1:0",
            ])
            .args(["--concurrent", "4"])
            .args([
                "--log-level",
                "info,eso_core::controller=debug",
                "--log-format",
                "json",
            ])
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            name: name.to_owned(),
            child,
            log,
            metrics_addr: None,
        }
    }

    /// Whether `identity` (a Lease holder) is this process.
    pub fn is(&self, identity: &str) -> bool {
        identity
            .strip_prefix(&self.name)
            .is_some_and(|rest| rest.starts_with('_'))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log records this process wrote (a line cut by `kill -9` is skipped).
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The metrics address the process reported at start-up.
    fn metrics_addr(&mut self) -> Option<String> {
        if self.metrics_addr.is_none() {
            self.metrics_addr = self
                .records()
                .iter()
                .find(|r| r["fields"]["message"] == "eso-operator started")
                .and_then(|r| r["fields"]["metrics_addr"].as_str().map(str::to_owned));
        }
        self.metrics_addr.clone()
    }

    /// The `/metrics` text, or `None` while the endpoint does not answer.
    pub async fn scrape(&mut self) -> Option<String> {
        let addr = self.metrics_addr()?;
        let mut stream = tokio::net::TcpStream::connect(addr.as_str()).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut body))
            .await
            .ok()?
            .ok()?;
        body.starts_with("HTTP/1.1 200").then_some(body)
    }

    /// `kill -9`; returns once the process is gone.
    pub async fn kill9(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// Sends SIGTERM and waits (at most 30 s) for the exit.
    pub async fn sigterm(&mut self) -> std::process::ExitStatus {
        self.send_sigterm().await;
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the operator exits after SIGTERM")
            .unwrap()
    }

    /// Sends SIGTERM without waiting.
    pub async fn send_sigterm(&mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// The completed reconciles this process logged: (start, end) of each, from the log
    /// timestamp and the logged elapsed time.
    pub fn reconciles(&self) -> Vec<(Timestamp, Timestamp)> {
        let mut out = Vec::new();
        for r in self.records() {
            if r["fields"]["message"] != "reconciled" {
                continue;
            }
            let instance = r["fields"]["instance"].as_str().unwrap_or_default();
            assert!(
                self.is(instance),
                "{} logged a reconcile as {instance:?}: {r}",
                self.name
            );
            let end: Timestamp = r["timestamp"].as_str().unwrap().parse().unwrap();
            let elapsed = parse_debug_duration(r["fields"]["elapsed"].as_str().unwrap());
            let start = end.checked_sub(elapsed).unwrap();
            out.push((start, end));
        }
        out
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "log of replica {} kept at {}",
                self.name,
                self.log.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A `Duration`'s `Debug` text (`12.5ms`, `830µs`, `1.2s`, `0ns`).
pub fn parse_debug_duration(text: &str) -> Duration {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().unwrap();
    let scale = match unit {
        "ns" => 1e-9,
        "µs" | "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        other => panic!("unknown duration unit {other:?} in {text:?}"),
    };
    Duration::from_secs_f64(value * scale)
}

/// Reconciles of different processes never overlap in time. Reconciles cancelled at
/// step-down are never logged (their futures are dropped), so every logged one counts.
/// Returns how many processes reconciled, and how many reconciles there were.
pub fn assert_reconciles_never_overlap(replicas: &[&Replica]) -> (usize, usize) {
    let mut all: Vec<(Timestamp, Timestamp, &str)> = replicas
        .iter()
        .flat_map(|r| {
            r.reconciles()
                .into_iter()
                .map(move |(s, e)| (s, e, r.name.as_str()))
        })
        .collect();
    all.sort();
    // The latest end seen so far per process: an interval overlaps another process's earlier
    // one exactly when that process's latest end is after this start.
    let mut latest_end: BTreeMap<&str, Timestamp> = BTreeMap::new();
    for &(start, end, who) in &all {
        for (&other, &other_end) in &latest_end {
            assert!(
                other == who || other_end <= start,
                "{who} started a reconcile at {start} while {other} was reconciling until {other_end}"
            );
        }
        let e = latest_end.entry(who).or_insert(end);
        *e = (*e).max(end);
    }
    (latest_end.len(), all.len())
}

/// What one scrape of `/metrics` says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scrape {
    /// `leader_election_master_status`.
    pub leader: Option<bool>,
    /// ExternalSecret names with an `externalsecret_status_condition` series.
    pub objects: BTreeSet<String>,
    /// ExternalSecret names with `externalsecret_status_condition{condition="Ready",status="False"} 1`.
    pub ready_false: BTreeSet<String>,
    /// The whole text, for "no series at all names this object" checks.
    pub text: String,
}

fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    labels[start..].split('"').next()
}

pub fn parse(text: &str) -> Scrape {
    let mut s = Scrape {
        text: text.to_owned(),
        ..Scrape::default()
    };
    let gauge = format!("leader_election_master_status{{name=\"{LEASE}\"}} ");
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(&gauge) {
            s.leader = Some(v.trim() == "1");
        }
        let Some(rest) = line.strip_prefix("externalsecret_status_condition{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(name) = label(labels, "name") else {
            continue;
        };
        s.objects.insert(name.to_owned());
        if label(labels, "condition") == Some("Ready")
            && label(labels, "status") == Some("False")
            && value.trim() == "1"
        {
            s.ready_false.insert(name.to_owned());
        }
    }
    s
}

/// Whether the Lease names a holder, and which.
pub fn holder_of(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
}

/// Every version of the Lease the watch saw: when it arrived, its resourceVersion and holder.
#[derive(Debug, Clone)]
pub struct LeaseEvent {
    pub at: Instant,
    pub resource_version: String,
    pub holder: Option<String>,
}

/// A background watch of the fleet's Lease.
pub struct LeaseWatch {
    pub events: Arc<Mutex<Vec<LeaseEvent>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseWatch {
    pub fn start(cluster: &TestCluster) -> Self {
        let api: Api<Lease> = Api::namespaced(cluster.client(), cluster.namespace());
        let events: Arc<Mutex<Vec<LeaseEvent>>> = Arc::default();
        let sink = events.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
        let task = tokio::spawn(async move {
            let stream = watcher(api, config).default_backoff().applied_objects();
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                let Ok(lease) = item else { continue };
                let resource_version = lease.metadata.resource_version.clone().unwrap_or_default();
                let mut events = sink.lock().unwrap();
                // A relist after a reconnect repeats the version already seen.
                if events
                    .last()
                    .is_some_and(|e| e.resource_version == resource_version)
                {
                    continue;
                }
                events.push(LeaseEvent {
                    at: Instant::now(),
                    resource_version,
                    holder: holder_of(&lease),
                });
            }
        });
        Self { events, task }
    }

    pub fn snapshot(&self) -> Vec<LeaseEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn current_holder(&self) -> Option<String> {
        self.events
            .lock()
            .unwrap()
            .last()
            .and_then(|e| e.holder.clone())
    }

    /// Waits (at most `bound`) until the holder satisfies `pred`; returns it and when it
    /// arrived.
    pub async fn wait_for_holder(
        &self,
        bound: Duration,
        what: &str,
        pred: impl Fn(Option<&str>) -> bool,
    ) -> (Option<String>, Instant) {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(e) = self.events.lock().unwrap().last()
                && pred(e.holder.as_deref())
            {
                return (e.holder.clone(), e.at);
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {bound:?} waiting for {what}; Lease history: {:?}",
                self.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How many times the Lease was written since the watch started.
    pub fn writes(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

impl Drop for LeaseWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fake SecretStore every ExternalSecret of the fleet reads.
pub async fn create_store(cluster: &TestCluster) {
    create_store_in(&cluster.client(), cluster.namespace()).await;
}

/// The same fake SecretStore in namespace `ns`.
pub async fn create_store_in(client: &kube::Client, ns: &str) {
    let store: SecretStore = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": ns},
        "spec": {"provider": {"fake": {"data": [
            {"key": "k", "value": "v"},
            {"key": "k2", "value": "v2"}
        ]}}}
    }))
    .unwrap();
    Api::<SecretStore>::namespaced(client.clone(), ns)
        .patch(
            "fake",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&store),
        )
        .await
        .unwrap();
}

/// An ExternalSecret `name` reading `k` from the fake store into Secret `name`.
pub fn external_secret(ns: &str, name: &str, refresh: &str) -> ExternalSecret {
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": refresh,
            "target": {"name": name},
            "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]
        }
    }))
    .unwrap()
}

pub async fn apply_es(api: &Api<ExternalSecret>, es: &ExternalSecret) {
    let name = es.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(es),
    )
    .await
    .unwrap();
}

pub fn is_ready(es: &ExternalSecret) -> bool {
    es.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status.as_str() == "True")
    })
}

/// How many ExternalSecrets are Ready (listing fails: none).
pub async fn ready_count(api: &Api<ExternalSecret>) -> usize {
    api.list(&Default::default())
        .await
        .map(|l| l.items.iter().filter(|es| is_ready(es)).count())
        .unwrap_or(0)
}

/// Whether Secret `name` exists with key `k`.
pub async fn secret_synced(api: &Api<Secret>, name: &str) -> bool {
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|s| s.data)
        .is_some_and(|d| d.contains_key("k"))
}

/// Polls `check` every 50 ms until it holds; panics after `bound` (an upper bound on a
/// behaviour, not a timing measurement).
pub async fn until<F, Fut>(bound: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
