//! The ClusterPushSecret controller: one PushSecret per namespace its `namespaceSelectors`
//! match, removed from namespaces that stop matching (and under the old name when
//! `pushSecretName` changes), with upstream's status (`pushSecretName`,
//! `provisionedNamespaces`, `failedNamespaces`) and a `Ready` condition.
//!
//! The fan-out decision is the pure [`plan_push_fanout`]; the controller lists namespaces and
//! the existing children, applies the plan with server-side apply and writes the status.
//! Children carry a controller owner reference to the ClusterPushSecret, so deleting it
//! removes them through garbage collection (and each child's own finalizer deletes what it
//! pushed under `deletionPolicy: Delete`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use eso_api::common::{Condition, ConditionStatus};
use eso_api::{
    ClusterPushSecret, ClusterPushSecretNamespaceFailure, ClusterPushSecretStatus, PushSecret,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};

use crate::fan_out::{self, FanOutError};
use crate::object_metrics::StatusSeries;
use crate::runtime_metrics::names;
use crate::selector;

/// Field manager for the PushSecrets a ClusterPushSecret writes, and its status.
pub const CPS_FIELD_MANAGER: &str = "external-secrets-cps";

/// What the fan-out should do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushFanoutPlan {
    /// PushSecrets to apply, one per provisioned namespace.
    pub apply: Vec<PushSecret>,
    /// (namespace, name) of children to delete.
    pub delete: Vec<(String, String)>,
    /// The status to record.
    pub status: ClusterPushSecretStatus,
}

fn child_name(cps: &ClusterPushSecret) -> String {
    cps.spec
        .push_secret_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| cps.name_any())
}

fn target_namespaces(cps: &ClusterPushSecret, namespaces: &[Namespace]) -> BTreeSet<String> {
    fan_out::selected_namespaces(namespaces, |_, labels| {
        cps.spec
            .namespace_selectors
            .iter()
            .any(|s| selector::matches(s, labels))
    })
    .collect()
}

fn owned_by(ps: &PushSecret, cps: &ClusterPushSecret) -> bool {
    fan_out::controlled_by(&ps.metadata, cps)
}

/// Decides the fan-out from the ClusterPushSecret, every namespace, and the existing
/// PushSecrets that are its children or carry its child name (in any namespace).
#[must_use]
pub fn plan_push_fanout(
    cps: &ClusterPushSecret,
    namespaces: &[Namespace],
    existing: &[PushSecret],
) -> PushFanoutPlan {
    let name = child_name(cps);
    let targets = target_namespaces(cps, namespaces);
    let meta = cps.spec.push_secret_metadata.clone().unwrap_or_default();
    let existing_by_key: BTreeMap<(String, String), &PushSecret> = existing
        .iter()
        .map(|ps| ((ps.namespace().unwrap_or_default(), ps.name_any()), ps))
        .collect();
    let mut plan = PushFanoutPlan::default();
    let mut failed = Vec::new();
    let mut provisioned = Vec::new();
    for ns in &targets {
        if let Some(ps) = existing_by_key.get(&(ns.clone(), name.clone()))
            && !owned_by(ps, cps)
        {
            failed.push(ClusterPushSecretNamespaceFailure {
                namespace: ns.clone(),
                reason: Some("push secret already exists in namespace".to_owned()),
            });
            continue;
        }
        plan.apply.push(PushSecret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: (!meta.labels.is_empty()).then(|| meta.labels.clone()),
                annotations: (!meta.annotations.is_empty()).then(|| meta.annotations.clone()),
                owner_references: cps.metadata.uid.clone().map(|uid| {
                    vec![OwnerReference {
                        api_version: eso_api::V1ALPHA1.to_owned(),
                        kind: "ClusterPushSecret".to_owned(),
                        name: cps.name_any(),
                        uid,
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]
                }),
                ..ObjectMeta::default()
            },
            spec: cps.spec.push_secret_spec.clone(),
            status: None,
        });
        provisioned.push(ns.clone());
    }
    // Children no longer wanted: namespaces that stopped matching, and the old name after
    // pushSecretName changed.
    for ps in existing {
        let key = (ps.namespace().unwrap_or_default(), ps.name_any());
        let wanted = targets.contains(&key.0) && key.1 == name;
        if owned_by(ps, cps) && !wanted {
            plan.delete.push(key);
        }
    }
    plan.status = fanout_status(&name, failed, provisioned, cps);
    plan
}

fn fanout_status(
    name: &str,
    mut failed: Vec<ClusterPushSecretNamespaceFailure>,
    mut provisioned: Vec<String>,
    cps: &ClusterPushSecret,
) -> ClusterPushSecretStatus {
    failed.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    provisioned.sort();
    let ready = failed.is_empty();
    let old = cps
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let conditions = crate::status::set_condition(
        &old,
        Condition {
            type_: "Ready".to_owned(),
            status: ConditionStatus::from(ready),
            reason: Some(if ready { "Synced" } else { "Errored" }.to_owned()),
            message: Some(if ready {
                "PushSecrets provisioned in every selected namespace".to_owned()
            } else {
                "one or more namespaces failed".to_owned()
            }),
            last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            )),
        },
    );
    ClusterPushSecretStatus {
        failed_namespaces: failed,
        provisioned_namespaces: provisioned,
        push_secret_name: Some(name.to_owned()),
        conditions,
    }
}

async fn reconcile_cps(
    cps: Arc<ClusterPushSecret>,
    client: Arc<Client>,
) -> Result<Action, FanOutError> {
    if cps.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let client = client.as_ref();
    let namespaces: Vec<Namespace> = fan_out::list_all(client, "namespaces").await?;
    let name = child_name(&cps);
    let children: Vec<PushSecret> = fan_out::list_all(client, "PushSecrets")
        .await?
        .into_iter()
        .filter(|ps| owned_by(ps, &cps) || ps.name_any() == name)
        .collect();
    let plan = plan_push_fanout(&cps, &namespaces, &children);
    let mut failed = plan.status.failed_namespaces.clone();
    let mut provisioned = plan.status.provisioned_namespaces.clone();
    for ps in &plan.apply {
        if let Err(e) = fan_out::apply_child(client, ps, CPS_FIELD_MANAGER).await {
            let ns = ps.namespace().unwrap_or_default();
            provisioned.retain(|n| *n != ns);
            failed.push(ClusterPushSecretNamespaceFailure {
                namespace: ns,
                reason: Some(format!("could not create or update push secret: {e}")),
            });
        }
    }
    for (ns, child) in &plan.delete {
        if let Err(e) = fan_out::delete_child::<PushSecret>(client, ns, child).await {
            failed.push(ClusterPushSecretNamespaceFailure {
                namespace: ns.clone(),
                reason: Some(format!("push secret could not be deleted: {e}")),
            });
        }
    }
    let status = fanout_status(&name, failed, provisioned, &cps);
    if !same_status(cps.status.as_ref(), &status) {
        fan_out::write_status(client, cps.as_ref(), &status, CPS_FIELD_MANAGER).await?;
    }
    Ok(Action::requeue(fan_out::refresh_after(
        cps.spec.refresh_time.as_deref(),
    )))
}

/// Equal but for the condition's transition time (which `set_condition` keeps anyway while
/// the status holds).
fn same_status(old: Option<&ClusterPushSecretStatus>, new: &ClusterPushSecretStatus) -> bool {
    old.is_some_and(|o| {
        let strip = |s: &ClusterPushSecretStatus| {
            let mut s = s.clone();
            for c in &mut s.conditions {
                c.last_transition_time = None;
            }
            s
        };
        strip(o) == strip(new)
    })
}

/// The ClusterPushSecret controller, the same shape as the PushSecret one.
pub struct ClusterPushSecretController {
    client: Client,
    series: Arc<StatusSeries>,
    watch: std::sync::OnceLock<crate::controller::AbortOnDrop>,
}

impl ClusterPushSecretController {
    /// A controller using `client`.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self {
            client,
            series: Arc::new(super::metrics::cluster_push_secret_series()),
            watch: std::sync::OnceLock::new(),
        }
    }

    /// The `clusterpushsecret_status_condition` series this controller keeps up to date.
    #[must_use]
    pub fn status_series(&self) -> Arc<StatusSeries> {
        self.series.clone()
    }

    /// Starts the status-series watch every replica keeps. Idempotent.
    pub fn start_watches(&self) {
        self.watch.get_or_init(|| {
            crate::controller::AbortOnDrop(super::metrics::spawn_cluster_push_series(
                Api::all(self.client.clone()),
                self.series.clone(),
            ))
        });
    }

    /// Runs the reconciler until `shutdown` resolves.
    pub async fn reconcile_until(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        self.start_watches();
        fan_out::run::<ClusterPushSecret, PushSecret, _>(
            names::CLUSTER_PUSH_SECRET,
            &self.client,
            reconcile_cps,
            shutdown,
        )
        .await;
    }

    /// Runs the reconciler until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        self.reconcile_until(shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::namespace as ns;
    use eso_api::ClusterPushSecretSpec;

    fn cps(spec: serde_json::Value) -> ClusterPushSecret {
        let mut c = ClusterPushSecret::new(
            "shared",
            serde_json::from_value::<ClusterPushSecretSpec>(spec).unwrap(),
        );
        c.metadata.uid = Some("cps-uid".into());
        c
    }

    fn spec() -> serde_json::Value {
        serde_json::json!({
            "secretStoreRefs": [{"name": "s"}],
            "selector": {"secret": {"name": "db"}},
            "data": [{"match": {"secretKey": "k", "remoteRef": {"remoteKey": "r"}}}]
        })
    }

    #[test]
    fn fans_out_to_selected_namespaces_with_metadata_and_owner() {
        let c = cps(serde_json::json!({
            "pushSecretSpec": spec(),
            "namespaceSelectors": [{"matchLabels": {"team": "x"}}, {"matchLabels": {"kubernetes.io/metadata.name": "a"}}],
            "pushSecretMetadata": {"labels": {"l": "1"}, "annotations": {"a": "2"}}
        }));
        let all = [ns("a", &[]), ns("b", &[("team", "x")]), ns("c", &[])];
        let plan = plan_push_fanout(&c, &all, &[]);
        let targets: Vec<_> = plan.apply.iter().map(|p| p.namespace().unwrap()).collect();
        assert_eq!(targets, ["a", "b"]);
        let child = &plan.apply[0];
        assert_eq!(child.name_any(), "shared");
        assert_eq!(child.metadata.labels.as_ref().unwrap()["l"], "1");
        assert_eq!(child.metadata.annotations.as_ref().unwrap()["a"], "2");
        assert_eq!(child.spec, c.spec.push_secret_spec);
        let owner = &child.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ClusterPushSecret", "cps-uid")
        );
        assert_eq!(plan.status.provisioned_namespaces, ["a", "b"]);
        assert_eq!(plan.status.push_secret_name.as_deref(), Some("shared"));
        assert_eq!(plan.status.conditions[0].status, ConditionStatus::True);
    }

    #[test]
    fn no_selectors_select_no_namespace() {
        let c = cps(serde_json::json!({"pushSecretSpec": spec()}));
        let plan = plan_push_fanout(&c, &[ns("a", &[])], &[]);
        assert!(plan.apply.is_empty());
        assert!(plan.status.provisioned_namespaces.is_empty());
    }

    #[test]
    fn a_foreign_push_secret_fails_its_namespace_and_stale_children_are_deleted() {
        let c = cps(serde_json::json!({
            "pushSecretSpec": spec(),
            "pushSecretName": "child",
            "namespaceSelectors": [{"matchLabels": {"push": "yes"}}]
        }));
        let foreign = PushSecret {
            metadata: ObjectMeta {
                name: Some("child".into()),
                namespace: Some("a".into()),
                ..ObjectMeta::default()
            },
            ..PushSecret::default()
        };
        let owner = plan_push_fanout(&c, &[ns("b", &[("push", "yes")])], &[]).apply[0]
            .metadata
            .owner_references
            .clone();
        // Made earlier in z, which no longer matches; and under an old name in b.
        let mut stale = foreign.clone();
        stale.metadata.namespace = Some("z".into());
        stale.metadata.owner_references = owner.clone();
        let mut renamed = stale.clone();
        renamed.metadata.namespace = Some("b".into());
        renamed.metadata.name = Some("old".into());
        let plan = plan_push_fanout(
            &c,
            &[
                ns("a", &[("push", "yes")]),
                ns("b", &[("push", "yes")]),
                ns("z", &[]),
            ],
            &[foreign, stale, renamed],
        );
        let applied: Vec<_> = plan.apply.iter().map(|p| p.namespace().unwrap()).collect();
        assert_eq!(applied, ["b"]);
        assert_eq!(plan.status.failed_namespaces[0].namespace, "a");
        assert_eq!(plan.status.conditions[0].status, ConditionStatus::False);
        assert_eq!(
            plan.delete,
            [
                ("z".to_owned(), "child".to_owned()),
                ("b".to_owned(), "old".to_owned())
            ]
        );
    }
}
