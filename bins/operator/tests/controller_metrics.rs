//! controller-runtime's standard controller and workqueue series on the operator's `/metrics`,
//! with upstream's names, labels and buckets (issue 17, part 4): one `eso-operator` process
//! against the test cluster (in-process, or the real one `ESO_TEST_KUBECONFIG` names), scraped
//! after it reconciled an ExternalSecret that syncs, one that syncs once, and one whose
//! provider read fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eso_api::ExternalSecret;
use eso_core::runtime_metrics::{RECONCILE_TIME_BUCKETS, WORKQUEUE_DURATION_BUCKETS};
use eso_tests::{TestCluster, install_crds};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::{Replica, Timings, apply_es, create_store, create_store_in, external_secret};

/// One exposition line: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (values without escapes suffice here).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| {
                    let (k, v) = kv.split_once("=\"")?;
                    Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            Some(Sample {
                name: name.to_owned(),
                labels,
                value,
            })
        })
        .collect()
}

struct Scraped(Vec<Sample>);

impl Scraped {
    /// Every sample of `name` carrying (at least) these labels.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one series of `name` with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self
            .find(name, labels)
            .into_iter()
            .filter(|s| s.labels.len() == labels.len())
            .collect();
        match found.as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }

    /// The `le` bounds of a histogram's series with these labels, `+Inf` last.
    fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.find(&format!("{name}_bucket"), labels)
            .iter()
            .map(|s| s.labels["le"].parse::<f64>().unwrap())
            .collect()
    }
}

fn same_bounds(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len() + 1
        && got.last() == Some(&f64::INFINITY)
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() <= w.abs() * 1e-9)
}

async fn scrape(replica: &mut Replica) -> Option<Scraped> {
    let text = replica.scrape().await?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, b)| b);
    Some(Scraped(samples(body)))
}

/// An ExternalSecret reading a key the fake store does not hold: every reconcile fails.
fn failing(ns: &str) -> ExternalSecret {
    serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "failing", "namespace": ns},
        "spec": {
            "secretStoreRef": {"name": "fake"},
            "refreshInterval": "1h",
            "target": {"name": "failing"},
            "data": [{"secretKey": "k", "remoteRef": {"key": "no-such-key"}}]
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_runtime_and_workqueue_series_appear_with_upstreams_labels_and_buckets() {
    let cluster = TestCluster::new().await.unwrap();
    install_crds(&cluster.client()).await.unwrap();
    create_store(&cluster).await;
    let ns = cluster.namespace().to_owned();
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client(), &ns);
    // Requeued after its refresh interval: `requeue_after`.
    apply_es(&ess, &external_secret(&ns, "refreshed", "1h")).await;
    // refreshInterval 0 syncs once and waits for a change: `success`.
    apply_es(&ess, &external_secret(&ns, "once", "0")).await;
    apply_es(&ess, &failing(&ns)).await;
    let mut replica = Replica::start(&cluster, "metrics", Timings::SHORT);

    let es = [("controller", "externalsecret")];
    let total = |r: &'static str| [("controller", "externalsecret"), ("result", r)];
    let counted = |s: &Scraped| {
        ["success", "requeue_after", "error"].iter().all(|r| {
            s.value("controller_runtime_reconcile_total", &total(r))
                .is_some_and(|v| v >= 1.0)
        }) && s
            .value(
                "workqueue_retries_total",
                &[("name", "externalsecret"), ("controller", "externalsecret")],
            )
            .is_some_and(|v| v >= 1.0)
            && s.value(
                "controller_runtime_reconcile_total",
                &[("controller", "secretstore"), ("result", "requeue_after")],
            )
            .is_some_and(|v| v >= 1.0)
    };
    // An upper bound on the behaviour, not a timing measurement.
    let deadline = Instant::now() + Duration::from_secs(90);
    let s = loop {
        let scraped = scrape(&mut replica).await;
        if let Some(s) = scraped.filter(counted) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the ExternalSecret controller never counted successes, requeues and errors: {}\n{}",
            replica.scrape().await.unwrap_or_default(),
            replica.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Errors are counted apart from successes: only the failing ExternalSecret errs, and the
    // error counter agrees with the `error` result.
    let errors = s
        .value("controller_runtime_reconcile_errors_total", &es)
        .unwrap();
    assert!(errors >= 1.0);
    assert_eq!(
        s.value("controller_runtime_reconcile_total", &total("error")),
        Some(errors)
    );
    assert_eq!(
        s.value("controller_runtime_reconcile_total", &total("requeue")),
        Some(0.0),
        "kube's actions always carry a delay"
    );
    for name in [
        "controller_runtime_terminal_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
    ] {
        assert_eq!(s.value(name, &es), Some(0.0), "{name}");
    }
    // The operator was started with --concurrent 4.
    assert_eq!(
        s.value("controller_runtime_max_concurrent_reconciles", &es),
        Some(4.0)
    );
    assert!(
        s.value("controller_runtime_active_workers", &es)
            .is_some_and(|v| (0.0..=4.0).contains(&v))
    );
    // The PushSecret controller has the same series under its own name and worker limit.
    let push = [("controller", "pushsecret")];
    assert_eq!(
        s.value("controller_runtime_max_concurrent_reconciles", &push),
        Some(4.0)
    );
    assert_eq!(
        s.value(
            "controller_runtime_reconcile_total",
            &[("controller", "pushsecret"), ("result", "error")]
        ),
        Some(0.0)
    );

    // Every reconcile was timed, in upstream's buckets.
    let reconciles: f64 = ["success", "requeue_after", "error"]
        .iter()
        .filter_map(|r| s.value("controller_runtime_reconcile_total", &total(r)))
        .sum();
    let timed = s
        .value("controller_runtime_reconcile_time_seconds_count", &es)
        .unwrap();
    assert!(timed >= 3.0, "{timed} reconciles timed");
    assert!(timed <= reconciles, "{timed} timed, {reconciles} counted");
    let bounds = s.buckets("controller_runtime_reconcile_time_seconds", &es);
    assert!(
        same_bounds(&bounds, &RECONCILE_TIME_BUCKETS),
        "reconcile time buckets: {bounds:?}"
    );

    // The work queue: name and controller are both the controller's name.
    let queue = [("name", "externalsecret"), ("controller", "externalsecret")];
    let adds = s.value("workqueue_adds_total", &queue).unwrap();
    assert!(adds >= 3.0, "{adds} adds");
    assert!(
        s.value(
            "workqueue_depth",
            &[
                ("name", "externalsecret"),
                ("controller", "externalsecret"),
                ("priority", "")
            ]
        )
        .is_some_and(|d| d >= 0.0)
    );
    for histogram in [
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
    ] {
        let bounds = s.buckets(histogram, &queue);
        assert!(
            same_bounds(&bounds, &WORKQUEUE_DURATION_BUCKETS),
            "{histogram} buckets: {bounds:?}"
        );
        let count = s.value(&format!("{histogram}_count"), &queue).unwrap();
        assert!(count >= 3.0, "{histogram}: {count}");
        assert!(count <= adds, "{histogram}: {count} of {adds} adds");
    }
    for gauge in [
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
    ] {
        assert!(
            s.value(gauge, &queue).is_some_and(|v| v >= 0.0),
            "{gauge} missing"
        );
    }

    // The store controller has its own series, and both have upstream's per-object
    // `*_reconcile_duration` gauges (nanoseconds).
    assert!(
        s.value(
            "workqueue_adds_total",
            &[("name", "secretstore"), ("controller", "secretstore")]
        )
        .is_some_and(|v| v >= 1.0)
    );
    for (metric, name) in [
        ("externalsecret_reconcile_duration", "refreshed"),
        ("secretstore_reconcile_duration", "fake"),
    ] {
        assert!(
            s.value(metric, &[("name", name), ("namespace", ns.as_str())])
                .is_some_and(|v| v > 0.0),
            "{metric} of {name}"
        );
    }
    drop(replica);
}

/// With `--namespace a,b` the operator runs one controller per namespace under one name: the
/// series are one set counting both (written by each, a gauge would show whichever wrote last).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_scoped_to_two_namespaces_reports_one_set_of_series_for_both() {
    let cluster = TestCluster::new().await.unwrap();
    let client = cluster.client();
    install_crds(&client).await.unwrap();
    let ns = cluster.namespace().to_owned();
    let second = format!("{ns}-b");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            &second,
            &PatchParams::apply(support::MANAGER).force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": second}})),
        )
        .await
        .unwrap();
    for each in [&ns, &second] {
        create_store_in(&client, each).await;
        let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), each);
        apply_es(&ess, &external_secret(each, "once", "0")).await;
        apply_es(&ess, &failing(each)).await;
    }
    let mut replica = Replica::start_in(
        &cluster,
        "scoped",
        Timings::SHORT,
        &format!("{ns},{second}"),
    );

    let total = |r: &'static str| [("controller", "externalsecret"), ("result", r)];
    // Both namespaces' syncs and failures are counted in the one series.
    let both = |s: &Scraped| {
        ["success", "error"].iter().all(|r| {
            s.value("controller_runtime_reconcile_total", &total(r))
                .is_some_and(|v| v >= 2.0)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let s = loop {
        if let Some(s) = scrape(&mut replica).await.filter(both) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the two namespaces' reconciles were never counted: {}\n{}",
            replica.scrape().await.unwrap_or_default(),
            replica.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each namespace has `--concurrent 4` workers per controller: 8 in all.
    for controller in ["externalsecret", "pushsecret"] {
        assert_eq!(
            s.value(
                "controller_runtime_max_concurrent_reconciles",
                &[("controller", controller)]
            ),
            Some(8.0),
            "{controller}"
        );
    }
    for each in [&ns, &second] {
        assert!(
            s.value(
                "externalsecret_reconcile_duration",
                &[("name", "once"), ("namespace", each.as_str())]
            )
            .is_some_and(|v| v > 0.0),
            "the reconcile in {each}"
        );
    }
    drop(replica);
    namespaces
        .delete(&second, &Default::default())
        .await
        .unwrap();
}
