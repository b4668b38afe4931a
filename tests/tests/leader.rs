//! Leader election through the harness: several `LeaseManager`s in one process campaign for
//! one Lease (the in-process test API server, or a real cluster when ESO_TEST_KUBECONFIG names a
//! kubeconfig; the fault-injection tests skip themselves there).
//!
//! A sampler checks every few milliseconds, for the whole test, that no two managers publish
//! leadership at once. Waits have upper bounds only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use eso_leader::{LeaseConfig, LeaseManager, LeaseRecord};
use eso_test_apiserver::Fault;
use eso_tests::{TestCluster, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::sync::{oneshot, watch};

const LEASE: &str = "eso-test-leader";

/// Short timings so the tests run in seconds; the ordering is the default's.
fn fast() -> LeaseConfig {
    LeaseConfig::default()
        .name(LEASE)
        .lease_duration(Duration::from_secs(3))
        .renew_deadline(Duration::from_secs(2))
        .retry_period(Duration::from_millis(250))
}

struct Member {
    identity: String,
    leading: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Member {
    fn start(cluster: &TestCluster, identity: &str, config: LeaseConfig) -> Self {
        let manager =
            LeaseManager::new(cluster.client(), cluster.namespace(), identity, config).unwrap();
        let leading = manager.subscribe();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(manager.run(async move {
            let _ = rx.await;
        }));
        Self {
            identity: identity.to_owned(),
            leading,
            stop: Some(tx),
            task,
        }
    }

    fn leads(&self) -> bool {
        *self.leading.borrow()
    }

    /// Graceful shutdown: stop leading and release the Lease.
    async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the manager finishes its shutdown")
            .unwrap();
    }

    /// A crash: the task is gone without releasing anything.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A group of members and a sampler that records whether two ever led at once.
struct Group {
    members: Vec<Member>,
    overlap: Arc<AtomicBool>,
    samples: Arc<AtomicUsize>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Group {
    fn start(cluster: &TestCluster, identities: &[&str], config: &LeaseConfig) -> Self {
        let members: Vec<Member> = identities
            .iter()
            .map(|id| Member::start(cluster, id, config.clone()))
            .collect();
        let receivers: Vec<watch::Receiver<bool>> =
            members.iter().map(|m| m.leading.clone()).collect();
        let overlap = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(AtomicUsize::new(0));
        let (o, s) = (overlap.clone(), samples.clone());
        let sampler = tokio::spawn(async move {
            loop {
                let leaders = receivers.iter().filter(|r| *r.borrow()).count();
                if leaders > 1 {
                    o.store(true, Ordering::SeqCst);
                }
                s.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self {
            members,
            overlap,
            samples,
            sampler,
        }
    }

    fn leader(&self) -> Option<usize> {
        self.members.iter().position(Member::leads)
    }

    async fn wait_for_leader(&self, what: &str) -> usize {
        eventually(what, || async { self.leader().is_some() })
            .await
            .unwrap();
        self.leader().unwrap()
    }

    fn assert_never_two_leaders(&self) {
        assert!(
            self.samples.load(Ordering::Relaxed) > 10,
            "the sampler did not run"
        );
        assert!(
            !self.overlap.load(Ordering::SeqCst),
            "two managers led at the same time"
        );
    }

    async fn shutdown(mut self) {
        self.assert_never_two_leaders();
        self.sampler.abort();
        for m in self.members.drain(..) {
            m.shutdown().await;
        }
    }
}

async fn lease(cluster: &TestCluster) -> LeaseRecord {
    let api: Api<Lease> = Api::namespaced(cluster.client(), cluster.namespace());
    let lease = api.get(LEASE).await.unwrap();
    LeaseRecord::from_spec(&lease.spec.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_candidates_elect_exactly_one_leader_recorded_in_the_lease() {
    let cluster = TestCluster::new().await.unwrap();
    let group = Group::start(&cluster, &["a", "b", "c"], &fast());
    let leader = group.wait_for_leader("a leader").await;
    // Several renewals later it is still the same single leader.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(group.leader(), Some(leader));
    let record = lease(&cluster).await;
    assert_eq!(record.holder, group.members[leader].identity);
    assert_eq!(record.lease_duration_seconds, 3);
    assert!(record.acquire_time.is_some() && record.renew_time > record.acquire_time);
    group.shutdown().await;
    cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_that_stops_renewing_is_replaced_after_the_lease_expires() {
    let cluster = TestCluster::new().await.unwrap();
    let mut group = Group::start(&cluster, &["a", "b", "c"], &fast());
    let first = group.wait_for_leader("a first leader").await;
    let before = lease(&cluster).await;
    let crashed = group.members.remove(first);
    let crashed_id = crashed.identity.clone();
    crashed.kill().await;
    let next = group.wait_for_leader("a new leader after the crash").await;
    assert_ne!(group.members[next].identity, crashed_id);
    let after = lease(&cluster).await;
    assert_eq!(after.holder, group.members[next].identity);
    assert_eq!(after.transitions, before.transitions + 1);
    assert!(after.acquire_time > before.acquire_time);
    group.shutdown().await;
    cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_lease_is_taken_over_without_waiting_for_expiry() {
    let cluster = TestCluster::new().await.unwrap();
    // A lease long enough that a handover within the wait bound proves the release.
    let config = fast()
        .lease_duration(Duration::from_secs(60))
        .renew_deadline(Duration::from_secs(40));
    let mut group = Group::start(&cluster, &["a", "b"], &config);
    let first = group.wait_for_leader("a first leader").await;
    let leaving = group.members.remove(first);
    let leaving_rx = leaving.leading.clone();
    leaving.shutdown().await;
    assert!(!*leaving_rx.borrow(), "a stopped manager does not lead");
    let started = tokio::time::Instant::now();
    group.wait_for_leader("the standby to take over").await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the standby waited for expiry instead of taking the released lease"
    );
    group.shutdown().await;
    cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_empties_the_holder_and_keeps_the_transition_count() {
    let cluster = TestCluster::new().await.unwrap();
    let member = Member::start(&cluster, "solo", fast());
    eventually("solo to lead", || async { member.leads() })
        .await
        .unwrap();
    let held = lease(&cluster).await;
    assert_eq!(held.holder, "solo");
    member.shutdown().await;
    let released = lease(&cluster).await;
    assert_eq!(released.holder, "");
    assert_eq!(released.lease_duration_seconds, 1);
    assert_eq!(released.transitions, held.transitions);
    cluster.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_steps_down_without_exiting_while_the_api_server_is_down() {
    let cluster = TestCluster::restartable().await.unwrap();
    let group = Group::start(&cluster, &["a", "b", "c"], &fast());
    group.wait_for_leader("a first leader").await;
    cluster.stop_api_server().await.unwrap();
    eventually("the leader to step down", || async {
        group.leader().is_none()
    })
    .await
    .unwrap();
    // Still campaigning: nobody exited.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(group.members.iter().all(|m| !m.task.is_finished()));
    assert_eq!(group.leader(), None);
    cluster.start_api_server().await.unwrap();
    group.wait_for_leader("a leader after the restart").await;
    group.shutdown().await;
    cluster.cleanup().await.unwrap();
}

/// Tests that need the in-process server's fault injection or compaction: the first CI lane
/// runs them; the real-cluster lane skips `in_process::` (see `.ci/run`).
mod in_process {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lost_write_race_rereads_and_keeps_leading() {
        let cluster = TestCluster::in_process().await.unwrap();
        let server = cluster.server().unwrap();
        let member = Member::start(&cluster, "solo", fast());
        let mut leading = member.leading.clone();
        eventually("solo to lead", || async { member.leads() })
            .await
            .unwrap();
        leading.borrow_and_update();
        // The next two renewals get 409 as if another writer had won; each time the manager reads
        // again and decides again, renewing at once instead of stepping down.
        server.inject(
            Fault::status(409)
                .verb("update")
                .resource("leases")
                .times(2),
        );
        eventually("the conflicts to be consumed", || async {
            server.pending_faults() == 0
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(member.leads());
        assert!(
            !leading.has_changed().unwrap(),
            "leadership flickered on a conflict"
        );
        member.shutdown().await;
        cluster.cleanup().await.unwrap();
    }
}
