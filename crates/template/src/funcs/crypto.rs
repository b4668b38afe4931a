//! ESO's key helpers: PKCS#12 reading (`pkcs12key`, `pkcs12cert` and their `Pass` forms),
//! JWK to PEM, and `rsaDecrypt`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha1::Digest as _;

use super::der::{self, Tlv};
use super::pem::{self, pem_encode};
use super::{Ctx, FnError, FnResult, Func, bytes, table, text};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "pkcs12key" => (Str) => pkcs12key;
    "pkcs12keyPass" => (Str, Str) => pkcs12key_pass;
    "pkcs12cert" => (Str) => pkcs12cert;
    "pkcs12certPass" => (Str, Str) => pkcs12cert_pass;
    "jwkPublicKeyPem" => (Str) => jwk_public;
    "jwkPrivateKeyPem" => (Str) => jwk_private;
    "rsaDecrypt" => (Str, Str, Str, Str) => rsa_decrypt;
};

// ---- PKCS#12 ----

pub(super) const OID_DATA: &str = "1.2.840.113549.1.7.1";
pub(super) const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.1";
pub(super) const OID_SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
pub(super) const OID_CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
pub(super) const OID_X509_CERT: &str = "1.2.840.113549.1.9.22.1";
const OID_PBE_3DES: &str = "1.2.840.113549.1.12.1.3";
const OID_PBE_RC2_128: &str = "1.2.840.113549.1.12.1.5";
const OID_PBE_RC2_40: &str = "1.2.840.113549.1.12.1.6";
pub(super) const OID_PBES2: &str = "1.2.840.113549.1.5.13";
pub(super) const OID_PBKDF2: &str = "1.2.840.113549.1.5.12";

#[derive(Clone, Copy)]
pub(super) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(t: &Tlv<'_>) -> Option<Hash> {
        [
            ("1.3.14.3.2.26", Hash::Sha1),
            ("2.16.840.1.101.3.4.2.1", Hash::Sha256),
            ("2.16.840.1.101.3.4.2.2", Hash::Sha384),
            ("2.16.840.1.101.3.4.2.3", Hash::Sha512),
        ]
        .into_iter()
        .find(|(o, _)| der::is_oid(t, o))
        .map(|(_, h)| h)
    }

    fn from_hmac_oid(t: &Tlv<'_>) -> Option<Hash> {
        [
            ("1.2.840.113549.2.7", Hash::Sha1),
            ("1.2.840.113549.2.9", Hash::Sha256),
            ("1.2.840.113549.2.10", Hash::Sha384),
            ("1.2.840.113549.2.11", Hash::Sha512),
        ]
        .into_iter()
        .find(|(o, _)| der::is_oid(t, o))
        .map(|(_, h)| h)
    }

    fn digest(self, d: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(d).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(d).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(d).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(d).to_vec(),
        }
    }

    fn block(self) -> usize {
        match self {
            Hash::Sha1 | Hash::Sha256 => 64,
            Hash::Sha384 | Hash::Sha512 => 128,
        }
    }

    pub(super) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            Hash::Sha1 => run::<hmac::Hmac<sha1::Sha1>>(key, data),
            Hash::Sha256 => run::<hmac::Hmac<sha2::Sha256>>(key, data),
            Hash::Sha384 => run::<hmac::Hmac<sha2::Sha384>>(key, data),
            Hash::Sha512 => run::<hmac::Hmac<sha2::Sha512>>(key, data),
        }
    }

    pub(super) fn pbkdf2(self, pw: &[u8], salt: &[u8], iter: u32, out: &mut [u8]) {
        match self {
            Hash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt, iter, out),
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, salt, iter, out),
            Hash::Sha384 => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(pw, salt, iter, out),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, salt, iter, out),
        }
    }
}

/// Iteration counts above this are refused: a hostile archive must not stall a reconcile.
const MAX_ITERATIONS: u64 = 1_000_000;

/// RFC 7292 appendix B key derivation.
pub(super) fn pkcs12_kdf(h: Hash, pw: &[u8], salt: &[u8], id: u8, iter: u64, n: usize) -> Vec<u8> {
    let v = h.block();
    let fill = |s: &[u8]| -> Vec<u8> {
        if s.is_empty() {
            return Vec::new();
        }
        let len = v * s.len().div_ceil(v);
        (0..len).map(|i| s[i % s.len()]).collect()
    };
    let mut i_buf = fill(salt);
    i_buf.extend(fill(pw));
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut a = vec![id; v];
        a.extend_from_slice(&i_buf);
        let mut a = h.digest(&a);
        for _ in 1..iter {
            a = h.digest(&a);
        }
        let b: Vec<u8> = (0..v).map(|k| a[k % a.len()]).collect();
        for chunk in i_buf.chunks_mut(v) {
            let mut carry: u16 = 1;
            for k in (0..chunk.len()).rev() {
                let s = u16::from(chunk[k]) + u16::from(b[k]) + carry;
                chunk[k] = s as u8;
                carry = s >> 8;
            }
        }
        out.extend_from_slice(&a);
    }
    out.truncate(n);
    out
}

fn bmp_password(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for u in String::from_utf8_lossy(p).encode_utf16() {
        out.extend_from_slice(&u.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

fn unpad(mut v: Vec<u8>, block: usize) -> Result<Vec<u8>, String> {
    let p = usize::from(
        *v.last()
            .ok_or("pkcs12: decryption error, incorrect padding")?,
    );
    if p == 0 || p > block || p > v.len() || v[v.len() - p..].iter().any(|x| usize::from(*x) != p) {
        return Err("pkcs12: decryption password incorrect".into());
    }
    v.truncate(v.len() - p);
    Ok(v)
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, String>
where
    C: aes::cipher::BlockDecryptMut + aes::cipher::BlockCipher + aes::cipher::KeyInit,
{
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|e| e.to_string())?;
    let bs = iv.len();
    if data.is_empty() || !data.len().is_multiple_of(bs) {
        return Err("pkcs12: input is not a multiple of the block size".into());
    }
    let out = dec
        .decrypt_padded_vec_mut::<NoPadding>(data)
        .map_err(|e| e.to_string())?;
    unpad(out, bs)
}

/// Decrypts `data` with the algorithm identifier `alg` and the BMP-encoded password.
fn pbe_decrypt(
    alg: &Tlv<'_>,
    bmp_pw: &[u8],
    utf8_pw: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let parts = der::items(alg.body)?;
    let oid = parts.first().ok_or("pkcs12: bad algorithm")?;
    let params = parts.get(1);
    let salt_iter = |p: Option<&Tlv<'_>>| -> Result<(Vec<u8>, u64), String> {
        let p = p.ok_or("pkcs12: missing PBE parameters")?;
        let f = der::items(p.body)?;
        let salt = f
            .first()
            .filter(|t| t.tag == der::OCTET)
            .ok_or("pkcs12: bad salt")?
            .body
            .to_vec();
        let iter = der::small_uint(f.get(1).ok_or("pkcs12: bad iterations")?)?;
        if iter == 0 || iter > MAX_ITERATIONS {
            return Err(format!("pkcs12: iteration count {iter} out of range"));
        }
        Ok((salt, iter))
    };
    if der::is_oid(oid, OID_PBE_3DES) {
        let (salt, iter) = salt_iter(params)?;
        let key = pkcs12_kdf(Hash::Sha1, bmp_pw, &salt, 1, iter, 24);
        let iv = pkcs12_kdf(Hash::Sha1, bmp_pw, &salt, 2, iter, 8);
        return cbc_decrypt::<des::TdesEde3>(&key, &iv, data);
    }
    if der::is_oid(oid, OID_PBE_RC2_40) || der::is_oid(oid, OID_PBE_RC2_128) {
        use aes::cipher::{BlockDecryptMut, InnerIvInit, block_padding::NoPadding};
        let (salt, iter) = salt_iter(params)?;
        let klen = if der::is_oid(oid, OID_PBE_RC2_40) {
            5
        } else {
            16
        };
        let key = pkcs12_kdf(Hash::Sha1, bmp_pw, &salt, 1, iter, klen);
        let iv = pkcs12_kdf(Hash::Sha1, bmp_pw, &salt, 2, iter, 8);
        let cipher = rc2::Rc2::new_with_eff_key_len(&key, klen * 8);
        let iv: [u8; 8] = iv.try_into().map_err(|_| "pkcs12: bad iv")?;
        let dec = cbc::Decryptor::<rc2::Rc2>::inner_iv_init(cipher, &iv.into());
        if data.is_empty() || !data.len().is_multiple_of(8) {
            return Err("pkcs12: input is not a multiple of the block size".into());
        }
        let out = dec
            .decrypt_padded_vec_mut::<NoPadding>(data)
            .map_err(|e| e.to_string())?;
        return unpad(out, 8);
    }
    if der::is_oid(oid, OID_PBES2) {
        let p = der::items(params.ok_or("pkcs12: missing PBES2 parameters")?.body)?;
        let (kdf, enc) = (
            p.first().ok_or("pkcs12: bad PBES2")?,
            p.get(1).ok_or("pkcs12: bad PBES2")?,
        );
        let kdf_parts = der::items(kdf.body)?;
        if !kdf_parts
            .first()
            .is_some_and(|o| der::is_oid(o, OID_PBKDF2))
        {
            return Err("pkcs12: unsupported PBES2 key derivation".into());
        }
        let kp = der::items(
            kdf_parts
                .get(1)
                .ok_or("pkcs12: bad PBKDF2 parameters")?
                .body,
        )?;
        let salt = kp
            .first()
            .filter(|t| t.tag == der::OCTET)
            .ok_or("pkcs12: bad PBKDF2 salt")?
            .body;
        let iter = der::small_uint(kp.get(1).ok_or("pkcs12: bad PBKDF2 iterations")?)?;
        if iter == 0 || iter > MAX_ITERATIONS {
            return Err(format!("pkcs12: iteration count {iter} out of range"));
        }
        let mut prf = Hash::Sha1;
        for extra in &kp[2..] {
            if extra.tag == der::SEQ {
                let a = der::items(extra.body)?;
                prf = a
                    .first()
                    .and_then(Hash::from_hmac_oid)
                    .ok_or("pkcs12: unsupported PBKDF2 PRF")?;
            }
        }
        let enc_parts = der::items(enc.body)?;
        let enc_oid = enc_parts.first().ok_or("pkcs12: bad PBES2 cipher")?;
        let iv = enc_parts
            .get(1)
            .filter(|t| t.tag == der::OCTET)
            .ok_or("pkcs12: bad PBES2 IV")?
            .body;
        let (klen, which) = if der::is_oid(enc_oid, "2.16.840.1.101.3.4.1.2") {
            (16, 128)
        } else if der::is_oid(enc_oid, "2.16.840.1.101.3.4.1.22") {
            (24, 192)
        } else if der::is_oid(enc_oid, "2.16.840.1.101.3.4.1.42") {
            (32, 256)
        } else {
            return Err("pkcs12: unsupported PBES2 cipher".into());
        };
        let mut key = vec![0u8; klen];
        prf.pbkdf2(utf8_pw, salt, iter as u32, &mut key);
        return match which {
            128 => cbc_decrypt::<aes::Aes128>(&key, iv, data),
            192 => cbc_decrypt::<aes::Aes192>(&key, iv, data),
            _ => cbc_decrypt::<aes::Aes256>(&key, iv, data),
        };
    }
    Err("pkcs12: unknown encryption algorithm".into())
}

fn verify_mac(mac_data: &Tlv<'_>, content: &[u8], pw: &[u8]) -> Result<(), String> {
    let f = der::items(mac_data.body)?;
    let digest_info = der::items(f.first().ok_or("pkcs12: bad MAC")?.body)?;
    let alg = der::items(digest_info.first().ok_or("pkcs12: bad MAC")?.body)?;
    let h = alg
        .first()
        .and_then(Hash::from_oid)
        .ok_or("pkcs12: unknown digest algorithm")?;
    let expected = digest_info.get(1).ok_or("pkcs12: bad MAC")?.body;
    let salt = f
        .get(1)
        .filter(|t| t.tag == der::OCTET)
        .ok_or("pkcs12: bad MAC salt")?
        .body;
    let iter = match f.get(2) {
        Some(t) => der::small_uint(t)?,
        None => 1,
    };
    if iter == 0 || iter > MAX_ITERATIONS {
        return Err(format!("pkcs12: iteration count {iter} out of range"));
    }
    let key = pkcs12_kdf(h, pw, salt, 3, iter, h.digest(b"").len());
    if h.hmac(&key, content) != expected {
        return Err("pkcs12: decryption password incorrect".into());
    }
    Ok(())
}

/// The key (PKCS#8 DER) and certificates (DER, in bag order) of an archive.
struct Decoded {
    key: Vec<u8>,
    certs: Vec<Vec<u8>>,
}

fn explicit_octets<'a>(t: &Tlv<'a>) -> Result<&'a [u8], String> {
    let (o, _) = der::expect(t.body, der::OCTET)?;
    Ok(o.body)
}

fn decode_pkcs12(pfx: &[u8], password: &[u8]) -> Result<Decoded, String> {
    let (top, _) = der::expect(pfx, der::SEQ)?;
    let f = der::items(top.body)?;
    if f.first().map(der::small_uint) != Some(Ok(3)) {
        return Err("pkcs12: unsupported version".into());
    }
    let auth = der::items(f.get(1).ok_or("pkcs12: missing authSafe")?.body)?;
    if !auth.first().is_some_and(|o| der::is_oid(o, OID_DATA)) {
        return Err("pkcs12: only password-protected PFX is implemented".into());
    }
    let content = explicit_octets(auth.get(1).ok_or("pkcs12: missing content")?)?;
    let mut bmp = bmp_password(password);
    if let Some(mac) = f.get(2)
        && let Err(e) = verify_mac(mac, content, &bmp)
    {
        // Some writers use an empty byte string for the empty password.
        if password.is_empty() && verify_mac(mac, content, b"").is_ok() {
            bmp = Vec::new();
        } else {
            return Err(e);
        }
    }
    let (safes, _) = der::expect(content, der::SEQ)?;
    let mut key = None;
    let mut certs = Vec::new();
    for ci in der::items(safes.body)? {
        let p = der::items(ci.body)?;
        let oid = p.first().ok_or("pkcs12: bad ContentInfo")?;
        let body = p.get(1).ok_or("pkcs12: bad ContentInfo")?;
        let safe_contents: Vec<u8> = if der::is_oid(oid, OID_DATA) {
            explicit_octets(body)?.to_vec()
        } else if der::is_oid(oid, OID_ENCRYPTED_DATA) {
            let (ed, _) = der::expect(body.body, der::SEQ)?;
            let e = der::items(ed.body)?;
            let eci = der::items(e.get(1).ok_or("pkcs12: bad EncryptedData")?.body)?;
            let alg = eci.get(1).ok_or("pkcs12: bad EncryptedContentInfo")?;
            let enc = eci.get(2).ok_or("pkcs12: bad EncryptedContentInfo")?;
            let data: Vec<u8> = match enc.tag {
                0x80 => enc.body.to_vec(),
                0xa0 => der::items(enc.body)?
                    .iter()
                    .flat_map(|t| t.body.iter().copied())
                    .collect(),
                _ => return Err("pkcs12: bad encrypted content".into()),
            };
            pbe_decrypt(alg, &bmp, password, &data)?
        } else {
            return Err("pkcs12: unknown content type".into());
        };
        let (bags, _) = der::expect(&safe_contents, der::SEQ)?;
        for bag in der::items(bags.body)? {
            let b = der::items(bag.body)?;
            let id = b.first().ok_or("pkcs12: bad SafeBag")?;
            let val = b.get(1).ok_or("pkcs12: bad SafeBag")?;
            let (inner, _) = der::read(val.body)?;
            if der::is_oid(id, OID_CERT_BAG) {
                let cb = der::items(inner.body)?;
                if !cb.first().is_some_and(|o| der::is_oid(o, OID_X509_CERT)) {
                    return Err("pkcs12: unsupported certificate type".into());
                }
                certs.push(explicit_octets(cb.get(1).ok_or("pkcs12: bad CertBag")?)?.to_vec());
            } else if der::is_oid(id, OID_SHROUDED_KEY_BAG) || der::is_oid(id, OID_KEY_BAG) {
                if key.is_some() {
                    return Err("pkcs12: expected exactly one key bag".into());
                }
                let pkcs8 = if der::is_oid(id, OID_KEY_BAG) {
                    inner.raw.to_vec()
                } else {
                    let e = der::items(inner.body)?;
                    let alg = e.first().ok_or("pkcs12: bad shrouded key")?;
                    let data = e
                        .get(1)
                        .filter(|t| t.tag == der::OCTET)
                        .ok_or("pkcs12: bad shrouded key")?;
                    pbe_decrypt(alg, &bmp, password, data.body)?
                };
                key = Some(normalize_pkcs8(&pkcs8)?);
            }
        }
    }
    let key = key.ok_or("pkcs12: private key missing")?;
    if certs.is_empty() {
        return Err("pkcs12: certificate missing".into());
    }
    Ok(Decoded { key, certs })
}

/// Go's `MarshalPKCS8PrivateKey(ParsePKCS8PrivateKey(der))`: version 0, the algorithm, the
/// key; attributes and the optional public key field are dropped, and an EC key loses its
/// inner curve parameters (they live in the algorithm identifier).
pub(super) fn normalize_pkcs8(d: &[u8]) -> Result<Vec<u8>, String> {
    let (top, _) =
        der::expect(d, der::SEQ).map_err(|e| format!("x509: failed to parse private key: {e}"))?;
    let f = der::items(top.body)?;
    let alg = f
        .get(1)
        .filter(|t| t.tag == der::SEQ)
        .ok_or("x509: malformed PKCS#8 key")?;
    let key = f
        .get(2)
        .filter(|t| t.tag == der::OCTET)
        .ok_or("x509: malformed PKCS#8 key")?;
    let alg_parts = der::items(alg.body)?;
    let mut inner = key.body.to_vec();
    if alg_parts
        .first()
        .is_some_and(|o| der::is_oid(o, "1.2.840.10045.2.1"))
    {
        let (ec, _) = der::expect(key.body, der::SEQ)?;
        let parts: Vec<&[u8]> = der::items(ec.body)?
            .iter()
            .filter(|t| t.tag != 0xa0)
            .map(|t| t.raw)
            .collect();
        inner = der::seq(&parts);
    }
    Ok(der::seq(&[
        &der::uint(&[0]),
        alg.raw,
        &der::tlv(der::OCTET, &inner),
    ]))
}

fn pkcs12key_impl(pass: &[u8], input: &[u8]) -> FnResult {
    let d = decode_pkcs12(input, pass)
        .map_err(|e| FnError::Msg(format!("unable to decode pkcs12 with password: {e}")))?;
    Ok(Value::str(pem_encode("PRIVATE KEY", &d.key)))
}

fn pkcs12cert_impl(pass: &[u8], input: &[u8]) -> FnResult {
    let d = decode_pkcs12(input, pass).map_err(|e| {
        FnError::Msg(format!(
            "unable to decode pkcs12 certificate with password: {e}"
        ))
    })?;
    let mut pem_data = Vec::new();
    for c in &d.certs {
        pem_data.extend(pem_encode("CERTIFICATE", c));
    }
    match pem::order_chain(&pem_data) {
        Ok(ordered) => Ok(Value::str(
            ordered
                .iter()
                .flat_map(|c| pem_encode("CERTIFICATE", &c.raw))
                .collect::<Vec<u8>>(),
        )),
        Err(_) => Ok(Value::str(pem_data)),
    }
}

fn pkcs12key(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    pkcs12key_impl(b"", bytes(&a[0]))
}

fn pkcs12key_pass(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    pkcs12key_impl(bytes(&a[0]), bytes(&a[1]))
}

fn pkcs12cert(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    pkcs12cert_impl(b"", bytes(&a[0]))
}

fn pkcs12cert_pass(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    pkcs12cert_impl(bytes(&a[0]), bytes(&a[1]))
}

// ---- JWK ----

fn jwk_field(m: &serde_json::Map<String, serde_json::Value>, k: &str) -> Result<Vec<u8>, String> {
    let s = m
        .get(k)
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("failed to parse JWK: required field {k} is missing"))?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| format!("failed to decode JWK field {k}: {e}"))
}

fn pad_left(v: &[u8], n: usize) -> Result<Vec<u8>, String> {
    if v.len() > n {
        return Err("invalid JWK: coordinate too long".into());
    }
    let mut out = vec![0u8; n - v.len()];
    out.extend_from_slice(v);
    Ok(out)
}

fn ec_curve(crv: &str) -> Result<(&'static str, usize), String> {
    match crv {
        "P-256" => Ok(("1.2.840.10045.3.1.7", 32)),
        "P-384" => Ok(("1.3.132.0.34", 48)),
        "P-521" => Ok(("1.3.132.0.35", 66)),
        other => Err(format!("x509: unsupported elliptic curve {other}")),
    }
}

fn parse_jwk(input: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let v: serde_json::Value = serde_json::from_slice(input)
        .map_err(|e| format!("failed to unmarshal JSON into key hint: {e}"))?;
    match v {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err("failed to parse JWK: not an object".into()),
    }
}

fn rsa_public(m: &serde_json::Map<String, serde_json::Value>) -> Result<rsa::RsaPublicKey, String> {
    let n = rsa::BigUint::from_bytes_be(&jwk_field(m, "n")?);
    let e = rsa::BigUint::from_bytes_be(&jwk_field(m, "e")?);
    Ok(rsa::RsaPublicKey::new_unchecked(n, e))
}

fn jwk_public(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rsa::pkcs8::EncodePublicKey;
    let m = parse_jwk(bytes(&a[0]))?;
    let kty = m.get("kty").and_then(|v| v.as_str()).unwrap_or("");
    let spki = match kty {
        "RSA" => rsa_public(&m)?
            .to_public_key_der()
            .map_err(|e| e.to_string())?
            .as_bytes()
            .to_vec(),
        "EC" => {
            let (oid, size) = ec_curve(m.get("crv").and_then(|v| v.as_str()).unwrap_or(""))?;
            let mut point = vec![4u8];
            point.extend(pad_left(&jwk_field(&m, "x")?, size)?);
            point.extend(pad_left(&jwk_field(&m, "y")?, size)?);
            let mut bits = vec![0u8];
            bits.extend(point);
            der::seq(&[
                &der::seq(&[&der::oid("1.2.840.10045.2.1"), &der::oid(oid)]),
                &der::tlv(der::BITS, &bits),
            ])
        }
        "OKP" => {
            if m.get("crv").and_then(|v| v.as_str()) != Some("Ed25519") {
                return Err("x509: unsupported OKP curve".into());
            }
            let x = jwk_field(&m, "x")?;
            let mut bits = vec![0u8];
            bits.extend(x);
            der::seq(&[
                &der::seq(&[&der::oid("1.3.101.112")]),
                &der::tlv(der::BITS, &bits),
            ])
        }
        other => return Err(format!("invalid key type from JSON ({other})").into()),
    };
    Ok(Value::str(pem_encode("PUBLIC KEY", &spki)))
}

fn jwk_private(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rsa::pkcs8::EncodePrivateKey;
    let m = parse_jwk(bytes(&a[0]))?;
    let kty = m.get("kty").and_then(|v| v.as_str()).unwrap_or("");
    let pkcs8 = match kty {
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&jwk_field(&m, "n")?);
            let e = rsa::BigUint::from_bytes_be(&jwk_field(&m, "e")?);
            let d = rsa::BigUint::from_bytes_be(&jwk_field(&m, "d")?);
            let p = rsa::BigUint::from_bytes_be(&jwk_field(&m, "p")?);
            let q = rsa::BigUint::from_bytes_be(&jwk_field(&m, "q")?);
            let key = rsa::RsaPrivateKey::from_components(n, e, d, vec![p, q])
                .map_err(|e| e.to_string())?;
            key.to_pkcs8_der()
                .map_err(|e| e.to_string())?
                .as_bytes()
                .to_vec()
        }
        "EC" => {
            let (oid, size) = ec_curve(m.get("crv").and_then(|v| v.as_str()).unwrap_or(""))?;
            let mut point = vec![0u8, 4u8];
            point.extend(pad_left(&jwk_field(&m, "x")?, size)?);
            point.extend(pad_left(&jwk_field(&m, "y")?, size)?);
            let d = pad_left(&jwk_field(&m, "d")?, size)?;
            let ec = der::seq(&[
                &der::uint(&[1]),
                &der::tlv(der::OCTET, &d),
                &der::tlv(0xa1, &der::tlv(der::BITS, &point)),
            ]);
            der::seq(&[
                &der::uint(&[0]),
                &der::seq(&[&der::oid("1.2.840.10045.2.1"), &der::oid(oid)]),
                &der::tlv(der::OCTET, &ec),
            ])
        }
        "OKP" => {
            if m.get("crv").and_then(|v| v.as_str()) != Some("Ed25519") {
                return Err("x509: unsupported OKP curve".into());
            }
            let d = jwk_field(&m, "d")?;
            der::seq(&[
                &der::uint(&[0]),
                &der::seq(&[&der::oid("1.3.101.112")]),
                &der::tlv(der::OCTET, &der::tlv(der::OCTET, &d)),
            ])
        }
        other => return Err(format!("invalid key type from JSON ({other})").into()),
    };
    Ok(Value::str(pem_encode("PRIVATE KEY", &pkcs8)))
}

// ---- rsaDecrypt ----

fn rsa_decrypt(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let scheme = text(&a[0]);
    match scheme.as_str() {
        "None" => Ok(a[2].clone()),
        "RSA-OAEP" => {
            let (Some(block), _) = pem::decode(bytes(&a[3])) else {
                return Err("failed to decode PEM block".into());
            };
            let key = match rsa::RsaPrivateKey::from_pkcs1_der(&block.bytes) {
                Ok(k) => k,
                Err(_) => match rsa::RsaPrivateKey::from_pkcs8_der(&block.bytes) {
                    Ok(k) => k,
                    Err(_) => {
                        // A parsable non-RSA PKCS#8 or EC key is "not RSA"; anything else is unparsable.
                        if der::expect(&block.bytes, der::SEQ).is_ok() {
                            return Err("could not parse RSA private key".into());
                        }
                        return Err(
                            "could not parse private key: unable to parse private key type".into(),
                        );
                    }
                },
            };
            let ct = bytes(&a[2]);
            let out = match text(&a[1]).as_str() {
                "SHA1" => key.decrypt(rsa::Oaep::new::<sha1::Sha1>(), ct),
                "SHA512" => key.decrypt(rsa::Oaep::new::<sha2::Sha512>(), ct),
                _ => key.decrypt(rsa::Oaep::new::<sha2::Sha256>(), ct),
            };
            out.map(Value::str).map_err(|_| {
                FnError::Msg("error decrypting data with RSA: crypto/rsa: decryption error".into())
            })
        }
        other => Err(format!("decryption scheme {other} is not supported").into()),
    }
}
