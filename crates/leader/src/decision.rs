//! The pure part of leader election: what to do about a Lease as read, given the time.
//!
//! Nothing here performs I/O or reads a clock: the monotonic `now` and the wall-clock
//! `wall_now` are parameters, so every case (free, expired, own, someone else's, skewed clocks,
//! conflicting writes) is a plain unit test.
//!
//! Expiry follows client-go, not the holder's `renewTime`: a holder is live while this replica
//! has seen its record change within `leaseDurationSeconds` of its own monotonic clock. Wall
//! clocks of different machines may disagree by minutes; a monotonic interval measured locally
//! cannot, so clock skew between replicas never lets two of them lead.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

/// Lease duration, renew deadline and retry period.
///
/// A leader steps down when it has not renewed for `renew_deadline`; the others take over when
/// they have not seen the Lease change for `lease_duration`. The gap between the two is the
/// time a stepping-down leader has to cancel its in-flight work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long a holder's lease is respected after its last observed renewal (default 15 s).
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal (default 10 s).
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and leaders renew (default 2 s).
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timings {
    /// Checks the ordering client-go requires: lease duration > renew deadline > retry period >
    /// 0, and a lease duration of at least one second (the Lease stores whole seconds).
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration < Duration::from_secs(1) {
            return Err(format!(
                "lease duration {:?} is shorter than one second",
                self.lease_duration
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "renew deadline {:?} must be shorter than the lease duration {:?}",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(format!(
                "retry period {:?} must be positive and shorter than the renew deadline {:?}",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }

    /// The lease duration in whole seconds, rounded up, as `leaseDurationSeconds` stores it.
    #[must_use]
    pub fn lease_duration_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }
}

/// The fields of a Lease's spec that leader election reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseRecord {
    /// `holderIdentity`; empty when the Lease is free or was released.
    pub holder: String,
    /// `leaseDurationSeconds`.
    pub lease_duration_seconds: i32,
    /// `acquireTime`: when the current holder acquired it.
    pub acquire_time: Option<Timestamp>,
    /// `renewTime`: when the current holder last renewed it (its own wall clock).
    pub renew_time: Option<Timestamp>,
    /// `leaseTransitions`: how many times the holder changed.
    pub transitions: i32,
}

impl LeaseRecord {
    /// The record of a Lease spec as stored.
    #[must_use]
    pub fn from_spec(spec: &LeaseSpec) -> Self {
        Self {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or_default(),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or_default(),
        }
    }

    /// Writes this record into a Lease spec, leaving the fields it does not own
    /// (`strategy`, `preferredHolder`) as they were.
    pub fn write_to(&self, spec: &mut LeaseSpec) {
        spec.holder_identity = Some(self.holder.clone());
        spec.lease_duration_seconds = Some(self.lease_duration_seconds);
        spec.acquire_time = self.acquire_time.map(MicroTime);
        spec.renew_time = self.renew_time.map(MicroTime);
        spec.lease_transitions = Some(self.transitions);
    }

    /// Whether nobody holds the Lease (never taken, or released).
    #[must_use]
    pub fn is_free(&self) -> bool {
        self.holder.is_empty()
    }
}

/// What to do after reading the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease exists: create it with this record.
    Create(LeaseRecord),
    /// The Lease is free, released or expired: replace it with this record (with the read's
    /// `resourceVersion` as precondition).
    Acquire(LeaseRecord),
    /// This replica holds the Lease: replace it with this renewed record.
    Renew(LeaseRecord),
    /// Someone else holds a live Lease: wait.
    Follow {
        /// The holder.
        holder: String,
        /// How long until the holder's lease expires unless it renews.
        expires_in: Duration,
    },
}

/// One candidate's view of a Lease: what it last saw, when, and whether it leads.
///
/// Drive it with [`decide`](Self::decide) after every read and [`written`](Self::written)
/// after every successful write; ask [`is_leading`](Self::is_leading) with the current time.
/// A write that fails with `409 Conflict` needs no call: read again and decide again.
#[derive(Debug, Clone)]
pub struct Candidate {
    identity: String,
    timings: Timings,
    /// The last record read and when this candidate first saw it (monotonic).
    observed: Option<(LeaseRecord, Instant)>,
    /// While leading: when the round of the last successful write began.
    renewed_at: Option<Instant>,
}

impl Candidate {
    /// A candidate with this identity and these timings, leading nothing yet.
    #[must_use]
    pub fn new(identity: impl Into<String>, timings: Timings) -> Self {
        Self {
            identity: identity.into(),
            timings,
            observed: None,
            renewed_at: None,
        }
    }

    /// This candidate's identity (`holderIdentity` when it leads).
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The timings.
    #[must_use]
    pub fn timings(&self) -> Timings {
        self.timings
    }

    fn record(
        &self,
        acquire_time: Option<Timestamp>,
        transitions: i32,
        wall_now: Timestamp,
    ) -> LeaseRecord {
        LeaseRecord {
            holder: self.identity.clone(),
            lease_duration_seconds: self.timings.lease_duration_seconds(),
            acquire_time: Some(acquire_time.unwrap_or(wall_now)),
            renew_time: Some(wall_now),
            transitions,
        }
    }

    /// Decides what to do about the Lease as just read (`None`: no Lease exists) at the
    /// monotonic time `now` and the wall-clock time `wall_now` (written into the record).
    ///
    /// Seeing someone else hold a live Lease ends this candidate's leadership at once.
    pub fn decide(
        &mut self,
        read: Option<&LeaseRecord>,
        now: Instant,
        wall_now: Timestamp,
    ) -> Decision {
        let Some(read) = read else {
            self.observed = None;
            return Decision::Create(self.record(None, 0, wall_now));
        };
        let seen_at = match &self.observed {
            Some((record, at)) if record == read => *at,
            _ => {
                self.observed = Some((read.clone(), now));
                now
            }
        };
        if read.holder == self.identity {
            // Ours (possibly from before a step-down whose write did land after all): keep
            // acquireTime and the transition count, as client-go does.
            return Decision::Renew(self.record(read.acquire_time, read.transitions, wall_now));
        }
        let transitions = read.transitions.saturating_add(1);
        if read.is_free() {
            self.renewed_at = None;
            return Decision::Acquire(self.record(None, transitions, wall_now));
        }
        let duration = u64::try_from(read.lease_duration_seconds)
            .ok()
            .filter(|s| *s > 0)
            .map_or(self.timings.lease_duration, Duration::from_secs);
        let expires_at = seen_at + duration;
        self.renewed_at = None;
        if now < expires_at {
            Decision::Follow {
                holder: read.holder.clone(),
                expires_in: expires_at - now,
            }
        } else {
            Decision::Acquire(self.record(None, transitions, wall_now))
        }
    }

    /// The write of a `Create`, `Acquire` or `Renew` decision succeeded. `round_started` is
    /// when the read that led to it began: the renew deadline counts from there, so this
    /// replica stops leading before anyone who saw the write can consider the lease expired.
    pub fn written(&mut self, record: LeaseRecord, round_started: Instant, now: Instant) {
        self.observed = Some((record, now));
        self.renewed_at = Some(round_started);
    }

    /// Whether this candidate leads at `now`: its last successful write began less than the
    /// renew deadline ago and no read since showed another holder.
    #[must_use]
    pub fn is_leading(&self, now: Instant) -> bool {
        self.deadline_in(now).is_some()
    }

    /// While leading, the time left before the renew deadline.
    #[must_use]
    pub fn deadline_in(&self, now: Instant) -> Option<Duration> {
        let deadline = self.renewed_at? + self.timings.renew_deadline;
        deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
    }

    /// Stops leading (shutdown, or the renew deadline passed); returns whether it was leading.
    pub fn step_down(&mut self) -> bool {
        self.renewed_at.take().is_some()
    }

    /// The record that releases a Lease this candidate holds (empty holder, 1 s duration,
    /// transitions kept, as client-go's `ReleaseOnCancel`), or `None` when `read` shows
    /// someone else (or nobody) holding it.
    #[must_use]
    pub fn release(&self, read: &LeaseRecord, wall_now: Timestamp) -> Option<LeaseRecord> {
        (read.holder == self.identity).then(|| LeaseRecord {
            holder: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(wall_now),
            renew_time: Some(wall_now),
            transitions: read.transitions,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn timings() -> Timings {
        Timings::default()
    }

    fn wall(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn held_by(holder: &str, transitions: i32, renewed: i64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            lease_duration_seconds: 15,
            acquire_time: Some(wall(0)),
            renew_time: Some(wall(renewed)),
            transitions,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn missing_lease_is_created_with_zero_transitions() {
        let t0 = Instant::now();
        let mut a = Candidate::new("a", timings());
        let Decision::Create(rec) = a.decide(None, t0, wall(5)) else {
            panic!("expected Create");
        };
        assert_eq!(rec.holder, "a");
        assert_eq!(rec.transitions, 0);
        assert_eq!(rec.acquire_time, Some(wall(5)));
        assert_eq!(rec.renew_time, Some(wall(5)));
        assert_eq!(rec.lease_duration_seconds, 15);
        assert!(!a.is_leading(t0), "not leading before the write lands");
        a.written(rec, t0, t0);
        assert!(a.is_leading(t0));
    }

    #[test]
    fn free_lease_is_acquired_and_counts_a_transition() {
        let t0 = Instant::now();
        let mut a = Candidate::new("a", timings());
        let free = LeaseRecord {
            transitions: 3,
            ..LeaseRecord::default()
        };
        let Decision::Acquire(rec) = a.decide(Some(&free), t0, wall(1)) else {
            panic!("expected Acquire");
        };
        assert_eq!(rec.holder, "a");
        assert_eq!(rec.transitions, 4);
        assert_eq!(rec.acquire_time, Some(wall(1)));
    }

    #[test]
    fn released_lease_is_taken_at_once() {
        let t0 = Instant::now();
        let holder = Candidate::new("a", timings());
        let released = holder.release(&held_by("a", 2, 0), wall(3)).unwrap();
        assert_eq!(released.holder, "");
        assert_eq!(released.lease_duration_seconds, 1);
        assert_eq!(released.transitions, 2);
        let mut b = Candidate::new("b", timings());
        // Just seen for the first time, yet taken: an empty holder is no holder.
        let Decision::Acquire(rec) = b.decide(Some(&released), t0, wall(3)) else {
            panic!("expected Acquire");
        };
        assert_eq!((rec.holder.as_str(), rec.transitions), ("b", 3));
    }

    #[test]
    fn release_only_touches_our_own_lease() {
        let a = Candidate::new("a", timings());
        assert!(a.release(&held_by("b", 1, 0), wall(1)).is_none());
        assert!(a.release(&LeaseRecord::default(), wall(1)).is_none());
    }

    #[test]
    fn live_lease_of_another_is_followed_until_it_expires() {
        let t0 = Instant::now();
        let mut b = Candidate::new("b", timings());
        let lease = held_by("a", 0, 0);
        assert_eq!(
            b.decide(Some(&lease), t0, wall(0)),
            Decision::Follow {
                holder: "a".into(),
                expires_in: secs(15)
            }
        );
        // Unchanged for less than the lease duration: still follow.
        assert!(matches!(
            b.decide(Some(&lease), t0 + secs(14), wall(14)),
            Decision::Follow { expires_in, .. } if expires_in == secs(1)
        ));
        // Unchanged for the whole lease duration: the holder stopped renewing.
        let Decision::Acquire(rec) = b.decide(Some(&lease), t0 + secs(15), wall(15)) else {
            panic!("expected Acquire");
        };
        assert_eq!((rec.holder.as_str(), rec.transitions), ("b", 1));
        assert_eq!(rec.acquire_time, Some(wall(15)));
    }

    #[test]
    fn renewals_by_the_holder_restart_the_expiry() {
        let t0 = Instant::now();
        let mut b = Candidate::new("b", timings());
        b.decide(Some(&held_by("a", 0, 0)), t0, wall(0));
        // At t0+10 the holder has renewed: expiry counts from then.
        b.decide(Some(&held_by("a", 0, 10)), t0 + secs(10), wall(10));
        assert!(matches!(
            b.decide(Some(&held_by("a", 0, 10)), t0 + secs(20), wall(20)),
            Decision::Follow { expires_in, .. } if expires_in == secs(5)
        ));
    }

    #[test]
    fn holder_expiry_uses_the_lease_duration_it_wrote() {
        let t0 = Instant::now();
        let mut b = Candidate::new("b", timings());
        let mut lease = held_by("a", 0, 0);
        lease.lease_duration_seconds = 60;
        b.decide(Some(&lease), t0, wall(0));
        assert!(matches!(
            b.decide(Some(&lease), t0 + secs(30), wall(30)),
            Decision::Follow { .. }
        ));
        // A missing or invalid duration falls back to ours.
        lease.lease_duration_seconds = 0;
        let mut c = Candidate::new("c", timings());
        c.decide(Some(&lease), t0, wall(0));
        assert!(matches!(
            c.decide(Some(&lease), t0 + secs(15), wall(15)),
            Decision::Acquire(_)
        ));
    }

    #[test]
    fn own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let t0 = Instant::now();
        let mut a = Candidate::new("a", timings());
        let lease = held_by("a", 7, 4);
        let Decision::Renew(rec) = a.decide(Some(&lease), t0, wall(6)) else {
            panic!("expected Renew");
        };
        assert_eq!(rec.acquire_time, Some(wall(0)));
        assert_eq!(rec.renew_time, Some(wall(6)));
        assert_eq!(rec.transitions, 7);
    }

    #[test]
    fn clock_skew_neither_steals_a_live_lease_nor_respects_a_dead_one() {
        let t0 = Instant::now();
        // The holder's clock is an hour behind ours: by wall time its renewTime looks an hour
        // old, yet it renews every few seconds, so it is live.
        let mut b = Candidate::new("b", timings());
        for i in 0..10u64 {
            let renewed = i64::try_from(i * 2).unwrap() - 3600;
            let d = b.decide(Some(&held_by("a", 0, renewed)), t0 + secs(i * 2), wall(0));
            assert!(matches!(d, Decision::Follow { .. }), "round {i}: {d:?}");
        }
        // The holder's clock is an hour ahead and it died: its renewTime is in our future,
        // but the record stopped changing, so it expires after the lease duration.
        let mut c = Candidate::new("c", timings());
        let dead = held_by("a", 0, 3600);
        assert!(matches!(
            c.decide(Some(&dead), t0, wall(0)),
            Decision::Follow { .. }
        ));
        assert!(matches!(
            c.decide(Some(&dead), t0 + secs(15), wall(15)),
            Decision::Acquire(_)
        ));
    }

    #[test]
    fn conflicting_acquire_rereads_and_follows_the_winner() {
        let t0 = Instant::now();
        let free = LeaseRecord::default();
        let mut a = Candidate::new("a", timings());
        let mut b = Candidate::new("b", timings());
        let Decision::Acquire(a_rec) = a.decide(Some(&free), t0, wall(0)) else {
            panic!("a should try to acquire");
        };
        let Decision::Acquire(_) = b.decide(Some(&free), t0, wall(0)) else {
            panic!("b should try to acquire");
        };
        // a's replace wins; b's replace gets 409 (stale resourceVersion). b reads again and
        // decides again: it sees a fresh holder and follows.
        a.written(a_rec.clone(), t0, t0);
        assert!(matches!(
            b.decide(Some(&a_rec), t0 + Duration::from_millis(5), wall(0)),
            Decision::Follow { ref holder, .. } if holder == "a"
        ));
        assert!(a.is_leading(t0 + secs(1)));
        assert!(!b.is_leading(t0 + secs(1)));
    }

    #[test]
    fn conflicting_renew_that_shows_another_holder_ends_leadership() {
        let t0 = Instant::now();
        let mut a = Candidate::new("a", timings());
        let Decision::Renew(rec) = a.decide(Some(&held_by("a", 1, 0)), t0, wall(0)) else {
            panic!("expected Renew");
        };
        a.written(rec, t0, t0);
        assert!(a.is_leading(t0 + secs(2)));
        // The next renew gets 409: someone replaced the Lease. The re-read shows them.
        let d = a.decide(Some(&held_by("z", 2, 2)), t0 + secs(2), wall(2));
        assert!(matches!(d, Decision::Follow { .. }));
        assert!(!a.is_leading(t0 + secs(2)));
    }

    #[test]
    fn leader_that_cannot_renew_stops_leading_at_the_renew_deadline() {
        let t0 = Instant::now();
        let mut a = Candidate::new("a", timings());
        let Decision::Create(rec) = a.decide(None, t0, wall(0)) else {
            panic!("expected Create");
        };
        a.written(rec.clone(), t0, t0 + secs(1));
        assert_eq!(a.deadline_in(t0 + secs(4)), Some(secs(6)));
        assert!(a.is_leading(t0 + Duration::from_millis(9_999)));
        assert!(!a.is_leading(t0 + secs(10)));
        // Meanwhile a follower that saw the write at t0+1 waits until t0+16: the gap is the
        // time the old leader has to cancel its work.
        let mut b = Candidate::new("b", timings());
        assert!(matches!(
            b.decide(Some(&rec), t0 + secs(1), wall(1)),
            Decision::Follow { .. }
        ));
        assert!(matches!(
            b.decide(Some(&rec), t0 + secs(15), wall(15)),
            Decision::Follow { .. }
        ));
        assert!(matches!(
            b.decide(Some(&rec), t0 + secs(16), wall(16)),
            Decision::Acquire(_)
        ));
        // After stepping down, seeing its own record it renews (and leads) again.
        assert!(a.step_down());
        assert!(!a.is_leading(t0));
        assert!(matches!(
            a.decide(Some(&rec), t0 + secs(11), wall(11)),
            Decision::Renew(_)
        ));
    }

    #[test]
    fn timings_are_validated_like_client_go() {
        assert!(Timings::default().validate().is_ok());
        let bad = Timings {
            renew_deadline: secs(15),
            ..Timings::default()
        };
        assert!(bad.validate().unwrap_err().contains("renew deadline"));
        let bad = Timings {
            retry_period: secs(10),
            ..Timings::default()
        };
        assert!(bad.validate().unwrap_err().contains("retry period"));
        let odd = Timings {
            lease_duration: Duration::from_millis(2500),
            renew_deadline: secs(2),
            retry_period: Duration::from_millis(500),
        };
        assert_eq!(odd.lease_duration_seconds(), 3);
    }

    #[test]
    fn record_round_trips_through_a_lease_spec_keeping_foreign_fields() {
        let mut spec = LeaseSpec {
            strategy: Some("OldestEmulationVersion".into()),
            ..LeaseSpec::default()
        };
        let rec = held_by("a", 4, 9);
        rec.write_to(&mut spec);
        assert_eq!(spec.strategy.as_deref(), Some("OldestEmulationVersion"));
        assert_eq!(LeaseRecord::from_spec(&spec), rec);
    }
}
