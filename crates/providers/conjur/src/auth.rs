//! Authentication: exchanging an API key (`authn`) or a JWT (`authn-jwt`) for a Conjur access
//! token, and keeping the token until shortly before it expires (as `conjur-api-go` does: at
//! 85 % of its lifetime, or 5 minutes when the token states none).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use eso_provider::{ErrorKind, ProviderError};
use reqwest::Url;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::http::{Call, Http, HttpError};
use crate::metrics::{self, call};
use crate::path;

/// What a client logs in with.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// `authn`: a login (`host/...` or a user) and its API key.
    ApiKey { login: String, api_key: String },
    /// `authn-jwt`: a JWT, with the host in the URL when the store names one.
    Jwt {
        service_id: String,
        host_id: Option<String>,
        jwt: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey { login, .. } => f
                .debug_struct("ApiKey")
                .field("login", login)
                .finish_non_exhaustive(),
            Self::Jwt {
                service_id,
                host_id,
                ..
            } => f
                .debug_struct("Jwt")
                .field("service_id", service_id)
                .field("host_id", host_id)
                .finish_non_exhaustive(),
        }
    }
}

impl Credentials {
    /// Who logs in, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::ApiKey { login, .. } => format!("login {login:?}"),
            Self::Jwt {
                service_id,
                host_id: Some(host),
                ..
            } => format!("host {host:?} through authn-jwt/{service_id}"),
            Self::Jwt { service_id, .. } => format!("a JWT through authn-jwt/{service_id}"),
        }
    }
}

/// Standard base64, padded or not (Conjur pads the payload; be lenient with other servers).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug)]
struct Cached {
    header: String,
    refresh_at: Instant,
}

/// The access token of one client.
#[derive(Debug)]
pub(crate) struct TokenSource {
    base: Url,
    account: String,
    credentials: Credentials,
    store: String,
    cached: Mutex<Option<Cached>>,
}

/// How long a token is used: 85 % of `exp - iat` from its payload, or 5 minutes (the default
/// 8-minute lifetime less a margin) when it has no `exp`.
fn usable_for(token: &[u8]) -> Duration {
    let fallback = Duration::from_secs(300);
    let lifetime = (|| {
        let token: Value = serde_json::from_slice(token).ok()?;
        let payload = LENIENT.decode(token.get("payload")?.as_str()?).ok()?;
        let claims: Value = serde_json::from_slice(&payload).ok()?;
        let iat = claims.get("iat")?.as_i64()?;
        let exp = claims.get("exp")?.as_i64()?;
        u64::try_from(exp - iat).ok()
    })();
    lifetime.map_or(fallback, |secs| Duration::from_secs(secs).mul_f64(0.85))
}

impl TokenSource {
    pub(crate) fn new(base: Url, account: String, credentials: Credentials, store: String) -> Self {
        Self {
            base,
            account,
            credentials,
            store,
            cached: Mutex::new(None),
        }
    }

    fn authn_call(&self) -> Result<Call, ProviderError> {
        let (segments, content_type, body) = match &self.credentials {
            Credentials::ApiKey { login, api_key } => (
                vec!["authn".to_owned(), self.account.clone(), login.clone()],
                "text/plain",
                api_key.as_bytes().to_vec(),
            ),
            Credentials::Jwt {
                service_id,
                host_id,
                jwt,
            } => {
                let mut s = vec![
                    "authn-jwt".to_owned(),
                    service_id.clone(),
                    self.account.clone(),
                ];
                s.extend(host_id.clone());
                // conjur-api-go sends the token as is, unescaped: JWTs are URL-safe.
                (
                    s,
                    "application/x-www-form-urlencoded",
                    format!("jwt={jwt}").into_bytes(),
                )
            }
        };
        let mut refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        refs.push("authenticate");
        let url = path::url(&self.base, &refs)
            .map_err(|m| ProviderError::invalid_store(format!("{}: {m}", self.store)))?;
        Ok(Call::new(reqwest::Method::POST, url)
            .body(content_type, body)
            // Authentication only issues a token: safe to repeat.
            .idempotent(true))
    }

    async fn authenticate(&self, http: &Http) -> Result<Cached, ProviderError> {
        let call = self.authn_call()?;
        let result = http.send(&call).await;
        metrics::observe(call::AUTHENTICATE, &result);
        let answer = result.map_err(|e| self.refused(e))?;
        let encoded = answer
            .headers
            .get(reqwest::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"base64"));
        let raw = if encoded {
            STANDARD.decode(answer.body.trim_ascii()).map_err(|e| {
                ProviderError::unavailable(format!(
                    "{}: Conjur answered the login with a token that is not base64",
                    self.store
                ))
                .with_source(e)
            })?
        } else {
            answer.body.to_vec()
        };
        if serde_json::from_slice::<Value>(&raw).is_err() {
            return Err(ProviderError::unavailable(format!(
                "{}: Conjur answered the login with something other than an access token",
                self.store
            )));
        }
        Ok(Cached {
            header: format!("Token token=\"{}\"", STANDARD.encode(&raw)),
            refresh_at: Instant::now() + usable_for(&raw),
        })
    }

    fn refused(&self, err: HttpError) -> ProviderError {
        let who = self.credentials.describe();
        let (kind, message) = match err.status.map(|s| s.as_u16()) {
            None | Some(408 | 500..=599) => (
                ErrorKind::Unavailable,
                format!("{}: Conjur could not log in {who}", self.store),
            ),
            Some(429) => (
                ErrorKind::Throttled,
                format!("{}: Conjur throttled the login of {who}", self.store),
            ),
            // 401 (wrong key, unknown login, invalid JWT), 403, or an authenticator that is
            // not there: the credentials do not work.
            Some(_) => (
                ErrorKind::Auth,
                format!("{}: Conjur refused to log in {who}", self.store),
            ),
        };
        err.into_provider_error(kind, message)
    }

    /// The `Authorization` header value, logging in when there is no usable token.
    pub(crate) async fn header(&self, http: &Http) -> Result<String, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.header.clone());
        }
        let fresh = self.authenticate(http).await?;
        let header = fresh.header.clone();
        *cached = Some(fresh);
        Ok(header)
    }

    /// Forgets a token the server refused, so that the next call logs in again.
    pub(crate) async fn forget(&self, header: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.header == header) {
            *cached = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_used_for_85_percent_of_their_life() {
        let payload = STANDARD.encode(r#"{"sub":"a","iat":1000,"exp":1100}"#);
        let token = format!(r#"{{"protected":"x","payload":"{payload}","signature":"y"}}"#);
        assert_eq!(usable_for(token.as_bytes()), Duration::from_secs(85));
        let payload = STANDARD.encode(r#"{"sub":"a","iat":1000}"#);
        let token = format!(r#"{{"protected":"x","payload":"{payload}","signature":"y"}}"#);
        assert_eq!(usable_for(token.as_bytes()), Duration::from_secs(300));
        assert_eq!(usable_for(b"junk"), Duration::from_secs(300));
    }
}
