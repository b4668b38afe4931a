//! The operator's I/O adapters: store lookup over reflector caches, credential Secrets read
//! from the API server, and ServiceAccount tokens from the TokenRequest API.

use std::collections::BTreeMap;

use async_trait::async_trait;
use eso_api::{ClusterSecretStore, SecretStore, StoreKind};
use eso_provider::{ProviderError, SecretData, SecretReader, ServiceAccountTokens, StoreInfo};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use crate::store::StoreLookup;
use crate::tenancy::{
    ANNOTATION_TOKEN_REQUEST, ANNOTATION_TOKEN_REQUEST_API_AUDIENCE, LABEL_READABLE, Tenancy,
    opted_in,
};

/// Stores and namespaces from reflector caches.
#[derive(Clone)]
pub struct CachedStores {
    /// SecretStores.
    pub stores: Store<SecretStore>,
    /// ClusterSecretStores (`None` when cluster stores are switched off).
    pub cluster_stores: Option<Store<ClusterSecretStore>>,
    /// Namespaces (`None` when the operator is scoped to one namespace).
    pub namespaces: Option<Store<Namespace>>,
}

impl CachedStores {
    /// Returns once every cache has listed its objects (or its watch is gone).
    pub async fn wait_until_ready(&self) {
        let _ = self.stores.wait_until_ready().await;
        if let Some(c) = &self.cluster_stores {
            let _ = c.wait_until_ready().await;
        }
        if let Some(n) = &self.namespaces {
            let _ = n.wait_until_ready().await;
        }
    }
}

impl StoreLookup for CachedStores {
    fn store(&self, kind: StoreKind, namespace: &str, name: &str) -> Option<StoreInfo> {
        match kind {
            StoreKind::SecretStore => {
                let s = self.stores.get(&ObjectRef::new(name).within(namespace))?;
                Some(StoreInfo {
                    kind,
                    name: name.to_owned(),
                    namespace: Some(namespace.to_owned()),
                    uid: s.metadata.uid.clone(),
                    generation: s.metadata.generation,
                    spec: s.spec.clone(),
                })
            }
            StoreKind::ClusterSecretStore => {
                let s = self.cluster_stores.as_ref()?.get(&ObjectRef::new(name))?;
                Some(StoreInfo {
                    kind,
                    name: name.to_owned(),
                    namespace: None,
                    uid: s.metadata.uid.clone(),
                    generation: s.metadata.generation,
                    spec: s.spec.clone(),
                })
            }
        }
    }

    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespaces
            .as_ref()
            .and_then(|n| n.get(&ObjectRef::new(namespace)))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        labels.insert(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.to_owned(),
        );
        labels
    }
}

/// Maps a kube error to a provider error by HTTP status.
pub(crate) fn kube_error(what: String, e: kube::Error) -> ProviderError {
    let status = match &e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    };
    match status {
        Some(401 | 403) => ProviderError::auth(what),
        Some(429) => ProviderError::throttled(what),
        Some(400 | 422) => ProviderError::invalid_request(what),
        _ => ProviderError::unavailable(what),
    }
    .with_source(e)
}

/// Reads credential Secrets directly from the API server (they are read only when a provider
/// client is built, so they are not cached). In strict tenancy only Secrets labelled
/// [`LABEL_READABLE`] are read.
#[derive(Clone)]
pub struct ApiSecretReader {
    client: Client,
    tenancy: Tenancy,
    required_label: Option<(&'static str, &'static str)>,
}

impl ApiSecretReader {
    /// A reader using this client.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self {
            client,
            tenancy: Tenancy::Default,
            required_label: None,
        }
    }

    /// The same reader, refusing Secrets without the label `key: value` (upstream's Webhook
    /// generator reads only Secrets labelled `external-secrets.io/type: webhook`).
    #[must_use]
    pub fn require_label(mut self, key: &'static str, value: &'static str) -> Self {
        self.required_label = Some((key, value));
        self
    }

    /// The same reader under these tenancy rules.
    #[must_use]
    pub fn tenancy(mut self, tenancy: Tenancy) -> Self {
        self.tenancy = tenancy;
        self
    }
}

#[async_trait]
impl SecretReader for ApiSecretReader {
    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ProviderError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|e| kube_error(format!("cannot read Secret \"{namespace}/{name}\""), e))?;
        if self.tenancy.is_strict()
            && let Some(secret) = &secret
            && !opted_in(secret.metadata.labels.as_ref(), LABEL_READABLE)
        {
            return Err(ProviderError::auth(format!(
                "strict tenancy: Secret \"{namespace}/{name}\" may not be read by stores or templates: it lacks the label {LABEL_READABLE}=true"
            )));
        }
        if let Some((key, value)) = self.required_label
            && let Some(secret) = &secret
            && secret
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .map(String::as_str)
                != Some(value)
        {
            return Err(ProviderError::invalid_store(format!(
                "Secret \"{namespace}/{name}\" may not be read here: it lacks the label {key}={value}"
            )));
        }
        Ok(secret.map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
    }
}

#[async_trait]
impl crate::fetch::ConfigMapReader for ApiSecretReader {
    async fn config_map_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(self.client.clone(), namespace);
        let cm = api
            .get_opt(name)
            .await
            .map_err(|e| kube_error(format!("cannot read ConfigMap \"{namespace}/{name}\""), e))?;
        Ok(cm.map(|c| c.data.unwrap_or_default()))
    }
}

/// Requests ServiceAccount tokens through the TokenRequest API. In strict tenancy only for
/// ServiceAccounts annotated [`ANNOTATION_TOKEN_REQUEST`], and a token the Kubernetes API
/// server would accept (checked with a TokenReview) only with
/// [`ANNOTATION_TOKEN_REQUEST_API_AUDIENCE`] too.
#[derive(Clone)]
pub struct ApiTokens {
    client: Client,
    tenancy: Tenancy,
}

impl ApiTokens {
    /// Tokens using this client.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self {
            client,
            tenancy: Tenancy::Default,
        }
    }

    /// The same token source under these tenancy rules.
    #[must_use]
    pub fn tenancy(mut self, tenancy: Tenancy) -> Self {
        self.tenancy = tenancy;
        self
    }

    /// Strict tenancy: whether the ServiceAccount allows token requests, and tokens the API
    /// server accepts. An error says which opt-in is missing.
    async fn strict_allowance(&self, namespace: &str, name: &str) -> Result<bool, ProviderError> {
        let annotations = self
            .service_account_annotations(namespace, name)
            .await?
            .ok_or_else(|| {
                ProviderError::auth(format!(
                    "ServiceAccount \"{namespace}/{name}\" does not exist"
                ))
            })?;
        if !opted_in(Some(&annotations), ANNOTATION_TOKEN_REQUEST) {
            return Err(ProviderError::auth(format!(
                "strict tenancy: ServiceAccount \"{namespace}/{name}\" does not allow stores to request its tokens: it lacks the annotation {ANNOTATION_TOKEN_REQUEST}=\"true\""
            )));
        }
        Ok(opted_in(
            Some(&annotations),
            ANNOTATION_TOKEN_REQUEST_API_AUDIENCE,
        ))
    }

    /// Whether the Kubernetes API server itself accepts `token` (a TokenReview with the API
    /// server's own audiences). Fails closed: an unanswered review counts as accepted.
    async fn api_server_accepts(&self, token: &str) -> bool {
        use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        match api.create(&PostParams::default(), &review).await {
            // `authenticated: false` comes with an `error` saying why (e.g. the audiences):
            // that is a rejection. No status at all is no answer.
            Ok(answer) => answer
                .status
                .is_none_or(|s| s.authenticated.unwrap_or(false)),
            Err(e) => {
                tracing::warn!(error = %e, "TokenReview failed; treating the token as one the API server accepts");
                true
            }
        }
    }
}

#[async_trait]
impl ServiceAccountTokens for ApiTokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError> {
        let api_audience_allowed = if self.tenancy.is_strict() {
            let allowed = self.strict_allowance(namespace, name).await?;
            if audiences.is_empty() && !allowed {
                return Err(ProviderError::auth(format!(
                    "strict tenancy: a token for ServiceAccount \"{namespace}/{name}\" without audiences would be accepted by the Kubernetes API server; set the store's audiences, or annotate the ServiceAccount with {ANNOTATION_TOKEN_REQUEST_API_AUDIENCE}=\"true\""
                )));
            }
            allowed
        } else {
            true
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audiences.to_vec(),
                expiration_seconds: Some(expiration_seconds.unwrap_or(600)),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let response = api
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| {
                kube_error(
                    format!("cannot request a token for ServiceAccount \"{namespace}/{name}\""),
                    e,
                )
            })?;
        let token = response.status.map(|s| s.token).ok_or_else(|| {
            ProviderError::unavailable(format!(
                "TokenRequest for \"{namespace}/{name}\" returned no token"
            ))
        })?;
        if !api_audience_allowed && self.api_server_accepts(&token).await {
            return Err(ProviderError::auth(format!(
                "strict tenancy: a token for ServiceAccount \"{namespace}/{name}\" with audiences {audiences:?} would be accepted by the Kubernetes API server; use another audience, or annotate the ServiceAccount with {ANNOTATION_TOKEN_REQUEST_API_AUDIENCE}=\"true\""
            )));
        }
        Ok(token)
    }

    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let account = api.get_opt(name).await.map_err(|e| {
            kube_error(
                format!("cannot read ServiceAccount \"{namespace}/{name}\""),
                e,
            )
        })?;
        Ok(account.map(|a| a.metadata.annotations.unwrap_or_default()))
    }
}
