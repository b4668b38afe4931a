//! `pushsecret_status_condition` and `clusterpushsecret_status_condition`: per-object status
//! series derived from the stored status (never from a local attempt), like the
//! ExternalSecret ones in [`crate::object_metrics`]. Unlike upstream, the PushSecret series
//! is removed when the object is deleted, and the ClusterPushSecret one follows Ready=False as
//! well as Ready=True.

use std::sync::Arc;

use eso_api::{ClusterPushSecret, PushSecret};
use kube::Api;

use crate::object_metrics::{StatusSeries, spawn_condition_watch};

/// The PushSecret metric name, as upstream.
pub const PUSH_STATUS_CONDITION: &str = "pushsecret_status_condition";
/// The ClusterPushSecret metric name, as upstream.
pub const CLUSTER_PUSH_STATUS_CONDITION: &str = "clusterpushsecret_status_condition";

/// An empty `pushsecret_status_condition` series.
#[must_use]
pub fn push_secret_series() -> StatusSeries {
    StatusSeries::new(
        PUSH_STATUS_CONDITION,
        "The status condition of a specific PushSecret",
    )
}

/// An empty `clusterpushsecret_status_condition` series.
#[must_use]
pub fn cluster_push_secret_series() -> StatusSeries {
    StatusSeries::new(
        CLUSTER_PUSH_STATUS_CONDITION,
        "The status condition of a specific ClusterPushSecret",
    )
}

/// Keeps `series` equal to the stored conditions of every PushSecret `api` lists.
pub fn spawn_push_series(
    api: Api<PushSecret>,
    series: Arc<StatusSeries>,
) -> tokio::task::JoinHandle<()> {
    spawn_condition_watch(api, series, |ps| {
        ps.status
            .iter()
            .flat_map(|s| &s.conditions)
            .map(|c| (c.type_.clone(), c.status))
            .collect()
    })
}

/// Keeps `series` equal to the stored conditions of every ClusterPushSecret.
pub fn spawn_cluster_push_series(
    api: Api<ClusterPushSecret>,
    series: Arc<StatusSeries>,
) -> tokio::task::JoinHandle<()> {
    spawn_condition_watch(api, series, |cps| {
        cps.status
            .iter()
            .flat_map(|s| &s.conditions)
            .map(|c| (c.type_.clone(), c.status))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::common::{Condition, ConditionStatus};

    #[test]
    fn series_carry_upstreams_names_and_follow_both_statuses() {
        let ready = |status| Condition {
            type_: "Ready".into(),
            status,
            reason: None,
            message: None,
            last_transition_time: None,
        };
        let push = push_secret_series();
        push.observe_conditions("team", "db", &[ready(ConditionStatus::False)]);
        let text = push.render();
        assert!(text.contains(
            r#"pushsecret_status_condition{name="db",namespace="team",condition="Ready",status="False"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"pushsecret_status_condition{name="db",namespace="team",condition="Ready",status="True"} 0"#
        ), "{text}");
        push.forget("team", "db");
        assert!(push.is_empty());
        let cluster = cluster_push_secret_series();
        cluster.observe_conditions("", "shared", &[ready(ConditionStatus::True)]);
        assert!(cluster.render().contains(
            r#"clusterpushsecret_status_condition{name="shared",namespace="",condition="Ready",status="True"} 1"#
        ));
    }
}
