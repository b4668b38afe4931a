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
