//! Failover of three `eso-operator` processes against the in-process test API server.
//!
//! Reports, over `ESO_BENCH_RUNS` runs (default 20) each of `kill -9` and SIGTERM of the
//! leader: the time from the signal until another replica holds the Lease, and until it has
//! also reconciled an ExternalSecret created right after the signal (its Secret exists);
//! p50/p99/max. Then the Lease writes per minute in steady state, counted by a watch on the
//! Lease over `ESO_BENCH_WINDOW_SECS` (default 60) and scaled to a minute.
//!
//! Timings: `ESO_BENCH_LEASE`, `ESO_BENCH_RENEW`, `ESO_BENCH_RETRY` (Go durations; default
//! upstream's 15s / 10s / 2s).
//!
//! Run: `cargo bench -p eso-operator --bench failover`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use eso_api::ExternalSecret;
use eso_tests::{TestCluster, install_crds};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use support::{LeaseWatch, Replica, Timings, apply_es, create_store, external_secret, until};

fn env_duration(name: &str, default: &str) -> Duration {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    eso_api::duration::parse_go_duration(&text)
        .unwrap_or_else(|e| panic!("{name}={text:?} is not a Go duration: {e}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<44} p50 {:>7.2} s   p99 {:>7.2} s   max {:>7.2} s   (n={})",
        percentile(&samples, 0.5).as_secs_f64(),
        percentile(&samples, 0.99).as_secs_f64(),
        samples.last().copied().unwrap_or_default().as_secs_f64(),
        samples.len()
    );
}

struct Bench {
    cluster: TestCluster,
    ess: Api<ExternalSecret>,
    secrets: Api<Secret>,
    lease: LeaseWatch,
    replicas: Vec<Replica>,
    timings: Timings,
    started: usize,
}

impl Bench {
    fn start_replica(&mut self) {
        let name = format!("r{}", self.started);
        self.started += 1;
        self.replicas
            .push(Replica::start(&self.cluster, &name, self.timings));
    }

    /// Three replicas up (their metrics endpoints answer, so their caches had time to fill),
    /// one of them holding the Lease and having renewed it at least once.
    async fn steady(&mut self) -> usize {
        while self.replicas.len() < 3 {
            self.start_replica();
        }
        for r in &mut self.replicas {
            let name = r.name.clone();
            let deadline = Instant::now() + Duration::from_secs(30);
            while r.scrape().await.is_none() {
                assert!(
                    Instant::now() < deadline,
                    "replica {name} never served /metrics"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let names: Vec<String> = self.replicas.iter().map(|r| r.name.clone()).collect();
        let is_running = |h: Option<&str>| {
            h.is_some_and(|h| {
                names.iter().any(|n| {
                    h.strip_prefix(n.as_str())
                        .is_some_and(|r| r.starts_with('_'))
                })
            })
        };
        self.lease
            .wait_for_holder(self.timings.lease * 3, "a running leader", is_running)
            .await;
        let written = self.lease.writes();
        until(self.timings.lease * 2, "a renewal", || async {
            self.lease.writes() > written
        })
        .await;
        // Let the newest replica's watches finish their initial list.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let holder = self.lease.current_holder().unwrap();
        self.replicas.iter().position(|r| r.is(&holder)).unwrap()
    }

    /// One failover: signal the leader, create an ExternalSecret, and time (until another
    /// replica holds the Lease, until that ExternalSecret's Secret exists too).
    async fn failover(&mut self, run: usize, kill: bool) -> (Duration, Duration) {
        let leader = self.steady().await;
        let old = self.lease.current_holder().unwrap();
        let mut victim = self.replicas.remove(leader);
        let names: Vec<String> = self.replicas.iter().map(|r| r.name.clone()).collect();
        let name = format!("fresh-{}-{run}", if kill { "kill" } else { "term" });
        let signalled = Instant::now();
        if kill {
            victim.kill9().await;
        } else {
            victim.send_sigterm().await;
        }
        apply_es(
            &self.ess,
            &external_secret(self.cluster.namespace(), &name, "1h"),
        )
        .await;
        let (_, took_over) = self
            .lease
            .wait_for_holder(self.timings.lease * 3, "a new leader", |h| {
                h.is_some_and(|h| {
                    h != old
                        && names.iter().any(|n| {
                            h.strip_prefix(n.as_str())
                                .is_some_and(|r| r.starts_with('_'))
                        })
                })
            })
            .await;
        let secrets = &self.secrets;
        let deadline = Instant::now() + self.timings.lease * 3;
        loop {
            if support::secret_synced(secrets, &name).await {
                break;
            }
            assert!(Instant::now() < deadline, "{name} was never synced");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let converged = signalled.elapsed();
        if !kill {
            assert!(victim.sigterm().await.success());
        }
        (took_over - signalled, converged.max(took_over - signalled))
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let runs: usize = std::env::var("ESO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let window = Duration::from_secs(
        std::env::var("ESO_BENCH_WINDOW_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let timings = Timings {
        lease: env_duration("ESO_BENCH_LEASE", "15s"),
        renew: env_duration("ESO_BENCH_RENEW", "10s"),
        retry: env_duration("ESO_BENCH_RETRY", "2s"),
    };
    println!("failover bench: 3 replicas, {timings:?}, {runs} runs each");

    let cluster = TestCluster::in_process().await.unwrap();
    install_crds(&cluster.client()).await.unwrap();
    create_store(&cluster).await;
    let ns = cluster.namespace().to_owned();
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client(), &ns);
    // Some steady work for the leader: 20 ExternalSecrets refreshing every 10 s.
    for i in 0..20 {
        apply_es(&ess, &external_secret(&ns, &format!("es-{i}"), "10s")).await;
    }
    let mut bench = Bench {
        secrets: Api::namespaced(cluster.client(), &ns),
        lease: LeaseWatch::start(&cluster),
        cluster,
        ess,
        replicas: Vec::new(),
        timings,
        started: 0,
    };

    // Steady state first: three fresh replicas, one leader.
    bench.steady().await;
    let before = bench.lease.writes();
    let from = Instant::now();
    tokio::time::sleep(window).await;
    let writes = bench.lease.writes() - before;
    let measured = from.elapsed();
    let per_minute = writes as f64 * 60.0 / measured.as_secs_f64();

    let mut kill = (Vec::new(), Vec::new());
    let mut term = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (lease, converged) = bench.failover(run, true).await;
        kill.0.push(lease);
        kill.1.push(converged);
        let (lease, converged) = bench.failover(run, false).await;
        term.0.push(lease);
        term.1.push(converged);
        eprintln!(
            "run {run}: kill -9 {:.2}/{:.2} s, SIGTERM {:.2}/{:.2} s",
            kill.0[run].as_secs_f64(),
            kill.1[run].as_secs_f64(),
            term.0[run].as_secs_f64(),
            term.1[run].as_secs_f64()
        );
    }
    report("kill -9: another replica holds the Lease", kill.0);
    report("kill -9: ... and a new ExternalSecret synced", kill.1);
    report("SIGTERM: another replica holds the Lease", term.0);
    report("SIGTERM: ... and a new ExternalSecret synced", term.1);
    println!(
        "steady state: {writes} Lease writes in {:.0} s = {per_minute:.1} per minute",
        measured.as_secs_f64()
    );

    let Bench {
        cluster, replicas, ..
    } = bench;
    drop(replicas);
    cluster.cleanup().await.unwrap();
}
