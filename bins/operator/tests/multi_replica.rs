//! Several `eso-operator` processes against one cluster (the in-process test API server, or a
//! real cluster when ESO_TEST_KUBECONFIG names a kubeconfig; the API-server outage test skips
//! itself there): one leads and reconciles, only it exports per-object series, every replica
//! exports the leadership gauge, and killing or stopping the leader hands over.
//!
//! Waits have upper bounds only; timings are shortened with the leader election flags.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use eso_api::{ExternalSecret, SecretStore};
use eso_tests::{TEST_MANAGER, TestCluster, eventually, install_crds};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEASE: &str = "eso-e2e";
const OBJECTS: usize = 5;

fn free_port() -> u16 {
    // Bound and released at once: a small race with other processes, fine for tests.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Replica {
    name: String,
    metrics_port: u16,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Replica {
    fn start(cluster: &TestCluster, name: &str) -> Self {
        let ns = cluster.namespace();
        let metrics_port = free_port();
        let log = std::env::temp_dir().join(format!(
            "eso-operator-e2e-{}-{ns}-{name}.log",
            std::process::id()
        ));
        let stderr = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eso-operator"))
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .env("POD_NAME", name)
            .env_remove("POD_NAMESPACE")
            .args(["--namespace", ns, "--leader-election-namespace", ns])
            .args(["--leader-election-id", LEASE])
            .args(["--leader-election-lease-duration", "3s"])
            .args(["--leader-election-renew-deadline", "2s"])
            .args(["--leader-election-retry-period", "250ms"])
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg(format!("--health-addr=127.0.0.1:{}", free_port()))
            .args(["--log-level", "info,eso_core=debug", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            name: name.to_owned(),
            metrics_port,
            child,
            log,
        }
    }

    /// The `/metrics` text, or `None` while the endpoint does not answer.
    async fn scrape(&self) -> Option<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .ok()?;
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

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What one scrape says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Scrape {
    leader: Option<bool>,
    /// ExternalSecret names with a `Ready` series.
    objects: std::collections::BTreeSet<String>,
    ready_false: bool,
}

fn parse(text: &str) -> Scrape {
    let mut s = Scrape::default();
    let gauge = format!("leader_election_master_status{{name=\"{LEASE}\"}} ");
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(&gauge) {
            s.leader = Some(v.trim() == "1");
        }
        if let Some(labels) = line.strip_prefix("externalsecret_status_condition{") {
            let name = labels
                .split("name=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default();
            s.objects.insert(name.to_owned());
            if labels.contains("condition=\"Ready\",status=\"False\"} 1") {
                s.ready_false = true;
            }
        }
    }
    s
}

async fn scrape_all(replicas: &[Replica]) -> Vec<Option<Scrape>> {
    let mut out = Vec::new();
    for r in replicas {
        out.push(r.scrape().await.map(|t| parse(&t)));
    }
    out
}

/// The one replica that says it leads and exports all `expected` objects, while every other
/// replica says it does not lead and exports none. Panics if two say they lead at once.
async fn settled_leader(replicas: &[Replica], expected: usize) -> Option<usize> {
    let scrapes = scrape_all(replicas).await;
    let leaders: Vec<usize> = scrapes
        .iter()
        .enumerate()
        .filter(|(_, s)| s.as_ref().and_then(|s| s.leader) == Some(true))
        .map(|(i, _)| i)
        .collect();
    assert!(leaders.len() <= 1, "two replicas lead at once: {scrapes:?}");
    let leader = *leaders.first()?;
    let ok = scrapes.iter().enumerate().all(|(i, s)| {
        let Some(s) = s else { return false };
        if i == leader {
            s.objects.len() == expected && !s.ready_false
        } else {
            s.leader == Some(false) && s.objects.is_empty()
        }
    });
    ok.then_some(leader)
}

async fn wait_for_settled_leader(replicas: &[Replica], expected: usize, what: &str) -> usize {
    let found = std::sync::Mutex::new(None);
    let result = eventually(what, || async {
        let l = settled_leader(replicas, expected).await;
        *found.lock().unwrap() = l;
        l.is_some()
    })
    .await;
    if let Err(e) = result {
        for r in replicas {
            eprintln!("--- {} ---\n{}", r.name, r.logs());
        }
        panic!("{e}: {:?}", scrape_all(replicas).await);
    }
    found.into_inner().unwrap().unwrap()
}

struct Env {
    cluster: TestCluster,
    ess: Api<ExternalSecret>,
}

async fn env() -> Env {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let params = PatchParams::apply(TEST_MANAGER).force();
    let store: SecretStore = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "fake", "namespace": ns},
        "spec": {"provider": {"fake": {"data": [{"key": "k", "value": "v"}]}}}
    }))
    .unwrap();
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), &ns);
    stores
        .patch("fake", &params, &Patch::Apply(&store))
        .await
        .unwrap();
    let ess: Api<ExternalSecret> = Api::namespaced(client, &ns);
    for i in 0..OBJECTS {
        let name = format!("es-{i}");
        let es: ExternalSecret = serde_json::from_value(json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "secretStoreRef": {"name": "fake"},
                "refreshInterval": "1h",
                "target": {"name": format!("secret-{i}")},
                "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]
            }
        }))
        .unwrap();
        ess.patch(&name, &params, &Patch::Apply(&es)).await.unwrap();
    }
    Env { cluster, ess }
}

async fn all_ready(ess: &Api<ExternalSecret>) -> bool {
    let Ok(list) = ess.list(&Default::default()).await else {
        return false;
    };
    list.items.len() == OBJECTS
        && list.items.iter().all(|es| {
            es.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status.as_str() == "True")
            })
        })
}

/// (time, replica) of every reconcile the replicas logged, in time order.
fn reconciles(replicas: &[&Replica]) -> Vec<(k8s_openapi::jiff::Timestamp, String)> {
    let mut all = Vec::new();
    for r in replicas {
        for line in r.logs().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["fields"]["message"] != "reconciled" {
                continue;
            }
            let at = v["timestamp"].as_str().unwrap().parse().unwrap();
            assert!(
                v["fields"]["instance"]
                    .as_str()
                    .unwrap()
                    .starts_with(&r.name),
                "reconcile logged without this process's identity: {line}"
            );
            all.push((at, r.name.clone()));
        }
    }
    all.sort();
    all
}

/// Reconciles of different processes never interleave: each process's reconciles form one
/// block in time (one leadership term each in these tests).
fn assert_reconciles_never_interleave(replicas: &[&Replica]) {
    let all = reconciles(replicas);
    assert!(!all.is_empty(), "no reconcile was logged");
    let mut blocks: Vec<&str> = Vec::new();
    for (_, who) in &all {
        if blocks.last() != Some(&who.as_str()) {
            assert!(
                !blocks.contains(&who.as_str()),
                "reconciles of {who} interleave with another process's: {all:?}"
            );
            blocks.push(who);
        }
    }
}

/// Replaces every ExternalSecret with a full PUT (as `kubectl replace`) while scraping every
/// replica each 250 ms for `watch`: no scrape may show `Ready=False` (every stored status is
/// Ready), and the series stay with the leader only.
async fn replace_all_while_scraping(
    ess: &Api<ExternalSecret>,
    replicas: &[Replica],
    watch: Duration,
) {
    for es in ess.list(&Default::default()).await.unwrap().items {
        let mut fresh = es.clone();
        fresh.status = None;
        fresh.metadata.managed_fields = None;
        ess.replace(
            &es.metadata.name.clone().unwrap(),
            &Default::default(),
            &fresh,
        )
        .await
        .unwrap();
    }
    let until = tokio::time::Instant::now() + watch;
    while tokio::time::Instant::now() < until {
        let scrapes = scrape_all(replicas).await;
        assert!(
            scrapes.iter().flatten().all(|s| !s.ready_false),
            "a replica exported Ready=False for a Ready ExternalSecret: {scrapes:?}"
        );
        let exporting = scrapes
            .iter()
            .flatten()
            .filter(|s| !s.objects.is_empty())
            .count();
        assert!(
            exporting <= 1,
            "several replicas export per-object series: {scrapes:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn sigterm(replica: &mut Replica) -> std::process::ExitStatus {
    let pid = replica.child.id().unwrap().to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(20), replica.child.wait())
        .await
        .expect("the operator exits after SIGTERM")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_exports_series_and_hands_over_on_kill_and_sigterm() {
    let env = env().await;
    let mut replicas: Vec<Replica> = ["r0", "r1", "r2"]
        .iter()
        .map(|n| Replica::start(&env.cluster, n))
        .collect();
    eventually("every ExternalSecret to be Ready", || all_ready(&env.ess))
        .await
        .unwrap();
    let leader =
        wait_for_settled_leader(&replicas, OBJECTS, "one leader exporting all series").await;
    replace_all_while_scraping(&env.ess, &replicas, Duration::from_secs(3)).await;
    assert!(all_ready(&env.ess).await);

    // Deleting an ExternalSecret removes its series from the leader's scrape.
    env.ess
        .delete("es-0", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_settled_leader(&replicas, OBJECTS - 1, "the deleted object's series to go").await;

    // kill -9 of the leader: another replica leads and exports every series.
    let mut killed = replicas.remove(leader);
    killed.child.kill().await.unwrap();
    let leader =
        wait_for_settled_leader(&replicas, OBJECTS - 1, "a new leader after kill -9").await;
    assert!(replicas.iter_mut().all(Replica::running));

    // SIGTERM of the leader: it exits cleanly and the last replica takes over.
    let mut stopped = replicas.remove(leader);
    let status = sigterm(&mut stopped).await;
    assert!(status.success(), "exit status {status}: {}", stopped.logs());
    assert!(
        stopped.logs().contains("released the lease"),
        "{}",
        stopped.logs()
    );
    wait_for_settled_leader(
        &replicas,
        OBJECTS - 1,
        "the last replica to lead after SIGTERM",
    )
    .await;
    // The last leader's reconciles (of its takeover) are logged once its term started.
    eventually("the last leader to reconcile", || async {
        reconciles(&[&replicas[0]]).len() >= OBJECTS - 1
    })
    .await
    .unwrap();
    assert_reconciles_never_interleave(&[&killed, &stopped, &replicas[0]]);

    drop(replicas);
    env.cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_steps_down_without_exiting_during_an_api_server_outage() {
    let env = env().await;
    if env.cluster.server().is_none() {
        return; // Cannot stop a real cluster's API server.
    }
    let mut replicas: Vec<Replica> = ["r0", "r1"]
        .iter()
        .map(|n| Replica::start(&env.cluster, n))
        .collect();
    eventually("every ExternalSecret to be Ready", || all_ready(&env.ess))
        .await
        .unwrap();
    wait_for_settled_leader(&replicas, OBJECTS, "one leader").await;

    let server = env.cluster.server().unwrap();
    server.stop().await;
    eventually("the leader to step down", || async {
        let scrapes = scrape_all(&replicas).await;
        scrapes.iter().all(|s| {
            s.as_ref()
                .is_some_and(|s| s.leader == Some(false) && s.objects.is_empty())
        })
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        replicas.iter_mut().all(Replica::running),
        "a replica exited"
    );
    server.restart().await.unwrap();
    wait_for_settled_leader(&replicas, OBJECTS, "a leader after the outage").await;
    assert!(all_ready(&env.ess).await);

    drop(replicas);
    env.cluster.cleanup().await.unwrap();
}
