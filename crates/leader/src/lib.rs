//! `eso-leader`: leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! operator replicas exactly one runs reconcilers. It owns the Lease protocol and nothing
//! else: it knows kube's client and the Lease type, not ExternalSecrets, metrics or flags (the
//! operator binary reads the environment and builds the identity).
//!
//! # Layers
//! - [`decision`] is pure: [`Candidate::decide`] turns (the Lease as read, the monotonic and
//!   wall-clock time, this identity, the [`Timings`]) into [`Decision::Create`],
//!   [`Decision::Acquire`], [`Decision::Renew`] or [`Decision::Follow`], and
//!   [`Candidate::is_leading`] says whether the last successful write is still within the renew
//!   deadline. Every case is unit-tested with an injected clock.
//! - [`LeaseManager`] is the I/O shell: each round it reads the Lease, decides, and writes with
//!   the read's `resourceVersion` as precondition (a full replace, never a blind patch), so two
//!   candidates can never both win: the loser gets `409 Conflict`, reads again and decides
//!   again. It publishes leadership on a `tokio::sync::watch` channel.
//! - [`run_terms`] runs work once per leadership term and hands it a [`TermEnd`] future to stop
//!   on, so a binary gates its reconcilers without writing the loop itself.
//!
//! # Protocol (compatible with client-go's `leaderelection` and `kubectl get lease`)
//! - A missing Lease is created with `leaseTransitions: 0`. A free (empty `holderIdentity`) or
//!   expired Lease is taken with `leaseTransitions + 1` and a new `acquireTime`; renewals keep
//!   both and move `renewTime`. `leaseDurationSeconds` is the configured lease duration.
//! - Expiry is measured on the follower's monotonic clock from the moment it saw the Lease
//!   record change, not from the holder's `renewTime`, so clock skew between machines cannot
//!   make a live holder look expired (client-go does the same).
//! - A leader counts its renew deadline from the start of the round whose write succeeded. It
//!   stops leading (publishes `false`) when the deadline passes without a successful renewal,
//!   or as soon as a read shows another holder, and keeps campaigning: a lost Lease never ends
//!   the process (upstream's manager exits, ESO #1725). Followers wait a full lease duration
//!   from their last observed change, so the old leader has at least lease duration minus
//!   renew deadline (5 s by default) to cancel its work before anyone else starts.
//! - On shutdown the manager stops leading, then releases the Lease it holds: empty
//!   `holderIdentity`, `leaseDurationSeconds: 1`, transitions kept (client-go's
//!   `ReleaseOnCancel`). A standby acquires it at its next poll (one retry period) instead of
//!   waiting for expiry.
//!
//! # Defaults
//! Lease `external-secrets-controller`, lease duration 15 s, renew deadline 10 s, retry period
//! 2 s (upstream's). Timings must satisfy lease duration > renew deadline > retry period.
//!
//! # Use
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), eso_leader::Error> {
//! use eso_leader::{LeaseConfig, LeaseManager};
//! let manager = LeaseManager::new(client, "external-secrets", "pod-0_3f2a", LeaseConfig::default())?;
//! let mut leading = manager.subscribe();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let task = tokio::spawn(manager.run(async move { let _ = stopped.await; }));
//! let _ = leading.wait_for(|l| *l).await; // now leading: start the reconcilers
//! // ... on SIGTERM: stop the reconcilers, then release the Lease:
//! let _ = stop.send(());
//! let _ = task.await;
//! # Ok(()) }
//! ```

pub mod decision;
mod manager;
mod terms;

pub use decision::{Candidate, Decision, LeaseRecord, Timings};
pub use manager::{DEFAULT_LEASE_NAME, Error, LEASE_FIELD_MANAGER, LeaseConfig, LeaseManager};
pub use terms::{TermEnd, run_terms};
