//! The ClusterExternalSecret controller: one ExternalSecret per selected namespace, removed
//! from namespaces that stop matching, with upstream's status (`provisionedNamespaces`,
//! `failedNamespaces`, `Ready`).
//!
//! The fan-out decision is the pure [`plan_fanout`]; the controller reads namespaces and the
//! existing children, applies that plan with server-side apply and writes the status. Children
//! carry a controller owner reference to the ClusterExternalSecret, so deleting it removes them
//! through garbage collection; unlike upstream no finalizers are put on namespaces or on the
//! ClusterExternalSecret (nothing is left hanging while the operator is down).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use eso_api::common::ConditionStatus;
use eso_api::labels::ANNOTATION_FORCE_SYNC;
use eso_api::{
    ClusterExternalSecret, ClusterExternalSecretNamespaceFailure, ClusterExternalSecretStatus,
    ClusterExternalSecretStatusCondition, ExternalSecret,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};

use crate::fan_out::{self, FanOutError};
use crate::runtime_metrics::names;
use crate::selector;

/// Field manager for the ExternalSecrets a ClusterExternalSecret writes.
pub const CES_FIELD_MANAGER: &str = "external-secrets-ces";

/// What the fan-out should do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FanoutPlan {
    /// ExternalSecrets to apply, one per provisioned namespace.
    pub apply: Vec<ExternalSecret>,
    /// (namespace, name) of children to delete.
    pub delete: Vec<(String, String)>,
    /// The status to record.
    pub status: ClusterExternalSecretStatus,
}

fn target_namespaces(ces: &ClusterExternalSecret, namespaces: &[Namespace]) -> BTreeSet<String> {
    let spec = &ces.spec;
    let mut selectors = spec.namespace_selectors.clone();
    selectors.extend(spec.namespace_selector.clone());
    fan_out::selected_namespaces(namespaces, |name, labels| {
        spec.namespaces.iter().any(|n| n == name)
            || selectors.iter().any(|s| selector::matches(s, labels))
    })
    .collect()
}

/// The children's name: `externalSecretName`, else the ClusterExternalSecret's own.
fn child_name(ces: &ClusterExternalSecret) -> String {
    ces.spec
        .external_secret_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ces.name_any())
}

fn owned_by(es: &ExternalSecret, ces: &ClusterExternalSecret) -> bool {
    fan_out::controlled_by(&es.metadata, ces)
}

/// Decides the fan-out from the ClusterExternalSecret, every namespace, and the existing
/// ExternalSecrets named as its children (in any namespace).
#[must_use]
pub fn plan_fanout(
    ces: &ClusterExternalSecret,
    namespaces: &[Namespace],
    existing: &[ExternalSecret],
) -> FanoutPlan {
    let name = child_name(ces);
    let targets = target_namespaces(ces, namespaces);
    let mut plan = FanoutPlan::default();
    let mut failed = Vec::new();
    let mut provisioned = Vec::new();
    let meta = ces
        .spec
        .external_secret_metadata
        .clone()
        .unwrap_or_default();
    let mut annotations = meta.annotations.clone();
    if let Some(force) = ces
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_FORCE_SYNC))
    {
        annotations.insert(ANNOTATION_FORCE_SYNC.to_owned(), force.clone());
    }
    let existing_by_key: BTreeMap<(String, String), &ExternalSecret> = existing
        .iter()
        .map(|es| ((es.namespace().unwrap_or_default(), es.name_any()), es))
        .collect();
    for ns in &targets {
        if let Some(es) = existing_by_key.get(&(ns.clone(), name.clone()))
            && !owned_by(es, ces)
        {
            failed.push(ClusterExternalSecretNamespaceFailure {
                namespace: ns.clone(),
                reason: Some("external secret already exists in namespace".to_owned()),
            });
            continue;
        }
        plan.apply.push(ExternalSecret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: (!meta.labels.is_empty()).then(|| meta.labels.clone()),
                annotations: (!annotations.is_empty()).then(|| annotations.clone()),
                owner_references: ces.metadata.uid.clone().map(|uid| {
                    vec![OwnerReference {
                        api_version: eso_api::V1.to_owned(),
                        kind: "ClusterExternalSecret".to_owned(),
                        name: ces.name_any(),
                        uid,
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]
                }),
                ..ObjectMeta::default()
            },
            spec: ces.spec.external_secret_spec.clone(),
            status: None,
        });
        provisioned.push(ns.clone());
    }
    // Children this ClusterExternalSecret owns that are no longer wanted: namespaces that stopped
    // matching, and the old name after externalSecretName changed.
    for es in existing {
        let key = (es.namespace().unwrap_or_default(), es.name_any());
        let wanted = targets.contains(&key.0) && key.1 == name;
        if owned_by(es, ces) && !wanted {
            plan.delete.push(key);
        }
    }
    provisioned.sort();
    let ready = failed.is_empty();
    plan.status = ClusterExternalSecretStatus {
        external_secret_name: Some(name),
        failed_namespaces: failed,
        provisioned_namespaces: provisioned,
        conditions: vec![ClusterExternalSecretStatusCondition {
            type_: "Ready".to_owned(),
            status: ConditionStatus::from(ready),
            message: (!ready).then(|| "one or more namespaces failed".to_owned()),
        }],
    };
    plan
}

async fn reconcile_ces(
    ces: Arc<ClusterExternalSecret>,
    client: Arc<Client>,
) -> Result<Action, FanOutError> {
    let timer = std::time::Instant::now();
    let result = fan_out(&ces, &client).await;
    // Upstream sets it on every reconcile, in nanoseconds (a Go duration as a float).
    metrics::gauge!(
        "clusterexternalsecret_reconcile_duration",
        "name" => ces.name_any(),
        "namespace" => ""
    )
    .set(timer.elapsed().as_nanos() as f64);
    result
}

async fn fan_out(ces: &ClusterExternalSecret, client: &Client) -> Result<Action, FanOutError> {
    if ces.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespaces: Vec<Namespace> = fan_out::list_all(client, "namespaces").await?;
    let name = child_name(ces);
    let children: Vec<ExternalSecret> = fan_out::list_all(client, "ExternalSecrets")
        .await?
        .into_iter()
        .filter(|es| owned_by(es, ces) || es.name_any() == name)
        .collect();
    let plan = plan_fanout(ces, &namespaces, &children);
    let mut status = plan.status.clone();
    for es in &plan.apply {
        if let Err(e) = fan_out::apply_child(client, es, CES_FIELD_MANAGER).await {
            let ns = es.namespace().unwrap_or_default();
            status.provisioned_namespaces.retain(|n| *n != ns);
            status
                .failed_namespaces
                .push(ClusterExternalSecretNamespaceFailure {
                    namespace: ns,
                    reason: Some(e.to_string()),
                });
        }
    }
    for (ns, name) in &plan.delete {
        fan_out::delete_child::<ExternalSecret>(client, ns, name)
            .await
            .map_err(fan_out::failed(format!(
                "cannot delete ExternalSecret \"{ns}/{name}\""
            )))?;
    }
    if !status.failed_namespaces.is_empty() {
        status.conditions = vec![ClusterExternalSecretStatusCondition {
            type_: "Ready".to_owned(),
            status: ConditionStatus::False,
            message: Some("one or more namespaces failed".to_owned()),
        }];
    }
    if ces.status.as_ref() != Some(&status) {
        fan_out::write_status(client, ces, &status, CES_FIELD_MANAGER).await?;
    }
    Ok(Action::requeue(fan_out::refresh_after(
        ces.spec.refresh_time.as_deref(),
    )))
}

/// Keeps `series` (`clusterexternalsecret_status_condition`) equal to the stored conditions
/// of every ClusterExternalSecret. Every replica runs it, so a new leader exports at once.
pub fn spawn_ces_series(
    client: Client,
    series: Arc<crate::object_metrics::StatusSeries>,
) -> tokio::task::JoinHandle<()> {
    crate::object_metrics::spawn_condition_watch(
        Api::<ClusterExternalSecret>::all(client),
        series,
        |ces| {
            ces.status
                .iter()
                .flat_map(|s| &s.conditions)
                .map(|c| (c.type_.clone(), c.status))
                .collect()
        },
    )
}

/// Runs the ClusterExternalSecret controller until `shutdown` resolves.
pub async fn run_ces_controller(
    client: Client,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    fan_out::run::<ClusterExternalSecret, ExternalSecret, _>(
        names::CLUSTER_EXTERNAL_SECRET,
        &client,
        reconcile_ces,
        shutdown,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::namespace as ns;
    use eso_api::ClusterExternalSecretSpec;

    fn ces(spec: serde_json::Value) -> ClusterExternalSecret {
        let mut c = ClusterExternalSecret::new(
            "shared",
            serde_json::from_value::<ClusterExternalSecretSpec>(spec).unwrap(),
        );
        c.metadata.uid = Some("ces-uid".into());
        c
    }

    #[test]
    fn fans_out_to_named_and_selected_namespaces() {
        let c = ces(serde_json::json!({
            "externalSecretSpec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k", "remoteRef": {"key": "r"}}]},
            "namespaces": ["a"],
            "namespaceSelectors": [{"matchLabels": {"team": "x"}}],
            "externalSecretMetadata": {"labels": {"l": "1"}}
        }));
        let all = [ns("a", &[]), ns("b", &[("team", "x")]), ns("c", &[])];
        let plan = plan_fanout(&c, &all, &[]);
        let targets: Vec<_> = plan.apply.iter().map(|e| e.namespace().unwrap()).collect();
        assert_eq!(targets, ["a", "b"]);
        let child = &plan.apply[0];
        assert_eq!(child.name_any(), "shared");
        assert_eq!(child.metadata.labels.as_ref().unwrap()["l"], "1");
        assert_eq!(
            child.metadata.owner_references.as_ref().unwrap()[0].uid,
            "ces-uid"
        );
        assert_eq!(plan.status.provisioned_namespaces, ["a", "b"]);
        assert_eq!(plan.status.conditions[0].status, ConditionStatus::True);
    }

    #[test]
    fn a_foreign_external_secret_is_a_failure_and_stale_children_are_deleted() {
        let c = ces(
            serde_json::json!({"externalSecretSpec": {}, "namespaces": ["a", "b"], "externalSecretName": "child"}),
        );
        let foreign = ExternalSecret {
            metadata: ObjectMeta {
                name: Some("child".into()),
                namespace: Some("a".into()),
                ..ObjectMeta::default()
            },
            ..ExternalSecret::default()
        };
        // A child this ClusterExternalSecret made earlier in namespace z, which no longer matches.
        let mut stale = foreign.clone();
        stale.metadata.namespace = Some("z".into());
        stale.metadata.owner_references = plan_fanout(&c, &[ns("b", &[])], &[]).apply[0]
            .metadata
            .owner_references
            .clone();
        let plan = plan_fanout(
            &c,
            &[ns("a", &[]), ns("b", &[]), ns("z", &[])],
            &[foreign, stale],
        );
        assert_eq!(
            plan.apply
                .iter()
                .map(|e| e.namespace().unwrap())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(plan.status.failed_namespaces[0].namespace, "a");
        assert_eq!(plan.status.conditions[0].status, ConditionStatus::False);
        assert_eq!(plan.delete, [("z".to_owned(), "child".to_owned())]);
    }

    #[test]
    fn force_sync_is_mirrored_and_terminating_namespaces_are_skipped() {
        let mut c = ces(serde_json::json!({"externalSecretSpec": {}, "namespaces": ["a", "gone"]}));
        c.metadata.annotations =
            Some([(ANNOTATION_FORCE_SYNC.to_owned(), "123".to_owned())].into());
        let mut gone = ns("gone", &[]);
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let plan = plan_fanout(&c, &[ns("a", &[]), gone], &[]);
        assert_eq!(plan.apply.len(), 1);
        assert_eq!(
            plan.apply[0].metadata.annotations.as_ref().unwrap()[ANNOTATION_FORCE_SYNC],
            "123"
        );
    }
}
