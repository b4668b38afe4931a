//! Tokens: Conjur's v5 access tokens (what `authenticate` answers and `Authorization: Token
//! token="..."` carries; signed here with HMAC-SHA256 instead of Slosilo's RSA, which no client
//! checks), and the RS256 JWTs `authn-jwt` verifies.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;

/// Makes and checks access tokens with one random key.
pub(crate) struct TokenKey {
    key: [u8; 32],
    kid: String,
}

impl TokenKey {
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        // Test tokens only: a failing OS generator leaves a weak key, never a wrong answer.
        let _ = getrandom::fill(&mut key);
        let kid = key[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self { key, kid }
    }

    fn mac(&self, input: &str) -> Vec<u8> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(input.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The JSON of a new token for `sub`, issued at `iat`, valid until `exp`.
    pub(crate) fn issue(&self, sub: &str, iat: i64, exp: i64) -> String {
        let protected = URL_SAFE_NO_PAD
            .encode(json!({"alg": "conjur.org/slosilo/v2", "kid": self.kid}).to_string());
        // Conjur encodes the payload with padded standard base64; conjur-api-go decodes it so.
        let payload = STANDARD.encode(json!({"sub": sub, "iat": iat, "exp": exp}).to_string());
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&format!("{protected}.{payload}")));
        json!({"protected": protected, "payload": payload, "signature": signature}).to_string()
    }

    /// The subject of a valid, unexpired token given as the `Authorization` header's value.
    pub(crate) fn check(&self, header: &str, now: i64) -> Option<String> {
        let b64 = header.strip_prefix("Token token=\"")?.strip_suffix('"')?;
        let raw = STANDARD.decode(b64).ok()?;
        let token: Value = serde_json::from_slice(&raw).ok()?;
        let protected = token.get("protected")?.as_str()?;
        let payload = token.get("payload")?.as_str()?;
        let signature = URL_SAFE_NO_PAD
            .decode(token.get("signature")?.as_str()?)
            .ok()?;
        if signature != self.mac(&format!("{protected}.{payload}")) {
            return None;
        }
        let claims: Value = serde_json::from_slice(&STANDARD.decode(payload).ok()?).ok()?;
        let exp = claims.get("exp")?.as_i64()?;
        (now < exp).then(|| claims.get("sub")?.as_str().map(str::to_owned))?
    }
}

/// `rand_core` 0.6 over the operating system's generator.
struct OsRandom;

impl rsa::rand_core::RngCore for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Test keys only: an unavailable OS generator leaves a weak key, never a wrong one.
        let _ = getrandom::fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for OsRandom {}

/// The issuer key of the JWTs tests make: generated once per process (key generation is the
/// slow part) and shared by every server.
pub(crate) fn jwt_key() -> Result<RsaPrivateKey, String> {
    static KEY: std::sync::OnceLock<Result<RsaPrivateKey, String>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut OsRandom, 2048).map_err(|e| e.to_string()))
        .clone()
}

/// An RS256 JWT with these claims.
pub(crate) fn sign_jwt(key: &RsaPrivateKey, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The claims of an RS256 JWT signed by `key`.
pub(crate) fn verify_jwt(key: &RsaPublicKey, jwt: &str) -> Option<Value> {
    let mut parts = jwt.split('.');
    let (header, body, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "RS256" {
        return None;
    }
    let signature = Signature::try_from(URL_SAFE_NO_PAD.decode(signature).ok()?.as_slice()).ok()?;
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(
            format!("{}.{body}", jwt.split('.').next()?).as_bytes(),
            &signature,
        )
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}
