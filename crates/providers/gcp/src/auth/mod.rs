//! Credentials of a store, in upstream's order: a service-account key (`auth.secretRef`), GKE
//! Workload Identity (`auth.workloadIdentity`), workload identity federation
//! (`auth.workloadIdentityFederation`), then the default credentials of the pod (the metadata
//! server, or the key file a binary configured with
//! [`GcpConfig::application_credentials`](crate::GcpConfig::application_credentials)).

pub(crate) mod aws;
pub(crate) mod federation;
pub(crate) mod metadata;
pub(crate) mod service_account;
pub(crate) mod workload_identity;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eso_api::common::ServiceAccountSelector;
use eso_api::provider::GcpsmProvider;
use eso_provider::{ClientContext, ErrorKind, ProviderError};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::http::{Call, GoogleError, Http};
use crate::metrics::{self, call};
use crate::token::{AccessToken, TokenFetch};
use crate::{CLOUD_PLATFORM_SCOPE, GcpConfig};

/// The ServiceAccount annotation naming the Google service account to act as.
pub(crate) const GCP_SA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// The access token of a token endpoint's JSON answer, with its lifetime.
pub(crate) fn token_answer(body: &[u8], token: &str, expires_in: &str) -> Option<AccessToken> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let value = v.get(token)?.as_str().filter(|t| !t.is_empty())?.to_owned();
    let lifetime = match v.get(expires_in) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .map(Duration::from_secs);
    Some(AccessToken { value, lifetime })
}

/// The `exp` claim of a JWT (seconds since the epoch), read without checking the signature.
pub(crate) fn jwt_expiry(token: &str) -> Option<i64> {
    let claims = token.split('.').nth(1)?;
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    v.get("exp")?.as_i64()
}

/// A Kubernetes ServiceAccount token held by a client.
#[derive(Clone)]
pub(crate) struct KubernetesToken {
    value: String,
    expires: i64,
    /// `namespace/name`, for messages.
    pub(crate) account: String,
}

impl std::fmt::Debug for KubernetesToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesToken")
            .field("account", &self.account)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl KubernetesToken {
    /// The token, while it is still valid for a minute.
    pub(crate) fn current(&self, owner: &str) -> Result<&str, ProviderError> {
        if self.expires <= jiff::Timestamp::now().as_second() + 60 {
            return Err(ProviderError::auth(format!(
                "{owner}: the token of ServiceAccount {} this client was built with has expired; the next sync builds a new client",
                self.account
            )));
        }
        Ok(&self.value)
    }
}

/// Requests a token for the ServiceAccount a store names (with upstream's namespace rules), and
/// reads its annotations.
pub(crate) async fn request_service_account_token(
    ctx: &ClientContext<'_>,
    account: &ServiceAccountSelector,
    audiences: &[String],
    config: &GcpConfig,
) -> Result<(KubernetesToken, BTreeMap<String, String>), ProviderError> {
    let owner = ctx.store.describe();
    let namespace = ctx
        .credential_namespace(account.namespace.as_deref())
        .to_owned();
    let name = &account.name;
    let tokens = ctx.tokens.ok_or_else(|| {
        ProviderError::invalid_store(format!(
            "{owner}: a token for ServiceAccount \"{namespace}/{name}\" is needed, and none can be requested here (no cluster)"
        ))
    })?;
    let annotations = tokens
        .service_account_annotations(&namespace, name)
        .await?
        .ok_or_else(|| {
            ProviderError::invalid_store(format!(
                "{owner}: ServiceAccount \"{namespace}/{name}\" does not exist"
            ))
        })?;
    // One token per client, requested for long enough that the Google tokens made from it can
    // be renewed many times before the client has to be rebuilt (see `GcpConfig`).
    let lifetime = config.service_account_token_lifetime.as_secs();
    let result = tokens
        .token(
            &namespace,
            name,
            audiences,
            Some(i64::try_from(lifetime).unwrap_or(i64::MAX)),
        )
        .await;
    metrics::observe(call::GENERATE_SA_TOKEN, &result);
    let value = result.map_err(|e| {
        ProviderError::new(
            e.kind(),
            format!("{owner}: cannot get a token for ServiceAccount \"{namespace}/{name}\""),
        )
        .with_source(e)
    })?;
    let expires = jwt_expiry(&value).unwrap_or_else(|| {
        jiff::Timestamp::now().as_second() + i64::try_from(lifetime).unwrap_or(i64::MAX / 2)
    });
    Ok((
        KubernetesToken {
            value,
            expires,
            account: format!("\"{namespace}/{name}\""),
        },
        annotations,
    ))
}

/// Trades `bearer` for an access token of the service account `url` names (IAM credentials'
/// `generateAccessToken`).
pub(crate) async fn impersonate(
    http: &Http,
    url: &str,
    bearer: &str,
    lifetime_seconds: Option<u64>,
    owner: &str,
) -> Result<AccessToken, ProviderError> {
    let parsed = Url::parse(url).map_err(|e| {
        ProviderError::invalid_store(format!(
            "{owner}: the impersonation URL {url:?} is not valid"
        ))
        .with_source(e)
    })?;
    let mut body = json!({"scope": [CLOUD_PLATFORM_SCOPE]});
    if let Some(secs) = lifetime_seconds {
        body["lifetime"] = Value::from(format!("{secs}s"));
    }
    let request = Call::new(Method::POST, parsed)
        .bearer(bearer)
        .json(body)
        .idempotent(true);
    let result = http.send(&request).await;
    metrics::observe(call::GENERATE_ACCESS_TOKEN, &result);
    let answer = result.map_err(|e| {
        ProviderError::new(
            e.token_kind(),
            format!("{owner}: impersonation through {url} was refused"),
        )
        .with_source(e)
    })?;
    let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    let value = v
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Auth,
                format!("{owner}: generateAccessToken answered without an access token"),
            )
        })?
        .to_owned();
    let lifetime = v
        .get("expireTime")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second() - jiff::Timestamp::now().as_second())
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs);
    Ok(AccessToken { value, lifetime })
}

/// The credential a store's `auth` names, ready to fetch tokens.
pub(crate) async fn resolve(
    ctx: &ClientContext<'_>,
    spec: &GcpsmProvider,
    config: &GcpConfig,
    http: &Http,
    metadata: &metadata::Metadata,
) -> Result<Box<dyn TokenFetch>, ProviderError> {
    let owner = ctx.store.describe();
    let auth = spec.auth.clone().unwrap_or_default();
    if let Some(secret_ref) = &auth.secret_ref {
        let selector = secret_ref
            .secret_access_key_secret_ref
            .as_ref()
            .ok_or_else(|| {
                ProviderError::invalid_store(format!(
                    "{owner}: auth.secretRef.secretAccessKeySecretRef is required"
                ))
            })?;
        let key = ctx
            .read_secret_key(selector, "auth.secretRef.secretAccessKeySecretRef")
            .await?;
        return Ok(Box::new(service_account::ServiceAccountKey::parse(
            &key, &owner,
        )?));
    }
    if let Some(wi) = &auth.workload_identity {
        return Ok(Box::new(
            workload_identity::GkeWorkloadIdentity::build(ctx, wi, config, http, metadata).await?,
        ));
    }
    if let Some(wif) = &auth.workload_identity_federation {
        return Ok(Box::new(
            federation::Federation::build(ctx, wif, config).await?,
        ));
    }
    if let Some(key) = &config.application_credentials {
        return Ok(Box::new(service_account::ServiceAccountKey::parse(
            key.as_bytes(),
            &format!("{owner} (default credentials)"),
        )?));
    }
    Ok(Box::new(metadata::MetadataToken(metadata.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_token_answers() {
        let t = token_answer(
            br#"{"access_token":"a","expires_in":3599}"#,
            "access_token",
            "expires_in",
        )
        .unwrap();
        assert_eq!(
            (t.value.as_str(), t.lifetime),
            ("a", Some(Duration::from_secs(3599)))
        );
        assert!(token_answer(br#"{"access_token":""}"#, "access_token", "expires_in").is_none());
        assert!(token_answer(b"nope", "access_token", "expires_in").is_none());
        let claims = URL_SAFE_NO_PAD.encode(br#"{"exp":42}"#);
        assert_eq!(jwt_expiry(&format!("h.{claims}.")), Some(42));
    }

    #[test]
    fn an_expired_service_account_token_is_an_auth_error() {
        let now = jiff::Timestamp::now().as_second();
        let token = |expires| KubernetesToken {
            value: "t".into(),
            expires,
            account: "\"ns/sa\"".into(),
        };
        assert_eq!(token(now + 3600).current("store").unwrap(), "t");
        // Within its last minute it is already too old to exchange.
        let err = token(now + 30).current("SecretStore \"ns/s\"").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.to_string().contains("\"ns/sa\""), "{err}");
    }
}
