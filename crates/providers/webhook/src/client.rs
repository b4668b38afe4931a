//! The webhook client: renders a store's templates for each call, sends the request and reads
//! the answer.

use std::collections::BTreeMap;

use async_trait::async_trait;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind};
use eso_provider::{ProviderError, PushRequest, SecretData, SecretsClient, ValidationResult};
use reqwest::{Method, Url};

use crate::request::{TemplateData, Templates, render, render_bytes};
use crate::result::{secret_map, secret_value};
use crate::transport::{Answer, Call, Transport, call, header_map, redact};

/// An authenticated client of one webhook store. Built by [`crate::WebhookProvider`].
pub struct WebhookClient {
    pub(crate) transport: Transport,
    pub(crate) templates: Templates,
    pub(crate) method: Method,
    /// `method` as the store set it (push defaults to POST when unset).
    pub(crate) method_set: bool,
    /// The `secrets[]` data, read when the client was built.
    pub(crate) secrets: BTreeMap<String, SecretData>,
    pub(crate) store: String,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the Secrets.
        f.debug_struct("WebhookClient")
            .field("store", &self.store)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

fn parse_url(text: &str) -> Result<Url, ProviderError> {
    Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            // The rendered URL may hold a secret; show it only up to the query.
            let shown = text.split('?').next().unwrap_or("");
            ProviderError::invalid_request(format!(
                "the rendered url {shown:?} is not an http(s) URL"
            ))
        })
}

impl WebhookClient {
    fn headers(
        &self,
        data: &eso_template::Value,
    ) -> Result<reqwest::header::HeaderMap, ProviderError> {
        let rendered = self
            .templates
            .headers
            .iter()
            .map(|(name, t)| {
                render(t, data, &format!("header {name:?}")).map(|v| (name.clone(), v))
            })
            .collect::<Result<Vec<_>, _>>()?;
        header_map(&rendered)
    }

    fn with_store(&self, e: ProviderError) -> ProviderError {
        let retry_after = e.retry_after();
        let mut wrapped = ProviderError::new(e.kind(), format!("{}: {}", self.store, e.message()));
        if let Some(wait) = retry_after {
            wrapped = wrapped.with_retry_after(wait);
        }
        wrapped.with_source(e)
    }

    /// Renders and sends the read request; returns the answer, a description of the call for
    /// messages, and the rendered JSONPath.
    async fn fetch(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<(Answer, String, Option<String>), ProviderError> {
        let key = remote.key.as_str();
        let property = remote.property.as_deref();
        let version = remote.version.as_deref();
        let url_data = TemplateData::for_read(key, property, version, true, &self.secrets).value();
        let data = TemplateData::for_read(key, property, version, false, &self.secrets).value();
        let url = parse_url(&render(&self.templates.url, &url_data, "url")?)?;
        let body = match &self.templates.body {
            Some(t) => Some(render_bytes(t, &data, "body")?),
            None => None,
        };
        let json_path = match &self.templates.json_path {
            Some(t) => Some(render(t, &data, "result.jsonPath")?).filter(|p| !p.is_empty()),
            None => None,
        };
        let headers = self.headers(&data)?;
        let describe = format!("{} {}", self.method, redact(&url));
        let answer = self
            .transport
            .send(Call {
                method: self.method.clone(),
                url,
                headers,
                body,
                label: call::GET,
            })
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    // Keep the message short and in the usual form; the status says why.
                    ProviderError::not_found(key).with_source(e)
                } else {
                    e
                }
            })?;
        Ok((answer, describe, json_path))
    }
}

#[async_trait]
impl SecretsClient for WebhookClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, ProviderError> {
        let (answer, describe, json_path) =
            self.fetch(remote).await.map_err(|e| self.with_store(e))?;
        secret_value(&answer.body, json_path.as_deref()).map_err(|e| {
            self.with_store(e.into_provider_error(
                &format!("{describe} answered {}", answer.status),
                json_path.as_deref(),
            ))
        })
    }

    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        let (answer, describe, json_path) =
            self.fetch(remote).await.map_err(|e| self.with_store(e))?;
        secret_map(&answer.body, json_path.as_deref()).map_err(|e| {
            self.with_store(e.into_provider_error(
                &format!("{describe} answered {}", answer.status),
                json_path.as_deref(),
            ))
        })
    }

    async fn get_all_secrets(
        &self,
        _find: &ExternalSecretFind,
    ) -> Result<SecretData, ProviderError> {
        Err(ProviderError::unsupported(format!(
            "{}: the webhook provider cannot find secrets (dataFrom.find); use extract",
            self.store
        )))
    }

    async fn push_secret(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let remote_key = request.remote.remote_key.as_str();
        let data = TemplateData::for_push(
            remote_key,
            request.secret_key.as_deref(),
            &request.value,
            &self.secrets,
        )
        .value();
        let result = async {
            let url = parse_url(&render(&self.templates.url, &data, "url")?)?;
            // Upstream sends the raw value when no body template is set.
            let body = match &self.templates.body {
                Some(t) => render_bytes(t, &data, "body")?,
                None => request.value.clone(),
            };
            let headers = self.headers(&data)?;
            let method = if self.method_set {
                self.method.clone()
            } else {
                Method::POST
            };
            self.transport
                .send(Call {
                    method,
                    url,
                    headers,
                    body: Some(body),
                    label: call::PUSH,
                })
                .await
        }
        .await;
        result.map(|_| ()).map_err(|e| self.with_store(e))
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        // A webhook has no side-effect-free call to check it with; upstream reports Unknown.
        Ok(ValidationResult::Unknown)
    }

    /// Reading and pushing are the same request to the same URL: a "read" before a push
    /// would send the push's request without the value.
    fn reads_back_pushes(&self) -> bool {
        false
    }
}
