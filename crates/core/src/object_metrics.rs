//! Per-object status series (`externalsecret_status_condition`), derived from each object's
//! status as the API server stores it, never from a local attempt.
//!
//! The `metrics` facade cannot delete a series, and a deleted ExternalSecret must stop
//! exporting, so these series live here and are rendered into the Prometheus text next to the
//! exporter's own output. The operator feeds this from its watch of ExternalSecrets (every
//! status change, at start-up, and deletions) and renders it only where it should be exported
//! (the leader, unless configured otherwise).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use eso_api::ExternalSecret;
use eso_api::common::{Condition, ConditionStatus};

/// The ExternalSecret metric name, as upstream.
pub const STATUS_CONDITION: &str = "externalsecret_status_condition";
/// The SecretStore metric name, as upstream.
pub const STORE_STATUS_CONDITION: &str = "secretstore_status_condition";
/// The ClusterSecretStore metric name, as upstream.
pub const CLUSTER_STORE_STATUS_CONDITION: &str = "clustersecretstore_status_condition";
/// The ClusterExternalSecret metric name, as upstream.
pub const CES_STATUS_CONDITION: &str = "clusterexternalsecret_status_condition";

/// (namespace, name) of an object, and its (condition type, status) pairs.
type SeriesMap = BTreeMap<(String, String), Vec<(String, ConditionStatus)>>;

/// Status series of every ExternalSecret the operator knows.
#[derive(Debug)]
pub struct StatusSeries {
    metric: &'static str,
    help: &'static str,
    /// (namespace, name) -> [(condition type, status)]
    objects: Mutex<SeriesMap>,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

impl StatusSeries {
    /// An empty set for one metric.
    #[must_use]
    pub fn new(metric: &'static str, help: &'static str) -> Self {
        Self {
            metric,
            help,
            objects: Mutex::default(),
        }
    }

    /// The ExternalSecret series (`externalsecret_status_condition`).
    #[must_use]
    pub fn external_secrets() -> Self {
        Self::new(
            STATUS_CONDITION,
            "The status condition of a specific External Secret",
        )
    }

    /// The SecretStore series (`secretstore_status_condition`).
    #[must_use]
    pub fn secret_stores() -> Self {
        Self::new(
            STORE_STATUS_CONDITION,
            "The status condition of a specific SecretStore",
        )
    }

    /// The ClusterSecretStore series (`clustersecretstore_status_condition`).
    #[must_use]
    pub fn cluster_secret_stores() -> Self {
        Self::new(
            CLUSTER_STORE_STATUS_CONDITION,
            "The status condition of a specific ClusterSecretStore",
        )
    }

    /// The ClusterExternalSecret series (`clusterexternalsecret_status_condition`). Unlike
    /// upstream, which only ever sets it for Ready=True, it follows the stored condition both
    /// ways.
    #[must_use]
    pub fn cluster_external_secrets() -> Self {
        Self::new(
            CES_STATUS_CONDITION,
            "The status condition of a specific ClusterExternalSecret",
        )
    }

    /// Records an object's conditions as stored.
    pub fn observe_conditions(&self, namespace: &str, name: &str, conditions: &[Condition]) {
        self.observe_pairs(
            namespace,
            name,
            conditions
                .iter()
                .map(|c| (c.type_.clone(), c.status))
                .collect(),
        );
    }

    /// Records an object's (condition type, status) pairs as stored.
    pub fn observe_pairs(
        &self,
        namespace: &str,
        name: &str,
        pairs: Vec<(String, ConditionStatus)>,
    ) {
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert((namespace.to_owned(), name.to_owned()), pairs);
        }
    }

    /// Records the conditions of an ExternalSecret as stored.
    pub fn observe(&self, es: &ExternalSecret) {
        let conditions = es
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        self.observe_conditions(
            es.metadata.namespace.as_deref().unwrap_or_default(),
            es.metadata.name.as_deref().unwrap_or_default(),
            conditions,
        );
    }

    /// Drops every series of a deleted ExternalSecret.
    pub fn forget(&self, namespace: &str, name: &str) {
        if let Ok(mut objects) = self.objects.lock() {
            objects.remove(&(namespace.to_owned(), name.to_owned()));
        }
    }

    /// Replaces the whole set (after a relist), so objects deleted meanwhile disappear.
    pub fn replace_all<'a>(&self, all: impl IntoIterator<Item = &'a ExternalSecret>) {
        let fresh = Self::new(self.metric, self.help);
        for es in all {
            fresh.observe(es);
        }
        self.replace(fresh.objects.into_inner().unwrap_or_default());
    }

    fn replace(&self, fresh: SeriesMap) {
        if let Ok(mut objects) = self.objects.lock() {
            *objects = fresh;
        }
    }

    /// Whether the object (as last listed or watched) has series.
    #[must_use]
    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.objects
            .lock()
            .is_ok_and(|o| o.contains_key(&(namespace.to_owned(), name.to_owned())))
    }

    /// How many objects have series.
    #[must_use]
    pub fn len(&self) -> usize {
        self.objects.lock().map(|o| o.len()).unwrap_or_default()
    }

    /// Whether no object has series.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The series in Prometheus text format. Like upstream, each condition exports its
    /// current status as 1 and the opposite status as 0.
    #[must_use]
    pub fn render(&self) -> String {
        let Ok(objects) = self.objects.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let metric = self.metric;
        let _ = writeln!(out, "# HELP {metric} {}", self.help);
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for ((namespace, name), conditions) in objects.iter() {
            for (condition, status) in conditions {
                let pairs: &[(ConditionStatus, u8)] = match status {
                    ConditionStatus::True => {
                        &[(ConditionStatus::True, 1), (ConditionStatus::False, 0)]
                    }
                    ConditionStatus::False => {
                        &[(ConditionStatus::False, 1), (ConditionStatus::True, 0)]
                    }
                    ConditionStatus::Unknown => &[(ConditionStatus::Unknown, 1)],
                };
                for (s, v) in pairs {
                    let _ = writeln!(
                        out,
                        "{metric}{{name=\"{}\",namespace=\"{}\",condition=\"{}\",status=\"{}\"}} {v}",
                        escape(name),
                        escape(namespace),
                        escape(condition),
                        s.as_str()
                    );
                }
            }
        }
        out
    }
}

/// Keeps `series` equal to the stored conditions of every object `api` lists: every change,
/// every deletion, and a full replacement on each relist (so objects deleted while the watch
/// was down disappear). Runs until the returned task is aborted.
pub fn spawn_condition_watch<K>(
    api: kube::Api<K>,
    series: std::sync::Arc<StatusSeries>,
    conditions: fn(&K) -> Vec<(String, ConditionStatus)>,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use futures::StreamExt as _;
    use kube::ResourceExt as _;
    use kube::runtime::{WatchStreamExt as _, watcher};

    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .backoff(crate::api_health::WatchBackoff::default());
        futures::pin_mut!(stream);
        let mut relist = SeriesMap::new();
        let key = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o)) => {
                    let (namespace, name) = key(&o);
                    series.observe_pairs(&namespace, &name, conditions(&o));
                }
                Ok(watcher::Event::Delete(o)) => {
                    let (namespace, name) = key(&o);
                    series.forget(&namespace, &name);
                }
                Ok(watcher::Event::Init) => relist.clear(),
                Ok(watcher::Event::InitApply(o)) => {
                    relist.insert(key(&o), conditions(&o));
                }
                Ok(watcher::Event::InitDone) => series.replace(std::mem::take(&mut relist)),
                Err(e) => {
                    tracing::warn!(metric = series.metric, error = %e, "status watch failed; retrying")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EsBuilder;

    fn with_ready(name: &str, status: ConditionStatus) -> ExternalSecret {
        let mut es = EsBuilder::new(name).build();
        es.status = Some(eso_api::ExternalSecretStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status,
                reason: None,
                message: None,
                last_transition_time: None,
            }],
            ..Default::default()
        });
        es
    }

    #[test]
    fn renders_mirrored_pairs_and_forgets_deleted_objects() {
        let series = StatusSeries::external_secrets();
        series.observe(&with_ready("a", ConditionStatus::True));
        series.observe(&with_ready("b", ConditionStatus::False));
        let text = series.render();
        assert!(text.contains(r#"externalsecret_status_condition{name="a",namespace="default",condition="Ready",status="True"} 1"#));
        assert!(text.contains(r#"externalsecret_status_condition{name="a",namespace="default",condition="Ready",status="False"} 0"#));
        assert!(text.contains(r#"externalsecret_status_condition{name="b",namespace="default",condition="Ready",status="False"} 1"#));
        series.forget("default", "a");
        assert!(!series.render().contains("name=\"a\""));
        // A later status replaces the earlier one: no stale False series.
        series.observe(&with_ready("b", ConditionStatus::True));
        assert!(
            series
                .render()
                .contains(r#"name="b",namespace="default",condition="Ready",status="True"} 1"#)
        );
        series.replace_all(std::iter::empty());
        assert!(series.is_empty());
    }
}
