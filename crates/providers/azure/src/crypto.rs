//! The key and certificate formats the provider reads: PEM, a small DER reader, RSA (PKCS#1,
//! PKCS#8) and EC (SEC1, PKCS#8) private keys turned into JWKs for `ImportKey`, the
//! certificate a PushSecret value holds (password-less PKCS#12, DER or PEM, as upstream),
//! and the client certificate and key of a service principal.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

// ----- DER ---------------------------------------------------------------------------------

pub(crate) const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

/// One DER element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) body: &'a [u8],
}

/// Reads one element: (element, rest). Definite lengths only (DER).
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let bad = || "malformed DER".to_owned();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return Err("indefinite-length (BER) encoding is not supported".into());
        }
        if n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((
        Tlv {
            tag,
            body: &rest[..len],
        },
        &rest[len..],
    ))
}

/// The elements inside a constructed element's body.
pub(crate) fn items(mut body: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (t, rest) = read(body)?;
        out.push(t);
        body = rest;
    }
    Ok(out)
}

fn expect<'a>(t: Option<&Tlv<'a>>, tag: u8, what: &str) -> Result<&'a [u8], String> {
    match t {
        Some(t) if t.tag == tag => Ok(t.body),
        _ => Err(format!("malformed DER: expected {what}")),
    }
}

fn oid_body(dotted: &str) -> Vec<u8> {
    let parts: Vec<u64> = dotted.split('.').filter_map(|p| p.parse().ok()).collect();
    let mut out = Vec::new();
    if parts.len() < 2 {
        return out;
    }
    let mut push = |mut v: u64| {
        let mut tmp = vec![u8::try_from(v & 0x7f).unwrap_or(0)];
        v >>= 7;
        while v > 0 {
            tmp.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
            v >>= 7;
        }
        tmp.reverse();
        out.extend(tmp);
    };
    push(parts[0] * 40 + parts[1]);
    for p in &parts[2..] {
        push(*p);
    }
    out
}

fn is_oid(t: Option<&Tlv<'_>>, dotted: &str) -> bool {
    t.is_some_and(|t| t.tag == OID && t.body == oid_body(dotted).as_slice())
}

/// An INTEGER's magnitude without leading zero bytes.
fn unsigned(body: &[u8]) -> &[u8] {
    let first = body.iter().position(|b| *b != 0).unwrap_or(body.len());
    &body[first..]
}

fn small_uint(body: &[u8]) -> Result<u64, String> {
    let u = unsigned(body);
    if u.len() > 8 {
        return Err("integer too large".into());
    }
    Ok(u.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

// ----- PEM ---------------------------------------------------------------------------------

/// Every PEM block of a text: (label, DER).
pub(crate) fn pem_blocks(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_owned();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(stop) = body_start.find(&end_marker) else {
            break;
        };
        // Headers (`Proc-Type: ...`) mark encrypted keys; their bodies would not decode.
        let body: String = body_start[..stop]
            .lines()
            .filter(|l| !l.contains(':'))
            .flat_map(str::chars)
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = STANDARD.decode(body) {
            out.push((label, der));
        }
        rest = &body_start[stop + end_marker.len()..];
    }
    out
}

// ----- private keys and JWKs ---------------------------------------------------------------

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

/// The integers of a PKCS#1 `RSAPrivateKey`: n, e, d, p, q, dp, dq, qi.
pub(crate) struct RsaParts {
    pub(crate) n: Vec<u8>,
    pub(crate) e: Vec<u8>,
    pub(crate) d: Vec<u8>,
    pub(crate) p: Vec<u8>,
    pub(crate) q: Vec<u8>,
    pub(crate) dp: Vec<u8>,
    pub(crate) dq: Vec<u8>,
    pub(crate) qi: Vec<u8>,
}

fn rsa_pkcs1(der: &[u8]) -> Result<RsaParts, String> {
    let (seq, _) = read(der)?;
    let ints = items(seq.body)?;
    if seq.tag != SEQUENCE || ints.len() < 9 || ints.iter().take(9).any(|t| t.tag != INTEGER) {
        return Err("not a PKCS#1 RSA private key".into());
    }
    let get = |i: usize| unsigned(ints[i].body).to_vec();
    Ok(RsaParts {
        n: get(1),
        e: get(2),
        d: get(3),
        p: get(4),
        q: get(5),
        dp: get(6),
        dq: get(7),
        qi: get(8),
    })
}

/// (curve name, coordinate size) of a named curve OID.
fn curve(oid: Option<&Tlv<'_>>) -> Result<(&'static str, usize), String> {
    for (dotted, name, size) in [
        ("1.2.840.10045.3.1.7", "P-256", 32),
        ("1.3.132.0.34", "P-384", 48),
        ("1.3.132.0.35", "P-521", 66),
        ("1.3.132.0.10", "P-256K", 32),
    ] {
        if is_oid(oid, dotted) {
            return Ok((name, size));
        }
    }
    Err("the EC key's curve is not supported (P-256, P-384, P-521, P-256K)".into())
}

fn pad(v: &[u8], size: usize) -> Vec<u8> {
    let v = unsigned(v);
    let mut out = vec![0u8; size.saturating_sub(v.len())];
    out.extend_from_slice(v);
    out
}

/// A SEC1 `ECPrivateKey` as a JWK; `params` is the curve from a PKCS#8 wrapper when the key
/// does not name its own.
fn ec_jwk(der: &[u8], params: Option<&Tlv<'_>>) -> Result<Map<String, Value>, String> {
    let (seq, _) = read(der)?;
    let parts = items(seq.body)?;
    let d = expect(parts.get(1), OCTET_STRING, "the EC private key")?;
    let mut named = params.copied();
    let mut point = None;
    for p in parts.iter().skip(2) {
        match p.tag {
            0xa0 => named = read(p.body).ok().map(|(t, _)| t),
            0xa1 => {
                let bits = expect(
                    read(p.body).ok().map(|(t, _)| t).as_ref(),
                    BIT_STRING,
                    "the EC public key",
                )?;
                point = bits.get(1..).map(<[u8]>::to_vec);
            }
            _ => {}
        }
    }
    let (crv, size) = curve(named.as_ref())?;
    let point = point.ok_or("the EC private key does not hold its public key")?;
    if point.first() != Some(&4) || point.len() != 1 + 2 * size {
        return Err("the EC public key is not an uncompressed point".into());
    }
    let b = |v: &[u8]| json!(URL_SAFE_NO_PAD.encode(v));
    let mut m = Map::new();
    m.insert("kty".into(), json!("EC"));
    m.insert("crv".into(), json!(crv));
    m.insert("x".into(), b(&point[1..=size]));
    m.insert("y".into(), b(&point[1 + size..]));
    m.insert("d".into(), b(&pad(d, size)));
    Ok(m)
}

fn rsa_jwk(k: &RsaParts) -> Map<String, Value> {
    let b = |v: &[u8]| json!(URL_SAFE_NO_PAD.encode(v));
    let mut m = Map::new();
    m.insert("kty".into(), json!("RSA"));
    m.insert("n".into(), b(&k.n));
    m.insert("e".into(), b(&k.e));
    m.insert("d".into(), b(&k.d));
    m.insert("p".into(), b(&k.p));
    m.insert("q".into(), b(&k.q));
    m.insert("dp".into(), b(&k.dp));
    m.insert("dq".into(), b(&k.dq));
    m.insert("qi".into(), b(&k.qi));
    m
}

/// A PKCS#8 `PrivateKeyInfo`: (algorithm OID element, its parameters, the inner key DER).
fn pkcs8(der: &[u8]) -> Result<(bool, Option<Tlv<'_>>, &[u8]), String> {
    let (seq, _) = read(der)?;
    let parts = items(seq.body)?;
    let alg = items(expect(parts.get(1), SEQUENCE, "the key algorithm")?)?;
    let inner = expect(parts.get(2), OCTET_STRING, "the private key")?;
    if is_oid(alg.first(), RSA_ENCRYPTION) {
        Ok((true, None, inner))
    } else if is_oid(alg.first(), EC_PUBLIC_KEY) {
        Ok((false, alg.get(1).copied(), inner))
    } else {
        Err("the PKCS#8 key is neither RSA nor EC".into())
    }
}

/// The JWK `ImportKey` gets for a PushSecret value, as upstream builds it: a PEM private key
/// (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`) becomes an RSA or EC key; anything
/// that is not PEM is a symmetric (`oct`) key of those bytes.
pub(crate) fn jwk_from_value(value: &[u8]) -> Result<Map<String, Value>, String> {
    let Some((label, der)) = pem_blocks(value).into_iter().next() else {
        let mut m = Map::new();
        m.insert("kty".into(), json!("oct"));
        m.insert("k".into(), json!(URL_SAFE_NO_PAD.encode(value)));
        return Ok(m);
    };
    match label.as_str() {
        "RSA PRIVATE KEY" => Ok(rsa_jwk(&rsa_pkcs1(&der)?)),
        "EC PRIVATE KEY" => ec_jwk(&der, None),
        "PRIVATE KEY" => {
            let (rsa, params, inner) = pkcs8(&der)?;
            if rsa {
                Ok(rsa_jwk(&rsa_pkcs1(inner)?))
            } else {
                ec_jwk(inner, params.as_ref())
            }
        }
        other => Err(format!("key type {other} is not supported")),
    }
}

/// The RSA key of a service principal's client certificate.
pub(crate) fn rsa_private_key(pem: &[u8]) -> Result<RsaParts, String> {
    for (label, der) in pem_blocks(pem) {
        match label.as_str() {
            "RSA PRIVATE KEY" => return rsa_pkcs1(&der),
            "PRIVATE KEY" => {
                let (rsa, _, inner) = pkcs8(&der)?;
                if !rsa {
                    return Err("the client certificate's key is not an RSA key".into());
                }
                return rsa_pkcs1(inner);
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err("the client certificate's key is encrypted".into());
            }
            _ => {}
        }
    }
    Err("the client certificate holds no PEM private key (PRIVATE KEY or RSA PRIVATE KEY)".into())
}

/// The first PEM certificate of a text.
pub(crate) fn first_pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    pem_blocks(pem)
        .into_iter()
        .find(|(l, _)| l == "CERTIFICATE")
        .map(|(_, d)| d)
}

// ----- certificates in PushSecret values ---------------------------------------------------

/// Whether DER bytes look like an X.509 certificate (`SEQUENCE { SEQUENCE, SEQUENCE, BIT
/// STRING }`).
fn looks_like_certificate(der: &[u8]) -> bool {
    let Ok((seq, rest)) = read(der) else {
        return false;
    };
    let Ok(parts) = items(seq.body) else {
        return false;
    };
    rest.is_empty()
        && seq.tag == SEQUENCE
        && parts.len() == 3
        && parts[0].tag == SEQUENCE
        && parts[1].tag == SEQUENCE
        && parts[2].tag == BIT_STRING
}

/// The certificate a PushSecret value holds, in upstream's order: a password-less PKCS#12
/// bundle (its end-entity certificate), DER, then the first PEM certificate.
pub(crate) fn leaf_certificate(value: &[u8]) -> Result<Vec<u8>, String> {
    if let Ok(Some(der)) = pkcs12::leaf(value) {
        return Ok(der);
    }
    if looks_like_certificate(value) {
        return Ok(value.to_vec());
    }
    pem_blocks(value)
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| looks_like_certificate(d))
        .ok_or_else(|| "could not parse certificate value as PKCS#12, DER or PEM".to_owned())
}

mod pkcs12 {
    //! Just enough PKCS#12 (RFC 7292) to find the certificates of a password-less bundle:
    //! plain and encrypted safe contents, with PBES2 (PBKDF2 + AES-CBC, `openssl` 3's default)
    //! or the PKCS#12 PBEs with 3DES or 40-bit RC2 (older `openssl` and Go's encoders). The
    //! MAC is not checked: nothing secret is derived from the bundle here.

    use aes::cipher::{BlockDecryptMut, InnerIvInit, KeyIvInit, block_padding::Pkcs7};
    use hmac::Hmac;
    use sha1::{Digest, Sha1};

    use super::{OCTET_STRING, SEQUENCE, Tlv, expect, is_oid, items, read, small_uint};

    const DATA: &str = "1.2.840.113549.1.7.1";
    const ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
    const CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
    const X509_CERT: &str = "1.2.840.113549.1.9.22.1";
    const LOCAL_KEY_ID: &str = "1.2.840.113549.1.9.21";
    const PBES2: &str = "1.2.840.113549.1.5.13";
    const PBKDF2: &str = "1.2.840.113549.1.5.12";
    const HMAC_SHA1: &str = "1.2.840.113549.2.7";
    const HMAC_SHA256: &str = "1.2.840.113549.2.9";
    const AES128_CBC: &str = "2.16.840.1.101.3.4.1.2";
    const AES192_CBC: &str = "2.16.840.1.101.3.4.1.22";
    const AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
    const PBE_SHA1_3DES: &str = "1.2.840.113549.1.12.1.3";
    const PBE_SHA1_RC2_40: &str = "1.2.840.113549.1.12.1.6";

    /// The end-entity certificate of a PFX: the one with a `localKeyId` (it pairs with the
    /// key), else the first. `Ok(None)` when the bytes are not a PFX at all.
    pub(super) fn leaf(pfx: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let Ok((outer, _)) = read(pfx) else {
            return Ok(None);
        };
        let Ok(parts) = items(outer.body) else {
            return Ok(None);
        };
        // PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL }
        if outer.tag != SEQUENCE
            || parts.first().map(|t| (t.tag, t.body)) != Some((0x02, &[3u8][..]))
        {
            return Ok(None);
        }
        let auth_safe = items(expect(parts.get(1), SEQUENCE, "the authenticated safe")?)?;
        if !is_oid(auth_safe.first(), DATA) {
            return Err("a public-key-protected PKCS#12 bundle is not supported".into());
        }
        let safes = octets_in_explicit(auth_safe.get(1))?;
        let (safes, _) = read(safes)?;
        let mut certs: Vec<(Vec<u8>, bool)> = Vec::new();
        for info in items(safes.body)? {
            let info = items(info.body)?;
            let contents = if is_oid(info.first(), DATA) {
                octets_in_explicit(info.get(1))?.to_vec()
            } else if is_oid(info.first(), ENCRYPTED_DATA) {
                decrypt_encrypted_data(info.get(1))?
            } else {
                continue;
            };
            let (bags, _) = read(&contents)?;
            for bag in items(bags.body)? {
                let bag = items(bag.body)?;
                if !is_oid(bag.first(), CERT_BAG) {
                    continue;
                }
                let (cert_bag, _) = read(explicit(bag.get(1))?)?;
                let cert_bag = items(cert_bag.body)?;
                if !is_oid(cert_bag.first(), X509_CERT) {
                    continue;
                }
                let der = octets_in_explicit(cert_bag.get(1))?.to_vec();
                let keyed = bag.get(2).is_some_and(|attrs| {
                    items(attrs.body).is_ok_and(|a| {
                        a.iter().any(|attr| {
                            items(attr.body).is_ok_and(|f| is_oid(f.first(), LOCAL_KEY_ID))
                        })
                    })
                });
                certs.push((der, keyed));
            }
        }
        let pick = certs
            .iter()
            .position(|(_, keyed)| *keyed)
            .or(if certs.is_empty() { None } else { Some(0) });
        match pick {
            Some(i) => Ok(Some(certs.swap_remove(i).0)),
            None => Err("the PKCS#12 bundle holds no certificate".into()),
        }
    }

    fn explicit<'a>(t: Option<&Tlv<'a>>) -> Result<&'a [u8], String> {
        match t {
            Some(t) if t.tag == 0xa0 => Ok(t.body),
            _ => Err("malformed PKCS#12: expected [0] EXPLICIT".into()),
        }
    }

    fn octets_in_explicit<'a>(t: Option<&Tlv<'a>>) -> Result<&'a [u8], String> {
        let (inner, _) = read(explicit(t)?)?;
        if inner.tag != OCTET_STRING {
            return Err("malformed PKCS#12: expected OCTET STRING".into());
        }
        Ok(inner.body)
    }

    fn decrypt_encrypted_data(t: Option<&Tlv<'_>>) -> Result<Vec<u8>, String> {
        // EncryptedData ::= SEQUENCE { version, EncryptedContentInfo ::= SEQUENCE {
        //   contentType, contentEncryptionAlgorithm, [0] IMPLICIT encryptedContent } }
        let (data, _) = read(explicit(t)?)?;
        let data = items(data.body)?;
        let info = items(expect(data.get(1), SEQUENCE, "the encrypted content info")?)?;
        let alg = items(expect(info.get(1), SEQUENCE, "the encryption algorithm")?)?;
        let content = match info.get(2) {
            Some(c) if c.tag == 0x80 => c.body.to_vec(),
            // Constructed form: a sequence of OCTET STRING chunks.
            Some(c) if c.tag == 0xa0 => items(c.body)?
                .iter()
                .flat_map(|p| p.body.iter().copied())
                .collect(),
            _ => return Err("malformed PKCS#12: no encrypted content".into()),
        };
        decrypt(&alg, &content)
    }

    fn decrypt(alg: &[Tlv<'_>], data: &[u8]) -> Result<Vec<u8>, String> {
        let params = alg.get(1);
        if is_oid(alg.first(), PBES2) {
            let p = items(expect(params, SEQUENCE, "PBES2 parameters")?)?;
            let kdf = items(expect(p.first(), SEQUENCE, "the key derivation")?)?;
            let scheme = items(expect(p.get(1), SEQUENCE, "the encryption scheme")?)?;
            if !is_oid(kdf.first(), PBKDF2) {
                return Err("only PBKDF2 is supported in PBES2".into());
            }
            let kp = items(expect(kdf.get(1), SEQUENCE, "PBKDF2 parameters")?)?;
            let salt = expect(kp.first(), OCTET_STRING, "the salt")?;
            let rounds =
                u32::try_from(small_uint(expect(kp.get(1), 0x02, "the iteration count")?)?)
                    .map_err(|_| "iteration count too large".to_owned())?;
            let prf_sha256 = kp
                .iter()
                .skip(2)
                .find(|t| t.tag == SEQUENCE)
                .map(|t| items(t.body))
                .transpose()?
                .is_some_and(|prf| is_oid(prf.first(), HMAC_SHA256));
            let prf_sha1 = !prf_sha256
                && kp
                    .iter()
                    .skip(2)
                    .find(|t| t.tag == SEQUENCE)
                    .is_none_or(|t| items(t.body).is_ok_and(|prf| is_oid(prf.first(), HMAC_SHA1)));
            if !prf_sha256 && !prf_sha1 {
                return Err("the PBKDF2 PRF is not supported (HMAC-SHA1, HMAC-SHA256)".into());
            }
            let iv = expect(scheme.get(1), OCTET_STRING, "the IV")?;
            let key_len = if is_oid(scheme.first(), AES256_CBC) {
                32
            } else if is_oid(scheme.first(), AES192_CBC) {
                24
            } else if is_oid(scheme.first(), AES128_CBC) {
                16
            } else {
                return Err("the PBES2 cipher is not supported (AES-CBC)".into());
            };
            let mut key = vec![0u8; key_len];
            // The empty password, as UTF-8 bytes (PBES2 takes no BMPString).
            if prf_sha256 {
                pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(b"", salt, rounds, &mut key)
                    .map_err(|e| e.to_string())?;
            } else {
                pbkdf2::pbkdf2::<Hmac<Sha1>>(b"", salt, rounds, &mut key)
                    .map_err(|e| e.to_string())?;
            }
            let bad =
                |_| "cannot decrypt the PKCS#12 bundle (is it password-protected?)".to_owned();
            return match key_len {
                32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv)
                    .map_err(|e| e.to_string())?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
                    .map_err(bad),
                24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, iv)
                    .map_err(|e| e.to_string())?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
                    .map_err(bad),
                _ => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, iv)
                    .map_err(|e| e.to_string())?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
                    .map_err(bad),
            };
        }
        let triple_des = is_oid(alg.first(), PBE_SHA1_3DES);
        if triple_des || is_oid(alg.first(), PBE_SHA1_RC2_40) {
            let p = items(expect(params, SEQUENCE, "PBE parameters")?)?;
            let salt = expect(p.first(), OCTET_STRING, "the salt")?;
            let rounds = small_uint(expect(p.get(1), 0x02, "the iteration count")?)?;
            // The empty password as a BMPString with its two-byte terminator.
            let password = [0u8, 0u8];
            let bad =
                |_| "cannot decrypt the PKCS#12 bundle (is it password-protected?)".to_owned();
            if triple_des {
                let key = kdf(&password, salt, 1, rounds, 24);
                let iv = kdf(&password, salt, 2, rounds, 8);
                return cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                    .map_err(|e| e.to_string())?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
                    .map_err(bad);
            }
            let key = kdf(&password, salt, 1, rounds, 5);
            let iv = kdf(&password, salt, 2, rounds, 8);
            let cipher = rc2::Rc2::new_with_eff_key_len(&key, 40);
            return cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, &iv)
                .map_err(|e| e.to_string())?
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .map_err(bad);
        }
        Err("the PKCS#12 encryption algorithm is not supported".into())
    }

    /// The PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-1.
    fn kdf(password: &[u8], salt: &[u8], id: u8, rounds: u64, n: usize) -> Vec<u8> {
        const V: usize = 64;
        let fill = |s: &[u8]| -> Vec<u8> {
            if s.is_empty() {
                return Vec::new();
            }
            let len = V * s.len().div_ceil(V);
            s.iter().copied().cycle().take(len).collect()
        };
        let mut i_block: Vec<u8> = fill(salt);
        i_block.extend(fill(password));
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut h = Sha1::new();
            h.update([id; V]);
            h.update(&i_block);
            let mut a = h.finalize().to_vec();
            for _ in 1..rounds {
                a = Sha1::digest(&a).to_vec();
            }
            out.extend_from_slice(&a);
            let b: Vec<u8> = a.iter().copied().cycle().take(V).collect();
            for chunk in i_block.chunks_mut(V) {
                // chunk = (chunk + b + 1) mod 2^512
                let mut carry = 1u16;
                for k in (0..V).rev() {
                    let sum = u16::from(chunk[k]) + u16::from(b[k]) + carry;
                    chunk[k] = u8::try_from(sum & 0xff).unwrap_or(0);
                    carry = sum >> 8;
                }
            }
        }
        out.truncate(n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding_matches_der() {
        assert_eq!(
            oid_body("1.2.840.113549.1.1.1"),
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]
        );
    }

    #[test]
    fn non_pem_values_are_symmetric_keys() {
        let jwk = jwk_from_value(b"0123456789abcdef").unwrap();
        assert_eq!(jwk["kty"], "oct");
        assert_eq!(jwk["k"], URL_SAFE_NO_PAD.encode(b"0123456789abcdef"));
    }

    #[test]
    fn unknown_pem_key_types_are_refused() {
        let pem = "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n";
        assert_eq!(
            jwk_from_value(pem.as_bytes()).unwrap_err(),
            "key type DSA PRIVATE KEY is not supported"
        );
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert!(leaf_certificate(b"not a certificate").is_err());
    }
}
