//! A recorder that captures `externalsecret_provider_api_calls_count{provider, call, status}`,
//! for tests that count a provider's API calls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// The counter providers count their API calls with (upstream's name).
pub const API_CALLS: &str = "externalsecret_provider_api_calls_count";

type Calls = BTreeMap<(String, String, String), u64>;

#[derive(Debug, Default)]
struct Captured {
    calls: Calls,
    other_counters: BTreeSet<String>,
}

/// Captures [`API_CALLS`] by (provider, call, status), and the names of any other counters.
/// Clones share what they capture. Install it with [`install_global`](Self::install_global)
/// (a test binary of its own: the recorder is process-wide) or with
/// `metrics::set_default_local_recorder(&calls)` for one thread.
#[derive(Debug, Clone, Default)]
pub struct ApiCalls(Arc<Mutex<Captured>>);

impl ApiCalls {
    /// A recorder that captured nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs a clone as the process-wide recorder; fails the test when one is installed.
    pub fn install_global(&self) {
        metrics::set_global_recorder(self.clone())
            .unwrap_or_else(|e| panic!("a metrics recorder is already installed: {e}"));
    }

    fn captured(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every count so far, by (provider, call, status).
    #[must_use]
    pub fn counts(&self) -> Calls {
        self.captured().calls.clone()
    }

    /// Every count so far, by (call, status), whatever the provider.
    #[must_use]
    pub fn by_call(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for ((_, call, status), n) in &self.captured().calls {
            *out.entry((call.clone(), status.clone())).or_default() += n;
        }
        out
    }

    /// The count of one (provider, call, status), 0 when never counted.
    #[must_use]
    pub fn get(&self, provider: &str, call: &str, status: &str) -> u64 {
        self.captured()
            .calls
            .get(&(provider.to_owned(), call.to_owned(), status.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// The names of the counters other than [`API_CALLS`] that were registered.
    #[must_use]
    pub fn other_counters(&self) -> BTreeSet<String> {
        self.captured().other_counters.clone()
    }

    /// Forgets every count.
    pub fn clear(&self) {
        self.captured().calls.clear();
    }
}

struct Count {
    key: (String, String, String),
    calls: ApiCalls,
}

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        *self
            .calls
            .captured()
            .calls
            .entry(self.key.clone())
            .or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.calls.captured().calls.insert(self.key.clone(), value);
    }
}

impl Recorder for ApiCalls {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() != API_CALLS {
            self.captured().other_counters.insert(key.name().to_owned());
            return Counter::noop();
        }
        let label = |n: &str| {
            key.labels()
                .find(|l| l.key() == n)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        Counter::from_arc(Arc::new(Count {
            key: (label("provider"), label("call"), label("status")),
            calls: self.clone(),
        }))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_api_calls_by_their_labels_and_names_other_counters() {
        let calls = ApiCalls::new();
        {
            let _guard = metrics::set_default_local_recorder(&calls);
            let count = |provider: &'static str, call: &'static str, status: &'static str| {
                metrics::counter!(API_CALLS, "provider" => provider, "call" => call, "status" => status)
                    .increment(1);
            };
            count("A", "Get", "success");
            count("A", "Get", "success");
            count("B", "Get", "error");
            metrics::counter!("something_else").increment(1);
        }
        assert_eq!(calls.get("A", "Get", "success"), 2);
        assert_eq!(calls.get("A", "Get", "error"), 0);
        assert_eq!(
            calls.by_call(),
            BTreeMap::from([
                (("Get".to_owned(), "error".to_owned()), 1),
                (("Get".to_owned(), "success".to_owned()), 2),
            ])
        );
        assert_eq!(
            calls.other_counters(),
            BTreeSet::from(["something_else".to_owned()])
        );
        calls.clear();
        assert!(calls.counts().is_empty());
    }
}
