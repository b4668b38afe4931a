//! How a failed reconcile is retried, the same for the ExternalSecret and PushSecret
//! controllers: an unreachable API server is waited out without backing off, a write conflict
//! is retried at once, anything else backs off per object (upstream's 1 s doubling to 7 min),
//! never sooner than a provider's `Retry-After`, and at most one refresh interval when the
//! cause may be fixed outside the object.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::Resource;
use kube::ResourceExt as _;
use kube::runtime::reflector::ObjectRef;

use crate::api_health::ApiHealth;
use crate::schedule::jitter_for;

/// How soon a reconcile that could not reach the API server runs again. The reconcile itself
/// waits for the server (see [`ApiHealth`]), so this only bounds how late it notices the
/// server is back.
pub const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);

/// How soon a reconcile whose write met a conflict runs again (upstream requeues at once; the
/// next reconcile reads and plans afresh).
pub const CONFLICT_RETRY: Duration = Duration::from_millis(200);

/// Per-object backoff after a failure: 1 s doubling to a 7 min cap (upstream's), with up to
/// 10% jitter from the object's identity.
#[must_use]
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let base = Duration::from_secs(1);
    let cap = Duration::from_secs(7 * 60);
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let d = exp.min(cap);
    d + d.mul_f64(jitter.clamp(0.0, 1.0) * 0.1)
}

/// A failure as the retry policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The API server could not be reached: not the object's fault, not backed off.
    Unreachable,
    /// The API server refused a write because the object changed since it was read.
    Conflict,
    /// Anything else: backed off per object.
    Failed {
        /// A delay the provider asked for (`Retry-After`): never retried sooner.
        retry_after: Option<Duration>,
        /// The object's refresh interval, when the cause may be fixed outside the object
        /// (provider data, a template's ConfigMap): looked at again at least this often.
        at_interval: Option<Duration>,
    },
}

/// The failures in a row of each object of kind `K`, and when to retry it.
#[derive(Debug)]
pub struct Failures<K: Resource<DynamicType = ()>>(Mutex<HashMap<ObjectRef<K>, u32>>);

impl<K: Resource<DynamicType = ()>> Default for Failures<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: Resource<DynamicType = ()>> Failures<K> {
    /// When to retry `obj` after `failure`; an unreachable API server is reported to
    /// `health`, so reconciles wait for it instead of failing.
    pub fn retry_in(&self, obj: &K, failure: Failure, health: &ApiHealth) -> Duration {
        let jitter = jitter_for(obj.uid().as_deref().unwrap_or(&obj.name_any()));
        let (retry_after, at_interval) = match failure {
            Failure::Unreachable => {
                health.report_unreachable();
                return UNREACHABLE_RETRY + UNREACHABLE_RETRY.mul_f64(jitter);
            }
            Failure::Conflict => return CONFLICT_RETRY,
            Failure::Failed {
                retry_after,
                at_interval,
            } => (retry_after, at_interval),
        };
        let failures = {
            let mut all = crate::lock(&self.0);
            let n = all.entry(ObjectRef::from_obj(obj)).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let retry = retry_after
            .unwrap_or_default()
            .max(backoff(failures, jitter));
        match at_interval.filter(|d| !d.is_zero()) {
            Some(interval) => retry.min(interval),
            None => retry,
        }
    }

    /// `obj` reconciled: its next failure starts the backoff afresh.
    pub fn succeeded(&self, obj: &K) {
        crate::lock(&self.0).remove(&ObjectRef::from_obj(obj));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(4, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(30, 0.0), Duration::from_secs(420));
        assert_eq!(backoff(1, 0.5), Duration::from_millis(1050));
    }
}
