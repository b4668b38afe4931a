//! `STSSessionToken`: `GetSessionToken`.

use std::time::SystemTime;

use async_trait::async_trait;
use eso_api::generators::{GeneratorKind, STSSessionTokenSpec, validate_sts_session_token};
use eso_generator::{
    Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, parse_spec,
    string_data,
};
use serde_json::Value;

use super::{FIELD, invalid, resolve, stand_in};
use crate::error::from_sdk;
use crate::{AwsConfig, credentials, metrics};

/// The `STSSessionToken` generator.
#[derive(Debug, Clone, Default)]
pub struct StsSessionTokenGenerator {
    config: AwsConfig,
}

impl StsSessionTokenGenerator {
    /// The generator with the default [`AwsConfig`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the client tuning and endpoints.
    #[must_use]
    pub fn config(mut self, config: AwsConfig) -> Self {
        self.config = config;
        self
    }

    fn parse(
        object: &GeneratorObject<'_>,
        spec: &Value,
    ) -> Result<STSSessionTokenSpec, GeneratorError> {
        let spec: STSSessionTokenSpec = parse_spec(object, spec)?;
        invalid(object, validate_sts_session_token(&spec))?;
        Ok(spec)
    }
}

#[async_trait]
impl Generator for StsSessionTokenGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::STSSessionToken
    }

    fn validate(&self, object: GeneratorObject<'_>, spec: &Value) -> Result<(), GeneratorError> {
        Self::parse(&object, spec).map(|_| ())
    }

    async fn generate(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &Value,
    ) -> Result<Generated, GeneratorError> {
        let spec = Self::parse(&ctx.object, spec)?;
        let store = stand_in(&ctx, &spec.region, spec.auth.as_ref(), spec.role.as_deref());
        let creds = resolve(&ctx, &store, &self.config).await?;
        let sts = credentials::sts_client(&self.config, &spec.region, Some(creds.provider));
        let params = spec.request_parameters.clone().unwrap_or_default();
        let result = sts
            .get_session_token()
            .set_duration_seconds(params.session_duration)
            .set_serial_number(params.serial_number)
            .set_token_code(params.token_code)
            .send()
            .await;
        metrics::observe(metrics::STS, "GetSessionToken", &result);
        let out = result.map_err(|e| {
            ctx.provider_error(
                &store,
                FIELD,
                "",
                "STS GetSessionToken failed",
                from_sdk(e, "STS GetSessionToken failed"),
            )
        })?;
        let c = out.credentials().ok_or_else(|| {
            GeneratorError::rejected(format!(
                "{}: STS answered GetSessionToken without credentials",
                ctx.object.describe()
            ))
        })?;
        let expiration = SystemTime::try_from(c.expiration)
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or_else(String::new, |d| d.as_secs().to_string());
        Ok(Generated::data(string_data([
            ("access_key_id", c.access_key_id.clone()),
            ("secret_access_key", c.secret_access_key.clone()),
            ("session_token", c.session_token.clone()),
            ("expiration", expiration),
        ])))
    }
}
