//! controller-runtime's standard controller and workqueue series
//! (`controller_runtime_reconcile_total`, `workqueue_depth`, ...), with the names, labels and
//! histogram buckets controller-runtime gives them, so dashboards and alerts built for
//! upstream ESO keep working (see `docs/metrics.md`).
//!
//! kube-runtime has no observable work queue: its applier keeps one scheduler entry per object
//! (a watch event makes it due now, a requeue due later, the earliest wins) and runs due
//! entries on at most `concurrency` workers, never one object twice at once. Our controllers
//! therefore run through [`QueuedController`], which builds the same applier from the same
//! trigger streams and records, where each thing happens:
//! - an *add* when a trigger arrives for an object not already due, or when a requeue falls
//!   due (client-go counts an `Add` only for an item not yet waiting);
//! - *queue time* from the add to the worker starting the reconcile, *work time* from there to
//!   its end;
//! - a *retry* whenever a failed reconcile is requeued (client-go's `AddRateLimited`).
//!
//! The bookkeeping is the pure [`WorkQueueLedger`]; time is a parameter.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt as _, Stream, StreamExt as _};
use kube::Resource;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{
    self, Action, ReconcileRequest, applier, trigger_owners, trigger_self, trigger_with,
};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::{CancelableJoinHandle, StreamBackoff};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde::de::DeserializeOwned;

use crate::api_health::WatchBackoff;
use crate::lock;

/// `controller_runtime_reconcile_total{controller,result}`.
pub const RECONCILE_TOTAL: &str = "controller_runtime_reconcile_total";
/// `controller_runtime_reconcile_errors_total{controller}`.
pub const RECONCILE_ERRORS: &str = "controller_runtime_reconcile_errors_total";
/// `controller_runtime_terminal_reconcile_errors_total{controller}`.
pub const TERMINAL_RECONCILE_ERRORS: &str = "controller_runtime_terminal_reconcile_errors_total";
/// `controller_runtime_reconcile_panics_total{controller}`.
pub const RECONCILE_PANICS: &str = "controller_runtime_reconcile_panics_total";
/// `controller_runtime_reconcile_time_seconds{controller}` (histogram).
pub const RECONCILE_TIME: &str = "controller_runtime_reconcile_time_seconds";
/// `controller_runtime_max_concurrent_reconciles{controller}`.
pub const MAX_CONCURRENT_RECONCILES: &str = "controller_runtime_max_concurrent_reconciles";
/// `controller_runtime_active_workers{controller}`.
pub const ACTIVE_WORKERS: &str = "controller_runtime_active_workers";
/// `workqueue_depth{name,controller,priority}`.
pub const WORKQUEUE_DEPTH: &str = "workqueue_depth";
/// `workqueue_adds_total{name,controller}`.
pub const WORKQUEUE_ADDS: &str = "workqueue_adds_total";
/// `workqueue_queue_duration_seconds{name,controller}` (histogram).
pub const WORKQUEUE_QUEUE_DURATION: &str = "workqueue_queue_duration_seconds";
/// `workqueue_work_duration_seconds{name,controller}` (histogram).
pub const WORKQUEUE_WORK_DURATION: &str = "workqueue_work_duration_seconds";
/// `workqueue_unfinished_work_seconds{name,controller}`.
pub const WORKQUEUE_UNFINISHED_WORK: &str = "workqueue_unfinished_work_seconds";
/// `workqueue_longest_running_processor_seconds{name,controller}`.
pub const WORKQUEUE_LONGEST_RUNNING: &str = "workqueue_longest_running_processor_seconds";
/// `workqueue_retries_total{name,controller}`.
pub const WORKQUEUE_RETRIES: &str = "workqueue_retries_total";

/// controller-runtime's buckets for `controller_runtime_reconcile_time_seconds`.
pub const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// controller-runtime's workqueue duration buckets: `ExponentialBuckets(10e-9, 10, 12)`,
/// 10 ns to 1000 s.
pub const WORKQUEUE_DURATION_BUCKETS: [f64; 12] = [
    1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0,
];

/// The histogram buckets of every histogram this module records, by metric name, for the
/// Prometheus exporter (histograms without buckets are rendered as summaries).
#[must_use]
pub fn histogram_buckets() -> [(&'static str, &'static [f64]); 3] {
    [
        (RECONCILE_TIME, &RECONCILE_TIME_BUCKETS),
        (WORKQUEUE_QUEUE_DURATION, &WORKQUEUE_DURATION_BUCKETS),
        (WORKQUEUE_WORK_DURATION, &WORKQUEUE_DURATION_BUCKETS),
    ]
}

/// Controller names as controller-runtime derives them for ESO's controllers (the lower-cased
/// kind of the `For` object); also the work queue names.
pub mod names {
    /// The ExternalSecret controller.
    pub const EXTERNAL_SECRET: &str = "externalsecret";
    /// The SecretStore controller.
    pub const SECRET_STORE: &str = "secretstore";
    /// The ClusterSecretStore controller.
    pub const CLUSTER_SECRET_STORE: &str = "clustersecretstore";
    /// The ClusterExternalSecret controller.
    pub const CLUSTER_EXTERNAL_SECRET: &str = "clusterexternalsecret";
    /// The PushSecret controller.
    pub const PUSH_SECRET: &str = "pushsecret";
    /// The ClusterPushSecret controller.
    pub const CLUSTER_PUSH_SECRET: &str = "clusterpushsecret";
}

/// How one reconcile ended, as `controller_runtime_reconcile_total`'s `result` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Done; nothing scheduled.
    Success,
    /// The reconciler failed.
    Error,
    /// Requeued at once, rate limited (controller-runtime's `Requeue: true`; kube's actions
    /// always carry a delay, so this stays at zero here).
    Requeue,
    /// Requeued after a delay.
    RequeueAfter,
}

impl ReconcileResult {
    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Requeue => "requeue",
            Self::RequeueAfter => "requeue_after",
        }
    }

    /// The result of a reconcile that returned this action.
    #[must_use]
    pub fn of(action: &Action) -> Self {
        if *action == Action::await_change() {
            Self::Success
        } else {
            Self::RequeueAfter
        }
    }

    const ALL: [Self; 4] = [
        Self::Success,
        Self::Error,
        Self::Requeue,
        Self::RequeueAfter,
    ];
}

/// Identity of a queued object.
type Key = (Option<String>, String);

fn key_of<K: Resource>(obj_ref: &ObjectRef<K>) -> Key {
    (obj_ref.namespace.clone(), obj_ref.name.clone())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Due since this instant (counted in the depth).
    Queued(Instant),
    /// A requeue falling due at this instant (not yet counted).
    Delayed(Instant),
}

/// The work queue's state as client-go's queue metrics see it: which objects wait (and since
/// when), which are being worked on (and since when). Pure; every method takes the time.
#[derive(Debug, Default)]
pub struct WorkQueueLedger {
    waiting: HashMap<Key, Waiting>,
    /// The `Delayed` entries of `waiting` by due time, so that finding the requeues that fell
    /// due does not look at every object (a requeue per object is the steady state).
    delayed: BTreeSet<(Instant, Key)>,
    processing: HashMap<Key, Instant>,
    depth: usize,
}

/// What one ledger step observed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct QueueStep {
    /// Items that became due (each one `Add`).
    pub adds: u64,
    /// How long the started item waited since it was added, if one left the queue.
    pub queued_for: Option<Duration>,
}

impl WorkQueueLedger {
    /// Items waiting to be worked on (`workqueue_depth`).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Requeues that fell due by `now` become queued items.
    pub fn promote_due(&mut self, now: Instant) -> QueueStep {
        let mut step = QueueStep::default();
        while let Some((due, _)) = self.delayed.first()
            && *due <= now
        {
            let Some((due, key)) = self.delayed.pop_first() else {
                break;
            };
            if let Some(w) = self.waiting.get_mut(&key) {
                *w = Waiting::Queued(due);
                self.depth += 1;
                step.adds += 1;
            }
        }
        step
    }

    /// Sets (or, with `None`, removes) the entry of `key`, keeping `delayed` in step.
    fn set_waiting(&mut self, key: Key, entry: Option<Waiting>) -> Option<Waiting> {
        let old = match entry {
            Some(w) => {
                if let Waiting::Delayed(due) = w {
                    self.delayed.insert((due, key.clone()));
                }
                self.waiting.insert(key.clone(), w)
            }
            None => self.waiting.remove(&key),
        };
        if let Some(Waiting::Delayed(due)) = old
            && old != entry
        {
            self.delayed.remove(&(due, key));
        }
        old
    }

    fn trigger(&mut self, key: Key, now: Instant) -> QueueStep {
        match self.waiting.get(&key) {
            Some(Waiting::Queued(_)) => QueueStep::default(),
            // The scheduler keeps the earliest time: a pending requeue becomes due now.
            Some(Waiting::Delayed(_)) | None => {
                self.set_waiting(key, Some(Waiting::Queued(now)));
                self.depth += 1;
                QueueStep {
                    adds: 1,
                    queued_for: None,
                }
            }
        }
    }

    fn requeue(&mut self, key: Key, due: Instant) {
        // A trigger that came in meanwhile already made it due earlier.
        match self.waiting.get(&key) {
            Some(Waiting::Queued(_)) => {}
            Some(Waiting::Delayed(d)) if *d <= due => {}
            _ => {
                self.set_waiting(key, Some(Waiting::Delayed(due)));
            }
        }
    }

    /// The item left the queue at `now` (a worker took it, or the object was gone).
    fn take(&mut self, key: &Key, now: Instant) -> QueueStep {
        match self.set_waiting(key.clone(), None) {
            Some(Waiting::Queued(since)) => {
                self.depth = self.depth.saturating_sub(1);
                QueueStep {
                    adds: 0,
                    queued_for: Some(now.saturating_duration_since(since)),
                }
            }
            // Due now (the scheduler ran it on time, before a tick promoted it), or a trigger
            // this ledger did not see: an add and a take at once.
            Some(Waiting::Delayed(due)) => QueueStep {
                adds: 1,
                queued_for: Some(now.saturating_duration_since(due)),
            },
            None => QueueStep {
                adds: 1,
                queued_for: Some(Duration::ZERO),
            },
        }
    }

    fn start(&mut self, key: Key, now: Instant) -> QueueStep {
        let step = self.take(&key, now);
        self.processing.insert(key, now);
        step
    }

    fn done(&mut self, key: &Key, now: Instant) -> Option<Duration> {
        self.processing
            .remove(key)
            .map(|since| now.saturating_duration_since(since))
    }

    /// Seconds of work in progress, summed, and the longest running one
    /// (`workqueue_unfinished_work_seconds`, `workqueue_longest_running_processor_seconds`).
    #[must_use]
    pub fn in_progress(&self, now: Instant) -> (f64, f64) {
        self.processing
            .values()
            .map(|since| now.saturating_duration_since(*since).as_secs_f64())
            .fold((0.0, 0.0), |(sum, max), s| (sum + s, f64::max(max, s)))
    }

    /// Forgets what waits (the controller stopped; its scheduler is gone).
    fn clear_waiting(&mut self) {
        self.waiting.clear();
        self.delayed.clear();
        self.depth = 0;
    }
}

/// How many objects a [`QueuedController`] has waiting (due, not yet being reconciled);
/// cheap to clone.
#[derive(Debug, Clone)]
pub struct Backlog(Arc<Mutex<WorkQueueLedger>>);

impl Backlog {
    /// Objects waiting now (`workqueue_depth`).
    #[must_use]
    pub fn waiting(&self) -> usize {
        lock(&self.0).depth()
    }
}

/// What the work queues of the live controllers of one name hold together.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct QueueTotals {
    /// Objects waiting (`workqueue_depth`).
    pub depth: usize,
    /// Seconds of work in progress, summed (`workqueue_unfinished_work_seconds`).
    pub unfinished: f64,
    /// The longest running reconcile (`workqueue_longest_running_processor_seconds`).
    pub longest: f64,
    /// The worker limits of the running controllers, summed
    /// (`controller_runtime_max_concurrent_reconciles`); `None` when none has one.
    pub max_concurrent: Option<u64>,
}

/// The live controllers sharing one name. A manager scoped to a list of namespaces runs one
/// controller per namespace, and controller-runtime's series name the controller, not the
/// namespace: the gauges report the sums over all of them, not whichever wrote last.
#[derive(Debug, Default)]
struct Peers(Mutex<Vec<Peer>>);

#[derive(Debug)]
struct Peer {
    ledger: Weak<Mutex<WorkQueueLedger>>,
    /// The worker limit while the controller runs.
    max_concurrent: Option<u16>,
}

impl Peers {
    /// The peers of every controller named `name` in this process.
    fn named(name: &'static str) -> Arc<Self> {
        static BY_NAME: OnceLock<Mutex<HashMap<&'static str, Arc<Peers>>>> = OnceLock::new();
        lock(BY_NAME.get_or_init(Mutex::default))
            .entry(name)
            .or_default()
            .clone()
    }

    fn join(&self, ledger: &Arc<Mutex<WorkQueueLedger>>) {
        let mut peers = lock(&self.0);
        peers.retain(|p| p.ledger.strong_count() > 0);
        peers.push(Peer {
            ledger: Arc::downgrade(ledger),
            max_concurrent: None,
        });
    }

    fn set_limit(&self, ledger: &Arc<Mutex<WorkQueueLedger>>, limit: Option<u16>) {
        let mut peers = lock(&self.0);
        if let Some(p) = peers
            .iter_mut()
            .find(|p| std::ptr::eq(p.ledger.as_ptr(), Arc::as_ptr(ledger)))
        {
            p.max_concurrent = limit;
        }
    }

    /// The objects waiting in the live peers' queues, summed (what every queue step
    /// publishes; [`totals`](Self::totals) has the rest). Locks as `totals` does.
    fn depth(&self) -> usize {
        let mut peers = lock(&self.0);
        peers.retain(|p| p.ledger.strong_count() > 0);
        peers
            .iter()
            .filter_map(|p| p.ledger.upgrade())
            .map(|ledger| lock(&ledger).depth())
            .sum()
    }

    /// The sums over the live peers at `now`. Takes each ledger's lock in turn, under this
    /// one; nothing takes this lock while holding a ledger's.
    fn totals(&self, now: Instant) -> QueueTotals {
        let mut peers = lock(&self.0);
        peers.retain(|p| p.ledger.strong_count() > 0);
        let mut totals = QueueTotals::default();
        for peer in peers.iter() {
            let Some(ledger) = peer.ledger.upgrade() else {
                continue;
            };
            let ledger = lock(&ledger);
            totals.depth += ledger.depth();
            let (unfinished, longest) = ledger.in_progress(now);
            totals.unfinished += unfinished;
            totals.longest = totals.longest.max(longest);
            if let Some(n) = peer.max_concurrent {
                *totals.max_concurrent.get_or_insert(0) += u64::from(n);
            }
        }
        totals
    }
}

/// The series of one controller and its work queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct ControllerMetrics {
    name: &'static str,
    ledger: Arc<Mutex<WorkQueueLedger>>,
    peers: Arc<Peers>,
}

impl ControllerMetrics {
    /// The series of the controller (and work queue) with this name.
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        let ledger = Arc::default();
        let peers = Peers::named(name);
        peers.join(&ledger);
        Self {
            name,
            ledger,
            peers,
        }
    }

    /// What the queues of every live controller of this name hold now.
    #[must_use]
    pub fn totals(&self) -> QueueTotals {
        self.peers.totals(Instant::now())
    }

    fn queue_labels(&self) -> [(&'static str, &'static str); 2] {
        [("name", self.name), ("controller", self.name)]
    }

    /// Creates every series at zero, as controller-runtime does when a controller starts,
    /// and sets the worker limit (`None`: kube's unbounded runner, which has no limit to
    /// report).
    fn init(&self, max_concurrent: Option<u16>) {
        let c = self.name;
        for result in ReconcileResult::ALL {
            metrics::counter!(RECONCILE_TOTAL, "controller" => c, "result" => result.label())
                .increment(0);
        }
        for name in [
            RECONCILE_ERRORS,
            TERMINAL_RECONCILE_ERRORS,
            RECONCILE_PANICS,
        ] {
            metrics::counter!(name, "controller" => c).increment(0);
        }
        self.peers.set_limit(&self.ledger, max_concurrent);
        if let Some(n) = self.totals().max_concurrent {
            metrics::gauge!(MAX_CONCURRENT_RECONCILES, "controller" => c).set(n as f64);
        }
        metrics::gauge!(ACTIVE_WORKERS, "controller" => c).set(0.0);
        let q = self.queue_labels();
        metrics::counter!(WORKQUEUE_ADDS, &q).increment(0);
        metrics::counter!(WORKQUEUE_RETRIES, &q).increment(0);
        metrics::gauge!(WORKQUEUE_UNFINISHED_WORK, &q).set(0.0);
        metrics::gauge!(WORKQUEUE_LONGEST_RUNNING, &q).set(0.0);
        self.publish(QueueStep::default());
    }

    fn with_ledger<T>(&self, f: impl FnOnce(&mut WorkQueueLedger) -> T) -> T {
        f(&mut lock(&self.ledger))
    }

    /// Records `step` and sets the depth gauge (of every controller of this name).
    fn publish(&self, step: QueueStep) {
        let q = self.queue_labels();
        if step.adds > 0 {
            metrics::counter!(WORKQUEUE_ADDS, &q).increment(step.adds);
        }
        if let Some(waited) = step.queued_for {
            metrics::histogram!(WORKQUEUE_QUEUE_DURATION, &q).record(waited.as_secs_f64());
        }
        // controller-runtime labels depth with the priority too, empty without a priority
        // queue.
        metrics::gauge!(WORKQUEUE_DEPTH, "name" => self.name, "controller" => self.name, "priority" => "")
            .set(self.peers.depth() as f64);
    }

    fn trigger(&self, key: Key) {
        let step = self.with_ledger(|l| l.trigger(key, Instant::now()));
        self.publish(step);
    }

    fn tick(&self) {
        let step = self.with_ledger(|l| l.promote_due(Instant::now()));
        self.publish(step);
        let totals = self.totals();
        let q = self.queue_labels();
        metrics::gauge!(WORKQUEUE_UNFINISHED_WORK, &q).set(totals.unfinished);
        metrics::gauge!(WORKQUEUE_LONGEST_RUNNING, &q).set(totals.longest);
    }

    fn start(&self, key: Key) -> WorkGuard {
        let now = Instant::now();
        let step = self.with_ledger(|l| {
            let mut step = l.promote_due(now);
            let taken = l.start(key.clone(), now);
            step.adds += taken.adds;
            step.queued_for = taken.queued_for;
            step
        });
        self.publish(step);
        metrics::gauge!(ACTIVE_WORKERS, "controller" => self.name).increment(1.0);
        WorkGuard {
            metrics: self.clone(),
            key,
        }
    }

    fn dropped(&self, key: &Key) {
        let step = self.with_ledger(|l| l.take(key, Instant::now()));
        self.publish(step);
    }

    fn finished(&self, result: ReconcileResult) {
        let c = self.name;
        metrics::counter!(RECONCILE_TOTAL, "controller" => c, "result" => result.label())
            .increment(1);
        if result == ReconcileResult::Error {
            metrics::counter!(RECONCILE_ERRORS, "controller" => c).increment(1);
        }
    }

    fn requeued(&self, key: Key, action: &Action, retry: bool) {
        if let Some(after) = requeue_after(action) {
            if retry {
                metrics::counter!(WORKQUEUE_RETRIES, &self.queue_labels()).increment(1);
            }
            let due = Instant::now().checked_add(after);
            if let Some(due) = due {
                self.with_ledger(|l| l.requeue(key, due));
            }
        }
    }

    /// The controller stopped: nothing of it waits, and its workers no longer count.
    fn stopped(&self) {
        self.with_ledger(WorkQueueLedger::clear_waiting);
        self.peers.set_limit(&self.ledger, None);
        // The limit gauge keeps its value, as controller-runtime's does after a controller
        // stops; the next start sets it again.
        self.publish(QueueStep::default());
    }
}

/// One reconcile in progress: ends the work (time, active workers) when dropped, also when the
/// reconcile is cancelled.
struct WorkGuard {
    metrics: ControllerMetrics,
    key: Key,
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        let m = &self.metrics;
        let worked = m.with_ledger(|l| l.done(&self.key, Instant::now()));
        if let Some(worked) = worked {
            let secs = worked.as_secs_f64();
            metrics::histogram!(WORKQUEUE_WORK_DURATION, &m.queue_labels()).record(secs);
            metrics::histogram!(RECONCILE_TIME, "controller" => m.name).record(secs);
        }
        metrics::gauge!(ACTIVE_WORKERS, "controller" => m.name).decrement(1.0);
    }
}

/// Why a reconcile run through [`QueuedController`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E: std::error::Error + 'static> {
    /// The reconciler returned an error.
    #[error(transparent)]
    Reconcile(E),
    /// The reconciler panicked; as controller-runtime does by default, the panic is recovered,
    /// counted and retried.
    #[error("reconcile of {object} panicked")]
    Panicked {
        /// The object.
        object: String,
    },
}

/// How soon a reconcile that panicked is retried.
const PANIC_RETRY: Duration = Duration::from_secs(5);

/// When the action schedules the next reconcile. kube's `Action` keeps the delay private and
/// shows it only through `Debug` (`Action { requeue_after: Some(1.05s) }`, the `Duration`
/// printed exactly); a unit test fails if that form changes. `None`: no requeue, or a form
/// this does not know (the requeue is then counted when it runs).
#[must_use]
pub fn requeue_after(action: &Action) -> Option<Duration> {
    if *action == Action::await_change() {
        return None;
    }
    let text = format!("{action:?}");
    let inner = text
        .strip_prefix("Action { requeue_after: Some(")?
        .strip_suffix(") }")?;
    let (number, scale) = [("ns", 0u32), ("µs", 3), ("ms", 6), ("s", 9)]
        .into_iter()
        .find_map(|(unit, digits)| {
            inner
                .strip_suffix(unit)
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                .map(|n| (n, digits))
        })?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.len() > scale as usize {
        return None;
    }
    let unit = 10u128.pow(scale);
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u128>().ok()? * 10u128.pow(scale - fraction.len() as u32)
    };
    let nanos = whole.parse::<u128>().ok()? * unit + fraction_nanos;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

type Trigger<K> = BoxStream<'static, Result<ReconcileRequest<K>, watcher::Error>>;

/// A hash of what a reconcile reads of its own object's metadata: uid, generation (the spec),
/// labels, annotations and the deletion timestamp; `None` (always passes) without a uid.
fn reconciled_part<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let meta = obj.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.uid.as_ref()?.hash(&mut hasher);
    meta.generation.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// kube-runtime's `Controller`, assembled from the same public parts (reflector, triggers,
/// applier) so that its queue can be measured: the controller-runtime and workqueue series
/// of one named controller.
pub struct QueuedController<K: Resource<DynamicType = ()> + 'static> {
    metrics: ControllerMetrics,
    reader: Store<K>,
    triggers: SelectAll<Trigger<K>>,
    concurrency: u16,
}

impl<K> QueuedController<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// A controller named `name` (controller-runtime's name, see [`names`]) reconciling the
    /// objects of `api`, with unbounded concurrency.
    #[must_use]
    pub fn new(name: &'static str, api: Api<K>, wc: watcher::Config) -> Self {
        let (reader, writer) = reflector::store();
        // The cache sees every change; reconciles are triggered only by changes a reconcile
        // reads (spec, labels, annotations, deletion), not by the status the controller itself
        // just wrote: as controller-runtime's GenerationChanged | LabelChanged |
        // AnnotationChanged predicates do.
        // managedFields are often the larger part of an object and nothing reconciled reads
        // them: the cache does not keep them.
        let stripped = watcher(api, wc).modify(|o: &mut K| o.meta_mut().managed_fields = None);
        let own = trigger_self(
            reflector::reflector(writer, stripped)
                .applied_objects()
                .predicate_filter(reconciled_part::<K>, Default::default()),
            (),
        )
        .boxed();
        let mut triggers = SelectAll::new();
        triggers.push(own);
        Self {
            metrics: ControllerMetrics::new(name),
            reader,
            triggers,
            concurrency: 0,
        }
    }

    /// A handle on this controller's queue length, for work that should yield to it.
    #[must_use]
    pub fn backlog(&self) -> Backlog {
        Backlog(self.metrics.ledger.clone())
    }

    /// The cache of the reconciled objects.
    #[must_use]
    pub fn store(&self) -> Store<K> {
        self.reader.clone()
    }

    /// At most `n` reconciles at once (0: unbounded).
    #[must_use]
    pub fn concurrency(mut self, n: u16) -> Self {
        self.concurrency = n;
        self
    }

    /// Reconciles the objects `mapper` names whenever an `Other` changes.
    #[must_use]
    pub fn watches<Other, I>(
        self,
        api: Api<Other>,
        wc: watcher::Config,
        mapper: impl Fn(Other) -> I + Send + Sync + 'static,
    ) -> Self
    where
        Other: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        self.watches_stream(watcher(api, wc).touched_objects(), mapper)
    }

    /// Reconciles the objects `mapper` names for every object `changes` yields (e.g. a
    /// watcher's `touched_objects()` after the caller looked at its events).
    #[must_use]
    pub fn watches_stream<Other, I>(
        mut self,
        changes: impl Stream<Item = Result<Other, watcher::Error>> + Send + 'static,
        mapper: impl Fn(Other) -> I + Send + Sync + 'static,
    ) -> Self
    where
        Other: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        self.triggers.push(trigger_with(changes, mapper).boxed());
        self
    }

    /// Reconciles the owner whenever a `Child` it owns changes (watched metadata-only, as
    /// kube's `Controller::owns`).
    #[must_use]
    pub fn owns<Child>(mut self, api: Api<PartialObjectMeta<Child>>, wc: watcher::Config) -> Self
    where
        Child:
            Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.triggers
            .push(trigger_owners(watcher(api, wc).touched_objects(), (), ()).boxed());
        self
    }

    /// Runs the reconciler until `shutdown` resolves (then in-flight reconciles finish), as
    /// kube's `Controller::run` with `graceful_shutdown_on` does, recording the series.
    pub fn run<Ctx, Fut, E>(
        self,
        reconcile: impl Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + 'static,
        error_policy: impl Fn(Arc<K>, &E, Arc<Ctx>) -> Action + Send + Sync + 'static,
        ctx: Arc<Ctx>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> impl Stream<
        Item = Result<(ObjectRef<K>, Action), controller::Error<RunError<E>, watcher::Error>>,
    > + Send
    where
        Ctx: Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let metrics = self.metrics;
        metrics.init((self.concurrency > 0).then_some(self.concurrency));
        let seen = metrics.clone();
        let queue = StreamBackoff::new(self.triggers, WatchBackoff::default())
            .take_until(shutdown)
            .inspect(move |request| {
                if let Ok(request) = request {
                    seen.trigger(key_of(&request.obj_ref));
                }
            });
        let started = metrics.clone();
        let reconciler = move |obj: Arc<K>, ctx: Arc<Ctx>| {
            let obj_ref = ObjectRef::from_obj(obj.as_ref());
            let guard = started.start(key_of(&obj_ref));
            let fut = reconcile(obj, ctx);
            let metrics = started.clone();
            CancelableJoinHandle::spawn(
                async move {
                    let result = match AssertUnwindSafe(fut).catch_unwind().await {
                        Ok(Ok(action)) => {
                            metrics.finished(ReconcileResult::of(&action));
                            metrics.requeued(key_of(&obj_ref), &action, false);
                            Ok(action)
                        }
                        Ok(Err(e)) => {
                            metrics.finished(ReconcileResult::Error);
                            Err(RunError::Reconcile(e))
                        }
                        Err(_) => {
                            tracing::error!(object = %obj_ref, "reconcile panicked");
                            metrics::counter!(RECONCILE_PANICS, "controller" => metrics.name)
                                .increment(1);
                            metrics.finished(ReconcileResult::Error);
                            Err(RunError::Panicked {
                                object: obj_ref.to_string(),
                            })
                        }
                    };
                    drop(guard);
                    result
                },
                &tokio::runtime::Handle::current(),
            )
        };
        let retried = metrics.clone();
        let policy = move |obj: Arc<K>, error: &RunError<E>, ctx: Arc<Ctx>| {
            let key = key_of(&ObjectRef::from_obj(obj.as_ref()));
            let action = match error {
                RunError::Reconcile(e) => error_policy(obj, e, ctx),
                RunError::Panicked { .. } => Action::requeue(PANIC_RETRY),
            };
            retried.requeued(key, &action, true);
            action
        };
        let dropped = metrics.clone();
        let running = Running {
            metrics: metrics.clone(),
            ticker: tokio::spawn(tick(metrics)),
        };
        applier(
            reconciler,
            policy,
            ctx,
            self.reader,
            queue,
            controller::Config::default().concurrency(self.concurrency),
        )
        .inspect(move |result| {
            // The ticker and the queue's state live as long as this stream.
            let _ = &running;
            if let Err(controller::Error::ObjectNotFound(obj_ref)) = result {
                dropped.dropped(&(obj_ref.namespace.clone(), obj_ref.name.clone()));
            }
        })
    }
}

/// A running controller's ticker; when the controller's stream is dropped its scheduler is
/// gone, so nothing waits any more.
struct Running {
    metrics: ControllerMetrics,
    ticker: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.ticker.abort();
        self.metrics.stopped();
    }
}

/// Every 500 ms (client-go's period for the in-progress gauges): promotes due requeues and
/// refreshes the unfinished-work gauges.
async fn tick(metrics: ControllerMetrics) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        metrics.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        (Some("team".to_owned()), name.to_owned())
    }

    #[test]
    fn the_requeue_delay_is_read_back_exactly() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(1_500),
            Duration::from_millis(200),
            Duration::from_millis(1_050),
            Duration::new(1, 1),
            Duration::from_secs(420),
            Duration::from_secs(3600),
            Duration::new(86_400 * 365, 999_999_999),
        ] {
            assert_eq!(requeue_after(&Action::requeue(d)), Some(d), "{d:?}");
        }
        assert_eq!(requeue_after(&Action::await_change()), None);
    }

    #[test]
    fn result_labels_are_controller_runtimes() {
        assert_eq!(
            ReconcileResult::of(&Action::requeue(Duration::from_secs(1))).label(),
            "requeue_after"
        );
        assert_eq!(
            ReconcileResult::of(&Action::await_change()).label(),
            "success"
        );
        let labels: Vec<_> = ReconcileResult::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels, ["success", "error", "requeue", "requeue_after"]);
    }

    #[test]
    fn a_trigger_adds_once_until_a_worker_takes_the_item() {
        let t0 = Instant::now();
        let mut q = WorkQueueLedger::default();
        assert_eq!(q.trigger(key("a"), t0).adds, 1);
        assert_eq!(q.trigger(key("a"), t0 + Duration::from_secs(1)).adds, 0);
        assert_eq!(q.trigger(key("b"), t0).adds, 1);
        assert_eq!(q.depth(), 2);
        let step = q.start(key("a"), t0 + Duration::from_secs(3));
        assert_eq!(step.adds, 0);
        assert_eq!(step.queued_for, Some(Duration::from_secs(3)));
        assert_eq!(q.depth(), 1);
        assert_eq!(
            q.in_progress(t0 + Duration::from_secs(5)),
            (2.0, 2.0),
            "unfinished work and the longest runner"
        );
        assert_eq!(
            q.done(&key("a"), t0 + Duration::from_secs(7)),
            Some(Duration::from_secs(4))
        );
        assert_eq!(q.in_progress(t0 + Duration::from_secs(8)), (0.0, 0.0));
    }

    #[test]
    fn a_trigger_during_work_waits_in_the_queue() {
        let t0 = Instant::now();
        let mut q = WorkQueueLedger::default();
        q.trigger(key("a"), t0);
        q.start(key("a"), t0);
        // client-go counts an Add for an item being processed, and holds it until Done.
        assert_eq!(q.trigger(key("a"), t0 + Duration::from_secs(1)).adds, 1);
        assert_eq!(q.depth(), 1);
        q.done(&key("a"), t0 + Duration::from_secs(2));
        // The requeue the reconcile asked for is later than the waiting trigger: it is dropped.
        q.requeue(key("a"), t0 + Duration::from_secs(60));
        let step = q.start(key("a"), t0 + Duration::from_secs(2));
        assert_eq!(step.queued_for, Some(Duration::from_secs(1)));
        assert_eq!(q.depth(), 0);
        assert_eq!(q.promote_due(t0 + Duration::from_secs(120)).adds, 0);
    }

    #[test]
    fn a_requeue_is_added_when_it_falls_due() {
        let t0 = Instant::now();
        let mut q = WorkQueueLedger::default();
        q.requeue(key("a"), t0 + Duration::from_secs(10));
        assert_eq!(q.depth(), 0, "a delayed item is not in the queue yet");
        assert_eq!(q.promote_due(t0 + Duration::from_secs(9)).adds, 0);
        assert_eq!(q.promote_due(t0 + Duration::from_secs(10)).adds, 1);
        assert_eq!(q.depth(), 1);
        // Workers were busy: the wait counts from when it fell due.
        let step = q.start(key("a"), t0 + Duration::from_secs(13));
        assert_eq!(step.queued_for, Some(Duration::from_secs(3)));
        assert_eq!(q.depth(), 0);
    }

    #[test]
    fn a_requeue_run_on_time_is_one_add_and_a_watch_event_brings_it_forward() {
        let t0 = Instant::now();
        let mut q = WorkQueueLedger::default();
        q.requeue(key("a"), t0 + Duration::from_secs(10));
        let step = q.start(key("a"), t0 + Duration::from_secs(10));
        assert_eq!((step.adds, step.queued_for), (1, Some(Duration::ZERO)));
        q.done(&key("a"), t0 + Duration::from_secs(11));

        q.requeue(key("a"), t0 + Duration::from_secs(3600));
        assert_eq!(q.trigger(key("a"), t0 + Duration::from_secs(20)).adds, 1);
        assert_eq!(q.depth(), 1);
        assert_eq!(
            q.take(&key("a"), t0 + Duration::from_secs(21)).queued_for,
            Some(Duration::from_secs(1))
        );
        assert_eq!(q.depth(), 0);
        assert_eq!(q.promote_due(t0 + Duration::from_secs(7200)).adds, 0);
    }

    #[test]
    fn requeues_fall_due_in_time_order_and_a_moved_requeue_counts_once() {
        let t0 = Instant::now();
        let mut q = WorkQueueLedger::default();
        for i in 0..1000u64 {
            q.requeue(key(&format!("k{i}")), t0 + Duration::from_secs(1000 - i));
        }
        // k999 .. k990 are due at t0+1 .. t0+10.
        assert_eq!(q.promote_due(t0 + Duration::from_secs(10)).adds, 10);
        assert_eq!(q.depth(), 10);
        assert_eq!(q.promote_due(t0 + Duration::from_secs(10)).adds, 0);
        // k0 (due at t0+1000) is brought forward, then back is ignored (the earlier wins).
        q.requeue(key("k0"), t0 + Duration::from_secs(20));
        q.requeue(key("k0"), t0 + Duration::from_secs(5000));
        // k1 (due at t0+999) is triggered by a watch event: queued now, not again when due.
        q.trigger(key("k1"), t0 + Duration::from_secs(11));
        assert_eq!(q.depth(), 11);
        // Due by t0+20: k989 .. k980 and k0.
        assert_eq!(q.promote_due(t0 + Duration::from_secs(20)).adds, 11);
        assert_eq!(
            q.promote_due(t0 + Duration::from_secs(5000)).adds,
            1000 - 22
        );
        assert_eq!(q.depth(), 1000);
    }

    #[test]
    fn a_stopped_controller_leaves_an_empty_queue() {
        let t0 = Instant::now();
        let mut q = WorkQueueLedger::default();
        q.trigger(key("a"), t0);
        q.requeue(key("b"), t0);
        q.clear_waiting();
        assert_eq!(q.depth(), 0);
        assert_eq!(q.promote_due(t0 + Duration::from_secs(1)).adds, 0);
    }

    #[test]
    fn controllers_of_one_name_report_their_sums_and_a_gone_one_stops_counting() {
        // As a manager scoped to two namespaces runs them: one controller per namespace.
        let a = ControllerMetrics::new("peers-test");
        let b = ControllerMetrics::new("peers-test");
        let other = ControllerMetrics::new("peers-test-other");
        a.init(Some(4));
        b.init(Some(4));
        other.init(Some(2));
        a.trigger((Some("ns-a".to_owned()), "x".to_owned()));
        a.trigger((Some("ns-a".to_owned()), "y".to_owned()));
        b.trigger((Some("ns-b".to_owned()), "x".to_owned()));
        let guard = b.start((Some("ns-b".to_owned()), "x".to_owned()));
        let now = Instant::now();
        let totals = a.peers.totals(now);
        assert_eq!(totals, b.peers.totals(now), "both see the same sums");
        assert_eq!(totals.depth, 2);
        assert_eq!(a.peers.depth(), 2, "what each queue step publishes");
        assert_eq!(totals.max_concurrent, Some(8));
        assert!(totals.longest >= 0.0 && totals.unfinished >= totals.longest);
        assert_eq!(other.totals().depth, 0);
        assert_eq!(other.totals().max_concurrent, Some(2));
        drop(guard);

        // A stopped controller waits for nothing and has no workers; a dropped one is gone.
        b.stopped();
        assert_eq!(a.totals().depth, 2);
        assert_eq!(a.totals().max_concurrent, Some(4));
        drop(b);
        a.trigger((Some("ns-a".to_owned()), "z".to_owned()));
        assert_eq!(a.totals().depth, 3);
        assert_eq!(lock(&Peers::named("peers-test").0).len(), 1);
    }

    #[test]
    fn histogram_buckets_are_controller_runtimes() {
        let buckets = histogram_buckets();
        assert_eq!(buckets[0].1.len(), 40);
        assert_eq!(buckets[0].1.first(), Some(&0.005));
        assert_eq!(buckets[0].1.last(), Some(&60.0));
        // ExponentialBuckets(10e-9, 10, 12)
        let expected: Vec<f64> = (0..12).map(|i| 10e-9 * 10f64.powi(i)).collect();
        for (got, want) in WORKQUEUE_DURATION_BUCKETS.iter().zip(&expected) {
            assert!((got - want).abs() <= want * 1e-9, "{got} vs {want}");
        }
    }
}
