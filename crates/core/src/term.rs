//! One leadership term of a controller whose objects name stores (ExternalSecret, PushSecret):
//! it starts once the store caches hold the cluster's stores, reconciles the objects a store
//! change may concern, and ends within a grace after the term does.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use eso_api::{ClusterSecretStore, SecretStore, StoreKind};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt as _, Stream, StreamExt as _};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt as _};
use serde::de::DeserializeOwned;

use crate::controller::scoped;
use crate::kube_io::CachedStores;
use crate::runtime_metrics::QueuedController;

/// The end of a term, awaitable by several parts of it.
pub(crate) type TermEnd = Shared<BoxFuture<'static, ()>>;

/// Waits for the store caches to have listed, as controller-runtime waits for its caches: before
/// that every store would look missing. `None`: the term ended first.
pub(crate) async fn when_stores_ready(
    stores: &CachedStores,
    end: impl Future<Output = ()> + Send + 'static,
) -> Option<TermEnd> {
    let end = end.boxed().shared();
    tokio::select! {
        () = stores.wait_until_ready() => Some(end),
        () = end.clone() => None,
    }
}

/// Which of the cached objects a change of a store (kind, namespace, name) concerns.
pub(crate) type StoreUsers<K> = fn(&Store<K>, StoreKind, Option<&str>, &str) -> Vec<ObjectRef<K>>;

/// Reconciles `users` of every SecretStore in `namespace` (all when `None`) that changes, and of
/// every ClusterSecretStore when `cluster_stores` is set.
pub(crate) fn on_store_changes<K>(
    controller: QueuedController<K>,
    client: &Client,
    namespace: Option<&str>,
    cluster_stores: bool,
    users: StoreUsers<K>,
) -> QueuedController<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
{
    let cache = controller.store();
    let namespaced = cache.clone();
    let controller = controller.watches(
        scoped::<SecretStore>(client, namespace),
        watcher::Config::default(),
        move |store: SecretStore| {
            users(
                &namespaced,
                StoreKind::SecretStore,
                store.namespace().as_deref(),
                &store.name_any(),
            )
        },
    );
    if !cluster_stores {
        return controller;
    }
    controller.watches(
        Api::<ClusterSecretStore>::all(client.clone()),
        watcher::Config::default(),
        move |store: ClusterSecretStore| {
            users(
                &cache,
                StoreKind::ClusterSecretStore,
                None,
                &store.name_any(),
            )
        },
    )
}

/// Drives a controller's `reconcilers` to their end. Once `end` resolves no reconcile starts;
/// those in flight get `grace` (`None`: as long as they take) and are then cancelled.
pub(crate) async fn drive<T, E: Display>(
    reconcilers: impl Stream<Item = Result<T, E>>,
    end: TermEnd,
    grace: Option<Duration>,
    controller: &'static str,
) {
    let reconcilers = reconcilers.for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(controller, error = %e, "controller event");
        }
    });
    let deadline = async {
        end.await;
        match grace {
            Some(grace) => tokio::time::sleep(grace).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = reconcilers => {}
        () = deadline => {
            tracing::warn!(controller, ?grace, "cancelled reconciles still running after the grace period");
        }
    }
}
