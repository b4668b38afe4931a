//! One-shot pushes against a cluster (`sync-once push`): list the matching PushSecrets and the
//! stores once, then push each through the controller's own path, without a watch or a lease.

use std::sync::Arc;

use eso_api::PushSecret;
use eso_provider::ProviderRegistry;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::controller::{PushContext, PushSyncOutcome, push_once};
use crate::oneshot::{ListError, OneShotOptions, load_stores};

/// The outcome for one PushSecret.
#[derive(Debug, Clone)]
pub struct PushOneShotResult {
    /// `namespace/name`.
    pub push_secret: String,
    /// What happened.
    pub outcome: PushSyncOutcome,
}

/// Pushes every matching PushSecret once, in (namespace, name) order, and says what happened
/// to each. Values the stores already hold are not written again; with
/// [`OneShotOptions::dry_run`] nothing is written or deleted (the stores are still read to
/// compare). A failing PushSecret does not stop the others; only a failure to list is an `Err`.
pub async fn push_cluster(
    client: Client,
    registry: ProviderRegistry,
    options: OneShotOptions,
) -> Result<Vec<PushOneShotResult>, ListError> {
    let ns = options.namespace.as_deref();
    let mut params = ListParams::default();
    if let Some(sel) = &options.selector {
        params = params.labels(sel);
    }
    let api: Api<PushSecret> = match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    };
    let mut push_secrets = api
        .list(&params)
        .await
        .map_err(|source| ListError::new("PushSecrets", source))?
        .items;
    push_secrets.sort_by_key(|ps| (ps.namespace(), ps.name_any()));
    let set = load_stores(&client, ns, options.config.cluster_stores).await?;
    let ctx =
        PushContext::new(client, options.config.clone(), registry, Arc::new(set)).inline_events();
    let mut results = Vec::with_capacity(push_secrets.len());
    for ps in &push_secrets {
        let outcome = push_once(ps, &ctx, options.dry_run).await;
        results.push(PushOneShotResult {
            push_secret: format!("{}/{}", ps.namespace().unwrap_or_default(), ps.name_any()),
            outcome,
        });
    }
    Ok(results)
}
