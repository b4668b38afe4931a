//! Access tokens for Key Vault: the four ways upstream logs in (client secret, client
//! certificate, federated ServiceAccount token, managed identity), the Entra ID and IMDS
//! requests, and a token cache shared by every client of the provider, so one credential
//! costs one token request per token lifetime however many stores and clients use it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eso_provider::{ErrorKind, ProviderError};
use rsa::BigUint;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::time::Instant;

use crate::crypto;

/// How a client proves who it is.
pub(crate) enum Credential {
    /// A service principal with a client secret.
    ClientSecret {
        tenant: String,
        client_id: String,
        secret: String,
    },
    /// A service principal with a certificate: a client assertion signed with its key.
    ClientCertificate {
        tenant: String,
        client_id: String,
        /// `x5t`: base64url SHA-1 of the certificate's DER.
        thumbprint: String,
        key: Box<rsa::RsaPrivateKey>,
    },
    /// Workload identity: a federated token (a ServiceAccount token) as client assertion.
    Federated {
        tenant: String,
        client_id: String,
        assertion: FederatedToken,
    },
    /// The pod's managed identity, through IMDS.
    ManagedIdentity { client_id: Option<String> },
}

/// Where a federated token comes from.
pub(crate) enum FederatedToken {
    /// Requested through the TokenRequest API when the client was built.
    Fixed(String),
    /// A file the kubelet keeps fresh (`AZURE_FEDERATED_TOKEN_FILE`), read for each login.
    File(PathBuf),
}

impl Credential {
    /// A service principal with a PEM client certificate and RSA key.
    pub(crate) fn client_certificate(
        tenant: String,
        client_id: String,
        pem: &[u8],
    ) -> Result<Self, String> {
        let cert = crypto::first_pem_certificate(pem)
            .ok_or("the client certificate holds no PEM CERTIFICATE block")?;
        let k = crypto::rsa_private_key(pem)?;
        let key = rsa::RsaPrivateKey::from_components(
            BigUint::from_bytes_be(&k.n),
            BigUint::from_bytes_be(&k.e),
            BigUint::from_bytes_be(&k.d),
            vec![BigUint::from_bytes_be(&k.p), BigUint::from_bytes_be(&k.q)],
        )
        .map_err(|e| format!("the client certificate's RSA key is invalid: {e}"))?;
        Ok(Self::ClientCertificate {
            tenant,
            client_id,
            thumbprint: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&cert)),
            key: Box::new(key),
        })
    }

    fn describe(&self) -> String {
        match self {
            Self::ClientSecret { client_id, .. } => {
                format!("client secret of client {client_id:?}")
            }
            Self::ClientCertificate { client_id, .. } => {
                format!("client certificate of client {client_id:?}")
            }
            Self::Federated { client_id, .. } => {
                format!("workload identity of client {client_id:?}")
            }
            Self::ManagedIdentity {
                client_id: Some(id),
            } => format!("managed identity {id:?}"),
            Self::ManagedIdentity { client_id: None } => "the pod's managed identity".to_owned(),
        }
    }

    /// What identifies the token this credential gets (the cache key), without secrets in
    /// clear.
    fn fingerprint(&self, authority: &str, resource: &str) -> String {
        let mut h = sha2::Sha256::new();
        h.update(authority.as_bytes());
        h.update([0]);
        h.update(resource.as_bytes());
        h.update([0]);
        match self {
            Self::ClientSecret {
                tenant,
                client_id,
                secret,
            } => {
                h.update(format!("secret\0{tenant}\0{client_id}\0{secret}").as_bytes());
            }
            Self::ClientCertificate {
                tenant,
                client_id,
                thumbprint,
                ..
            } => h.update(format!("cert\0{tenant}\0{client_id}\0{thumbprint}").as_bytes()),
            Self::Federated {
                tenant,
                client_id,
                assertion,
            } => {
                h.update(format!("federated\0{tenant}\0{client_id}\0").as_bytes());
                match assertion {
                    // The SA token names the ServiceAccount (its subject): different
                    // ServiceAccounts never share a token.
                    FederatedToken::Fixed(t) => h.update(subject_of(t).as_bytes()),
                    FederatedToken::File(p) => h.update(p.to_string_lossy().as_bytes()),
                }
            }
            Self::ManagedIdentity { client_id } => {
                h.update(format!("imds\0{}", client_id.as_deref().unwrap_or("")).as_bytes());
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The `sub` (and `iss`) of a JWT, for telling ServiceAccounts apart; the token itself when
/// it is not a JWT.
fn subject_of(token: &str) -> String {
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|c| {
            format!(
                "{}\0{}",
                c.get("iss").and_then(Value::as_str).unwrap_or_default(),
                c.get("sub").and_then(Value::as_str).unwrap_or_default()
            )
        })
        .unwrap_or_else(|| token.to_owned())
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Tokens by credential fingerprint, shared by the clients of one provider.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl TokenCache {
    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key.to_owned()).or_default().clone()
    }
}

/// The token side of one client.
pub(crate) struct TokenSource {
    pub(crate) credential: Credential,
    /// The Entra ID authority host, ending in `/`.
    pub(crate) authority: String,
    /// The Key Vault audience, e.g. `https://vault.azure.net`.
    pub(crate) resource: String,
    pub(crate) imds_endpoint: String,
    pub(crate) http: reqwest::Client,
    pub(crate) cache: Arc<TokenCache>,
    pub(crate) refresh_margin: Duration,
    key: String,
}

impl TokenSource {
    pub(crate) fn new(
        credential: Credential,
        authority: String,
        resource: String,
        imds_endpoint: String,
        http: reqwest::Client,
        cache: Arc<TokenCache>,
        refresh_margin: Duration,
    ) -> Self {
        let key = credential.fingerprint(&authority, &resource);
        Self {
            credential,
            authority,
            resource,
            imds_endpoint,
            http,
            cache,
            refresh_margin,
            key,
        }
    }

    /// A token: the cached one until shortly before it expires, else a new one. Concurrent
    /// callers wait for one request.
    pub(crate) async fn token(&self) -> Result<String, ProviderError> {
        let slot = self.cache.slot(&self.key);
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.request().await?;
        // Refreshed `refresh_margin` before expiry (five minutes by default, as Azure's SDKs),
        // and never later than halfway through a short lifetime.
        let ahead = self.refresh_margin.min(lifetime / 2);
        let refresh_at = Instant::now() + lifetime.saturating_sub(ahead);
        *guard = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
        Ok(token)
    }

    /// Forgets `token` if it is the cached one (the vault refused it).
    pub(crate) async fn invalidate(&self, token: &str) {
        let slot = self.cache.slot(&self.key);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|c| c.token == token) {
            *guard = None;
        }
    }

    fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}{tenant}/oauth2/v2.0/token", self.authority)
    }

    async fn request(&self) -> Result<(String, Duration), ProviderError> {
        let scope = format!("{}/.default", self.resource.trim_end_matches('/'));
        let (url, request) = match &self.credential {
            Credential::ManagedIdentity { client_id } => {
                let mut query = vec![
                    ("api-version", "2018-02-01".to_owned()),
                    ("resource", self.resource.clone()),
                ];
                if let Some(id) = client_id {
                    query.push(("client_id", id.clone()));
                }
                let mut url = reqwest::Url::parse(&self.imds_endpoint).map_err(|e| {
                    ProviderError::invalid_store(format!(
                        "the IMDS endpoint {:?} is not a URL",
                        self.imds_endpoint
                    ))
                    .with_source(e)
                })?;
                url.query_pairs_mut().extend_pairs(&query);
                let req = self.http.get(url).header("Metadata", "true");
                (self.imds_endpoint.clone(), req)
            }
            Credential::ClientSecret {
                tenant,
                client_id,
                secret,
            } => {
                let url = self.token_endpoint(tenant);
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", scope.as_str()),
                ];
                let req = self
                    .http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&form));
                (url, req)
            }
            Credential::ClientCertificate {
                tenant,
                client_id,
                thumbprint,
                key,
            } => {
                let url = self.token_endpoint(tenant);
                let assertion = signed_assertion(key, thumbprint, client_id, &url)?;
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                    ("scope", scope.as_str()),
                ];
                let req = self
                    .http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&form));
                (url, req)
            }
            Credential::Federated {
                tenant,
                client_id,
                assertion,
            } => {
                let url = self.token_endpoint(tenant);
                let token = match assertion {
                    FederatedToken::Fixed(t) => t.clone(),
                    FederatedToken::File(path) => tokio::fs::read_to_string(path)
                        .await
                        .map_err(|e| {
                            ProviderError::auth(format!(
                                "cannot read the federated token file {}",
                                path.display()
                            ))
                            .with_source(e)
                        })?
                        .trim()
                        .to_owned(),
                };
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", token.as_str()),
                    ("scope", scope.as_str()),
                ];
                let req = self
                    .http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&form));
                (url, req)
            }
        };
        let what = self.credential.describe();
        let resp = request.send().await.map_err(|e| {
            ProviderError::unavailable(format!("cannot reach {url} to log in with the {what}"))
                .with_source(e)
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = body.get("error").and_then(Value::as_str).unwrap_or("");
            let description = body
                .get("error_description")
                .and_then(Value::as_str)
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            let kind = match status.as_u16() {
                429 => ErrorKind::Throttled,
                s if s >= 500 => ErrorKind::Unavailable,
                _ => ErrorKind::Auth,
            };
            let mut err = ProviderError::new(
                kind,
                format!(
                    "login with the {what} at {url} failed with {status}: {code}: {description}"
                ),
            );
            if let Some(d) = retry_after {
                err = err.with_retry_after(d);
            }
            return Err(err);
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::unavailable(format!(
                    "login with the {what} at {url} answered without an access token"
                ))
            })?;
        // Entra ID sends a number; IMDS a string.
        let expires_in = match body.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(300);
        Ok((token.to_owned(), Duration::from_secs(expires_in)))
    }
}

/// An `application/x-www-form-urlencoded` body.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    out.push(char::from(b));
                }
                b' ' => out.push('+'),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A client assertion for certificate credentials: an RS256 JWT with the certificate's SHA-1
/// thumbprint (`x5t`), issued by and about the client, for the token endpoint, valid for ten
/// minutes.
fn signed_assertion(
    key: &rsa::RsaPrivateKey,
    thumbprint: &str,
    client_id: &str,
    audience: &str,
) -> Result<String, ProviderError> {
    let now = now_secs();
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| {
        ProviderError::unavailable("cannot draw random bytes for a client assertion")
            .with_source(std::io::Error::other(e.to_string()))
    })?;
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": thumbprint});
    let claims = json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((*key).clone());
    let signature = signer.try_sign(signing_input.as_bytes()).map_err(|e| {
        ProviderError::invalid_store("cannot sign a client assertion with the certificate's key")
            .with_source(std::io::Error::other(e.to_string()))
    })?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}
