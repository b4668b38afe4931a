//! A service-account key (`auth.secretRef`): the JSON key file's RSA key signs a JWT assertion
//! (RS256, `kid` = `private_key_id`, `aud` = the key's `token_uri`, scope `cloud-platform`),
//! which the key's `token_uri` exchanges for an access token (the OAuth2 JWT bearer grant, as
//! Go's `google.JWTConfigFromJSON` does it).

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use eso_provider::{ErrorKind, ProviderError};
use reqwest::{Method, Url};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::CLOUD_PLATFORM_SCOPE;
use crate::auth::token_answer;
use crate::http::{Call, GoogleError, Http};
use crate::metrics::{self, call};
use crate::token::{AccessToken, TokenFetch};

/// Google's token endpoint, for key files without `token_uri`.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A parsed service-account key.
pub(crate) struct ServiceAccountKey {
    email: String,
    key_id: Option<String>,
    key: RsaPrivateKey,
    token_uri: Url,
    /// Whom errors name (the store).
    owner: String,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("email", &self.email)
            .field("token_uri", &self.token_uri.as_str())
            .finish_non_exhaustive()
    }
}

/// The DER inside the first PEM block of `pem`, and the block's label.
fn pem_der(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end = body.find("-----END ")?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

impl ServiceAccountKey {
    /// Parses a JSON key file. `owner` names the store in errors.
    pub(crate) fn parse(json_key: &[u8], owner: &str) -> Result<Self, ProviderError> {
        let invalid = |what: &str| {
            ProviderError::invalid_store(format!(
                "{owner}: the service-account key is not valid: {what}"
            ))
        };
        let v: Value = serde_json::from_slice(json_key)
            .map_err(|e| invalid("it is not JSON").with_source(e))?;
        match v.get("type").and_then(Value::as_str) {
            Some("service_account") | None => {}
            Some(other) => {
                return Err(invalid(&format!(
                    "its type is {other:?}, expected \"service_account\""
                )));
            }
        }
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(&format!("{name} is missing")))
        };
        let email = field("client_email")?.to_owned();
        let pem = field("private_key")?;
        let (label, der) = pem_der(pem).ok_or_else(|| invalid("private_key is not PEM"))?;
        let key = match label.as_str() {
            "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| {
                invalid("private_key is not a PKCS#8 RSA key").with_source(e.to_string())
            })?,
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| {
                invalid("private_key is not a PKCS#1 RSA key").with_source(e.to_string())
            })?,
            other => {
                return Err(invalid(&format!(
                    "private_key is a {other}, not an RSA key"
                )));
            }
        };
        let token_uri = v
            .get("token_uri")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_TOKEN_URI);
        let token_uri = Url::parse(token_uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid(&format!("token_uri {token_uri:?} is not an http(s) URL")))?;
        Ok(Self {
            email,
            key_id: v
                .get("private_key_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            key,
            token_uri,
            owner: owner.to_owned(),
        })
    }

    /// The signed assertion, valid for an hour from `now` (seconds since the epoch).
    fn assertion(&self, now: i64) -> String {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = Value::from(kid.as_str());
        }
        let claims = json!({
            "iss": self.email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.token_uri.as_str(),
            "iat": now,
            "exp": now + 3600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = SigningKey::<Sha256>::new(self.key.clone()).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

#[async_trait]
impl TokenFetch for ServiceAccountKey {
    async fn fetch(&self, http: &Http) -> Result<AccessToken, ProviderError> {
        let now = jiff::Timestamp::now().as_second();
        let request = Call::new(Method::POST, self.token_uri.clone())
            .form(vec![
                ("grant_type", JWT_BEARER.to_owned()),
                ("assertion", self.assertion(now)),
            ])
            // The grant only mints a token; repeating it after a lost answer is harmless.
            .idempotent(true);
        let result = http.send(&request).await;
        metrics::observe(call::OAUTH2_TOKEN, &result);
        let body = result.map_err(|e| {
            ProviderError::new(
                e.token_kind(),
                format!(
                    "{}: the token endpoint {} refused the key of {}",
                    self.owner, self.token_uri, self.email
                ),
            )
            .with_source(e)
        })?;
        token_answer(&body, "access_token", "expires_in").ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "{}: the token endpoint {} answered without an access token",
                    self.owner, self.token_uri
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_broken_keys_with_the_cause() {
        let err = ServiceAccountKey::parse(b"{", "SecretStore \"ns/s\"").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStore);
        assert!(err.to_string().contains("not JSON"), "{err}");
        let err = ServiceAccountKey::parse(
            br#"{"type":"service_account","client_email":"a@b","private_key":"x"}"#,
            "s",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not PEM"), "{err}");
        let err = ServiceAccountKey::parse(br#"{"type":"authorized_user"}"#, "s").unwrap_err();
        assert!(err.to_string().contains("authorized_user"), "{err}");
    }

    #[test]
    fn reads_pem_blocks() {
        let (label, der) =
            pem_der("junk\n-----BEGIN PRIVATE KEY-----\nAAEC\nAw==\n-----END PRIVATE KEY-----\n")
                .unwrap();
        assert_eq!((label.as_str(), der), ("PRIVATE KEY", vec![0, 1, 2, 3]));
        assert!(pem_der("no pem").is_none());
    }
}
