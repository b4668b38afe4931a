//! JSON Web Tokens: parsing, RS256 verification, and the RSA keys of the service-account keys
//! the server hands out (generated per key, PKCS#8 PEM as Google's key files hold them).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::signature::Verifier as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;

/// A parsed (not yet verified) JWT.
#[derive(Debug, Clone)]
pub(crate) struct Jwt {
    pub(crate) header: Value,
    pub(crate) claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    pub(crate) fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
        Some(Self {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature,
        })
    }

    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub(crate) fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// The `aud` claim as a list (it may be a string or an array).
    pub(crate) fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the token is RS256-signed by `key`.
    pub(crate) fn verify_rs256(&self, key: &RsaPublicKey) -> bool {
        if self.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return false;
        }
        let Ok(signature) = Signature::try_from(self.signature.as_slice()) else {
            return false;
        };
        VerifyingKey::<Sha256>::new(key.clone())
            .verify(self.signing_input.as_bytes(), &signature)
            .is_ok()
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
        // Test keys only: an unavailable OS generator is not a case worth a code path; the
        // key would then be weak, never wrong.
        let _ = getrandom::fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for OsRandom {}

/// A new 2048-bit RSA key and its PKCS#8 PEM.
pub(crate) fn generate_key() -> Result<(RsaPrivateKey, String), String> {
    let key = RsaPrivateKey::new(&mut OsRandom, 2048).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok((key, pem("PRIVATE KEY", der.as_bytes())))
}

/// The RSA key of `email`'s service-account keys: generated on first use and kept for the
/// life of the process, so that tests making many servers pay for key generation once per
/// account.
pub(crate) fn key_for(email: &str) -> Result<(RsaPrivateKey, String), String> {
    static KEYS: std::sync::Mutex<std::collections::BTreeMap<String, (RsaPrivateKey, String)>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let mut keys = KEYS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(k) = keys.get(email) {
        return Ok(k.clone());
    }
    let k = generate_key()?;
    keys.insert(email.to_owned(), k.clone());
    Ok(k)
}

/// PEM armour, 64 columns, as Google's key files have it.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding as _, Signer as _};

    #[test]
    fn verifies_rs256_and_rejects_tampering() {
        let (key, pem_text) = generate_key().unwrap();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let input = format!(
            "{}.{}",
            b64url(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64url(br#"{"iss":"a","aud":["x","y"]}"#)
        );
        let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
        let token = format!("{input}.{}", b64url(&sig.to_bytes()));
        let jwt = Jwt::parse(&token).unwrap();
        assert!(jwt.verify_rs256(&key.to_public_key()));
        assert_eq!(jwt.audiences(), ["x", "y"]);
        let (other, _) = generate_key().unwrap();
        assert!(!jwt.verify_rs256(&other.to_public_key()));
        let forged = format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"RS256"}"#),
            b64url(br#"{"iss":"b"}"#),
            b64url(&sig.to_bytes())
        );
        assert!(
            !Jwt::parse(&forged)
                .unwrap()
                .verify_rs256(&key.to_public_key())
        );
        assert!(Jwt::parse("a.b").is_none());
    }
}
