//! The Doppler token of a client: a token from a Secret, or an OIDC exchange of a Kubernetes
//! ServiceAccount token (upstream's `auth_oidc.go`): the ServiceAccount token is requested
//! once per client, exchanged at `POST /v3/auth/oidc`, and exchanged again while it is valid
//! whenever the Doppler token is within a minute of expiring.

use std::time::{Duration, Instant};

use eso_provider::{ErrorKind, ProviderError};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::http::{Call, Http};
use crate::metrics::{self, call};

/// Upstream's margin: a token with less than this left is renewed.
const MIN_TOKEN_BUFFER: Duration = Duration::from_secs(60);

pub(crate) struct Oidc {
    pub(crate) http: Http,
    pub(crate) base: Url,
    pub(crate) identity: String,
    pub(crate) subject_token: String,
    pub(crate) subject_expires: Instant,
    pub(crate) held: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// Where a client's Doppler token comes from.
pub(crate) enum TokenSource {
    Static(String),
    Oidc(Box<Oidc>),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        match self {
            Self::Static(_) => f.write_str("TokenSource::Static"),
            Self::Oidc(o) => f
                .debug_struct("TokenSource::Oidc")
                .field("identity", &o.identity)
                .finish_non_exhaustive(),
        }
    }
}

impl TokenSource {
    /// A live Doppler token.
    pub(crate) async fn token(&self, store: &str) -> Result<String, ProviderError> {
        let oidc = match self {
            Self::Static(t) => return Ok(t.clone()),
            Self::Oidc(o) => o,
        };
        let mut held = oidc.held.lock().await;
        let now = Instant::now();
        if let Some((token, expires)) = held.as_ref()
            && *expires > now + MIN_TOKEN_BUFFER
        {
            return Ok(token.clone());
        }
        if oidc.subject_expires <= now + MIN_TOKEN_BUFFER {
            return Err(ProviderError::auth(format!(
                "{store}: the ServiceAccount token for the Doppler OIDC exchange has expired; the client must be built again"
            )));
        }
        let url = oidc.base.join("v3/auth/oidc").map_err(|e| {
            ProviderError::invalid_store(format!(
                "{store}: the Doppler API URL does not make a URL"
            ))
            .with_source(e)
        })?;
        let call = Call::new(Method::POST, url)
            .json(json!({"identity": oidc.identity, "token": oidc.subject_token}));
        let result = oidc.http.json(&call).await;
        metrics::observe(call::OIDC_AUTH, &result);
        let answer = result.map_err(|e| {
            let kind = match e.kind() {
                k @ (ErrorKind::Throttled | ErrorKind::Unavailable) => k,
                _ => ErrorKind::Auth,
            };
            let message = format!(
                "{store}: the Doppler OIDC exchange for identity {:?} failed",
                oidc.identity
            );
            e.into_provider_error(kind, message)
        })?;
        let refused = || {
            ProviderError::auth(format!(
                "{store}: the Doppler OIDC exchange for identity {:?} answered no token",
                oidc.identity
            ))
        };
        if answer.get("success").and_then(Value::as_bool) != Some(true) {
            return Err(refused());
        }
        let token = answer
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(refused)?
            .to_owned();
        let expires_at = answer
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .ok_or_else(|| {
                ProviderError::auth(format!(
                    "{store}: the Doppler OIDC exchange answered no valid expires_at"
                ))
            })?;
        let left = expires_at.as_second() - jiff::Timestamp::now().as_second();
        let expires = now + Duration::from_secs(u64::try_from(left).unwrap_or(0));
        *held = Some((token.clone(), expires));
        Ok(token)
    }
}
