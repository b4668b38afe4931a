//! `ECRAuthorizationToken`: `GetAuthorizationToken` of ECR or ECR Public.

use async_trait::async_trait;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use base64::Engine as _;
use eso_api::generators::{
    ECRAuthorizationTokenSpec, GeneratorKind, validate_ecr_authorization_token,
};
use eso_generator::{
    Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, parse_spec,
    string_data,
};
use eso_provider::StoreInfo;
use serde_json::Value;

use super::{FIELD, invalid, resolve, stand_in};
use crate::credentials::StoreCredentials;
use crate::error::from_sdk;
use crate::{AwsConfig, metrics};

/// Metric provider labels of the generator calls.
const ECR: &str = "AWS/ECR";
const ECR_PUBLIC: &str = "AWS/ECRPublic";

/// Unix seconds of an SDK timestamp.
fn unix_seconds(t: Option<&aws_sdk_sts::primitives::DateTime>) -> String {
    t.map_or_else(String::new, |t| t.secs().to_string())
}

/// `user:password` from a base64 ECR authorization token.
fn user_and_password(token: &str) -> Result<(String, String), &'static str> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| "the authorization token is not base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "the authorization token is not text")?;
    text.split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .ok_or("the authorization token is not user:password")
}

/// The `ECRAuthorizationToken` generator.
#[derive(Debug, Clone, Default)]
pub struct EcrAuthorizationTokenGenerator {
    config: AwsConfig,
    ecr_endpoint: Option<String>,
    ecr_public_endpoint: Option<String>,
}

impl EcrAuthorizationTokenGenerator {
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

    /// The ECR endpoint (upstream's `AWS_ECR_ENDPOINT`); wins over the config's endpoints.
    #[must_use]
    pub fn ecr_endpoint(mut self, url: Option<String>) -> Self {
        self.ecr_endpoint = url.filter(|u| !u.is_empty());
        self
    }

    /// The ECR Public endpoint (upstream's `AWS_ECR_PUBLIC_ENDPOINT`).
    #[must_use]
    pub fn ecr_public_endpoint(mut self, url: Option<String>) -> Self {
        self.ecr_public_endpoint = url.filter(|u| !u.is_empty());
        self
    }

    fn parse(
        object: &GeneratorObject<'_>,
        spec: &Value,
    ) -> Result<ECRAuthorizationTokenSpec, GeneratorError> {
        let spec: ECRAuthorizationTokenSpec = parse_spec(object, spec)?;
        invalid(object, validate_ecr_authorization_token(&spec))?;
        Ok(spec)
    }

    async fn private_token(
        &self,
        ctx: &GeneratorContext<'_>,
        store: &StoreInfo,
        spec: &ECRAuthorizationTokenSpec,
        creds: StoreCredentials,
    ) -> Result<Generated, GeneratorError> {
        let mut b = aws_sdk_ecr::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(spec.region.clone()))
            .credentials_provider(creds.provider)
            .retry_config(self.config.retry_config())
            .timeout_config(self.config.timeout_config());
        if let Some(url) = self
            .ecr_endpoint
            .clone()
            .or_else(|| self.config.endpoint_url.clone())
        {
            b = b.endpoint_url(url);
        }
        let client = aws_sdk_ecr::Client::from_conf(b.build());
        let result = client.get_authorization_token().send().await;
        metrics::observe(ECR, "GetAuthorizationToken", &result);
        let out = result.map_err(|e| {
            ctx.provider_error(
                store,
                FIELD,
                "",
                "ECR GetAuthorizationToken failed",
                from_sdk(e, "ECR GetAuthorizationToken failed"),
            )
        })?;
        let rejected =
            |why: String| GeneratorError::rejected(format!("{}: {why}", ctx.object.describe()));
        let [data] = out.authorization_data() else {
            return Err(rejected(format!(
                "ECR answered with {} authorization tokens, expected 1",
                out.authorization_data().len()
            )));
        };
        let (username, password) = user_and_password(data.authorization_token().unwrap_or(""))
            .map_err(|why| rejected(why.to_owned()))?;
        Ok(Generated::data(string_data([
            ("username", username),
            ("password", password),
            (
                "proxy_endpoint",
                data.proxy_endpoint().unwrap_or_default().to_owned(),
            ),
            ("expires_at", unix_seconds(data.expires_at())),
        ])))
    }

    async fn public_token(
        &self,
        ctx: &GeneratorContext<'_>,
        store: &StoreInfo,
        spec: &ECRAuthorizationTokenSpec,
        creds: StoreCredentials,
    ) -> Result<Generated, GeneratorError> {
        let mut b = aws_sdk_ecrpublic::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(spec.region.clone()))
            .credentials_provider(creds.provider)
            .retry_config(self.config.retry_config())
            .timeout_config(self.config.timeout_config());
        if let Some(url) = self
            .ecr_public_endpoint
            .clone()
            .or_else(|| self.config.endpoint_url.clone())
        {
            b = b.endpoint_url(url);
        }
        let client = aws_sdk_ecrpublic::Client::from_conf(b.build());
        let result = client.get_authorization_token().send().await;
        metrics::observe(ECR_PUBLIC, "GetAuthorizationToken", &result);
        let out = result.map_err(|e| {
            ctx.provider_error(
                store,
                FIELD,
                "",
                "ECR Public GetAuthorizationToken failed",
                from_sdk(e, "ECR Public GetAuthorizationToken failed"),
            )
        })?;
        let rejected = |why: &str| {
            GeneratorError::rejected(format!("{}: ECR Public: {why}", ctx.object.describe()))
        };
        let data = out
            .authorization_data()
            .ok_or_else(|| rejected("the answer has no authorization data"))?;
        let (username, password) =
            user_and_password(data.authorization_token().unwrap_or("")).map_err(rejected)?;
        Ok(Generated::data(string_data([
            ("username", username),
            ("password", password),
            ("expires_at", unix_seconds(data.expires_at())),
        ])))
    }
}

#[async_trait]
impl Generator for EcrAuthorizationTokenGenerator {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::ECRAuthorizationToken
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
        if spec.is_public() {
            self.public_token(&ctx, &store, &spec, creds).await
        } else {
            self.private_token(&ctx, &store, &spec, creds).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_at_the_first_colon() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            user_and_password(&b64("AWS:abc:def")).unwrap(),
            ("AWS".to_owned(), "abc:def".to_owned())
        );
        assert!(user_and_password(&b64("no-colon")).is_err());
        assert!(user_and_password("!!!").is_err());
    }
}
