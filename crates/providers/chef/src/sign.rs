//! Chef's signed-request protocol, version 1.0 (the one go-chef, and so upstream, speaks):
//! every request carries the user, a timestamp, the SHA-1 of its body and an RSA signature over
//! a canonical text made of them and the SHA-1 of its path.
//!
//! The canonical text is
//! ```text
//! Method:GET
//! Hashed Path:base64(sha1(path))
//! X-Ops-Content-Hash:base64(sha1(body))
//! X-Ops-Timestamp:2026-01-02T03:04:05Z
//! X-Ops-UserId:user
//! ```
//! signed with PKCS#1 v1.5 padding and no digest prefix (the private-key "encryption" of
//! Ruby's `private_encrypt`), base64-encoded and cut into 60-character
//! `X-Ops-Authorization-N` headers.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::{Digest, Sha1};

/// The Chef client version go-chef announces.
const CHEF_VERSION: &str = "14.0.0";

/// Why a key cannot sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(&'static str);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for KeyError {}

/// Signs requests as one Chef user or client.
#[derive(Clone)]
pub struct RequestSigner {
    user: String,
    key: RsaPrivateKey,
}

impl fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSigner")
            .field("user", &self.user)
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
    STANDARD.decode(b64).ok().map(|der| (label, der))
}

fn b64_sha1(data: &[u8]) -> String {
    STANDARD.encode(Sha1::digest(data))
}

/// Go's `path.Clean` for an absolute URL path: no empty, `.` or `..` segments, no trailing
/// slash (Chef servers hash the path in this form).
fn clean_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

impl RequestSigner {
    /// A signer for `user` with a PEM private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8
    /// `PRIVATE KEY`).
    pub fn from_pem(user: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_der(pem).ok_or(KeyError("the private key is not PEM"))?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(&der)
                .map_err(|_| KeyError("the PKCS#1 private key cannot be read"))?,
            "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(&der)
                .map_err(|_| KeyError("the PKCS#8 private key cannot be read (not RSA?)"))?,
            _ => return Err(KeyError("the PEM block is not an RSA private key")),
        };
        Ok(Self {
            user: user.into(),
            key,
        })
    }

    /// The user the requests are signed as.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The canonical text of a request.
    fn canonical(&self, method: &str, path: &str, content_hash: &str, timestamp: &str) -> String {
        format!(
            "Method:{}\nHashed Path:{}\nX-Ops-Content-Hash:{content_hash}\nX-Ops-Timestamp:{timestamp}\nX-Ops-UserId:{}",
            method.to_ascii_uppercase(),
            b64_sha1(clean_path(path).as_bytes()),
            self.user
        )
    }

    /// The headers that sign a request for `method` on `path` (the URL's path, without the
    /// query) with `body`, at `timestamp` (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub fn headers(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp: &str,
    ) -> Result<Vec<(String, String)>, KeyError> {
        let content_hash = b64_sha1(body);
        let canonical = self.canonical(method, path, &content_hash, timestamp);
        let signature = self
            .key
            .sign(Pkcs1v15Sign::new_unprefixed(), canonical.as_bytes())
            .map_err(|_| KeyError("the private key is too small to sign a request"))?;
        let encoded = STANDARD.encode(signature);
        let mut headers = vec![
            ("Accept".to_owned(), "application/json".to_owned()),
            ("X-Chef-Version".to_owned(), CHEF_VERSION.to_owned()),
            ("X-Ops-Server-API-Version".to_owned(), "1".to_owned()),
            (
                "X-Ops-Sign".to_owned(),
                "algorithm=sha1;version=1.0".to_owned(),
            ),
            ("X-Ops-UserId".to_owned(), self.user.clone()),
            ("X-Ops-Timestamp".to_owned(), timestamp.to_owned()),
            ("X-Ops-Content-Hash".to_owned(), content_hash),
        ];
        // Base64 is ASCII, so cutting the bytes is cutting the characters.
        for (i, chunk) in encoded.as_bytes().chunks(60).enumerate() {
            headers.push((
                format!("X-Ops-Authorization-{}", i + 1),
                String::from_utf8_lossy(chunk).into_owned(),
            ));
        }
        Ok(headers)
    }
}

/// A timestamp in the form Chef expects, from a point in time.
#[must_use]
pub fn timestamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rsa::RsaPublicKey;

    // One 2048-bit test key (1024 bits are too few for the canonical text) in both PEM forms (made with `openssl genrsa -traditional` and
    // `openssl pkcs8 -topk8 -nocrypt`).
    const PKCS1: &str = include_str!("testdata/pkcs1.pem");
    const PKCS8: &str = include_str!("testdata/pkcs8.pem");

    #[test]
    fn cleans_paths_like_go() {
        assert_eq!(clean_path("/data//bag/item/"), "/data/bag/item");
        assert_eq!(
            clean_path("/organizations/o/./data/../users/a"),
            "/organizations/o/users/a"
        );
        assert_eq!(clean_path(""), "/");
    }

    #[test]
    fn signs_the_canonical_text_in_60_character_headers() {
        let signer = RequestSigner::from_pem("eso", PKCS1).unwrap();
        let headers = signer
            .headers("get", "/data/creds/db", b"", "2026-01-02T03:04:05Z")
            .unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        // SHA-1 of nothing.
        assert_eq!(get("X-Ops-Content-Hash"), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(get("X-Ops-UserId"), "eso");
        let parts: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.starts_with("X-Ops-Authorization-"))
            .map(|(_, v)| v.clone())
            .collect();
        assert!(parts.iter().all(|p| p.len() <= 60));
        assert!(parts[..parts.len() - 1].iter().all(|p| p.len() == 60));
        let signature = STANDARD.decode(parts.concat()).unwrap();
        let expected = format!(
            "Method:GET\nHashed Path:{}\nX-Ops-Content-Hash:2jmj7l5rSw0yVb/vlWAYkK/YBwk=\nX-Ops-Timestamp:2026-01-02T03:04:05Z\nX-Ops-UserId:eso",
            b64_sha1(b"/data/creds/db")
        );
        RsaPublicKey::from(&signer.key)
            .verify(
                Pkcs1v15Sign::new_unprefixed(),
                expected.as_bytes(),
                &signature,
            )
            .unwrap();
    }

    #[test]
    fn reads_pkcs8_and_refuses_other_pem() {
        let a = RequestSigner::from_pem("eso", PKCS8).unwrap();
        let b = RequestSigner::from_pem("eso", PKCS1).unwrap();
        assert_eq!(a.key, b.key);
        assert!(RequestSigner::from_pem("eso", "not a key").is_err());
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            RequestSigner::from_pem("eso", cert)
                .unwrap_err()
                .to_string(),
            "the PEM block is not an RSA private key"
        );
    }

    #[test]
    fn timestamps_are_utc_seconds() {
        let t: jiff::Timestamp = "2026-01-02T03:04:05.678Z".parse().unwrap();
        assert_eq!(timestamp(t), "2026-01-02T03:04:05Z");
    }
}
