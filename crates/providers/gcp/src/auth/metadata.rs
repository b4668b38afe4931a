//! The metadata server of a Google Cloud VM or GKE node: the project and cluster a pod runs in
//! (for stores without `projectID` and GKE Workload Identity without cluster fields), and the
//! default credentials of the pod (the node's or the pod's Workload Identity service account).

use async_trait::async_trait;
use eso_provider::{ErrorKind, ProviderError};
use reqwest::{Method, Url};

use crate::CLOUD_PLATFORM_SCOPE;
use crate::auth::token_answer;
use crate::http::{Call, Http};
use crate::metrics::{self, call};
use crate::token::{AccessToken, TokenFetch};

/// A metadata server.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    base: String,
    /// Whom errors name (the store).
    owner: String,
}

impl Metadata {
    pub(crate) fn new(base: &str, owner: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            owner: owner.to_owned(),
        }
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        Url::parse(&format!("{}/computeMetadata/v1/{path}", self.base)).map_err(|e| {
            ProviderError::invalid_store(format!(
                "the metadata server URL {:?} is not valid",
                self.base
            ))
            .with_source(e)
        })
    }

    /// One text value (`project/project-id`, `instance/attributes/cluster-name`, ...).
    pub(crate) async fn value(&self, http: &Http, path: &str) -> Result<String, ProviderError> {
        let request = Call::new(Method::GET, self.url(path)?).header("metadata-flavor", "Google");
        let result = http.send(&request).await;
        metrics::observe(call::METADATA, &result);
        let body = result.map_err(|e| {
            let kind = match e.status.map(|s| s.as_u16()) {
                None | Some(500..=599) => ErrorKind::Unavailable,
                Some(_) => ErrorKind::InvalidStore,
            };
            ProviderError::new(
                kind,
                format!(
                    "{}: the metadata server at {} did not answer {path}",
                    self.owner, self.base
                ),
            )
            .with_source(e)
        })?;
        let text = String::from_utf8_lossy(&body).trim().to_owned();
        if text.is_empty() {
            return Err(ProviderError::invalid_store(format!(
                "{}: the metadata server at {} answered {path} with nothing",
                self.owner, self.base
            )));
        }
        Ok(text)
    }
}

/// The default credentials of the pod: the metadata server's token of its default service
/// account.
#[derive(Debug)]
pub(crate) struct MetadataToken(pub(crate) Metadata);

#[async_trait]
impl TokenFetch for MetadataToken {
    async fn fetch(&self, http: &Http) -> Result<AccessToken, ProviderError> {
        let md = &self.0;
        let mut url = md.url("instance/service-accounts/default/token")?;
        url.query_pairs_mut()
            .append_pair("scopes", CLOUD_PLATFORM_SCOPE);
        let request = Call::new(Method::GET, url).header("metadata-flavor", "Google");
        let result = http.send(&request).await;
        metrics::observe(call::METADATA_TOKEN, &result);
        let body = result.map_err(|e| {
            let kind = match e.status.map(|s| s.as_u16()) {
                // No metadata server (not on Google Cloud) or a failing one.
                None | Some(500..=599) => ErrorKind::Unavailable,
                Some(_) => ErrorKind::Auth,
            };
            ProviderError::new(
                kind,
                format!(
                    "{}: no default credentials: the metadata server at {} gave no token (the store names no auth)",
                    md.owner, md.base
                ),
            )
            .with_source(e)
        })?;
        token_answer(&body, "access_token", "expires_in").ok_or_else(|| {
            ProviderError::auth(format!(
                "{}: the metadata server at {} answered without an access token",
                md.owner, md.base
            ))
        })
    }
}
