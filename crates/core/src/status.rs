//! The ExternalSecret status a reconcile writes, computed purely from the old status, the
//! outcome and the time: the `Ready` condition (its `lastTransitionTime` kept while its status
//! does not change), `refreshTime`, `syncedResourceVersion` and `binding`.

use eso_api::common::{Condition, ConditionStatus};
use eso_api::reasons::CONDITION_READY;
use eso_api::{ExternalSecret, ExternalSecretStatus, SecretBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::schedule::current_resource_version;

/// How a reconcile ended, as far as status is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider was read and the plan applied (or nothing needed writing).
    Synced {
        /// Upstream's reason, e.g. `SecretSynced`.
        reason: &'static str,
        /// The message.
        message: String,
    },
    /// The sync failed; the Secret keeps its last good data.
    Failed {
        /// Upstream's reason (`SecretSyncedError`).
        reason: &'static str,
        /// What failed, naming the key, provider and cause.
        message: String,
    },
}

/// Replaces (or adds) a condition, keeping `lastTransitionTime` when the status is unchanged.
#[must_use]
pub fn set_condition(conditions: &[Condition], new: Condition) -> Vec<Condition> {
    let mut out: Vec<Condition> = Vec::with_capacity(conditions.len() + 1);
    let mut replaced = false;
    for c in conditions {
        if c.type_ == new.type_ {
            let mut next = new.clone();
            if c.status == new.status {
                next.last_transition_time = c.last_transition_time.clone();
            }
            out.push(next);
            replaced = true;
        } else {
            out.push(c.clone());
        }
    }
    if !replaced {
        out.push(new);
    }
    out
}

/// The status after a reconcile that started at `started`.
#[must_use]
pub fn next_status(
    es: &ExternalSecret,
    outcome: &Outcome,
    started: Timestamp,
) -> ExternalSecretStatus {
    let old = es.status.clone().unwrap_or_default();
    let (status, reason, message) = match outcome {
        Outcome::Synced { reason, message } => (ConditionStatus::True, *reason, message.clone()),
        Outcome::Failed { reason, message } => (ConditionStatus::False, *reason, message.clone()),
    };
    let conditions = set_condition(
        &old.conditions,
        Condition {
            type_: CONDITION_READY.to_owned(),
            status,
            reason: Some(reason.to_owned()),
            message: Some(message),
            last_transition_time: Some(Time(started)),
        },
    );
    match outcome {
        Outcome::Synced { .. } => ExternalSecretStatus {
            refresh_time: Some(Time(started)),
            synced_resource_version: Some(current_resource_version(es)),
            conditions,
            binding: Some(SecretBinding {
                name: Some(es.target_name()),
            }),
        },
        Outcome::Failed { .. } => ExternalSecretStatus { conditions, ..old },
    }
}

/// When a successful refresh writes the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RefreshTimeWrites {
    /// Only when something other than `refreshTime` changes, or the Secret was written: a
    /// refresh that finds nothing new writes nothing (zero API writes at steady state).
    #[default]
    OnChange,
    /// On every refresh, as upstream does (`refreshTime` always current).
    EveryRefresh,
}

/// Whether `new` must be written over the stored status `old`.
#[must_use]
pub fn status_needs_write(
    old: Option<&ExternalSecretStatus>,
    new: &ExternalSecretStatus,
    secret_written: bool,
    policy: RefreshTimeWrites,
) -> bool {
    let Some(old) = old else { return true };
    if old == new {
        return false;
    }
    if secret_written || policy == RefreshTimeWrites::EveryRefresh {
        return true;
    }
    let mut same_time = new.clone();
    same_time.refresh_time = old.refresh_time.clone();
    // A status that never recorded a refresh must get one.
    old.refresh_time.is_none() || *old != same_time
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EsBuilder;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn ok() -> Outcome {
        Outcome::Synced {
            reason: "SecretSynced",
            message: "secret synced".into(),
        }
    }

    fn failed() -> Outcome {
        Outcome::Failed {
            reason: "SecretSyncedError",
            message: "boom".into(),
        }
    }

    #[test]
    fn success_sets_refresh_time_version_binding_and_ready() {
        let mut es = EsBuilder::new("es")
            .target_name("creds")
            .data("k", "r")
            .build();
        es.metadata.generation = Some(4);
        let s = next_status(&es, &ok(), at(10));
        assert_eq!(s.refresh_time, Some(Time(at(10))));
        assert!(
            s.synced_resource_version
                .as_deref()
                .unwrap()
                .starts_with("4-")
        );
        assert_eq!(s.binding.unwrap().name.as_deref(), Some("creds"));
        assert_eq!(s.conditions[0].status, ConditionStatus::True);
        assert_eq!(s.conditions[0].reason.as_deref(), Some("SecretSynced"));
    }

    #[test]
    fn an_unchanged_refresh_writes_nothing_unless_asked_to() {
        let es = EsBuilder::new("es").data("k", "r").build();
        let first = next_status(&es, &ok(), at(10));
        let on_change = RefreshTimeWrites::OnChange;
        assert!(status_needs_write(None, &first, false, on_change));

        let mut synced = es.clone();
        synced.status = Some(first.clone());
        let again = next_status(&synced, &ok(), at(70));
        assert!(!status_needs_write(Some(&first), &again, false, on_change));
        assert!(status_needs_write(Some(&first), &again, true, on_change));
        assert!(status_needs_write(
            Some(&first),
            &again,
            false,
            RefreshTimeWrites::EveryRefresh
        ));

        // A changed condition is written even though only the time would differ otherwise.
        let failing = next_status(&synced, &failed(), at(70));
        assert!(status_needs_write(Some(&first), &failing, false, on_change));
        // So is a status without refreshTime (a fresh object, or one another writer reset).
        let mut no_time = first.clone();
        no_time.refresh_time = None;
        assert!(status_needs_write(Some(&no_time), &again, false, on_change));
    }

    #[test]
    fn failure_keeps_the_last_sync_and_flips_ready() {
        let mut es = EsBuilder::new("es").data("k", "r").build();
        es.status = Some(next_status(&es, &ok(), at(10)));
        let s = next_status(&es, &failed(), at(20));
        assert_eq!(
            s.refresh_time,
            Some(Time(at(10))),
            "refreshTime is the last success"
        );
        assert_eq!(s.conditions[0].status, ConditionStatus::False);
        assert_eq!(s.conditions[0].message.as_deref(), Some("boom"));
        assert_eq!(s.conditions[0].last_transition_time, Some(Time(at(20))));
    }

    #[test]
    fn transition_time_is_kept_while_status_is_unchanged() {
        let mut es = EsBuilder::new("es").data("k", "r").build();
        es.status = Some(next_status(&es, &ok(), at(10)));
        let s = next_status(&es, &ok(), at(99));
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].last_transition_time, Some(Time(at(10))));
        assert_eq!(s.refresh_time, Some(Time(at(99))));
    }

    #[test]
    fn other_conditions_are_kept() {
        let other = Condition {
            type_: "Other".into(),
            status: ConditionStatus::Unknown,
            reason: None,
            message: None,
            last_transition_time: None,
        };
        let mut es = EsBuilder::new("es").data("k", "r").build();
        es.status = Some(ExternalSecretStatus {
            conditions: vec![other.clone()],
            ..Default::default()
        });
        let s = next_status(&es, &ok(), at(1));
        assert_eq!(s.conditions.len(), 2);
        assert_eq!(s.conditions[0], other);
    }
}
