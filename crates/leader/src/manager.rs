//! The I/O shell around [`Candidate`]: reads and replaces the Lease, publishes leadership on a
//! watch channel, steps down at the renew deadline and releases the Lease on shutdown.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::decision::{Candidate, Decision, LeaseRecord, Timings};

/// Field manager of every Lease write.
pub const LEASE_FIELD_MANAGER: &str = "external-secrets-leader-election";

/// The Lease name upstream uses (`--leader-election-id`).
pub const DEFAULT_LEASE_NAME: &str = "external-secrets-controller";

/// How many times a round that hit `409 Conflict` is retried at once (re-read, decide again)
/// before waiting for the retry period.
const IMMEDIATE_CONFLICT_RETRIES: u32 = 3;

/// Leader election settings; build with the value methods from [`LeaseConfig::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct LeaseConfig {
    name: String,
    timings: Timings,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_LEASE_NAME.to_owned(),
            timings: Timings::default(),
        }
    }
}

impl LeaseConfig {
    /// The Lease name (default `external-secrets-controller`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long a holder's lease is respected after its last observed renewal (default 15 s).
    pub fn lease_duration(mut self, d: Duration) -> Self {
        self.timings.lease_duration = d;
        self
    }

    /// How long a leader keeps leading without a successful renewal (default 10 s).
    pub fn renew_deadline(mut self, d: Duration) -> Self {
        self.timings.renew_deadline = d;
        self
    }

    /// How often candidates try to acquire and leaders renew (default 2 s).
    pub fn retry_period(mut self, d: Duration) -> Self {
        self.timings.retry_period = d;
        self
    }

    /// The Lease name.
    #[must_use]
    pub fn lease_name(&self) -> &str {
        &self.name
    }

    /// The timings.
    #[must_use]
    pub fn timings(&self) -> Timings {
        self.timings
    }
}

/// What can go wrong in leader election.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid leader election configuration: {0}")]
    Config(String),
    /// The API server refused or failed a Lease request.
    #[error("cannot {verb} Lease \"{namespace}/{name}\"")]
    Kube {
        /// What was being done: read, create, replace.
        verb: &'static str,
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The API error (boxed: kube's error is large).
        #[source]
        source: Box<kube::Error>,
    },
}

impl Error {
    /// Whether the write lost a race (`409 Conflict`: stale resourceVersion, or the Lease was
    /// created meanwhile): read again and decide again.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Kube { source, .. } if matches!(&**source, kube::Error::Api(s) if s.code == 409))
    }
}

/// The error and its sources on one line, for logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Up to 20% more than `period`, so standbys do not poll in lockstep (client-go jitters too).
fn jittered(period: Duration) -> Duration {
    // A fresh RandomState is randomly keyed: enough randomness for spreading polls.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    let fraction = (hasher.finish() % 1000) as f64 / 1000.0;
    period + period.mul_f64(0.2 * fraction)
}

/// Campaigns for one Lease and publishes whether this replica leads.
///
/// Create it with [`new`](Self::new), take receivers with [`subscribe`](Self::subscribe),
/// then drive [`run`](Self::run) (usually in a spawned task). The published value is `true`
/// exactly while this replica leads; it turns `false` before anyone else can take over
/// (at the renew deadline, or on seeing another holder), on shutdown, and when the manager is
/// dropped. `run` never gives up: after losing the Lease it keeps campaigning.
pub struct LeaseManager {
    api: Api<Lease>,
    namespace: String,
    name: String,
    candidate: Candidate,
    leading: watch::Sender<bool>,
}

impl std::fmt::Debug for LeaseManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseManager")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.candidate.identity())
            .finish_non_exhaustive()
    }
}

impl LeaseManager {
    /// A manager for the Lease `config.lease_name()` in `namespace`, campaigning as `identity`
    /// (unique per process: the operator uses the pod name plus a random suffix).
    pub fn new(
        client: Client,
        namespace: &str,
        identity: impl Into<String>,
        config: LeaseConfig,
    ) -> Result<Self, Error> {
        let identity = identity.into();
        if identity.is_empty() {
            return Err(Error::Config("the identity is empty".into()));
        }
        if namespace.is_empty() || config.name.is_empty() {
            return Err(Error::Config(
                "the Lease namespace and name must not be empty".into(),
            ));
        }
        config.timings.validate().map_err(Error::Config)?;
        let (leading, _) = watch::channel(false);
        Ok(Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: config.name,
            candidate: Candidate::new(identity, config.timings),
            leading,
        })
    }

    /// Whether this replica leads, now and on every change. A closed channel (the manager
    /// is gone) means it does not.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// The identity written as `holderIdentity`.
    #[must_use]
    pub fn identity(&self) -> &str {
        self.candidate.identity()
    }

    fn kube_error(&self, verb: &'static str, source: kube::Error) -> Error {
        Error::Kube {
            verb,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source: Box::new(source),
        }
    }

    fn publish(&self) {
        let leading = self.candidate.is_leading(Instant::now());
        let changed = self.leading.send_if_modified(|v| {
            let changed = *v != leading;
            *v = leading;
            changed
        });
        if changed && leading {
            tracing::info!(lease = %self.name, identity = %self.identity(), "became the leader");
        } else if changed {
            tracing::warn!(lease = %self.name, identity = %self.identity(), "stopped leading");
        }
    }

    async fn read(&self) -> Result<Option<Lease>, Error> {
        self.api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.kube_error("read", e))
    }

    fn params() -> PostParams {
        PostParams {
            field_manager: Some(LEASE_FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        }
    }

    /// Replaces `lease` (its resourceVersion is the precondition) with `record` written in.
    async fn replace(&self, mut lease: Lease, record: &LeaseRecord) -> Result<(), Error> {
        record.write_to(lease.spec.get_or_insert_with(LeaseSpec::default));
        // The server keeps managedFields when an update omits them.
        lease.metadata.managed_fields = None;
        self.api
            .replace(&self.name, &Self::params(), &lease)
            .await
            .map_err(|e| self.kube_error("replace", e))?;
        Ok(())
    }

    /// One read-decide-write round (client-go's `tryAcquireOrRenew`).
    async fn round(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let lease = self.read().await?;
        let read = lease
            .as_ref()
            .map(|l| LeaseRecord::from_spec(&l.spec.clone().unwrap_or_default()));
        let decision = self
            .candidate
            .decide(read.as_ref(), Instant::now(), Timestamp::now());
        match (decision, lease) {
            (Decision::Follow { holder, expires_in }, _) => {
                tracing::debug!(lease = %self.name, %holder, ?expires_in, "following");
            }
            (Decision::Create(record), _) => {
                let mut spec = LeaseSpec::default();
                record.write_to(&mut spec);
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api
                    .create(&Self::params(), &lease)
                    .await
                    .map_err(|e| self.kube_error("create", e))?;
                self.candidate.written(record, started, Instant::now());
            }
            (Decision::Acquire(record) | Decision::Renew(record), Some(lease)) => {
                self.replace(lease, &record).await?;
                self.candidate.written(record, started, Instant::now());
            }
            // decide() only acquires or renews a Lease it read.
            (Decision::Acquire(_) | Decision::Renew(_), None) => {}
        }
        Ok(())
    }

    /// Campaigns until `shutdown` resolves, then stops leading and releases the Lease if this
    /// replica holds it (so a standby takes over at its next poll instead of after the lease
    /// duration). Stop whatever the leadership guards before resolving `shutdown`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let timings = self.candidate.timings();
        let mut conflicts = 0u32;
        loop {
            // A leader's round may not outlast its renew deadline: it must notice in time.
            let budget = self
                .candidate
                .deadline_in(Instant::now())
                .unwrap_or(timings.renew_deadline);
            let result = tokio::select! {
                biased;
                () = &mut shutdown => break,
                r = tokio::time::timeout(budget, self.round()) => r,
            };
            let again_now = match result {
                Ok(Ok(())) => false,
                Ok(Err(e)) if e.is_conflict() && conflicts < IMMEDIATE_CONFLICT_RETRIES => {
                    tracing::debug!(lease = %self.name, "lost a write race; reading again");
                    true
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %chain(&e), "leader election round failed");
                    false
                }
                Err(_) => {
                    tracing::warn!(lease = %self.name, ?budget, "leader election round timed out");
                    false
                }
            };
            self.publish();
            if again_now {
                conflicts += 1;
                continue;
            }
            conflicts = 0;
            let wait = match self.candidate.deadline_in(Instant::now()) {
                Some(left) => timings.retry_period.min(left),
                None => jittered(timings.retry_period),
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
            // The renew deadline may have passed while waiting.
            self.publish();
        }
        self.candidate.step_down();
        self.publish();
        let bound = timings.renew_deadline;
        if tokio::time::timeout(bound, self.release()).await.is_err() {
            tracing::warn!(lease = %self.name, ?bound, "releasing the lease timed out");
        }
    }

    async fn release(&self) {
        for _ in 0..=IMMEDIATE_CONFLICT_RETRIES {
            match self.try_release().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity(), "released the lease");
                    return;
                }
                Ok(false) => return,
                Err(e) if e.is_conflict() => {}
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "cannot release the lease");
                    return;
                }
            }
        }
    }

    /// Empties `holderIdentity` if this replica holds the Lease as stored (a round cancelled
    /// by shutdown may have taken it without this manager knowing).
    async fn try_release(&self) -> Result<bool, Error> {
        let Some(lease) = self.read().await? else {
            return Ok(false);
        };
        let read = LeaseRecord::from_spec(&lease.spec.clone().unwrap_or_default());
        let Some(record) = self.candidate.release(&read, Timestamp::now()) else {
            return Ok(false);
        };
        self.replace(lease, &record).await?;
        Ok(true)
    }
}

impl Drop for LeaseManager {
    fn drop(&mut self) {
        // Whoever watches must not keep acting on a stale `true` once nobody renews.
        self.leading.send_replace(false);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn config_defaults_match_upstream() {
        let c = LeaseConfig::default();
        assert_eq!(c.lease_name(), "external-secrets-controller");
        assert_eq!(c.timings(), Timings::default());
        let c = c.name("x").retry_period(Duration::from_millis(500));
        assert_eq!(c.lease_name(), "x");
        assert_eq!(c.timings().retry_period, Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(2));
            assert!(d >= Duration::from_secs(2) && d < Duration::from_millis(2400));
        }
    }
}
