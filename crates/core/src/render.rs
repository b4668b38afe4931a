//! Offline rendering: the Secrets a set of manifests would produce, without a cluster. This is
//! what `sync-once render` runs; the Secrets and ConfigMaps in the input stand in for the
//! cluster's (store credentials, template sources).

use std::collections::BTreeMap;

use async_trait::async_trait;
use eso_api::{ExternalSecret, StoreKind};
use eso_provider::{ProviderError, ProviderRegistry, SecretData, SecretReader, StoreInfo};
use k8s_openapi::api::core::v1::Secret;

use crate::fetch::{ClientCache, FetchContext, FetchError, fetch};
use crate::manifests::{ManifestSet, Source};
use crate::plan::{PlanError, PlanInput, SecretAction, plan};
use crate::store::StoreLookup;

impl StoreLookup for ManifestSet {
    fn store(&self, kind: StoreKind, namespace: &str, name: &str) -> Option<StoreInfo> {
        match kind {
            StoreKind::SecretStore => self
                .stores
                .get(&(namespace.to_owned(), name.to_owned()))
                .map(|s| StoreInfo {
                    kind,
                    name: name.to_owned(),
                    namespace: Some(namespace.to_owned()),
                    uid: s.object.metadata.uid.clone(),
                    generation: s.object.metadata.generation,
                    spec: s.object.spec.clone(),
                }),
            StoreKind::ClusterSecretStore => self.cluster_stores.get(name).map(|s| StoreInfo {
                kind,
                name: name.to_owned(),
                namespace: None,
                uid: s.object.metadata.uid.clone(),
                generation: s.object.metadata.generation,
                spec: s.object.spec.clone(),
            }),
        }
    }

    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespaces
            .get(namespace)
            .and_then(|n| n.object.metadata.labels.clone())
            .unwrap_or_default();
        // The API server sets this label on every namespace.
        labels.insert(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.to_owned(),
        );
        labels
    }
}

#[async_trait]
impl SecretReader for ManifestSet {
    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ProviderError> {
        Ok(self
            .secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|s| {
                s.object
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect()
            }))
    }
}

#[async_trait]
impl crate::fetch::ConfigMapReader for ManifestSet {
    async fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        Ok(self
            .config_maps
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|c| c.object.data.clone().unwrap_or_default()))
    }
}

/// Why one ExternalSecret could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The ExternalSecret is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl RenderError {
    /// The message with every cause.
    #[must_use]
    pub fn chain(&self) -> String {
        match self {
            Self::Fetch(e) => e.chain(),
            other => other.to_string(),
        }
    }
}

/// What rendering one ExternalSecret gave; [`render_all`] returns one per ExternalSecret.
#[derive(Debug)]
pub struct Rendered {
    /// Where the ExternalSecret came from.
    pub source: Source,
    /// `namespace/name` of the ExternalSecret.
    pub external_secret: String,
    /// The Secret to apply (`None` when the policies say nothing is written, e.g.
    /// creationPolicy None or an empty result with deletionPolicy Retain), or the error.
    pub result: Result<Option<Secret>, RenderError>,
    /// Messages worth showing (events the plan produced, such as missing provider keys).
    pub notes: Vec<String>,
}

/// Renders every ExternalSecret of the set, in input order. A failing ExternalSecret does not
/// stop the others.
///
/// Each ExternalSecret is validated, its data fetched from the providers in `registry` (store
/// credentials and template sources come from the set's Secrets and ConfigMaps; one client per
/// store is built and reused), and planned exactly as the operator would, against the set's
/// copy of the target Secret if it holds one. Nothing is written anywhere. Requests for
/// ServiceAccount tokens fail, as there is no cluster to issue them.
pub async fn render_all(set: &ManifestSet, registry: &ProviderRegistry) -> Vec<Rendered> {
    render_all_with_generators(set, registry, &eso_generator::builtin()).await
}

/// [`render_all`] with these generator kinds for `sourceRef.generatorRef` (the generator
/// objects come from the set). Every generator entry generates a new value, noted as such in
/// [`Rendered::notes`]; what a stateful kind leaves behind (a Vault lease) is cleaned up
/// right after the render, so such values are shown but no longer valid.
pub async fn render_all_with_generators(
    set: &ManifestSet,
    registry: &ProviderRegistry,
    generators: &eso_generator::GeneratorRegistry,
) -> Vec<Rendered> {
    let clients = ClientCache::new();
    let previous = crate::generate::GeneratedValues::default();
    let ctx = FetchContext {
        registry,
        stores: set,
        secrets: set,
        tokens: None,
        config_maps: set,
        clients: &clients,
        transformer: &crate::template::GoTemplates,
        generators: Some(crate::generate::GeneratorFetch {
            registry: generators,
            objects: &set.generators,
            previous: &previous,
            now: k8s_openapi::jiff::Timestamp::now(),
            webhook_secrets: None,
        }),
    };
    let mut out = Vec::with_capacity(set.external_secrets.len());
    for sourced in &set.external_secrets {
        let es = &sourced.object;
        let (result, notes) = render_one(ctx, set, es).await;
        out.push(Rendered {
            source: sourced.source.clone(),
            external_secret: format!(
                "{}/{}",
                es.metadata.namespace.as_deref().unwrap_or_default(),
                es.metadata.name.as_deref().unwrap_or_default()
            ),
            result,
            notes,
        });
    }
    out
}

async fn render_one(
    ctx: FetchContext<'_>,
    set: &ManifestSet,
    es: &ExternalSecret,
) -> (Result<Option<Secret>, RenderError>, Vec<String>) {
    if let Some(message) = crate::plan::invalid_message(es) {
        return (Err(RenderError::Invalid(message)), Vec::new());
    }
    let fetched = match fetch(ctx, es).await {
        Ok(f) => f,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    let mut generated_notes = Vec::new();
    if let (Some(outcome), Some(gen_ctx)) = (&fetched.generated, ctx.generators) {
        let namespace = es.metadata.namespace.as_deref().unwrap_or("default");
        for fresh in &outcome.fresh {
            let what = match &fresh.object_namespace {
                Some(ns) => format!("{} \"{ns}/{}\"", fresh.resolved.kind, fresh.name),
                None => format!("ClusterGenerator \"{}\"", fresh.name),
            };
            let mut note = format!(
                "Generated: the values of {what} were generated by this render; a sync generates its own"
            );
            if let Some(state) = &fresh.state {
                let readers = crate::generate::GeneratorReaders {
                    secrets: ctx.secrets,
                    config_maps: ctx.config_maps,
                    tokens: None,
                };
                match crate::generate::cleanup_state(
                    gen_ctx.registry,
                    readers,
                    namespace,
                    &fresh.manifest(),
                    state,
                )
                .await
                {
                    Ok(()) => {
                        note.push_str(" (what it created was cleaned up: they are no longer valid)")
                    }
                    Err(e) => note.push_str(&format!(
                        " (cleaning up what it created failed: {})",
                        e.chain()
                    )),
                }
            }
            generated_notes.push(note);
        }
    }
    let namespace = es.metadata.namespace.clone().unwrap_or_default();
    let existing = set
        .secrets
        .get(&(namespace, es.target_name()))
        .map(|s| &s.object);
    let exec = eso_template::ExecOptions::default();
    let planned = match plan(PlanInput {
        es,
        fetched: &fetched,
        existing,
        exec: &exec,
        tenancy: crate::tenancy::Tenancy::Default,
    }) {
        Ok(p) => p,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    // Created/Updated are routine in a render; the rest (missing provider keys, deletions) are
    // worth a note.
    let notes = planned
        .events
        .iter()
        .filter(|e| {
            e.reason != eso_api::reasons::EVENT_CREATED
                && e.reason != eso_api::reasons::EVENT_UPDATED
        })
        .map(|e| format!("{}: {}", e.reason, e.message))
        .chain(generated_notes)
        .collect();
    let secret = match planned.action {
        SecretAction::Write(write) => Some(write.secret),
        // Rendering shows the Secret as it would be; an unchanged input Secret is still output.
        SecretAction::Nothing => existing
            .filter(|_| {
                planned.condition.reason == eso_api::reasons::SECRET_SYNCED
                    && !fetched.data.is_empty()
            })
            .cloned(),
        SecretAction::Delete(_) => None,
    };
    (Ok(secret), notes)
}
