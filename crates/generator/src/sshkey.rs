//! `SSHKey`: a key pair in OpenSSH's formats, as upstream writes it with
//! `golang.org/x/crypto/ssh`: the private key as an unencrypted `OPENSSH PRIVATE KEY` PEM block
//! (64-character lines, as Go's `pem` package writes them) carrying the comment, the public key
//! as one `authorized_keys` line (`<type> <base64> [comment]\n`).
//!
//! Key types and sizes as upstream: `rsa` (default 2048 bits), `ecdsa` (256 by default, 384 or
//! 521; any other size falls back to 256, as upstream) and `ed25519` (size ignored).

use async_trait::async_trait;
use base64::Engine as _;
use eso_api::generators::{
    DEFAULT_ECDSA_KEY_SIZE, DEFAULT_RSA_KEY_SIZE, GeneratorKind, SSHKeySpec, SshKeyType,
};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

use crate::random::{OsRandom, fill};
use crate::{Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, parse_spec};

/// The smallest RSA key generated: Go refuses smaller keys since 1.24 (`rsa: 1024-bit keys
/// are insecure` below this), so upstream fails for them too.
pub const MIN_RSA_KEY_SIZE: i64 = 1024;

/// The `SSHKey` generator. Output: `privateKey` and `publicKey`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SshKey;

/// The SSH wire encoding (RFC 4251): length-prefixed strings and mpints.
#[derive(Default)]
struct Wire(Vec<u8>);

impl Wire {
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn string(&mut self, bytes: &[u8]) -> &mut Self {
        // Keys and comments are far below 4 GiB.
        self.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(bytes);
        self
    }

    /// A non-negative integer from its big-endian magnitude: no leading zeros, plus a zero
    /// byte when the top bit is set.
    fn mpint(&mut self, magnitude: &[u8]) -> &mut Self {
        let trimmed: &[u8] = match magnitude.iter().position(|b| *b != 0) {
            Some(i) => &magnitude[i..],
            None => &[],
        };
        if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            let mut v = Vec::with_capacity(trimmed.len() + 1);
            v.push(0);
            v.extend_from_slice(trimmed);
            self.string(&v)
        } else {
            self.string(trimmed)
        }
    }
}

/// A generated key: its public blob (RFC 4253 `publickey` format) and the private fields that
/// follow the key type in OpenSSH's private section.
struct KeyPair {
    key_type: &'static str,
    public_blob: Vec<u8>,
    private_fields: Vec<u8>,
}

fn rsa_key(bits: usize) -> Result<KeyPair, GeneratorError> {
    let mut rng = OsRandom::default();
    let key = rsa::RsaPrivateKey::new(&mut rng, bits).map_err(|e| {
        GeneratorError::invalid_spec(format!("cannot generate a {bits}-bit RSA key"))
            .with_source(crate::error::TextError(e.to_string()))
    })?;
    if let Some(e) = rng.failed {
        return Err(e);
    }
    let [p, q] = key.primes() else {
        return Err(GeneratorError::unavailable(
            "the RSA key generator returned a key without two primes",
        ));
    };
    let iqmp = key
        .crt_coefficient()
        .ok_or_else(|| GeneratorError::unavailable("the RSA key has no CRT coefficient"))?;
    let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
    let mut public = Wire::default();
    public.string(b"ssh-rsa").mpint(&e).mpint(&n);
    let mut private = Wire::default();
    private
        .mpint(&n)
        .mpint(&e)
        .mpint(&key.d().to_bytes_be())
        .mpint(&iqmp.to_bytes_be())
        .mpint(&p.to_bytes_be())
        .mpint(&q.to_bytes_be());
    Ok(KeyPair {
        key_type: "ssh-rsa",
        public_blob: public.0,
        private_fields: private.0,
    })
}

fn ed25519_key() -> Result<KeyPair, GeneratorError> {
    let mut seed = [0u8; 32];
    fill(&mut seed)?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = signing.verifying_key().to_bytes();
    let mut blob = Wire::default();
    blob.string(b"ssh-ed25519").string(&public);
    // OpenSSH keeps the 32-byte seed followed by the public key as the "private key".
    let mut secret = seed.to_vec();
    secret.extend_from_slice(&public);
    let mut private = Wire::default();
    private.string(&public).string(&secret);
    Ok(KeyPair {
        key_type: "ssh-ed25519",
        public_blob: blob.0,
        private_fields: private.0,
    })
}

/// Draws a scalar for a curve whose order is just below `2^bits` (`bytes` long, big-endian),
/// retrying the rare draws that are zero or not below the order.
fn ec_scalar<K>(
    bytes: usize,
    top_mask: u8,
    parse: impl Fn(&[u8]) -> Option<K>,
) -> Result<K, GeneratorError> {
    loop {
        let mut d = vec![0u8; bytes];
        fill(&mut d)?;
        d[0] &= top_mask;
        if let Some(k) = parse(&d) {
            return Ok(k);
        }
    }
}

fn ecdsa_key(size: i64) -> Result<KeyPair, GeneratorError> {
    let (curve, point, scalar): (&'static str, Vec<u8>, Vec<u8>) = match size {
        384 => {
            use p384::elliptic_curve::sec1::ToEncodedPoint;
            let k = ec_scalar(48, 0xff, |d| p384::SecretKey::from_slice(d).ok())?;
            let point = k.public_key().to_encoded_point(false).as_bytes().to_vec();
            ("nistp384", point, k.to_bytes().to_vec())
        }
        521 => {
            use p521::elliptic_curve::sec1::ToEncodedPoint;
            let k = ec_scalar(66, 0x01, |d| p521::SecretKey::from_slice(d).ok())?;
            let point = k.public_key().to_encoded_point(false).as_bytes().to_vec();
            ("nistp521", point, k.to_bytes().to_vec())
        }
        // Upstream uses P-256 for 256 and for every size it does not know.
        _ => {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            let k = ec_scalar(32, 0xff, |d| p256::SecretKey::from_slice(d).ok())?;
            let point = k.public_key().to_encoded_point(false).as_bytes().to_vec();
            ("nistp256", point, k.to_bytes().to_vec())
        }
    };
    let key_type = match curve {
        "nistp384" => "ecdsa-sha2-nistp384",
        "nistp521" => "ecdsa-sha2-nistp521",
        _ => "ecdsa-sha2-nistp256",
    };
    let mut blob = Wire::default();
    blob.string(key_type.as_bytes())
        .string(curve.as_bytes())
        .string(&point);
    let mut private = Wire::default();
    private
        .string(curve.as_bytes())
        .string(&point)
        .mpint(&scalar);
    Ok(KeyPair {
        key_type,
        public_blob: blob.0,
        private_fields: private.0,
    })
}

/// The `openssh-key-v1` container (OpenSSH's PROTOCOL.key), unencrypted, as PEM.
fn private_pem(pair: &KeyPair, comment: &str) -> Result<String, GeneratorError> {
    let mut check = [0u8; 4];
    fill(&mut check)?;
    let check = u32::from_be_bytes(check);
    let mut section = Wire::default();
    section
        .u32(check)
        .u32(check)
        .string(pair.key_type.as_bytes());
    section.0.extend_from_slice(&pair.private_fields);
    section.string(comment.as_bytes());
    // Padding 1, 2, 3, ... up to the cipher block size (8 for "none").
    let mut pad = 1u8;
    while section.0.len() % 8 != 0 {
        section.0.push(pad);
        pad += 1;
    }
    let mut body = Wire::default();
    body.0.extend_from_slice(b"openssh-key-v1\0");
    body.string(b"none")
        .string(b"none")
        .string(b"")
        .u32(1)
        .string(&pair.public_blob)
        .string(&section.0);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body.0);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Ok(pem)
}

/// The `authorized_keys` line: `<type> <base64 blob>`, then ` <comment>` when there is one.
fn public_line(pair: &KeyPair, comment: &str) -> String {
    let blob = base64::engine::general_purpose::STANDARD.encode(&pair.public_blob);
    if comment.is_empty() {
        format!("{} {blob}\n", pair.key_type)
    } else {
        format!("{} {blob} {comment}\n", pair.key_type)
    }
}

fn check(object: &GeneratorObject<'_>, spec: &SSHKeySpec) -> Result<(), GeneratorError> {
    let path = object.spec_path();
    let invalid =
        |msg: String| GeneratorError::invalid_spec(format!("{}: {path}.{msg}", object.describe()));
    if spec.key_type() == SshKeyType::Rsa {
        let size = spec.key_size.unwrap_or(DEFAULT_RSA_KEY_SIZE);
        if !(MIN_RSA_KEY_SIZE..=8192).contains(&size) {
            return Err(invalid(format!(
                "keySize: an RSA key needs {MIN_RSA_KEY_SIZE} to 8192 bits, not {size}"
            )));
        }
    }
    if spec.comment.as_deref().is_some_and(|c| c.contains('\n')) {
        return Err(invalid("comment must be one line".to_owned()));
    }
    Ok(())
}

#[async_trait]
impl Generator for SshKey {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::SSHKey
    }

    fn validate(
        &self,
        object: GeneratorObject<'_>,
        spec: &serde_json::Value,
    ) -> Result<(), GeneratorError> {
        check(&object, &parse_spec(&object, spec)?)
    }

    async fn generate(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &serde_json::Value,
    ) -> Result<Generated, GeneratorError> {
        let spec: SSHKeySpec = parse_spec(&ctx.object, spec)?;
        check(&ctx.object, &spec)?;
        let comment = spec.comment.clone().unwrap_or_default();
        let key_type = spec.key_type();
        let size = spec.key_size;
        // RSA generation takes a while (up to seconds for 4096 bits): keep it off the
        // reconciler's async threads.
        let make = move || match key_type {
            SshKeyType::Rsa => {
                let bits = size.unwrap_or(DEFAULT_RSA_KEY_SIZE);
                rsa_key(usize::try_from(bits).unwrap_or(2048))
            }
            SshKeyType::Ecdsa => ecdsa_key(size.unwrap_or(DEFAULT_ECDSA_KEY_SIZE)),
            SshKeyType::Ed25519 => ed25519_key(),
        };
        let pair = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.spawn_blocking(make).await.map_err(|e| {
                GeneratorError::unavailable("the SSH key generation task failed").with_source(e)
            })?,
            Err(_) => make(),
        };
        let pair = pair.map_err(|e| {
            let message = format!("{}: generating the SSH key failed", ctx.object.describe());
            GeneratorError::new(e.kind(), message).with_source(e)
        })?;
        let data = crate::string_data([
            ("privateKey", private_pem(&pair, &comment)?),
            ("publicKey", public_line(&pair, &comment)),
        ]);
        Ok(Generated::data(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpints_are_minimal_and_positive() {
        let mut w = Wire::default();
        w.mpint(&[0, 0, 0x7f]).mpint(&[0x80]).mpint(&[0, 0]);
        assert_eq!(
            w.0,
            [0, 0, 0, 1, 0x7f, 0, 0, 0, 2, 0, 0x80, 0, 0, 0, 0],
            "RFC 4251 examples: 0x7f, 0x80 (with a zero byte), zero (empty)"
        );
    }

    #[test]
    fn private_sections_are_padded_to_whole_blocks() {
        let pair = ed25519_key().unwrap();
        let pem = private_pem(&pair, "odd").unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(pem.lines().all(|l| l.len() <= 64));
        let body = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert!(body.starts_with(b"openssh-key-v1\0"));
        // The private section is the last string; its length is a multiple of 8.
        let blob_len = pair.public_blob.len();
        let offset = 15 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + blob_len;
        let len = u32::from_be_bytes(body[offset..offset + 4].try_into().unwrap()) as usize;
        assert_eq!(len % 8, 0);
        assert_eq!(body.len(), offset + 4 + len);
    }
}
