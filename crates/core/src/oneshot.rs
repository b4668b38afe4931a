//! One-shot syncs against a cluster (`sync-once run`): list the matching ExternalSecrets and
//! the stores once, then sync each through the controller's own path, without a watch or a
//! lease.

use std::sync::Arc;

use eso_api::{ClusterSecretStore, ExternalSecret, SecretStore};
use eso_provider::ProviderRegistry;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::controller::{Context, ControllerConfig, SyncOutcome, sync_once};
use crate::manifests::{ManifestSet, Source, Sourced};

/// What [`sync_cluster`] syncs, and how. The default syncs every namespace, writes, and uses
/// the `default` controller class.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct OneShotOptions {
    /// Only this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// A label selector on ExternalSecrets.
    pub selector: Option<String>,
    /// Compute changes without writing.
    pub dry_run: bool,
    /// Controller settings: of these, a one-shot sync uses the controller class, whether
    /// ClusterSecretStores may be used, and the reporter named on events.
    pub config: ControllerConfig,
}

/// The outcome for one ExternalSecret.
#[derive(Debug, Clone)]
pub struct OneShotResult {
    /// `namespace/name`.
    pub external_secret: String,
    /// What happened.
    pub outcome: SyncOutcome,
}

/// A failure before any ExternalSecret could be synced: ExternalSecrets, SecretStores or
/// ClusterSecretStores could not be listed (its source is the Kubernetes client's error).
#[derive(Debug, thiserror::Error)]
#[error("cannot list {what}")]
pub struct ListError {
    what: &'static str,
    #[source]
    source: kube::Error,
}

impl ListError {
    pub(crate) fn new(what: &'static str, source: kube::Error) -> Self {
        Self { what, source }
    }
}

fn source() -> Source {
    Source {
        file: "<cluster>".to_owned(),
        document: 0,
    }
}

/// Syncs every matching ExternalSecret once, in (namespace, name) order, through the
/// operator's own reconcile path, and says what happened to each.
///
/// The stores are listed once up front (no watches, no Lease); every ExternalSecret is synced
/// even if no refresh is due. Writes are the operator's (server-side apply of the Secret and of
/// the ExternalSecret's status, events), unless [`OneShotOptions::dry_run`] is set. A failing
/// ExternalSecret is reported in its [`OneShotResult`] and does not stop the others; only a
/// failure to list is an `Err`. The caller builds the client: this crate never reads
/// `KUBECONFIG` or other environment variables.
pub async fn sync_cluster(
    client: Client,
    registry: ProviderRegistry,
    options: OneShotOptions,
) -> Result<Vec<OneShotResult>, ListError> {
    let ns = options.namespace.as_deref();
    let mut params = ListParams::default();
    if let Some(sel) = &options.selector {
        params = params.labels(sel);
    }
    let es_api: Api<ExternalSecret> = match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    };
    let mut external_secrets = es_api
        .list(&params)
        .await
        .map_err(|source| ListError {
            what: "ExternalSecrets",
            source,
        })?
        .items;
    external_secrets.sort_by_key(|es| (es.namespace(), es.name_any()));

    let set = load_stores(&client, ns, options.config.cluster_stores).await?;

    let ctx = Context::new(client, options.config.clone(), registry, Arc::new(set)).inline_events();
    let mut results = Vec::with_capacity(external_secrets.len());
    for es in &external_secrets {
        let outcome = sync_once(es, &ctx, options.dry_run).await;
        results.push(OneShotResult {
            external_secret: format!("{}/{}", es.namespace().unwrap_or_default(), es.name_any()),
            outcome,
        });
    }
    Ok(results)
}

/// The stores (and, with cluster stores, the ClusterSecretStores and namespaces) a one-shot
/// sync may use, listed once.
pub(crate) async fn load_stores(
    client: &Client,
    ns: Option<&str>,
    cluster_stores: bool,
) -> Result<ManifestSet, ListError> {
    let mut set = ManifestSet::new("default");
    let store_api: Api<SecretStore> = match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    };
    for store in store_api
        .list(&ListParams::default())
        .await
        .map_err(|source| ListError {
            what: "SecretStores",
            source,
        })?
        .items
    {
        set.stores.insert(
            (store.namespace().unwrap_or_default(), store.name_any()),
            Sourced {
                source: source(),
                object: store,
            },
        );
    }
    if cluster_stores {
        let api: Api<ClusterSecretStore> = Api::all(client.clone());
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for store in list.items {
                    set.cluster_stores.insert(
                        store.name_any(),
                        Sourced {
                            source: source(),
                            object: store,
                        },
                    );
                }
            }
            // A namespace-scoped identity may not list cluster stores; ExternalSecrets that
            // need one will report it as not found.
            Err(kube::Error::Api(s)) if s.code == 403 => {}
            Err(source) => {
                return Err(ListError {
                    what: "ClusterSecretStores",
                    source,
                });
            }
        }
        let ns_api: Api<Namespace> = Api::all(client.clone());
        if let Ok(list) = ns_api.list(&ListParams::default()).await {
            for n in list.items {
                set.namespaces.insert(
                    n.name_any(),
                    Sourced {
                        source: source(),
                        object: n,
                    },
                );
            }
        }
    }

    Ok(set)
}
