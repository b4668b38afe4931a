//! The client of a store that cannot read yet: a ClusterSecretStore whose credentials are
//! referent (they name no namespace, so they resolve only in the namespace of each
//! ExternalSecret). Built when such a store is validated without a namespace; every read is
//! refused with the provider's explanation, and validation says "unknown", as upstream's
//! `ValidationResultUnknown` for referent credentials.

use async_trait::async_trait;
use eso_api::{ExternalSecretDataRemoteRef, ExternalSecretFind};

use crate::{ProviderError, SecretData, SecretsClient, ValidationResult};

/// A client that refuses every read with [`ErrorKind::InvalidStore`](crate::ErrorKind) and a
/// fixed message.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use eso_provider::{ErrorKind, ReferentPlaceholder, SecretsClient, ValidationResult};
///
/// let client = ReferentPlaceholder::new("ClusterSecretStore \"s\": its credentials are referent");
/// let remote = eso_api::ExternalSecretDataRemoteRef { key: "db".into(), ..Default::default() };
/// let err = client.get_secret(&remote).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidStore);
/// assert_eq!(client.validate().await.unwrap(), ValidationResult::Unknown);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReferentPlaceholder {
    message: String,
}

impl ReferentPlaceholder {
    /// Refuses every read with `message` (which names the store and why).
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    fn refuse(&self) -> ProviderError {
        ProviderError::invalid_store(self.message.clone())
    }
}

#[async_trait]
impl SecretsClient for ReferentPlaceholder {
    async fn get_secret(&self, _: &ExternalSecretDataRemoteRef) -> Result<Vec<u8>, ProviderError> {
        Err(self.refuse())
    }

    async fn get_secret_map(
        &self,
        _: &ExternalSecretDataRemoteRef,
    ) -> Result<SecretData, ProviderError> {
        Err(self.refuse())
    }

    async fn get_all_secrets(&self, _: &ExternalSecretFind) -> Result<SecretData, ProviderError> {
        Err(self.refuse())
    }

    async fn validate(&self) -> Result<ValidationResult, ProviderError> {
        Ok(ValidationResult::Unknown)
    }
}
