//! GKE Workload Identity (`auth.workloadIdentity`), as upstream does it: a token of the named
//! Kubernetes ServiceAccount (audience: the cluster's identity pool `PROJECT.svc.id.goog`) is
//! exchanged for an identity binding token at GKE's security token service (audience
//! `identitynamespace:POOL:https://container.googleapis.com/v1/projects/P/locations/L/clusters/C`),
//! and, when the ServiceAccount's `iam.gke.io/gcp-service-account` annotation names a Google
//! service account, that token is traded for the service account's access token through IAM
//! credentials' `generateAccessToken`. Project, location and cluster name default to the
//! metadata server's.

use async_trait::async_trait;
use eso_api::provider::GcpWorkloadIdentity;
use eso_provider::{ClientContext, ErrorKind, ProviderError};
use reqwest::{Method, Url};
use serde_json::json;

use crate::auth::metadata::Metadata;
use crate::auth::{
    GCP_SA_ANNOTATION, KubernetesToken, impersonate, request_service_account_token, token_answer,
};
use crate::http::{Call, GoogleError, Http};
use crate::metrics::{self, call};
use crate::token::{AccessToken, TokenFetch};
use crate::{CLOUD_PLATFORM_SCOPE, GcpConfig};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The GKE Workload Identity credential of one client.
#[derive(Debug)]
pub(crate) struct GkeWorkloadIdentity {
    subject: KubernetesToken,
    pool: String,
    provider: String,
    gcp_service_account: Option<String>,
    identity_binding: Url,
    config: GcpConfig,
    owner: String,
}

impl GkeWorkloadIdentity {
    /// Looks up the cluster's identity and requests the ServiceAccount token.
    pub(crate) async fn build(
        ctx: &ClientContext<'_>,
        wi: &GcpWorkloadIdentity,
        config: &GcpConfig,
        http: &Http,
        metadata: &Metadata,
    ) -> Result<Self, ProviderError> {
        let owner = ctx.store.describe();
        let lookup = async |value: &Option<String>, path: &str| -> Result<String, ProviderError> {
            match value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => Ok(v.to_owned()),
                None => metadata.value(http, path).await,
            }
        };
        let project = lookup(&wi.cluster_project_id, "project/project-id").await?;
        let location = lookup(&wi.cluster_location, "instance/attributes/cluster-location").await?;
        let cluster = lookup(&wi.cluster_name, "instance/attributes/cluster-name").await?;
        let pool = format!("{project}.svc.id.goog");
        let provider = format!(
            "https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{cluster}"
        );
        let account = &wi.service_account_ref;
        // Upstream asks for the pool first, then the reference's own audiences.
        let mut audiences = vec![pool.clone()];
        audiences.extend(account.audiences.iter().cloned());
        let (subject, annotations) =
            request_service_account_token(ctx, account, &audiences, config).await?;
        let gcp_service_account = annotations
            .get(GCP_SA_ANNOTATION)
            .filter(|s| !s.is_empty())
            .cloned();
        let identity_binding = Url::parse(&config.endpoints.identity_binding).map_err(|e| {
            ProviderError::invalid_store(format!(
                "the identity binding endpoint {:?} is not a URL",
                config.endpoints.identity_binding
            ))
            .with_source(e)
        })?;
        Ok(Self {
            subject,
            pool,
            provider,
            gcp_service_account,
            identity_binding,
            config: config.clone(),
            owner,
        })
    }
}

#[async_trait]
impl TokenFetch for GkeWorkloadIdentity {
    async fn fetch(&self, http: &Http) -> Result<AccessToken, ProviderError> {
        let subject = self.subject.current(&self.owner)?;
        let request = Call::new(Method::POST, self.identity_binding.clone())
            .json(json!({
                "grant_type": TOKEN_EXCHANGE,
                "subject_token_type": JWT_TOKEN_TYPE,
                "requested_token_type": ACCESS_TOKEN_TYPE,
                "subject_token": subject,
                "audience": format!("identitynamespace:{}:{}", self.pool, self.provider),
                "scope": CLOUD_PLATFORM_SCOPE,
            }))
            .idempotent(true);
        let result = http.send(&request).await;
        metrics::observe(call::GENERATE_ID_BIND_TOKEN, &result);
        let body = result.map_err(|e| {
            ProviderError::new(
                e.token_kind(),
                format!(
                    "{}: the identity binding token exchange for ServiceAccount {} (pool {}) was refused",
                    self.owner, self.subject.account, self.pool
                ),
            )
            .with_source(e)
        })?;
        let bound = token_answer(&body, "access_token", "expires_in").ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "{}: the identity binding token answer holds no access token",
                    self.owner
                ),
            )
        })?;
        // Without the annotation the federated token is used directly (bindings of the form
        // serviceAccount:PROJECT.svc.id.goog[NAMESPACE/NAME]).
        match &self.gcp_service_account {
            None => Ok(bound),
            Some(email) => {
                impersonate(
                    http,
                    &self.config.endpoints.impersonation_url(email),
                    &bound.value,
                    None,
                    &self.owner,
                )
                .await
            }
        }
    }
}
