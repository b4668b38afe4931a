//! A stand-in for the Kubernetes TokenRequest API, for provider tests without an API server:
//! unsigned ServiceAccount JWTs with the claims a cluster puts in them (as the repository's
//! test API server issues them), the ServiceAccounts' annotations, and a log of requests.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use eso_provider::{ProviderError, ServiceAccountTokens};
use serde_json::json;

use crate::jwt::b64url;

/// One token request: namespace, ServiceAccount name and audiences.
pub type TokenRequestRecord = (String, String, Vec<String>);

/// Issues unsigned ServiceAccount tokens for any ServiceAccount and records each request.
#[derive(Debug, Default)]
pub struct FakeServiceAccountTokens {
    annotations: Mutex<BTreeMap<(String, String), BTreeMap<String, String>>>,
    requests: Mutex<Vec<TokenRequestRecord>>,
}

impl FakeServiceAccountTokens {
    /// No annotations, no requests yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives ServiceAccount `namespace/name` an annotation (e.g.
    /// `iam.gke.io/gcp-service-account`).
    #[must_use]
    pub fn annotate(self, namespace: &str, name: &str, key: &str, value: &str) -> Self {
        self.annotations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Every token request so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<TokenRequestRecord> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A token as [`token`](ServiceAccountTokens::token) issues it, without recording it.
    #[must_use]
    pub fn mint(namespace: &str, name: &str, audiences: &[String], ttl_seconds: i64) -> String {
        let now = jiff::Timestamp::now().as_second();
        let claims = json!({
            "iss": "https://kubernetes.default.svc",
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "aud": audiences,
            "iat": now, "nbf": now, "exp": now + ttl_seconds,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name}},
        });
        format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"JWT"}"#),
            b64url(claims.to_string().as_bytes())
        )
    }
}

#[async_trait]
impl ServiceAccountTokens for FakeServiceAccountTokens {
    async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> Result<String, ProviderError> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((namespace.to_owned(), name.to_owned(), audiences.to_vec()));
        let audiences = if audiences.is_empty() {
            vec!["https://kubernetes.default.svc".to_owned()]
        } else {
            audiences.to_vec()
        };
        Ok(Self::mint(
            namespace,
            name,
            &audiences,
            expiration_seconds.unwrap_or(3600),
        ))
    }

    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        Ok(Some(
            self.annotations
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&(namespace.to_owned(), name.to_owned()))
                .cloned()
                .unwrap_or_default(),
        ))
    }
}
