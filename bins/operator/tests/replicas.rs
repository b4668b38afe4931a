//! Three `eso-operator` processes against one cluster: the behaviour issue 6 requires of a
//! multi-replica deployment, end to end.
//!
//! The cluster is the in-process test API server, or the real cluster `ESO_TEST_KUBECONFIG`
//! names; the tests run unchanged on both. The outage test stops the API server: on the real
//! lane it gets a control plane of its own (`TestCluster::restartable`) and stops that
//! kube-apiserver process. One test needs the in-process server's fault injection
//! (`in_process::`).
//!
//! Timings are shortened with the leader election flags (lease 6 s, renew deadline 4 s, retry
//! 250 ms). Waits have generous upper bounds: they check behaviour, the benchmark
//! `benches/failover.rs` measures it. `ESO_E2E_OUTAGE_SECS` sets how long the API server is
//! down in the outage test (default 12 s, two lease durations; the figure is 30 s).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eso_api::ExternalSecret;
use eso_test_apiserver::Fault;
use eso_tests::{TestCluster, install_crds};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use support::{
    LeaseWatch, Replica, Scrape, Timings, apply_es, assert_reconciles_never_overlap, create_store,
    external_secret, is_ready, parse, ready_count, secret_synced, until,
};

const T: Timings = Timings::SHORT;
/// How often the upstream scenario scrapes every replica.
const SCRAPE_EVERY: Duration = Duration::from_millis(250);

/// Slack on top of every protocol bound: three debug-build processes share two cores with the
/// test and the API server.
const SLACK: Duration = Duration::from_secs(5);

/// The test's cluster, its ExternalSecrets and Secrets, and three replicas.
struct Fleet {
    cluster: TestCluster,
    ess: Api<ExternalSecret>,
    secrets: Api<Secret>,
    replicas: Vec<Replica>,
    /// Replicas that were stopped, kept for their logs.
    gone: Vec<Replica>,
    lease: LeaseWatch,
}

impl Fleet {
    /// A fresh namespace with the CRDs, a fake store and `n` ExternalSecrets refreshing every
    /// `refresh`, three replicas, and a watch on their Lease. Returns once one replica holds
    /// the Lease and every ExternalSecret is Ready.
    async fn start(n: usize, refresh: &str) -> Self {
        Self::start_on(TestCluster::new().await.unwrap(), n, refresh).await
    }

    /// [`start`](Self::start) on the given cluster.
    async fn start_on(cluster: TestCluster, n: usize, refresh: &str) -> Self {
        install_crds(&cluster.client()).await.unwrap();
        create_store(&cluster).await;
        let ns = cluster.namespace().to_owned();
        let ess: Api<ExternalSecret> = Api::namespaced(cluster.client(), &ns);
        let secrets: Api<Secret> = Api::namespaced(cluster.client(), &ns);
        for i in 0..n {
            apply_es(&ess, &external_secret(&ns, &format!("es-{i}"), refresh)).await;
        }
        let lease = LeaseWatch::start(&cluster);
        let mut replicas: Vec<Replica> = ["r0", "r1", "r2"]
            .iter()
            .map(|name| Replica::start(&cluster, name, T))
            .collect();
        // Every replica is past its start-up (which exits when the API server cannot be
        // reached, for the kubelet to restart it).
        let deadline = Instant::now() + Duration::from_secs(30);
        for r in &mut replicas {
            while r.scrape().await.is_none() {
                assert!(
                    Instant::now() < deadline,
                    "{} never served /metrics",
                    r.name
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let fleet = Self {
            cluster,
            ess,
            secrets,
            replicas,
            gone: Vec::new(),
            lease,
        };
        fleet
            .lease
            .wait_for_holder(Duration::from_secs(30), "a first leader", |h| h.is_some())
            .await;
        fleet.all_ready(n, "every ExternalSecret to be Ready").await;
        fleet
    }

    async fn all_ready(&self, n: usize, what: &str) {
        let ess = &self.ess;
        until(Duration::from_secs(60), what, || async move {
            ready_count(ess).await == n
        })
        .await;
    }

    /// The index of the replica holding the Lease now.
    fn leader(&self) -> usize {
        let holder = self
            .lease
            .current_holder()
            .expect("someone holds the Lease");
        self.replicas
            .iter()
            .position(|r| r.is(&holder))
            .unwrap_or_else(|| panic!("the Lease holder {holder} is not a running replica"))
    }

    /// Waits until a running replica other than `old` (a Lease identity) holds the Lease;
    /// returns when that change arrived.
    async fn new_holder(&self, old: &str, bound: Duration, what: &str) -> Instant {
        let names: Vec<String> = self.replicas.iter().map(|r| r.name.clone()).collect();
        let (_, at) = self
            .lease
            .wait_for_holder(bound, what, |h| {
                h.is_some_and(|h| {
                    h != old
                        && names.iter().any(|n| {
                            h.strip_prefix(n.as_str())
                                .is_some_and(|r| r.starts_with('_'))
                        })
                })
            })
            .await;
        at
    }

    /// A new ExternalSecret gets its Secret (someone leads and reconciles).
    async fn converges(&self, name: &str) {
        let ns = self.cluster.namespace();
        apply_es(&self.ess, &external_secret(ns, name, "1h")).await;
        let secrets = &self.secrets;
        until(
            Duration::from_secs(30),
            &format!("the Secret of the new ExternalSecret {name}"),
            || secret_synced(secrets, name),
        )
        .await;
    }

    fn all_replicas(&self) -> Vec<&Replica> {
        self.replicas.iter().chain(&self.gone).collect()
    }

    /// Stops every replica with SIGTERM, checks no two processes ever reconciled at once,
    /// and removes the namespace or server.
    async fn finish(mut self) -> (usize, usize) {
        for r in &mut self.replicas {
            let status = r.sigterm().await;
            assert!(status.success(), "{} exited with {status}", r.name);
        }
        let counts = assert_reconciles_never_overlap(&self.all_replicas());
        let Self {
            cluster,
            replicas,
            gone,
            lease,
            ..
        } = self;
        drop((replicas, gone, lease));
        cluster.cleanup().await.unwrap();
        counts
    }
}

/// Scenario a: reconciles run continuously (20 objects refreshing every second) across a
/// SIGTERM handover and a kill -9 failover; no two processes' reconciles ever overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_of_different_processes_never_overlap_across_handovers() {
    let mut fleet = Fleet::start(20, "1s").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let leader = fleet.leader();
    let old = fleet.lease.current_holder().unwrap();
    let mut stopped = fleet.replicas.remove(leader);
    stopped.send_sigterm().await;
    fleet
        .new_holder(&old, T.lease + SLACK, "a new leader after SIGTERM")
        .await;
    assert!(stopped.sigterm().await.success());
    fleet.gone.push(stopped);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let leader = fleet.leader();
    let old = fleet.lease.current_holder().unwrap();
    let mut killed = fleet.replicas.remove(leader);
    killed.kill9().await;
    fleet.gone.push(killed);
    fleet
        .new_holder(
            &old,
            T.lease + T.retry + SLACK,
            "a new leader after kill -9",
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    fleet
        .all_ready(20, "every ExternalSecret Ready after the handovers")
        .await;

    let (processes, reconciles) = fleet.finish().await;
    // Three terms, each with refreshes every second: the check above compared real work.
    assert_eq!(processes, 3, "every leader of the run reconciled");
    assert!(reconciles >= 40, "only {reconciles} reconciles were logged");
}

/// Scenario b: kill -9 of the leader hands over within lease duration + retry period (plus
/// slack) and the new leader converges; SIGTERM of the leader empties the Lease's
/// holderIdentity and another replica leads within 3 s, well before the lease would expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_on_kill_and_handover_on_sigterm() {
    let mut fleet = Fleet::start(3, "1h").await;

    let leader = fleet.leader();
    let old = fleet.lease.current_holder().unwrap();
    let mut killed = fleet.replicas.remove(leader);
    killed.kill9().await;
    let killed_at = Instant::now();
    fleet.gone.push(killed);
    let took_over = fleet
        .new_holder(
            &old,
            T.lease + T.retry + SLACK,
            "a new leader after kill -9",
        )
        .await;
    eprintln!("kill -9 failover: {:?}", took_over - killed_at);
    fleet.converges("after-kill").await;
    assert!(fleet.replicas.iter_mut().all(Replica::running));

    let leader = fleet.leader();
    let old = fleet.lease.current_holder().unwrap();
    let mut stopped = fleet.replicas.remove(leader);
    let seen_before = fleet.lease.writes();
    let term_at = Instant::now();
    let status = stopped.sigterm().await;
    assert!(status.success(), "exit status {status}: {}", stopped.logs());
    let took_over = fleet
        .new_holder(
            &old,
            Duration::from_secs(3),
            "a new leader within 3 s of SIGTERM",
        )
        .await;
    eprintln!("SIGTERM handover: {:?}", took_over - term_at);
    // The stopping leader released the Lease: the version after its last renewal has no
    // holder, and the next one is the new leader.
    let history = fleet.lease.snapshot();
    let since: Vec<_> = history[seen_before.saturating_sub(1)..]
        .iter()
        .map(|e| e.holder.clone())
        .collect();
    let released = since
        .windows(2)
        .any(|w| w[0].as_deref() == Some(old.as_str()) && w[1].is_none());
    assert!(released, "holderIdentity was never emptied: {since:?}");
    assert!(stopped.logs().contains("released the lease"));
    fleet.gone.push(stopped);
    fleet.converges("after-sigterm").await;

    fleet.finish().await;
}

/// Scenario c: the API server is unreachable for longer than the lease: the leader steps
/// down without exiting, every replica survives, one leads again, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_steps_down_without_exiting_while_the_api_server_is_away() {
    let mut fleet = Fleet::start_on(TestCluster::restartable().await.unwrap(), 5, "1h").await;
    let leader = fleet.leader();

    let outage = std::env::var("ESO_E2E_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(T.lease * 2, Duration::from_secs);
    fleet.cluster.stop_api_server().await.unwrap();
    let down_at = Instant::now();
    // Within the renew deadline (plus slack) the leader says it no longer leads, and no
    // replica exports per-object series.
    let bound = T.renew + SLACK;
    loop {
        let scrapes = scrape_all(&mut fleet.replicas).await;
        let stepped_down = scrapes.iter().all(|s| {
            s.as_ref()
                .is_some_and(|s| s.leader == Some(false) && s.objects.is_empty())
        });
        if stepped_down {
            break;
        }
        assert!(
            down_at.elapsed() < bound,
            "the leader did not step down within {bound:?}: {scrapes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stepped_down = fleet.replicas[leader]
        .records()
        .iter()
        .any(|r| r["fields"]["message"] == "stopped leading");
    assert!(stepped_down, "{}", fleet.replicas[leader].logs());
    tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
    assert!(
        fleet.replicas.iter_mut().all(Replica::running),
        "a replica exited during the outage"
    );
    fleet.cluster.start_api_server().await.unwrap();
    // A fresh watch (the old one may sit in its reconnect backoff) starts from the Lease as
    // stored; a version written after that shows someone leads and renews.
    fleet.lease = LeaseWatch::start(&fleet.cluster);
    fleet
        .lease
        .wait_for_holder(T.lease + SLACK, "a leader after the outage", |h| {
            h.is_some()
        })
        .await;
    let written = fleet.lease.writes();
    until(
        T.lease + SLACK,
        "a Lease write after the outage",
        || async { fleet.lease.writes() > written },
    )
    .await;

    fleet.converges("after-outage").await;
    fleet
        .all_ready(6, "every ExternalSecret Ready after the outage")
        .await;
    for i in 0..5 {
        assert!(secret_synced(&fleet.secrets, &format!("es-{i}")).await);
    }
    assert!(fleet.replicas.iter_mut().all(Replica::running));
    fleet.finish().await;
}

/// One scrape of each replica, in order (`None`: it did not answer).
async fn scrape_all(replicas: &mut [Replica]) -> Vec<Option<Scrape>> {
    let mut out = Vec::new();
    for r in replicas {
        out.push(r.scrape().await.map(|t| parse(&t)));
    }
    out
}

/// The stored Ready state of every ExternalSecret, kept by a watch.
fn watch_stored_ready(
    ess: Api<ExternalSecret>,
) -> (
    Arc<Mutex<BTreeMap<String, bool>>>,
    tokio::task::JoinHandle<()>,
) {
    let map: Arc<Mutex<BTreeMap<String, bool>>> = Arc::default();
    let sink = map.clone();
    let task = tokio::spawn(async move {
        let stream = watcher(ess, watcher::Config::default())
            .default_backoff()
            .touched_objects();
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Ok(es) = item {
                let name = es.metadata.name.clone().unwrap_or_default();
                sink.lock().unwrap().insert(name, is_ready(&es));
            }
        }
    });
    (map, task)
}

/// Scenario d, upstream's failure: 50 ExternalSecrets Ready, each replaced with a full PUT
/// (as `kubectl replace`, with a changed spec and no status); every replica scraped every
/// 250 ms for twice the refresh interval. No scrape shows Ready=False for an object whose
/// stored status is Ready; the leader exports all 50, the standbys none; after a kill -9
/// failover the new leader exports all 50 within a scrape interval (plus slack) of taking
/// over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_stored_status_after_replace_and_failover() {
    const N: usize = 50;
    let refresh = Duration::from_secs(5);
    let mut fleet = Fleet::start(N, "5s").await;
    let (stored, stored_task) = watch_stored_ready(fleet.ess.clone());

    for es in fleet.ess.list(&Default::default()).await.unwrap().items {
        let mut fresh = es.clone();
        fresh.status = None;
        fresh.metadata.managed_fields = None;
        fresh.spec.data.push(
            serde_json::from_value(serde_json::json!(
                {"secretKey": "k2", "remoteRef": {"key": "k2"}}
            ))
            .unwrap(),
        );
        let name = es.metadata.name.clone().unwrap();
        fleet
            .ess
            .replace(&name, &Default::default(), &fresh)
            .await
            .unwrap();
    }

    let until_at = Instant::now() + refresh * 2;
    let mut rounds = 0;
    while Instant::now() < until_at {
        let before = stored.lock().unwrap().clone();
        let scrapes = scrape_all(&mut fleet.replicas).await;
        let after = stored.lock().unwrap().clone();
        for (r, s) in fleet.replicas.iter().zip(&scrapes) {
            let s = s
                .as_ref()
                .unwrap_or_else(|| panic!("{} did not answer /metrics", r.name));
            for name in &s.ready_false {
                let ready_throughout =
                    before.get(name) == Some(&true) && after.get(name) == Some(&true);
                assert!(
                    !ready_throughout,
                    "{} exported Ready=False for {name}, whose stored status is Ready",
                    r.name
                );
            }
            match s.leader {
                Some(true) => assert_eq!(
                    s.objects.len(),
                    N,
                    "the leader {} exports {:?}",
                    r.name,
                    s.objects
                ),
                Some(false) => assert!(
                    s.objects.is_empty(),
                    "standby {} exports {:?}",
                    r.name,
                    s.objects
                ),
                None => panic!("{} exports no leadership gauge", r.name),
            }
        }
        assert_eq!(
            scrapes
                .iter()
                .flatten()
                .filter(|s| s.leader == Some(true))
                .count(),
            1,
            "exactly one replica says it leads: {:?}",
            scrapes
                .iter()
                .flatten()
                .map(|s| s.leader)
                .collect::<Vec<_>>()
        );
        rounds += 1;
        tokio::time::sleep(SCRAPE_EVERY).await;
    }
    assert!(rounds >= 10, "only {rounds} scrape rounds");
    // Every replacement was synced (the new key is in every Secret).
    let secrets = fleet.secrets.clone();
    until(Duration::from_secs(30), "every Secret to carry k2", || {
        let secrets = secrets.clone();
        async move {
            let Ok(list) = secrets.list(&Default::default()).await else {
                return false;
            };
            list.items
                .iter()
                .filter(|s| s.data.as_ref().is_some_and(|d| d.contains_key("k2")))
                .count()
                == N
        }
    })
    .await;

    // Failover: the first scrape in which a survivor says it leads is its takeover; within
    // one scrape interval (plus slack) it exports all 50.
    let leader = fleet.leader();
    let mut killed = fleet.replicas.remove(leader);
    killed.kill9().await;
    fleet.gone.push(killed);
    let deadline = Instant::now() + T.lease + T.retry + SLACK;
    let mut took_over: Option<Instant> = None;
    loop {
        let scrapes = scrape_all(&mut fleet.replicas).await;
        let exporting = scrapes
            .iter()
            .flatten()
            .filter(|s| !s.objects.is_empty())
            .count();
        assert!(
            exporting <= 1,
            "several replicas export series: {scrapes:?}"
        );
        let leading: Vec<&Scrape> = scrapes
            .iter()
            .flatten()
            .filter(|s| s.leader == Some(true))
            .collect();
        assert!(leading.len() <= 1, "two replicas lead at once");
        if let Some(s) = leading.first() {
            let first = *took_over.get_or_insert_with(Instant::now);
            if s.objects.len() == N {
                assert!(s.ready_false.is_empty(), "{:?}", s.ready_false);
                break;
            }
            assert!(
                first.elapsed() <= SCRAPE_EVERY + Duration::from_secs(1),
                "the new leader exports {} of {N} series {:?} after taking over",
                s.objects.len(),
                first.elapsed()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no replica took over: {scrapes:?}"
        );
        tokio::time::sleep(SCRAPE_EVERY).await;
    }
    stored_task.abort();
    fleet.finish().await;
}

/// Scenario e: deleting an ExternalSecret removes every series naming it from the leader's
/// next scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_external_secret_removes_its_series_from_the_next_scrape() {
    let mut fleet = Fleet::start(3, "1h").await;
    let leader = fleet.leader();
    let ns = fleet.cluster.namespace().to_owned();
    let names = |name: &str| format!("name=\"{name}\",namespace=\"{ns}\"");
    let mentions = |s: &Scrape, name: &str| {
        s.text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&names(name)))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Stored status says Ready before the leader has recorded the reconcile's series (they
    // are written after the status patch returns) and before its watch shows that status:
    // wait for the series to be there before deleting.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = fleet.replicas[leader]
            .scrape()
            .await
            .map(|t| parse(&t))
            .unwrap();
        if !mentions(&scrape, "es-0").is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no series names es-0 10 s after it was Ready: {}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fleet
        .ess
        .delete("es-0", &DeleteParams::default())
        .await
        .unwrap();
    let ess = fleet.ess.clone();
    until(Duration::from_secs(30), "es-0 to be gone", || {
        let ess = ess.clone();
        async move { matches!(ess.get_opt("es-0").await, Ok(None)) }
    })
    .await;
    tokio::time::sleep(SCRAPE_EVERY).await;
    let scrape = fleet.replicas[leader]
        .scrape()
        .await
        .map(|t| parse(&t))
        .unwrap();
    assert_eq!(scrape.leader, Some(true));
    assert_eq!(scrape.objects.len(), 2, "{:?}", scrape.objects);
    let left = mentions(&scrape, "es-0");
    assert!(
        left.is_empty(),
        "series of the deleted es-0 remain: {left:#?}"
    );
    // The others keep theirs.
    assert!(!mentions(&scrape, "es-1").is_empty());
    fleet.finish().await;
}

/// Needs the in-process server's fault injection; the real-cluster lane skips `in_process::`
/// (see `.ci/run`).
mod in_process {
    use super::*;

    /// A term that ends before its controllers' caches are ready still ends: a new leader
    /// whose SecretStore list hangs exits on SIGTERM (kube-runtime's graceful shutdown alone
    /// would wait for that cache forever).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_term_that_ends_before_its_caches_are_ready_still_ends() {
        let mut fleet = Fleet::start_on(TestCluster::in_process().await.unwrap(), 3, "1h").await;
        let server = fleet.cluster.server().unwrap();
        server.inject(
            Fault::hang()
                .verb("list")
                .resource("secretstores")
                .times(100),
        );
        let old = fleet.lease.current_holder().unwrap();
        let leader = fleet.leader();
        let mut stopped = fleet.replicas.remove(leader);
        assert!(stopped.sigterm().await.success());
        fleet.gone.push(stopped);
        fleet
            .new_holder(&old, Duration::from_secs(3), "a standby to lead")
            .await;
        let next = fleet.leader();
        let new_leader = &fleet.replicas[next];
        until(
            Duration::from_secs(10),
            "the new leader to start its reconcilers",
            || async { new_leader.logs().contains("starting reconcilers") },
        )
        .await;
        let mut ended = fleet.replicas.remove(next);
        let status = ended.sigterm().await;
        assert!(status.success(), "exit status {status}: {}", ended.logs());
        fleet.gone.push(ended);
        server.clear_faults();
        fleet.finish().await;
    }
}
