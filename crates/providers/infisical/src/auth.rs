//! Machine-identity logins and the access token a client holds: logged in when the client is
//! built (as upstream does), renewed shortly before it expires and after a 401, revoked when
//! the client closes (not a token-auth token, which the user owns).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eso_provider::{ErrorKind, ProviderError};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::http::{Call, Http, HttpError};
use crate::metrics::{self, call};

/// The credentials of one login method.
#[derive(Clone)]
pub(crate) enum Credentials {
    Universal {
        client_id: String,
        client_secret: String,
    },
    Jwt {
        identity_id: String,
        jwt: String,
    },
    Ldap {
        identity_id: String,
        username: String,
        password: String,
    },
    Kubernetes {
        identity_id: String,
        token_path: PathBuf,
    },
    Token {
        access_token: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a credential.
        f.write_str(self.method())
    }
}

impl Credentials {
    /// The store field naming the method.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Self::Universal { .. } => "universalAuthCredentials",
            Self::Jwt { .. } => "jwtAuthCredentials",
            Self::Ldap { .. } => "ldapAuthCredentials",
            Self::Kubernetes { .. } => "kubernetesAuthCredentials",
            Self::Token { .. } => "tokenAuthCredentials",
        }
    }

    fn call_label(&self) -> &'static str {
        match self {
            Self::Universal { .. } => call::UNIVERSAL_AUTH,
            Self::Jwt { .. } => call::JWT_AUTH,
            Self::Ldap { .. } => call::LDAP_AUTH,
            Self::Kubernetes { .. } => call::KUBERNETES_AUTH,
            Self::Token { .. } => call::TOKEN_AUTH,
        }
    }
}

#[derive(Clone)]
struct Held {
    token: String,
    /// When to log in again; `None` for a token-auth token.
    renew_at: Option<Instant>,
}

/// The access token of one client.
pub(crate) struct TokenSource {
    http: Http,
    base: Url,
    store: String,
    credentials: Credentials,
    held: tokio::sync::Mutex<Option<Held>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token or a credential.
        f.debug_struct("TokenSource")
            .field("store", &self.store)
            .field("method", &self.credentials.method())
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub(crate) fn new(http: Http, base: Url, store: String, credentials: Credentials) -> Self {
        Self {
            http,
            base,
            store,
            credentials,
            held: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn is_static(&self) -> bool {
        matches!(self.credentials, Credentials::Token { .. })
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.base.join(path).map_err(|e| {
            ProviderError::invalid_store(format!("{}: hostAPI does not make a URL", self.store))
                .with_source(e)
        })
    }

    fn failed(&self, e: HttpError) -> ProviderError {
        let kind = match e.kind() {
            ErrorKind::Throttled => ErrorKind::Throttled,
            ErrorKind::Unavailable => ErrorKind::Unavailable,
            // Any refusal of a login (bad credentials, unknown identity, bad request) is an
            // authentication problem.
            _ => ErrorKind::Auth,
        };
        let message = format!(
            "{}: infisical login with {} failed",
            self.store,
            self.credentials.method()
        );
        e.into_provider_error(kind, message)
    }

    async fn login(&self) -> Result<Held, ProviderError> {
        let (path, body) = match &self.credentials {
            Credentials::Token { access_token } => {
                metrics::observe::<(), ()>(call::TOKEN_AUTH, &Ok(()));
                return Ok(Held {
                    token: access_token.clone(),
                    renew_at: None,
                });
            }
            Credentials::Universal {
                client_id,
                client_secret,
            } => (
                "v1/auth/universal-auth/login",
                json!({"clientId": client_id, "clientSecret": client_secret}),
            ),
            Credentials::Jwt { identity_id, jwt } => (
                "v1/auth/jwt-auth/login",
                json!({"identityId": identity_id, "jwt": jwt}),
            ),
            Credentials::Ldap {
                identity_id,
                username,
                password,
            } => (
                "v1/auth/ldap-auth/login",
                json!({"identityId": identity_id, "username": username, "password": password}),
            ),
            Credentials::Kubernetes {
                identity_id,
                token_path,
            } => {
                // Read on every login: the kubelet rotates the projected token.
                let jwt = tokio::fs::read_to_string(token_path).await.map_err(|e| {
                    ProviderError::invalid_store(format!(
                        "{}: cannot read the ServiceAccount token at {} for kubernetesAuthCredentials",
                        self.store,
                        token_path.display()
                    ))
                    .with_source(e)
                })?;
                (
                    "v1/auth/kubernetes-auth/login",
                    json!({"identityId": identity_id, "jwt": jwt.trim()}),
                )
            }
        };
        let call = Call::new(Method::POST, self.url(path)?).json(body);
        let result = self.http.json(&call).await;
        metrics::observe(self.credentials.call_label(), &result);
        let answer = result.map_err(|e| self.failed(e))?;
        let token = answer
            .get("accessToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::unavailable(format!(
                    "{}: the infisical login answer holds no accessToken",
                    self.store
                ))
            })?;
        let ttl = answer
            .get("expiresIn")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .map_or(Duration::from_secs(300), Duration::from_secs);
        // Renew a fifth of the lifetime (at most a minute) early.
        let early = (ttl / 5).min(Duration::from_secs(60));
        Ok(Held {
            token: token.to_owned(),
            renew_at: Some(Instant::now() + ttl - early),
        })
    }

    /// A live token: the held one, or a new login.
    pub(crate) async fn token(&self) -> Result<String, ProviderError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && h.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(h.token.clone());
        }
        let fresh = self.login().await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    /// After a 401 with `stale`: logs in again (once for every caller that saw the same token).
    /// `None` for a token-auth token, which cannot be renewed.
    pub(crate) async fn renew(&self, stale: &str) -> Result<Option<String>, ProviderError> {
        if self.is_static() {
            return Ok(None);
        }
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && h.token != stale
        {
            return Ok(Some(h.token.clone()));
        }
        let fresh = self.login().await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(Some(token))
    }

    /// Revokes a logged-in token (never a token-auth one).
    pub(crate) async fn revoke(&self) -> Result<(), ProviderError> {
        if self.is_static() {
            return Ok(());
        }
        let Some(held) = self.held.lock().await.take() else {
            return Ok(());
        };
        let call = Call::new(Method::POST, self.url("v1/auth/token/revoke")?)
            .bearer(&held.token)
            .json(json!({"accessToken": held.token}));
        let result = self.http.json(&call).await;
        metrics::observe(call::REVOKE, &result);
        result.map(|_| ()).map_err(|e| {
            ProviderError::new(
                e.kind(),
                format!("{}: revoking the infisical access token failed", self.store),
            )
            .with_source(e)
        })
    }
}
