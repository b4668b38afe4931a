//! The `Webhook` generator (upstream's `generators/v1/webhook`): one templated HTTP call, made
//! by the webhook provider's own client, whose JSON answer (or the object `result.jsonPath`
//! selects) is the generated data. Every key of that object becomes a key of the output;
//! string values as they are, others as JSON (the provider's `get_secret_map`).
//!
//! The templates see each `secrets[]` entry as `.<name>.<key>`, read from the namespace the
//! value is generated for. `.remoteRef.*` is empty (upstream passes no remote reference).
//!
//! # Differences from upstream
//! - Upstream only reads `secrets[]` Secrets labelled `external-secrets.io/type: webhook`
//!   ([`eso_api::generators::WEBHOOK_SECRET_LABEL`]). The readers this crate gets carry no
//!   labels, so the caller enforces it by passing a reader that hides unlabelled Secrets.
//! - A 404 answer is [`eso_generator::ErrorKind::Rejected`] like any other refused call.

use async_trait::async_trait;
use eso_api::generators::{GeneratorKind, WebhookSpec, validate_webhook};
use eso_api::provider::{
    SecretStoreProvider, WebhookProvider as WebhookProviderSpec, WebhookSecret,
};
use eso_api::{ExternalSecretDataRemoteRef, SecretKeySelector};
use eso_generator::{
    ErrorKind, Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, parse_spec,
};
use eso_provider::Provider as _;
use serde_json::Value;

use crate::{WebhookConfig, WebhookProvider};

/// The stand-in store's provider field; the generator's settings sit at the top of its spec.
const FIELD: &str = "spec.provider.webhook";

/// The `Webhook` generator.
#[derive(Debug, Clone, Default)]
pub struct WebhookGenerator {
    config: WebhookConfig,
}

impl WebhookGenerator {
    /// The generator with the default [`WebhookConfig`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning (timeouts, answer size, redirects).
    #[must_use]
    pub fn config(mut self, config: WebhookConfig) -> Self {
        self.config = config;
        self
    }

    fn parse(
        object: &GeneratorObject<'_>,
        spec: &Value,
    ) -> Result<WebhookProviderSpec, GeneratorError> {
        let spec: WebhookSpec = parse_spec(object, spec)?;
        if let Some(e) = validate_webhook(&spec).into_iter().next() {
            let path = e.path.replacen("spec", &object.spec_path(), 1);
            return Err(GeneratorError::invalid_spec(format!(
                "{}: {path} {}",
                object.describe(),
                e.message
            )));
        }
        Ok(provider_spec(spec))
    }
}

/// The generator's spec as the webhook provider's: the same fields, with `secrets[]` in the
/// generating namespace.
fn provider_spec(spec: WebhookSpec) -> WebhookProviderSpec {
    WebhookProviderSpec {
        method: spec.method,
        url: spec.url,
        headers: spec.headers,
        auth: spec.auth,
        body: spec.body,
        timeout: spec.timeout,
        result: Some(spec.result),
        secrets: spec
            .secrets
            .into_iter()
            .map(|s| WebhookSecret {
                name: s.name,
                secret_ref: SecretKeySelector {
                    name: s.secret_ref.name,
                    namespace: None,
                    key: s.secret_ref.key,
                },
            })
            .collect(),
        ca_bundle: spec.ca_bundle,
        ca_provider: spec.ca_provider,
    }
}

#[async_trait]
impl Generator for WebhookGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Webhook
    }

    fn validate(&self, object: GeneratorObject<'_>, spec: &Value) -> Result<(), GeneratorError> {
        let spec = Self::parse(&object, spec)?;
        let (secrets, config_maps) = (
            eso_provider::StaticSecretReader::new(),
            eso_provider::StaticConfigMapReader::new(),
        );
        let probe = GeneratorContext::new("", object, &secrets, &config_maps);
        let store = probe.stand_in_store(SecretStoreProvider {
            webhook: Some(spec),
            ..Default::default()
        });
        WebhookProvider::new()
            .validate_store(&store)
            .map(|_| ())
            .map_err(|e| probe.provider_error(&store, FIELD, "", "the webhook is invalid", e))
    }

    async fn generate(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &Value,
    ) -> Result<Generated, GeneratorError> {
        let spec = Self::parse(&ctx.object, spec)?;
        let store = ctx.stand_in_store(SecretStoreProvider {
            webhook: Some(spec),
            ..Default::default()
        });
        let provider = WebhookProvider::new().config(self.config.clone());
        let client = provider
            .new_client(ctx.client_context(&store))
            .await
            .map_err(|e| {
                ctx.provider_error(&store, FIELD, "", "preparing the webhook failed", e)
            })?;
        let data = client
            .get_secret_map(&ExternalSecretDataRemoteRef::default())
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    // The provider reads a 404 as "this key does not exist"; a generator has
                    // no key, so say what happened.
                    let status =
                        std::iter::successors(std::error::Error::source(&e), |s| s.source())
                            .last()
                            .map(ToString::to_string)
                            .unwrap_or_default();
                    GeneratorError::new(
                        ErrorKind::Rejected,
                        format!("{}: calling the webhook failed", ctx.object.describe()),
                    )
                    .with_source(std::io::Error::other(status))
                } else {
                    ctx.provider_error(&store, FIELD, "", "calling the webhook failed", e)
                }
            })?;
        Ok(Generated::data(data))
    }
}
