//! PushSecret and ClusterPushSecret: push data of Kubernetes Secrets out to secret stores.
//!
//! - [`plan`]: the pure decisions (what is pushed where, what is stale, the status, the
//!   refresh ledger).
//! - [`controller`]: the PushSecret controller ([`PushSecretController`]) and the one-shot
//!   path [`push_once`] that `sync-once push` uses.
//! - [`cluster`]: the ClusterPushSecret fan-out ([`ClusterPushSecretController`]).
//! - [`metrics`]: `pushsecret_status_condition` and `clusterpushsecret_status_condition`.
//! - [`oneshot`]: [`push_cluster`], every matching PushSecret once.

pub mod cluster;
pub mod controller;
pub mod metrics;
pub mod oneshot;
pub mod plan;

pub use cluster::{ClusterPushSecretController, plan_push_fanout};
pub use controller::{
    PushContext, PushError, PushMode, PushSecretController, PushStores, PushSyncOutcome, push_once,
};
pub use oneshot::{PushOneShotResult, push_cluster};
pub use plan::PUSH_SECRET_FINALIZER;
