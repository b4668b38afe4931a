//! What the provider-economy benches share: a metrics recorder counting
//! `externalsecret_provider_api_calls_count` by chosen labels, and finding a server binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// Provider calls, by the values of `labels` joined with spaces.
pub(crate) struct Calls {
    labels: &'static [&'static str],
    cells: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
}

struct Count(Arc<AtomicU64>);
impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl Recorder for Calls {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() != "externalsecret_provider_api_calls_count" {
            return Counter::noop();
        }
        let label = |n: &str| {
            key.labels()
                .find(|l| l.key() == n)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        let name = self
            .labels
            .iter()
            .map(|n| label(n))
            .collect::<Vec<_>>()
            .join(" ");
        let cell = self.cells.lock().unwrap().entry(name).or_default().clone();
        Counter::from_arc(Arc::new(Count(cell)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

impl Calls {
    /// Installs a counter keyed by `labels` as the process's metrics recorder.
    pub(crate) fn install(labels: &'static [&'static str]) -> &'static Calls {
        let calls: &'static Calls = Box::leak(Box::new(Calls {
            labels,
            cells: Mutex::default(),
        }));
        metrics::set_global_recorder(calls).expect("recorder");
        calls
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.cells
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// A server binary: `$env_var`, else the repository's `.venv-emu/bin/<name>`, else `name` on
/// PATH.
pub(crate) fn server_binary(env_var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.venv-emu/bin")
        .join(name);
    if venv.is_file() {
        return venv;
    }
    name.into()
}
