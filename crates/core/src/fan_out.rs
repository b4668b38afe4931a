//! What the two namespace fan-out controllers share (ClusterExternalSecret →
//! ExternalSecrets, ClusterPushSecret → PushSecrets): the watches that trigger them, which
//! namespaces a selector picks, and the API calls that list, apply and delete the children
//! and write the parent's status. Each controller keeps its own pure plan (field names and
//! status shapes differ) and its own order of steps.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ClusterResourceScope, NamespaceResourceScope, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::runtime_metrics::QueuedController;

/// The label every namespace carries with its own name; selectors may use it even where an
/// older API server did not set it.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// How often a parent is fanned out again when it says nothing (`refreshTime`).
const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// How soon a fan-out whose API calls failed runs again.
const FAILED_RETRY: Duration = Duration::from_secs(5);

/// An API call of a fan-out failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct FanOutError {
    what: String,
    #[source]
    source: kube::Error,
}

/// Wraps a kube error with what was being done.
pub(crate) fn failed(what: String) -> impl FnOnce(kube::Error) -> FanOutError {
    move |source| FanOutError { what, source }
}

/// Runs the controller of the cluster-wide parents `K` fanning out into namespaced
/// `Child`ren until `shutdown` resolves: `reconcile` runs for a parent when it changes, when a
/// child it controls changes (watched metadata-only), and for every parent when a namespace
/// appears, changes labels or goes away. A failed reconcile is retried after
/// [`FAILED_RETRY`].
pub(crate) async fn run<K, Child, Fut>(
    name: &'static str,
    client: &Client,
    reconcile: fn(Arc<K>, Arc<Client>) -> Fut,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    K: Resource<DynamicType = (), Scope = ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    Child: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<Action, FanOutError>> + Send + 'static,
{
    let error_policy = |_parent: Arc<K>, error: &FanOutError, _client: Arc<Client>| {
        tracing::info!(error = %error, "{} reconcile failed", K::kind(&()));
        Action::requeue(FAILED_RETRY)
    };
    controller::<K, Child>(name, client)
        .run(reconcile, error_policy, Arc::new(client.clone()), shutdown)
        .for_each(|_| async {})
        .await;
}

/// Whether `child` has `parent` as its controller owner.
pub(crate) fn controlled_by<K: Resource<DynamicType = ()>>(child: &ObjectMeta, parent: &K) -> bool {
    let uid = parent.meta().uid.as_deref().unwrap_or_default();
    child
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.kind == K::kind(&()) && o.uid == uid)
}

fn controller<K, Child>(name: &'static str, client: &Client) -> QueuedController<K>
where
    K: Resource<DynamicType = (), Scope = ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    Child: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let controller = QueuedController::new(
        name,
        Api::<K>::all(client.clone()),
        watcher::Config::default(),
    );
    let parents = controller.store();
    controller
        .owns(
            Api::<PartialObjectMeta<Child>>::all(client.clone()),
            watcher::Config::default(),
        )
        .watches(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            move |_ns: Namespace| {
                parents
                    .state()
                    .iter()
                    .map(|p| ObjectRef::from_obj(p.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
}

/// The namespaces (not being deleted) whose labels, with their own name as
/// `kubernetes.io/metadata.name`, satisfy `selects`.
pub(crate) fn selected_namespaces<'a>(
    namespaces: &'a [Namespace],
    selects: impl Fn(&str, &BTreeMap<String, String>) -> bool + 'a,
) -> impl Iterator<Item = String> + 'a {
    namespaces
        .iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
        .filter_map(move |ns| {
            let name = ns.metadata.name.clone()?;
            let mut labels = ns.metadata.labels.clone().unwrap_or_default();
            labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.clone());
            selects(&name, &labels).then_some(name)
        })
}

/// Every object of kind `T` in the cluster (`what` names them in an error).
pub(crate) async fn list_all<T>(client: &Client, what: &str) -> Result<Vec<T>, FanOutError>
where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    Ok(Api::<T>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(failed(format!("cannot list {what}")))?
        .items)
}

/// Applies a child (server-side apply, forced, as `manager`).
pub(crate) async fn apply_child<Child>(
    client: &Client,
    child: &Child,
    manager: &str,
) -> Result<(), kube::Error>
where
    Child: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    let api: Api<Child> = Api::namespaced(client.clone(), &child.namespace().unwrap_or_default());
    let mut body = serde_json::to_value(child).unwrap_or_default();
    body["apiVersion"] = serde_json::json!(Child::api_version(&()));
    body["kind"] = serde_json::json!(Child::kind(&()));
    api.patch(
        &child.name_any(),
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
}

/// Deletes a child; one already gone is no error.
pub(crate) async fn delete_child<Child>(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error>
where
    Child: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    match Api::<Child>::namespaced(client.clone(), namespace)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes the parent's status (a merge patch, as `manager`).
pub(crate) async fn write_status<K>(
    client: &Client,
    parent: &K,
    status: &impl Serialize,
    manager: &str,
) -> Result<(), FanOutError>
where
    K: Resource<DynamicType = (), Scope = ClusterResourceScope> + Clone + DeserializeOwned + Debug,
{
    Api::<K>::all(client.clone())
        .patch_status(
            &parent.name_any(),
            &PatchParams {
                field_manager: Some(manager.to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(&serde_json::json!({ "status": status })),
        )
        .await
        .map(|_| ())
        .map_err(failed(format!(
            "cannot write the status of {} \"{}\"",
            K::kind(&()),
            parent.name_any()
        )))
}

/// When to fan out again: the parent's `refreshTime` (a Go duration), an hour when it is
/// unset, zero or unreadable.
pub(crate) fn refresh_after(refresh_time: Option<&str>) -> Duration {
    refresh_time
        .and_then(|t| eso_api::duration::parse_go_duration(t).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_REFRESH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::namespace;

    #[test]
    fn namespaces_are_selected_by_labels_and_their_own_name_and_not_while_terminating() {
        let mut gone = namespace("gone", &[("team", "x")]);
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let all = [namespace("a", &[]), namespace("b", &[("team", "x")]), gone];
        let picked: Vec<String> = selected_namespaces(&all, |_, labels| {
            labels.get("team").map(String::as_str) == Some("x")
                || labels.get(NAMESPACE_NAME_LABEL).map(String::as_str) == Some("a")
        })
        .collect();
        assert_eq!(picked, ["a", "b"]);
    }

    #[test]
    fn refresh_defaults_to_an_hour() {
        assert_eq!(refresh_after(None), DEFAULT_REFRESH);
        assert_eq!(refresh_after(Some("0s")), DEFAULT_REFRESH);
        assert_eq!(refresh_after(Some("soon")), DEFAULT_REFRESH);
        assert_eq!(refresh_after(Some("90s")), Duration::from_secs(90));
    }
}
