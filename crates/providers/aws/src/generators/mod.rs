//! The AWS generators, logged in exactly as an AWS store is (static keys from a Secret, a
//! ServiceAccount token exchanged with `AssumeRoleWithWebIdentity` for the role its
//! `eks.amazonaws.com/role-arn` annotation names, or the SDK's default chain; then `role`
//! assumed on top):
//!
//! - [`EcrAuthorizationTokenGenerator`] (`ECRAuthorizationToken`, upstream's
//!   `generators/v1/ecr`): `GetAuthorizationToken` of ECR (`scope: private`, the default) or
//!   ECR Public (`scope: public`). Output: `username`, `password`, `proxy_endpoint` (private
//!   only) and `expires_at` (Unix seconds), as upstream.
//! - [`StsSessionTokenGenerator`] (`STSSessionToken`, upstream's `generators/v1/sts`):
//!   `GetSessionToken` with `requestParameters` (`sessionDuration`, `serialNumber`,
//!   `tokenCode`). Output: `access_key_id`, `secret_access_key`, `session_token` and
//!   `expiration` (Unix seconds), as upstream. `auth.jwt` is refused, as upstream refuses it.
//!
//! The ECR generator needs the crate feature `ecr` (on by default).
//!
//! Neither leaves state behind: the tokens expire on their own (ECR's after 12 hours).
//!
//! Endpoints come from the [`AwsConfig`] (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_STS` in the
//! binaries), and ECR's from [`EcrAuthorizationTokenGenerator::ecr_endpoint`] and
//! [`EcrAuthorizationTokenGenerator::ecr_public_endpoint`], which binaries fill from
//! upstream's `AWS_ECR_ENDPOINT` and `AWS_ECR_PUBLIC_ENDPOINT`. Calls count in
//! `externalsecret_provider_api_calls_count` under `AWS/ECR`, `AWS/ECRPublic` and `AWS/STS`.

#[cfg(feature = "ecr")]
mod ecr;
mod sts;

use eso_api::provider::{AwsAuth, AwsProvider as AwsSpec, SecretStoreProvider};
use eso_api::validate::FieldError;
use eso_generator::{GeneratorContext, GeneratorError, GeneratorObject};
use eso_provider::StoreInfo;

#[cfg(feature = "ecr")]
pub use ecr::EcrAuthorizationTokenGenerator;
pub use sts::StsSessionTokenGenerator;

use crate::AwsConfig;
use crate::credentials::{self, StoreCredentials};

/// The stand-in store's provider field; the generators' `region`, `auth` and `role` sit at the
/// top of their spec.
pub(super) const FIELD: &str = "spec.provider.aws";

/// The first static-check violation as an error naming the object.
pub(super) fn invalid(
    object: &GeneratorObject<'_>,
    errors: Vec<FieldError>,
) -> Result<(), GeneratorError> {
    match errors.into_iter().next() {
        None => Ok(()),
        Some(e) => {
            let path = e.path.replacen("spec", &object.spec_path(), 1);
            Err(GeneratorError::invalid_spec(format!(
                "{}: {path} {}",
                object.describe(),
                e.message
            )))
        }
    }
}

/// The generator's `region`, `auth` and `role` as a store's `spec.provider.aws`, so that the
/// store's credential chain serves the generator.
pub(super) fn stand_in(
    ctx: &GeneratorContext<'_>,
    region: &str,
    auth: Option<&AwsAuth>,
    role: Option<&str>,
) -> StoreInfo {
    ctx.stand_in_store(SecretStoreProvider {
        aws: Some(AwsSpec {
            region: region.to_owned(),
            auth: auth.cloned(),
            role: role.map(str::to_owned),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub(super) async fn resolve(
    ctx: &GeneratorContext<'_>,
    store: &StoreInfo,
    config: &AwsConfig,
) -> Result<StoreCredentials, GeneratorError> {
    let spec =
        store.spec.provider.aws.as_ref().ok_or_else(|| {
            GeneratorError::invalid_spec("the stand-in store has no aws provider")
        })?;
    credentials::resolve(&ctx.client_context(store), spec, config)
        .await
        .map_err(|e| ctx.provider_error(store, FIELD, "", "loading AWS credentials failed", e))
}
